"""``bench/gpu_check.sh`` as the lent GPU machine runs it, on the CPU (its smoke run): the
batching sweep, then the user's journey (``textnlp generate`` on the transformers backend).

The check only meets a GPU when a session is lent one, so a break found there costs that
session's few minutes: here it runs end to end, on the real transformers engine and the
embedded SmolLM2 weights, as a script started from the repository root.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_its_sweep_on_the_cpu(tmp_path: Path) -> None:
    missing = [m for m in ("transformers", "torch", "gguf") if importlib.util.find_spec(m) is None]
    require(not missing, f"the hf extra is not installed ({', '.join(missing)})")
    env = {**os.environ, "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_PYTHON": sys.executable}
    env["TMPDIR"] = str(tmp_path)  # its work directory
    env.pop("OUT", None)
    check = subprocess.run(
        ["bash", "bench/gpu_check.sh"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr[-3000:]
    result = json.loads(check.stdout)
    assert (result["device"], result["dtype"]) == ("cpu", "float32")
    assert result["weights"].startswith("embedded SmolLM2-135M-Instruct")
    assert result["errors"] == {}
    assert [run["concurrency"] for run in result["runs"]] == [1, 4]
    for run in [*result["runs"], *result["mixed_lengths"]]:
        assert run["static"]["tokens_per_s"] > 0 and run["continuous"]["tokens_per_s"] > 0
    assert {mode: seen["checked"] for mode, seen in result["seeded_alone_vs_batch"].items()} == {
        "static": 4,
        "continuous": 4,
    }
    # The journey: `textnlp generate` on a catalogue entry of the transformers backend.
    journey = result["journey"]
    assert (journey["records"], journey["ok"]) == (4, 4), journey
    assert journey["first_text"].strip()
