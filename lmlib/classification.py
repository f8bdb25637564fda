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

__all__ = ["gpt_hidden_states", "pool", "GPTClassifier", "BertClassifier", "NGramFeaturizer",
           "LogisticRegression", "fit_logistic_regression", "encode_classification_batch",
           "classification_batches", "predict", "check_labels"]


def check_labels(labels: torch.Tensor, num_classes: int, batch_size: int | None = None) -> torch.Tensor:
    """Validate class labels: a 1-D long tensor of ids in ``0..num_classes-1``."""
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D (one class per sequence), got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if batch_size is not None and labels.numel() != batch_size:
        raise ValueError(f"{labels.numel()} labels for a batch of {batch_size} sequences")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise ValueError(f"label {bad} is out of range for {num_classes} classes (0..{num_classes - 1})")
    return labels.long()


def _check_ids(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a (B, T) tensor of token ids")
    B, T = input_ids.shape
    if B == 0 or T == 0:
        raise ValueError(f"empty batch: input_ids has shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        return torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
    lengths = attention_mask.sum(1)
    if int(lengths.min()) == 0:
        raise ValueError("a sequence of the batch has no real token (attention_mask all 0)")
    # right padding: every row is 1...1 0...0
    expected = (torch.arange(T, device=attention_mask.device)[None, :] < lengths[:, None]).to(attention_mask.dtype)
    if not torch.equal(attention_mask, expected):
        raise ValueError("attention_mask must describe right padding (ones, then zeros)")
    return attention_mask


def gpt_hidden_states(gpt: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """The final hidden states of an :class:`lmlib.gpt.GPT`, after ``ln_f`` and before
    ``lm_head``: ``idx (B, T) -> (B, T, n_embd)``. ``gpt.lm_head(h)`` gives back the logits."""
    B, T = idx.shape
    if T > gpt.config.block_size:
        raise ValueError(f"sequence of {T} tokens is longer than the model's block_size={gpt.config.block_size}")
    pos = torch.arange(T, device=idx.device)              # (T,)
    x = gpt.drop(gpt.wte(idx) + gpt.wpe(pos))              # (B, T, C)
    for block in gpt.blocks:
        x = block(x, is_causal=True)
    return gpt.ln_f(x)                                     # (B, T, C)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """``hidden: (B, T, C)``, ``attention_mask: (B, T)`` (1 = real, right padded) -> ``(B, C)``.

    ``"last"``: the last real token; ``"first"``: position 0; ``"mean"``: mean over real tokens.
    """
    if how == "last":
        last = attention_mask.sum(1).long() - 1                     # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if how == "first":
        return hidden[:, 0]
    if how == "mean":
        m = attention_mask.to(hidden.dtype).unsqueeze(-1)           # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1)
    raise ValueError(f"unknown pooling {how!r}; use 'last', 'first' or 'mean'")


class _Classifier(nn.Module):
    num_classes: int

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        labels = check_labels(labels, self.num_classes, logits.shape[0])
        return F.cross_entropy(logits, labels.to(logits.device))


class GPTClassifier(_Classifier):
    """A pretrained :class:`lmlib.gpt.GPT` (``self.gpt``) with a linear head (``self.head``).

    ``pooling``: ``"last"`` (default) or ``"mean"``. The language-model head stays unused, so
    the LM can be evaluated again after fine-tuning (``self.gpt(idx, targets)``).
    """

    def __init__(self, gpt: nn.Module, num_classes: int, *, pooling: str = "last", dropout: float = 0.0) -> None:
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(f"GPT pooling must be 'last' or 'mean', got {pooling!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        self.gpt = gpt
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(gpt.config.n_embd, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention_mask = _check_ids(input_ids, attention_mask)
        h = gpt_hidden_states(self.gpt, input_ids)                     # (B, T, C)
        logits = self.head(self.dropout(pool(h, attention_mask, self.pooling)))  # (B, K)
        return logits, self._loss(logits, labels)


class BertClassifier(_Classifier):
    """A pretrained BERT encoder (``self.bert``, whose ``forward(input_ids, token_type_ids,
    attention_mask)`` returns ``(hidden (B, T, H), pooled (B, H))``) with a linear head.

    ``pooling``: ``"cls"`` (the ``[CLS]`` hidden vector), ``"pooler"`` (BERT's pooled output,
    default) or ``"mean"``. Sequences must start with ``[CLS]`` for the first two.
    """

    def __init__(self, bert: nn.Module, num_classes: int, *, pooling: str = "pooler", dropout: float = 0.1,
                 hidden_size: int | None = None) -> None:
        super().__init__()
        if pooling not in ("cls", "pooler", "mean"):
            raise ValueError(f"BERT pooling must be 'cls', 'pooler' or 'mean', got {pooling!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        if hidden_size is None:
            cfg = getattr(bert, "config", None)
            hidden_size = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None) or getattr(cfg, "d_model", None)
        if hidden_size is None:
            raise ValueError("cannot read the encoder's hidden size from bert.config; pass hidden_size=")
        self.bert = bert
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention_mask = _check_ids(input_ids, attention_mask)
        hidden, pooled = self.bert(input_ids, token_type_ids=None, attention_mask=attention_mask)
        if self.pooling == "pooler":
            v = pooled                                                   # (B, H)
        else:
            v = pool(hidden, attention_mask, "first" if self.pooling == "cls" else "mean")
        logits = self.head(self.dropout(v))                              # (B, K)
        return logits, self._loss(logits, labels)


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------

def encode_classification_batch(token_lists: Sequence[Sequence[int]], labels: Sequence[int] | torch.Tensor | None,
                                *, pad_id: int, max_len: int, num_classes: int | None = None
                                ) -> dict[str, torch.Tensor]:
    """Right-pad token lists into ``{"input_ids", "attention_mask"[, "labels"]}`` (``(B, T)``,
    ``(B, T)``, ``(B,)``). A list longer than ``max_len`` raises (cut texts before encoding)."""
    ids, mask = pad_sequences(token_lists, pad_id=pad_id, max_len=max_len, what="example")
    batch = {"input_ids": ids, "attention_mask": mask}
    if labels is not None:
        lab = torch.as_tensor(labels)
        batch["labels"] = check_labels(lab, num_classes if num_classes is not None else int(lab.max()) + 1,
                                       ids.shape[0])
    return batch


def classification_batches(token_lists: Sequence[Sequence[int]], labels: Sequence[int], *, batch_size: int,
                           pad_id: int, max_len: int, num_classes: int
                           ) -> Callable[[torch.Generator], dict[str, torch.Tensor]]:
    """A ``get_batch(generator)`` for :func:`lmlib.training.train`: a random batch (drawn with
    replacement across calls, without replacement inside a batch) of encoded examples."""
    n = len(token_lists)
    if n == 0:
        raise ValueError("no training examples")
    if len(labels) != n:
        raise ValueError(f"{n} examples but {len(labels)} labels")
    check_labels(torch.as_tensor(list(labels)), num_classes)
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
    if len(token_lists) == 0:
        raise ValueError("predict got no examples")
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


class NGramFeaturizer:
    """Texts -> sparse ``(N, F)`` feature matrices of word or character n-gram counts.

    ``kind="word"``: lower-cased words (letters and apostrophes), n-grams of ``n_range`` words;
    ``kind="char"``: character n-grams (lower-cased, white space collapsed). The vocabulary is the
    ``max_features`` most frequent n-grams seen in at least ``min_count`` training texts. A
    feature value is ``log(1 + count)``, and each row is scaled to unit L2 norm.
    """

    def __init__(self, kind: str = "word", n_range: tuple[int, int] = (1, 1), max_features: int = 20000,
                 min_count: int = 2) -> None:
        if kind not in ("word", "char"):
            raise ValueError(f"kind must be 'word' or 'char', got {kind!r}")
        lo, hi = n_range
        if not 1 <= lo <= hi:
            raise ValueError(f"n_range must be (lo, hi) with 1 <= lo <= hi, got {n_range}")
        self.kind, self.n_range, self.max_features, self.min_count = kind, (lo, hi), max_features, min_count
        self.vocab: dict[str, int] | None = None

    def ngrams(self, text: str) -> list[str]:
        lo, hi = self.n_range
        if self.kind == "word":
            toks = _WORD.findall(text.lower())
            return [" ".join(toks[i:i + n]) for n in range(lo, hi + 1) for i in range(len(toks) - n + 1)]
        s = " ".join(text.lower().split())
        return [s[i:i + n] for n in range(lo, hi + 1) for i in range(len(s) - n + 1)]

    def fit(self, texts: Sequence[str]) -> "NGramFeaturizer":
        if len(texts) == 0:
            raise ValueError("cannot fit a featurizer on zero texts")
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
        if len(texts) == 0:
            raise ValueError("transform got zero texts")
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
        self.num_classes = num_classes
        self.linear = nn.Linear(num_features, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        if x.dim() != 2 or x.shape[1] != self.linear.in_features:
            raise ValueError(f"features must have shape (N, {self.linear.in_features}), got {tuple(x.shape)}")
        if x.is_sparse:
            logits = torch.sparse.mm(x, self.linear.weight.T) + self.linear.bias  # (N, K)
        else:
            logits = self.linear(x)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, check_labels(labels, self.num_classes, x.shape[0]))
        return logits, loss


def fit_logistic_regression(x: torch.Tensor, labels: torch.Tensor, num_classes: int, *, weight_decay: float = 1e-4,
                            steps: int = 200, lr: float = 0.5, class_weight: torch.Tensor | None = None
                            ) -> LogisticRegression:
    """Full-batch training of :class:`LogisticRegression` with L-BFGS on cross-entropy plus
    ``weight_decay/2 * ||W||^2``. Deterministic (zero initialisation, no sampling)."""
    labels = check_labels(labels, num_classes, x.shape[0])
    if x.shape[0] == 0:
        raise ValueError("no training examples")
    model = LogisticRegression(x.shape[1], num_classes)
    opt = torch.optim.LBFGS(model.parameters(), lr=lr, max_iter=steps, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits, _ = model(x)
        loss = F.cross_entropy(logits, labels, weight=class_weight)
        loss = loss + 0.5 * weight_decay * model.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model
