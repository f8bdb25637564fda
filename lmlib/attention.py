"""Scaled dot-product attention and multi-head attention, written to be read.

The one formula behind everything here (Vaswani et al., 2017)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V        softmax over the keys (last dim)

- :func:`stable_softmax` -- softmax that subtracts the row maximum first, and gives a row of
  zeros (not NaN) when every entry of the row is ``-inf`` (a query with no key to look at).
- :func:`causal_mask` -- the boolean "may attend" matrix of a decoder (True = attend).
- :func:`scaled_dot_product_attention` -- the explicit, readable computation; returns the output
  AND the attention weights.
- :func:`fused_attention` -- the same result through PyTorch's fused kernel
  (``torch.nn.functional.scaled_dot_product_attention``), made safe for fully-masked rows.
- :class:`KVCache` -- keys and values of earlier positions, kept between generation steps.
- :class:`MultiHeadAttention` -- projections, heads, masks, dropout, optional KV cache.

Mask conventions (the same as PyTorch's):

- ``attn_mask`` boolean: **True = may attend**, False = blocked (``F.scaled_dot_product_attention``).
  ``attn_mask`` floating point: **added** to the scores (0 = keep, ``-inf`` = blocked); NaN
  and ``+inf`` are rejected with ``ValueError`` on both paths (they would make the output NaN).
- ``key_padding_mask`` boolean ``(B, T_k)``: **True = padding, ignore this key**
  (``nn.MultiheadAttention``).

Fully-masked rows: a query row whose every key is blocked gets attention weights that are all
zero and an output that is exactly zero (the "attend to nothing" convention), on both the
explicit and the fused path, with zero gradients flowing from that row. A row whose keys are
only *penalised* by large finite negative numbers is not fully masked: it gets an ordinary
softmax of those numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from lmlib.embeddings import RotaryEmbedding
from lmlib.validation import check_bool, check_finite, check_float, check_int, check_tensor, check_device

__all__ = [
    "stable_softmax",
    "causal_mask",
    "scaled_dot_product_attention",
    "fused_attention",
    "KVCache",
    "MultiHeadAttention",
    "attention_param_count",
]


# --------------------------------------------------------------------------------------------
# Softmax and masks
# --------------------------------------------------------------------------------------------

def _check_softmax_input(x: Tensor, dim: int) -> None:
    check_tensor("x", x, dtype="float", who="stable_softmax")
    check_int("dim", dim, min=-max(x.dim(), 1), max=max(x.dim(), 1) - 1, who="stable_softmax")
    check_finite("x", x, allow_neg_inf=True, who="stable_softmax")  # -inf = masked; NaN, +inf are not


def stable_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable softmax along ``dim``; an all ``-inf`` slice gives all zeros.

    ``softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)`` with ``m = max_j x_j``: subtracting the
    maximum changes nothing mathematically but keeps every ``exp`` in ``[0, 1]``, so large scores
    cannot overflow. When every entry is ``-inf`` the slice is returned as zeros (it has no
    finite entry to give probability to). ``+inf`` or NaN inputs are rejected.
    """
    _check_softmax_input(x, dim)
    m = x.detach().amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # an all -inf row: shift by 0
    e = torch.exp(x - m)                                          # in [0, 1]; exp(-inf) = 0
    s = e.sum(dim=dim, keepdim=True)                              # >= 1 unless the row is all -inf
    return e / torch.where(s > 0, s, torch.ones_like(s))


def _check_causal_mask_args(t_q: int, t_k: int, device) -> None:
    check_int("t_q", t_q, min=1, who="causal_mask")
    check_int("t_k", t_k, min=1, who="causal_mask")
    if t_k < t_q:
        raise ValueError(f"causal_mask: t_k={t_k} < t_q={t_q}; "
                         "queries must be the last t_q of the t_k positions")
    if device is not None:
        check_device("device", device, who="causal_mask")


