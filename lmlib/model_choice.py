"""Choosing a model by measuring it: size, memory, speed on this machine and held-out bits per character.

Every causal language model is measured the same way on the same text, so that a character model,
a BPE model and a model in Hugging Face's format can stand in one table: the text is cut into
windows of ``block_size + 1`` tokens, each window's tokens after the first are predicted, and the
summed negative log-likelihood is divided by ``ln 2`` and by the number of characters those
tokens spell. Bits per character do not depend on the tokenizer; a loss per token does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ModelReport", "measure_lm", "held_out_text"]


@dataclass(frozen=True)
class ModelReport:
    name: str
    params: int
    weight_mb: float          # bytes of the parameters, in MB (10**6 bytes)
    bits_per_char: float      # on the measured text
    tokens: int               # predicted tokens
    chars: int                # characters those tokens spell
    tokens_per_s: float       # forward pass throughput on this machine (eval mode, no gradient)


def held_out_text(split_seed: int = 0, part: str = "val", max_chars: int = 20_000) -> str:
    """The first ``max_chars`` characters of the held-out plays (the course's play split)."""
    from lmlib.data import corpus_text, split_plays

    if not isinstance(split_seed, int) or isinstance(split_seed, bool) or split_seed < 0:
        raise ValueError(f"split_seed must be a non-negative int, got {split_seed!r}")
    if part not in ("val", "test"):
        raise ValueError(f"part must be 'val' or 'test', got {part!r}")
    if not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 100:
        raise ValueError(f"max_chars must be an int >= 100, got {max_chars!r}")
    split = split_plays(split_seed)
    return corpus_text(getattr(split, part))[:max_chars]


def _logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    if hasattr(out, "logits"):          # a transformers model
        return out.logits
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def measure_lm(name: str, model: nn.Module, encode: Callable[[str], list[int]],
               decode: Callable[[list[int]], str], text: str, *, block_size: int,
               batch_size: int = 8) -> ModelReport:
    """Measure one causal LM on ``text`` (see the module docstring). ``model(ids)`` may return
    logits, ``(logits, loss)`` or an object with ``.logits``; it is put in eval mode and restored."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(encode) or not callable(decode):
        raise TypeError("encode and decode must be callables (text -> ids, ids -> text)")
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string")
    for arg, value in (("block_size", block_size), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    ids = torch.tensor(list(encode(text)), dtype=torch.long)
    n_windows = (len(ids) - 1) // block_size
    if n_windows < 1:
        raise ValueError(f"text must encode to more than block_size + 1 = {block_size + 1} tokens, "
                         f"got {len(ids)}")
    windows = ids[: n_windows * block_size + 1]
    x = windows[:-1].view(n_windows, block_size)
    y = windows[1:].view(n_windows, block_size)
    was_training = model.training
    model.eval()
    nll, seconds = 0.0, 0.0
    try:
        for start in range(0, n_windows, batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            t0 = time.perf_counter()
            logits = _logits(model, xb)
            seconds += time.perf_counter() - t0
            if logits.shape[:2] != xb.shape or logits.shape[-1] <= int(ids.max()):
                raise ValueError(f"model returned logits of shape {tuple(logits.shape)} for ids of "
                                 f"shape {tuple(xb.shape)} with largest id {int(ids.max())}")
            nll += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                   reduction="sum").item()
    finally:
        model.train(was_training)
    chars = sum(len(decode(row.tolist())) for row in y)
    if not math.isfinite(nll):
        raise ValueError(f"{name}: the held-out loss is not finite")
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return ModelReport(name=name, params=sum(p.numel() for p in model.parameters()),
                       weight_mb=weight_bytes / 1e6, bits_per_char=nll / math.log(2) / chars,
                       tokens=int(y.numel()), chars=chars, tokens_per_s=y.numel() / seconds)
