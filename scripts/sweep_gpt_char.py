"""Equal-compute sweep of shapes and learning rates for the zoo's character GPT (``gpt-char``).

Every candidate recipe gets the same budget of training FLOPs, ``6 N D`` plus the attention
term ``12 L T d`` per token (N parameters, D tokens; L layers of width d, context T): the script
sets ``max_steps`` so that the run spends the budget (the cosine schedule then ends where the run
ends, as in the full run), trains, and records the loss on fixed batches of the *validation*
plays (the test plays are never looked at here) and the seconds it took. A FLOP budget, unlike
a time budget, does not depend on how busy the machine is. Results go to a JSON file that
chapter 5 loads.

    python scripts/sweep_gpt_char.py --pflops 0.012 --out lmlib/models/sweeps/gpt-char.json

The stored results used a budget of 0.012 PFLOP per candidate, about a fifth of the final
``gpt-char`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from lmlib.pretrained import COURSE_GPT_RECIPE, _build_course_gpt, course_data, merge_recipe, train_course_gpt  # noqa: E402
from lmlib.training import evaluate_loss, fixed_lm_batches, seed_everything  # noqa: E402

CANDIDATES = {
    "L4-E128-T128-lr3e-3": {"model": {"n_layer": 4, "n_embd": 128, "n_head": 4, "block_size": 128},
                            "data": {"batch_size": 32}, "train": {"lr": 3e-3}},
    "L4-E192-T128-lr2e-3": {"model": {"n_layer": 4, "n_embd": 192, "n_head": 6, "block_size": 128},
                            "data": {"batch_size": 32}, "train": {"lr": 2e-3}},
    "L6-E128-T128-lr3e-3": {"model": {"n_layer": 6, "n_embd": 128, "n_head": 4, "block_size": 128},
                            "data": {"batch_size": 32}, "train": {"lr": 3e-3}},
}


def flops_per_step(recipe, n_params: int) -> float:
    m, d = recipe["model"], recipe["data"]
    per_token = 6 * n_params + 12 * m["n_layer"] * m["block_size"] * m["n_embd"]
    return per_token * m["block_size"] * d["batch_size"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pflops", type=float, default=0.1, help="training budget per candidate, in 1e15 FLOPs")
    p.add_argument("--out", default="lmlib/models/sweeps/gpt-char.json")
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args()
    data = course_data(0)
    results = json.load(open(args.out)) if os.path.exists(args.out) else {"runs": {}}
    results.update(budget_pflops=args.pflops, machine=platform.processor() or platform.machine(),
                   torch=torch.__version__, threads=torch.get_num_threads(),
                   cpu_capability=torch.backends.cpu.get_cpu_capability())
    for name, over in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        recipe = merge_recipe(COURSE_GPT_RECIPE, over)
        n = sum(p.numel() for p in _build_course_gpt(recipe, data.tokenizer.vocab_size).parameters())
        steps = max(20, round(args.pflops * 1e15 / flops_per_step(recipe, n)))
        recipe = merge_recipe(recipe, {"train": {"max_steps": steps, "warmup_steps": max(10, steps // 20),
                                                 "eval_interval": max(1, steps // 4)}})
        seed_everything(0)
        model = _build_course_gpt(recipe, data.tokenizer.vocab_size)
        t0 = time.time()
        hist = train_course_gpt(model, recipe, data, progress=False)
        model.eval()
        block = recipe["model"]["block_size"]
        val = evaluate_loss(model, fixed_lm_batches(data.val, block, 32, 32, seed=1))
        results["runs"][name] = {"recipe": recipe, "params": n, "steps": steps, "tokens": hist.tokens,
                                 "seconds": time.time() - t0, "val_loss": val,
                                 "val_curve": hist.evals.get("val loss"), "eval_steps": hist.eval_steps}
        print(f"{name}: {n/1e6:.2f}M params, {steps} steps, {hist.tokens/1e6:.2f}M tokens, "
              f"{time.time()-t0:.0f}s, val {val:.4f}", flush=True)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
