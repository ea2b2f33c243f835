"""botocore's failures that mean "AWS cannot be reached now", as ``ServiceUnavailable``.

Shared by the adapters on AWS: SQS (``dependency="queue"``), S3 (``"storage"``), DynamoDB
(``"sessions"``) and Secrets Manager (``"secrets"``). All sit on botocore, whose own retries
have already been spent when one of these reaches us. An
outage is a transport failure (refused, reset, timed out, TLS, a proxy) or an answer that says
"later" (5xx, throttling). Anything else (a missing queue, a denied call, a bad request) is a
fault of ours or of the deployment and is raised as it is.

The message names the error class only: botocore's own messages hold the endpoint URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from textnlp.errors import ServiceUnavailable

#: Error codes of AWS answers that mean "try again later" whatever their HTTP status.
RETRY_LATER_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestThrottled",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "AWS.SimpleQueueService.ServiceUnavailable",
    }
)


def is_aws_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (from boto3 or botocore) means the service cannot be reached now."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in RETRY_LATER_CODES or status >= 500
    from boto3.exceptions import S3UploadFailedError

    if isinstance(exc, S3UploadFailedError):  # the transfer manager wraps what failed
        cause = exc.__cause__ or exc.__context__
        return cause is not None and is_aws_outage(cause)
    return False


@contextmanager
def aws_unavailable(dependency: str, service: str) -> Iterator[None]:
    """Raise ``ServiceUnavailable(dependency=...)`` for an AWS outage inside the block."""
    try:
        yield
    except ServiceUnavailable:
        raise
    except Exception as exc:
        if not is_aws_outage(exc):
            raise
        raise ServiceUnavailable(
            f"cannot reach {service}: {_reason(exc)}", dependency=dependency
        ) from exc


def _reason(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__
