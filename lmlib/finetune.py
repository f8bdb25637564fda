"""The fine-tuning protocol of chapter 7: one split, frozen probes, fine-tuning runs and their
learning-rate sweeps, all on the zoo's pretrained models.

The split (:func:`finetune_split`)
---------------------------------
The zoo's models were pretrained on the training plays of ``split_plays(0)``. Every play they
never saw (the 6 validation and the 6 test plays of that split) becomes a **test** play here,
so that each of the three Folio kinds has at least two test plays (two histories, four
tragedies, six comedies). **Validation** plays, on which every choice is made (learning rate,
weight decay, smoothing, number of steps), are seven of the pretraining plays: one of each
folder genre and a second history. The pretrained models have read those plays without labels;
that can flatter a pretrained model's validation score, but it cannot touch the test plays,
which are used once, at the end.

Strategies (:func:`set_trainable`)
----------------------------------
``"full"``: every parameter trains. ``"last"``: the last block, the final norm and the head.
``"lora"``: rank-``r`` adapters on the four attention projections of every block, plus the
head. ``"probe"``: the head only (trained by gradient descent; :func:`fit_probe` fits the same
linear model in closed form on frozen features).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from lmlib.baselines import tune
from lmlib.classification import BertClassifier, GPTClassifier, classification_batches, fit_logistic_regression, predict
from lmlib.data import GENRES, Split, load_play, split_plays
from lmlib.lora import inject_lora
from lmlib.metrics import accuracy
from lmlib.training import TrainConfig, History, train
from lmlib.validation import (check_bool, check_choice, check_finite, check_float, check_int, check_path, check_sequence,
                              check_str, check_tensor)

__all__ = ["finetune_split", "TextEncoder", "text_encoder", "classifier_for", "features", "Probe", "fit_probe",
           "STRATEGIES", "init_head_from_probe", "set_trainable", "finetune", "evaluate", "stored_results", "correctness"]

STRATEGIES = ("full", "last", "lora", "probe")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def finetune_split(seed: int = 0) -> Split:
    """Train / validation / test plays for fine-tuning (see the module docstring). The zoo's
    split is ``split_plays(0)``; ``seed`` only changes which pretraining plays validate."""
    check_int("seed", seed, who="finetune_split")
    zoo_split = split_plays(0)
    test = tuple(sorted(zoo_split.val + zoo_split.test))
    rng = random.Random(seed)
    val = []
    for genre in GENRES:
        names = sorted(n for n in zoo_split.train if load_play(n).genre == genre)
        rng.shuffle(names)
        val += names[: 2 if genre == "histories" else 1]
    train_plays = tuple(sorted(n for n in zoo_split.train if n not in val))
    return Split(train_plays, tuple(sorted(val)), test)


@dataclass(frozen=True)
class TextEncoder:
    """Texts -> token-id lists for one zoo model: a GPT reads the characters as they are; a BERT
    reads ``[CLS] text [SEP]``. A text too long for the model raises (nothing is cut)."""

    kind: str
    tokenizer: Any
    pad_id: int
    max_len: int
    cls_id: int | None = None
    sep_id: int | None = None

    def __post_init__(self) -> None:
        who = "TextEncoder"
        check_choice("kind", self.kind, ("gpt", "bert"), who=who)
        if isinstance(self.tokenizer, (str, bytes)) or not callable(getattr(self.tokenizer, "encode", None)):
            raise TypeError(f"{who}: tokenizer must have encode(text), got {type(self.tokenizer).__name__}")
        check_int("pad_id", self.pad_id, min=0, who=who)
        check_int("max_len", self.max_len, min=3 if self.kind == "bert" else 1, who=who)   # [CLS] x [SEP]
        for name in ("cls_id", "sep_id"):
            value = getattr(self, name)
            if self.kind == "bert" or value is not None:   # a BERT needs both
                check_int(name, value, min=0, who=who)

    def encode(self, texts: Sequence[str], *, truncate: bool = False) -> list[list[int]]:
        """Token ids per text. A text longer than the model's window raises, unless ``truncate``
        asks to keep its first tokens (a BERT keeps its final ``[SEP]``); :attr:`truncated`
        then counts the texts that were cut."""
        texts = check_sequence("texts", texts, of=str, nonempty=True, who="TextEncoder.encode")
        check_bool("truncate", truncate, who="TextEncoder.encode")
        out, cut = [], 0
        for i, t in enumerate(texts):
            ids = self.tokenizer.encode(t)
            if not ids:
                raise ValueError(f"TextEncoder.encode: texts[{i}] is empty")
            room = self.max_len - (2 if self.kind == "bert" else 0)
            if len(ids) > room:
                if not truncate:
                    raise ValueError(f"TextEncoder.encode: texts[{i}] needs {len(ids) + self.max_len - room} "
                                     f"tokens, more than the model's {self.max_len}; use shorter texts, or "
                                     "truncate=True")
                ids, cut = ids[:room], cut + 1
            out.append([self.cls_id] + ids + [self.sep_id] if self.kind == "bert" else ids)
        object.__setattr__(self, "truncated", cut)
        return out


def text_encoder(zm) -> TextEncoder:
    """The :class:`TextEncoder` of a :class:`lmlib.zoo.ZooModel`."""
    _check_zoo_model(zm, "text_encoder")
    kind = zm.config["kind"]
    if kind == "gpt":
        return TextEncoder("gpt", zm.tokenizer, 0, zm.model.config.block_size)
    sp = zm.tokenizer.special_tokens
    return TextEncoder("bert", zm.tokenizer, sp["[PAD]"], zm.model.config.max_position_embeddings,
                       sp["[CLS]"], sp["[SEP]"])


def classifier_for(zm, num_classes: int, *, init: str = "pretrained", seed: int = 0, pooling: str = "last"
                   ) -> nn.Module:
    """A classifier on a copy of a zoo model (``init="pretrained"``) or on the same architecture
    freshly initialised with ``torch.manual_seed(seed)`` (``init="random"``). GPT: ``pooling``
    (see :class:`lmlib.classification.GPTClassifier`); BERT: the ``[CLS]`` vector (the zoo's
    BERT has no pooler)."""
    from lmlib.zoo import build

    _check_zoo_model(zm, "classifier_for")
    check_choice("init", init, ("pretrained", "random"), who="classifier_for")
    check_int("num_classes", num_classes, min=2, who="classifier_for")
    check_int("seed", seed, who="classifier_for")
    check_choice("pooling", pooling, ("last", "mean", "lm-score"), who="classifier_for")
    torch.manual_seed(seed)
    model = copy.deepcopy(zm.model) if init == "pretrained" else build(zm.config, zm.tokenizer)
    torch.manual_seed(seed)                             # the head's initialisation
    if zm.config["kind"] == "gpt":
        return GPTClassifier(model, num_classes, pooling=pooling)
    return BertClassifier(model.bert, num_classes, pooling="cls", dropout=0.1)


@torch.no_grad()
def features(classifier: nn.Module, token_lists: Sequence[Sequence[int]], *, pad_id: int, max_len: int,
             batch_size: int = 128) -> torch.Tensor:
    """The pooled vectors ``(N, C)`` that the classifier's head reads, in eval mode."""
    from lmlib.classification import _check_token_lists, encode_classification_batch

    _check_classifier(classifier, "features")
    token_lists = _check_token_lists(token_lists, pad_id, max_len, "features")
    check_int("batch_size", batch_size, min=1, who="features")
    was = classifier.training
    classifier.eval()
    out = []
    try:
        for s in range(0, len(token_lists), batch_size):
            b = encode_classification_batch(token_lists[s:s + batch_size], None, pad_id=pad_id, max_len=max_len)
            out.append(classifier.features(**b))
    finally:
        classifier.train(was)
    return torch.cat(out)


