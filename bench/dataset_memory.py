"""Memory of writing a large dataset: streamed (``write_dataset`` on an iterator, a run's end
from its journal) against holding the records (what a list of them costs), in the same run.

Each case runs in a fresh process, which reports the growth of its peak resident memory
(``ru_maxrss``, Arrow's buffers included) over its state just before writing: N and 4N
synthetic records of about 1.3 KB of JSON each (a 600-character text, three variables, a
provenance). A bounded writer's peak does not grow with N; a held one's grows about 4x.

    python bench/dataset_memory.py [--count 20000]

The claims it prints are checked here: every streamed case's 4N peak is under 1.5x its N peak
plus 16 MB (allocator noise), and grows with N under a quarter as fast as holding the records
(JSONL, held) does.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported at run time inside records(), after sys.path is set
    from textnlp.domain import Record

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

CASES = [
    ("jsonl", "held"),
    ("jsonl", "streamed"),
    ("parquet", "held"),
    ("parquet", "streamed"),
    ("csv", "streamed"),
    ("hf", "streamed"),
    ("jsonl", "run-end"),
    ("parquet", "run-end"),
]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "in", "the", "rain"]


def records(count: int) -> Iterator[Record]:
    from textnlp.domain import GenerationParams, Provenance, Record

    for index in range(count):
        text = " ".join(WORDS[(index * 7 + i) % len(WORDS)] for i in range(110))[:600]
        yield Record(
            index=index,
            text=f"{index} {text}",
            variables={"product": f"item {index % 97}", "rating": index % 5, "tone": "calm"},
            provenance=Provenance(
                template_id="product-review",
                template_version="1",
                model="smollm2-135m",
                params=GenerationParams(seed=index),
                seed=index,
                prompt_tokens=40,
                completion_tokens=120,
                finish_reason="stop",
                latency_s=0.5,
                created_at="2026-12-06T00:00:00+00:00",
            ),
        )


def child(fmt: str, mode: str, count: int) -> None:
    """One case: prints the peak's growth in bytes."""
    import pyarrow.parquet  # noqa: F401 - loaded before the baseline, as a run has it

    from textnlp.generation.journal import RunJournal, journal_path
    from textnlp.generation.sinks import FileSink
    from textnlp.generation.writers import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("data" if fmt == "hf" else f"data.{fmt}")
        if mode == "run-end":
            journal = RunJournal(journal_path(out))
            journal.open(fresh=True)
            for record in records(count):
                journal.append(record)
            journal.close()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if mode == "held":
            write_dataset(out, list(records(count)))
        elif mode == "streamed":
            write_dataset(out, records(count))
        else:
            with FileSink(out) as sink:
                sink.end(count, complete=True)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024)  # Linux reports KiB


def measure(fmt: str, mode: str, count: int) -> int:
    done = subprocess.run(
        [sys.executable, __file__, "--child", fmt, mode, str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--child", nargs=3, metavar=("FORMAT", "MODE", "COUNT"))
    args = parser.parse_args()
    if args.child:
        fmt, mode, count = args.child
        child(fmt, mode, int(count))
        return
    n = args.count
    rows: list[dict[str, Any]] = []
    for fmt, mode in CASES:
        small, large = measure(fmt, mode, n), measure(fmt, mode, 4 * n)
        rows.append({"format": fmt, "mode": mode, "peak_mb": [small >> 20, large >> 20]})
        print(f"{fmt:8} {mode:9} peak growth {small >> 20:5} MB at {n}, {large >> 20:5} MB "
              f"at {4 * n}", flush=True)  # fmt: skip
    held_small, held_large = rows[0]["peak_mb"]  # jsonl, held: the records themselves
    held_slope = (held_large - held_small) / (3 * n)
    failures = []
    for row in rows:
        small, large = row["peak_mb"]
        row["mb_per_1k_more_records"] = round(1000 * (large - small) / (3 * n), 3)
        if row["mode"] == "held":
            continue
        if large > 1.5 * small + 16:
            failures.append(f"{row['format']} {row['mode']} grows with N: {small} -> {large} MB")
        if (large - small) / (3 * n) > held_slope / 4:
            failures.append(f"{row['format']} {row['mode']} grows over 1/4 as fast as held")
    print(json.dumps({"machine": platform.machine(), "count": n, "cases": rows}, indent=1))
    if failures:
        sys.exit("claims not met:\n  " + "\n  ".join(failures))
    print("checked: every streamed case is bounded (4N peak <= 1.5x N peak + 16 MB) and grows "
          "under 1/4 as fast as holding the records")  # fmt: skip


if __name__ == "__main__":
    main()
