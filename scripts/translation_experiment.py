"""Chapter 9's translation experiment: an encoder-decoder against a decoder-only GPT on CC-CEDICT.

    python scripts/translation_experiment.py        # train what is missing, decode, score, write the results

Two processes can share the work (one thread each), e.g. ``--phase train`` twice in parallel, then
``--phase decode --decode seq2seq`` beside ``--phase decode --decode lm zoo``, then ``--phase report``.
About 90 CPU-minutes of training (ten runs of 8-9 minutes at one thread) and 25 of decoding.

Both models have about 2.2M parameters and the same data, batches and schedule shape. Training
compute is matched: the GPT, which spends about twice the FLOPs of a step of the encoder-decoder
(measured here with ``torch.utils.flop_counter``), trains for proportionally fewer steps. Each
architecture's learning rate is chosen from the grid by validation loss at seed 0; that rate is then
trained at every seed. The budget is the encoder-decoder's 2,500 steps of 64 examples, under half
of what the zoo's ``cedict-translator`` was given (6,000 length-bucketed steps).

Decoding: greedy for every run and for the zoo model, on all test words. Beam search (width 5) for
the encoder-decoder's seeds, on a fixed sample of the test words (a beam costs 4-7 times a greedy
pass), with its length penalty chosen per task on a sample of validation words (seed 0). The test
words are decoded once, at the end. Writes ``lmlib/models/experiments/ch09-translation.json``
(settings, FLOPs, the validation losses of the grid, every run's history summary, validation and
test metrics) and ``ch09-translation-predictions.json`` (every test prediction, which the chapter
re-scores).
Trained runs are kept in ``_build/translation-runs/`` so that an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lmlib import translation as T
from lmlib import translation_eval as te
from lmlib import zoo
from lmlib.checkpoint import load_checkpoint, save_checkpoint
from lmlib.training import seed_everything

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "experiments" / "translation.json"
OUT = ROOT / "lmlib" / "models" / "experiments" / "ch09-translation.json"
PREDICTIONS = OUT.with_name("ch09-translation-predictions.json")
RUNS = ROOT / "_build" / "translation-runs"
ARCHS = ("seq2seq", "lm")


def build(arch: str, settings: dict, vocab):
    return (T.encoder_decoder(vocab, **settings["seq2seq"]["model"]) if arch == "seq2seq"
            else T.decoder_only(vocab, **settings["lm"]["model"]))


def flops_per_step(settings: dict, data) -> dict:
    """Forward + backward FLOPs of one training batch, averaged over the same fixed batches."""
    g = torch.Generator().manual_seed(0)
    n, bs = settings["flop_batches"], settings["train"]["batch_size"]
    batches = [[data.train[i] for i in torch.randint(0, len(data.train), (bs,), generator=g).tolist()]
               for _ in range(n)]
    out = {}
    for arch in ARCHS:
        model = build(arch, settings, data.vocab)
        total = 0
        for b in batches:
            with FlopCounterMode(display=False) as counter:
                T.batch_loss(model, data.vocab, b).backward()
            total += counter.get_total_flops()
        out[arch] = {"flops_per_step": total / n, "params": sum(p.numel() for p in model.parameters())}
    steps = settings["seq2seq"]["steps"]
    out["seq2seq"]["steps"] = steps
    out["lm"]["steps"] = round(steps * out["seq2seq"]["flops_per_step"] / out["lm"]["flops_per_step"])
    for arch in ARCHS:
        out[arch]["train_flops"] = out[arch]["flops_per_step"] * out[arch]["steps"]
    return out


def run_name(arch: str, lr: float, seed: int) -> str:
    return f"{arch}-lr{lr:g}-s{seed}"


def train_one(arch: str, lr: float, seed: int, settings: dict, data, budget: dict) -> dict:
    """Train one run and store it in RUNS."""
    name = run_name(arch, lr, seed)
    seed_everything(seed)
    model = build(arch, settings, data.vocab)
    history = T.train_translator(model, data.vocab, data.train, steps=budget[arch]["steps"], lr=lr, seed=seed,
                                 progress=False, **settings["train"])
    record = {"source": "trained", "seconds": history.seconds, "train_loss": history.train_loss,
              "tokens": history.tokens}
    return finish(name, model, record, data)


def finish(name: str, model, record: dict, data) -> dict:
    losses = record.pop("train_loss")
    every = 25
    record["train_loss_every_25"] = [sum(losses[i:i + every]) / len(losses[i:i + every])
                                     for i in range(0, len(losses), every)]
    record["val_loss"] = T.heldout_loss(model, data.vocab, data.val)
    for task in T.TASKS:
        record[f"val_loss_{task}"] = T.heldout_loss(model, data.vocab, [e for e in data.val if e.task == task])
    save_checkpoint(RUNS / f"{name}.safetensors", model, extra={"run": name})
    tmp = RUNS / f"{name}.json.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, RUNS / f"{name}.json")
    print(f"{name}: val loss {record['val_loss']:.4f} ({record['seconds']:.0f} s)", flush=True)
    return record


def claim(name: str) -> bool:
    """True when this worker may train ``name`` (not done, not being trained by another)."""
    if (RUNS / f"{name}.json").is_file():
        return False
    try:
        os.close(os.open(RUNS / f"{name}.lock", os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def best_lr(arch: str, settings: dict) -> float | None:
    """The grid's rate with the lowest validation loss at seed 0, once the whole grid is done."""
    files = [RUNS / f"{run_name(arch, lr, 0)}.json" for lr in settings["lr_grid"]]
    if not all(f.is_file() for f in files):
        return None
    losses = [json.loads(f.read_text())["val_loss"] for f in files]
    return settings["lr_grid"][losses.index(min(losses))]


