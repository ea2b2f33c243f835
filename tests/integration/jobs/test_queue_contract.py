"""One contract for every JobQueue: the database queue (SQLite, PostgreSQL) and SQS (moto)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.job_stores import aws_client
from tests.support.queues import private_queues
from textnlp.adapters.queue import JobQueue, open_queues
from textnlp.adapters.queue.sqs import ensure_sqs_queues
from textnlp.config import load_settings

VT = 2  # short visibility timeout so that expiry can be watched


@pytest.fixture(params=["sqlite", "postgres", "sqs"])
def queue(request: pytest.FixtureRequest, aws_env: str) -> Iterator[JobQueue]:
    kind = request.param
    suffix = uuid.uuid4().hex[:8]
    marker = request.node.get_closest_marker("visibility")
    visibility = marker.args[0] if marker else VT
    overrides: dict[str, Any] = {
        "queue": {
            "backend": "sqs" if kind == "sqs" else "local",
            **private_queues(suffix),
            "visibility_timeout_s": visibility,
            "wait_time_s": 1,
        },
        "aws": {"endpoint_url": aws_env},
    }
    settings = load_settings(**overrides)
    if kind == "sqs":
        client = aws_client("sqs", aws_env)
        ensure_sqs_queues(client, settings)
        queues = open_queues(settings, None, client=client)  # type: ignore[arg-type]
        yield queues.generation
        return
    engine = request.getfixturevalue("sqlite_engine" if kind == "sqlite" else "pg_engine")
    queues = open_queues(settings, engine)
    yield queues.generation


def receive_one(queue: JobQueue, wait_s: float = 3.0) -> Any:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        got = queue.receive(1, wait_s=1)
        if got:
            return got[0]
    return None


def test_send_receive_delete(queue: JobQueue) -> None:
    queue.send('{"job_id": "a"}', group_id="a", dedup_id="a")
    message = receive_one(queue)
    assert message is not None and json.loads(message.body) == {"job_id": "a"}
    assert message.receive_count == 1
    assert queue.receive(1) == []  # invisible while in flight
    queue.delete(message)
    time.sleep(VT + 0.5)
    assert queue.receive(1) == []


def test_message_reappears_after_visibility_timeout(queue: JobQueue) -> None:
    queue.send("x", group_id="g", dedup_id="x1")
    first = receive_one(queue)
    assert first is not None
    time.sleep(VT + 0.5)
    second = receive_one(queue)
    assert second is not None and second.id == first.id and second.receive_count == 2
    queue.delete(second)


def test_extend_keeps_message_invisible(queue: JobQueue) -> None:
    queue.send("x", group_id="g", dedup_id="x2")
    message = receive_one(queue)
    assert message is not None
    queue.extend(message, 10)
    time.sleep(VT + 0.5)
    assert queue.receive(1) == []
    queue.release(message)
    again = receive_one(queue)
    assert again is not None and again.id == message.id
    queue.delete(again)


def test_a_message_released_with_a_delay_waits_it_out(queue: JobQueue) -> None:
    queue.send("later", group_id="g", dedup_id="later1")
    message = receive_one(queue)
    assert message is not None
    released = time.monotonic()
    queue.release(message, 4)
    again = receive_one(queue, wait_s=15)
    assert again is not None and again.id == message.id and again.receive_count == 2
    assert time.monotonic() - released >= 3.5  # not before its delay (SQS counts whole seconds)
    queue.delete(again)


def test_duplicate_dedup_id_is_dropped(queue: JobQueue) -> None:
    queue.send("same", group_id="g", dedup_id="d1")
    queue.send("same", group_id="g", dedup_id="d1")
    message = receive_one(queue)
    assert message is not None
    queue.delete(message)
    assert queue.receive(1, wait_s=1) == []


def test_redrive_to_dead_letter_queue_after_max_receives(queue: JobQueue) -> None:
    queue.send("poison", group_id="p", dedup_id="p1")
    for attempt in range(1, queue.max_receives + 1):
        message = receive_one(queue)
        assert message is not None and message.receive_count == attempt
        queue.release(message)
    assert receive_one(queue, wait_s=2) is None  # moved to the DLQ on this receive
    dead = queue.dead_letters(10)
    assert [m.body for m in dead] == ["poison"]


def test_a_hand_back_never_moves_a_message_towards_the_dead_letter_queue(
    queue: JobQueue,
) -> None:
    queue.send("stopped", group_id="s", dedup_id="s1")
    for _ in range(queue.max_receives + 2):  # more hand-backs than receives allowed
        message = receive_one(queue)
        assert message is not None and message.body == "stopped"
        assert message.receive_count == 1  # the hand-back did not count the last receive
        queue.hand_back(message)
    last = receive_one(queue)
    assert last is not None
    queue.delete(last)
    assert queue.receive(1, wait_s=1) == [] and queue.dead_letters(10) == []


def test_dead_letter_explicitly(queue: JobQueue) -> None:
    queue.send("not json", group_id="m", dedup_id="m1")
    message = receive_one(queue)
    assert message is not None
    queue.dead_letter(message, "malformed message")
    assert queue.receive(1, wait_s=1) == []
    dead = queue.dead_letters(10)
    assert len(dead) == 1 and "not json" in dead[0].body


# Long enough that no message can time out between its receive and its delete, even on a
# loaded machine (with 2 s, a redelivery is correct at-least-once behaviour, not sharing).
@pytest.mark.visibility(60)
def test_concurrent_receivers_never_share_a_message(queue: JobQueue) -> None:
    for i in range(20):
        queue.send(f"m{i}", group_id=f"g{i}", dedup_id=f"c{i}")
    seen: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        idle = 0
        while idle < 2:
            got = queue.receive(2, wait_s=1)
            if not got:
                idle += 1
                continue
            for message in got:
                with lock:
                    seen.append(message.body)
                queue.delete(message)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(seen) == sorted(f"m{i}" for i in range(20))
