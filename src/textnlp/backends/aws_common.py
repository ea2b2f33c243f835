"""What the Bedrock and SageMaker backends share: ``AwsRuntimeBackend`` (a boto3 runtime client
and the thread pool its calls run in), the mapping of AWS errors to the error tree, and
iterating a blocking EventStream from async code.

boto3 is synchronous: calls run in ``asyncio.to_thread``; a stream is read in a thread that
hands events to the event loop through an ``asyncio.Queue``. botocore's own retries are off
(``total_max_attempts: 1``): ``resilience.Resilience`` is the one place that retries.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncGenerator, Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from textnlp.backends.base import installed
from textnlp.backends.cloud import CloudBackend, CloudContext
from textnlp.backends.options import AwsOptions
from textnlp.backends.providers.http_errors import (
    deployment_fault,
    error_class,
    mentions_context,
    told,
)
from textnlp.errors import (
    AuthFailed,
    BackendError,
    BackendUnavailable,
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
    Timeout,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: An AWS account id in an error message (an ARN, "Endpoint e of account N"): not the user's.
_ACCOUNT = re.compile(r"(?<!\d)\d{12}(?!\d)")
#: SageMaker's trailer "See https://<region>.console.aws.amazon.com/...<endpoint> in account N
#: for more information.": the deployment's whereabouts, not the caller's.
_CONSOLE_LINK = re.compile(r"\s*See https://\S+ in account \S+ for more information\.?")
_MISSING_ENDPOINT = re.compile(r"^Endpoint \S+ of account \S+ not found")
#: An address in botocore's own errors ("Could not connect to the endpoint URL: "https://vpce-...
#: .amazonaws.com/..."", urllib3's "HTTPSConnectionPool(host='10.0.3.7', port=443)"): where the
#: deployment's endpoints, VPC endpoints and proxies live, not the caller's.
_URL = re.compile(r"""["']?\b[a-z][a-z0-9+.-]*://[^\s"']+["']?""", re.IGNORECASE)
_HOST = re.compile(r"""\bhost=["'][^"']*["'](, port=\d+)?""")

#: AWS error codes (Bedrock Runtime and SageMaker Runtime API references, "Errors").
CODES: dict[str, type[BackendError]] = {
    "ThrottlingException": RateLimited,
    "TooManyRequestsException": RateLimited,
    "ServiceQuotaExceededException": RateLimited,
    "ModelTimeoutException": Timeout,
    "AccessDeniedException": AuthFailed,
    "UnrecognizedClientException": AuthFailed,
    "ExpiredTokenException": AuthFailed,
    "InvalidSignatureException": AuthFailed,
    "ValidationException": InvalidRequest,
    "ValidationError": InvalidRequest,
    # The model or endpoint the catalogue names does not exist: the deployment's fault.
    "ResourceNotFoundException": BackendUnavailable,
    "ModelNotReadyException": BackendUnavailable,
    "ServiceUnavailableException": BackendUnavailable,
    "ServiceUnavailable": BackendUnavailable,
    "InternalServerException": BackendUnavailable,
    "InternalFailure": BackendUnavailable,
    "InternalDependencyException": BackendUnavailable,
    "InternalStreamFailure": BackendUnavailable,
    "ModelStreamErrorException": BackendUnavailable,
    "ModelStreamError": BackendUnavailable,
}


def make_client(service: str, options: AwsOptions, context: CloudContext) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        read_timeout=options.timeout_s or context.timeout_s,
        connect_timeout=context.connect_timeout_s,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=options.max_connections,
    )
    return boto3.session.Session().client(
        service,
        region_name=options.region or context.aws_region,
        endpoint_url=options.endpoint_url or context.aws_endpoint_url,
        config=config,
    )


def without_account_ids(text: str) -> str:
    """``text`` with AWS account ids (in ARNs, "of account N") replaced: a job's error or an
    answer's message is the user's to read, the account is the deployment's."""
    return _ACCOUNT.sub("<account>", text)


def without_endpoints(text: str) -> str:
    """``text`` with URLs and hosts replaced: a caller reads that the endpoint failed, the log
    where it is."""
    return _HOST.sub("host=<endpoint>", _URL.sub("<endpoint>", text))


NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)


