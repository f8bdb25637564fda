"""Transformer layers: the encoder layer, the decoder layer, and stacks of them.

A layer is two (encoder) or three (decoder) *sublayers*, each wrapped in a residual connection
and a LayerNorm. There are two places to put the norm:

* post-norm (original Transformer, BERT):  ``x = norm(x + sublayer(x))``
* pre-norm  (GPT-2 and nearly every LLM since): ``x = x + sublayer(norm(x))``

``norm_first=True`` selects pre-norm, as in ``torch.nn.TransformerEncoderLayer``. A pre-norm stack
needs one extra LayerNorm after its last layer (``final_norm`` in :class:`Encoder` / :class:`Decoder`);
a post-norm stack already ends in one.

Shapes: ``x: (B, T, d_model)``, encoder output ``memory: (B, S, d_model)``; padding masks are bool
``(B, T)`` with True = padding (ignored as a key), as in ``torch.nn.MultiheadAttention``.
"""

from __future__ import annotations

import torch
from torch import nn

from lmlib.attention import KVCache, MultiHeadAttention, _check_features
from lmlib.feedforward import FeedForward
from lmlib.normalization import LayerNorm
from lmlib.validation import check_bool, check_choice, check_float, check_int, check_tensor
from lmlib.feedforward import ACTIVATIONS

__all__ = ["EncoderLayer", "DecoderLayer", "Encoder", "Decoder"]


def _check_layer_args(who: str, d_model, n_heads, d_ff, dropout, attn_dropout, activation, norm_first,
                      layer_norm_eps, bias) -> None:
    check_int("d_model", d_model, min=1, who=who)
    check_int("n_heads", n_heads, min=1, who=who)
    check_int("d_ff", d_ff, min=1, who=who)
    if d_model % n_heads != 0:
        raise ValueError(f"{who}: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
    check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who=who)
    if attn_dropout is not None:
        check_float("attn_dropout", attn_dropout, min=0.0, max=1.0, max_open=True, who=who)
    check_choice("activation", activation, sorted(ACTIVATIONS), who=who)
    check_bool("norm_first", norm_first, who=who)
    check_float("layer_norm_eps", layer_norm_eps, min=0.0, min_open=True, who=who)
    check_bool("bias", bias, who=who)


def _check_padding_mask(name: str, mask, shape: tuple[int, int], who: str) -> None:
    """A bool padding mask ``(B, T)``, True = padding."""
    if mask is not None:
        check_tensor(name, mask, dtype=torch.bool, who=who)
        if tuple(mask.shape) != tuple(shape):
            raise ValueError(f"{who}: {name} must have shape (B, T) = {tuple(shape)}, got {tuple(mask.shape)}")


def _check_caches(kv_caches, n_layers: int, who: str) -> None:
    if kv_caches is None:
        return
    if not isinstance(kv_caches, (list, tuple)) or not all(isinstance(c, KVCache) for c in kv_caches):
        raise TypeError(f"{who}: kv_caches must be a list of KVCache, got {type(kv_caches).__name__}")
    if len(kv_caches) != n_layers:
        raise ValueError(f"{who}: expected {n_layers} KV caches (one per layer) in kv_caches, got {len(kv_caches)}")


def _check_layers(n_layers, who: str) -> None:
    check_int("n_layers", n_layers, min=1, who=who)


