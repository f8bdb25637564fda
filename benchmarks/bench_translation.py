"""Chapter 9's two speed claims, measured side by side: length bucketing and beam search.

1. **Bucketing.** ``lmlib.translation.train_translator`` with ``bucket=1`` (every batch drawn at
   random, padded to its longest row) against ``bucket=8`` (eight batches' worth drawn, sorted by
   length, cut into batches): the same model, the same number of steps of the same batch size,
   interleaved. Prints seconds per step and target tokens per second, and the RATIO
   bucketed / random.
2. **Beam search.** ``lmlib.translation.translate`` of the zoo translator, greedy against beam
   search (``beam_size`` 5 by default), on the same test words of each task, interleaved. Prints
   seconds per word and the RATIO beam / greedy.

Usage::

    .venv/bin/python benchmarks/bench_translation.py            # both parts
    .venv/bin/python benchmarks/bench_translation.py --quick    # a fast smoke run

Run it on a quiet machine: one thread by default, since on a shared CPU more threads mostly
measure contention.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lmlib import translation as tr, zoo  # noqa: E402
from lmlib.benchmarking import time_pair  # noqa: E402


def bench_bucketing(model, vocab, examples, *, steps, batch_size, repeats):
    runs = {}

    def make(bucket):
        def fn():
            m = copy.deepcopy(model)
            runs[bucket] = tr.train_translator(m, vocab, examples, steps=steps, batch_size=batch_size, lr=1e-3,
                                               warmup_steps=0, seed=0, bucket=bucket, progress=False)
        return fn

    t = time_pair({"random": make(1), "bucketed": make(8)}, torch.device("cpu"), repeats)
    print(f"\n1. bucketing: {steps} steps of {batch_size}, median of {repeats} interleaved runs")
    print(f"{'batches':>10} {'s/step':>8} {'tokens/s':>9}")
    for name, bucket in (("random", 1), ("bucketed", 8)):
        h = runs[bucket]
        print(f"{name:>10} {t[name] / steps:>8.4f} {h.tokens / t[name]:>9.0f}")
    ratio = t["bucketed"] / t["random"]
    print(f"bucketed / random, time per step: {ratio:.2f}x"
          f" (target tokens trained on: {runs[8].tokens / runs[1].tokens:.2f}x)")
    return ratio


def bench_beam(model, vocab, examples, *, beam_size, repeats):
    print(f"\n2. beam search ({beam_size} beams) against greedy, {repeats} interleaved repeats")
    print(f"{'task':>8} {'words':>6} {'greedy ms/word':>15} {'beam ms/word':>13} {'ratio':>7}")
    ratios = {}
    for task in tr.TASKS:
        words = [e for e in examples if e.task == task]
        fns = {"greedy": lambda: tr.translate(model, vocab, words),
               "beam": lambda: tr.translate(model, vocab, words, beam_size=beam_size)}
        t = time_pair(fns, torch.device("cpu"), repeats)
        ratios[task] = t["beam"] / t["greedy"]
        print(f"{task:>8} {len(words):>6} {t['greedy'] / len(words) * 1e3:>15.2f} "
              f"{t['beam'] / len(words) * 1e3:>13.2f} {ratios[task]:>6.1f}x")
    return ratios


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=None, help="training steps per timed run (a multiple of 8)")
    p.add_argument("--words", type=int, default=None, help="test words per task for the beam comparison")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = args.steps or (8 if args.quick else 32)
    n_words = args.words or (16 if args.quick else 128)
    repeats = args.repeats or (1 if args.quick else 5)
    if steps % 8:
        p.error("--steps must be a multiple of 8 (one bucketed draw makes eight batches)")

    z = zoo.load("cedict-translator")
    recipe = z.config["recipe"]
    data = tr.cedict_data(recipe["data"], vocab=z.tokenizer)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); the zoo translator's shape, "
          f"batch {recipe['train']['batch_size']}")
    torch.manual_seed(0)
    fresh = tr.encoder_decoder(z.tokenizer, **recipe["model"])
    bench_bucketing(fresh, z.tokenizer, data.train, steps=steps, batch_size=recipe["train"]["batch_size"],
                    repeats=repeats)
    test = [e for task in tr.TASKS for e in [x for x in data.test if x.task == task][:n_words]]
    bench_beam(z.model, z.tokenizer, test, beam_size=args.beam_size, repeats=repeats)


if __name__ == "__main__":
    main()
