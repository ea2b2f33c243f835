"""Static checks of the images: multi-stage, non-root, health check, a `textnlp` command.

No Docker engine runs here, so the Dockerfiles are parsed. Their commands must be the app's
own (`textnlp.deployment`), which the task definitions also use; those commands are run against
the real CLI by `tests/e2e/test_deployment_commands.py` and, as deployed, by the rehearsal.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from textnlp import deployment

from infra_assembly import Assembly, require_tool
from rehearsal import image_runtime

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
IMAGES = {
    "api": list(deployment.API_COMMAND),
    "generation": list(deployment.GENERATION_COMMAND),
    "validation": list(deployment.VALIDATION_COMMAND),
}


def _instructions(name: str) -> list[tuple[str, str]]:
    text = (DOCKER_DIR / f"{name}.Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)  # join continuation lines
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines if line and not line.startswith("#")
    ]


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_multi_stage(name: str) -> None:
    stages = [arg for op, arg in _instructions(name) if op == "FROM"]
    assert len(stages) >= 2
    assert any("COPY --from=build" in f"COPY {arg}" for op, arg in _instructions(name)
               if op == "COPY")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_runs_as_non_root(name: str) -> None:
    users = [arg for op, arg in _final_stage(_instructions(name)) if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_health_check(name: str) -> None:
    checks = [arg for op, arg in _final_stage(_instructions(name)) if op == "HEALTHCHECK"]
    assert checks and "CMD" in checks[-1]
    if name == "api":  # the same probe as the task definition's (python -c ...)
        exec_form = json.loads(checks[-1].split("CMD", 1)[1].strip())
        assert shlex.join(exec_form) == shlex.join(shlex.split(deployment.HEALTH_CHECK_COMMAND))


@pytest.mark.parametrize(("name", "command"), sorted(IMAGES.items()))
def test_command_is_the_textnlp_cli(name: str, command: list[str]) -> None:
    final = _final_stage(_instructions(name))
    cmds = [json.loads(arg) for op, arg in final if op == "CMD"]
    assert cmds[-1] == command
    assert not [arg for op, arg in final if op == "ENTRYPOINT"]  # ECS overrides CMD only


def test_generation_image_has_cuda_and_gpu_extras() -> None:
    instructions = _instructions("generation")
    text = " ".join(arg for _, arg in instructions)
    # llama.cpp (CUDA), torch, and the recipe filters
    assert "nvidia/cuda" in text and "[embedded,hf,validation," in text


def test_dockerignore_keeps_context_small() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for entry in (".git", ".venv", "infra", "tests"):
        assert entry in ignored
    assert "src" not in ignored and "README.md" not in ignored


def test_hadolint() -> None:
    tools = REPO_ROOT / "infra" / ".venv-tools" / "bin" / "hadolint"
    hadolint = require_tool(
        os.environ.get("HADOLINT") or (str(tools) if tools.is_file() else None)
        or shutil.which("hadolint"),
        "hadolint",
    )
    for name in IMAGES:
        result = subprocess.run(
            [hadolint, "--failure-threshold", "warning", str(DOCKER_DIR / f"{name}.Dockerfile")],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_caches_and_home_are_on_the_writable_volume(name: str) -> None:
    """The roots are read-only: every path the app or a library writes is below /tmp."""
    text = " ".join(arg for op, arg in _final_stage(_instructions(name)) if op == "ENV")
    settings = dict(re.findall(r"(\w+)=(\S+)", text))
    assert settings["TEXTNLP_HOME"] == deployment.CONTAINER_HOME
    for variable, path in deployment.SCRATCH_ENVIRONMENT.items():
        assert settings[variable] == path


@pytest.mark.parametrize("name", ["api", "generation"])
def test_llama_cpp_is_built_with_the_makefiles_portable_kernels(name: str) -> None:
    # The images run on hosts other than the builder's: the Makefile's AVX2 flags (never a
    # native build, which may pick AMX), read from the Makefile itself.
    make = ["make", "-s", "--no-print-directory", "-C", str(REPO_ROOT), "llama-kernels"]
    env = {**os.environ, "LLAMA_KERNELS": "avx2"}
    portable = subprocess.run(make, env=env, check=True, capture_output=True, text=True)
    tag, *flags = portable.stdout.split()
    envs = [arg for op, arg in _instructions(name) if op == "ENV" and "CMAKE_ARGS=" in arg]
    assert tag == "avx2" and len(envs) == 1
    cmake_args = dict(word.split("=", 1) for word in shlex.split(envs[0]))["CMAKE_ARGS"]
    assert set(flags) <= set(cmake_args.split())



def test_the_rehearsal_gives_each_image_only_its_extras(tmp_path: Path) -> None:
    """The rehearsal's images share the development venv: each image's processes see only the
    distributions its Dockerfile's extras install (the API image once lacked validation, and
    the rehearsal ran its routes anyway)."""
    from rehearsal.image import build, dockerfile_extras
    from rehearsal.image_guard import VARIABLE

    assert set(dockerfile_extras()) == {
        "textnlp-api", "textnlp-generation", "textnlp-validation"
    }
    image = build(tmp_path)
    probe = (
        "import importlib.util as u, json, sys; "
        "print(json.dumps({m: u.find_spec(m) is not None for m in sys.argv[1:]}))"
    )
    modules = ["fastapi", "boto3", "sacrebleu", "llama_cpp", "pytest", "moto", "accelerate"]

    def found(repository: str) -> dict[str, bool]:
        env = {**os.environ, VARIABLE: repository}
        done = subprocess.run([str(image.bin / "python"), "-c", probe, *modules], env=env,
                              capture_output=True, text=True, check=True)
        return dict(json.loads(done.stdout))

    api, validation = found("textnlp-api"), found("textnlp-validation")
    assert api == {**dict.fromkeys(modules, False), "fastapi": True, "boto3": True,
                   "sacrebleu": True, "llama_cpp": True}
    assert validation["sacrebleu"] and not validation["llama_cpp"]  # no embedded extra there


def _app_containers(assembly: Assembly) -> list[tuple[str, dict]]:
    """(repository, container definition) of every container from one of our Dockerfiles."""
    repositories = [f"textnlp-{name}" for name in IMAGES]
    found = []
    for template in assembly.templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::ECS::TaskDefinition":
                continue
            for container in resource["Properties"]["ContainerDefinitions"]:
                image = json.dumps(container["Image"])
                found += [(r, container) for r in repositories if f"/{r}:" in image]
    return found


def test_each_scratch_volume_is_writable_by_its_images_user(assembly: Assembly) -> None:
    """A fresh ECS task volume is root's 0755 unless the image declares a VOLUME there (then it
    starts as the image's directory): an image running as an unprivileged USER must declare
    the VOLUME and make it, and the app's directories in it, writable for that user."""
    containers = _app_containers(assembly)
    assert {r for r, _ in containers} == {f"textnlp-{name}" for name in IMAGES}
    for repository, container in containers:
        runtime = image_runtime.read(DOCKER_DIR / f"{repository.removeprefix('textnlp-')}"
                                     ".Dockerfile")
        environment = {**runtime.environment,
                       **{e["Name"]: str(e["Value"]) for e in container.get("Environment", [])}}
        mounts = [m["ContainerPath"] for m in container["MountPoints"] if not m.get("ReadOnly")]
        assert mounts, f"{container['Name']}: no writable volume"
        for mount in mounts:
            where = f"{container['Name']} ({repository}) at {mount}"
            assert PurePosixPath(mount) in runtime.volumes, f"{where}: no VOLUME declared"
            top = runtime.fresh_volume(mount)[0]
            assert top.writable_by(runtime.uid, runtime.gid), f"{where}: {oct(top.mode)}"
            below = {k: v for k, v in environment.items() if v.startswith(f"{mount}/")}
            assert below.keys() >= {"TEXTNLP_HOME", *deployment.SCRATCH_ENVIRONMENT}
            for variable, path in below.items():
                assert runtime.can_create(path, mount), f"{where}: {variable}={path}"