@dataclass
class Probe:
    """A logistic regression on standardised frozen features (statistics of the training set)."""

    mean: torch.Tensor
    std: torch.Tensor
    model: nn.Module
    weight_decay: float
    val_accuracy: float

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        check_tensor("feats", feats, dims=2, dtype="float", sizes={1: self.mean.numel()}, who="Probe")
        check_finite("feats", feats, who="Probe")
        return self.model((feats - self.mean) / self.std)[0]

    def predict(self, feats: torch.Tensor) -> torch.Tensor:
        return self.logits(feats).argmax(-1)


def fit_probe(f_train: torch.Tensor, y_train, f_val: torch.Tensor, y_val, num_classes: int, *,
              weight_decays: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)) -> Probe:
    """A linear probe whose weight decay is chosen by validation accuracy."""
    _check_probe_args(f_train, y_train, f_val, y_val, num_classes, weight_decays)
    y_train, y_val = torch.as_tensor(y_train), torch.as_tensor(y_val)
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    x_tr, x_va = (f_train - mu) / sd, (f_val - mu) / sd
    t = tune(lambda wd: fit_logistic_regression(x_tr, y_train, num_classes, weight_decay=wd, steps=300),
             weight_decays, lambda m: accuracy(m(x_va)[0].argmax(-1), y_val))
    return Probe(mu, sd, t.model, t.setting, t.val_score)


