"""Chapter 9's summarization measurement: dialogue -> the entrance direction that opens it.

    OMP_NUM_THREADS=1 python scripts/summarization_experiment.py     # about 6-9 CPU-minutes

Writes ``lmlib/models/experiments/ch09-summarization.json``: the settings, the machine, the
per-method ROUGE on the validation and the test plays (mean and a 95% bootstrap interval over
test examples), paired comparisons (over test examples, and across the seeds of the trained
model), the name-copying analysis, the stored outputs the notebook re-scores, and examples.
Every choice (the cue baseline's number of names) is made on the validation plays; the test
plays are scored once, at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

from lmlib import summarization as S
from lmlib import zoo
from lmlib.data import split_plays
from lmlib.stats import bootstrap_mean, paired_bootstrap, paired_t_interval
from lmlib.transformer import Transformer, TransformerConfig

OUT = Path(__file__).resolve().parents[1] / "lmlib" / "models" / "experiments" / "ch09-summarization.json"

SETTINGS = {
    "split_seed": 0,            # split_plays(0): the zoo models were pretrained on its training plays only
    "max_speeches": 6,          # speeches after the direction kept as the source (the run may end sooner)
    "max_chars": 300,           # the source is cut to this many characters (source_units)
    "max_target_tokens": 48,    # training pairs whose direction needs more BPE tokens are left out of training
    "max_new_tokens": 48,       # the longest summary the model may write
    "cue_max_names": [1, 2, 3, None],   # chosen on validation by ROUGE-L
    "select_by": "rougeL",
    "model": dict(d_model=64, n_heads=4, n_encoder_layers=2, n_decoder_layers=2, d_ff=256, dropout=0.1,
                  max_len=192, share_embeddings=True),
    "train": dict(steps=250, batch_size=32, lr=3e-3, warmup_steps=30),
    "seeds": [0, 1, 2],
    "n_boot": 2000,
    "n_examples": 6,
}
NAME = re.compile(r"\b[A-Z][A-Z'\-]+\b")     # a word in capitals: how the directions print a character's name


def names(text: str) -> list[str]:
    return [w for w in NAME.findall(text) if len(w) > 1]


def mean(xs):
    return sum(xs) / len(xs)


def interval(scores, seed=0):
    iv = bootstrap_mean(scores, n_boot=SETTINGS["n_boot"], seed=seed)
    return {"mean": iv.estimate, "low": iv.low, "high": iv.high}


def paired(a, b):
    iv = paired_bootstrap(a, b, n_boot=SETTINGS["n_boot"], seed=0)
    return {"diff": iv.estimate, "low": iv.low, "high": iv.high}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--steps", type=int, default=SETTINGS["train"]["steps"], help="(a quick check: fewer steps)")
    args = ap.parse_args()
    SETTINGS["train"]["steps"] = args.steps
    t_wall, t_cpu = time.time(), time.process_time()
    torch.manual_seed(0)
    split = split_plays(SETTINGS["split_seed"])

    def load(part):
        pairs = [p for n in split[part] for p in S.entrance_pairs(n, max_speeches=SETTINGS["max_speeches"])]
        cut = [S.source_units(p, max_chars=SETTINGS["max_chars"]) for p in pairs]
        return pairs, [u for u, _ in cut], sum(d for _, d in cut)

    data = {part: load(part) for part in ("train", "val", "test")}
    counts = {part: {"pairs": len(d[0]), "chars_dropped": d[2],
                     "chars_total": sum(len("\n\n".join(p.speeches)) for p in d[0])} for part, d in data.items()}
    refs = {part: [p.direction for p in data[part][0]] for part in data}

    # ---- methods that need no training -----------------------------------------------------
    bert = zoo.load("bert-mlm")
    outputs: dict[str, dict[str, list[str]]] = {"val": {}, "test": {}}
    for part in ("val", "test"):
        units = data[part][1]
        outputs[part]["lead"] = [S.lead_summary(u) for u in units]
        for k in SETTINGS["cue_max_names"]:
            outputs[part][f"cue-{k or 'all'}"] = [S.cue_summary(u, max_names=k) for u in units]
        flat = [s for u in units for s in u]
        emb, n_cut = S.bert_embeddings(bert, flat)
        counts[part]["bert_speeches_cut"], counts[part]["speeches"] = n_cut, len(flat)
        picks, o = [], 0
        for u in units:
            picks.append(u[S.centroid_extract(emb[o:o + len(u)])])
            o += len(u)
        outputs[part]["centroid-bert"] = picks
        outputs[part]["oracle-speech"] = [u[S.oracle_extract(u, r)] for u, r in zip(units, refs[part])]
    t_fixed = time.process_time() - t_cpu

    # ---- the abstractive model, one per seed ----------------------------------------------------
    codec = S.TextCodec.from_zoo(bert)
    src_train = ["\n\n".join(u) for u in data["train"][1]]
    keep = [i for i, r in enumerate(refs["train"]) if len(codec.encode(r)) <= SETTINGS["max_target_tokens"]]
    counts["train"]["pairs_trained_on"] = len(keep)
    src_train, tgt_train = [src_train[i] for i in keep], [refs["train"][i] for i in keep]
    runs = []
    for seed in SETTINGS["seeds"]:
        t0 = time.process_time()
        torch.manual_seed(seed)
        model = Transformer(TransformerConfig(codec.vocab_size, codec.vocab_size, **SETTINGS["model"]))
        losses = S.train_summarizer(model, codec, src_train, tgt_train, seed=seed, progress=False, **SETTINGS["train"])
        t_train = time.process_time() - t0
        run = {"seed": seed, "final_loss": mean(losses[-20:]), "train_cpu_s": t_train,
               "params": sum(p.numel() for p in model.parameters())}
        for part in ("val", "test"):
            run[part] = S.summarize(model, codec, ["\n\n".join(u) for u in data[part][1]],
                                    max_new_tokens=SETTINGS["max_new_tokens"])
        run["decode_cpu_s"] = time.process_time() - t0 - t_train
        runs.append(run)
        print(f"seed {seed}: loss {run['final_loss']:.3f}, {t_train:.0f} CPU-s training", flush=True)
    for part in ("val", "test"):
        for r in runs:
            outputs[part][f"abstractive-seed{r['seed']}"] = r[part]

    # ---- scores ----------------------------------------------------------------------------------
    scores = {part: {m: S.rouge_scores(outs, refs[part]) for m, outs in outputs[part].items()} for part in outputs}
    val_mean = {m: {k: mean(v) for k, v in sc.items()} for m, sc in scores["val"].items()}
    cue_keys = [f"cue-{k or 'all'}" for k in SETTINGS["cue_max_names"]]
    best_cue = max(cue_keys, key=lambda m: val_mean[m][SETTINGS["select_by"]])
    seeds = SETTINGS["seeds"]
    for part in ("val", "test"):      # per-example mean over seeds
        scores[part]["abstractive"] = {k: [mean(xs) for xs in zip(*(scores[part][f"abstractive-seed{s}"][k]
                                                                      for s in seeds))] for k in S.ROUGE_TYPES}
    methods = ["lead", best_cue, "centroid-bert", "oracle-speech", "abstractive"]
    test = {m: {k: interval(scores["test"][m][k]) for k in S.ROUGE_TYPES} for m in methods}
    per_seed = {k: [mean(scores["test"][f"abstractive-seed{s}"][k]) for s in seeds] for k in S.ROUGE_TYPES}
    comparisons = {}
    for a, b in [("abstractive", best_cue), ("abstractive", "centroid-bert"), ("abstractive", "lead"),
                 (best_cue, "lead"), ("centroid-bert", "lead"), ("oracle-speech", "centroid-bert")]:
        comparisons[f"{a} - {b}"] = {k: paired(scores["test"][a][k], scores["test"][b][k]) for k in S.ROUGE_TYPES}
    across_seeds = {}
    for b in (best_cue, "centroid-bert"):
        base = {k: mean(scores["test"][b][k]) for k in S.ROUGE_TYPES}
        across_seeds[f"abstractive - {b}"] = {}
        for k in S.ROUGE_TYPES:
            iv = paired_t_interval(per_seed[k], [base[k]] * len(seeds))
            across_seeds[f"abstractive - {b}"][k] = {"diff": iv.estimate, "low": iv.low, "high": iv.high}

    # ---- why: where the names in the summaries come from ----------------------------------------
    train_names = {w for r in refs["train"] for w in names(r)}

    def name_stats(outs, part):
        n = copied = seen_in_train = 0
        for out, u in zip(outs, data[part][1]):
            src = set(names("\n\n".join(u)))
            for w in names(out):
                n += 1
                copied += w in src
                seen_in_train += w in train_names and w not in src
        return {"names": n, "in_source": copied / max(n, 1), "not_in_source_but_in_train_directions":
                seen_in_train / max(n, 1)}

    why = {"reference": name_stats(refs["test"], "test"),
           best_cue: name_stats(outputs["test"][best_cue], "test")}
    for s in seeds:
        why[f"abstractive-seed{s}"] = name_stats(outputs["test"][f"abstractive-seed{s}"], "test")
    first_in_ref = [S.cue_summary(u, max_names=1)[len("Enter "):] in r for u, r in zip(data["test"][1], refs["test"])]
    why["first_speaker_named_in_direction"] = mean([float(x) for x in first_in_ref])
    why["outputs_starting_with_enter"] = {f"abstractive-seed{s}": mean(
        [float(o.startswith("Enter")) for o in outputs["test"][f"abstractive-seed{s}"]]) for s in seeds}

    # ---- examples and what the notebook re-scores -------------------------------------------------
    n_ex = SETTINGS["n_examples"]
    step = max(1, len(refs["test"]) // n_ex)
    examples = [{"play": data["test"][0][i].play, "act": data["test"][0][i].act, "scene": data["test"][0][i].scene,
                 "source": "\n\n".join(data["test"][1][i]), "reference": refs["test"][i],
                 **{m: outputs["test"][m][i] for m in ("lead", best_cue, "centroid-bert", "abstractive-seed0")}}
                for i in range(0, step * n_ex, step)]
    result = {
        "task": "dialogue after an entrance direction -> that direction (an indicative summary of who comes on stage)",
        "settings": SETTINGS, "split": {p: list(split[p]) for p in ("train", "val", "test")},
        "machine": zoo.hardware(), "counts": counts, "chosen_cue": best_cue,
        "val": val_mean, "val_abstractive_per_seed": {k: [mean(scores["val"][f"abstractive-seed{s}"][k]) for s in seeds]
                                                      for k in S.ROUGE_TYPES},
        "test": test, "test_abstractive_per_seed": per_seed, "comparisons": comparisons,
        "across_seeds": across_seeds, "why": why,
        "runs": [{k: v for k, v in r.items() if k not in ("val", "test")} for r in runs],
        "test_outputs": {m: outputs["test"][m] for m in (best_cue, "lead", "abstractive-seed0", "abstractive-seed1",
                                                          "abstractive-seed2", "centroid-bert")},
        "test_references": refs["test"],
        "examples": examples,
        "timing": {"cpu_s": time.process_time() - t_cpu, "wall_s": time.time() - t_wall, "fixed_methods_cpu_s": t_fixed},
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({m: {k: round(v["mean"], 3) for k, v in test[m].items()} for m in methods}, indent=1))
    print(f"chosen cue: {best_cue}; {result['timing']['cpu_s']:.0f} CPU-s, {result['timing']['wall_s']:.0f} s wall")


if __name__ == "__main__":
    main()
