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

from lmlib.validation import check_int, check_module, check_sequence, check_tensor

__all__ = ["heldout_loss", "bits_per_char", "sequence_log_likelihood"]


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


@torch.no_grad()
def sequence_log_likelihood(model: nn.Module, token_lists, *, starts=None, batch_size: int = 64) -> torch.Tensor:
    """``(N,)`` float64: for each token list ``x``, ``sum_{t >= start} log p(x_t | x_<t)`` under a
    causal ``model`` (logits ``(B, T, V)`` or a tuple whose first element is). ``starts[i]``
    (default 1, the first token that has a prediction) lets the score cover only a suffix, as
    in "how likely is this answer after this prompt". Eval mode, restored."""
    check_module("model", model, who="sequence_log_likelihood")
    check_int("batch_size", batch_size, min=1, who="sequence_log_likelihood")
    lists = _check_token_lists(model, token_lists, "sequence_log_likelihood")
    if not lists:
        raise ValueError("sequence_log_likelihood: token_lists is empty")
    starts = [1] * len(lists) if starts is None else _check_starts(starts, "sequence_log_likelihood")
    if len(starts) != len(lists):
        raise ValueError(f"sequence_log_likelihood: {len(lists)} token lists but {len(starts)} starts")
    for i, (x, s) in enumerate(zip(lists, starts)):
        if not 1 <= s < len(x):
            raise ValueError(f"sequence_log_likelihood: starts[{i}]={s} must be in 1..len(token_lists[{i}])-1 "
                             f"= {len(x) - 1} (position 0 has no prediction)")
    was = model.training
    model.eval()
    out = []
    try:
        for b in range(0, len(lists), batch_size):
            chunk, st = lists[b:b + batch_size], starts[b:b + batch_size]
            T = max(len(x) for x in chunk)
            ids = torch.zeros(len(chunk), T, dtype=torch.long)
            for r, x in enumerate(chunk):
                ids[r, : len(x)] = torch.tensor(x)
            res = model(ids[:, :-1])
            logits = res[0] if isinstance(res, tuple) else res                       # (b, T-1, V)
            logp = torch.log_softmax(logits.double(), -1).gather(-1, ids[:, 1:, None])[..., 0]  # (b, T-1)
            t = torch.arange(1, T)[None, :]                                          # target positions
            lengths = torch.tensor([len(x) for x in chunk])[:, None]
            keep = (t >= torch.tensor(st)[:, None]) & (t < lengths)
            out.append((logp * keep).sum(1))
    finally:
        model.train(was)
    return torch.cat(out)


def _check_token_lists(model: nn.Module, token_lists, who: str) -> list[list[int]]:
    """Each token list as a list of int ids (a 1-D integer tensor is accepted): never a str (it
    would be split into characters) or floats (they would be cut to ints); ids inside the
    model's vocabulary and no list longer than its context window plus the one predicted token,
    when ``model.config`` says so."""
    cfg = getattr(model, "config", None)
    vocab, block = getattr(cfg, "vocab_size", None), getattr(cfg, "block_size", None)
    lists = []
    for i, x in enumerate(check_sequence("token_lists", token_lists, who=who)):
        name = f"token_lists[{i}]"
        if isinstance(x, torch.Tensor):
            check_tensor(name, x, dims=1, dtype="int", who=who)
            x = x.tolist()
        x = check_sequence(name, x, of=int, who=who)
        if x and min(x) < 0:
            raise ValueError(f"{who}: {name} holds a negative token id {min(x)}")
        if isinstance(vocab, int) and x and max(x) >= vocab:
            raise ValueError(f"{who}: {name} holds id {max(x)}, outside the model's vocabulary 0..{vocab - 1}")
        if isinstance(block, int) and len(x) - 1 > block:
            raise ValueError(f"{who}: {name} has {len(x)} tokens; the model reads at most block_size={block} "
                             f"of them (plus the last, which is only predicted)")
        lists.append(x)
    return lists


def _check_starts(starts, who: str) -> list[int]:
    if isinstance(starts, torch.Tensor):
        check_tensor("starts", starts, dims=1, dtype="int", who=who)
        starts = starts.tolist()
    return [check_int(f"starts[{i}]", s, who=who) for i, s in enumerate(check_sequence("starts", starts, who=who))]


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
