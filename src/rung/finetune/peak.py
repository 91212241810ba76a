"""Measuring what a tune really holds: the peak of a block, and a heap that gives memory back.

Beside memory.py's estimate: every tune records both, so the estimate is checked on each
real run, not only in benchmarks/memory_estimate.py.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

from rung.finetune.memory import MemoryEstimate


class PeakMemory:
    """Peak memory of a block above its level at entry.

    CUDA: the allocator's own peak counter, exact. CPU: the allocator keeps no peak, so a
    thread samples the process's resident set every `interval_s`; a spike shorter than that
    can be missed, and memory the C library keeps after a free still counts, as it would
    against a machine's RAM."""

    def __init__(self, device: str | None = None, *, interval_s: float = 0.005) -> None:
        self.device, self.interval_s, self.method = device, interval_s, ""
        self.peak_bytes = self.baseline_bytes = self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        if self.device is None or self.device.startswith("cuda"):
            import torch

            # this process's own GPU by its index (under `accelerate launch` the rank's,
            # chosen by device.select_device), never a bare "cuda" another rank shares
            self.device = self.device or (f"cuda:{torch.cuda.current_device()}"
                                          if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            self.method = "allocator"
            self.baseline_bytes = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.method, self.baseline_bytes = "rss-sampling", _rss()
            self._peak = self.baseline_bytes
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, _rss())

    def __exit__(self, *exc: object) -> None:
        if self.method == "allocator":
            import torch

            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self.baseline_bytes
        else:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self._peak, _rss()) - self.baseline_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"peak_bytes": self.peak_bytes, "baseline_bytes": self.baseline_bytes,
                "device": self.device, "method": self.method}


def _rss() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: psutil comes with accelerate
        import psutil

        return int(psutil.Process().memory_info().rss)


def return_freed_memory(threshold: int = 128 << 10) -> bool:
    """Have glibc give freed blocks of `threshold` bytes or more back to the OS at once.

    glibc raises its mmap threshold each time a large block is freed; past that, freed
    activations stay in the heap and fragment it, and a CPU tune's resident memory climbs
    well past what its tensors hold (SmolLM2-135M LoRA: ~1.7x, benchmarks/memory_estimate.py).
    A fixed threshold keeps RSS at what training holds. False off glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, threshold))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def memory_record(estimate: MemoryEstimate | None, peak: PeakMemory) -> dict[str, Any]:
    """What a tune stores: the estimate (None for a method it does not model), the measured
    peak, and how far apart they were."""
    return {"estimate": estimate.to_dict() if estimate else None, "measured": peak.to_dict(),
            "relative_error": round((estimate.total - peak.peak_bytes) / peak.peak_bytes, 4)
            if estimate and peak.peak_bytes else None}
