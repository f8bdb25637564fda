"""A scaling-law sweep on one CPU thread: the runs that the chapter on scale fits.

    python scripts/scaling_sweep.py --config configs/experiments/scaling-sweep.json
    python scripts/scaling_sweep.py --config configs/experiments/scaling-sweep.json --phase fit   # refit only

Every point is one :func:`lmlib.scaling.run_point`: a course GPT of one shape (``shapes``, as
``[n_layer, n_embd, n_head]``) trained on the character-level training plays for one budget of
``tokens``, scored on fixed batches of the *validation* plays (the test plays are never used).
Each point is its own run, with a cosine schedule that ends at its own budget. Reading the
losses of the smaller budgets off one long run would be cheaper, but wrong: halfway through a
long cosine the learning rate is still high and the weights have not settled, so that loss is
higher than the loss of a run that was *planned* for half as many tokens (Hoffmann et al., 2022,
:cite:`hoffmann2022training`, make this point against Kaplan et al., 2020,
:cite:`kaplan2020scaling`). A truncated schedule is not a finished one.

Phases, in order (``--phase all``):

1. ``lr``: the learning rate. The smallest and the largest shape train for ``lr_check_tokens``
   at every rate of ``lr_grid``; the rate with the lowest mean validation loss over the two is
   used for the whole sweep (one rate for all sizes, so that the rate is not a hidden variable
   of the fit; chosen on the validation plays).
2. ``sweep``: every shape at every budget, seed ``seed``; then the ``noise_points`` again at every
   ``noise_seeds``: the spread between seeds is the scatter a single run carries.
3. ``kernel``: the ``kernel_check_points`` again, same seed, in a fresh process with
   ``ATEN_CPU_CAPABILITY=default`` (PyTorch's plain CPU kernels instead of the vector ones this
   CPU supports): the difference is what a different machine may change in a live re-run.
4. ``fit``: :func:`lmlib.scaling.fit_scaling_law` on the grid runs (seed ``seed``), a check with
   more starting points, :func:`lmlib.scaling.bootstrap_fit` and the compute-optimal split at
   every ``compute_budgets``.

Runs are kept in ``_build/scaling-runs/`` (one file per run), so an interrupted sweep resumes and
``--phase fit`` refits without training. Results go to
``lmlib/models/experiments/ch10-scaling.json``: the settings, the hardware, every run's ``N``,
``D``, validation loss and seconds, the seed noise, the kernel check and the fits. One process,
one thread (``torch.set_num_threads(1)``): the 35 training runs took 19 CPU-minutes on a shared
machine, the bootstrap (300 refits) about 3 more. The learning rate 3e-3 was chosen: at the
short budget it beat 1e-3 and 1e-2 on both the smallest and the largest shape.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "lmlib" / "models" / "experiments" / "ch10-scaling.json"
RUNS = ROOT / "_build" / "scaling-runs"
USED: list[dict] = []        # every run this invocation read or trained (for the total CPU time)
TRAIN_MISSING = True         # False with --phase fit: every run must be in RUNS already


def run_name(n_layer: int, n_embd: int, n_head: int, tokens: int, lr: float, seed: int, kernel: str = "") -> str:
    return f"L{n_layer}-E{n_embd}-H{n_head}-D{tokens}-lr{lr:g}-s{seed}{'-' + kernel if kernel else ''}"


def point(settings: dict, data, shape, tokens: int, lr: float, seed: int, kernel: str = "") -> dict:
    """One run of :func:`lmlib.scaling.run_point`, read from ``RUNS`` when it was trained before."""
    from lmlib.scaling import run_point

    path = RUNS / f"{run_name(*shape, tokens, lr, seed, kernel)}.json"
    if path.is_file():
        USED.append(json.loads(path.read_text()))
        return USED[-1]
    if not TRAIN_MISSING:
        raise SystemExit(f"--phase fit: run {path.stem} is not in {RUNS}; run the sweep first")
    r = run_point(*shape, tokens, lr=lr, seed=seed, block_size=settings["block_size"],
                  batch_size=settings["batch_size"], warmup_frac=settings["warmup_frac"],
                  eval_batches=settings["eval_batches"], data=data)
    r = dict(r, lr=lr, seed=seed, cpu_capability=torch.backends.cpu.get_cpu_capability())
    RUNS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r))
    os.replace(tmp, path)
    USED.append(r)
    print(f"{path.stem}: N={r['N']} val {r['val_loss']:.4f} ({r['seconds']:.1f} s)", flush=True)
    return r


def choose_lr(settings: dict, data) -> tuple[float, list[dict]]:
    shapes = [settings["shapes"][0], settings["shapes"][-1]]
    runs = [point(settings, data, s, settings["lr_check_tokens"], lr, settings["seed"])
            for s in shapes for lr in settings["lr_grid"]]
    mean = {lr: np.mean([r["val_loss"] for r in runs if r["lr"] == lr]) for lr in settings["lr_grid"]}
    return min(settings["lr_grid"], key=lambda lr: mean[lr]), runs


def seed_noise(settings: dict, data, lr: float) -> dict:
    points = []
    for *shape, tokens in settings["noise_points"]:
        seeds = [settings["seed"], *settings["noise_seeds"]]
        losses = [point(settings, data, shape, tokens, lr, s)["val_loss"] for s in seeds]
        points.append({"shape": shape, "tokens": tokens, "seeds": seeds, "val_loss": losses,
                       "sd": float(np.std(losses, ddof=1)), "range": max(losses) - min(losses)})
    return {"points": points, "max_range": max(p["range"] for p in points),
            "max_sd": max(p["sd"] for p in points)}


def kernel_runs(settings: dict, data, lr: float) -> None:
    """The kernel-check points, in this process (started with ATEN_CPU_CAPABILITY=default)."""
    for *shape, tokens in settings["kernel_check_points"]:
        point(settings, data, shape, tokens, lr, settings["seed"], kernel="default-kernels")


def kernel_check(settings: dict, config_path: str, lr: float) -> dict:
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", OMP_WAIT_POLICY="PASSIVE")
    if TRAIN_MISSING:
        subprocess.run([sys.executable, __file__, "--config", config_path, "--phase", "kernel", "--lr", repr(lr)],
                       env=env, check=True)
    points = []
    for *shape, tokens in settings["kernel_check_points"]:
        base = json.loads((RUNS / f"{run_name(*shape, tokens, lr, settings['seed'])}.json").read_text())
        other = json.loads((RUNS / f"{run_name(*shape, tokens, lr, settings['seed'], 'default-kernels')}.json")
                           .read_text())
        points.append({"shape": shape, "tokens": tokens, "val_loss": base["val_loss"],
                       "cpu_capability": base["cpu_capability"], "val_loss_other_kernels": other["val_loss"],
                       "other_cpu_capability": other["cpu_capability"],
                       "abs_diff": abs(base["val_loss"] - other["val_loss"])})
    return {"points": points, "max_abs_diff": max(p["abs_diff"] for p in points)}


def fit_all(settings: dict, runs: list[dict]) -> dict:
    from lmlib.scaling import bootstrap_fit, chinchilla_loss, compute_optimal, fit_scaling_law

    N, D, L = ([r[k] for r in runs] for k in ("N", "D", "val_loss"))
    f, b = settings["fit"], settings["bootstrap"]
    t = time.time()
    fit = fit_scaling_law(N, D, L, delta=f["delta"], n_starts=f["n_starts"])
    fit_seconds = time.time() - t
    check = fit_scaling_law(N, D, L, delta=f["delta"], n_starts=f["check_n_starts"])
    t = time.time()
    boot = bootstrap_fit(N, D, L, compute=settings["compute_budgets"], delta=f["delta"], **b)
    boot_seconds = time.time() - t
    optimal = []
    for c, ratio in zip(settings["compute_budgets"], boot["tokens_per_param"]):
        optimal.append(dict(compute_optimal(c, fit), compute=c,
                            tokens_per_param_interval=[ratio["low"], ratio["high"]]))
    residuals = np.log(L) - np.log(chinchilla_loss(N, D, fit))
    return {"fit": fit, "fit_seconds": fit_seconds, "fit_more_starts": check, "bootstrap": boot,
            "bootstrap_seconds": boot_seconds, "compute_optimal": optimal,
            "max_abs_log_residual": float(np.abs(residuals).max()),
            "range": {"N": [min(N), max(N)], "D": [min(D), max(D)],
                      "C": [min(6 * n * d for n, d in zip(N, D)), max(6 * n * d for n, d in zip(N, D))]}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="configs/experiments/scaling-sweep.json")
    p.add_argument("--phase", choices=("all", "kernel", "fit"), default="all")
    p.add_argument("--lr", type=float, help="with --phase kernel: the sweep's learning rate")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = json.loads(Path(args.config).read_text())
    from lmlib.pretrained import course_data
    from lmlib.zoo import hardware

    global TRAIN_MISSING
    TRAIN_MISSING = args.phase != "fit"
    data = course_data(settings["split_seed"])
    if args.phase == "kernel":
        kernel_runs(settings, data, args.lr)
        return
    t0 = time.time()
    lr, lr_runs = choose_lr(settings, data)
    print(f"learning rate: {lr:g}", flush=True)
    runs = [point(settings, data, shape, tokens, lr, settings["seed"])
            for shape in settings["shapes"] for tokens in settings["tokens"]]
    noise = seed_noise(settings, data, lr)
    kernel = kernel_check(settings, args.config, lr)
    keep = ("n_layer", "n_embd", "n_head", "N", "D", "steps", "lr", "seed", "val_loss", "seconds")
    short = lambda r: {k: r[k] for k in keep}  # noqa: E731
    distinct = {(r["n_layer"], r["n_embd"], r["n_head"], r["D"], r["lr"], r["seed"], r["cpu_capability"]): r["seconds"]
                for r in USED}
    train_seconds = sum(distinct.values())
    results = {"settings": settings, "command": f"python scripts/scaling_sweep.py --config {args.config}",
               "hardware": dict(hardware(), threads=torch.get_num_threads()),
               "lr_check": [short(r) for r in lr_runs], "chosen_lr": lr,
               "runs": [short(r) for r in runs], "seed_noise": noise, "kernel_check": kernel,
               "train_cpu_seconds_all_runs": train_seconds}
    results.update(fit_all(settings, runs))
    results["script_seconds"] = time.time() - t0
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    f = results["fit"]
    print(f"fit: E={f['E']:.3f} A={f['A']:.3g} alpha={f['alpha']:.3f} B={f['B']:.3g} beta={f['beta']:.3f}; "
          f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
