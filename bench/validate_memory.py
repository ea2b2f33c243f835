"""Peak memory of ``validate_dataset`` per record, on N and 4N generated reviews.

The records are ``tests/unit/validation/report_datasets.review_records``: product reviews as
``generate`` writes them (20-70 words, labels, provenance), with copies, near copies, personal
data, empty and truncated texts in a few percent of them. Each size is written to a temporary
JSONL file and validated (``embeddings=False``, as the validation worker does) in a fresh
subprocess, which first warms validation up on a few records (lazy imports, regex tables) and
then reads its peak resident memory (``ru_maxrss``) before and after.

Per record: the peak's growth from N to 4N records over 3N, so that the interpreter, the
libraries and fixed-size buffers cancel out; ``above_texts`` is that less the texts' own size
(``sys.getsizeof`` of each, which any validation holds). The run fails (exit 1) when
``above_texts`` exceeds ``--bound`` bytes: at 1,000,000 records the worker's 8 GB must hold it.

    python bench/validate_memory.py [--records 25000] [--bound 2500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from tests.unit.validation.report_datasets import review_records, write_jsonl  # noqa: E402


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(path: Path) -> dict[str, Any]:
    """Validate ``path`` in this (fresh) process: its peak memory before and after."""
    from textnlp.validation import validate_dataset

    warm_up = write_jsonl(path.with_name("warm-up.jsonl"), review_records(200, seed=1))
    validate_dataset(warm_up, embeddings=False)
    before = peak_rss()
    start = time.perf_counter()
    report = validate_dataset(path, embeddings=False)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_before": before,
        "peak_after": peak_rss(),
        "count": report.count,
    }


def measure(records: int, folder: Path) -> dict[str, Any]:
    data = review_records(records, seed=0)
    path = write_jsonl(folder / f"reviews-{records}.jsonl", data)
    text_bytes = sum(sys.getsizeof(r["text"]) for r in data)
    del data
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(result.stdout.splitlines()[-1])
    growth = measured["peak_after"] - measured["peak_before"]
    return {
        "records": records,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "seconds": measured["seconds"],
        "peak_rss_mb": round(measured["peak_after"] / 2**20, 1),
        "growth_mb": round(growth / 2**20, 1),
        "growth_bytes_per_record": round(growth / records),
        "text_bytes_per_record": round(text_bytes / records),
        "_growth": growth,
        "_text_bytes": text_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=25_000, help="N (4N is measured too)")
    parser.add_argument("--bound", type=int, default=2500, help="bytes per record above texts")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = [measure(n, Path(tmp)) for n in (args.records, 4 * args.records)]
    small, large = runs
    marginal = (large["_growth"] - small["_growth"]) / (large["records"] - small["records"])
    texts = (large["_text_bytes"] - small["_text_bytes"]) / (large["records"] - small["records"])
    above = marginal - texts
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
        },
        "runs": [{k: v for k, v in run.items() if not k.startswith("_")} for run in runs],
        "marginal_bytes_per_record": round(marginal),
        "text_bytes_per_record": round(texts),
        "above_texts_bytes_per_record": round(above),
        "bound_bytes_per_record": args.bound,
        "within_bound": above <= args.bound,
        "projected_gb_at_1m_records": round(marginal * 1_000_000 / 1e9, 2),
    }
    print(json.dumps(out, indent=2))
    if above > args.bound:
        sys.exit(1)


if __name__ == "__main__":
    main()