def aws_credentials_missing() -> str | None:
    """Why boto3 finds no credentials here (None: it finds some, from the environment, the
    shared files, SSO, or a container or instance role)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        found = boto3.session.Session().get_credentials()
    except BotoCoreError as exc:  # a profile that does not exist, a config file that does not parse
        return f"its AWS credentials cannot be read: {exc}"
    return None if found is not None else NO_CREDENTIALS


def map_aws_error(exc: Exception, *, backend: str, model: str) -> BackendError:
    """A botocore exception as an error of the tree (the message never holds credentials)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        EventStreamError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    where = {"backend": backend, "model": model}
    if isinstance(exc, ClientError):  # EventStreamError is one too
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = _CONSOLE_LINK.sub("", str(error.get("Message", ""))) or str(exc)
        # Error events inside a stream spell their codes lowerCamel (throttlingException).
        if isinstance(exc, EventStreamError) and code[:1].islower():
            code = code[:1].upper() + code[1:]
        cls = _class_for(code, message, exc.response)
        summary = deployment_fault(400, message) or "the service refused or failed the call"
        text = told(cls, without_account_ids(message), summary)
        return cls(f"{code}: {text}", code=code, **where)
    if isinstance(exc, NoCredentialsError):
        return AuthFailed(NO_CREDENTIALS, **where)
    # botocore's own errors name the endpoint (a VPC endpoint, an internal host, a proxy): the
    # log keeps it, the message that reaches callers and jobs says what failed, not where.
    log.warning("%s model %s: %s: %s", backend, model, type(exc).__name__, exc)
    said = without_account_ids(without_endpoints(str(exc)))
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return Timeout(f"no answer in time: {said}", **where)
    if isinstance(exc, EndpointConnectionError):
        return BackendUnavailable(f"cannot connect: {said}", **where)
    return BackendUnavailable(f"{type(exc).__name__}: {said}", **where)


def _class_for(code: str, message: str, response: dict[str, Any]) -> type[BackendError]:
    if code == "ModelError":
        # SageMaker: the container answered non-200; its own status says what happened.
        original = response.get("OriginalStatusCode") or response.get("Error", {}).get(
            "OriginalStatusCode"
        )
        status = int(original) if str(original or "").isdigit() else 500
        return error_class(status, message + " " + str(response.get("OriginalMessage", "")))
    cls = CODES.get(code)
    if _MISSING_ENDPOINT.search(message):  # SageMaker's ValidationError for a deleted endpoint
        return BackendUnavailable
    if cls is None:
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        cls = error_class(status, message)
    if cls is InvalidRequest and deployment_fault(400, message) is not None:
        return BackendUnavailable  # the catalogue's model id, not the caller's request
    if cls is InvalidRequest and mentions_context(message):
        return ContextWindowExceeded
    return cls


def thread_pool(options: AwsOptions, name: str) -> ThreadPoolExecutor:
    """Threads for one backend's blocking calls: as many as its connection pool, so that
    concurrency is not capped by the event loop's small default executor."""
    return ThreadPoolExecutor(
        max_workers=options.max_connections,
        thread_name_prefix=f"textnlp-{name}",
    )


async def call_in_thread(
    call: Callable[[], T], *, backend: str, model: str, pool: Executor | None = None
) -> T:
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, call)
    except BackendError:
        raise
    except Exception as exc:
        if _is_botocore(exc):
            raise map_aws_error(exc, backend=backend, model=model) from exc
        raise


def _is_botocore(exc: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError)


_END = object()


async def iterate_in_thread(
    open_events: Callable[[], Iterable[T]],
    *,
    backend: str,
    model: str,
    pool: Executor | None = None,
) -> AsyncGenerator[T, None]:
    """Events of a blocking stream, read in a worker thread, as an async generator.

    Closing the generator early (the caller stopped reading) tells the thread to stop and
    close the underlying stream.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def pump() -> None:
        stream: Any = None
        try:
            stream = open_events()
            for event in stream:
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except Exception as exc:  # handed to the reader, mapped there
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            close = getattr(stream, "close", None)
            if stop.is_set() and callable(close):
                close()
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    worker = loop.run_in_executor(pool, pump)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if isinstance(item, BackendError):
                raise item
            if isinstance(item, Exception):
                if _is_botocore(item):
                    raise map_aws_error(item, backend=backend, model=model) from item
                raise item
            yield item
    finally:
        # Never wait here: the thread may be blocked on the network; it stops at its next event.
        stop.set()
        del worker


class AwsRuntimeBackend(CloudBackend):
    """A model behind an AWS runtime API (``service``): its client and the threads its blocking
    calls run in, opened on load and closed with the backend."""

    #: The boto3 service name (``bedrock-runtime``, ``sagemaker-runtime``).
    service: ClassVar[str]
    options_model: ClassVar[type[AwsOptions]] = AwsOptions
    _client: Any = None
    _pool: ThreadPoolExecutor | None = None

    @cached_property
    def options(self) -> AwsOptions:
        """The catalogue entry's options (checked when the catalogue was read)."""
        return self.options_model.of(self.spec)

    @classmethod
    def availability(cls, spec: Any) -> tuple[bool, str]:
        if not installed("boto3"):
            return False, "boto3 is not installed (pip install 'textnlp[aws]')"
        return True, ""

    @classmethod
    def credentials_missing(cls) -> str | None:
        return aws_credentials_missing()

    async def _open(self, context: CloudContext) -> None:
        if self._pool is None:
            self._pool = thread_pool(self.options, self.name)
        if self._client is None:
            self._client = await asyncio.to_thread(make_client, self.service, self.options, context)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _where(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.spec.id, "pool": self._pool}