def causal_mask(t_q: int, t_k: int | None = None, *, device=None) -> Tensor:
    """Boolean causal mask of shape ``(t_q, t_k)``: True where query ``i`` may attend to key ``j``.

    With ``t_k == t_q`` this is the lower triangle (``j <= i``). With ``t_k > t_q`` the queries
    are the LAST ``t_q`` of the ``t_k`` positions (as when a KV cache holds ``t_k - t_q`` earlier
    positions), so query ``i`` sits at absolute position ``i + t_k - t_q`` and may attend to
    ``j <= i + t_k - t_q``. (PyTorch's ``is_causal=True`` aligns a non-square mask at the top
    left instead; the two agree only for square masks.)
    """
    t_k = t_q if t_k is None else t_k
    _check_causal_mask_args(t_q, t_k, device)
    i = torch.arange(t_q, device=device).unsqueeze(1) + (t_k - t_q)  # absolute query positions (t_q, 1)
    j = torch.arange(t_k, device=device).unsqueeze(0)                # key positions (1, t_k)
    return j <= i


def _check_mask(mask: Tensor, target: tuple[int, ...], who: str, values: bool = True) -> None:
    """Raise if ``mask`` is not a bool/float tensor broadcastable to ``target`` (..., T_q, T_k),
    or is a float mask holding NaN or ``+inf`` (``-inf`` is the "blocked" value)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{who}: attn_mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"{who}: attn_mask must be bool (True = attend) or floating point (added to "
                        f"the scores), got dtype {mask.dtype}")
    if mask.dim() < 2 or mask.dim() > len(target):
        raise ValueError(f"{who}: attn_mask of shape {tuple(mask.shape)} cannot broadcast to the "
                         f"scores of shape {target}")
    for m, t in zip(reversed(mask.shape), reversed(target)):
        if m != t and m != 1:
            raise ValueError(f"{who}: attn_mask of shape {tuple(mask.shape)} does not broadcast to "
                             f"the scores of shape {target} (expected (..., T_q={target[-2]}, T_k={target[-1]}))")
    if values and mask.is_floating_point():
        check_finite("attn_mask", mask, allow_neg_inf=True, who=who)  # one fused scan of a user input


def _is_float_2d(t) -> bool:
    return isinstance(t, Tensor) and t.is_floating_point() and t.dim() >= 2


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, who: str) -> None:
    if not (_is_float_2d(q) and _is_float_2d(k) and _is_float_2d(v)):
        for name, t in (("q", q), ("k", k), ("v", v)):
            check_tensor(name, t, dtype="float", who=who)
            if t.dim() < 2:
                raise ValueError(f"{who}: {name} must have shape (..., T, d), got {tuple(t.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"{who}: q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{who}: queries and keys must have the same last dimension d_k, got "
                         f"q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{who}: keys and values must have the same length T_k, got "
                         f"k {tuple(k.shape)} and v {tuple(v.shape)}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):  # equal batch dims (the usual case) broadcast
        try:
            torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        except RuntimeError:
            raise ValueError(f"{who}: batch dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and "
                             f"v {tuple(v.shape)} do not broadcast") from None


def _scores_shape(q: Tensor, k: Tensor) -> tuple[int, ...]:
    return (*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])


def _as_bool_or_additive(attn_mask: Tensor | None, is_causal: bool, t_q: int, t_k: int,
                         dtype: torch.dtype, device) -> Tensor | None:
    """Merge ``attn_mask`` and ``is_causal`` into one mask: bool (True = attend) or additive float."""
    if not is_causal:
        if attn_mask is not None and attn_mask.is_floating_point():
            return attn_mask.to(dtype)
        return attn_mask
    causal = causal_mask(t_q, t_k, device=device)  # (T_q, T_k)
    if attn_mask is None:
        return causal
    if attn_mask.dtype == torch.bool:
        return attn_mask & causal
    return attn_mask.to(dtype).masked_fill(~causal, float("-inf"))


# --------------------------------------------------------------------------------------------
# Scaled dot-product attention: explicit and fused
# --------------------------------------------------------------------------------------------

def _check_attention_inputs(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, is_causal: bool,
                            dropout_p: float, training: bool, scale: float | None, who: str) -> tuple[int, int]:
    """Validate the arguments shared by both attention paths; returns ``(T_q, T_k)``."""
    _check_qkv(q, k, v, who)
    check_bool("is_causal", is_causal, who=who)
    if type(dropout_p) is not float or not 0.0 <= dropout_p < 1.0:  # (a float in [0, 1) passes at once)
        check_float("dropout_p", dropout_p, min=0.0, max=1.0, max_open=True, who=who)
    check_bool("training", training, who=who)
    if scale is not None:
        check_float("scale", scale, min=0.0, min_open=True, who=who)
    if is_causal and k.shape[-2] < q.shape[-2]:
        raise ValueError(f"{who}: is_causal needs T_k >= T_q, got T_q={q.shape[-2]}, T_k={k.shape[-2]}")
    if attn_mask is not None:
        _check_mask(attn_mask, _scores_shape(q, k), who)
    return q.shape[-2], k.shape[-2]


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = False,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Explicit attention: ``softmax(q k^T * scale + mask) v``, with ``scale = 1/sqrt(d_k)``.

    Shapes: ``q: (..., T_q, d_k)``, ``k: (..., T_k, d_k)``, ``v: (..., T_k, d_v)``; leading
    (batch, head) dimensions broadcast. ``attn_mask`` is bool (True = may attend) or floating
    point (added to the scores), broadcastable to ``(..., T_q, T_k)``. ``is_causal`` adds
    :func:`causal_mask` (queries aligned with the LAST keys when ``T_k > T_q``).
    Dropout with probability ``dropout_p`` is applied to the weights only when ``training``.

    Returns ``(out, weights)``: ``out: (..., T_q, d_v)`` and the weights actually used,
    ``(..., T_q, T_k)``, each row summing to 1 (before dropout), or all zeros for a query whose
    every key is masked (its output row is then zero).
    """
    t_q, t_k = _check_attention_inputs(q, k, v, attn_mask, is_causal, dropout_p, training, scale,
                                       "scaled_dot_product_attention")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale

    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T_q, T_k)
    mask = _as_bool_or_additive(attn_mask, is_causal, t_q, t_k, scores.dtype, q.device)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = stable_softmax(scores, dim=-1)  # (..., T_q, T_k); all-masked rows -> 0
    if training and dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p, training=True)
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = False,
    scale: float | None = None,
) -> Tensor:
    """The same as :func:`scaled_dot_product_attention` (output only) via PyTorch's fused kernel.

    Differences from calling ``F.scaled_dot_product_attention`` directly, so that both paths of
    this module agree exactly in meaning:

    - ``is_causal`` with ``T_k > T_q`` aligns the queries with the LAST keys (KV cache),
      whereas PyTorch aligns a non-square causal mask at the top left;
    - a query whose every key is masked gets a zero output (PyTorch gives NaN), and no NaN
      reaches the gradients: such rows attend to everything inside the kernel and are zeroed
      afterwards.
    """
    t_q, t_k = _check_attention_inputs(q, k, v, attn_mask, is_causal, dropout_p, training, scale,
                                       "fused_attention")
    p = dropout_p if training else 0.0

    if attn_mask is None and is_causal and (t_q == t_k or t_q == 1):
        # square causal: PyTorch's own flag (lets it pick a flash kernel). A single query at the
        # end of a KV cache may attend to every key: no mask at all.
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=(t_q == t_k), scale=scale)

    mask = _as_bool_or_additive(attn_mask, is_causal, t_q, t_k, q.dtype, q.device)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=scale)
    if mask.dtype == torch.bool:
        row_ok = mask.any(dim=-1, keepdim=True)                     # (..., T_q, 1)
        safe = mask | ~row_ok
    else:
        row_ok = ~torch.isneginf(mask).all(dim=-1, keepdim=True)    # (..., T_q, 1)
        safe = mask.masked_fill(~row_ok, 0.0)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, dropout_p=p, scale=scale)
    return out * row_ok.to(out.dtype)  # fully-masked query rows -> 0 (no host sync needed)