def init_head_from_probe(classifier: nn.Module, probe: Probe) -> None:
    """Copy a probe into the classifier's head (in place): the probe standardises its inputs,
    ``W ((f - mu) / sd) + b``, which is the linear layer ``(W / sd) f + (b - W (mu / sd))``.
    Fine-tuning then starts from a head that already fits the labels: "linear probing, then
    fine-tuning" (LP-FT), which keeps the first steps' large gradients from a random head out
    of the pretrained weights."""
    who = "init_head_from_probe"
    if not isinstance(probe, Probe):
        raise TypeError(f"{who}: probe must be a Probe (from fit_probe), got {type(probe).__name__}")
    head = getattr(classifier, "head", None)
    if not isinstance(classifier, nn.Module) or not isinstance(head, nn.Linear):
        raise TypeError(f"{who}: classifier must be a classifier with a linear .head, got {type(classifier).__name__}")
    if head.weight.shape != probe.model.linear.weight.shape:
        raise ValueError(f"{who}: the classifier's head has shape {tuple(head.weight.shape)}, the probe "
                         f"{tuple(probe.model.linear.weight.shape)} (classes x features)")
    lin = probe.model.linear
    w = lin.weight / probe.std                                              # (K, C)
    with torch.no_grad():
        classifier.head.weight.copy_(w)
        classifier.head.bias.copy_(lin.bias - w @ probe.mean)


def set_trainable(classifier: nn.Module, strategy: str, *, rank: int = 4) -> int:
    """Freeze what ``strategy`` does not train (in place; LoRA adapters are injected); returns
    the number of trainable parameters."""
    from lmlib.lora import count_parameters

    if not isinstance(classifier, (GPTClassifier, BertClassifier)):
        raise TypeError(f"set_trainable: classifier must be a GPTClassifier or a BertClassifier, "
                        f"got {type(classifier).__name__}")
    check_choice("strategy", strategy, STRATEGIES, who="set_trainable")
    check_int("rank", rank, min=1, who="set_trainable")
    encoder = classifier.gpt if isinstance(classifier, GPTClassifier) else classifier.bert
    if strategy == "lora":
        inject_lora(encoder, LORA_TARGETS, r=rank, alpha=2.0 * rank)     # freezes the encoder
    else:
        for p in encoder.parameters():
            p.requires_grad_(strategy == "full")
    if strategy == "last":
        blocks = encoder.blocks if isinstance(classifier, GPTClassifier) else encoder.layers
        for p in blocks[-1].parameters():
            p.requires_grad_(True)
        final = getattr(encoder, "ln_f", None) or getattr(encoder, "final_norm", None)
        if final is not None:
            for p in final.parameters():
                p.requires_grad_(True)
    for p in classifier.head.parameters():
        p.requires_grad_(True)
    return count_parameters(classifier)


def finetune(classifier: nn.Module, token_lists: Sequence[Sequence[int]], labels, *, pad_id: int, max_len: int,
             lr: float, steps: int, seed: int = 0, batch_size: int = 16, eval_every: int | None = None,
             eval_fn: Callable[[nn.Module], dict] | None = None, weight_decay: float = 0.01) -> History:
    """Train the classifier's trainable parameters with the course's loop (AdamW, 10 % warmup,
    cosine decay to ``lr / 10``, gradient clipping at 1) on random batches of the examples."""
    _check_classifier(classifier, "finetune")
    check_float("lr", lr, min=0.0, min_open=True, who="finetune")
    check_int("steps", steps, min=1, who="finetune")
    if eval_every is not None:                             # 0 must not silently mean "never"
        check_int("eval_every", eval_every, min=1, who="finetune")
    labels = labels.tolist() if isinstance(labels, torch.Tensor) else check_sequence("labels", labels, who="finetune")
    cfg = TrainConfig(max_steps=steps, lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 10),
                      weight_decay=weight_decay, betas=(0.9, 0.98), eval_interval=eval_every or steps,
                      seed=seed, progress=False)
    get = classification_batches(token_lists, labels, batch_size=batch_size, pad_id=pad_id, max_len=max_len,
                                 num_classes=classifier.num_classes)
    return train(classifier, get, cfg, eval_fn=eval_fn)


