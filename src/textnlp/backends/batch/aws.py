"""What the AWS batch providers share: a control-plane client (``bedrock``, ``sagemaker``)
whose blocking calls run in a thread, their errors mapped to the error tree."""

from __future__ import annotations

from typing import Any

from textnlp.backends.aws_common import call_in_thread
from textnlp.errors import BackendError


class AwsControl:
    def __init__(self, client: Any, *, backend: str, model: str) -> None:
        self.client = client
        self.backend = backend
        self.model = model

    async def call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        method = getattr(self.client, operation)
        answer: dict[str, Any] = await call_in_thread(
            lambda: method(**arguments), backend=self.backend, model=self.model
        )
        return answer

    def close(self) -> None:
        self.client.close()


def error_code(exc: BackendError) -> str:
    """The AWS error code an error of the tree was mapped from ("" when none)."""
    return str(exc.details.get("code") or "")
