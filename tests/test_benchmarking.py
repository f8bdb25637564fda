"""Tests of the measuring helpers (what they report, not how fast anything is)."""

import math

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
    x = torch.randn(200, 200)
    times = time_pair({"one": lambda: x @ x, "ten": lambda: [x @ x for _ in range(10)]},
                      torch.device("cpu"), repeats=3)
    assert set(times) == {"one", "ten"}
    assert all(t > 0 for t in times.values())
    assert times["ten"] > times["one"]