def evaluate(classifier: nn.Module, token_lists: Sequence[Sequence[int]], labels, *, pad_id: int, max_len: int
             ) -> torch.Tensor:
    """Per-example correctness ``(N,)`` bool of the classifier's predictions."""
    from lmlib.classification import check_labels, encode_classification_batch

    _check_classifier(classifier, "evaluate")
    n = encode_classification_batch(token_lists, None, pad_id=pad_id, max_len=max_len)["input_ids"].shape[0]
    try:                                                   # one class id per example, before predicting
        check_labels(labels, classifier.num_classes, n)
    except (TypeError, ValueError) as e:
        raise type(e)(f"evaluate: labels: {e}") from None
    pred = predict(classifier, token_lists, pad_id=pad_id, max_len=max_len)
    return pred == torch.as_tensor(labels)


# --------------------------------------------------------------------------------------------
# Stored results (scripts/finetune_experiments.py writes them; the chapter reads them)
# --------------------------------------------------------------------------------------------

def stored_results(name: str, *, directory=None) -> dict:
    """The stored results ``lmlib/models/experiments/ch07-NAME.json`` of one experiment."""
    import json
    from pathlib import Path

    check_choice("name", name, ("shuffle", "lmscore", "genre", "strategies", "sft", "sft-all"), who="stored_results")
    if directory is not None:
        check_path("directory", directory, who="stored_results")
    root = Path(directory) if directory is not None else Path(__file__).parent / "models" / "experiments"
    path = root / f"ch07-{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no stored results at {path}; make them with: "
                                f"python scripts/finetune_experiments.py {name}")
    res = json.loads(path.read_text())
    if not isinstance(res, dict) or "command" not in res:
        raise ValueError(f"{path} is not a results file of scripts/finetune_experiments.py")
    return res


def correctness(runs: Sequence[dict], key: str = "test") -> torch.Tensor:
    """``(runs, N)`` 0/1 float64: the per-example correctness strings (``"0110..."``) of runs
    (one per seed), as stored under ``key``."""
    runs = check_sequence("runs", runs, of=dict, nonempty=True, who="correctness")
    check_str("key", key, nonempty=True, who="correctness")
    rows = []
    for i, r in enumerate(runs):
        s = r.get(key) if isinstance(key, str) else None
        if not isinstance(s, str) or not s or set(s) - {"0", "1"}:
            raise ValueError(f"correctness: runs[{i}][{key!r}] must be a non-empty string of 0/1")
        rows.append([c == "1" for c in s])
    if len({len(r) for r in rows}) != 1:
        raise ValueError("correctness: the runs were scored on test sets of different sizes")
    return torch.tensor(rows, dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------

def _check_zoo_model(zm, who: str) -> None:
    cfg = getattr(zm, "config", None)
    if not (isinstance(cfg, dict) and cfg.get("kind") in ("gpt", "bert")
            and isinstance(getattr(zm, "model", None), nn.Module) and getattr(zm, "tokenizer", None) is not None):
        raise TypeError(f"{who}: zm must be an lmlib.zoo.ZooModel (from lmlib.zoo.load), got {type(zm).__name__}")


def _check_classifier(classifier, who: str) -> None:
    if not (isinstance(classifier, nn.Module) and callable(getattr(classifier, "features", None))
            and isinstance(getattr(classifier, "num_classes", None), int)):
        raise TypeError(f"{who}: classifier must be a GPTClassifier or a BertClassifier (see classifier_for), "
                        f"got {type(classifier).__name__}")


def _check_probe_args(f_train, y_train, f_val, y_val, num_classes, weight_decays) -> None:
    from lmlib.classification import check_labels

    who = "fit_probe"
    check_int("num_classes", num_classes, min=2, who=who)
    for name, f in (("f_train", f_train), ("f_val", f_val)):
        check_tensor(name, f, dims=2, dtype="float", nonempty=True, who=who)
        check_finite(name, f, who=who)
    if f_train.shape[0] < 2:
        raise ValueError(f"{who}: f_train needs at least 2 examples (their standard deviation scales the features)")
    if f_val.shape[1] != f_train.shape[1]:
        raise ValueError(f"{who}: f_val has {f_val.shape[1]} features per example, f_train {f_train.shape[1]}")
    for name, y, n in (("y_train", y_train, f_train.shape[0]), ("y_val", y_val, f_val.shape[0])):
        try:
            check_labels(y, num_classes, n)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{who}: {name}: {e}") from None
    decays = check_sequence("weight_decays", weight_decays, nonempty=True, who=who)
    for i, wd in enumerate(decays):
        check_float(f"weight_decays[{i}]", wd, min=0.0, who=who)