class EncoderLayer(nn.Module):
    """Self-attention (bidirectional) + feed-forward, each with residual + LayerNorm.

    ``forward(x: (B, T, d_model), *, key_padding_mask: (B, T) bool | None = None,
    attn_mask: (T, T) | None = None) -> (B, T, d_model)``.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, *, dropout: float = 0.0,
                 attn_dropout: float | None = None, activation: str = "gelu_erf", norm_first: bool = True,
                 layer_norm_eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        check_int("d_model", d_model, min=1, who="EncoderLayer")
        d_ff = 4 * d_model if d_ff is None else d_ff
        _check_layer_args("EncoderLayer", d_model, n_heads, d_ff, dropout, attn_dropout, activation, norm_first,
                          layer_norm_eps, bias)
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=bias,
                                            dropout=dropout if attn_dropout is None else attn_dropout)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.ffn = FeedForward(d_model, d_ff, activation=activation, dropout=dropout, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout = nn.Dropout(dropout)  # on the attention sublayer's output

    def _sa(self, x: torch.Tensor, key_padding_mask, attn_mask) -> torch.Tensor:
        return self.dropout(self.self_attn(x, attn_mask=attn_mask, key_padding_mask=key_padding_mask))

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_features("x", x, self.norm1.dim, self.self_attn.q_proj.weight, dims=3, who="EncoderLayer")
        if self.norm_first:                                   # pre-norm
            x = x + self._sa(self.norm1(x), key_padding_mask, attn_mask)
            x = x + self.ffn(self.norm2(x))
        else:                                                 # post-norm
            x = self.norm1(x + self._sa(x, key_padding_mask, attn_mask))
            x = self.norm2(x + self.ffn(x))
        return x                                              # (B, T, d_model)


class DecoderLayer(nn.Module):
    """Masked self-attention [+ cross-attention to the encoder output] + feed-forward.

    With ``cross_attention=False`` this is the decoder-only (GPT) block.
    ``forward(x: (B, T, d_model), memory: (B, S, d_model) | None = None, *, is_causal=True,
    key_padding_mask: (B, T) | None, memory_key_padding_mask: (B, S) | None,
    kv_cache: KVCache | None) -> (B, T, d_model)``.
    A ``kv_cache`` caches the *self*-attention keys/values (generation one token at a time).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, *, cross_attention: bool = True,
                 dropout: float = 0.0, attn_dropout: float | None = None, activation: str = "gelu_erf",
                 norm_first: bool = True, layer_norm_eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        check_int("d_model", d_model, min=1, who="DecoderLayer")
        d_ff = 4 * d_model if d_ff is None else d_ff
        _check_layer_args("DecoderLayer", d_model, n_heads, d_ff, dropout, attn_dropout, activation, norm_first,
                          layer_norm_eps, bias)
        check_bool("cross_attention", cross_attention, who="DecoderLayer")
        a_drop = dropout if attn_dropout is None else attn_dropout
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=a_drop, bias=bias)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        if cross_attention:
            self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=a_drop, bias=bias)
            self.norm_cross = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        else:
            self.cross_attn = None
            self.norm_cross = None
        self.ffn = FeedForward(d_model, d_ff, activation=activation, dropout=dropout, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def _check_inputs(self, x, memory, memory_key_padding_mask) -> None:
        who = "DecoderLayer"
        _check_features("x", x, self.norm1.dim, self.self_attn.q_proj.weight, dims=3, who=who)
        if (memory is None) != (self.cross_attn is None):
            raise ValueError(f"{who}: memory must be given exactly when the layer has cross-attention "
                             f"(cross_attention={self.cross_attn is not None}, memory given={memory is not None})")
        if memory is not None:
            _check_features("memory", memory, self.norm1.dim, self.cross_attn.k_proj.weight, dims=3, who=who)
            if memory.shape[0] != x.shape[0]:
                raise ValueError(f"{who}: memory batch {memory.shape[0]} != x batch {x.shape[0]}")
            _check_padding_mask("memory_key_padding_mask", memory_key_padding_mask, memory.shape[:2], who)
        elif memory_key_padding_mask is not None:
            raise ValueError(f"{who}: memory_key_padding_mask given without memory")

    def _sa(self, x, is_causal, key_padding_mask, kv_cache):
        return self.dropout(self.self_attn(x, is_causal=is_causal, key_padding_mask=key_padding_mask,
                                           kv_cache=kv_cache))

    def _ca(self, x, memory, memory_key_padding_mask):
        return self.dropout(self.cross_attn(x, memory, memory, key_padding_mask=memory_key_padding_mask))

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, *, is_causal: bool = True,
                key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None,
                kv_cache: KVCache | None = None) -> torch.Tensor:
        self._check_inputs(x, memory, memory_key_padding_mask)
        if self.norm_first:
            x = x + self._sa(self.norm1(x), is_causal, key_padding_mask, kv_cache)
            if self.cross_attn is not None:
                x = x + self._ca(self.norm_cross(x), memory, memory_key_padding_mask)
            x = x + self.ffn(self.norm2(x))
        else:
            x = self.norm1(x + self._sa(x, is_causal, key_padding_mask, kv_cache))
            if self.cross_attn is not None:
                x = self.norm_cross(x + self._ca(x, memory, memory_key_padding_mask))
            x = self.norm2(x + self.ffn(x))
        return x                                              # (B, T, d_model)


class Encoder(nn.Module):
    """A stack of ``n_layers`` :class:`EncoderLayer` (+ a final LayerNorm when pre-norm).

    ``forward(x: (B, T, d_model), *, key_padding_mask=None) -> (B, T, d_model)``.
    Keyword arguments are passed to every :class:`EncoderLayer`.
    """

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int | None = None, **layer_kwargs) -> None:
        super().__init__()
        _check_layers(n_layers, "Encoder")
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, **layer_kwargs) for _ in range(n_layers))
        norm_first = layer_kwargs.get("norm_first", True)
        eps = layer_kwargs.get("layer_norm_eps", 1e-5)
        self.final_norm = LayerNorm(d_model, eps=eps, bias=layer_kwargs.get("bias", True)) if norm_first else None

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask)
        return self.final_norm(x) if self.final_norm is not None else x


class Decoder(nn.Module):
    """A stack of ``n_layers`` :class:`DecoderLayer` with cross-attention (+ final LayerNorm when pre-norm).

    ``forward(x: (B, T, d_model), memory: (B, S, d_model), *, key_padding_mask=None,
    memory_key_padding_mask=None, kv_caches: list[KVCache] | None = None) -> (B, T, d_model)``.
    """

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int | None = None, **layer_kwargs) -> None:
        super().__init__()
        _check_layers(n_layers, "Decoder")
        self.layers = nn.ModuleList(DecoderLayer(d_model, n_heads, d_ff, cross_attention=True, **layer_kwargs)
                                    for _ in range(n_layers))
        norm_first = layer_kwargs.get("norm_first", True)
        eps = layer_kwargs.get("layer_norm_eps", 1e-5)
        self.final_norm = LayerNorm(d_model, eps=eps, bias=layer_kwargs.get("bias", True)) if norm_first else None

    def forward(self, x: torch.Tensor, memory: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None,
                kv_caches: list[KVCache] | None = None) -> torch.Tensor:
        _check_caches(kv_caches, len(self.layers), "Decoder")
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, key_padding_mask=key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      kv_cache=None if kv_caches is None else kv_caches[i])
        return self.final_norm(x) if self.final_norm is not None else x
