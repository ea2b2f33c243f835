"""``textnlp jobs submit --wait`` as a script or a person at a terminal meets it: the job is
named on stderr as soon as it is queued, Ctrl-C stops the waiting but not the job (and says how
to follow it), and progress written to a file or pipe is lines, not one ``\\r`` line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

from tests.e2e.test_cli_errors import TEXTNLP, textnlp


def test_ctrl_c_while_waiting_leaves_the_job_and_says_how_to_follow_it() -> None:
    # No worker runs: the job stays queued, and the command waits until interrupted.
    proc = subprocess.Popen(
        [*TEXTNLP, "jobs", "submit", "--prompt", "Say hi", "--wait"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        submitted = re.fullmatch(r"job ([0-9a-f]{32}) submitted\n", first)
        assert submitted, first
        assert proc.stderr.readline() == "queued: 0/1\n"
        time.sleep(2.5)  # a few more polls, with nothing new to say
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    job_id = submitted.group(1)
    assert proc.returncode == 130
    assert stdout == ""  # stdout is for the ended job's JSON alone
    assert "\r" not in rest
    assert rest.splitlines() == [
        f"stopped waiting; job {job_id} goes on: follow it with "
        f"`textnlp jobs status {job_id}` (--wait to wait again)"
    ]  # the unchanged "queued: 0/1" is not written again
    status = textnlp("jobs", "status", job_id)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "queued"
