"""``GPUUtilization``: the generation service's scaling metric, published by the worker where a
GPU is present (NVML), absent elsewhere."""

from __future__ import annotations

import asyncio
import io
import json

from textnlp.bootstrap import Platform
from textnlp.config import Settings
from textnlp.observability.emf import EmfEmitter
from textnlp.observability.gpu import mean_utilisation, nvml_sampler
from textnlp.observability.metrics import Metrics
from textnlp.worker import Worker, WorkerOptions


def test_no_gpu_means_no_sampler_and_no_metric() -> None:
    assert nvml_sampler() is None  # this machine has no NVIDIA driver (or no pynvml)


def test_a_failed_read_is_skipped_not_zero() -> None:
    def broken() -> list[float]:
        raise RuntimeError("NVML_ERROR_GPU_IS_LOST")

    assert mean_utilisation(broken) is None
    assert mean_utilisation(lambda: [50.0, 70.0]) == 60.0


def test_the_worker_publishes_the_gpus_utilisation(settings: Settings) -> None:
    stream = io.StringIO()

    async def go() -> None:
        async with Platform(settings) as platform:
            platform.metrics = Metrics(EmfEmitter("Custom", "textnlp-generation", stream))
            worker = Worker(
                platform, WorkerOptions(wait_s=0.05, gpu_report_s=0.05), gpu_sampler=lambda: [80.0]
            )
            running = asyncio.create_task(worker.run())
            for _ in range(100):
                if "GPUUtilization" in stream.getvalue():
                    break
                await asyncio.sleep(0.05)
            worker.request_stop()
            await running

    asyncio.run(go())
    point = next(
        json.loads(line) for line in stream.getvalue().splitlines() if "GPUUtilization" in line
    )
    assert point["GPUUtilization"] == 80.0 and point["ServiceName"] == "textnlp-generation"
    directive = point["_aws"]["CloudWatchMetrics"][0]
    assert directive["Metrics"] == [{"Name": "GPUUtilization", "Unit": "Percent"}]
    assert directive["Dimensions"] == [["ServiceName"]]  # what the scaling policy reads
