"""ECS containers as local processes, started from their task definitions.

A container's command runs with exactly its task definition's environment, its `Secrets`
injected the way ECS does (a secret's value, or one JSON key of it), the image's `ENV`, the
variables ECS itself sets on Fargate, and the rehearsal's substitutions (`AWS_ENDPOINT_URL`,
test credentials, the CA bundle). `readonlyRootFilesystem` is enforced, when running as root, by
a private mount namespace whose root is read-only and whose declared volumes are fresh scratch
directories, each as ECS makes it from the image (`image_runtime`: a copy of the image's
directory when the image declares that VOLUME, else root's 0755); the process then runs as the
image's USER, as on ECS. There is no awsvpc network namespace, so a container port maps to a
free local port (rewritten in the command and the health check, and listed as a substitution).

Output is captured line by line: embedded-metric-format lines go to CloudWatch (moto), the rest
is the process's log, whose tail is shown when a step involving it fails.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehearsal.emf import EmfForwarder
from rehearsal.image import Image
from rehearsal.image_runtime import Directory
from rehearsal.ledger import Ledger
from rehearsal.stand_ins import free_port
from rehearsal.template import placeholders_in

_READ_ONLY_ROOT = (
    'set -e; mount --bind / /; for p in $REHEARSAL_BINDS; do mount --bind "${p%%=*}" "${p#*=}";'
    ' done; mount -o remount,bind,ro /; unset REHEARSAL_BINDS; exec "$@"'
)
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
#: The image's files are the host's here (the checkout, the venvs, the interpreter, at whatever
#: modes they have, under /root perhaps), which in a real image the USER can read: it may read
#: and search any file (CAP_DAC_READ_SEARCH), and writes only where the modes let it.
_READ_THE_IMAGE = "dac_read_search"


class ContainerError(RuntimeError):
    """A container could not start, or did not do what it must (exit 0, pass its check)."""


class SecretReader:
    """ECS `valueFrom`: a Secrets Manager ARN, optionally `:<json key>:<stage>:<version id>`."""

    def __init__(self, lookup: Any) -> None:
        self._lookup = lookup  # Deployment.secret_value

    def read(self, value_from: str) -> str | None:
        parts = value_from.split(":")
        if not value_from.startswith("arn:aws:secretsmanager:") or len(parts) < 7:
            return None
        secret_id, extra = ":".join(parts[:7]), parts[7:]
        if any(extra[1:]):
            return None  # version stages and ids are not emulated
        value: str | None = self._lookup(secret_id, extra[0] if extra else "")
        return value


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a registered task definition (resolved CloudFormation properties)."""

    family: str
    task_definition_arn: str
    region: str
    definition: dict[str, Any]
    volumes: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.definition["Name"])

    @property
    def label(self) -> str:
        return f"{self.family}/{self.name}"

    @property
    def command(self) -> list[str]:
        return [str(part) for part in self.definition.get("Command", [])]

    @property
    def environment(self) -> dict[str, str]:
        return {e["Name"]: str(e["Value"]) for e in self.definition.get("Environment", [])}

    @property
    def secrets(self) -> dict[str, str]:
        return {s["Name"]: str(s["ValueFrom"]) for s in self.definition.get("Secrets", [])}

    @property
    def ports(self) -> list[int]:
        return [int(p["ContainerPort"]) for p in self.definition.get("PortMappings", [])
                if p.get("Protocol", "tcp") == "tcp"]

    @property
    def writable_paths(self) -> list[str]:
        return [str(m["ContainerPath"]) for m in self.definition.get("MountPoints", [])
                if not m.get("ReadOnly") and m.get("SourceVolume") in self.volumes]

    @property
    def read_only_root(self) -> bool:
        return bool(self.definition.get("ReadonlyRootFilesystem"))

    @property
    def image(self) -> str:
        return str(self.definition.get("Image", ""))


