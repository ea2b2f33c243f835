"""A batch job's states: the one list the database, the services, the console and the CLI share."""

from __future__ import annotations

import re
from typing import Literal

#: A job's id: 32 lowercase hexadecimal characters (``list_cursor.time_ordered_hex``, a UUIDv7's
#: layout, as the API makes them now; an older job's ``uuid4().hex``).
JOB_ID = re.compile(r"[0-9a-f]{32}")

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: The states a job does not leave: its worker is done with it and its result is what it is.
TERMINAL_STATES: frozenset[JobState] = frozenset({"succeeded", "failed", "cancelled"})
