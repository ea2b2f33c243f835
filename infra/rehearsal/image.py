"""An image-like environment: the project installed from its wheel, as the Dockerfiles do.

The Dockerfiles run `pip install ".[embedded,api,aws]"`: a non-editable install, so a file the
package forgets to ship (a template, a migration) is missing in the image. Here: a wheel of the
project, a venv without pip, and the wheel installed into it. The dependencies come from the
development venv, each image's own: `deps/<repository>` links the distributions its Dockerfile's
extras install, and `image_guard` puts that directory on the path of the image's processes (a
path entry does not process the `.pth` files inside it, so the development venv's editable
install of textnlp stays inactive).
Processes then run `<image>/bin/textnlp`. The image's `ENV` lines come from its Dockerfile.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rehearsal import image_guard, image_runtime
from rehearsal.assembly import REPO_ROOT
from rehearsal.image_runtime import ImageRuntime

DOCKER_DIR = REPO_ROOT / "docker"
#: The Dockerfile whose build stage says what the wheel is built from (all three COPY the same).
BUILD_DOCKERFILE = "api.Dockerfile"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".textnlp", "build")


class ImageBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Image:
    root: Path
    #: The Dockerfile's ENV per repository name ("textnlp-api" -> docker/api.Dockerfile).
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The Dockerfile's last stage (its USER, VOLUMEs) per repository name.
    runtimes: dict[str, ImageRuntime] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def workdir(self) -> Path:
        """The images' WORKDIR (/home/textnlp), read-only like the rest of the root."""
        return self.root / "home" / "textnlp"

    def environment_of(self, image_uri: str) -> dict[str, str]:
        repository = repository_of(image_uri)
        if repository not in self.environments:
            return {}
        return {**self.environments[repository], image_guard.VARIABLE: repository}

    def runtime_of(self, image_uri: str) -> ImageRuntime:
        """The image's USER and VOLUMEs; an image without a Dockerfile here runs as root with
        no VOLUME."""
        return self.runtimes.get(repository_of(image_uri), ImageRuntime())


def repository_of(image_uri: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/textnlp-api:tag` -> `textnlp-api`."""
    return image_uri.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def build(directory: Path) -> Image:
    """Build the wheel and the image venv under `directory` (reused when already built)."""
    root = directory / "image"
    marker = root / ".built"
    if not marker.exists():
        wheels = directory / "wheel"
        context = _build_context(directory / "context", DOCKER_DIR / BUILD_DOCKERFILE)
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
              "--no-build-isolation", str(context), "-w", str(wheels)], "building the wheel")
        wheel = max(wheels.glob("textnlp-*.whl"), key=lambda p: p.stat().st_mtime)
        _run([sys.executable, "-m", "venv", "--without-pip", str(root)], "creating the venv")
        _install_guard(root)
        _run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
              "--ignore-installed", "--no-compile", str(wheel)], "installing the wheel")
        (root / "home" / "textnlp").mkdir(parents=True, exist_ok=True)
        marker.write_text(wheel.name)
    else:
        _install_guard(root)  # the extras may have changed since
    return Image(root, dockerfile_environments(), dockerfile_runtimes())


def _install_guard(root: Path) -> None:
    """Each image's dependency directory, and the guard that a `.pth` line imports at start."""
    site = _site_packages(root)
    (site / "_rehearsal_dependencies.pth").unlink(missing_ok=True)  # an older layout's
    development = sysconfig.get_paths()["purelib"]
    images = {}
    for repository, extras in dockerfile_extras().items():
        directory = root / "deps" / repository
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for top in sorted(top_level_entries(installed_by(extras) - {"textnlp"})):
            (directory / top).symlink_to(Path(development) / top)
        images[repository] = str(directory)
    paths = {"development": development, "images": images}
    (site / image_guard.PATHS_FILE).write_text(json.dumps(paths, indent=1))
    shutil.copy2(image_guard.__file__, site / "_rehearsal_image_guard.py")
    (site / "_rehearsal_image_guard.pth").write_text("import _rehearsal_image_guard\n")


def top_level_entries(distributions: set[str]) -> set[str]:
    """The files and directories the distributions put directly in site-packages (their
    modules, packages and .dist-info), by their RECORD."""
    found = set()
    for name in distributions:
        files = metadata.distribution(name).files or []
        for file in files:
            top = file.parts[0] if file.parts else ""
            if top and top not in ("..", "__pycache__") and not top.endswith(".pth"):
                found.add(top)
    return found


def dockerfile_extras() -> dict[str, tuple[str, ...]]:
    """The extras each Dockerfile's `pip install ".[a,b]"` names, by repository."""
    found = {}
    for path in sorted(DOCKER_DIR.glob("*.Dockerfile")):
        match = re.search(r'pip install [^\n]*"\.\[([^\]]*)\]"', path.read_text())
        if match is None:
            raise ImageBuildError(f"{path.name} installs no `.[extras]` of the project")
        extras = tuple(e.strip() for e in match.group(1).split(",") if e.strip())
        found[f"textnlp-{path.name.removesuffix('.Dockerfile')}"] = extras
    return found


def installed_by(extras: tuple[str, ...]) -> set[str]:
    """The distributions `pip install ".[extras]"` installs (those this venv has), by their
    requirements' metadata."""
    names: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = [("textnlp", extra) for extra in ("", *extras)]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (a GPU package): nothing of it to block either
        names.add(name)
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and not marker.evaluate({"extra": extra}):
                continue
            wanted = canonicalize_name(requirement.name)
            todo += [(wanted, ""), *((wanted, e) for e in requirement.extras)]
    return names



def _build_context(target: Path, dockerfile: Path) -> Path:
    """What the Dockerfile's build stage COPYs from the repository (and only that)."""
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) < 3 or words[0].upper() != "COPY" or words[1].startswith("--"):
            continue
        *sources, destination = words[1:]
        for source in sources:
            origin = REPO_ROOT / source
            into = target / destination
            if origin.is_dir():
                shutil.copytree(origin, into, dirs_exist_ok=True, ignore=_IGNORED)
            else:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into / origin.name)
    return target


def _site_packages(root: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return root / "lib" / version / "site-packages"


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise ImageBuildError(f"{what} failed: {(done.stderr or done.stdout)[-1500:]}")


def dockerfile_runtimes() -> dict[str, ImageRuntime]:
    """Each Dockerfile's last stage (USER, VOLUME, ENV...), by its repository
    (`textnlp-<file stem>`)."""
    return {f"textnlp-{path.name.removesuffix('.Dockerfile')}": image_runtime.read(path)
            for path in sorted(DOCKER_DIR.glob("*.Dockerfile"))}


def dockerfile_environments() -> dict[str, dict[str, str]]:
    """ENV of each Dockerfile's last stage, by its repository. PATH names the image's venv
    (/opt/venv/bin): processes get the rehearsal's own PATH."""
    return {repository: {k: v for k, v in runtime.environment.items() if k != "PATH"}
            for repository, runtime in dockerfile_runtimes().items()}
