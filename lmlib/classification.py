"""Sequence classification: heads on pretrained Transformers, and a logistic-regression baseline.

A classifier maps a token sequence to one of ``K`` classes. A pretrained Transformer gives one
hidden vector per token, ``h: (B, T, C)``; a *pooling* step turns them into one vector per
sequence and a linear *head* ``C -> K`` gives the class logits:

- GPT (causal): only the **last real token** has seen the whole sequence, so ``pooling="last"``
  takes ``h[b, length_b - 1]``; ``pooling="mean"`` averages the real (non-padding) tokens.
- BERT (bidirectional): every position sees everything; ``pooling="cls"`` takes the ``[CLS]``
  vector ``h[:, 0]``, ``pooling="pooler"`` BERT's pooler output ``tanh(W h[:, 0] + b)``,
  ``pooling="mean"`` the masked mean.

Every classifier's ``forward(input_ids, attention_mask=None, labels=None) -> (logits (B, K),
loss)`` matches :func:`lmlib.training.train` (batches are dicts of those names).

The baseline needs no neural network: :class:`NGramFeaturizer` turns texts into sparse counts of
words or character n-grams, and :class:`LogisticRegression` is one linear layer trained with
cross-entropy (a "bag of n-grams" classifier).

Helpers: :func:`gpt_hidden_states`, :func:`pool`, :func:`encode_classification_batch`,
:func:`classification_batches`, :func:`predict`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmlib.masking import pad_sequences
from lmlib.validation import (check_choice, check_finite, check_float, check_ids, check_int, check_mask,
                              check_sequence, check_str, check_tensor)

__all__ = ["gpt_hidden_states", "pool", "GPTClassifier", "BertClassifier", "NGramFeaturizer",
           "LogisticRegression", "fit_logistic_regression", "encode_classification_batch",
           "classification_batches", "predict", "check_labels"]


def _labels_tensor(labels) -> torch.Tensor:
    if isinstance(labels, torch.Tensor):
        return labels
    items = check_sequence("labels", labels)
    if not items:
        return torch.zeros(0, dtype=torch.long)
    try:
        return torch.as_tensor(items)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"labels must be integer class ids, got {items[:5]!r}") from None


def check_labels(labels: torch.Tensor, num_classes: int, batch_size: int | None = None) -> torch.Tensor:
    """Validate class labels: a 1-D long tensor of ids in ``0..num_classes-1``."""
    num_classes = check_int("num_classes", num_classes, min=1, who="check_labels")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, min=0, who="check_labels")
    labels = _labels_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D (one class per sequence), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if batch_size is not None and labels.numel() != batch_size:
        raise ValueError(f"{labels.numel()} labels for a batch of {batch_size} sequences")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise ValueError(f"labels: label {bad} is out of range for {num_classes} classes (0..{num_classes - 1})")
    return labels.long()


def _check_mask_rows(attention_mask: torch.Tensor, *, right_padded: bool, who: str) -> None:
    """Every row has a real token; with ``right_padded`` every row is ``1...1 0...0``."""
    lengths = attention_mask.long().sum(1)
    if lengths.numel() and int(lengths.min()) == 0:
        raise ValueError(f"{who}: a sequence of the batch has no real token (attention_mask row "
                         f"{int((lengths == 0).nonzero()[0])} is all 0)")
    if right_padded:
        T = attention_mask.shape[1]
        expected = torch.arange(T, device=attention_mask.device)[None, :] < lengths[:, None]
        if not torch.equal(attention_mask.bool(), expected):
            raise ValueError(f"{who}: attention_mask must describe right padding (ones, then zeros)")


def _check_batch(model: "_Classifier", input_ids, attention_mask, labels):
    """``(attention_mask, labels)`` of a classifier's batch, checked before any computation."""
    who = type(model).__name__
    check_tensor("input_ids", input_ids, dims=2, dtype="int", who=who)
    if input_ids.numel() == 0:
        raise ValueError(f"{who}: empty batch: input_ids has shape {tuple(input_ids.shape)}")
    check_ids("input_ids", input_ids, model.vocab_size, who=who)
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    else:
        check_mask("attention_mask", attention_mask, input_ids.shape, who=who)
        _check_mask_rows(attention_mask, right_padded=True, who=who)
    if labels is not None:
        labels = check_labels(labels, model.num_classes, input_ids.shape[0])
    return attention_mask, labels


def _check_encoder(name: str, module, who: str) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{who}: {name} must be an nn.Module (a pretrained model), got {type(module).__name__}")
    if getattr(module, "config", None) is None:
        raise TypeError(f"{who}: {name} must have a .config (an lmlib GPT or BERT), got {type(module).__name__}")


