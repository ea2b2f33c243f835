"""A warm Lambda container: runs inside a clean interpreter (`python -I -S`), one per function.

    python -I -S lambda_runner.py <asset dir> <runtime dir> <module.handler>

`sys.path` is the asset, the "Lambda runtime" directory (boto3 and its pure-Python
dependencies) and the standard library: nothing else of the machine. The handler is imported
once (the cold start); events arrive as JSON lines on stdin, answers leave as JSON lines on the
original stdout, and everything the handler prints or logs goes to stderr (its log). Standard
library only: this file runs where nothing else is importable.
"""

import importlib
import json
import logging
import os
import sys
import time
import traceback
import uuid


class Context:
    """The parts of the Lambda context object handlers use."""

    def __init__(self, timeout_s: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = os.environ.get("REHEARSAL_FUNCTION_ARN", "")
        self.log_group_name = "/aws/lambda/" + self.function_name
        self.log_stream_name = "rehearsal"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException) -> dict[str, object]:
    return {"ok": False, "errorType": type(exc).__name__, "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__)}


def main() -> None:
    asset, runtime, handler_name = sys.argv[1:4]
    stdlib = [p for p in sys.path if p.startswith(sys.base_prefix) and "site-packages" not in p]
    sys.path[:] = [asset, runtime, *stdlib]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints (and C-level writes) go to its log
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="[%(levelname)s] %(name)s: %(message)s")
    timeout_s = float(os.environ.get("REHEARSAL_TIMEOUT_S", "3"))
    module_name, _, function_name = handler_name.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        init_error = None
    except Exception as exc:  # Lambda reports it on every invocation: Runtime.ImportModuleError
        handler, init_error = None, {**_error(exc), "errorType": "Runtime.ImportModuleError"}
    protocol.write(json.dumps({"ready": init_error is None, "init": init_error}) + "\n")
    for line in sys.stdin:
        event = json.loads(line)
        if init_error is not None:
            answer = init_error
        else:
            try:
                answer = {"ok": True, "result": handler(event, Context(timeout_s))}
            except Exception as exc:
                answer = _error(exc)
        sys.stderr.flush()
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
