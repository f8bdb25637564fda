"""Chapter 9's transliteration model with one output token per syllable, against the table.

    python scripts/pinyin_syllables.py                          # every run, then the report
    python scripts/pinyin_syllables.py --phase train --dropout 0.0 --seed 0   # one run (to share the work)
    python scripts/pinyin_syllables.py --phase report

The zoo's ``cedict-translator`` spells pinyin letter by letter and learns two tasks at once; in
about two passes over the words it loses to the most-frequent-reading table. This experiment
changes three things, each a stated choice: the model learns transliteration only, its output
vocabulary is the training readings' syllables (``target_units="syllable"``: a reading is one
choice, a target under a third as long), and it sees about six passes over the pinyin words
(2,500 length-bucketed steps of 256). The encoder-decoder's shape is the zoo model's. Dropout is
chosen from ``dropout_grid`` by validation loss at seed 0; that value is trained at every seed.
Each run decodes the validation and the test words greedily; the test words are scored only by
the report, for the chosen setting. About 10 CPU-minutes per run at one thread.

Writes ``lmlib/models/experiments/ch09-pinyin-syllables.json``: the settings, every run's
training summary and validation loss, and the chosen runs' test predictions (the chapter
re-scores them against the table with paired intervals).
Runs are kept in ``_build/pinyin-syllable-runs/``, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from lmlib import translation as T
from lmlib.training import seed_everything

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "experiments" / "pinyin-syllables.json"
OUT = ROOT / "lmlib" / "models" / "experiments" / "ch09-pinyin-syllables.json"
RUNS = ROOT / "_build" / "pinyin-syllable-runs"


def pinyin(examples):
    return [e for e in examples if e.task == "pinyin"]


def run_name(dropout: float, seed: int) -> str:
    return f"dropout{dropout:g}-s{seed}"


def train_one(settings: dict, dropout: float, seed: int) -> dict:
    """Train one run (pinyin only, syllable vocabulary) and store its summary and predictions."""
    path = RUNS / f"{run_name(dropout, seed)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    data = T.cedict_data(settings["data"])
    train, val, test = pinyin(data.train), pinyin(data.val), pinyin(data.test)
    vocab = T.build_vocabularies(train, target_units="syllable")
    seed_everything(seed)
    model = T.encoder_decoder(vocab, dropout=dropout, **settings["model"])
    history = T.train_translator(model, vocab, train, seed=seed, progress=False, **settings["train"])
    dec = settings["decode"]
    losses = history.train_loss
    record = {"dropout": dropout, "seed": seed, "seconds": history.seconds, "tokens": history.tokens,
              "params": sum(p.numel() for p in model.parameters()), "target_vocab": vocab.target.vocab_size,
              "train_loss_every_25": [sum(losses[i:i + 25]) / len(losses[i:i + 25]) for i in range(0, len(losses), 25)],
              "val_loss": T.heldout_loss(model, vocab, val),
              "val_predictions": T.translate(model, vocab, val, **dec),
              "test_predictions": T.translate(model, vocab, test, **dec)}
    RUNS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    print(f"{run_name(dropout, seed)}: val loss {record['val_loss']:.4f} ({record['seconds']:.0f} s)", flush=True)
    return record


def report(settings: dict) -> None:
    grid = [json.loads((RUNS / f"{run_name(d, settings['seeds'][0])}.json").read_text())
            for d in settings["dropout_grid"]]
    chosen = min(grid, key=lambda r: r["val_loss"])["dropout"]
    runs = [json.loads((RUNS / f"{run_name(chosen, s)}.json").read_text()) for s in settings["seeds"]]
    summary = lambda r: {k: v for k, v in r.items() if not k.endswith("predictions")}  # noqa: E731
    result = {"settings": settings, "chosen_dropout": chosen,
              "grid": [summary(r) | {"val_predictions": r["val_predictions"]} for r in grid],
              "runs": [summary(r) | {"test_predictions": r["test_predictions"]} for r in runs]}
    OUT.write_text(json.dumps(result, ensure_ascii=False) + "\n")
    print(f"chose dropout {chosen}; wrote {OUT.relative_to(ROOT)}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phase", choices=("all", "train", "report"), default="all")
    p.add_argument("--dropout", type=float, help="with --phase train: the run's dropout")
    p.add_argument("--seed", type=int, help="with --phase train: the run's seed")
    args = p.parse_args(argv)
    settings = json.loads(CONFIG.read_text())
    if args.phase == "train":
        if args.dropout is None or args.seed is None:
            p.error("--phase train needs --dropout and --seed")
        train_one(settings, args.dropout, args.seed)
        return
    if args.phase == "all":
        for d in settings["dropout_grid"]:
            train_one(settings, d, settings["seeds"][0])
        chosen = min(settings["dropout_grid"],
                     key=lambda d: train_one(settings, d, settings["seeds"][0])["val_loss"])
        for s in settings["seeds"][1:]:
            train_one(settings, chosen, s)
    report(settings)


if __name__ == "__main__":
    main()
