"""Training-step speed: lmlib's GPT vs transformers' GPT2LMHeadModel, on the same batches.

The "baby GPT" of chapter 5 (character vocabulary, 4 layers, 4 heads, 128-dim embeddings, block
64, batch 12, no dropout). Both models start from the same weights (``lmlib.hf.gpt_to_hf``) and
take AdamW steps (forward, backward, clip, step) on the same pre-drawn batches. Variants are run in
interleaved rounds so that the machine's background load hits all of them alike; the script prints
the median tokens/second of each variant and its ratio to transformers' fp32 eager step. Peak
memory is measured per variant in a fresh subprocess (growth of the peak resident set size while
training: model, optimiser state, activations and gradients, and for the compiled variant the
compiler's own memory), because one process's high-water mark would otherwise mix the variants.

Variants: fp32 eager (both models), bfloat16 autocast (both), and ``torch.compile`` of the lmlib
model (skipped with a message where it does not work).

    .venv/bin/python benchmarks/bench_train_step.py            # full run
    .venv/bin/python benchmarks/bench_train_step.py --quick    # smoke run (a few steps)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: fairer timings on a busy machine

import torch  # noqa: E402

VOCAB, BLOCK, BATCH = 65, 64, 12


def make_models():
    from lmlib.gpt import GPT, GPTConfig
    from lmlib.hf import gpt_to_hf

    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=4, n_head=4, n_embd=128, dropout=0.0))
    theirs = gpt_to_hf(ours)
    theirs.config.use_cache = False
    return ours.train(), theirs.train()


def batches(n: int):
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, VOCAB, (100_000,), generator=g)
    from lmlib.data import sample_batch
    return [sample_batch(data, BLOCK, BATCH, generator=g) for _ in range(n)]


def step_fn(model, kind: str, autocast: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext

    def step(x, y):
        with ctx():
            if kind == "hf":
                loss = model(input_ids=x, labels=x).loss  # HF shifts the labels itself (63 targets per row)
            else:
                _, loss = model(x, y)  # y is x shifted: 64 targets per row; the same 64-token forward
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def build_variant(name: str):
    ours, theirs = make_models()
    if name == "lmlib fp32":
        return step_fn(ours, "lmlib", False)
    if name == "lmlib bf16 autocast":
        return step_fn(ours, "lmlib", True)
    if name == "lmlib compiled":
        return step_fn(torch.compile(ours), "lmlib", False)
    if name == "transformers fp32":
        return step_fn(theirs, "hf", False)
    if name == "transformers bf16 autocast":
        return step_fn(theirs, "hf", True)
    raise ValueError(name)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_growth_bytes(name: str, steps: int) -> int:
    """In THIS process: reset the peak-RSS mark (Linux /proc/self/clear_refs), build the variant and
    train ``steps`` steps; return how far the peak rose above the resident size at the start."""
    data = batches(steps)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _status_kb("VmRSS")
    step = build_variant(name)
    for x, y in data:
        step(x, y)
    return (_status_kb("VmHWM") - base) * 1024


def measure_memory(name: str, steps: int) -> int:
    """Peak-RSS growth (bytes) of a fresh process while it trains ``steps`` steps of ``name``."""
    code = ("import sys, json; sys.path.insert(0, 'benchmarks'); import bench_train_step as b; "
            "import transformers.models.gpt2.modeling_gpt2; "
            f"print(json.dumps(b.peak_growth_bytes({name!r}, {steps})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds, per_round = (2, 3) if args.quick else (5, 20)
    names = ["transformers fp32", "lmlib fp32", "transformers bf16 autocast", "lmlib bf16 autocast"]
    if not args.no_compile:
        names.append("lmlib compiled")
    data = batches(per_round)

    # correctness first: from the same weights, both models compute the same logits
    ours, theirs = make_models()
    x, _ = data[0]
    with torch.no_grad():
        a = ours(x)[0]
        b = theirs(input_ids=x).logits
    print(f"same weights, same batch: max |logits difference| = {(a - b).abs().max().item():.2e}")
    assert torch.allclose(a, b, atol=1e-4)

    steps = {}
    for name in list(names):
        try:
            t = time.perf_counter()
            steps[name] = build_variant(name)
            for xx, yy in data[:2]:  # warm-up (compilation happens here)
                steps[name](xx, yy)
            print(f"{name:<28} warm-up {time.perf_counter() - t:.1f} s")
        except Exception as exc:  # e.g. no C++ compiler for torch.compile
            print(f"{name:<28} unavailable here: {type(exc).__name__}: {str(exc)[:200]}")
            names.remove(name)

    times = {n: [] for n in names}
    for _ in range(rounds):
        for n in names:
            t = time.perf_counter()
            for xx, yy in data:
                steps[n](xx, yy)
            times[n].append((time.perf_counter() - t) / len(data))
    tok = BATCH * BLOCK
    ref = statistics.median(times["transformers fp32"])
    print(f"\nbaby GPT (4 layers, 4 heads, 128 dim, block {BLOCK}, batch {BATCH}), "
          f"{torch.get_num_threads()} threads, {rounds} rounds x {per_round} steps")
    mem_steps = 5 if args.quick else 20
    print(f"{'variant':<28}{'ms/step':>10}{'tokens/s':>12}{'vs HF fp32':>12}{'peak mem +MB':>14}")
    results = {}
    for n in names:
        med = statistics.median(times[n])
        try:
            mem = measure_memory(n, mem_steps) / 2**20
        except Exception as exc:  # pragma: no cover
            mem = float("nan")
            print(f"  (memory of {n} not measured: {exc})")
        results[n] = {"ms_per_step": med * 1000, "tokens_per_s": tok / med, "ratio_vs_hf_fp32": ref / med,
                      "peak_mem_mb": mem}
        print(f"{n:<28}{med * 1000:>10.1f}{tok / med:>12.0f}{ref / med:>12.2f}{mem:>14.1f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
