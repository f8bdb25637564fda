"""From GPT-2 to Llama, one change at a time: the ablation that chapter 8 loads.

Every variant is a :class:`lmlib.llama.Llama` whose switches say which components it has
(:data:`lmlib.decoder_ablation.GPT2_SWITCHES` plus the variant's changes; with none it computes
exactly what :class:`lmlib.gpt.GPT` computes). All variants have the weights of the GPT-2 block
(``matched_ffn_hidden``: SwiGLU's three matrices are narrower, the parameters that GQA saves go to
the FFN), see the same training tokens, and so spend the same training FLOPs to within their
small differences in parameter count. Each is trained (:func:`lmlib.decoder_ablation.train_variant`)
with every seed of the spec on the training plays and scored on fixed batches of the
*validation* plays. The learning rate of the two end points (GPT-2 and Llama) is chosen first, on
the validation plays with the first seed, from the spec's grid, which is extended (x2 or /2, at
most twice) while the best value lies on its edge; every one-change variant uses GPT-2's. The
spec's ``lr_followups`` lists variants to train again, every seed, at other learning rates (for a
change that looks harmful at GPT-2's rate: is it the change, or the rate?).

    python scripts/ablate_decoder.py configs/experiments/decoder-ablation.json --jobs 2   # or: make ablation

Results go to ``lmlib/models/experiments/ch08-ablation.json``; the weights of the first seed's
GPT-2 and Llama at their chosen learning rates to ``ch08-gpt-2.safetensors`` and
``ch08-llama.safetensors`` beside it (about 0.8 MB each), which the chapter re-scores. Runs already
in the results file (same variant, seed, learning rate and settings) are reused, so an
interrupted sweep continues where it stopped; delete the file to train everything again. With
``--jobs 2`` two runs train at once, each on one thread.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402


def run_one(job: dict) -> dict:
    torch.set_num_threads(1)
    from lmlib.decoder_ablation import train_variant, validation_batches
    from lmlib.pretrained import course_data
    from lmlib.training import evaluate_loss

    spec, label, changes, seed, lr = job["spec"], job["label"], job["changes"], job["seed"], job["lr"]
    data = course_data(spec["split_seed"])
    model, hist = train_variant(spec, changes, seed=seed, lr=lr, data=data)
    config = model.config
    val = evaluate_loss(model, validation_batches(spec, data))
    block = spec["model"]["block_size"]
    n = model.num_params()
    if job.get("save"):                      # the weights the chapter re-scores live
        from lmlib.weights import save_weights
        save_weights(model, job["save"])
    return {"label": label, "seed": seed, "lr": lr, "changes": changes, "config": config.to_dict(),
            "params": n, "non_embedding_params": model.num_params(non_embedding=True),
            "train_flops": 6 * n * hist.tokens + 12 * config.n_layer * block * config.n_head * config.head_dim
            * hist.tokens, "tokens": hist.tokens, "train_seconds": hist.seconds,
            "tokens_per_second": hist.tokens / hist.seconds, "val_loss": val,
            "final_train_loss": sum(hist.train_loss[-20:]) / len(hist.train_loss[-20:]),
            "train_loss_every_10": hist.train_loss[9::10]}


def _key(label: str, changes: dict, seed: int, lr: float, spec: dict) -> str:
    """What makes two runs the same run (so a rerun of the script reuses finished ones)."""
    return json.dumps([label, changes, seed, lr, spec["model"], spec["train"], spec["split_seed"],
                       spec["eval_batches"]], sort_keys=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("spec", help="configs/experiments/decoder-ablation.json")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    p.add_argument("--out", default="lmlib/models/experiments/ch08-ablation.json")
    args = p.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.exists() else {}
    finished = {_key(r["label"], r["changes"], r["seed"], r["lr"], spec): r
                for r in old.get("lr_search", []) + old.get("runs", [])}
    from lmlib.zoo import hardware
    results = {"spec": spec, "hardware": dict(hardware(), threads=1, jobs=args.jobs), "lr_search": [], "runs": []}

    def weights(label: str, lr: float | None = None) -> Path:
        return out.parent / (f"ch08-{label.lower()}" + ("" if lr is None else f"-lr{lr:g}") + ".safetensors")

    def run_all(pool, jobs: list[dict], into: str) -> None:
        todo = []
        for job in jobs:
            key = _key(job["label"], job["changes"], job["seed"], job["lr"], spec)
            if key in finished:
                results[into].append(finished[key])
            else:
                todo.append(job)
        for r in pool.imap_unordered(run_one, todo):
            results[into].append(r)
            finished[_key(r["label"], r["changes"], r["seed"], r["lr"], spec)] = r
            print(f"{into} {r['label']} seed {r['seed']} lr={r['lr']:g}: val {r['val_loss']:.4f}, "
                  f"{r['tokens_per_second']:.0f} tok/s", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(dict(results, partial=list(finished.values())), indent=1))

    ends = {label: spec["variants"][label] for label in ("GPT-2", "Llama")}
    seed0 = spec["seeds"][0]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        # 1. learning rate of each end point, on the validation plays, with the first seed; a best
        #    value at the edge of the grid extends the grid (x2 or /2), at most twice
        grids = {label: list(spec["lr_grid"]) for label in ends}
        for _ in range(3):
            jobs = [dict(spec=spec, label=label, changes=ends[label], seed=seed0, lr=lr, save=str(weights(label, lr)))
                    for label in ends for lr in grids[label]
                    if not any(r["label"] == label and r["lr"] == lr for r in results["lr_search"])]
            run_all(pool, jobs, "lr_search")
            best = {label: min((r for r in results["lr_search"] if r["label"] == label),
                               key=lambda r: r["val_loss"])["lr"] for label in ends}
            grown = False
            for label in ends:
                g = sorted(grids[label])
                if best[label] == g[-1] and len(g) < len(spec["lr_grid"]) + 2:
                    grids[label].append(g[-1] * 2)
                    grown = True
                elif best[label] == g[0] and len(g) < len(spec["lr_grid"]) + 2:
                    grids[label].append(g[0] / 2)
                    grown = True
            if not grown:
                break
        results["chosen_lr"] = best
        for label in ends:                   # keep the weights of the chosen runs only
            for lr in grids[label]:
                if lr == best[label] and weights(label, lr).exists():
                    weights(label, lr).replace(weights(label))
                elif weights(label, lr).exists():
                    weights(label, lr).unlink()
        # 2. every variant with every seed (runs of the search are reused where they match)
        jobs = [dict(spec=spec, label=label, changes=changes, seed=seed,
                     lr=best["Llama"] if label == "Llama" else best["GPT-2"])
                for label, changes in spec["variants"].items() for seed in spec["seeds"]]
        run_all(pool, jobs, "runs")
        # 3. follow-ups: a variant that is worse at GPT-2's learning rate, at other rates, all seeds
        results["followups"] = []
        jobs = [dict(spec=spec, label=label, changes=spec["variants"][label], seed=seed, lr=lr)
                for label, lrs in spec.get("lr_followups", {}).items() for lr in lrs for seed in spec["seeds"]]
        run_all(pool, jobs, "followups")
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
