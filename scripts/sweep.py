"""Small sweeps that choose the zoo's recipes: every candidate gets the same training budget.

A sweep file (``configs/sweeps/NAME.json``) names a base zoo config, a budget and candidates::

    {"base": "configs/bert-mlm.json",
     "budget": {"steps": 600},                 # or {"pflops": 0.012}: a budget of training FLOPs
     "seeds": [0],
     "base_overrides": {...},                  # optional: changes to the base recipe for every run
     "candidates": {"post-norm lr 2e-3": {"train": {"lr": 2e-3}}, ...}}

Each candidate is the base recipe with its overrides (and, for a FLOP budget, ``max_steps`` set
so the run spends ``6 N D + 12 L T d D`` FLOPs; the cosine schedule ends where the run ends;
the warm-up is 5% of the run, at least 10 steps, unless the candidate sets it). It
is trained and scored on the *validation* plays only (the test plays are for the final model):
loss on fixed validation batches (GPT), masked-token loss and accuracies (BERT). A FLOP or step
budget, unlike a time budget, does not depend on how busy the machine is; the seconds each run
took are recorded too. Results go to ``lmlib/models/sweeps/NAME.json``, which the chapters load.

    python scripts/sweep.py configs/sweeps/bert-mlm.json
    python scripts/sweep.py configs/sweeps/bert-mlm.json --only "pre-norm lr 1e-3"
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from lmlib import zoo  # noqa: E402
from lmlib.pretrained import merge_recipe  # noqa: E402
from lmlib.training import evaluate_loss, fixed_lm_batches, seed_everything  # noqa: E402


def gpt_flops_per_step(recipe: dict, n_params: int) -> float:
    """Training FLOPs of one step: 6 per parameter per token, plus attention's 12 L T d."""
    m, d = recipe["model"], recipe["data"]
    per_token = 6 * n_params + 12 * m["n_layer"] * m["block_size"] * m["n_embd"]
    return per_token * m["block_size"] * d["batch_size"]


def candidate_config(base: dict, overrides: dict, budget: dict, data) -> dict:
    config = dict(base, recipe=merge_recipe(base["recipe"], overrides))
    config = zoo.load_config(config)
    if "pflops" in budget:
        n = sum(p.numel() for p in zoo.build(config, data.tokenizer).parameters())
        steps = max(20, round(budget["pflops"] * 1e15 / gpt_flops_per_step(config["recipe"], n)))
    else:
        steps = budget["steps"]
    train = {"max_steps": steps, "eval_interval": max(1, steps // 4)}
    if "warmup_steps" not in overrides.get("train", {}):
        train["warmup_steps"] = max(10, steps // 20)
    return zoo.load_config(dict(config, recipe=merge_recipe(config["recipe"], {"train": train})))


def score(model, config: dict, data) -> dict:
    if config["kind"] == "gpt":
        block = config["recipe"]["model"]["block_size"]
        return {"val_loss": evaluate_loss(model, fixed_lm_batches(data.val, block, 32, 32, seed=1))}
    return {f"val_{k}": v for k, v in zoo.evaluate(model, config, data, "val").items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sweep", help="sweep file, e.g. configs/sweeps/bert-mlm.json")
    p.add_argument("--only", nargs="*", default=None, help="run only these candidates")
    p.add_argument("--out", default=None, help="results file (default lmlib/models/sweeps/<sweep name>.json)")
    args = p.parse_args()
    spec = json.loads(Path(args.sweep).read_text())
    base = zoo.load_config(spec["base"])
    base = zoo.load_config(dict(base, recipe=merge_recipe(base["recipe"], spec.get("base_overrides", {}))))
    out = Path(args.out or zoo.MODELS_DIR / "sweeps" / Path(args.sweep).name)
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    results.update(sweep=spec, hardware=zoo.hardware())
    data = zoo.zoo_data(base)
    for label, overrides in spec["candidates"].items():
        if args.only and label not in args.only:
            continue
        for seed in spec.get("seeds", [0]):
            over = merge_recipe(overrides, {"train": {"seed": seed}})
            config = candidate_config(base, over, spec["budget"], data)
            seed_everything(seed)
            model = zoo.build(config, data.tokenizer)
            t0 = time.time()
            try:
                hist = zoo.fit(model, config, data, progress=False)
            except FloatingPointError as exc:      # the loss became NaN or infinite: a result too
                results["runs"][f"{label} | seed {seed}"] = {"label": label, "seed": seed, "diverged": str(exc),
                                                             "recipe": config["recipe"]}
                print(f"{label} (seed {seed}): diverged ({exc})", flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1))
                continue
            seconds = time.time() - t0
            model.eval()
            run = {"label": label, "seed": seed, "recipe": config["recipe"],
                   "params": sum(q.numel() for q in model.parameters()), "steps": config["recipe"]["train"]["max_steps"],
                   "tokens": hist.tokens, "seconds": seconds, **score(model, config, data),
                   "eval_steps": hist.eval_steps, "evals": hist.evals}
            if run["steps"] <= 1000:  # short runs keep their step-by-step trace (loss, gradient norm)
                run.update(train_loss=hist.train_loss, grad_norm=hist.grad_norm, lr=hist.lr)
            results["runs"][f"{label} | seed {seed}"] = run
            shown = {k: round(v, 4) for k, v in run.items() if k.startswith("val_") and isinstance(v, float)}
            print(f"{label} (seed {seed}): {run['params'] / 1e6:.2f}M params, {run['steps']} steps, "
                  f"{seconds:.0f} s, {shown}", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
