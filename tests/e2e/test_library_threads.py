"""The library called from two threads at once, as a user's script or notebook may: each run
loads the embedded model, and the process keeps its own stdout and stderr afterwards.

llama-cpp-python's ``verbose=False`` redirects the process's file descriptors 1 and 2 to
/dev/null while it loads, by ``dup2``; two loads at once left them there for good, and every
later print and traceback of the script was lost. Run in a fresh interpreter: the descriptors
are the process's own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import textnlp

    def run(i):
        textnlp.generate_dataset("product-review", 1, f"out{i}.jsonl", max_tokens=4, seed=i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("printed after the runs")
    print("and on stderr", file=sys.stderr)
    """
)


def test_two_runs_at_once_leave_the_scripts_output_alone(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env={"TEXTNLP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "printed after the runs\n"
    assert done.stderr.endswith("and on stderr\n")
    assert all((tmp_path / f"out{i}.jsonl").read_text().count("\n") == 1 for i in range(2))
