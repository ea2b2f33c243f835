"""A heartbeat that cannot extend its message during an outage says so once, and once when it
can again: it logged a warning every second of a database outage (17 in 25 s)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from textnlp.adapters.queue import QueueMessage
from textnlp.errors import ServiceUnavailable
from textnlp.worker.holding import Heartbeat


class FlakyQueue:
    """A queue whose first ``failures`` extensions fail as an outage does."""

    visibility_timeout_s = 30

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.extended = 0

    def extend(self, message: QueueMessage, timeout_s: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ServiceUnavailable("cannot reach the database", dependency="database")
        self.extended += 1


async def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    queue = FlakyQueue(failures=6)
    message = QueueMessage(id="m1", body="{}", receipt="r", receive_count=1, queue="q")
    beat = Heartbeat(queue, message, interval_s=0.01).start()  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="textnlp.worker.holding"):
        while queue.extended < 2:
            await asyncio.sleep(0.01)
        await beat.stop()
    said = [r.getMessage() for r in caplog.records]
    assert len([s for s in said if s.startswith("could not extend message m1")]) == 1, said
    assert said.count("extending message m1 again") == 1
