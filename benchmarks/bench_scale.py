"""What one training step of the zoo's gpt-char model costs on this CPU, one thread.

The shape of ``lmlib/models/gpt-char.json``: character vocabulary (65), context 128, 4 layers, 4
heads, 128-dim embeddings, batch 32, no dropout. Every variant starts from the same weights and
takes full AdamW steps (forward, backward, gradient clipping, update) on the same batch; the
variants of each comparison are timed in interleaved rounds (:func:`lmlib.benchmarking.time_pair`)
so that background load hits them alike, and compared as ratios.

(a) activation checkpointing (:func:`lmlib.cost.checkpoint_blocks`) off / on: seconds per step,
    extra peak memory of a step, and the bytes the forward pass saves for backward;
(b) float32 vs ``torch.autocast`` with bfloat16 vs with float16 (with a gradient scaler), as
    :class:`lmlib.training.TrainConfig` runs them: seconds per step;
(c) the matmul peak FLOP/s of this machine (float32 and bfloat16) and the MFU of a float32 step;
(d) activation memory per token per layer: measured (peak memory over a grid of shapes, fitted)
    against :func:`lmlib.cost.activation_bytes_formula`.

    .venv/bin/python benchmarks/bench_scale.py            # full run (a few minutes)
    .venv/bin/python benchmarks/bench_scale.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: fairer timings on a busy machine

import torch  # noqa: E402

from lmlib import cost  # noqa: E402
from lmlib.benchmarking import peak_memory, time_pair, track_large_allocations  # noqa: E402
from lmlib.gpt import GPT, GPTConfig  # noqa: E402

VOCAB, BLOCK, BATCH = 65, 128, 32
CONFIG = GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
CPU = torch.device("cpu")
CARD = Path(__file__).resolve().parents[1] / "lmlib" / "models" / "gpt-char.json"


def make_step(autocast: str | None = None, checkpointed: bool = False):
    """A training step of a fresh model (same initial weights for every variant) on one batch."""
    torch.manual_seed(0)
    model = GPT(CONFIG).train()
    if checkpointed:
        cost.checkpoint_blocks(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(autocast)
    ctx = (lambda: torch.autocast("cpu", dtype=dtype)) if dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler("cpu", enabled=dtype == torch.float16)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (BATCH, BLOCK), generator=g)
    y = torch.randint(0, VOCAB, (BATCH, BLOCK), generator=g)

    def step():
        with ctx():
            _, loss = model(x, y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step, model, (x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, small grid (smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    track_large_allocations()
    repeats = 2 if args.quick else 9
    tokens = BATCH * BLOCK
    results = {}
    print(f"gpt-char shape: {CONFIG.n_layer} layers, {CONFIG.n_head} heads, {CONFIG.n_embd} dim, "
          f"context {BLOCK}, batch {BATCH}, vocabulary {VOCAB}; {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")

    # (a) activation checkpointing ------------------------------------------------------------
    plain, plain_model, batch = make_step()
    ckpt, ckpt_model, _ = make_step(checkpointed=True)
    assert plain() == ckpt(), "checkpointing changed the loss"       # same weights, same batch
    times = time_pair({"plain": plain, "checkpointed": ckpt}, CPU, repeats)
    mem = {"plain": peak_memory(plain, CPU), "checkpointed": peak_memory(ckpt, CPU)}
    saved = {"plain": cost.saved_activation_bytes(plain_model, *batch),
             "checkpointed": cost.saved_activation_bytes(ckpt_model, *batch)}
    print("\n(a) activation checkpointing")
    print(f"{'variant':<16}{'s/step':>9}{'peak +MiB':>11}{'saved MiB':>11}")
    for n in times:
        print(f"{n:<16}{times[n]:>9.3f}{mem[n] / 2**20:>11.1f}{saved[n] / 2**20:>11.1f}")
    print(f"checkpointed / plain: time x{times['checkpointed'] / times['plain']:.2f}, "
          f"peak memory x{mem['checkpointed'] / mem['plain']:.2f}, "
          f"saved activations x{saved['checkpointed'] / saved['plain']:.3f}")
    results["checkpointing"] = {"seconds": times, "peak_bytes": mem, "saved_bytes": saved}

    # (b) autocast ----------------------------------------------------------------------------
    fns, skipped = {}, {}
    for name, kind in (("fp32", None), ("bf16 autocast", "bfloat16"), ("fp16 autocast", "float16")):
        try:
            fn, _, _ = make_step(autocast=kind)
            fn()
            fns[name] = fn
        except (RuntimeError, TypeError) as exc:                  # dtype not supported on this CPU
            skipped[name] = f"{type(exc).__name__}: {str(exc)[:120]}"
    times = time_pair(fns, CPU, repeats)
    mem = {n: peak_memory(fn, CPU) for n, fn in fns.items()}
    print("\n(b) precision")
    print(f"{'variant':<16}{'s/step':>9}{'tokens/s':>10}{'vs fp32':>9}{'peak +MiB':>11}")
    for n in times:
        print(f"{n:<16}{times[n]:>9.3f}{tokens / times[n]:>10.0f}{times['fp32'] / times[n]:>9.2f}"
              f"{mem[n] / 2**20:>11.1f}")
    for n, why in skipped.items():
        print(f"{n:<16} not supported here: {why}")
    results["precision"] = {"seconds": times, "peak_bytes": mem, "skipped": skipped}

    # (c) peak FLOP/s and MFU -----------------------------------------------------------------
    # The step and a large matmul are timed interleaved, so that the MFU compares the two under
    # the same background load; the standalone peaks of matmul_peak_flops are printed as well.
    n = 512 if args.quick else 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    fp32_step, _, _ = make_step()
    times = time_pair({"step": fp32_step, "matmul": lambda: a @ b}, CPU, repeats * 3)
    peak32 = 2 * n**3 / times["matmul"]
    peak32_alone = cost.matmul_peak_flops(n, repeats=5 if args.quick else 20)
    peak16_alone = cost.matmul_peak_flops(n, dtype=torch.bfloat16, repeats=5 if args.quick else 20)
    model_flops = cost.model_flops_per_token(CONFIG) * tokens
    six_nd = 6 * GPT(CONFIG).num_params() * tokens
    step_s = times["step"]
    print(f"\n(c) FLOP/s ({n} x {n} matmul, median)")
    print(f"matmul peak interleaved with the fp32 step: {peak32 / 1e9:.1f} GFLOP/s; alone: float32 "
          f"{peak32_alone / 1e9:.1f}, bfloat16 {peak16_alone / 1e9:.1f} GFLOP/s")
    print(f"fp32 step: {model_flops / 1e9:.2f} GFLOP of model FLOPs (6N + 12LCT per token; 6·params·BT would be"
          f" {six_nd / 1e9:.2f}) in {step_s:.3f} s = {model_flops / step_s / 1e9:.1f} GFLOP/s")
    print(f"MFU of the fp32 step: {cost.mfu(model_flops, step_s, peak32):.1%} "
          f"(with 6·params·BT: {cost.mfu(six_nd, step_s, peak32):.1%})")
    card = json.loads(CARD.read_text())
    zoo = cost.implied_mfu(card["params"], card["tokens_seen"], card["train_seconds"] / 3600, peak32)
    print(f"zoo run ({card['params']:,} params, {card['tokens_seen'] / 1e6:.2f}M tokens, "
          f"{card['train_seconds']:.0f} s, {card['hardware']['threads']} thread): implied MFU {zoo:.1%} "
          "of this machine's float32 peak (6·params·D; includes evaluation time, if any)")
    results["flops"] = {"zoo_implied_mfu": zoo, "matmul_peak_fp32": peak32, "matmul_peak_fp32_alone": peak32_alone,
                        "matmul_peak_bf16_alone": peak16_alone, "model_flops_per_step": model_flops,
                        "seconds_per_step": step_s, "mfu_fp32": cost.mfu(model_flops, step_s, peak32)}

    # (d) activation memory: measured vs formula ----------------------------------------------
    grid = ([8, 16], [64], [1, 2]) if args.quick else ([8, 32], [64, 128], [1, 2, 4])
    rows = cost.measure_activation_memory(CONFIG, *grid, repeats=3)
    cols = [[r[k] for r in rows] for k in ("batch_size", "seq_len", "n_layer")]
    fit_peak = cost.fit_activation_bytes(*cols, [r["peak_bytes"] for r in rows])
    fit_saved = cost.fit_activation_bytes(*cols, [r["saved_bytes"] for r in rows])
    formula = cost.activation_bytes_formula(CONFIG, 1, 1)["per_token_per_layer"]
    print(f"\n(d) activation bytes per token per layer (grid B {grid[0]} x T {grid[1]} x L {grid[2]})")
    print(f"{'source':<34}{'per token·layer':>16}{'outside/token':>14}{'rel. resid.':>12}")
    print(f"{'formula 4·(16C + 4 + H)':<34}{formula:>16.0f}{'':>14}{'':>12}")
    for label, f in (("saved tensors (exact count), fit", fit_saved), ("peak memory fwd+bwd, fit", fit_peak)):
        print(f"{label:<34}{f['bytes_per_token_per_layer']:>16.0f}{f['bytes_per_token_outside_layers']:>14.0f}"
              f"{f['relative_residual']:>12.3f}")
    results["activations"] = {"formula": formula, "fit_peak": fit_peak, "fit_saved": fit_saved, "rows": rows}
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
