"""Two publishers of the job outbox at once (the API after a submit, every worker's loop) on
the real PostgreSQL: a message is sent once. The batch and validation queues are standard SQS
queues, which do not deduplicate: a second send is a second worker running the same job."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import Engine

from textnlp.adapters.db.job_store import JobStore, NewJob, PendingMessage


def test_two_publishers_send_each_message_once(pg_engine: Engine) -> None:
    store = JobStore(pg_engine)
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, "owner", {"template": "t", "count": 10}, "batch", 10, "{}"))
    sent: list[str] = []
    first_sending, second_done = threading.Event(), threading.Event()

    def slow_send(message: PendingMessage) -> bool:
        first_sending.set()
        second_done.wait(10)  # the other publisher runs while this one is mid-send
        sent.append(message.job_id)
        return True

    def send(message: PendingMessage) -> bool:
        sent.append(message.job_id)
        return True

    first = threading.Thread(target=lambda: store.send_pending(slow_send))
    first.start()
    assert first_sending.wait(10)
    assert store.send_pending(send) == 0  # held by the first: skipped, not sent again
    second_done.set()
    first.join(10)
    assert sent == [job_id]
    assert store.pending_messages() == []


def test_a_send_that_fails_leaves_the_message_for_the_next_publisher(pg_engine: Engine) -> None:
    store = JobStore(pg_engine)
    job_id = uuid.uuid4().hex
    store.create(NewJob(job_id, "owner", {"template": "t", "count": 10}, "batch", 10, "{}"))
    assert store.send_pending(lambda message: False) == 0
    assert [m.job_id for m in store.pending_messages()] == [job_id]
    assert store.send_pending(lambda message: True) == 1
    assert store.pending_messages() == []
