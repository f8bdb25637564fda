"""A tiny attention-only language model: embeddings, causal attention layers, unembedding.

No feed-forward layers: every position's prediction is the embedding of its own token plus
what its attention layers gather from earlier positions. It is the smallest model in which
attention has to *learn* where to look, and it trains in seconds on characters::

    logits = W_U LayerNorm(x_L),   x_l = x_{l-1} + MHA_l(LayerNorm(x_{l-1})),   x_0 = E[tokens]

- :class:`AttentionOnlyLM` -- ``forward(idx, targets=None) -> (logits, loss)`` (the interface of
  :func:`lmlib.training.train` and :func:`lmlib.evaluation.heldout_loss`), and
  ``attention_maps(idx)`` for the weights of every layer and head.

Positions: with ``rope_base`` (a float) the attention layers rotate queries and keys by their
positions (RoPE, see :class:`lmlib.attention.MultiHeadAttention`); with ``rope_base=None`` a
learned position embedding of ``block_size`` rows is added to the token embeddings.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from lmlib.attention import MultiHeadAttention
from lmlib.validation import check_float, check_ids, check_int

__all__ = ["AttentionOnlyLM"]


class AttentionOnlyLM(nn.Module):
    """Token embedding, ``n_layers`` pre-norm causal self-attention layers with residual
    connections, a final LayerNorm and a linear unembedding. No MLPs.

    ``forward(idx: (B, T) long, targets: (B, T) long | None) -> (logits (B, T, V), loss | None)``;
    ``T <= block_size``. ``attention_maps(idx) -> (n_layers, B, n_heads, T, T)``.
    """

    def __init__(self, vocab_size: int, *, d_model: int = 64, n_heads: int = 4, n_layers: int = 1,
                 block_size: int = 64, rope_base: float | None = None) -> None:
        super().__init__()
        who = "AttentionOnlyLM"
        check_int("vocab_size", vocab_size, min=1, who=who)
        check_int("n_layers", n_layers, min=1, who=who)
        check_int("block_size", block_size, min=1, who=who)
        if rope_base is not None:
            check_float("rope_base", rope_base, min=0.0, min_open=True, who=who)
        # d_model, n_heads (and an even head size for RoPE) are checked by MultiHeadAttention
        self.vocab_size, self.block_size = vocab_size, block_size
        self.layers = nn.ModuleList(MultiHeadAttention(d_model, n_heads, rope_base=rope_base)
                                    for _ in range(n_layers))
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model) if rope_base is None else None
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))
        self.norm_f = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, vocab_size)

    def _check_idx(self, idx, targets=None) -> None:
        who = "AttentionOnlyLM"
        check_ids("idx", idx, self.vocab_size, dims=2, who=who)
        if idx.shape[1] < 1 or idx.shape[1] > self.block_size:
            raise ValueError(f"{who}: idx must have 1..block_size={self.block_size} positions, "
                             f"got shape {tuple(idx.shape)}")
        if targets is not None:
            check_ids("targets", targets, self.vocab_size, dims=2, allow=(-100,), who=who)
            if targets.shape != idx.shape:
                raise ValueError(f"{who}: targets must have the shape of idx {tuple(idx.shape)}, "
                                 f"got {tuple(targets.shape)}")

    def _embed(self, idx: Tensor) -> Tensor:
        x = self.tok_emb(idx)                                        # (B, T, d)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(idx.shape[1], device=idx.device))
        return x

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        self._check_idx(idx, targets)
        x = self._embed(idx)                                         # (B, T, d)
        for norm, attn in zip(self.norms, self.layers):
            x = x + attn(norm(x), is_causal=True)                    # each position reads the past
        logits = self.unembed(self.norm_f(x))                        # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.transpose(1, 2), targets)
        return logits, loss

    @torch.no_grad()
    def attention_maps(self, idx: Tensor) -> Tensor:
        """The causal attention weights of every layer and head: ``(n_layers, B, n_heads, T, T)``."""
        self._check_idx(idx)
        x, maps = self._embed(idx), []
        for norm, attn in zip(self.norms, self.layers):
            y, w = attn(norm(x), is_causal=True, need_weights=True)
            x, maps = x + y, maps + [w]
        return torch.stack(maps)
