"""``GET /v1/files`` on S3 (moto's server): the service's listing against reading each file's
description in turn, as it did before (a HEAD and a GET per file), in the same run.

A listing reads one small object per file, so its cost is S3's latency per request, which
moto on loopback hides (about 2 ms). ``--latency-ms`` adds a wait before every S3 request
(botocore's ``before-send`` event) to stand for a region's round trip; the figure says which.

    python bench/files_listing.py --files 200 --latency-ms 0 --latency-ms 20

It checks its own claims: both listings name the same files, and the service's takes at most
half the time of the sequential reads at every latency above zero. ``noise`` is the range of the
rounds' ratios relative to their median (the rounds interleave the two listings).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # bench/ heads sys.path, and its names (kernels...) shadow packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repo root: bench.*, tests.*

from bench.common import spread  # noqa: E402
from tests.conftest import free_port, wait_for_port  # noqa: E402
from textnlp.adapters.db.schema import upgrade_database  # noqa: E402
from textnlp.adapters.storage import Keys  # noqa: E402
from textnlp.bootstrap import Platform  # noqa: E402
from textnlp.config import load_settings  # noqa: E402
from textnlp.services.job_models import Owner  # noqa: E402
from textnlp.services.openai_batches import OpenAIBatchService  # noqa: E402

OWNER = Owner(id="bench-user")
LINE = {
    "custom_id": "a",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "smollm2-135m", "messages": [{"role": "user", "content": "Hi"}]},
}


def moto(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc=proc)
    return proc


def sequential(service: OpenAIBatchService) -> list[str]:
    """The listing as it was: each description checked, then read, one after the other."""
    storage = service.storage
    ids = []
    for key in storage.list(Keys.upload(OWNER.id, "file-")):
        if key.endswith(".json") and storage.exists(key):
            ids.append(json.loads(storage.get_bytes(key))["id"])
    return sorted(ids)


def timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, action="append")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    latencies = args.latency_ms or [0.0, 20.0]
    port = free_port()
    server = moto(port)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    home = Path(tempfile.mkdtemp(prefix="textnlp-files-bench-"))
    settings = load_settings(
        home=home,
        storage={"backend": "s3", "bucket": "bench-files"},
        aws={"endpoint_url": f"http://127.0.0.1:{port}", "region": "us-east-1"},
    )
    upgrade_database(settings.database_url)
    delay = {"s": 0.0}
    try:
        with Platform(settings) as platform:
            client = platform.jobs.storage.client  # type: ignore[attr-defined]
            client.create_bucket(Bucket="bench-files")
            client.meta.events.register("before-send.s3.*", lambda **_: time.sleep(delay["s"]))
            service = OpenAIBatchService(platform.jobs)
            body = (json.dumps(LINE) + "\n").encode()
            for i in range(args.files):
                service.upload(OWNER, f"batch-{i}.jsonl", "batch", io.BytesIO(body))
            rows, noise = [], []
            for latency in latencies:
                delay["s"] = latency / 1000
                befores, afters = [], []
                for _ in range(args.rounds):  # interleaved: a slow moment slows both
                    before, old_ids = timed(lambda: sequential(service))
                    after, listing = timed(lambda: service.files(OWNER))
                    new_ids = sorted(file.id for file in listing.data)
                    assert new_ids == old_ids and len(new_ids) == args.files, "different files"
                    befores.append(before)
                    afters.append(after)
                ratios = [a / b for a, b in zip(afters, befores, strict=True)]
                ratio = statistics.median(ratios)
                rows.append((latency, statistics.median(befores), statistics.median(afters), ratio))
                noise.append(spread(ratios))
                if latency > 0:
                    assert ratio <= 0.5, f"at {latency} ms the listing is {ratio:.2f}x the reads"
    finally:
        server.terminate()
        server.wait(10)
    print(f"{args.files} files, median of {args.rounds} rounds (moto's server on loopback)")
    print("| added latency per request | sequential HEAD+GET | listing | ratio | noise |")
    print("|---|---|---|---|---|")
    for (latency, before, after, ratio), spread_ in zip(rows, noise, strict=True):
        shown = "n/a (1 round)" if spread_ is None else spread_
        print(f"| {latency:g} ms | {before:.2f} s | {after:.2f} s | {ratio:.3f}x | {shown} |")


if __name__ == "__main__":
    main()