def gpt_hidden_states(gpt: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """The final hidden states of an :class:`lmlib.gpt.GPT`, after ``ln_f`` and before
    ``lm_head``: ``idx (B, T) -> (B, T, n_embd)``. ``gpt.lm_head(h)`` gives back the logits."""
    _check_gpt_input(gpt, idx)
    return gpt.hidden_states(idx)                          # the model's own forward path


def _check_gpt_input(gpt, idx) -> None:
    _check_encoder("gpt", gpt, "gpt_hidden_states")
    if not callable(getattr(gpt, "hidden_states", None)):
        raise TypeError(f"gpt_hidden_states: gpt must be an lmlib.gpt.GPT (it has no .hidden_states), "
                        f"got {type(gpt).__name__}")
    check_ids("idx", idx, gpt.config.vocab_size, dims=2, who="gpt_hidden_states")
    if idx.shape[1] > gpt.config.block_size:
        raise ValueError(f"gpt_hidden_states: idx has a sequence of {idx.shape[1]} tokens, longer than the "
                         f"model's block_size={gpt.config.block_size}")


def _check_pool(hidden, attention_mask, how) -> None:
    check_tensor("hidden", hidden, dims=3, dtype="float", who="pool")
    check_mask("attention_mask", attention_mask, hidden.shape[:2], who="pool")
    check_choice("how", how, ("last", "first", "mean"), who="pool")
    if how != "first":
        _check_mask_rows(attention_mask, right_padded=how == "last", who="pool")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """``hidden: (B, T, C)``, ``attention_mask: (B, T)`` (1 = real, right padded) -> ``(B, C)``.

    ``"last"``: the last real token; ``"first"``: position 0; ``"mean"``: mean over real tokens.
    """
    _check_pool(hidden, attention_mask, how)
    if how == "last":
        last = attention_mask.sum(1).long() - 1                     # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if how == "first":
        return hidden[:, 0]
    if how == "mean":
        m = attention_mask.to(hidden.dtype).unsqueeze(-1)           # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1)


class _Classifier(nn.Module):
    num_classes: int
    vocab_size: int

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled vector ``(B, C)`` the head reads (what a frozen linear probe is fitted on)."""
        attention_mask, _ = _check_batch(self, input_ids, attention_mask, None)
        return self._features(input_ids, attention_mask)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        return F.cross_entropy(logits, labels.to(logits.device))


def _check_head_args(num_classes, pooling, poolings, dropout, who) -> int:
    check_choice("pooling", pooling, poolings, who=who)
    check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who=who)
    return check_int("num_classes", num_classes, min=2, who=who)


class GPTClassifier(_Classifier):
    """A pretrained :class:`lmlib.gpt.GPT` (``self.gpt``) with a linear head (``self.head``).

    ``pooling``: ``"last"`` (default), ``"mean"``, or ``"lm-score"``: the head reads one number
    per sequence, the mean log-probability that the language model gives each real next token
    (a line the model finds fluent scores high), so the classifier starts from what the
    pretrained model was trained to compute. Otherwise the language-model head stays unused, so
    the LM can be evaluated again after fine-tuning (``self.gpt(idx, targets)``).
    """

    def __init__(self, gpt: nn.Module, num_classes: int, *, pooling: str = "last", dropout: float = 0.0) -> None:
        super().__init__()
        num_classes = _check_head_args(num_classes, pooling, ("last", "mean", "lm-score"), dropout, "GPTClassifier")
        _check_encoder("gpt", gpt, "GPTClassifier")
        self.gpt = gpt
        self.num_classes = num_classes
        self.vocab_size = gpt.config.vocab_size
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(1 if pooling == "lm-score" else gpt.config.n_embd, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention_mask, labels = _check_batch(self, input_ids, attention_mask, labels)
        logits = self.head(self.dropout(self._features(input_ids, attention_mask)))  # (B, K)
        return logits, self._loss(logits, labels)

    def _features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = gpt_hidden_states(self.gpt, input_ids)                     # (B, T, C)
        if self.pooling != "lm-score":
            return pool(h, attention_mask, self.pooling)               # (B, C)
        # the mean log-probability the language model gives each real next token: (B, 1)
        logp = torch.log_softmax(self.gpt.lm_head(h[:, :-1]).float(), -1)          # (B, T-1, V)
        logp = logp.gather(-1, input_ids[:, 1:, None])[..., 0]                     # (B, T-1)
        m = attention_mask[:, 1:].to(logp.dtype)
        return ((logp * m).sum(1) / m.sum(1).clamp(min=1))[:, None]


class BertClassifier(_Classifier):
    """A pretrained BERT encoder (``self.bert``, whose ``forward(input_ids, token_type_ids,
    attention_mask)`` returns ``(hidden (B, T, H), pooled (B, H))``) with a linear head.

    ``pooling``: ``"cls"`` (the ``[CLS]`` hidden vector), ``"pooler"`` (BERT's pooled output,
    default) or ``"mean"``. Sequences must start with ``[CLS]`` for the first two.
    """

    def __init__(self, bert: nn.Module, num_classes: int, *, pooling: str = "pooler", dropout: float = 0.1,
                 hidden_size: int | None = None) -> None:
        super().__init__()
        num_classes = _check_head_args(num_classes, pooling, ("cls", "pooler", "mean"), dropout, "BertClassifier")
        _check_encoder("bert", bert, "BertClassifier")
        if hidden_size is None:
            cfg = bert.config
            hidden_size = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None) or getattr(cfg, "d_model", None)
        if hidden_size is None:
            raise ValueError("cannot read the encoder's hidden size from bert.config; pass hidden_size=")
        hidden_size = check_int("hidden_size", hidden_size, min=1, who="BertClassifier")
        self.bert = bert
        self.num_classes = num_classes
        self.vocab_size = check_int("bert.config.vocab_size", getattr(bert.config, "vocab_size", None), min=1,
                                    who="BertClassifier")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention_mask, labels = _check_batch(self, input_ids, attention_mask, labels)
        logits = self.head(self.dropout(self._features(input_ids, attention_mask)))  # (B, K)
        return logits, self._loss(logits, labels)

    def _features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden, pooled = self.bert(input_ids, token_type_ids=None, attention_mask=attention_mask)
        if self.pooling == "pooler":
            return pooled                                                # (B, H)
        return pool(hidden, attention_mask, "first" if self.pooling == "cls" else "mean")


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------

def encode_classification_batch(token_lists: Sequence[Sequence[int]], labels: Sequence[int] | torch.Tensor | None,
                                *, pad_id: int, max_len: int, num_classes: int | None = None
                                ) -> dict[str, torch.Tensor]:
    """Right-pad token lists into ``{"input_ids", "attention_mask"[, "labels"]}`` (``(B, T)``,
    ``(B, T)``, ``(B,)``). A list longer than ``max_len`` raises (cut texts before encoding)."""
    token_lists = _check_token_lists(token_lists, pad_id, max_len, "encode_classification_batch")
    if num_classes is not None:
        check_int("num_classes", num_classes, min=2, who="encode_classification_batch")
    ids, mask = pad_sequences(token_lists, pad_id=pad_id, max_len=max_len, what="example")
    batch = {"input_ids": ids, "attention_mask": mask}
    if labels is not None:
        lab = _labels_tensor(labels)
        k = num_classes if num_classes is not None else (int(lab.max()) + 1 if lab.numel() and not
                                                         lab.is_floating_point() else 1)
        batch["labels"] = check_labels(lab, k, ids.shape[0])
    return batch


def _check_token_lists(token_lists, pad_id, max_len, who: str) -> list:
    """``token_lists`` as a list of lists of int ids; ``pad_id >= 0``, ``max_len >= 1``."""
    check_int("pad_id", pad_id, min=0, who=who)
    check_int("max_len", max_len, min=1, who=who)
    lists = check_sequence("token_lists", token_lists, nonempty=True, who=who)
    for i, ids in enumerate(lists):
        if isinstance(ids, torch.Tensor):
            check_tensor(f"token_lists[{i}]", ids, dims=1, dtype="int", who=who)
            ids = ids.tolist()
        ids = check_sequence(f"token_lists[{i}]", ids, of=int, who=who)
        if any(t < 0 for t in ids):
            raise ValueError(f"{who}: token_lists[{i}] holds a negative token id {min(ids)}")
    return lists


def classification_batches(token_lists: Sequence[Sequence[int]], labels: Sequence[int], *, batch_size: int,
                           pad_id: int, max_len: int, num_classes: int
                           ) -> Callable[[torch.Generator], dict[str, torch.Tensor]]:
    """A ``get_batch(generator)`` for :func:`lmlib.training.train`: a random batch (drawn with
    replacement across calls, without replacement inside a batch) of encoded examples."""
    if isinstance(token_lists, Sequence) and not isinstance(token_lists, (str, bytes)) and len(token_lists) == 0:
        raise ValueError("classification_batches: no training examples (token_lists is empty)")
    token_lists = _check_token_lists(token_lists, pad_id, max_len, "classification_batches")
    labels = _labels_tensor(labels).tolist() if isinstance(labels, torch.Tensor) else check_sequence(
        "labels", labels, who="classification_batches")
    batch_size = check_int("batch_size", batch_size, min=1, who="classification_batches")
    check_int("num_classes", num_classes, min=2, who="classification_batches")
    n = len(token_lists)
    if len(labels) != n:
        raise ValueError(f"classification_batches: {n} examples but {len(labels)} labels")
    encode_classification_batch(token_lists, labels, pad_id=pad_id, max_len=max_len,
                                num_classes=num_classes)  # validate every example now
    bs = min(batch_size, n)

    def get_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randperm(n, generator=generator)[:bs].tolist()
        return encode_classification_batch([token_lists[i] for i in idx], [labels[i] for i in idx],
                                           pad_id=pad_id, max_len=max_len, num_classes=num_classes)

    return get_batch


@torch.no_grad()
def predict(model: nn.Module, token_lists: Sequence[Sequence[int]], *, pad_id: int, max_len: int,
            batch_size: int = 64) -> torch.Tensor:
    """Predicted class ids ``(N,)`` of a classifier on encoded examples (eval mode, restored)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"predict: model must be an nn.Module (a classifier), got {type(model).__name__}")
    token_lists = _check_token_lists(token_lists, pad_id, max_len, "predict")
    check_int("batch_size", batch_size, min=1, who="predict")
    was = model.training
    model.eval()
    out = []
    try:
        # sort by length so that each batch carries little padding, then undo the order
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            b = encode_classification_batch([token_lists[i] for i in chunk], None, pad_id=pad_id, max_len=max_len)
            logits, _ = model(**b)
            out.append(logits.argmax(-1).cpu())
    finally:
        model.train(was)
    pred = torch.empty(len(token_lists), dtype=torch.long)
    pred[torch.tensor(order)] = torch.cat(out)
    return pred


