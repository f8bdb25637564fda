"""The input layer: token embeddings (词嵌入) and positional encodings (位置编码).

A Transformer sees a sequence of token ids ``idx: (B, T)``. The input layer turns it into
vectors ``(B, T, C)`` (``C = d_model = n_embd``):

* :class:`TokenEmbedding`: a lookup table ``W: (vocab_size, C)``; row ``idx[b, t]`` is the
  vector of that token (equal to ``one_hot(idx) @ W``, without building the one-hot matrix).
* Attention by itself ignores order, so position must be added:

  - :class:`SinusoidalPositionalEncoding`: the fixed sines and cosines of "Attention Is All You
    Need": ``PE[p, 2i] = sin(p / base^(2i/C))``, ``PE[p, 2i+1] = cos(p / base^(2i/C))``, added
    to the token vectors;
  - :class:`LearnedPositionalEmbedding`: a second lookup table ``(max_len, C)`` trained with
    the model (GPT-2), added to the token vectors;
  - :class:`RotaryEmbedding` (RoPE): nothing is added to the input; instead the queries and
    keys inside attention are rotated by an angle proportional to their position, so that
    ``q_m . k_n`` depends on the positions only through the offset ``m - n``.

The additive modules take ``x: (B, T, C)`` and an ``offset`` (the position of ``x[:, 0]``, used
with a KV cache) and return ``x`` plus the positions' vectors, same shape.

These are the input layers of the course's models: :class:`lmlib.gpt.GPT` (``wte``, ``wpe``),
:class:`lmlib.bert.BERT` (``word_embeddings``, ``position_embeddings``, ``token_type_embeddings``)
and :class:`lmlib.transformer.Transformer` (scaled :class:`TokenEmbedding` plus
:class:`SinusoidalPositionalEncoding`); :class:`lmlib.attention.MultiHeadAttention` applies
:class:`RotaryEmbedding` when given ``rope_base``. The two tables are ``nn.Embedding`` subclasses,
so a model's state holds exactly one ``weight`` per table.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmlib.validation import check_bool, check_float, check_ids, check_int, check_tensor

__all__ = [
    "TokenEmbedding",
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "RotaryEmbedding",
    "rotate_half",
]


def _check_x(x: torch.Tensor, d_model: int, who: str) -> None:
    check_tensor("x", x, dims=3, dtype="float", sizes={-1: d_model}, who=who)  # (B, T, C)


def _check_offset(offset, t: int, max_len: int | None, who: str) -> None:
    check_int("offset", offset, min=0, who=who)
    if max_len is not None and offset + t > max_len:
        raise ValueError(f"{who}: positions {offset}..{offset + t - 1} exceed max_len = {max_len}")


def _check_sizes(who: str, **sizes: int) -> None:
    for name, n in sizes.items():
        check_int(name, n, min=1, who=who)


class TokenEmbedding(nn.Embedding):
    """A lookup table of token vectors (the ``wte`` of GPT, the ``word_embeddings`` of BERT).

    ``forward(idx: (B, T) int) -> (B, T, C)``: row ``idx[b, t]`` of ``weight: (vocab_size, C)``,
    multiplied by ``sqrt(C)`` when ``scale=True`` (as in "Attention Is All You Need", where the
    same matrix is also the output layer). Ids out of range raise ``ValueError``. The row of
    ``padding_idx`` (if given) starts at zero and receives no gradient. It is an ``nn.Embedding``,
    so its state is the single tensor ``weight``, and an output layer can share it.
    """

    def __init__(self, vocab_size: int, d_model: int, *, scale: bool = False, padding_idx: int | None = None):
        _check_sizes("TokenEmbedding", vocab_size=vocab_size, d_model=d_model)
        check_bool("scale", scale, who="TokenEmbedding")
        if padding_idx is not None:
            check_int("padding_idx", padding_idx, min=0, max=vocab_size - 1, who="TokenEmbedding")
        super().__init__(vocab_size, d_model, padding_idx=padding_idx)
        self.vocab_size, self.d_model, self.scale = vocab_size, d_model, scale

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """N(0, 0.02) entries, the padding row (if any) zero."""
        nn.init.normal_(self.weight, mean=0.0, std=0.02)
        self._fill_padding_idx_with_zero()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        check_ids("idx", idx, self.vocab_size, who="TokenEmbedding")
        x = super().forward(idx)  # (..., C): row idx of the table
        return x * math.sqrt(self.d_model) if self.scale else x


def _check_sinusoidal_args(n_positions, d_model, base, offset, dtype, who: str = "sinusoidal_encoding") -> None:
    _check_sizes(who, n_positions=n_positions, d_model=d_model)
    if d_model % 2:
        raise ValueError(f"{who}: sinusoidal encodings need an even d_model, got {d_model}")
    check_float("base", base, min=0.0, min_open=True, who=who)
    check_int("offset", offset, min=0, who=who)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{who}: dtype must be a floating-point torch.dtype, got {dtype!r}")


def sinusoidal_encoding(n_positions: int, d_model: int, *, base: float = 10000.0, offset: int = 0,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The sinusoidal table ``PE: (n_positions, d_model)`` for positions ``offset..offset+n-1``.

    ``PE[p, 2i] = sin(p * w_i)`` and ``PE[p, 2i+1] = cos(p * w_i)`` with ``w_i = base^(-2i/d)``:
    each pair of dimensions is a clock turning at its own frequency, from one radian per
    position (``i = 0``) down to ``1/base`` radians per position.
    """
    _check_sinusoidal_args(n_positions, d_model, base, offset, dtype)
    pos = torch.arange(offset, offset + n_positions, dtype=torch.float64)  # (T,)
    freqs = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (C/2,)
    angles = pos[:, None] * freqs[None, :]  # (T, C/2)
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (T, C/2, 2)
    return pe.reshape(n_positions, d_model).to(dtype)  # (T, C): sin, cos, sin, cos, ...


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encodings: ``forward(x: (B, T, C), offset=0) -> (B, T, C)``.

    The table for ``max_len`` positions is precomputed as a buffer ``pe: (max_len, C)`` (not a
    parameter: nothing is learned), and an optional dropout follows the sum, as in the paper.
    """

    def __init__(self, d_model: int, max_len: int = 4096, *, base: float = 10000.0, dropout: float = 0.0):
        super().__init__()
        _check_sizes("SinusoidalPositionalEncoding", d_model=d_model, max_len=max_len)
        _check_sinusoidal_args(max_len, d_model, base, 0, torch.float32, who="SinusoidalPositionalEncoding")
        check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who="SinusoidalPositionalEncoding")
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model, base=base), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        _check_x(x, self.d_model, "SinusoidalPositionalEncoding")
        T = x.shape[1]
        _check_offset(offset, T, self.max_len, "SinusoidalPositionalEncoding")
        return self.dropout(x + self.pe[offset:offset + T].to(x.dtype))  # (B, T, C) + (T, C)


class LearnedPositionalEmbedding(nn.Embedding):
    """A learned vector per position (GPT-2's ``wpe``, BERT's ``position_embeddings``).

    ``weight: (max_len, C)``. ``forward(x: (B, T, C) float, offset=0)`` returns ``x`` plus the
    vectors of positions ``offset..offset+T-1``; ``forward(positions: int tensor)`` returns the
    vectors of those positions, like any lookup table. Positions at or beyond ``max_len`` have no
    vector, so asking for them raises ``ValueError`` (a model with learned positions cannot read
    longer sequences).
    """

    def __init__(self, max_len: int, d_model: int):
        _check_sizes("LearnedPositionalEmbedding", max_len=max_len, d_model=d_model)
        super().__init__(max_len, d_model)
        self.max_len, self.d_model = max_len, d_model

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """N(0, 0.02) entries."""
        nn.init.normal_(self.weight, mean=0.0, std=0.02)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        who = "LearnedPositionalEmbedding"
        if isinstance(x, torch.Tensor) and not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool:
            if not (type(offset) is int and offset == 0):
                raise ValueError(f"{who}: offset is only for adding to vectors x, not for a lookup of positions")
            check_ids("positions", x, self.max_len, who=who)  # ids of positions: a plain lookup
            return super().forward(x)                          # (..., C)
        _check_x(x, self.d_model, who)
        T = x.shape[1]
        _check_offset(offset, T, self.max_len, who)
        pos = torch.arange(offset, offset + T, device=x.device)  # (T,)
        return x + super().forward(pos)                          # (B, T, C) + (T, C)


def _check_rotate_half(x) -> None:
    check_tensor("x", x, dtype="float", who="rotate_half")
    if x.dim() == 0 or x.shape[-1] % 2:
        raise ValueError(f"rotate_half: x must have an even last dimension, got shape {tuple(x.shape)}")


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(x1, x2) -> (-x2, x1)`` on the two halves of the last dimension: a 90-degree turn of
    every pair ``(x[j], x[j + hs/2])``."""
    _check_rotate_half(x)
    x1, x2 = x.chunk(2, dim=-1)  # (..., hs/2) each
    return torch.cat([-x2, x1], dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) for queries and keys of one attention head.

    Dimension ``j`` and ``j + hs/2`` form a pair (the "rotate half" layout of GPT-NeoX and of
    the Hugging Face Llama; the RoFormer paper and Meta's Llama code pair neighbours ``2j, 2j+1``,
    a fixed permutation of the same thing). At position ``p`` the pair is rotated by the angle ``p * w_j`` with
    ``w_j = base^(-2j/hs)``::

        rope(x, p) = x * cos(p w) + rotate_half(x) * sin(p w)

    A rotation by ``m w`` then one by ``-n w`` is one by ``(m - n) w``, so
    ``rope(q, m) . rope(k, n) == rope(q, m - n) . k``: attention scores see only the offset.

    ``forward(x: (..., T, hs), offset=0) -> (..., T, hs)`` rotates row ``t`` by position
    ``offset + t`` (``offset`` may also be a LongTensor of T positions). Call it on the queries
    and on the keys (``(B, n_head, T, hs)``), never on the values.
    """

    def __init__(self, head_dim: int, *, base: float = 10000.0):
        super().__init__()
        check_int("head_dim", head_dim, min=1, who="RotaryEmbedding")
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding: RoPE needs an even head_dim, got {head_dim}")
        check_float("base", base, min=0.0, min_open=True, who="RotaryEmbedding")
        self.head_dim, self.base = head_dim, base
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (hs/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos, sin: (T, hs)`` for integer positions ``(T,)`` (each angle appears twice)."""
        check_tensor("positions", positions, dims=1, dtype="int", who="RotaryEmbedding.cos_sin")
        inv_freq = self.inv_freq
        if inv_freq.dtype != torch.float32:   # model.to(bfloat16) rounded the buffer: recompute it exactly
            inv_freq = self.base ** (-torch.arange(0, self.head_dim, 2, dtype=torch.float32,
                                                   device=positions.device) / self.head_dim)
        angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # (T, hs/2)
        angles = torch.cat([angles, angles], dim=-1)  # (T, hs)
        return angles.cos(), angles.sin()

    def _check_inputs(self, x, offset) -> None:
        who = "RotaryEmbedding"
        check_tensor("x", x, dtype="float", sizes={-1: self.head_dim}, who=who)
        if x.dim() < 2:
            raise ValueError(f"{who}: x must have shape (..., T, head_dim), got {tuple(x.shape)}")
        T = x.shape[-2]
        if isinstance(offset, torch.Tensor):
            check_tensor("offset", offset, dtype="int", who=who)
            if offset.shape != (T,):
                raise ValueError(f"{who}: positions (offset) must be an integer tensor of shape ({T},), got "
                                 f"{offset.dtype} {tuple(offset.shape)}")
        else:
            _check_offset(offset, T, None, who)

    def forward(self, x: torch.Tensor, offset: int | torch.Tensor = 0) -> torch.Tensor:
        self._check_inputs(x, offset)
        T = x.shape[-2]
        if isinstance(offset, torch.Tensor):
            positions = offset.to(x.device)                                # (T,) given positions
        else:
            positions = torch.arange(offset, offset + T, device=x.device)  # (T,)
        cos, sin = self.cos_sin(positions)  # (T, hs) each
        out = x.float() * cos + rotate_half(x.float()) * sin  # (..., T, hs)
        return out.to(x.dtype)
