"""Training speed of the GPT-2 -> Llama variants of chapter 8, and of three normalisation layers.

Each variant of ``configs/experiments/decoder-ablation.json`` (4 layers, width 64, block 64,
batch 32, character vocabulary) takes AdamW steps (forward, backward, clip, step) on the same
pre-drawn batches, one thread, in interleaved rounds so that background load hits all variants
alike. The script prints the median tokens/second of each and its ratio to GPT-2's. A second
table times the normalisation layers alone on a (32, 64, 64) activation: PyTorch's fused
``F.layer_norm``, the course's ``RMSNorm`` (the formula, four elementwise operations and a
mean) and PyTorch's fused ``F.rms_norm``, forward and backward.

    .venv/bin/python benchmarks/bench_decoder.py            # full run
    .venv/bin/python benchmarks/bench_decoder.py --quick    # smoke run (a few steps)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lmlib.benchmarking import time_pair  # noqa: E402
from lmlib.decoder_ablation import variant_config  # noqa: E402
from lmlib.llama import Llama  # noqa: E402
from lmlib.normalization import RMSNorm  # noqa: E402

SPEC = json.loads((Path(__file__).resolve().parents[1] / "configs/experiments/decoder-ablation.json").read_text())
VOCAB = 65


def train_step(model, batches):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    state = {"i": 0}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def norm_step(fn, x):
    def step():
        x.grad = None
        fn(x).sum().backward()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    args = p.parse_args()
    torch.set_num_threads(1)
    block, batch = SPEC["model"]["block_size"], SPEC["train"]["batch_size"]
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, VOCAB, (50_000,), generator=g)
    starts = torch.randint(0, len(data) - block - 1, (8, batch), generator=g)
    batches = [(data[s[:, None] + torch.arange(block)], data[s[:, None] + torch.arange(block) + 1]) for s in starts]
    fns = {}
    for label, changes in SPEC["variants"].items():
        torch.manual_seed(0)
        fns[label] = train_step(Llama(variant_config(SPEC, changes, VOCAB)).train(), batches)
    repeats = 2 if args.quick else 30
    t = time_pair(fns, torch.device("cpu"), repeats)
    tokens = block * batch
    print(f"training step, {tokens} tokens, 1 thread, median of {repeats} interleaved rounds")
    for label, sec in t.items():
        print(f"  {label:20s} {tokens / sec:8.0f} tokens/s   {t['GPT-2'] / sec:5.2f} x GPT-2")

    x = torch.randn(batch, block, SPEC["model"]["n_embd"], requires_grad=True)
    d = x.shape[-1]
    w = torch.ones(d, requires_grad=True)
    rms = RMSNorm(d, eps=1e-5)
    norms = {"F.layer_norm (fused)": lambda z: F.layer_norm(z, (d,), w, None, 1e-5),
             "lmlib RMSNorm (formula)": rms,
             "F.rms_norm (fused)": lambda z: F.rms_norm(z, (d,), w, 1e-5)}
    assert torch.allclose(rms(x), norms["F.rms_norm (fused)"](x), atol=1e-5)
    t = time_pair({k: norm_step(f, x) for k, f in norms.items()}, torch.device("cpu"), 20 if args.quick else 300)
    print(f"normalisation of a {tuple(x.shape)} activation, forward + backward")
    base = t["F.layer_norm (fused)"]
    for label, sec in t.items():
        print(f"  {label:24s} {sec * 1e6:8.1f} µs   {sec / base:5.2f} x F.layer_norm")


if __name__ == "__main__":
    main()