# --------------------------------------------------------------------------------------------
# KV cache
# --------------------------------------------------------------------------------------------

class KVCache:
    """Keys and values of one attention layer for the positions seen so far.

    Shapes: ``(B, n_heads, T_cached, d_head)``. :meth:`update` appends the keys and values of
    new positions and returns everything cached, ready to attend over. ``max_length`` (optional)
    makes :meth:`update` raise instead of growing past it.

    Storage: the keys and values live in buffers with room for more positions than are cached
    (``capacity``); :meth:`update` writes the new positions into them in place, so a generation
    step copies one position per layer, not the whole cache. A full buffer is replaced by one
    twice as long (at most ``max_length``). ``k`` and ``v`` are views of the filled part.
    While autograd records the new keys and values, the cache grows by ``torch.cat`` instead:
    autograd may have saved the earlier views, and they must not change under it.
    """

    def __init__(self, max_length: int | None = None) -> None:
        if max_length is not None:
            check_int("max_length", max_length, min=1, who="KVCache")
        self.max_length = max_length
        self.length = 0                      # number of cached positions T_cached
        self._k: Tensor | None = None        # (B, nh, capacity, hs); positions [:length] are filled
        self._v: Tensor | None = None

    @property
    def k(self) -> Tensor | None:
        """The cached keys ``(B, n_heads, T_cached, d_head)`` (None when empty)."""
        return None if self._k is None else self._k[:, :, :self.length]

    @property
    def v(self) -> Tensor | None:
        """The cached values ``(B, n_heads, T_cached, d_head)`` (None when empty)."""
        return None if self._v is None else self._v[:, :, :self.length]

    @property
    def capacity(self) -> int:
        """Number of positions the buffers can hold before they must grow (0 when empty)."""
        return 0 if self._k is None else self._k.shape[-2]

    def __len__(self) -> int:
        return self.length

    def reset(self) -> None:
        """Forget everything cached."""
        self.length = 0
        self._k = None
        self._v = None

    def _check_update(self, k_new: Tensor, v_new: Tensor, who: str = "KVCache.update") -> None:
        """Raise (changing nothing) unless :meth:`update` would accept ``k_new, v_new``."""
        self._check_new_length(k_new.shape[-2] if isinstance(k_new, Tensor) and k_new.dim() == 4 else 0, who)
        if not (_is_float_2d(k_new) and _is_float_2d(v_new) and k_new.dim() == 4 and v_new.dim() == 4):
            for name, t in (("k_new", k_new), ("v_new", v_new)):
                check_tensor(name, t, dtype="float", who=who)
                if t.dim() != 4:
                    raise ValueError(f"{who}: {name} must have shape (B, n_heads, T_new, d_head), "
                                     f"got {tuple(t.shape)}")
        if k_new.shape[:3] != v_new.shape[:3]:
            raise ValueError(f"{who}: k_new {tuple(k_new.shape)} and v_new {tuple(v_new.shape)} "
                             "disagree on (B, n_heads, T_new)")
        if k_new.dtype != v_new.dtype or k_new.device != v_new.device:
            raise TypeError(f"{who}: k_new and v_new differ in dtype or device")
        if self._k is not None:
            k, v = self._k, self._v
            if (k_new.shape[:2] != k.shape[:2] or k_new.shape[-1] != k.shape[-1]
                    or v_new.shape[-1] != v.shape[-1]):
                raise ValueError(f"{who}: new keys {tuple(k_new.shape)} / values "
                                 f"{tuple(v_new.shape)} do not match the cached {tuple(self.k.shape)} / "
                                 f"{tuple(self.v.shape)} in batch, heads or head size")
            if k_new.dtype != k.dtype or k_new.device != k.device:
                raise TypeError(f"{who}: new keys/values differ in dtype or device from the cache")

    def _check_new_length(self, t_new: int, who: str = "KVCache.update") -> None:
        """Raise if appending ``t_new`` positions would grow the cache past ``max_length``."""
        new_len = self.length + t_new
        if self.max_length is not None and new_len > self.max_length:
            raise ValueError(f"{who}: {new_len} positions would exceed max_length={self.max_length}")

    def update(self, k_new: Tensor, v_new: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``k_new, v_new: (B, n_heads, T_new, d_head)``; return all ``(k, v)`` so far."""
        self._check_update(k_new, v_new)
        start, end = self.length, self.length + k_new.shape[-2]
        if self._autograd_records(k_new, v_new):      # new tensors: autograd keeps the old ones
            self._k = k_new if start == 0 else torch.cat([self.k, k_new], dim=-2)
            self._v = v_new if start == 0 else torch.cat([self.v, v_new], dim=-2)
        else:
            if end > self.capacity or not self._writable():
                self._grow(k_new, v_new, end)          # a longer buffer, holding the cached positions
            self._k[:, :, start:end] = k_new           # write the new positions in place
            self._v[:, :, start:end] = v_new
        self.length = end
        return self.k, self.v                          # (B, nh, T_cached + T_new, hs)

    def _autograd_records(self, k_new: Tensor, v_new: Tensor) -> bool:
        """Does autograd record this update (so that nothing it saved may be written over)?"""
        return torch.is_grad_enabled() and (k_new.requires_grad or v_new.requires_grad
                                            or (self._k is not None and self._k.requires_grad))

    def _writable(self) -> bool:
        """May the buffers be written in place? (Not one made under ``torch.inference_mode()``
        when outside it.)"""
        return torch.is_inference_mode_enabled() or not self._k.is_inference()

    def _grow(self, k_new: Tensor, v_new: Tensor, needed: int) -> None:
        """Replace the buffers by ones with room for ``needed`` positions or twice the old capacity
        (at most ``max_length``), copying the cached positions over."""
        capacity = max(needed, 2 * self.capacity)
        if self.max_length is not None:
            capacity = min(capacity, self.max_length)
        B, n_heads, _, _ = k_new.shape
        k = k_new.new_empty(B, n_heads, capacity, k_new.shape[-1])
        v = v_new.new_empty(B, n_heads, capacity, v_new.shape[-1])
        if self.length:
            k[:, :, :self.length] = self.k
            v[:, :, :self.length] = self.v
        self._k, self._v = k, v

    def __repr__(self) -> str:
        shape = None if self._k is None else tuple(self.k.shape)
        return (f"KVCache(length={self.length}, shape={shape}, capacity={self.capacity}, "
                f"max_length={self.max_length})")


# --------------------------------------------------------------------------------------------
# Multi-head attention
# --------------------------------------------------------------------------------------------

def _check_features(name: str, x, d: int, weight: Tensor, *, dims=None, who: str | None = None) -> Tensor:
    """``x`` must be a floating-point tensor ``(..., d)`` of the dtype of the module's ``weight``
    (any floating dtype under ``torch.autocast``, which casts inside the matmuls)."""
    if (isinstance(x, Tensor) and x.dtype == weight.dtype and (dims is None or x.dim() == dims)
            and x.dim() >= 1 and x.shape[-1] == d):
        return x  # the common case, decided without the general helper (called per layer per token)
    autocast = isinstance(x, Tensor) and torch.is_autocast_enabled(x.device.type)
    return check_tensor(name, x, dims=dims, dtype="float" if autocast else weight.dtype, sizes={-1: d}, who=who)


def _check_heads(d_model: int, n_heads: int, who: str) -> None:
    check_int("d_model", d_model, min=1, who=who)
    check_int("n_heads", n_heads, min=1, who=who)
    if d_model % n_heads:
        raise ValueError(f"{who}: d_model={d_model} is not divisible by n_heads={n_heads}")


def attention_param_count(d_model: int, n_heads: int = 1, bias: bool = True) -> int:
    """Parameters of :class:`MultiHeadAttention`: ``4 d^2 + 4 d`` with biases, ``4 d^2`` without.

    Four ``d x d`` projections (queries, keys, values, output); the number of heads only splits
    ``d`` and does not change the count (it must divide ``d_model``).
    """
    _check_heads(d_model, n_heads, "attention_param_count")
    check_bool("bias", bias, who="attention_param_count")
    return 4 * d_model * d_model + (4 * d_model if bias else 0)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (self- or cross-attention) with masks, dropout and a KV cache.

    ``q_proj, k_proj, v_proj, out_proj`` are ``nn.Linear(d_model, d_model)``; head ``h`` uses
    columns ``h*d_head:(h+1)*d_head`` of the projected queries/keys/values, ``d_head =
    d_model // n_heads``. ``use_fused`` selects PyTorch's fused kernel (also in training, with
    dropout); ``need_weights=True`` always takes the explicit path, which returns the weights.

    ``rope_base`` (a float, e.g. ``10000.0``) turns on rotary position embedding: after the heads
    are split, the queries and keys (never the values) of every head are rotated by their
    positions with :class:`lmlib.embeddings.RotaryEmbedding` (rotate-half layout). Positions
    start at ``kv_cache.length`` when a cache is given, so cached decoding sees the same positions
    as a full forward pass. RoPE is for self-attention: queries and keys must share positions.
    """

    def __init__(self, d_model: int, n_heads: int, *, dropout: float = 0.0, bias: bool = True,
                 use_fused: bool = True, rope_base: float | None = None) -> None:
        super().__init__()
        _check_heads(d_model, n_heads, "MultiHeadAttention")
        check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who="MultiHeadAttention")
        check_bool("bias", bias, who="MultiHeadAttention")
        check_bool("use_fused", use_fused, who="MultiHeadAttention")
        if rope_base is not None:
            check_float("rope_base", rope_base, min=0.0, min_open=True, who="MultiHeadAttention")
            if (d_model // n_heads) % 2:
                raise ValueError(f"MultiHeadAttention: rope_base needs an even head size, got "
                                 f"d_model // n_heads = {d_model // n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.dropout = float(dropout)
        self.use_fused = bool(use_fused)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.rotary = None if rope_base is None else RotaryEmbedding(self.d_head, base=float(rope_base))

    def extra_repr(self) -> str:
        rope = "" if self.rotary is None else f", rope_base={self.rotary.base:g}"
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, d_head={self.d_head}, "
                f"dropout={self.dropout}, use_fused={self.use_fused}{rope}")

    def _split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, nh, T, hs)

    def _check_inputs(self, query, key, value, attn_mask, key_padding_mask, is_causal, kv_cache,
                      need_weights) -> None:
        """Every check of :meth:`forward`, done before anything (a KV cache) changes."""
        who, w = "MultiHeadAttention", self.q_proj.weight
        _check_features("query", query, self.d_model, w, dims=3, who=who)
        if key is None and value is not None:
            raise ValueError(f"{who}: value given without key")
        if key is not None:
            _check_features("key", key, self.d_model, w, dims=3, who=who)
            if value is not None:
                _check_features("value", value, self.d_model, w, dims=3, who=who)
                if key.shape[:2] != value.shape[:2]:
                    raise ValueError(f"{who}: key {tuple(key.shape)} and value {tuple(value.shape)} "
                                     "must have the same batch size and length")
            if key.shape[0] != query.shape[0]:
                raise ValueError(f"{who}: query batch {query.shape[0]} != key batch {key.shape[0]}")
        check_bool("is_causal", is_causal, who=who)
        check_bool("need_weights", need_weights, who=who)
        if kv_cache is not None:
            if not isinstance(kv_cache, KVCache):
                raise TypeError(f"{who}: kv_cache must be a KVCache, got {type(kv_cache).__name__}")
            if key is not None:
                raise ValueError(f"{who}: kv_cache is supported for self-attention only (key=value=None)")
        if self.rotary is not None and key is not None:
            raise ValueError(f"{who}: RoPE (rope_base) is for self-attention only (key=value=None): "
                             "queries and keys of a cross-attention have no common positions")
        B, t_q = query.shape[:2]
        t_k = (t_q if key is None else key.shape[1]) + (0 if kv_cache is None else kv_cache.length)
        if is_causal and t_k < t_q:
            raise ValueError(f"{who}: is_causal needs T_k >= T_q, got T_q={t_q}, T_k={t_k}")
        if attn_mask is not None:
            if not isinstance(attn_mask, Tensor):
                raise TypeError(f"{who}: attn_mask must be a torch.Tensor, got {type(attn_mask).__name__}")
            if attn_mask.dim() not in (2, 3, 4):
                raise ValueError(f"{who}: attn_mask must have shape (T_q, T_k), (B, T_q, T_k) or "
                                 f"(B, n_heads, T_q, T_k), got {tuple(attn_mask.shape)}")
            m = attn_mask.unsqueeze(1) if attn_mask.dim() == 3 else attn_mask
            # A float mask's values are scanned once, by the attention function, unless a KV cache
            # would be updated first: then here, so that a bad mask leaves the cache unchanged.
            _check_mask(m, (B, self.n_heads, t_q, t_k), who, values=kv_cache is not None)
        if key_padding_mask is not None:
            if not isinstance(key_padding_mask, Tensor) or key_padding_mask.dtype != torch.bool:
                raise TypeError(f"{who}: key_padding_mask must be a bool tensor (B, T_k), "
                                "True = padding to ignore")
            if tuple(key_padding_mask.shape) != (B, t_k):
                raise ValueError(f"{who}: key_padding_mask must have shape (B, T_k) = "
                                 f"({B}, {t_k}), got {tuple(key_padding_mask.shape)}")

    def _merge_masks(self, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                     B: int, t_q: int, t_k: int, dtype: torch.dtype) -> Tensor | None:
        """One mask broadcastable to (B, nh, T_q, T_k): bool (True = attend) or additive float."""
        mask = None
        if attn_mask is not None:
            if attn_mask.dim() == 3:       # (B, T_q, T_k): one mask per sequence, shared by heads
                attn_mask = attn_mask.unsqueeze(1)  # (B, 1, T_q, T_k)
            mask = attn_mask if attn_mask.dtype == torch.bool else attn_mask.to(dtype)
        if key_padding_mask is not None:
            keep = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, T_k), True = attend
            if mask is None:
                mask = keep
            elif mask.dtype == torch.bool:
                mask = mask & keep
            else:
                mask = mask.masked_fill(~keep, float("-inf"))
        return mask

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        kv_cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from ``query`` to ``key``/``value`` (self-attention when both are None).

        Shapes: ``query: (B, T_q, d_model)``, ``key, value: (B, T_k, d_model)`` (``value=None``
        with a ``key`` means ``value = key``). ``attn_mask``: bool (True = attend) or additive
        float, shape ``(T_q, T_k)``, ``(B, T_q, T_k)`` or ``(B, n_heads, T_q, T_k)``, where
        ``T_k`` counts cached positions too. ``key_padding_mask``: bool ``(B, T_k)``, True =
        padding to ignore. ``is_causal``: queries are the last ``T_q`` positions of the ``T_k``.
        ``kv_cache``: self-attention only; the new keys/values are appended to it first.

        Returns ``(B, T_q, d_model)``, or ``(out, weights (B, n_heads, T_q, T_k))`` when
        ``need_weights`` (explicit path).
        """
        self._check_inputs(query, key, value, attn_mask, key_padding_mask, is_causal, kv_cache, need_weights)
        if key is None:                            # self-attention
            key = value = query
        elif value is None:
            value = key

        B, t_q, _ = query.shape
        q = self._split_heads(self.q_proj(query))  # (B, nh, T_q, hs)
        k = self._split_heads(self.k_proj(key))    # (B, nh, T_k, hs)
        v = self._split_heads(self.v_proj(value))  # (B, nh, T_k, hs)
        if self.rotary is not None:                # rotate queries and keys by their positions
            start = 0 if kv_cache is None else kv_cache.length
            q, k = self.rotary(q, offset=start), self.rotary(k, offset=start)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)           # (B, nh, T_cached + T_q, hs)
        mask = self._merge_masks(attn_mask, key_padding_mask, B, t_q, k.shape[-2], q.dtype)

        kwargs = dict(attn_mask=mask, is_causal=is_causal, dropout_p=self.dropout, training=self.training)
        if need_weights or not self.use_fused:
            y, weights = scaled_dot_product_attention(q, k, v, **kwargs)  # (B, nh, T_q, hs)
        else:
            y, weights = fused_attention(q, k, v, **kwargs), None
        y = y.transpose(1, 2).contiguous().view(B, t_q, self.d_model)  # (B, T_q, d_model)
        y = self.out_proj(y)
        return (y, weights) if need_weights else y
