"""A neural bigram model: a ``V x V`` table of logits learned by gradient descent.

Row ``a`` of the table holds the *logits* (unnormalised log-probabilities) of the character that
follows character ``a``; a softmax over the row turns them into ``P(b | a)``. Trained to minimise
the cross-entropy on a text, the table converges to the counting model ``N(ab) / N(a .)``: the
counting model *is* the maximum-likelihood solution, and gradient descent finds the same
maximum by a different road. This is the smallest neural language model, and the road is the one
every later model of the course takes.

The loss of a bigram table depends on the text only through its bigram counts: the mean NLL over
the ``N`` predicted characters is ``sum_a sum_b N(ab) / N * (-log softmax(W[a])[b])``. So
:func:`bigram_nll` computes it from a ``(V, V)`` count table in one ``F.cross_entropy`` call with
soft targets, whatever the length of the text, and :func:`train_bigram` runs exact (full-batch)
gradient descent on it.

*Weight decay* adds ``weight_decay / 2 * sum(W**2)`` to the loss. It pulls every logit towards 0,
i.e. every row towards the uniform distribution, and it pulls hardest on rows with few counts,
whose share of the loss is small: the same effect as add-k smoothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmlib.progress import trange
from lmlib.validation import check_bool, check_float, check_ids, check_int, check_tensor

__all__ = ["NeuralBigram", "bigram_nll", "train_bigram"]


class NeuralBigram(nn.Module):
    """A ``V x V`` table of logits, initialised to 0 (every row uniform).

    ``model(prev_ids)`` returns the logits of the next character, shape ``prev_ids.shape + (V,)``.
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = check_int("vocab_size", vocab_size, min=1, who="NeuralBigram")
        self.logits = nn.Parameter(torch.zeros(vocab_size, vocab_size))  # (V, V): row = previous

    def forward(self, prev_ids: torch.Tensor) -> torch.Tensor:
        check_ids("prev_ids", prev_ids, self.vocab_size, who="NeuralBigram")
        return self.logits[prev_ids]  # (..., V)

    def prob_table(self) -> torch.Tensor:
        """``P(b | a)`` as a float64 ``(V, V)`` table (a copy, detached from the graph)."""
        return torch.softmax(self.logits.detach().double(), dim=-1)


def _check_counts(counts, V: int, who: str) -> torch.Tensor:
    check_tensor("counts", counts, dims=2, sizes={0: V, 1: V}, who=who)
    if counts.dtype == torch.bool or counts.is_complex():
        raise TypeError(f"{who}: counts must be a tensor of numbers, got dtype {counts.dtype}")
    if not bool(torch.isfinite(counts.double()).all()) or bool((counts < 0).any()):
        raise ValueError(f"{who}: counts must be finite and >= 0")
    if float(counts.sum()) <= 0:
        raise ValueError(f"{who}: counts must not be all zero (an empty text?)")
    return counts


def bigram_nll(model: NeuralBigram, counts: torch.Tensor) -> torch.Tensor:
    """Mean NLL (nats per predicted character) of ``model`` on a text with bigram ``counts``
    ``(V, V)``: the same number as ``F.cross_entropy(model(ids[:-1]), ids[1:])`` on the text."""
    if not isinstance(model, NeuralBigram):
        raise TypeError(f"bigram_nll: model must be a NeuralBigram, got {type(model).__name__}")
    _check_counts(counts, model.vocab_size, "bigram_nll")
    targets = counts.to(model.logits.dtype) / counts.sum()  # (V, V): row a sums to N(a .) / N
    return F.cross_entropy(model.logits, targets, reduction="sum")


def train_bigram(model: NeuralBigram, counts: torch.Tensor, *, steps: int, lr: float = 0.1,
                 weight_decay: float = 0.0, progress: bool = False) -> list[float]:
    """Minimise ``bigram_nll(model, counts) + weight_decay / 2 * sum(W**2)`` with Adam for
    ``steps`` full-batch steps (in place); returns the loss before each step."""
    if not isinstance(model, NeuralBigram):
        raise TypeError(f"train_bigram: model must be a NeuralBigram, got {type(model).__name__}")
    _check_counts(counts, model.vocab_size, "train_bigram")
    check_int("steps", steps, min=1, who="train_bigram")
    check_float("lr", lr, min=0.0, min_open=True, who="train_bigram")
    check_float("weight_decay", weight_decay, min=0.0, who="train_bigram")
    check_bool("progress", progress, who="train_bigram")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in trange(steps, desc="training", disable=not progress, leave=False):
        loss = bigram_nll(model, counts) + weight_decay / 2 * model.logits.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
