"""GPU utilisation through NVML (``nvidia-ml-py``), for the generation service's scaling metric.

``GPUUtilization`` is the mean busy percent of the task's GPUs over the last sample window, as
NVML reports it. Where there is no NVIDIA driver or no ``pynvml`` (a CPU host, a laptop), there
is no sampler and nothing is published: the metric is absent, not zero, so a CPU worker never
looks idle to the GPU service's scaling policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Reads the utilisation percent of every visible GPU.
Sampler = Callable[[], list[float]]


def nvml_sampler() -> Sampler | None:
    """A sampler over every GPU NVML sees, or None without a driver or ``pynvml``."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded...: no GPU here
        log.debug("no GPU utilisation: %s", exc)
        return None
    if not handles:
        return None

    def sample() -> list[float]:
        return [float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in handles]

    return sample


def mean_utilisation(sampler: Sampler) -> float | None:
    """The mean percent over the GPUs, or None when a read fails (it is skipped, not zero)."""
    try:
        values = sampler()
    except Exception as exc:  # a transient NVML error must not stop the worker
        log.warning("cannot read GPU utilisation: %s", exc)
        return None
    return sum(values) / len(values) if values else None
