"""A rehearsed container runs as ECS runs it: as its image's USER, on a read-only root, with a
task volume that starts as ECS makes it from the image (the rehearsal once made every volume
world-writable and ran the containers as root, so an image that left /tmp to root passed).

Needs root (a private mount namespace), `unshare` and `setpriv`, as the rehearsal does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textnlp import deployment

from infra_assembly import require_tool
from rehearsal import image_runtime
from rehearsal.emf import EmfForwarder
from rehearsal.image import Image, dockerfile_environments, dockerfile_runtimes
from rehearsal.ledger import Ledger
from rehearsal.processes import ContainerLauncher, ContainerSpec, SecretReader

#: What the app does first in /tmp: a worker's scratch directory (worker/runner.py) and the
#: models' cache (backends/llamacpp.py), as the image's user.
PROBE = """
import os, pathlib, tempfile
print("uid", os.getuid(), os.getgid(), flush=True)
try:
    tempfile.mkdtemp()
    pathlib.Path(os.environ["TEXTNLP_HOME"], "jobs").mkdir(parents=True, exist_ok=True)
    pathlib.Path(os.environ["XDG_CACHE_HOME"], "textnlp", "models").mkdir(parents=True)
    print("wrote the scratch volume", flush=True)
except OSError as exc:
    print("refused:", exc, flush=True)
print("done", flush=True)
"""
API_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/textnlp-api:latest"


@pytest.fixture
def run_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root: containers run in a private mount namespace")
    require_tool(shutil.which("unshare"), "unshare (read-only root filesystems)")
    require_tool(shutil.which("setpriv"), "setpriv (the images' USER)")
    # Not under /tmp (each container's /tmp is its volume), and reachable by the image's user.
    directory = Path(tempfile.mkdtemp(prefix="textnlp-containers-", dir="/var/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def _run_probe(run_dir: Path, runtimes: dict[str, image_runtime.ImageRuntime]) -> list[str]:
    root = run_dir / "image"
    (root / "home" / "textnlp").mkdir(parents=True)
    launcher = ContainerLauncher(
        image=Image(root, dockerfile_environments(), runtimes), ledger=Ledger(),
        run_dir=run_dir, emf=EmfForwarder(None), secrets=SecretReader(lambda *_: None),
        substitutions={},
    )
    spec = ContainerSpec(
        "textnlp-api", "arn:aws:ecs:us-east-1:123456789012:task-definition/textnlp-api:1",
        "us-east-1",
        {"Name": "api", "Image": API_IMAGE, "Command": [sys.executable, "-c", PROBE],
         "ReadonlyRootFilesystem": True,
         "MountPoints": [{"ContainerPath": deployment.SCRATCH_PATH,
                          "SourceVolume": "api-scratch", "ReadOnly": False}]},
        ("api-scratch",),
    )
    process = launcher.start(spec)
    try:
        assert process.wait(120) == 0, process.log_tail()
        deadline = time.monotonic() + 30  # the reader thread drains the pipe after the exit
        while "done" not in process.log and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        launcher.stop_all()
    return list(process.log)


def test_a_container_writes_its_volume_as_its_images_user(run_dir: Path) -> None:
    log = _run_probe(run_dir, dockerfile_runtimes())
    assert log == ["uid 10001 10001", "wrote the scratch volume", "done"]


def test_an_image_that_leaves_its_volume_to_root_cannot_write_it(
    run_dir: Path, tmp_path: Path
) -> None:
    """The images as they were: USER 10001, no VOLUME /tmp; ECS gives them root's 0755."""
    dockerfile = tmp_path / "api.Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim-bookworm\nUSER 10001:10001\n")
    log = _run_probe(run_dir, {"textnlp-api": image_runtime.read(dockerfile)})
    assert log[0] == "uid 10001 10001" and log[-1] == "done"
    assert log[1].startswith("refused:") and "No usable temporary directory" in log[1]
