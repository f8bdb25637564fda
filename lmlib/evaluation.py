"""Held-out evaluation of language models: loss over a whole text, with and without a stride.

A causal model scores a long text window by window. Two ways of cutting the windows:

* **non-overlapping** (``stride=None``): consecutive windows of ``block_size`` tokens; every
  token after the first is a target exactly once. A target near the start of a window sees
  little context (between 0 and ``block_size - 1`` tokens, ``block_size / 2`` on average), so
  this loss is what the model achieves with *half* a context on average;
* **strided** (``stride=s``): windows of ``block_size`` tokens that start every ``s`` tokens;
  each window scores only its last ``s`` targets (the first window scores all of its own), so
  every target after the first window sees at least ``block_size - s`` tokens of context. It
  costs about ``block_size / s`` times as much and gives a lower loss: the loss of a model
  that always has (almost) its whole context, as it has when it generates.

Both return the mean loss in nats per *predicted token* and the number of tokens scored. For
models with different tokenizers compare **bits per character**: the text's total loss in bits
divided by its number of characters (:func:`bits_per_char`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lmlib.validation import check_int, check_module, check_tensor

__all__ = ["heldout_loss", "bits_per_char"]


@torch.no_grad()
def heldout_loss(model: nn.Module, ids: torch.Tensor, block_size: int, *, stride: int | None = None,
                 batch_size: int = 32, max_windows: int | None = None) -> dict[str, float]:
    """Mean next-token loss (nats per predicted token) of ``model`` over the whole of ``ids``.

    ``model(x)`` must return logits ``(B, T, V)`` (or a tuple whose first element is). With
    ``stride=None`` the windows do not overlap; with ``stride=s`` (``1 <= s <= block_size``)
    they start every ``s`` tokens and each scores only the targets that no earlier window
    scored. ``max_windows`` stops after that many windows (a quick, partial evaluation).
    Returns ``{"loss", "tokens"}``.
    """
    _check_heldout_args(model, ids, block_size, stride, batch_size, max_windows)
    step = block_size if stride is None else stride
    n = len(ids) - 1                                        # targets ids[1:]
    starts = list(range(0, n, step))
    if stride is not None:                                  # the last window must reach the end
        starts = [s for s in starts if s == 0 or s + block_size - step < n]
    if max_windows is not None:
        starts = starts[:max_windows]
    was = model.training
    model.eval()
    total, count, scored_to = 0.0, 0, 0                     # targets before scored_to are done
    try:
        for i in range(0, len(starts), batch_size):
            group = starts[i:i + batch_size]
            length = min(block_size, n - group[0])
            xs, ys, keep = [], [], []
            for s in group:
                t = min(block_size, n - s)
                x, y = ids[s:s + t].long(), ids[s + 1:s + t + 1].long()
                first_new = max(scored_to, s) - s            # targets already scored are skipped
                mask = torch.arange(t) >= first_new
                scored_to = s + t
                pad = length - t
                xs.append(F.pad(x, (0, pad))), ys.append(F.pad(y, (0, pad)))
                keep.append(F.pad(mask, (0, pad)))
            out = model(torch.stack(xs))
            logits = out[0] if isinstance(out, tuple) else out          # (b, t, V)
            losses = F.cross_entropy(logits.transpose(1, 2).float(), torch.stack(ys), reduction="none")
            keep_t = torch.stack(keep)
            total += float(losses[keep_t].double().sum())
            count += int(keep_t.sum())
    finally:
        model.train(was)
    return {"loss": total / count, "tokens": count}


def bits_per_char(loss_nats_per_token: float, tokens: int, chars: int) -> float:
    """A text's total loss in bits divided by its number of characters: comparable across
    tokenizers (a character model's bits per token *are* bits per character)."""
    check_int("tokens", tokens, min=1, who="bits_per_char")
    check_int("chars", chars, min=1, who="bits_per_char")
    if not isinstance(loss_nats_per_token, (int, float)) or not math.isfinite(loss_nats_per_token):
        raise ValueError(f"bits_per_char: loss_nats_per_token must be a finite number, got {loss_nats_per_token!r}")
    return loss_nats_per_token * tokens / chars / math.log(2)


def _check_heldout_args(model, ids, block_size, stride, batch_size, max_windows) -> None:
    who = "heldout_loss"
    check_module("model", model, who=who)
    check_tensor("ids", ids, dims=1, dtype="int", who=who)
    check_int("block_size", block_size, min=1, who=who)
    if stride is not None:
        check_int("stride", stride, min=1, max=block_size, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    if max_windows is not None:
        check_int("max_windows", max_windows, min=1, who=who)
    if len(ids) < 2:
        raise ValueError(f"{who}: ids needs at least 2 tokens, got {len(ids)}")
    if int(ids.min()) < 0:
        raise ValueError(f"{who}: ids must be non-negative token ids, got {int(ids.min())}")
