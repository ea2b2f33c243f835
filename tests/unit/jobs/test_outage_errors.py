"""What counts as an outage, how it is waited out, and how the API shows it (no network)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from textnlp.adapters.aws_outage import is_aws_outage
from textnlp.adapters.db.base import make_engine
from textnlp.adapters.queue.sqs import SqsQueue
from textnlp.adapters.storage.s3 import S3Storage
from textnlp.api.errors import error_for, ws_error_message
from textnlp.errors import BackendUnavailable, ConfigError, ServiceUnavailable
from textnlp.worker.outages import Patience, is_outage

ENDPOINT = "http://10.1.2.3:4566/"


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


class Unreachable:
    """A boto3 client whose every call fails like an endpoint that is not there."""

    class exceptions:  # noqa: N801 - the shape of a boto3 client's ``exceptions``
        class QueueDoesNotExist(Exception):
            pass

        class NoSuchKey(Exception):
            pass

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url=ENDPOINT)

        return call


def test_what_counts_as_an_aws_outage() -> None:
    assert is_aws_outage(EndpointConnectionError(endpoint_url=ENDPOINT))
    assert is_aws_outage(ReadTimeoutError(endpoint_url=ENDPOINT))
    assert is_aws_outage(client_error("SlowDown", 503))
    assert is_aws_outage(client_error("ThrottlingException", 400))
    assert is_aws_outage(client_error("InternalError", 500))
    assert not is_aws_outage(client_error("AccessDenied", 403))
    assert not is_aws_outage(client_error("NoSuchKey", 404))
    assert not is_aws_outage(ValueError("no"))


def test_sqs_and_s3_outages_are_service_unavailable_without_the_endpoint() -> None:
    queue = SqsQueue(Unreachable(), "jobs.fifo", dead_letter_queue="dlq.fifo")
    with pytest.raises(ServiceUnavailable) as caught:
        queue.receive(1)
    assert caught.value.details == {"dependency": "queue"}
    assert "10.1.2.3" not in caught.value.message
    storage = S3Storage(Unreachable(), "bucket")
    for call in (
        lambda: storage.get_bytes("generated/x.jsonl"),
        lambda: storage.put_bytes("generated/x.jsonl", b"x"),
        lambda: storage.exists("generated/x.jsonl"),
    ):
        with pytest.raises(ServiceUnavailable) as caught:
            call()
        assert caught.value.details == {"dependency": "storage"}
        assert "10.1.2.3" not in caught.value.message


def test_a_database_that_cannot_be_opened_is_unavailable_a_bad_statement_is_not(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    engine = make_engine(f"sqlite:///{directory}")  # a directory: the file cannot be opened
    with pytest.raises(ServiceUnavailable) as caught, engine.connect():
        pass
    assert caught.value.details == {"dependency": "database"}
    working = make_engine(f"sqlite:///{tmp_path / 'ok.db'}")
    with pytest.raises(OperationalError), working.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table"))  # a fault of ours: not a 503


def test_is_outage() -> None:
    assert is_outage(ServiceUnavailable("down", dependency="database"))
    assert is_outage(RedisConnectionError("refused"))
    assert not is_outage(BackendUnavailable("the model server is down"))  # a job's attempt
    assert not is_outage(RuntimeError("a bug"))
    assert not is_outage(ConfigError("bad settings"))


def test_patience_waits_out_an_outage_and_nothing_else() -> None:
    async def go() -> None:
        patience = Patience(asyncio.Event(), first_s=0.01, longest_s=0.02)
        calls: list[int] = []

        async def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise ServiceUnavailable("down", dependency="database")
            return "ok"

        assert await patience.call("test", flaky) == "ok" and len(calls) == 3

        async def buggy() -> None:
            calls.append(1)
            raise RuntimeError("a bug")

        calls.clear()
        with pytest.raises(RuntimeError):
            await patience.call("test", buggy)
        assert len(calls) == 1

    asyncio.run(go())


def test_a_stop_ends_the_wait_at_once_with_the_outage() -> None:
    async def go() -> None:
        stop = asyncio.Event()
        patience = Patience(stop, first_s=3600.0, longest_s=3600.0)  # an hour's backoff

        async def down() -> None:
            raise ServiceUnavailable("down", dependency="queue")

        asyncio.get_running_loop().call_later(0.2, stop.set)
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(patience.call("test", down), timeout=60)

    asyncio.run(go())


def test_the_api_answers_an_outage_with_503_retry_after_and_no_address() -> None:
    outage = ServiceUnavailable(
        "cannot reach the database at 10.0.0.5:5432: connection refused", dependency="database"
    )
    status, body, headers = error_for(outage)
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert body == {
        "type": "service_unavailable",
        "message": "the database is unavailable; retry later",
        "dependency": "database",
    }
    socket_error = ws_error_message(outage)["error"]
    assert socket_error["status"] == 503 and "10.0.0.5" not in str(socket_error)
    status, _, headers = error_for(BackendUnavailable("model server down", backend="x", model="y"))
    assert status == 503 and "Retry-After" in headers
