"""Measuring speed and memory fairly on a noisy machine.

Benchmarks in this course compare two implementations *side by side in one run*: repetitions are
interleaved so that whatever else the machine is doing slows both alike, and the results are
reported as ratios. These helpers are shared by the scripts in ``benchmarks/`` and by the notebooks
that show a measurement.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above what already exists before the
call; on CPU (Linux), the rise of the process's peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs``) above the resident set before the call, after
:func:`track_large_allocations` has made freed large blocks go back to the OS. CPU figures are
coarser (allocator caching, page granularity) but show the same growth. Where the peak cannot be
reset (not Linux), :func:`peak_memory` returns NaN rather than a wrong number.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from pathlib import Path

import torch

from lmlib.validation import check_device, check_int

__all__ = ["track_large_allocations", "peak_memory", "time_pair"]



def _check_fns(fns, device, who: str, name: str = "fns") -> torch.device:
    """``fns``: a non-empty dict of callables; returns ``device`` as a ``torch.device``."""
    if not isinstance(fns, dict) or not fns:
        raise TypeError(f"{who}: fns must be a non-empty dict of name -> function, got {type(fns).__name__}")
    for key, fn in fns.items():
        if not callable(fn):
            where = name if name != "fns" else f"fns[{key!r}]"
            raise TypeError(f"{who}: {where} must be callable, got {type(fn).__name__}")
    return check_device("device", device, who=who)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_mem() -> tuple[int, int]:
    """(peak resident bytes since the last reset, current resident bytes) of this process."""
    s = Path("/proc/self/status").read_text()
    hwm = int(re.search(r"VmHWM:\s+(\d+)", s).group(1)) * 1024
    rss = int(re.search(r"VmRSS:\s+(\d+)", s).group(1)) * 1024
    return hwm, rss


def track_large_allocations() -> None:
    """Make glibc hand every allocation of 64 KiB or more straight back to the OS when freed.

    Otherwise freed tensors stay resident inside malloc's heap, later tensors reuse them, and
    the peak resident set no longer shows what one call needs.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 0)          # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _malloc_trim() -> None:
    """Give free heap pages back to the OS, so that reusing them shows up in the resident set."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _cpu_reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory(fn, device: torch.device) -> float:
    """Extra peak memory (bytes) that one call of ``fn()`` needs, beyond what exists before it."""
    device = _check_fns({"fn": fn}, device, "peak_memory", name="fn")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        out = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del out
        return float(peak)
    _malloc_trim()
    if not _cpu_reset_peak():  # not Linux: no way to reset the peak resident set
        return math.nan
    _, before = _cpu_mem()
    out = fn()
    peak, _ = _cpu_mem()
    del out
    return float(max(peak - before, 0))


def time_pair(fns: dict, device: torch.device, repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved."""
    device = _check_fns(fns, device, "time_pair")
    check_int("repeats", repeats, min=1, who="time_pair")
    for fn in fns.values():  # warm-up
        fn()
    _sync(device)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}
