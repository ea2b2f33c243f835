"""Which extra of textnlp installs a module, and the error for a feature whose extra is missing.

``pip install 'textnlp[embedded]'`` has the CLI and library but not the server's packages
(``api``), validation's (``validation``) or the clouds' (``aws``): a command or route that needs
them meets a ``ModuleNotFoundError``, which the CLI and the API render as ``MissingExtra``,
naming what to install.
"""

from __future__ import annotations

import re
from importlib import metadata

from textnlp.errors import MissingExtra


def extra_providing(module: str) -> str | None:
    """The extra of textnlp's own metadata whose requirement installs ``module`` (None: none).

    A distribution's import name is its own, or without ``py``/``python-``/``-python`` (pyjwt:
    jwt, llama-cpp-python: llama_cpp), or its first word (opentelemetry-sdk, argon2-cffi)."""
    top = module.partition(".")[0].lower()
    for requirement in metadata.requires("textnlp") or []:
        name, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*[\"']([^\"']+)", marker)
        dist = re.split(r"[\[<>=!~ ;]", name.strip(), maxsplit=1)[0].lower().replace("-", "_")
        names = {dist, dist.removeprefix("py"), dist.removeprefix("python_")}
        names |= {dist.removesuffix("_python"), dist.split("_")[0]}
        if extra and dist != "textnlp" and top in names:
            return extra.group(1)
    return None


def missing_extra(error: ModuleNotFoundError) -> MissingExtra | None:
    """The ``MissingExtra`` of a package that is not installed; None for textnlp's own module
    (a bug, whose traceback is the report)."""
    module = error.name or ""
    if module.partition(".")[0] in ("", "textnlp"):
        return None
    extra = extra_providing(module)
    if extra is None:
        return MissingExtra(f"this needs {module}, which is not installed here", module=module)
    return MissingExtra(
        f"this needs the '{extra}' extra, which is not installed here (no module {module!r}): "
        f"pip install 'textnlp[{extra}]'",
        module=module,
        extra=extra,
    )
