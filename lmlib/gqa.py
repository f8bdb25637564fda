"""Grouped-query attention (GQA): fewer key/value heads than query heads (Ainslie et al., 2023).

Multi-head attention gives every one of the ``n_heads`` query heads its own key and value head.
GQA lets ``n_heads / n_kv_heads`` query heads share one key/value head::

    n_kv_heads == n_heads   multi-head attention (MHA, GPT-2)
    1 < n_kv_heads < n_heads   grouped-query attention (Llama 2 70B, Llama 3, Mistral, Qwen2)
    n_kv_heads == 1         multi-query attention (MQA, Shazeer 2019)

Query head ``h`` reads key/value head ``h // (n_heads // n_kv_heads)``: :func:`repeat_kv` makes
that explicit by repeating each key/value head for its group, after which attention is ordinary
multi-head attention. What GQA saves is the KV cache: only the ``n_kv_heads`` heads are cached,
``2 · n_layer · n_kv_heads · head_dim`` numbers per token (:func:`kv_cache_bytes`).

:class:`GroupedQueryAttention` is the attention of the Llama block (:mod:`lmlib.llama`): causal
self-attention, RoPE on queries and keys, no biases by default (``qkv_bias=True`` gives Qwen2's
biases on the query, key and value projections), optional QK-norm (an RMSNorm over each head's
queries and keys before RoPE, as in OLMo 2 and Qwen3) and optional sliding-window attention
(each query sees only the last ``sliding_window`` positions, itself included, as in Mistral).

Shapes: ``x: (B, T, d_model)``; heads ``(B, heads, T, head_dim)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmlib.attention import KVCache, _check_features, fused_attention
from lmlib.embeddings import RotaryEmbedding
from lmlib.normalization import RMSNorm
from lmlib.validation import check_bool, check_device, check_float, check_int, check_tensor

__all__ = ["repeat_kv", "sliding_window_mask", "kv_cache_bytes", "GroupedQueryAttention"]


def _check_repeat_kv(x, n_rep) -> None:
    check_tensor("x", x, dims=4, who="repeat_kv")
    check_int("n_rep", n_rep, min=1, who="repeat_kv")


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """``(B, n_kv_heads, T, hs) -> (B, n_kv_heads * n_rep, T, hs)``: each key/value head repeated
    ``n_rep`` times *next to itself*, so that query head ``h`` meets key/value head ``h // n_rep``.
    (``torch.repeat_interleave(x, n_rep, dim=1)`` computes the same; this makes a view, then one copy.)"""
    _check_repeat_kv(x, n_rep)
    if n_rep == 1:
        return x
    B, n_kv, T, hs = x.shape
    return x[:, :, None].expand(B, n_kv, n_rep, T, hs).reshape(B, n_kv * n_rep, T, hs)


def sliding_window_mask(t_q: int, t_k: int, window: int, *, device=None) -> Tensor:
    """Bool ``(t_q, t_k)``, True = may attend: the queries are the last ``t_q`` of ``t_k``
    positions (a KV cache holds the rest), and query position ``i`` sees keys ``j`` with
    ``i - window < j <= i``: causal, and at most ``window`` keys, itself included."""
    who = "sliding_window_mask"
    check_int("t_q", t_q, min=1, who=who)
    check_int("t_k", t_k, min=t_q, who=who)
    check_int("window", window, min=1, who=who)
    if device is not None:
        check_device("device", device, who=who)
    i = torch.arange(t_k - t_q, t_k, device=device)[:, None]   # query positions (t_q, 1)
    j = torch.arange(t_k, device=device)[None, :]              # key positions (1, t_k)
    return (j <= i) & (j > i - window)


def kv_cache_bytes(n_layer: int, n_kv_heads: int, head_dim: int, *, bytes_per_value: int | float = 2,
                   tokens: int = 1, batch: int = 1) -> int:
    """Bytes of a KV cache: ``2 (keys and values) · n_layer · n_kv_heads · head_dim · bytes`` per
    token, times ``tokens`` and ``batch`` (2 bytes per value in bfloat16/float16, 4 in float32)."""
    who = "kv_cache_bytes"
    for name, v in (("n_layer", n_layer), ("n_kv_heads", n_kv_heads), ("head_dim", head_dim)):
        check_int(name, v, min=1, who=who)
    check_float("bytes_per_value", bytes_per_value, min=0.0, min_open=True, who=who)
    check_int("tokens", tokens, min=0, who=who)
    check_int("batch", batch, min=0, who=who)
    return int(round(2 * n_layer * n_kv_heads * head_dim * bytes_per_value * tokens * batch))


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with ``n_kv_heads`` key/value heads shared by ``n_heads`` query heads.

    ``q_proj: d_model -> n_heads · head_dim``, ``k_proj, v_proj: d_model -> n_kv_heads · head_dim``,
    ``out_proj: n_heads · head_dim -> d_model``; ``head_dim`` defaults to ``d_model // n_heads``.
    ``forward(x: (B, T, d_model), *, kv_cache=None) -> (B, T, d_model)``; with a
    :class:`~lmlib.attention.KVCache` the new keys and values are cached (only the ``n_kv_heads``
    heads: the cache is ``(B, n_kv_heads, T_cached, head_dim)``) and positions continue from
    ``kv_cache.length``. ``rope_base=None`` turns RoPE off (for models with learned positions).
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None, *, head_dim: int | None = None,
                 rope_base: float | None = 10000.0, qkv_bias: bool = False, out_bias: bool = False,
                 qk_norm: bool = False, norm_eps: float = 1e-6, sliding_window: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        who = "GroupedQueryAttention"
        check_int("d_model", d_model, min=1, who=who)
        check_int("n_heads", n_heads, min=1, who=who)
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        check_int("n_kv_heads", n_kv_heads, min=1, max=n_heads, who=who)
        if n_heads % n_kv_heads:
            raise ValueError(f"{who}: n_kv_heads ({n_kv_heads}) must divide n_heads ({n_heads})")
        if head_dim is None:
            if d_model % n_heads:
                raise ValueError(f"{who}: d_model ({d_model}) must be divisible by n_heads ({n_heads}), "
                                 "or give head_dim")
            head_dim = d_model // n_heads
        check_int("head_dim", head_dim, min=1, who=who)
        if rope_base is not None:
            check_float("rope_base", rope_base, min=0.0, min_open=True, who=who)
            if head_dim % 2:
                raise ValueError(f"{who}: RoPE (rope_base) needs an even head_dim, got {head_dim}")
        for name, v in (("qkv_bias", qkv_bias), ("out_bias", out_bias), ("qk_norm", qk_norm)):
            check_bool(name, v, who=who)
        check_float("norm_eps", norm_eps, min=0.0, min_open=True, who=who)
        if sliding_window is not None:
            check_int("sliding_window", sliding_window, min=1, who=who)
        check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who=who)
        self.d_model, self.n_heads, self.n_kv_heads, self.head_dim = d_model, n_heads, n_kv_heads, head_dim
        self.sliding_window, self.dropout = sliding_window, float(dropout)
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=qkv_bias)
        self.out_proj = nn.Linear(n_heads * head_dim, d_model, bias=out_bias)
        self.q_norm = RMSNorm(head_dim, eps=norm_eps) if qk_norm else None
        self.k_norm = RMSNorm(head_dim, eps=norm_eps) if qk_norm else None
        self.rotary = None if rope_base is None else RotaryEmbedding(head_dim, base=float(rope_base))

    def extra_repr(self) -> str:
        extra = "" if self.rotary is None else f", rope_base={self.rotary.base:g}"
        extra += ", qk_norm=True" if self.q_norm is not None else ""
        extra += f", sliding_window={self.sliding_window}" if self.sliding_window else ""
        return f"n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}, head_dim={self.head_dim}{extra}"

    def _check_inputs(self, x, kv_cache) -> None:
        who = "GroupedQueryAttention"
        _check_features("x", x, self.d_model, self.q_proj.weight, dims=3, who=who)
        if kv_cache is not None:
            if not isinstance(kv_cache, KVCache):
                raise TypeError(f"{who}: kv_cache must be a KVCache, got {type(kv_cache).__name__}")
            kv_cache._check_new_length(x.shape[1], who=who)
            if kv_cache.k is not None and (kv_cache.k.shape[0] != x.shape[0]
                                           or kv_cache.k.shape[1] != self.n_kv_heads
                                           or kv_cache.k.shape[-1] != self.head_dim):
                raise ValueError(f"{who}: kv_cache holds keys {tuple(kv_cache.k.shape)}, which do not fit "
                                 f"a batch of {x.shape[0]} with {self.n_kv_heads} KV heads of size {self.head_dim}")

    def _heads(self, t: Tensor, n: int) -> Tensor:
        B, T, _ = t.shape
        return t.view(B, T, n, self.head_dim).transpose(1, 2)    # (B, n, T, hs)

    def forward(self, x: Tensor, *, kv_cache: KVCache | None = None) -> Tensor:
        self._check_inputs(x, kv_cache)
        B, T, _ = x.shape
        q = self._heads(self.q_proj(x), self.n_heads)             # (B, nh, T, hs)
        k = self._heads(self.k_proj(x), self.n_kv_heads)          # (B, nkv, T, hs)
        v = self._heads(self.v_proj(x), self.n_kv_heads)          # (B, nkv, T, hs)
        if self.q_norm is not None:                               # QK-norm: before the rotation
            q, k = self.q_norm(q), self.k_norm(k)
        start = 0 if kv_cache is None else kv_cache.length
        if self.rotary is not None:
            q, k = self.rotary(q, offset=start), self.rotary(k, offset=start)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)                          # only the nkv heads are cached
        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)           # (B, nh, T_k, hs)
        p = self.dropout if self.training else 0.0
        if self.sliding_window is None or k.shape[-2] <= self.sliding_window:
            y = fused_attention(q, k, v, is_causal=True, dropout_p=p, training=self.training)
        else:
            mask = sliding_window_mask(T, k.shape[-2], self.sliding_window, device=x.device)
            y = fused_attention(q, k, v, attn_mask=mask, dropout_p=p, training=self.training)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.out_proj(y)                                   # (B, T, d_model)
