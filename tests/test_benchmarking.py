"""Tests of the measuring helpers (what they report, not how fast anything is)."""

import math
import time

import torch

from lmlib.benchmarking import peak_memory, time_pair, track_large_allocations


def test_peak_memory_sees_a_large_temporary_allocation():
    track_large_allocations()
    cpu = torch.device("cpu")
    small = peak_memory(lambda: torch.zeros(16), cpu)
    big = peak_memory(lambda: torch.ones(64 * 1024 * 1024 // 4).sum(), cpu)  # a 64 MiB temporary
    if math.isnan(big):  # not Linux: the helper refuses to guess
        return
    assert big > 32 * 1024 * 1024
    assert small < big / 4


def test_time_pair_reports_every_function_and_orders_them():
    # Sleeps, not arithmetic: a sleep takes at least its duration however loaded the machine is,
    # so the 50x gap cannot be closed by another process stealing the CPU.
    times = time_pair({"one": lambda: time.sleep(0.001), "fifty": lambda: time.sleep(0.05)},
                      torch.device("cpu"), repeats=3)
    assert set(times) == {"one", "fifty"}
    assert all(t > 0 for t in times.values())
    assert times["fifty"] >= 0.05 and times["fifty"] > times["one"]
