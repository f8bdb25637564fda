"""Decoding strategies compared on the validation plays (chapter 9, "Text generation").

    python scripts/generation_experiment.py            # writes lmlib/models/experiments/ch09-generation.json

For prompts taken from the openings of speeches of the validation plays, the zoo model continues
each prompt with every decoding strategy (sampled ones with several seeds), and every continuation
is measured (:mod:`lmlib.textgen`): distinct-2, 4-gram repetition rate, the generating model's own
perplexity, bits per character under an independent scorer (llama-char), and how often a
real-vs-generated detector, trained on other prompts of the same plays, takes it for real text.
The real continuations of the same prompts are measured the same way (the reference point).
The test plays are not touched. One thread, seeded; about one CPU-minute.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmlib import data, stats, textgen, zoo  # noqa: E402
from lmlib.generation import generate  # noqa: E402

OUT = ROOT / "lmlib" / "models" / "experiments" / "ch09-generation.json"

#: name -> keyword arguments of lmlib.generation.generate
STRATEGIES = {
    "greedy": dict(do_sample=False),
    "T=0.7": dict(temperature=0.7),
    "T=1.0": dict(temperature=1.0),
    "T=1.3": dict(temperature=1.3),
    "top-k 20": dict(top_k=20),
    "top-p 0.9": dict(top_p=0.9),
    "greedy + rep 1.3": dict(do_sample=False, repetition_penalty=1.3),
    "T=1.0 + rep 1.3": dict(temperature=1.0, repetition_penalty=1.3),
}
SETTINGS = dict(model="gpt-bpe", scorer="llama-char", split_seed=0, prompts_per_play=8, prompt_tokens=16,
                new_tokens=48, seeds=[0, 1, 2], prompt_seed=0, detector_n_range=[1, 3],
                detector_weight_decays=[1e-4, 1e-3, 1e-2], n_boot=2000, n_stored_samples=8)


def make_prompts(tokenizer, plays, per_play: int, p_len: int, c_len: int, seed: int):
    """``per_play`` speeches of each play (a seeded draw among those at least ``p_len`` tokens
    long); prompt = the first ``p_len`` tokens of the speech (speaker name included), real
    continuation = the next ``c_len`` tokens of the play's text."""
    rng = random.Random(seed)
    items = []
    for play in plays:
        speeches = [s for s in play.speeches() if len(tokenizer.encode(s.text)) >= p_len]
        for s in sorted(rng.sample(speeches, per_play), key=lambda s: s.start):
            ids = tokenizer.encode(play.text[s.start:s.start + 12 * (p_len + c_len)])
            assert len(ids) >= p_len + c_len, (play.name, s.start)
            items.append({"play": play.name, "start": s.start, "prompt_ids": ids[:p_len],
                          "real_ids": ids[p_len:p_len + c_len]})
    return items


def per_text_metrics(tokenizer, gen_model, scorer, prompt_ids, cont_ids):
    """Each metric, one value per text (lists of equal length)."""
    prompts = [tokenizer.decode(p) for p in prompt_ids]
    conts = [tokenizer.decode(c) for c in cont_ids]
    self_nll = textgen.continuation_nll(gen_model, [p + c for p, c in zip(prompt_ids, cont_ids)],
                                        [len(p) for p in prompt_ids])
    bpc = textgen.continuation_bits_per_char(scorer.model, scorer.tokenizer, prompts, conts)
    return conts, {
        "distinct_2": [textgen.distinct_n([c], 2) for c in conts],
        "repetition_4": [textgen.repetition_rate(c, 4) for c in conts],
        "self_nll_per_token": (self_nll / torch.tensor([len(c) for c in cont_ids])).tolist(),
        "scorer_bits_per_char": bpc.tolist(),
    }


def summarize(per_seed: list[dict], corpus_distinct: list[float], n_boot: int) -> dict:
    """Per metric: the mean over prompts of the per-prompt value averaged over seeds, a 95%
    bootstrap interval over prompts, and the per-seed means (their sd shows the seed noise)."""
    out = {}
    for name in per_seed[0]:
        vals = torch.tensor([run[name] for run in per_seed], dtype=torch.float64)   # (seeds, prompts)
        iv = stats.bootstrap_mean(vals.mean(0), n_boot=n_boot, seed=0)
        seed_means = vals.mean(1).tolist()
        out[name] = {"mean": iv.estimate, "low": iv.low, "high": iv.high, "seed_means": seed_means,
                     "seed_sd": stats.mean_sd(seed_means)[1] if len(seed_means) > 1 else 0.0}
    out["corpus_distinct_2"] = {"seed_values": corpus_distinct, "mean": sum(corpus_distinct) / len(corpus_distinct)}
    return out


