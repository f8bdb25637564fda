"""Command line: pretrain a course model from a JSON config file.

    python -m lmlib.train --config configs/gpt-char.json     # a zoo model (see lmlib.zoo)
    python -m lmlib.train --config configs/shakespeare_char.json
    python -m lmlib.train --config configs/shakespeare_char.json --out runs/ch05 --cache

A *zoo config* (it has a ``"kind"``: see :mod:`lmlib.zoo`) trains that zoo model and writes
its weights, card and tokenizer to ``lmlib/models/`` (or ``--out``). Any other config file holds
a *recipe* in the format of :data:`lmlib.pretrained.COURSE_GPT_RECIPE`
(sections ``data``, ``model``, ``train``); any setting left out takes the default of that
recipe. Two optional top-level keys control the run itself and do not change the result:
``out_dir`` (default ``runs/<config name>``) and ``checkpoint_interval`` (default 500 steps).

The run writes ``<out_dir>/checkpoint.safetensors`` every ``checkpoint_interval`` steps (model,
optimiser, RNG states, history: see :mod:`lmlib.checkpoint`); ``--resume`` continues from it and
ends with exactly the weights an uninterrupted run would have. At the end it evaluates the
model on the whole text of the held-out test plays and writes ``<out_dir>/metrics.json`` (loss
in nats per character, perplexity, bits per character) and ``<out_dir>/history.json``, and
prints a sample. With ``--cache`` the trained model is also stored in the lmlib cache, so that
``lmlib.pretrained.course_gpt(recipe)`` in a notebook loads it instead of training.
``--stop-after N`` stops after step ``N`` of the schedule with a checkpoint, as an interrupted
run would; ``--device cuda`` trains on a GPU.

On several processes, with data parallelism (see :mod:`lmlib.distributed`)::

    torchrun --standalone --nproc_per_node 2 -m lmlib.train --config configs/ddp-demo.json

The recipe's ``batch_size`` stays the global batch: each of the 2 processes trains on half of
it, and the run ends with the weights one process would reach (up to float rounding). Only
rank 0 writes files and prints; a checkpoint resumes on any number of processes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a shared, busy machine spinning threads slow
# training many times over. Only effective when set before torch starts (as with `python -m`).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

__all__ = ["main", "evaluate_heldout", "load_config"]

RUN_KEYS = ("out_dir", "checkpoint_interval")


def load_config(path: str | Path) -> tuple[dict, dict]:
    """``(recipe, run_options)`` from a JSON config file; errors name the problem."""
    from lmlib.pretrained import COURSE_GPT_RECIPE, _check_gpt_recipe, merge_recipe
    from lmlib.validation import check_int, check_path

    path = check_path("path", path, who="load_config")
    if not path.is_file():
        raise FileNotFoundError(f"no config file at {path}")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the config must be a JSON object")
    run = {k: raw.pop(k) for k in RUN_KEYS if k in raw}
    unknown = sorted(set(raw) - set(COURSE_GPT_RECIPE))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; expected {sorted(COURSE_GPT_RECIPE)} "
                         f"and optionally {list(RUN_KEYS)}")
    for section, value in raw.items():
        if section != "version" and not isinstance(value, dict):
            raise ValueError(f"{path}: section {section!r} must be a JSON object, got {value!r:.60}")
    recipe = merge_recipe(COURSE_GPT_RECIPE, raw)
    _check_gpt_recipe(recipe, where=str(path), run_keys=RUN_KEYS)
    if "out_dir" in run and (not isinstance(run["out_dir"], str) or not run["out_dir"]):
        raise ValueError(f"{path}: out_dir must be a non-empty string (a folder), got {run['out_dir']!r}")
    if "checkpoint_interval" in run:
        check_int("checkpoint_interval", run["checkpoint_interval"], min=1, who=str(path))
    run.setdefault("out_dir", str(Path("runs") / path.stem))
    run.setdefault("checkpoint_interval", 500)
    return recipe, run


@torch.no_grad()
def evaluate_heldout(model, ids: torch.Tensor, block_size: int, batch_size: int = 64) -> dict[str, float]:
    """Loss (nats per token), perplexity and bits per token over ALL of ``ids``, in consecutive
    windows of ``block_size`` tokens (:func:`lmlib.training.sequential_lm_batches`). For a
    character model, bits per token are bits per character."""
    from lmlib.training import evaluate_loss, sequential_lm_batches

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"evaluate_heldout: model must be an nn.Module, got {type(model).__name__}")
    loss = evaluate_loss(model, sequential_lm_batches(ids, block_size, batch_size))
    return {"loss": loss, "perplexity": math.exp(loss), "bits_per_char": loss / math.log(2),
            "tokens": len(ids) - 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lmlib.train",
        description="Pretrain the course's character-level GPT on the training plays, with checkpoints, "
                    "and evaluate it on the held-out test plays.",
        epilog="Example: python -m lmlib.train --config configs/shakespeare_char.json. "
               "The config is a JSON object with optional sections 'data', 'model', 'train' "
               "(see lmlib.pretrained.COURSE_GPT_RECIPE for every setting and its default) and the "
               "optional run keys 'out_dir' and 'checkpoint_interval'.")
    parser.add_argument("--config", required=True,
                        help="JSON config file: a recipe, or a zoo config such as configs/gpt-char.json")
    parser.add_argument("--out", default=None, help="output folder (overrides out_dir of the config)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from <out>/checkpoint.safetensors (bitwise the same result)")
    parser.add_argument("--cache", action="store_true",
                        help="also store the trained model in the lmlib cache (LMLIB_CACHE or ~/.cache/lmlib)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                        help="stop after this many steps, with a checkpoint (to demonstrate --resume)")
    if argv is not None:
        from lmlib.validation import check_sequence

        argv = check_sequence("argv", argv, of=str, who="main")
    args = parser.parse_args(argv)

    from lmlib import distributed
    from lmlib.generation import generate_text
    from lmlib.pretrained import _build_course_gpt, course_data, store, train_course_gpt
    from lmlib.training import seed_everything
    from lmlib.validation import check_device

    try:
        check_device("--device", args.device, who="python -m lmlib.train")
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    if args.stop_after is not None and args.stop_after < 1:
        parser.error(f"--stop-after must be a number of steps >= 1, got {args.stop_after}")
    if _is_zoo_config(args.config):
        if os.environ.get("WORLD_SIZE", "1") != "1":
            parser.error("a zoo config trains in one process: run it with python, not torchrun")
        return _make_zoo_model(parser, args)
    try:
        recipe, run = load_config(args.config)
    except (TypeError, ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if recipe["data"]["batch_size"] % world:
        parser.error(f"batch_size {recipe['data']['batch_size']} must be a multiple of the {world} processes")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or run["out_dir"])
    ckpt_path = out / "checkpoint.safetensors"
    if args.resume and not ckpt_path.exists():
        parser.error(f"--resume: there is no checkpoint at {ckpt_path}")
    rank, world = distributed.init_from_env(args.device)
    say = print if rank == 0 else (lambda *a, **k: None)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.json").write_text(json.dumps(recipe, indent=2))

    data = course_data(recipe["data"]["split_seed"])
    seed_everything(recipe["train"].get("seed", 0))
    model = _build_course_gpt(recipe, data.tokenizer.vocab_size)
    say(f"model: {sum(p.numel() for p in model.parameters()):,} parameters; "
        f"training on {len(data.train):,} characters, {recipe['train']['max_steps']} steps"
        + (f" on {world} processes" if world > 1 else ""))
    t0 = time.time()
    history = train_course_gpt(model, recipe, data, progress=not args.no_progress,
                               checkpoint_path=str(ckpt_path), checkpoint_interval=run["checkpoint_interval"],
                               resume_from=str(ckpt_path) if args.resume else None,
                               stop_after=args.stop_after, device=args.device)
    train_seconds = time.time() - t0
    distributed.destroy()
    if rank != 0:
        return 0
    if args.stop_after is not None and history.steps and history.steps[-1] < recipe["train"]["max_steps"]:
        print(f"stopped after step {history.steps[-1]}; continue with --resume ({ckpt_path})")
        return 0
    model.to("cpu").eval()
    metrics = evaluate_heldout(model, data.test, recipe["model"]["block_size"])
    metrics["train_seconds"] = train_seconds
    metrics["val_loss_last"] = history.evals["val loss"][-1]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "history.json").write_text(json.dumps(history.to_dict()))
    print(f"held-out test plays: loss {metrics['loss']:.4f} nats/char, perplexity {metrics['perplexity']:.3f}, "
          f"{metrics['bits_per_char']:.4f} bits/char ({train_seconds / 60:.1f} min of training)")
    if args.cache:
        path = store("course-gpt", recipe, model, history)
        print(f"stored in the cache: {path}")
    g = torch.Generator().manual_seed(0)
    print("sample:\n" + generate_text(model, data.tokenizer, "KING LEAR:\n", 300, temperature=0.8, generator=g))
    return 0


def _is_zoo_config(path: str) -> bool:
    """A zoo config (see :mod:`lmlib.zoo`) names its model's ``kind``; a plain recipe does not."""
    try:
        raw = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return False                     # load_config reports the problem
    return isinstance(raw, dict) and "kind" in raw


def _make_zoo_model(parser: argparse.ArgumentParser, args) -> int:
    """Train, evaluate and write a zoo model (``lmlib/models/NAME.*``, or ``--out``)."""
    from lmlib import zoo

    if args.resume or args.cache:
        parser.error("--resume and --cache are for plain recipes; a zoo config always trains from scratch")
    try:
        config = zoo.load_config(args.config)
    except (TypeError, ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    card = zoo.make(config, out_dir=args.out, progress=not args.no_progress,
                    command=f"python -m lmlib.train --config {args.config}")
    m = card["metrics"]["test"]
    shown = {k: round(v, 4) for k, v in m.items() if isinstance(v, float)}
    print(f"{card['name']}: {card['params']:,} parameters, {card['tokens_seen']:,} tokens, "
          f"{card['train_seconds'] / 60:.1f} min of training; held-out test plays: {shown}")
    print(f"written to {Path(args.out) if args.out else zoo.MODELS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
