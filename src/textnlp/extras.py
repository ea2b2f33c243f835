"""Which extra of textnlp installs a module, and the error for a feature whose extra is missing.

``pip install 'textnlp[embedded]'`` has the CLI and library but not the server's packages
(``api``), validation's (``validation``) or the clouds' (``aws``): a command or route that needs
them meets a ``ModuleNotFoundError``, which the CLI and the API render as ``MissingExtra``,
naming what to install. Work that would stop half-way (a prompt, a generation run before its
validation) checks first, with ``require_extra`` or ``require_modules``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from importlib import metadata

from textnlp.errors import MissingExtra


def _requirements() -> Iterator[tuple[str, str]]:
    """(distribution, extra) for each package an extra of textnlp's own metadata installs."""
    for requirement in metadata.requires("textnlp") or []:
        name, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*[\"']([^\"']+)", marker)
        dist = re.split(r"[\[<>=!~ ;]", name.strip(), maxsplit=1)[0].lower().replace("-", "_")
        if extra and dist != "textnlp":
            yield dist, extra.group(1)


def extra_providing(module: str) -> str | None:
    """The extra of textnlp's own metadata whose requirement installs ``module`` (None: none).

    A distribution's import name is its own, or without ``py``/``python-``/``-python`` (pyjwt:
    jwt, llama-cpp-python: llama_cpp), or its first word (opentelemetry-sdk, argon2-cffi)."""
    top = module.partition(".")[0].lower()
    for dist, extra in _requirements():
        names = {dist, dist.removeprefix("py"), dist.removeprefix("python_")}
        names |= {dist.removesuffix("_python"), dist.split("_")[0]}
        if top in names:
            return extra
    return None


def require_extra(extra: str, feature: str) -> None:
    """Raise ``MissingExtra`` unless every package of ``extra`` is installed: checked before
    the work (a password prompt, a generation run) that would otherwise stop half-way."""
    for dist, of in _requirements():
        if of != extra:
            continue
        try:
            metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            raise _refusal(feature, extra, dist) from None


def require_modules(feature: str, *modules: str) -> None:
    """Raise ``MissingExtra`` (naming the extra that installs it) unless each module can be
    imported; nothing is imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise _refusal(feature, extra_providing(module), module)


def _refusal(feature: str, extra: str | None, package: str) -> MissingExtra:
    if extra is None:
        message = f"{feature} needs {package}, which is not installed here"
        return MissingExtra(message, module=package)
    return MissingExtra(
        f"{feature} needs the '{extra}' extra, which is not installed here "
        f"({package!r} is missing): pip install 'textnlp[{extra}]'",
        module=package,
        extra=extra,
    )


def missing_extra(error: ModuleNotFoundError) -> MissingExtra | None:
    """The ``MissingExtra`` of a package that is not installed; None for textnlp's own module
    (a bug, whose traceback is the report)."""
    module = error.name or ""
    if module.partition(".")[0] in ("", "textnlp"):
        return None
    return _refusal("this", extra_providing(module), module)
