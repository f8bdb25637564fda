"""The fine-tuning experiments of chapter 7, on the zoo's pretrained models.

    python scripts/finetune_experiments.py shuffle      # real line or shuffled? baselines, zero-shot, label curve
    python scripts/finetune_experiments.py lmscore      # the same curve for a head on the LM's own score
    python scripts/finetune_experiments.py genre        # which kind of play? passages and documents
    python scripts/finetune_experiments.py genre-bert   # bert-mlm's probes, added to the genre results
    python scripts/finetune_experiments.py strategies   # full / last block / LoRA ranks, forgetting at matched accuracy
    python scripts/finetune_experiments.py sft          # instruction tuning with a chat template
    python scripts/finetune_experiments.py sft --all-words   # the same on the all-words shuffle

Each writes ``lmlib/models/experiments/ch07-NAME.json`` (``--out`` to redirect), which the
chapter loads. The protocol (lmlib/finetune.py): choices on the validation plays only, the
test plays once at the end; every learning rate from a sweep on validation; 3 seeds. Per-example
test correctness is stored so that the chapter can compute paired intervals itself.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lmlib import finetune as ft
from lmlib import tasks, zoo
from lmlib.baselines import NaiveBayes, SurfaceRule, logistic_regression_baseline, tune
from lmlib.classification import NGramFeaturizer, fit_logistic_regression
from lmlib.evaluation import heldout_loss, sequence_log_likelihood
from lmlib.metrics import accuracy

OUT = Path(__file__).resolve().parent.parent / "lmlib" / "models" / "experiments"
SEEDS = (0, 1, 2)
LRS = (3e-4, 1e-3, 3e-3)


def bits(correct: torch.Tensor) -> str:
    return "".join("1" if c else "0" for c in correct.tolist())


def log(*a) -> None:
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def baselines(tr, va, te, kinds=("surface", "nb", "lr-word", "lr-char")) -> dict:
    """The tuned baselines on one labelled training set; per-example test correctness."""
    out = {}
    y_te = te.labels
    if "surface" in kinds:
        rule = SurfaceRule().fit(tr.texts, tr.labels)
        out["surface rule"] = {"setting": None, "val": accuracy(rule.predict(va.texts), va.labels),
                               "test": bits(rule.predict(te.texts) == y_te)}
    if "nb" in kinds:
        feat = NGramFeaturizer("word", (1, 1), max_features=20000, min_count=1).fit(tr.texts)
        t = tune(lambda a: NaiveBayes(feat, tr.num_classes, alpha=a).fit(tr.texts, tr.labels),
                 (0.03, 0.1, 0.3, 1.0, 3.0), lambda m: accuracy(m.predict(va.texts), va.labels))
        out["naive Bayes (words)"] = {"setting": t.setting, "val": t.val_score,
                                      "test": bits(t.model.predict(te.texts) == y_te)}
    for key, kind, rng in (("lr-word", "word", (1, 2)), ("lr-char", "char", (2, 4))):
        if key not in kinds:
            continue
        feat, t = logistic_regression_baseline(tr.texts, tr.labels, va.texts, va.labels, tr.num_classes,
                                               kind=kind, n_range=rng, weight_decays=(1e-4, 1e-3, 1e-2))
        pred = t.model(feat.transform(te.texts))[0].argmax(-1)
        name = "logistic regression (words 1-2)" if kind == "word" else "logistic regression (chars 2-4)"
        out[name] = {"setting": t.setting, "val": t.val_score, "test": bits(pred == y_te)}
    return out


def finetune_run(zm, enc, tr, va, te, *, init, strategy="full", rank=4, lr, steps, seed, eval_every=None,
                 lm_ids=None, record_test=True):
    clf = ft.classifier_for(zm, tr.num_classes, init=init, seed=seed)
    n_trainable = ft.set_trainable(clf, strategy, rank=rank)
    va_ids = enc.encode(va.texts)
    eval_fn = None
    if eval_every is not None:
        def eval_fn(model):
            m = {"val_acc": float(ft.evaluate(model, va_ids, va.labels, pad_id=enc.pad_id,
                                              max_len=enc.max_len).double().mean())}
            if lm_ids is not None:
                m["lm_loss"] = heldout_loss(model.gpt, lm_ids, zm.model.config.block_size, max_windows=48)["loss"]
            return m
    t0 = time.time()
    hist = ft.finetune(clf, enc.encode(tr.texts), tr.labels, pad_id=enc.pad_id, max_len=enc.max_len, lr=lr,
                       steps=steps, seed=seed, eval_every=eval_every, eval_fn=eval_fn)
    secs = time.time() - t0
    val = float(ft.evaluate(clf, va_ids, va.labels, pad_id=enc.pad_id, max_len=enc.max_len).double().mean())
    rec = {"init": init, "strategy": strategy, "rank": rank if strategy == "lora" else None, "lr": lr,
           "steps": steps, "seed": seed, "n_train": len(tr), "trainable": n_trainable, "val": val,
           "final_train_loss": sum(hist.train_loss[-20:]) / len(hist.train_loss[-20:]), "seconds": round(secs, 1)}
    if eval_every is not None:
        rec["trace"] = {"steps": hist.eval_steps, **hist.evals}
    if record_test:
        rec["test"] = bits(ft.evaluate(clf, enc.encode(te.texts), te.labels, pad_id=enc.pad_id, max_len=enc.max_len))
    return rec, clf


def sweep_lr(zm, enc, tr, va, te, *, init, strategy="full", rank=4, steps, lrs=LRS, **kw):
    """Learning rates tried with seed 0 on validation; returns (best lr, records)."""
    recs = []
    for lr in lrs:
        rec, _ = finetune_run(zm, enc, tr, va, te, init=init, strategy=strategy, rank=rank, lr=lr, steps=steps,
                              seed=0, record_test=False, **kw)
        recs.append(rec)
        log(f"  sweep {init} {strategy} r={rank} lr={lr:g}: val {rec['val']:.3f}")
    best = max(recs, key=lambda r: r["val"])  # ties keep the smaller lr (earlier in the grid)
    return best["lr"], recs


# --------------------------------------------------------------------------------------------

def shuffle_data(split, keep_ends=True):
    kw = dict(split=split, keep_ends=keep_ends, seed=0)
    pool = tasks.shuffled_lines_dataset("train", **kw)
    va = tasks.shuffled_lines_dataset("val", **kw).balanced_sample(600, seed=0)
    te = tasks.shuffled_lines_dataset("test", max_per_play=200, **kw)
    return pool, va, te


def exp_shuffle(args) -> dict:
    split = ft.finetune_split()
    pool, va, te = shuffle_data(split)
    zm = zoo.load("gpt-char")
    enc = ft.text_encoder(zm)
    res = {"task": "real or shuffled (interior words)", "model": "gpt-char", "test_plays": [e.play for e in te],
           "test_labels": te.labels.tolist(), "val_size": len(va), "pool_size": len(pool)}
    # the control: the surface rule on lines shuffled in full and on interior-only shuffles
    full = tasks.shuffled_lines_dataset("train", split=split, keep_ends=False, seed=0)
    full_te = tasks.shuffled_lines_dataset("test", split=split, keep_ends=False, max_per_play=200, seed=0)
    rule = SurfaceRule().fit(full.texts, full.labels)
    res["surface_control"] = {"full shuffle": accuracy(rule.predict(full_te.texts), full_te.labels),
                              "interior shuffle": accuracy(SurfaceRule().fit(pool.texts, pool.labels)
                                                           .predict(te.texts), te.labels)}
    log("surface control", res["surface_control"])
    # zero-shot, paired: is the real line more likely than its own shuffle?
    pairs = tasks.shuffled_pairs("test", split=split, max_per_play=200, seed=0)
    lr_real = sequence_log_likelihood(zm.model, enc.encode([p[0] for p in pairs]))
    lr_shuf = sequence_log_likelihood(zm.model, enc.encode([p[1] for p in pairs]))
    rnd = ft.classifier_for(zm, 2, init="random", seed=0).gpt
    rr = sequence_log_likelihood(rnd, enc.encode([p[0] for p in pairs]))
    rs = sequence_log_likelihood(rnd, enc.encode([p[1] for p in pairs]))
    res["zero_shot_paired"] = {"plays": [p[2] for p in pairs], "pretrained": bits(lr_real > lr_shuf),
                               "random_init": bits(rr > rs), "ties_pretrained": int((lr_real == lr_shuf).sum()),
                               "margin_nats_mean": float((lr_real - lr_shuf).mean())}
    log("zero-shot paired", float((lr_real > lr_shuf).double().mean()), float((rr > rs).double().mean()))
    # zero-shot unpaired: a threshold on the LM's mean loss per character, fitted on the labels
    def nll_per_char(model, texts):
        ids = enc.encode(texts)
        return -sequence_log_likelihood(model, ids) / torch.tensor([len(x) - 1 for x in ids])
    te_nll = nll_per_char(zm.model, te.texts)
    va_nll = nll_per_char(zm.model, va.texts)
    # features of the frozen encoders, for the probes
    feats = {}
    for init in ("pretrained", "random"):
        clf = ft.classifier_for(zm, 2, init=init, seed=0)
        feats[init] = {"val": ft.features(clf, enc.encode(va.texts), pad_id=0, max_len=enc.max_len),
                       "test": ft.features(clf, enc.encode(te.texts), pad_id=0, max_len=enc.max_len)}
    sizes = [int(s) for s in args.sizes.split(",")]
    # fine-tuning learning rates, swept at the middle label count
    lr_sweep_n = sizes[len(sizes) // 2]
    sweep_tr = pool.balanced_sample(lr_sweep_n, seed=0)
    best_lr, sweeps = {}, {}
    for init in ("pretrained", "random"):
        best_lr[init], sweeps[init] = sweep_lr(zm, enc, sweep_tr, va, te, init=init, steps=args.steps)
    res["lr_sweep"] = {"n_labels": lr_sweep_n, "best": best_lr, "runs": sweeps}
    curve = []
    for n in sizes:
        for seed in SEEDS:
            tr = pool.balanced_sample(n, seed=seed)
            row = {"n": n, "seed": seed}
            row["baselines"] = baselines(tr, va, te)
            # zero-shot score + threshold: one feature, fitted on the same labels
            tr_nll = nll_per_char(zm.model, tr.texts)
            t = tune(lambda wd: fit_logistic_regression(tr_nll[:, None].float(), tr.labels, 2, weight_decay=wd),
                     (0.0,), lambda m: accuracy(m(va_nll[:, None].float())[0].argmax(-1), va.labels))
            row["baselines"]["LM loss + threshold"] = {
                "setting": None, "val": t.val_score,
                "test": bits(t.model(te_nll[:, None].float())[0].argmax(-1) == te.labels)}
            for init in ("pretrained", "random"):
                clf = ft.classifier_for(zm, 2, init=init, seed=0)
                f_tr = ft.features(clf, enc.encode(tr.texts), pad_id=0, max_len=enc.max_len)
                probe = ft.fit_probe(f_tr, tr.labels, feats[init]["val"], va.labels, 2)
                row[f"probe {init}"] = {"setting": probe.weight_decay, "val": probe.val_accuracy,
                                        "test": bits(probe.predict(feats[init]["test"]) == te.labels)}
                rec, _ = finetune_run(zm, enc, tr, va, te, init=init, lr=best_lr[init], steps=args.steps, seed=seed)
                row[f"finetune {init}"] = rec
            log(f"n={n} seed={seed}: " + ", ".join(
                f"{k} {sum(map(int, v['test'])) / len(v['test']):.3f}" for k, v in
                [*row["baselines"].items(), *((k, row[k]) for k in row if k.startswith(("probe", "finetune")))]))
            curve.append(row)
            res["curve"] = curve
            save(args, "shuffle", res)
    return res


def exp_lmscore(args) -> dict:
    """The classifier that reads the LM's own score (pooling="lm-score"), pretrained vs random
    init: the probe (a threshold on the score) and LP-FT (fine-tuning from the probe's head)."""
    split = ft.finetune_split()
    pool, va, te = shuffle_data(split)
    zm = zoo.load("gpt-char")
    enc = ft.text_encoder(zm)
    va_ids, te_ids = enc.encode(va.texts), enc.encode(te.texts)
    sizes = [int(s) for s in args.sizes.split(",")]
    res = {"task": "real or shuffled (interior words)", "model": "gpt-char", "head": "lm-score",
           "test_plays": [e.play for e in te], "test_labels": te.labels.tolist(), "curve": [], "lr_sweep": {}}

    def run(init, n, seed, lr, record_test=True):
        tr = pool.balanced_sample(n, seed=seed)
        tr_ids = enc.encode(tr.texts)
        clf = ft.classifier_for(zm, 2, init=init, seed=seed, pooling="lm-score")
        probe = ft.fit_probe(ft.features(clf, tr_ids, pad_id=0, max_len=enc.max_len), tr.labels,
                             ft.features(clf, va_ids, pad_id=0, max_len=enc.max_len), va.labels, 2)
        out = {"probe": {"setting": probe.weight_decay, "val": probe.val_accuracy}}
        if record_test:
            out["probe"]["test"] = bits(probe.predict(ft.features(clf, te_ids, pad_id=0, max_len=enc.max_len))
                                        == te.labels)
        ft.init_head_from_probe(clf, probe)
        ft.set_trainable(clf, "full")
        t0 = time.time()
        hist = ft.finetune(clf, tr_ids, tr.labels, pad_id=0, max_len=enc.max_len, lr=lr, steps=args.steps, seed=seed)
        rec = {"init": init, "lr": lr, "seed": seed, "steps": args.steps, "n_train": n, "seconds": round(time.time() - t0, 1),
               "val": float(ft.evaluate(clf, va_ids, va.labels, pad_id=0, max_len=enc.max_len).double().mean()),
               "final_train_loss": sum(hist.train_loss[-20:]) / 20}
        if record_test:
            rec["test"] = bits(ft.evaluate(clf, te_ids, te.labels, pad_id=0, max_len=enc.max_len))
        out["lpft"] = rec
        return out

    best = {}
    mid = sizes[len(sizes) // 2]
    for init in ("pretrained", "random"):
        recs = [run(init, mid, 0, lr, record_test=False) for lr in (3e-5, 1e-4, 3e-4)]
        for r in recs:
            log(f"  sweep lm-score {init} lr={r['lpft']['lr']:g}: probe val {r['probe']['val']:.3f} "
                f"lpft val {r['lpft']['val']:.3f}")
        best[init] = max(recs, key=lambda r: r["lpft"]["val"])["lpft"]["lr"]
        res["lr_sweep"][init] = {"n_labels": mid, "best": best[init], "runs": [r["lpft"] for r in recs]}
    for n in sizes:
        for seed in SEEDS:
            row = {"n": n, "seed": seed}
            for init in ("pretrained", "random"):
                out = run(init, n, seed, best[init])
                row[f"probe {init}"], row[f"finetune {init}"] = out["probe"], out["lpft"]
            log(f"n={n} seed={seed}: " + ", ".join(f"{k} {sum(map(int, v['test'])) / len(v['test']):.3f}"
                                                  for k, v in row.items() if isinstance(v, dict)))
            res["curve"].append(row)
            save(args, "lmscore", res)
    return res


# --------------------------------------------------------------------------------------------

def genre_data(split, test_per_play=None):
    kw = dict(split=split, min_chars=60, max_chars=120)
    pool = tasks.genre_dataset("train", max_per_play=300, seed=0, **kw)
    va = tasks.genre_dataset("val", max_per_play=150, seed=0, **kw)
    te = tasks.genre_dataset("test", max_per_play=test_per_play, seed=0, **kw)  # default: every passage, in order
    return pool, va, te


def documents(plays, labels, k):
    """Consecutive, non-overlapping runs of ``k`` passages of one play (a shorter rest is
    dropped): lists of example indices, with each document's play and label."""
    docs, cur = [], []
    for i, p in enumerate(plays):
        if cur and plays[cur[-1]] != p:
            cur = []
        cur.append(i)
        if len(cur) == k:
            docs.append(cur)
            cur = []
    return docs, [plays[d[0]] for d in docs], [labels[d[0]] for d in docs]


def doc_bits(logp: torch.Tensor, labels: torch.Tensor, docs) -> str:
    """A document's prediction is the class with the largest summed log-probability."""
    pred = torch.stack([logp[d].sum(0) for d in docs]).argmax(-1)
    return bits(pred == labels[[d[0] for d in docs]])


def classifier_logp(clf, enc, texts) -> torch.Tensor:
    from lmlib.classification import encode_classification_batch

    ids = enc.encode(texts)
    out = []
    clf.eval()
    with torch.no_grad():
        for s in range(0, len(ids), 256):
            b = encode_classification_batch(ids[s:s + 256], None, pad_id=enc.pad_id, max_len=enc.max_len)
            out.append(torch.log_softmax(clf(**b)[0], -1))
    return torch.cat(out)


DOC_SIZES = (5, 20)


def exp_genre(args) -> dict:
    split = ft.finetune_split()
    pool, va, te = genre_data(split, args.test_per_play)
    tr_sets = {seed: pool.balanced_sample(args.genre_n, seed=seed) for seed in SEEDS}
    plays, labels = [e.play for e in te], te.labels
    docs = {k: documents(plays, labels.tolist(), k) for k in DOC_SIZES}
    res = {"task": "genre (comedy / history / tragedy)", "test_plays": plays, "test_labels": labels.tolist(),
           "class_names": list(te.class_names), "n_labels": args.genre_n, "val_size": len(va),
           "documents": {str(k): {"plays": d[1], "labels": d[2]} for k, d in docs.items()}, "runs": {}}
    log("genre data", len(pool), len(va), len(te), te.class_counts())

    def add(name, rec, logp):
        rec["test"] = bits(logp.argmax(-1) == labels)
        rec["test_docs"] = {str(k): doc_bits(logp, labels, d[0]) for k, d in docs.items()}
        res["runs"].setdefault(name, []).append(rec)
        save(args, "genre", res)

    for seed in SEEDS:
        tr = tr_sets[seed]
        featn = NGramFeaturizer("word", (1, 1), max_features=20000, min_count=1).fit(tr.texts)
        t = tune(lambda a: NaiveBayes(featn, 3, alpha=a).fit(tr.texts, tr.labels), (0.03, 0.1, 0.3, 1.0, 3.0),
                 lambda m: accuracy(m.predict(va.texts), va.labels))
        add("naive Bayes (words)", {"seed": seed, "setting": t.setting, "val": t.val_score},
            torch.log_softmax(t.model.log_scores(te.texts).float(), -1))
        for kind, rng, name in (("word", (1, 2), "logistic regression (words 1-2)"),
                                ("char", (2, 4), "logistic regression (chars 2-4)")):
            feat, t = logistic_regression_baseline(tr.texts, tr.labels, va.texts, va.labels, 3, kind=kind,
                                                   n_range=rng, weight_decays=(1e-4, 1e-3, 1e-2))
            add(name, {"seed": seed, "setting": t.setting, "val": t.val_score},
                torch.log_softmax(t.model(feat.transform(te.texts))[0], -1))
    log("baselines", {k: round(sum(map(int, v[0]["test"])) / len(te), 3) for k, v in res["runs"].items()})
    for model_name in ("gpt-char",):          # bert-mlm: frozen probes only (exp_genre_bert)
        zm = zoo.load(model_name)
        enc = ft.text_encoder(zm)
        for init in ("pretrained", "random"):
            clf = ft.classifier_for(zm, 3, init=init, seed=0)
            f_va = ft.features(clf, enc.encode(va.texts), pad_id=enc.pad_id, max_len=enc.max_len)
            f_te = ft.features(clf, enc.encode(te.texts), pad_id=enc.pad_id, max_len=enc.max_len)
            for seed in SEEDS:
                tr = tr_sets[seed]
                f_tr = ft.features(clf, enc.encode(tr.texts), pad_id=enc.pad_id, max_len=enc.max_len)
                probe = ft.fit_probe(f_tr, tr.labels, f_va, va.labels, 3)
                add(f"{model_name} probe {init}", {"seed": seed, "setting": probe.weight_decay,
                                                   "val": probe.val_accuracy},
                    torch.log_softmax(probe.logits(f_te), -1))
            log(f"{model_name} probe {init}:", [round(sum(map(int, r["test"])) / len(te), 3)
                                                for r in res["runs"][f"{model_name} probe {init}"]])
            lr, sweeps = sweep_lr(zm, enc, tr_sets[0], va, te, init=init, steps=args.steps)
            res.setdefault("lr_sweep", {})[f"{model_name} {init}"] = {"best": lr, "runs": sweeps}
            for seed in SEEDS:
                rec, clf_ft = finetune_run(zm, enc, tr_sets[seed], va, te, init=init, lr=lr, steps=args.steps,
                                           seed=seed, record_test=False)
                add(f"{model_name} finetune {init}", rec, classifier_logp(clf_ft, enc, te.texts))
                log(f"{model_name} finetune {init} seed {seed}: val {rec['val']:.3f} "
                    f"test {sum(map(int, rec['test'])) / len(te):.3f}")
    save(args, "genre", res)
    return exp_genre_bert(args)


def exp_genre_bert(args) -> dict:
    """bert-mlm's frozen probes on the genre task, added to the stored genre results. BERT's
    window is 64 tokens, shorter than some 120-character passages: those are cut (counted)."""
    res = ft.stored_results("genre", directory=args.out)
    split = ft.finetune_split()
    pool, va, te = genre_data(split, args.test_per_play)
    if [e.play for e in te] != res["test_plays"]:
        raise SystemExit("the stored genre results were made on other test passages")
    tr_sets = {seed: pool.balanced_sample(res["n_labels"], seed=seed) for seed in SEEDS}
    labels = te.labels
    docs = {k: documents([e.play for e in te], labels.tolist(), k) for k in DOC_SIZES}
    zm = zoo.load("bert-mlm")
    enc = ft.text_encoder(zm)
    te_ids = enc.encode(te.texts, truncate=True)
    res["bert_truncated_test_passages"] = enc.truncated
    res["bert_command"] = "python scripts/finetune_experiments.py genre-bert"
    va_ids = enc.encode(va.texts, truncate=True)
    for init in ("pretrained", "random"):
        name = f"bert-mlm probe {init}"
        res["runs"][name] = []
        clf = ft.classifier_for(zm, 3, init=init, seed=0)
        f_va = ft.features(clf, va_ids, pad_id=enc.pad_id, max_len=enc.max_len)
        f_te = ft.features(clf, te_ids, pad_id=enc.pad_id, max_len=enc.max_len)
        for seed in SEEDS:
            tr = tr_sets[seed]
            f_tr = ft.features(clf, enc.encode(tr.texts, truncate=True), pad_id=enc.pad_id, max_len=enc.max_len)
            probe = ft.fit_probe(f_tr, tr.labels, f_va, va.labels, 3)
            logp = torch.log_softmax(probe.logits(f_te), -1)
            res["runs"][name].append({"seed": seed, "setting": probe.weight_decay, "val": probe.val_accuracy,
                                      "test": bits(logp.argmax(-1) == labels),
                                      "test_docs": {str(k): doc_bits(logp, labels, d[0]) for k, d in docs.items()}})
        log(name, [round(sum(map(int, r["test"])) / len(te), 3) for r in res["runs"][name]])
    return res


# --------------------------------------------------------------------------------------------

def exp_strategies(args) -> dict:
    split = ft.finetune_split()
    pool, va, te = shuffle_data(split, keep_ends=False)      # a task every strategy can learn
    zm = zoo.load("gpt-char")
    enc = ft.text_encoder(zm)
    d = zoo.zoo_data(zm.config, zm.tokenizer)
    lm_ids = d.test                                   # text of the zoo's test plays: held out from pretraining
    lm_before = heldout_loss(zm.model, lm_ids, zm.model.config.block_size, max_windows=48)["loss"]
    res = {"task": "real or shuffled (all words)", "model": "gpt-char", "n_labels": args.strategy_n,
           "lm_loss_before": lm_before, "lm_windows": 48, "test_plays": [e.play for e in te],
           "test_labels": te.labels.tolist(), "runs": {}, "lr_sweep": {}}
    conds = [("full", 4), ("last", 4), ("lora", 1), ("lora", 4), ("lora", 16)]
    for seed_set in (SEEDS,):
        for strategy, rank in conds:
            name = strategy if strategy != "lora" else f"lora r={rank}"
            tr0 = pool.balanced_sample(args.strategy_n, seed=0)
            lrs = LRS if strategy != "lora" else (1e-3, 3e-3, 1e-2)
            lr, sweeps = sweep_lr(zm, enc, tr0, va, te, init="pretrained", strategy=strategy, rank=rank,
                                  steps=args.steps, lrs=lrs)
            res["lr_sweep"][name] = {"best": lr, "runs": sweeps}
            for seed in seed_set:
                tr = pool.balanced_sample(args.strategy_n, seed=seed)
                rec, _ = finetune_run(zm, enc, tr, va, te, init="pretrained", strategy=strategy, rank=rank, lr=lr,
                                      steps=args.steps, seed=seed, eval_every=50, lm_ids=lm_ids)
                res["runs"].setdefault(name, []).append(rec)
                log(f"{name} seed {seed}: val {rec['val']:.3f} test {sum(map(int, rec['test'])) / len(te):.3f} "
                    f"lm {rec['trace']['lm_loss'][-1]:.4f}")
                save(args, "strategies", res)
    return res


# --------------------------------------------------------------------------------------------

QUESTION = "Is this line as Shakespeare wrote it?\n"
ANSWERS = (" no", " yes")          # label 0 = shuffled, 1 = real


def exp_sft(args) -> dict:
    from lmlib.sft import add_chat_tokens, rank_responses, sft_batches
    from lmlib.training import TrainConfig, train

    split = ft.finetune_split()
    pool, va, te = shuffle_data(split, keep_ends=not args.all_words)
    zm = zoo.load("gpt-char")
    block = zm.model.config.block_size
    name = "sft-all" if args.all_words else "sft"
    res = {"task": "instruction: real or shuffled, answered in words",
           "shuffle": "all words" if args.all_words else "interior words", "question": QUESTION, "answers": ANSWERS,
           "n_pairs": args.sft_n, "test_plays": [e.play for e in te], "test_labels": te.labels.tolist(), "runs": {},
           "lr_sweep": {}}

    def make(init, seed):
        torch.manual_seed(seed)
        base = zm.model if init == "pretrained" else zoo.build(zm.config, zm.tokenizer)
        return add_chat_tokens(base, zm.tokenizer)

    def scores(model, chat, ds):
        prompts = [chat.prompt(QUESTION + t) for t in ds.texts]
        cands = [chat.response(a) for a in ANSWERS]
        s = rank_responses(model, prompts, cands)                              # (N, 2)
        nll = -s.gather(1, ds.labels[:, None])[:, 0] / torch.tensor([len(cands[y]) for y in ds.labels.tolist()])
        return s.argmax(1) == ds.labels, float(nll.mean())

    def run(init, lr, seed, tr, record_test=True):
        model, chat = make(init, seed)
        pairs = [chat.pair(QUESTION + e.text, ANSWERS[e.label]) for e in tr.examples]
        cfg = TrainConfig(max_steps=args.steps, lr=lr, min_lr=lr / 10, warmup_steps=args.steps // 10, weight_decay=0.01,
                          betas=(0.9, 0.98), eval_interval=args.steps, seed=seed, progress=False)
        t0 = time.time()
        hist = train(model, sft_batches(pairs, batch_size=16, pad_id=0, block_size=block), cfg)
        rec = {"init": init, "lr": lr, "seed": seed, "steps": args.steps, "seconds": round(time.time() - t0, 1),
               "final_train_loss": sum(hist.train_loss[-20:]) / 20}
        rec["val"], rec["val_response_nll"] = scores(model, chat, va)
        rec["val"] = float(rec["val"].double().mean())
        if record_test:
            c, rec["test_response_nll"] = scores(model, chat, te)
            rec["test"] = bits(c)
            sub = [(QUESTION + e.text, ANSWERS[e.label]) for e in te.examples[:200]]
            enc = lambda s: zm.tokenizer.encode(s)  # noqa: E731
            # free generation: the chat prompt, then greedy decoding until <|end|>
            from lmlib.sft import greedy_complete
            hits = 0
            for (p, a) in sub:
                out = greedy_complete(model, chat.prompt(p), max_new_tokens=8, stop_ids=[chat.end_id])
                text = zm.tokenizer.decode([t for t in out if t < chat.user_id])
                hits += text.strip() == a.strip()
            rec["exact_match_200"] = hits / len(sub)
        return rec

    # before any SFT: the pretrained model with the (untrained) chat markers
    model, chat = make("pretrained", 0)
    c, nll = scores(model, chat, te)
    res["before_sft"] = {"test": bits(c), "test_response_nll": nll}
    for init in ("pretrained", "random"):
        tr0 = pool.balanced_sample(args.sft_n, seed=0)
        recs = [run(init, lr, 0, tr0, record_test=False) for lr in LRS]
        for r in recs:
            log(f"  sweep sft {init} lr={r['lr']:g}: val {r['val']:.3f}")
        lr = max(recs, key=lambda r: r["val"])["lr"]
        res["lr_sweep"][init] = {"best": lr, "runs": recs}
        for seed in SEEDS:
            rec = run(init, lr, seed, pool.balanced_sample(args.sft_n, seed=seed))
            res["runs"].setdefault(init, []).append(rec)
            log(f"sft {init} seed {seed}: val {rec['val']:.3f} test {sum(map(int, rec['test'])) / len(te):.3f} "
                f"nll {rec['test_response_nll']:.3f} em {rec['exact_match_200']:.3f}")
            save(args, name, res)
    return res


def save(args, name: str, res: dict) -> None:
    out = Path(args.out) if args.out else OUT
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python scripts/finetune_experiments.py", args.experiment] + (["--all-words"] if args.all_words else []))
    res = {**res, "command": command, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "hardware": zoo.hardware()}
    (out / f"ch07-{name}.json").write_text(json.dumps(res, separators=(",", ":")) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("experiment", choices=("shuffle", "lmscore", "genre", "genre-bert", "strategies", "sft"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--sizes", default="64,256,1024,4096")
    ap.add_argument("--genre-n", type=int, default=3000)
    ap.add_argument("--strategy-n", type=int, default=1024)
    ap.add_argument("--sft-n", type=int, default=1024)
    ap.add_argument("--all-words", action="store_true", help="sft: the all-words shuffle (surface cues) instead")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--test-per-play", type=int, default=None, help="genre: a quick check on fewer test passages")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    res = {"shuffle": exp_shuffle, "lmscore": exp_lmscore, "genre": exp_genre, "genre-bert": exp_genre_bert, "strategies": exp_strategies, "sft": exp_sft}[args.experiment](args)
    res["seconds"] = round(time.time() - t0)
    save(args, "sft-all" if args.experiment == "sft" and args.all_words else args.experiment.split("-")[0], res)
    log(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