# --------------------------------------------------------------------------------------------
# The bag-of-n-grams logistic-regression baseline
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z']+")


def _check_n_range(n_range) -> tuple[int, int]:
    pair = check_sequence("n_range", n_range, of=int, who="NGramFeaturizer")
    if len(pair) != 2 or not 1 <= pair[0] <= pair[1]:
        raise ValueError(f"NGramFeaturizer: n_range must be (lo, hi) with 1 <= lo <= hi, got {n_range}")
    return pair[0], pair[1]


class NGramFeaturizer:
    """Texts -> sparse ``(N, F)`` feature matrices of word or character n-gram counts.

    ``kind="word"``: lower-cased words (letters and apostrophes), n-grams of ``n_range`` words;
    ``kind="char"``: character n-grams (lower-cased, white space collapsed). The vocabulary is the
    ``max_features`` most frequent n-grams seen in at least ``min_count`` training texts. A
    feature value is ``log(1 + count)``, and each row is scaled to unit L2 norm.
    """

    def __init__(self, kind: str = "word", n_range: tuple[int, int] = (1, 1), max_features: int = 20000,
                 min_count: int = 2) -> None:
        check_choice("kind", kind, ("word", "char"), who="NGramFeaturizer")
        lo, hi = _check_n_range(n_range)
        check_int("max_features", max_features, min=1, who="NGramFeaturizer")
        check_int("min_count", min_count, min=1, who="NGramFeaturizer")
        self.kind, self.n_range, self.max_features, self.min_count = kind, (lo, hi), max_features, min_count
        self.vocab: dict[str, int] | None = None

    def ngrams(self, text: str) -> list[str]:
        check_str("text", text, who="NGramFeaturizer.ngrams")
        lo, hi = self.n_range
        if self.kind == "word":
            toks = _WORD.findall(text.lower())
            return [" ".join(toks[i:i + n]) for n in range(lo, hi + 1) for i in range(len(toks) - n + 1)]
        s = " ".join(text.lower().split())
        return [s[i:i + n] for n in range(lo, hi + 1) for i in range(len(s) - n + 1)]

    def fit(self, texts: Sequence[str]) -> "NGramFeaturizer":
        if isinstance(texts, Sequence) and not isinstance(texts, str) and len(texts) == 0:
            raise ValueError("cannot fit a featurizer on zero texts")
        texts = check_sequence("texts", texts, of=str, nonempty=True, who="NGramFeaturizer.fit")
        df = Counter()
        for t in texts:
            df.update(set(self.ngrams(t)))
        kept = [g for g, c in sorted(df.items(), key=lambda kv: (-kv[1], kv[0])) if c >= self.min_count]
        if not kept:
            raise ValueError(f"no n-gram occurs in at least min_count={self.min_count} texts")
        self.vocab = {g: i for i, g in enumerate(kept[: self.max_features])}
        return self

    @property
    def num_features(self) -> int:
        if self.vocab is None:
            raise RuntimeError("call fit(texts) first")
        return len(self.vocab)

    def transform(self, texts: Sequence[str]) -> torch.Tensor:
        """A sparse COO float tensor ``(len(texts), num_features)``."""
        if self.vocab is None:
            raise RuntimeError("call fit(texts) first")
        if isinstance(texts, Sequence) and not isinstance(texts, str) and len(texts) == 0:
            raise ValueError("transform got zero texts")
        texts = check_sequence("texts", texts, of=str, nonempty=True, who="NGramFeaturizer.transform")
        rows, cols, vals = [], [], []
        for r, t in enumerate(texts):
            counts = Counter(self.vocab[g] for g in self.ngrams(t) if g in self.vocab)
            if not counts:
                continue
            v = torch.log1p(torch.tensor(list(counts.values()), dtype=torch.float32))
            v = v / v.norm()
            rows += [r] * len(counts)
            cols += list(counts.keys())
            vals += v.tolist()
        idx = torch.tensor([rows, cols], dtype=torch.long).view(2, -1)
        return torch.sparse_coo_tensor(idx, torch.tensor(vals, dtype=torch.float32),
                                       (len(texts), self.num_features), check_invariants=False).coalesce()


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: ``logits = X W^T + b`` for a (sparse or dense) ``X: (N, F)``."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        check_int("num_features", num_features, min=1, who="LogisticRegression")
        self.num_classes = check_int("num_classes", num_classes, min=2, who="LogisticRegression")
        self.linear = nn.Linear(num_features, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        _check_features(x, self.linear.in_features, "LogisticRegression")
        if labels is not None:
            labels = check_labels(labels, self.num_classes, x.shape[0])
        logits = self._logits(x)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return logits, loss

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_sparse:
            return torch.sparse.mm(x, self.linear.weight.T) + self.linear.bias  # (N, K)
        return self.linear(x)


def _check_features(x, num_features: int | None, who: str) -> None:
    """``x``: a (sparse or dense) floating-point ``(N, F)`` matrix of finite features."""
    check_tensor("x", x, dims=2, dtype="float", who=who)
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(f"{who}: features x must have shape (N, {num_features}), got {tuple(x.shape)}")
    check_finite("x", x.coalesce().values() if x.is_sparse else x, who=who)


def _check_fit_args(x, num_classes, weight_decay, steps, lr, class_weight) -> None:
    who = "fit_logistic_regression"
    _check_features(x, None, who)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{who}: no training examples (x has shape {tuple(x.shape)})")
    num_classes = check_int("num_classes", num_classes, min=2, who=who)
    check_float("weight_decay", weight_decay, min=0.0, who=who)
    check_int("steps", steps, min=1, who=who)
    check_float("lr", lr, min=0.0, min_open=True, who=who)
    if class_weight is not None:
        check_tensor("class_weight", class_weight, dims=1, dtype="float", sizes={0: num_classes}, who=who)
        check_finite("class_weight", class_weight, who=who)
        if bool((class_weight < 0).any()):
            raise ValueError(f"{who}: class_weight must be >= 0")


def fit_logistic_regression(x: torch.Tensor, labels: torch.Tensor, num_classes: int, *, weight_decay: float = 1e-4,
                            steps: int = 200, lr: float = 0.5, class_weight: torch.Tensor | None = None
                            ) -> LogisticRegression:
    """Full-batch training of :class:`LogisticRegression` with L-BFGS on cross-entropy plus
    ``weight_decay/2 * ||W||^2``. Deterministic (zero initialisation, no sampling)."""
    _check_fit_args(x, num_classes, weight_decay, steps, lr, class_weight)
    labels = check_labels(labels, num_classes, x.shape[0])
    model = LogisticRegression(x.shape[1], num_classes)
    opt = torch.optim.LBFGS(model.parameters(), lr=lr, max_iter=steps, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = model._logits(x)
        loss = F.cross_entropy(logits, labels, weight=class_weight)
        loss = loss + 0.5 * weight_decay * model.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model
