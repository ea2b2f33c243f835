"""An image-like environment: the project installed from its wheel, as the Dockerfiles do.

The Dockerfiles run `pip install ".[embedded,api,aws]"`: a non-editable install, so a file the
package forgets to ship (a template, a migration) is missing in the image. Here: a wheel of the
project, a venv without pip whose `.pth` names the development venv's site-packages (the
dependencies come from there; a plain path line does not process the `.pth` files inside it, so
the development venv's editable install of textnlp stays inactive), and the wheel installed into
it.
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
from pathlib import Path

from rehearsal.assembly import REPO_ROOT

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

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def workdir(self) -> Path:
        """The images' WORKDIR (/home/textnlp), read-only like the rest of the root."""
        return self.root / "home" / "textnlp"

    def environment_of(self, image_uri: str) -> dict[str, str]:
        repository = image_uri.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
        return dict(self.environments.get(repository, {}))


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
        site = _site_packages(root)
        (site / "_rehearsal_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        _run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
              "--ignore-installed", "--no-compile", str(wheel)], "installing the wheel")
        (root / "home" / "textnlp").mkdir(parents=True, exist_ok=True)
        marker.write_text(wheel.name)
    return Image(root, dockerfile_environments())


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


def dockerfile_environments() -> dict[str, dict[str, str]]:
    """ENV of each Dockerfile's last stage, by its repository (`textnlp-<file stem>`)."""
    found = {}
    for path in sorted(DOCKER_DIR.glob("*.Dockerfile")):
        found[f"textnlp-{path.name.removesuffix('.Dockerfile')}"] = _last_stage_env(path)
    return found


def _last_stage_env(path: Path) -> dict[str, str]:
    text = re.sub(r"\\\n", " ", path.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if not words:
            continue
        if words[0].upper() == "FROM":
            env = {}
        elif words[0].upper() == "ENV" and len(words) == 2:
            env.update(_env_pairs(words[1]))
    # PATH names the image's venv (/opt/venv/bin): processes get the rehearsal's own PATH.
    env.pop("PATH", None)
    return env


def _env_pairs(text: str) -> dict[str, str]:
    pairs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', text)
    if not pairs:  # the legacy form: ENV NAME value
        name, _, value = text.partition(" ")
        return {name: value.strip()}
    return {k: json.loads(v) if v.startswith('"') else v for k, v in pairs}