def interval(iv) -> dict:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--prompts-per-play", type=int, default=SETTINGS["prompts_per_play"])
    args = ap.parse_args(argv)
    settings = dict(SETTINGS, prompts_per_play=args.prompts_per_play)
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()

    gen_zoo, scorer = zoo.load(settings["model"]), zoo.load(settings["scorer"])
    tok, model = gen_zoo.tokenizer, gen_zoo.model
    split = data.split_plays(settings["split_seed"])
    plays = data.load_plays(list(split.val))
    items = make_prompts(tok, plays, settings["prompts_per_play"], settings["prompt_tokens"],
                         settings["new_tokens"], settings["prompt_seed"])
    prompt_ids = [it["prompt_ids"] for it in items]
    idx = torch.tensor(prompt_ids)                                                     # (N, P)
    N, P = idx.shape
    train = [i for i in range(N) if i % 2 == 0]                                        # detector training prompts
    held = [i for i in range(N) if i % 2 == 1]                                         # detector evaluation prompts
    n_boot = settings["n_boot"]
    k = settings["n_stored_samples"]

    results, samples, timings = {}, {}, {}
    real_conts, real_m = per_text_metrics(tok, model, scorer, prompt_ids, [it["real_ids"] for it in items])
    results["real text"] = summarize([real_m], [textgen.distinct_n(real_conts, 2)], n_boot)
    samples["real text"] = real_conts[:k]

    for name, kw in STRATEGIES.items():
        c1 = time.process_time()
        sampled = kw.get("do_sample", True)
        seeds = settings["seeds"] if sampled else settings["seeds"][:1]
        per_seed, conts_by_seed, corpus = [], [], []
        for seed in seeds:
            out = generate(model, idx, settings["new_tokens"], generator=torch.Generator().manual_seed(seed), **kw)
            conts, m = per_text_metrics(tok, model, scorer, prompt_ids, out[:, P:].tolist())
            per_seed.append(m)
            conts_by_seed.append(conts)
            corpus.append(textgen.distinct_n(conts, 2))
        res = summarize(per_seed, corpus, n_boot)
        det = textgen.fit_detector([real_conts[i] for i in train], [conts_by_seed[0][i] for i in train],
                                   n_range=tuple(settings["detector_n_range"]),
                                   weight_decays=settings["detector_weight_decays"])
        gen_held = [c[i] for c in conts_by_seed for i in held]
        groups = [i for _ in conts_by_seed for i in held]                                # texts of one prompt together
        res["detector"] = {
            "weight_decay": det.weight_decay, "selection_accuracy": {str(k_): v for k_, v in det.selection_accuracy.items()},
            "fooled_rate": interval(textgen.fraction_judged_real(det, gen_held, groups=groups, n_boot=n_boot)),
            "real_accuracy": interval(textgen.fraction_judged_real(det, [real_conts[i] for i in held], n_boot=n_boot)),
            "n_generated": len(gen_held), "n_real": len(held)}
        res["per_prompt_distinct_2_seed0"] = per_seed[0]["distinct_2"]
        results[name] = res
        samples[name] = conts_by_seed[0][:k]
        timings[name] = time.process_time() - c1
        print(f"{name:<18} distinct-2 {res['distinct_2']['mean']:.3f}  rep-4 {res['repetition_4']['mean']:.3f}  "
              f"self ppl {math.exp(res['self_nll_per_token']['mean']):6.1f}  "
              f"scorer bpc {res['scorer_bits_per_char']['mean']:.3f}  "
              f"fooled {res['detector']['fooled_rate']['estimate']:.2f}  ({timings[name]:.0f} cpu-s)", flush=True)

    doc = {"settings": settings, "strategies": {n: {k_: v for k_, v in kw.items()} for n, kw in STRATEGIES.items()},
           "val_plays": list(split.val), "n_prompts": N, "detector_train_prompts": len(train),
           "detector_held_prompts": len(held),
           "prompts": [{"play": it["play"], "start": it["start"], "prompt_ids": it["prompt_ids"]} for it in items],
           "prompt_texts": [tok.decode(p) for p in prompt_ids[:k]],
           "results": results, "samples": samples, "cpu_seconds_per_strategy": timings,
           "cpu_seconds": time.process_time() - c0, "wall_seconds": time.time() - t0,
           "threads": torch.get_num_threads(), "hardware": zoo.hardware(),
           "command": "python scripts/generation_experiment.py"}
    Path(args.out).write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}: {doc['cpu_seconds']:.0f} cpu-s, {doc['wall_seconds']:.0f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
