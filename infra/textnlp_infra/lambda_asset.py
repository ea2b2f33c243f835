"""The Lambda code asset, built at synthesis from this checkout: offline, no Docker, no pip.

The directory holds the `textnlp` package source (`src/textnlp` without caches, model weights
or local data) and the third-party distributions the handlers import that the Lambda Python
3.12 runtime lacks (`BUNDLED_DISTRIBUTIONS`), copied file by file from the synthesising
environment as their RECORD lists them, dist-info included. boto3, botocore and their
dependencies come with the runtime and are never bundled. The asset runs on another Python
than the one synthesising, so only pure-Python distributions (`Root-Is-Purelib: true` in their
WHEEL file) are accepted, and a compiled extension anywhere in the asset is refused.

The result is `infra/build/lambda-asset/<content digest>/` (gitignored): it is assembled in a
private temporary directory and renamed into place, so the same inputs give the same directory
and the same CDK asset hash, and concurrent syntheses never see a half-written one. Older
digests stay until `infra/build/` is removed.
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path, PurePosixPath

INFRA_DIR = Path(__file__).resolve().parent.parent
SOURCE_PACKAGE = INFRA_DIR.parent / "src" / "textnlp"
ASSET_ROOT = INFRA_DIR / "build" / "lambda-asset"
#: Imported by the handlers and absent from the Lambda runtime (the authorizer's JWT checks).
BUNDLED_DISTRIBUTIONS = ("PyJWT",)
#: In the Lambda Python runtime already: bundling them would shadow the runtime's own copies.
RUNTIME_PROVIDED = frozenset({
    "boto3", "botocore", "jmespath", "s3transfer", "python-dateutil", "six", "urllib3",
})
EXCLUDED_DIRECTORIES = frozenset({"__pycache__", ".textnlp"})
EXCLUDED_SUFFIXES = frozenset({".pyc", ".pyo", ".gguf"})
COMPILED_SUFFIXES = frozenset({".so", ".pyd", ".dylib", ".dll"})
#: The runtime's Python (`lambda_.Runtime.PYTHON_3_12`), for requirement markers.
RUNTIME_PYTHON = (3, 12)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PYTHON_MARKER = re.compile(r"""^python_version\s*(<=|>=|==|!=|<|>)\s*["'](\d+)\.(\d+)["']$""")
_COMPARE = {"<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
            ">=": operator.ge, ">": operator.gt}


class LambdaAssetError(Exception):
    """The asset cannot be built from this environment; the message says what to change."""


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_lambda_asset(
    root: Path = ASSET_ROOT, *, source: Path = SOURCE_PACKAGE,
    distributions: Iterable[str] = BUNDLED_DISTRIBUTIONS,
) -> Path:
    """The asset directory for `source` plus `distributions`, built unless it exists already."""
    if not (source / "__init__.py").is_file():
        raise LambdaAssetError(f"{source} is not the textnlp package; synthesise from a checkout")
    names = tuple(distributions)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        copy_package_source(source, staging / source.name)
        for name in names:
            copy_distribution(name, staging, bundled=names)
        final = root / tree_digest(staging)[:16]
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():  # not another synthesis that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def copy_package_source(source: Path, target: Path) -> None:
    for path in _source_files(source):
        if path.suffix in COMPILED_SUFFIXES:
            raise LambdaAssetError(f"{path} is a compiled extension; the asset must be pure Python")
        _copy(path, target / path.relative_to(source))


def _source_files(source: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(source):
        subdirectories[:] = sorted(d for d in subdirectories if d not in EXCLUDED_DIRECTORIES)
        for name in sorted(files):
            path = Path(directory) / name
            if path.suffix not in EXCLUDED_SUFFIXES:
                yield path


def copy_distribution(name: str, target: Path, *, bundled: Iterable[str] = ()) -> None:
    """Copy the installed distribution `name` (its RECORD, dist-info included) into `target`."""
    if canonical_name(name) in RUNTIME_PROVIDED:
        raise LambdaAssetError(f"{name} is part of the Lambda runtime and must not be bundled")
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise LambdaAssetError(
            f"{name} is not installed in {sys.prefix}; install the app's dependencies"
        ) from None
    label = f"{dist.metadata['Name']} {dist.version}"
    if not _is_purelib(dist):
        raise LambdaAssetError(
            f"{label} is not pure Python (its WHEEL file lacks 'Root-Is-Purelib: true'); the "
            "asset runs on the Lambda runtime's Python, so it cannot carry compiled code"
        )
    _check_requirements(dist, label, {canonical_name(n) for n in bundled})
    if not dist.files:
        raise LambdaAssetError(f"{label} has no RECORD file, so its files are unknown")
    for file in dist.files:
        relative = PurePosixPath(file.as_posix())
        if relative.parts[0] == ".." or _excluded(relative):
            continue  # scripts outside site-packages, bytecode caches
        if relative.suffix in COMPILED_SUFFIXES:
            raise LambdaAssetError(f"{label} ships the compiled file {relative}")
        origin = Path(str(dist.locate_file(file)))
        if not origin.is_file():
            raise LambdaAssetError(f"{label}: {relative} is in its RECORD but not installed")
        destination = target / relative
        if destination.exists():
            raise LambdaAssetError(f"{label}: {relative} is already in the asset")
        _copy(origin, destination)


def _is_purelib(dist: metadata.Distribution) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    return any(
        key.strip().lower() == "root-is-purelib" and value.strip().lower() == "true"
        for key, _, value in (line.partition(":") for line in wheel.splitlines())
    )


def _check_requirements(dist: metadata.Distribution, label: str, bundled: set[str]) -> None:
    """Every unconditional requirement must be bundled too, or come with the runtime."""
    for requirement in dist.requires or []:
        _, _, marker = requirement.partition(";")
        if not _applies_to_runtime(marker.strip()):
            continue
        match = _REQUIREMENT_NAME.match(requirement)
        name = canonical_name(match.group(1)) if match else requirement
        if name not in bundled and name not in RUNTIME_PROVIDED:
            raise LambdaAssetError(
                f"{label} requires {name}, which is neither bundled nor in the Lambda "
                "runtime: add it to BUNDLED_DISTRIBUTIONS"
            )


def _applies_to_runtime(marker: str) -> bool:
    """Whether a requirement with `marker` is needed on the runtime. Extras (PyJWT[crypto]) are
    not used by the handlers; a marker other than `python_version` counts as needed, so that
    the error names the requirement rather than dropping it silently."""
    if not marker:
        return True
    if "extra" in marker:
        return False
    match = _PYTHON_MARKER.match(marker)
    if match is None:
        return True
    return bool(_COMPARE[match[1]](RUNTIME_PYTHON, (int(match[2]), int(match[3]))))


def _excluded(relative: PurePosixPath) -> bool:
    return relative.suffix in EXCLUDED_SUFFIXES or any(
        part in EXCLUDED_DIRECTORIES for part in relative.parts
    )


def _copy(origin: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(origin, destination)  # contents only: the digest must not see mtimes


def tree_digest(directory: Path) -> str:
    """SHA-256 over every file's relative path and contents, in a fixed order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