def test_the_volume_an_image_gives_is_read_from_its_last_stage(tmp_path: Path) -> None:
    dockerfile = tmp_path / "x.Dockerfile"
    dockerfile.write_text(
        "FROM a AS build\nRUN chmod 1777 /tmp\nVOLUME /tmp\n"
        "FROM b\nRUN mkdir -p /tmp/a && chown 7:8 /tmp/a && chmod 700 /tmp/a; "
        "install -d -m 0750 -o 7 -g 8 /tmp/a/b /srv\nVOLUME [\"/tmp\"]\nUSER 7:8\n"
    )
    runtime = image_runtime.read(dockerfile)
    assert (runtime.uid, runtime.gid) == (7, 8)
    # The first stage's chmod is not in the image; /tmp stays the unknown base's: root 0755.
    assert [(str(d.path), d.uid, d.gid, d.mode) for d in runtime.fresh_volume("/tmp")] == [
        ("/tmp", 0, 0, 0o755), ("/tmp/a", 7, 8, 0o700), ("/tmp/a/b", 7, 8, 0o750)]
    assert runtime.can_create("/tmp/a/b/c/d", "/tmp") and not runtime.can_create("/tmp/z", "/tmp")
    assert runtime.fresh_volume("/srv") == [image_runtime.Directory(PurePosixPath("/srv"))]
    dockerfile.write_text("FROM b\nRUN chmod a+w /tmp\n")
    with pytest.raises(image_runtime.DockerfileError, match="octal"):
        image_runtime.read(dockerfile)