@dataclass
class ContainerProcess:
    spec: ContainerSpec
    label: str
    popen: subprocess.Popen[bytes]
    environment: dict[str, str]
    ports: dict[int, int]  # container port -> local port
    binds: str
    log_path: Path
    log: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=400))
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ContainerError(f"{self.label} still running after {timeout:.0f}s") from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (what ECS sends on stop), then SIGKILL after the grace period."""
        if not self.alive():
            return
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(readable(line) for line in list(self.log)[-lines:])


class ContainerLauncher:
    def __init__(
        self, *, image: Image, ledger: Ledger, run_dir: Path, emf: EmfForwarder,
        secrets: SecretReader, substitutions: dict[str, str],
    ) -> None:
        self.image = image
        self.ledger = ledger
        self.run_dir = run_dir
        self.emf = emf
        self.secrets = secrets
        self.substitutions = substitutions
        self.enforce_read_only = os.geteuid() == 0
        self.running: list[ContainerProcess] = []
        #: Every process started, for the verbose report.
        self.started: list[ContainerProcess] = []
        #: Endpoint URLs the deployment gives containers -> their emulation (prefix match).
        self.url_substitutions: dict[str, str] = {}
        #: The same, for the containers of one task definition family only (a sidecar's
        #: localhost port answers inside its own task, nowhere else).
        self.task_url_substitutions: dict[str, dict[str, str]] = {}
        self._counter = 0
        self._lock = threading.Lock()
        ledger.emulate("the container runtime's own environment: PATH, HOME, LANG, HOSTNAME, "
                       "the image's ENV (its Dockerfile), and what ECS sets on Fargate "
                       "(AWS_REGION, AWS_DEFAULT_REGION, AWS_EXECUTION_ENV)")
        if self.enforce_read_only:
            ledger.emulate("the images' USER: each container runs as its Dockerfile's USER "
                           "(setpriv; it may read any host file, the image's files being the "
                           "host's here), and a task volume starts as ECS makes it: the "
                           "image's directory there if the image declares that VOLUME, else "
                           "an empty directory of root's, mode 0755")
        else:
            ledger.leave_out("read-only root filesystems and the images' USER: not enforced "
                             "(not running as root, so no private mount namespace, and every "
                             "container runs as the rehearsal's user)")

    # -- starting -----------------------------------------------------------------------------
    def start(
        self, spec: ContainerSpec, *, label: str | None = None, overrides: dict[str, str] | None
        = None, command: list[str] | None = None, stdin: bytes | None = None,
    ) -> ContainerProcess:
        label = label or spec.label
        environment, ports = self.environment_of(spec, overrides or {})
        argv = _rewrite_ports(command if command is not None else spec.command, ports)
        if not argv:
            raise ContainerError(f"{label}: the task definition has no command")
        binds = self._scratch_binds(spec, label)
        log_path = self.run_dir / "logs" / f"{_slug(label)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        popen = subprocess.Popen(
            self._wrap(spec, argv), env={**environment, "REHEARSAL_BINDS": binds},
            cwd=self.image.workdir, stdin=subprocess.PIPE if stdin is not None else
            subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = ContainerProcess(spec, label, popen, environment, ports, binds, log_path)
        threading.Thread(target=self._read, args=(process,), daemon=True).start()
        if stdin is not None and popen.stdin is not None:
            popen.stdin.write(stdin)
            popen.stdin.close()
        with self._lock:
            self.running.append(process)
            self.started.append(process)
        return process

    def environment_of(
        self, spec: ContainerSpec, overrides: dict[str, str]
    ) -> tuple[dict[str, str], dict[int, int]]:
        """The process environment, and the container ports' local ports."""
        declared = {**spec.environment, **overrides}
        for name, value_from in spec.secrets.items():
            value = self.secrets.read(value_from)
            if value is None:
                raise ContainerError(
                    f"{spec.label}: ResourceInitializationError: unable to retrieve secret "
                    f"{name} from {value_from}"
                )
            declared[name] = value
        declared = self._substitute_urls(declared, spec.family)
        unresolved = {k: v for k, v in declared.items() if placeholders_in(v)}
        if unresolved or placeholders_in(spec.command):
            named = ", ".join(f"{k}={v}" for k, v in unresolved.items()) or str(spec.command)
            raise ContainerError(f"{spec.label}: unresolved value(s) in the container: {named}")
        ports = {port: free_port("127.0.0.1") for port in spec.ports}
        for port, local in ports.items():
            for name, value in declared.items():
                if "PORT" in name.upper() and value == str(port):
                    declared[name] = str(local)
        environment = {
            "PATH": f"{self.image.bin}:{SYSTEM_PATH}", "HOME": str(self.image.workdir),
            "LANG": "C.UTF-8", "HOSTNAME": _slug(spec.label),
            **self.image.environment_of(spec.image),
            # What ECS sets in every Fargate task.
            "AWS_DEFAULT_REGION": spec.region, "AWS_REGION": spec.region,
            "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
            **declared,
            **self.substitutions,
        }
        return environment, ports

    def preview(self, spec: ContainerSpec) -> None:
        """Record the substitutions `spec` will get, before anything starts."""
        self._substitute_urls(spec.environment, spec.family)
        for port in spec.ports:
            self.ledger.substitute(
                f"container port {port} ({spec.label})", f"{port} on the task's awsvpc ENI",
                "a free 127.0.0.1 port per task, rewritten in the command and health check",
            )

    def _substitute_urls(self, declared: dict[str, str], family: str) -> dict[str, str]:
        """Endpoint URLs given to the container -> their emulation (WebSocket callbacks, its
        task's sidecars)."""
        result = dict(declared)
        substitutions = {**self.url_substitutions, **self.task_url_substitutions.get(family, {})}
        for name, value in declared.items():
            for prefix, replacement in substitutions.items():
                if value.rstrip("/").startswith(prefix.rstrip("/")):
                    result[name] = replacement
                    self.ledger.substitute(f"{name} (an AWS endpoint)", value, replacement)
        return result

    def _wrap(self, spec: ContainerSpec, argv: list[str]) -> list[str]:
        runtime = self.image.runtime_of(spec.image)
        if self.enforce_read_only and runtime.uid != 0:  # the mounts first, as root
            argv = ["setpriv", f"--reuid={runtime.uid}", f"--regid={runtime.gid}",
                    "--clear-groups", f"--inh-caps=+{_READ_THE_IMAGE}",
                    f"--ambient-caps=+{_READ_THE_IMAGE}", "--", *argv]
        if not (self.enforce_read_only and spec.read_only_root):
            return argv
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                _READ_ONLY_ROOT, "sh", *argv]

    def _scratch_binds(self, spec: ContainerSpec, label: str) -> str:
        with self._lock:
            self._counter += 1
            number = self._counter
        binds = []
        runtime = self.image.runtime_of(spec.image)
        for index, path in enumerate(spec.writable_paths):
            scratch = self.run_dir / "scratch" / f"{number:02d}-{_slug(label)}" / str(index)
            self._fresh_volume(scratch, runtime.fresh_volume(path))
            binds.append(f"{scratch}={path}")
        return " ".join(binds)

    def _fresh_volume(self, scratch: Path, directories: list[Directory]) -> None:
        """A task volume as ECS starts it (top directory first). Owners only as root: a user
        cannot give files away, and its processes run as itself anyway."""
        top = directories[0].path
        for directory in directories:
            target = scratch / directory.path.relative_to(top)
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(directory.mode)
            if self.enforce_read_only:
                os.chown(target, directory.uid, directory.gid)

    def _read(self, process: ContainerProcess) -> None:
        assert process.popen.stdout is not None
        with process.log_path.open("a", encoding="utf-8") as file:
            for raw in process.popen.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if self.emf.handle(line):
                    continue
                process.log.append(line)
                file.write(line + "\n")
                file.flush()

    # -- checks -------------------------------------------------------------------------------
    def health_check(self, process: ContainerProcess, timeout_s: float = 120.0) -> str:
        """Run the container's HealthCheck.Command until it passes; its output on failure."""
        check = process.spec.definition.get("HealthCheck")
        if not check:
            raise ContainerError(f"{process.label} declares no health check")
        kind, *rest = [str(part) for part in check["Command"]]
        argv = ["sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest
        argv = _rewrite_ports(argv, process.ports)
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if not process.alive():
                raise ContainerError(
                    f"{process.label} exited with {process.popen.returncode} before its health "
                    f"check passed"
                )
            done = subprocess.run(
                self._wrap(process.spec, argv),
                env={**process.environment, "REHEARSAL_BINDS": process.binds},
                cwd=self.image.workdir, capture_output=True, timeout=30, check=False,
            )
            if done.returncode == 0:
                return " ".join(argv[-1:])[:80]
            last = (done.stdout + done.stderr).decode(errors="replace").strip()[-300:]
            time.sleep(1.0)
        raise ContainerError(f"{process.label}: health check failed for {timeout_s:.0f}s: {last}")

    def stop_all(self) -> None:
        with self._lock:
            running, self.running = list(self.running), []
        for process in running:
            process.kill(signal.SIGTERM)
        for process in running:
            try:
                process.stop(grace_s=5)
            except Exception as exc:  # cleaning up: go on with the others
                print(f"warning: stopping {process.label}: {exc}")


def readable(line: str, width: int = 400) -> str:
    """A JSON log line as `time level logger: message` (+ an exception's last line)."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and "message" in record:
            text = (f"{str(record.get('time', ''))[11:23]} {record.get('level', '')} "
                    f"{record.get('logger', '')}: {record['message']}")
            exception = str(record.get("exception") or "").strip()
            if exception:
                text += " | " + exception.splitlines()[-1]
            line = text
    line = line.replace("\n", " | ")
    return line if len(line) <= width else line[: width - 3] + "..."


def _rewrite_ports(argv: list[str], ports: dict[int, int]) -> list[str]:
    rewritten = []
    for arg in argv:
        for port, local in ports.items():
            exact = arg == str(port)
            arg = str(local) if exact else re.sub(rf"(?<=[:=]){port}\b", str(local), arg)
        rewritten.append(arg)
    return rewritten


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def container_specs(deployed_task_definition: Any) -> list[ContainerSpec]:
    """The app containers of a deployed task definition (sidecars from public images aside)."""
    props = deployed_task_definition.properties
    volumes = tuple(str(v["Name"]) for v in props.get("Volumes", []))
    family = str(deployed_task_definition.physical.attributes.get("Family", ""))
    return [
        ContainerSpec(family, str(deployed_task_definition.physical.ref),
                      deployed_task_definition.stack.region, definition, volumes)
        for definition in props.get("ContainerDefinitions", [])
    ]
