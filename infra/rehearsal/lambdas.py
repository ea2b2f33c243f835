"""Lambda functions from their synthesised assets, each in a warm, clean interpreter.

The interpreter is `python -I -S` with `sys.path` = the asset + a "Lambda runtime" directory
holding only boto3, botocore and their pure-Python dependencies (what AWS's Python runtime
provides), so an import the asset does not ship fails here as it would in AWS. One interpreter
per function stays up between invocations, like a warm container, with the function's resolved
environment, what the Lambda service sets, and the rehearsal's substitutions.
"""

from __future__ import annotations

import collections
import json
import select
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehearsal.deploy import Deployed
from rehearsal.ledger import Ledger
from rehearsal.template import placeholders_in

RUNNER = Path(__file__).with_name("lambda_runner.py")
#: What AWS's Python runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six.py",
                    "urllib3")


class LambdaError(RuntimeError):
    pass


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    code: str
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int
    region: str
    runtime: str

    @classmethod
    def from_deployed(cls, deployed: Deployed) -> FunctionSpec:
        props = deployed.properties
        return cls(
            name=str(deployed.physical.ref), arn=str(deployed.physical.attributes["Arn"]),
            handler=str(props.get("Handler", "")),
            code=str(deployed.physical.attributes["Rehearsal.Code"]),
            environment={k: str(v) for k, v in
                         props.get("Environment", {}).get("Variables", {}).items()},
            timeout_s=float(props.get("Timeout", 3)), memory_mb=int(props.get("MemorySize", 128)),
            region=deployed.stack.region, runtime=str(props.get("Runtime", "")),
        )


@dataclass(frozen=True)
class Invocation:
    ok: bool
    result: Any = None
    error_type: str = ""
    error_message: str = ""

    @property
    def error(self) -> str:
        return f"{self.error_type}: {self.error_message}"


@dataclass
class WarmFunction:
    spec: FunctionSpec
    runtime_dir: Path
    substitutions: dict[str, str]
    log: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=300))
    invocations: int = 0
    cold_starts: int = 0
    _popen: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def environment(self) -> dict[str, str]:
        spec = self.spec
        unresolved = {k: v for k, v in spec.environment.items() if placeholders_in(v)}
        if unresolved:
            raise LambdaError(f"{spec.name}: unresolved environment: {unresolved}")
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC",
            "AWS_REGION": spec.region, "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}", "LAMBDA_TASK_ROOT": spec.code,
            "_HANDLER": spec.handler,
            **spec.environment,
            **self.substitutions,
            "REHEARSAL_TIMEOUT_S": str(spec.timeout_s), "REHEARSAL_FUNCTION_ARN": spec.arn,
        }

    def invoke(self, event: Any) -> Invocation:
        with self._lock:
            self.invocations += 1
            if self._popen is None or self._popen.poll() is not None:
                self._cold_start()
            assert self._popen is not None and self._popen.stdin is not None
            self._popen.stdin.write((json.dumps(event) + "\n").encode())
            self._popen.stdin.flush()
            answer = self._answer(self.spec.timeout_s + 5)
            if answer is None:
                self._kill()
                return Invocation(False, error_type="Sandbox.Timedout",
                                  error_message=f"Task timed out after {self.spec.timeout_s}s")
        if answer.get("ok"):
            return Invocation(True, answer.get("result"))
        return Invocation(False, error_type=str(answer.get("errorType")),
                          error_message=str(answer.get("errorMessage")))

    def _cold_start(self) -> None:
        self.cold_starts += 1
        self._popen = subprocess.Popen(
            [sys.executable, "-I", "-S", str(RUNNER), self.spec.code, str(self.runtime_dir),
             self.spec.handler],
            env=self.environment(), cwd=self.spec.code, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        ready = self._answer(60)
        if ready is None:
            self._kill()
            raise LambdaError(f"{self.spec.name}: the runtime did not start\n{self.log_tail()}")
        if ready.get("init"):
            init = ready["init"]
            self.log.append(f"INIT {init['errorType']}: {init['errorMessage']}")

    def _answer(self, timeout_s: float) -> dict[str, Any] | None:
        assert self._popen is not None and self._popen.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self._popen.stdout], [], [], 0.2)
            if readable:
                line = self._popen.stdout.readline()
                if not line:
                    return None
                answer: dict[str, Any] = json.loads(line)
                return answer
            if self._popen.poll() is not None:
                return None
        return None

    def _read_log(self) -> None:
        popen = self._popen
        assert popen is not None and popen.stderr is not None
        for raw in popen.stderr:
            self.log.append(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def _kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait(timeout=10)
        self._popen = None

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self.log)[-lines:])


class LambdaService:
    def __init__(self, run_dir: Path, ledger: Ledger, substitutions: dict[str, str]) -> None:
        self.runtime_dir = build_runtime(run_dir / "lambda-runtime")
        self.substitutions = substitutions
        self._functions: dict[str, WarmFunction] = {}
        self._specs: dict[str, FunctionSpec] = {}
        ledger.emulate("the Lambda runtime's own environment: AWS_REGION, AWS_DEFAULT_REGION, "
                       "AWS_LAMBDA_FUNCTION_NAME/VERSION/MEMORY_SIZE, AWS_EXECUTION_ENV, "
                       "LAMBDA_TASK_ROOT, _HANDLER, TZ")
        ledger.leave_out(
            "Lambda: the python3.12 runtime runs on the machine's Python "
            f"{sys.version_info.major}.{sys.version_info.minor}; VPC placement, reserved "
            "concurrency and X-Ray tracing are not emulated"
        )

    def register(self, spec: FunctionSpec) -> None:
        self._specs[spec.name] = spec
        self._specs[spec.arn] = spec

    def function(self, name_or_arn: str) -> WarmFunction:
        spec = self._specs.get(name_or_arn)
        if spec is None:
            raise LambdaError(f"no function {name_or_arn} in the templates")
        if spec.name not in self._functions:
            self._functions[spec.name] = WarmFunction(spec, self.runtime_dir, self.substitutions)
        return self._functions[spec.name]

    def invoke(self, name_or_arn: str, event: Any) -> Invocation:
        return self.function(name_or_arn).invoke(event)

    def stop_all(self) -> None:
        for function in self._functions.values():
            function.stop()


def build_runtime(directory: Path) -> Path:
    """A directory with only boto3 and its dependencies (links into the venv)."""
    site = Path(sysconfig.get_paths()["purelib"])
    directory.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        source, link = site / name, directory / name
        if not source.exists():
            raise LambdaError(f"the Lambda runtime needs {name}, missing from {site}")
        if not link.exists():
            link.symlink_to(source)
    return directory