def phase_train(settings: dict, data, budget: dict) -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    for arch in ARCHS:                                   # the learning-rate grid, seed 0
        for lr in settings["lr_grid"]:
            if claim(run_name(arch, lr, 0)):
                train_one(arch, lr, 0, settings, data, budget)
    for arch in ARCHS:                                   # the chosen rate at the other seeds
        while (lr := best_lr(arch, settings)) is None:   # another worker is finishing the grid
            time.sleep(20)
        for seed in settings["seeds"][1:]:
            if claim(run_name(arch, lr, seed)):
                train_one(arch, lr, seed, settings, data, budget)


def load_run(arch: str, lr: float, seed: int, settings: dict, data):
    model = build(arch, settings, data.vocab)
    load_checkpoint(RUNS / f"{run_name(arch, lr, seed)}.safetensors", model, restore_rng=False)
    return model.eval()


def scores(task: str, preds: list[str], examples, heteronym_chars: set[str], composable: list[bool]) -> dict:
    refs = [e.references for e in examples]
    if task == "pinyin":
        het, n_het = te.heteronym_accuracy([e.source for e in examples], preds, refs, heteronym_chars)
        return {"exact_match": te.exact_match(preds, refs), "syllable_error_rate": te.syllable_error_rate(preds, refs),
                "tone_accuracy": te.tone_accuracy(preds, refs), "heteronym_accuracy": het, "heteronym_positions": n_het}
    out = {"chrf": te.chrf(preds, refs), "bleu": te.bleu(preds, refs)}
    for label, keep in (("composable", True), ("unseen", False)):
        p = [x for x, c in zip(preds, composable) if c == keep]
        r = [x for x, c in zip(refs, composable) if c == keep]
        out[f"n_{label}"] = len(p)
        if p:
            out[f"chrf_{label}"], out[f"bleu_{label}"] = te.chrf(p, r), te.bleu(p, r)
    return out


def select(task: str, s: dict) -> float:
    return s["exact_match"] if task == "pinyin" else s["chrf"]


def subset(n_total: int, n: int, seed: int) -> list[int]:
    """A fixed random sample of ``n`` of ``n_total`` indices (sorted), for the costly beam decodings."""
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n_total, generator=g)[:n].tolist())


class Context:
    """The examples of each split and task, and what scoring them needs."""

    def __init__(self, settings: dict, data) -> None:
        self.settings, self.data = settings, data
        self.het = te.heteronyms(data.split.train)
        seen = {c for w in data.split.train for c in w.headword}
        self.ex = {p: {t: [e for e in getattr(data, p) if e.task == t] for t in T.TASKS} for p in ("val", "test")}
        self.comp = {p: [all(c in seen for c in e.source) for e in self.ex[p]["english"]] for p in ("val", "test")}
        d = settings["decode"]
        self.sub = {p: {t: subset(len(self.ex[p][t]), d[f"{p}_beam_words"], d["subset_seed"]) for t in T.TASKS}
                    for p in ("val", "test")}

    def decode(self, model, part: str, task: str, beam_size: int, lp: float, only=None) -> list[str]:
        ex = self.ex[part][task] if only is None else [self.ex[part][task][i] for i in only]
        d = self.settings["decode"]
        return T.translate(model, self.data.vocab, ex, beam_size=beam_size, length_penalty=lp,
                           batch_size=d["batch_size"], max_len=d["max_len"])

    def score(self, part: str, task: str, preds: list[str], only=None) -> dict:
        ex = self.ex[part][task] if only is None else [self.ex[part][task][i] for i in only]
        if task == "pinyin":
            return scores(task, preds, ex, self.het, [])
        comp = self.comp[part] if only is None else [self.comp[part][i] for i in only]
        return scores(task, preds, ex, self.het, comp)


