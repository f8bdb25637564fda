"""Explicit vs fused attention: time and peak memory across sequence lengths.

Runs ``lmlib.attention.scaled_dot_product_attention`` (the readable version, which builds the
full ``(B, heads, T, T)`` score matrix) and ``lmlib.attention.fused_attention`` (PyTorch's fused
kernel) side by side on the same inputs, interleaving the repetitions so that a noisy machine
affects both alike, and prints RATIOS explicit / fused.

Usage::

    .venv/bin/python benchmarks/bench_attention.py            # CPU, lengths 64 .. 2048
    .venv/bin/python benchmarks/bench_attention.py --quick    # a fast smoke run
    .venv/bin/python benchmarks/bench_attention.py --device cuda --lengths 512 1024 2048 4096 8192

Time and peak memory are measured with ``lmlib.benchmarking`` (see there how).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lmlib.attention import fused_attention, scaled_dot_product_attention  # noqa: E402
from lmlib.benchmarking import peak_memory, time_pair, track_large_allocations  # noqa: E402


def explicit(q, k, v, causal):
    return scaled_dot_product_attention(q, k, v, is_causal=causal)[0]


def fused(q, k, v, causal):
    return fused_attention(q, k, v, is_causal=causal)


IMPLS = {"explicit": explicit, "fused": fused}


# ---------------------------------------------------------------------------- main

def run(lengths, *, batch, heads, d_head, dtype, device, repeats, causal, backward):
    rows = []
    for T in lengths:
        g = torch.Generator(device="cpu").manual_seed(T)
        shape = (batch, heads, T, d_head)
        q, k, v = (torch.randn(shape, generator=g, dtype=dtype).to(device) for _ in range(3))
        if backward:
            q, k, v = (t.requires_grad_() for t in (q, k, v))
        # the two paths agree before we time them
        with torch.no_grad():
            diff = (explicit(q, k, v, causal) - fused(q, k, v, causal)).abs().max().item()
        tol = 1e-4 if dtype == torch.float32 else 2e-2
        assert diff < tol, f"explicit and fused disagree by {diff} at T={T}"

        def make(fn):
            if backward:
                def step():
                    out = fn(q, k, v, causal)
                    out.sum().backward()
                    q.grad = k.grad = v.grad = None
                    return None
                return step
            def step():
                with torch.no_grad():
                    return fn(q, k, v, causal)
            return step

        fns = {name: make(fn) for name, fn in IMPLS.items()}
        t = time_pair(fns, device, repeats)
        mem = {name: statistics.median(peak_memory(fn, device) for _ in range(3)) for name, fn in fns.items()}
        score_bytes = batch * heads * T * T * torch.finfo(dtype).bits // 8
        rows.append((T, t["explicit"], t["fused"], mem["explicit"], mem["fused"], score_bytes))
        mem_ratio = f"{mem['explicit'] / mem['fused']:>8.1f}x" if mem["fused"] >= 64 * 1024 else f"{'-':>9}"
        print(f"{T:>6} {t['explicit'] * 1e3:>12.2f} {t['fused'] * 1e3:>10.2f} {t['explicit'] / t['fused']:>8.2f}x"
              f" {mem['explicit'] / 2**20:>12.2f} {mem['fused'] / 2**20:>10.2f} {mem_ratio}"
              f" {score_bytes / 2**20:>10.2f}", flush=True)
        del q, k, v
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--device", default="cpu")
    p.add_argument("--lengths", type=int, nargs="+")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-head", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (default 1: on a shared machine, more threads mostly measure contention)")
    p.add_argument("--no-causal", action="store_true", help="unmasked attention instead of causal")
    p.add_argument("--backward", action="store_true", help="time forward + backward (training)")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    lengths = args.lengths or ([64, 128, 256] if args.quick else [64, 128, 256, 512, 1024, 2048])
    repeats = args.repeats or (3 if args.quick else 10)
    dtype = getattr(torch, args.dtype)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
        track_large_allocations()
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f", {torch.get_num_threads()} threads")
          + f", dtype {args.dtype}, B={args.batch}, heads={args.heads}, d_head={args.d_head}, "
          f"{'causal' if not args.no_causal else 'unmasked'}, {'forward+backward' if args.backward else 'forward'}")
    print(f"{'T':>6} {'explicit ms':>12} {'fused ms':>10} {'time':>9} {'explicit MiB':>12} "
          f"{'fused MiB':>10} {'memory':>9} {'scores MiB':>10}")
    rows = run(lengths, batch=args.batch, heads=args.heads, d_head=args.d_head, dtype=dtype, device=device,
               repeats=repeats, causal=not args.no_causal, backward=args.backward)
    if len(rows) >= 2:
        (t0, e0, f0, m0, _, _), (t1, e1, f1, m1, _, _) = rows[-2], rows[-1]
        print(f"last doubling of T ({t0} -> {t1}): explicit time x{e1 / e0:.2f}, fused time x{f1 / f0:.2f}, "
              f"explicit memory x{m1 / max(m0, 1):.2f} (T^2 predicts x{(t1 / t0) ** 2:.0f})")
    print("columns 'time' and 'memory' are explicit / fused ('-': the fused call needed under 64 KiB);"
          " 'scores' is the size of one (B, heads, T, T) matrix")


if __name__ == "__main__":
    main()
