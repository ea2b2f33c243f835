"""A batch job's states: the one list the database, the services, the console and the CLI share."""

from __future__ import annotations

from typing import Literal

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: The states a job does not leave: its worker is done with it and its result is what it is.
TERMINAL_STATES: frozenset[JobState] = frozenset({"succeeded", "failed", "cancelled"})