def phase_decode(settings: dict, data, which: str) -> None:
    """Decode and score the runs of ``which`` ("seq2seq", "lm" or "zoo"); writes RUNS/decoded-<which>.json."""
    c, dec = Context(settings, data), settings["decode"]
    out = {"val": {}, "test": {}, "predictions": {}, "chosen_length_penalty": {}}
    t0 = time.time()
    if which == "zoo":
        zm = zoo.load(settings["zoo"])
        out["predictions"][settings["zoo"]] = {t: {"greedy": c.decode(zm.model, "test", t, 1, 1.0)} for t in T.TASKS}
        out["test"][settings["zoo"]] = {t: {"greedy": c.score("test", t, out["predictions"][settings["zoo"]][t]["greedy"])}
                                        for t in T.TASKS}
    else:
        lr = best_lr(which, settings)
        if which == "seq2seq":     # the length penalty of the beam, per task: validation words, seed 0
            model = load_run(which, lr, 0, settings, data)
            for t in T.TASKS:
                only = c.sub["val"][t]
                v = {"greedy": c.score("val", t, c.decode(model, "val", t, 1, 1.0, only), only)}
                for lp in dec["length_penalties"]:
                    v[f"beam lp={lp:g}"] = c.score("val", t, c.decode(model, "val", t, dec["beam_size"], lp, only), only)
                out["val"][t] = v
                out["chosen_length_penalty"][t] = max(dec["length_penalties"],
                                                      key=lambda a: select(t, v[f"beam lp={a:g}"]))
                print(which, t, {k: round(select(t, x), 4) for k, x in v.items()}, flush=True)
        for seed in settings["seeds"]:
            name = run_name(which, lr, seed)
            model = load_run(which, lr, seed, settings, data)
            out["test"][name], out["predictions"][name] = {}, {}
            for t in T.TASKS:
                greedy = c.decode(model, "test", t, 1, 1.0)
                res, pred = {"greedy": c.score("test", t, greedy)}, {"greedy": greedy}
                if which == "seq2seq":   # greedy and beam on the same sample of test words
                    only = c.sub["test"][t]
                    beam = c.decode(model, "test", t, dec["beam_size"], out["chosen_length_penalty"][t], only)
                    res["greedy_sample"] = c.score("test", t, [greedy[i] for i in only], only)
                    res["beam_sample"] = c.score("test", t, beam, only)
                    pred["beam_sample"] = beam
                out["test"][name][t], out["predictions"][name][t] = res, pred
            print(name, {t: round(select(t, out["test"][name][t]["greedy"]), 4) for t in T.TASKS}, flush=True)
    out["seconds"] = time.time() - t0
    (RUNS / f"decoded-{which}.json").write_text(json.dumps(out, ensure_ascii=False))


def phase_report(settings: dict, data, budget: dict) -> None:
    c = Context(settings, data)
    lrs = {arch: best_lr(arch, settings) for arch in ARCHS}
    runs = {arch: {} for arch in ARCHS}
    for arch in ARCHS:
        names = [run_name(arch, lr, 0) for lr in settings["lr_grid"]]
        names += [run_name(arch, lrs[arch], seed) for seed in settings["seeds"][1:]]
        for name in names:
            runs[arch][name] = json.loads((RUNS / f"{name}.json").read_text())
    parts = {w: json.loads((RUNS / f"decoded-{w}.json").read_text()) for w in ("seq2seq", "lm", "zoo")}
    results = {"settings": settings, "budget": budget, "chosen_lr": lrs, "runs": runs, "hardware": zoo.hardware(),
               "val": {"seq2seq": parts["seq2seq"]["val"]},
               "chosen_length_penalty": parts["seq2seq"]["chosen_length_penalty"],
               "test_beam_sample": c.sub["test"], "test": {},
               "decode_seconds": {w: p["seconds"] for w, p in parts.items()}}
    predictions = {"test_sources": {t: [e.source for e in c.ex["test"][t]] for t in T.TASKS}, "runs": {}}
    for p in parts.values():
        results["test"].update(p["test"])
        predictions["runs"].update(p["predictions"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    PREDICTIONS.write_text(json.dumps(predictions, ensure_ascii=False, separators=(",", ":")))
    print("wrote", OUT.relative_to(ROOT), "and", PREDICTIONS.relative_to(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phase", choices=("all", "train", "decode", "report"), default="all")
    parser.add_argument("--decode", choices=("seq2seq", "lm", "zoo"), nargs="*", default=["seq2seq", "lm", "zoo"],
                        help="which models --phase decode decodes (default: all; run two processes to share them)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = json.loads(CONFIG.read_text())
    data = T.cedict_data(settings["data"])
    RUNS.mkdir(parents=True, exist_ok=True)
    budget_file = RUNS / "budget.json"
    if budget_file.is_file():
        budget = json.loads(budget_file.read_text())
    else:
        budget = flops_per_step(settings, data)
        budget_file.write_text(json.dumps(budget))
    print({a: (budget[a]["steps"], f"{budget[a]['flops_per_step']:.3g}") for a in ARCHS}, flush=True)
    if args.phase in ("all", "train"):
        phase_train(settings, data, budget)
    if args.phase in ("all", "decode"):
        for which in args.decode:
            phase_decode(settings, data, which)
    if args.phase in ("all", "report"):
        phase_report(settings, data, budget)


if __name__ == "__main__":
    main()
