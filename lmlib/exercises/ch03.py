"""Checkers for the exercises of Chapter 3 (attention).

- :func:`check_attention_weights` -- attention weights of one query, computed by hand.
- :func:`check_masked_softmax` -- a masked, numerically stable softmax.
- :func:`check_causal_mask` -- a causal mask that also works with a KV cache (``t_k > t_q``).
- :func:`check_online_attention` -- attention computed block by block with a running maximum and
  a running sum (the online softmax of fused kernels), with masks.
- :func:`check_rope_attention` -- causal attention with rotary position embeddings applied to the
  queries and keys inside it, queries being the last positions (as with a KV cache).

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from lmlib.exercises import Verdict, check_function, correct, describe, hint, never_raises

__all__ = [
    "HAND_QUERY",
    "HAND_KEYS",
    "check_attention_weights",
    "check_masked_softmax",
    "check_causal_mask",
    "check_online_attention",
    "check_rope_attention",
]

_RETURNS_NONE = "your function returns None: replace the placeholder `return None` with your code."

# ----------------------------------------------------------------------------------------------
# Exercise: attention weights by hand
# ----------------------------------------------------------------------------------------------

#: the query and the three keys of the "by hand" exercise (d_k = 2)
HAND_QUERY = (1.0, 1.0)
HAND_KEYS = ((1.0, 0.0), (0.0, 1.0), (2.0, 2.0))


def _softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [x / s for x in e]


def _hand_scores() -> list[float]:
    return [sum(a * b for a, b in zip(HAND_QUERY, k)) for k in HAND_KEYS]  # [1, 1, 4]


def _as_float_list(answer: Any) -> list[float] | None:
    """The numbers of a list, tuple or tensor answer; ``None`` for any other kind of answer."""
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().flatten().tolist()
    if isinstance(answer, (str, bytes, dict)) or not isinstance(answer, (list, tuple)):
        return None
    try:
        return [float(a) for a in answer]
    except Exception:  # noqa: BLE001 - an element that is not a number
        return None


@never_raises('a list (or tensor) of 3 numbers')
def check_attention_weights(answer: Any, *, quiet: bool = False) -> Verdict:
    """The attention weights of ``HAND_QUERY`` over ``HAND_KEYS`` (three numbers, in key order)."""
    what = "attention weights"
    if answer is None:
        return hint(f"{what}: replace `None` with your three weights.", quiet=quiet)
    got = _as_float_list(answer)
    if got is None:
        return hint(f"{what}: expected a list (or tensor) of 3 numbers, got {describe(answer)}.", quiet=quiet)
    if len(got) != 3:
        return hint(f"{what}: there are 3 keys, so give 3 weights (you gave {len(got)}).", quiet=quiet)
    if any(x != x for x in got):
        return hint(f"{what}: your answer contains NaN.", quiet=quiet)
    d_k = len(HAND_QUERY)
    scores = _hand_scores()
    expected = _softmax([s / math.sqrt(d_k) for s in scores])

    def near(a: list[float], b: list[float]) -> bool:
        return all(abs(x - y) <= 1e-3 for x, y in zip(a, b))

    if near(got, expected):
        return correct(f"{what} = [{', '.join(f'{w:.4f}' for w in expected)}]; they sum to 1.", quiet=quiet)
    wrong = [
        (_softmax(scores), "you forgot to divide the scores by sqrt(d_k) = sqrt(2) before the softmax."),
        (_softmax([s / d_k for s in scores]), "divide by sqrt(d_k) = sqrt(2), not by d_k = 2."),
        ([s / sum(scores) for s in scores], "the weights come from a softmax (exponentiate, then normalise), "
                                            "not from dividing the scores by their sum."),
        ([s / math.sqrt(d_k) for s in scores], "those are the scaled scores; now apply the softmax to them."),
        (scores, "those are the raw dot products q.k; scale them by 1/sqrt(d_k) and apply the softmax."),
    ]
    for value, message in wrong:
        if near(got, value):
            return hint(message, quiet=quiet)
    if abs(sum(got) - 1) > 1e-3:
        return hint(f"{what}: attention weights are a probability distribution over the keys and must sum to 1 "
                    f"(yours sum to {sum(got):.4f}).", quiet=quiet)
    return hint(f"{what}: compute the three dot products q.k_j, divide by sqrt(2), then take the softmax.",
                quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: masked softmax
# ----------------------------------------------------------------------------------------------

def _reference_masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    x = scores.masked_fill(~mask, float("-inf"))
    m = x.amax(-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(x - m)
    s = e.sum(-1, keepdim=True)
    return e / torch.where(s > 0, s, torch.ones_like(s))


def _masked_softmax_cases() -> list[tuple[tuple, torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    cases = []
    # 1. ordinary scores, a causal mask
    s1 = torch.randn(4, 4, generator=g, dtype=torch.float64)
    m1 = torch.ones(4, 4, dtype=torch.bool).tril()
    cases.append(((s1, m1), _reference_masked_softmax(s1, m1)))
    # 2. a batch with a random mask (every row keeps something)
    s2 = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    m2 = torch.rand(2, 3, 5, generator=g) > 0.5
    m2[..., 2] = True
    cases.append(((s2, m2), _reference_masked_softmax(s2, m2)))
    # 3. extreme scores: exp would overflow without subtracting the maximum
    s3 = torch.tensor([[1000.0, 999.0, -50.0], [-1000.0, -1001.0, 5000.0]], dtype=torch.float64)
    m3 = torch.tensor([[True, True, True], [True, True, False]])
    cases.append(((s3, m3), _reference_masked_softmax(s3, m3)))
    # 4. a row whose every key is masked: must be all zeros, not NaN
    s4 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    m4 = torch.tensor([[True, False, True, False], [False, False, False, False], [True, True, True, True]])
    cases.append(((s4, m4), _reference_masked_softmax(s4, m4)))
    return cases


def _matches_max_over_all(scores: torch.Tensor, mask: torch.Tensor, got: torch.Tensor) -> bool:
    """Does ``got`` equal a masked softmax whose shift is the maximum over every score, masked ones
    included (with or without a guard against dividing by a zero sum)?"""
    m_all = scores.amax(-1, keepdim=True)
    e = torch.exp(scores - m_all) * mask
    s = e.sum(-1, keepdim=True)
    got, alive = got.to(scores.dtype), mask.any(-1)  # rows that keep at least one key
    right = _reference_masked_softmax(scores, mask)
    return any(bool(torch.allclose(got, wrong, atol=1e-8, equal_nan=True))
               and not bool(torch.allclose(wrong[alive], right[alive], atol=1e-8, equal_nan=True))
               for wrong in (e / s, e / torch.where(s > 0, s, torch.ones_like(s))))


def _diagnose_masked_softmax(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    scores, mask = args
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, not {type(got).__name__}."
    if got.shape != expected.shape:
        return f"the output must have the shape of the scores {tuple(expected.shape)}, got {tuple(got.shape)}."
    if _matches_max_over_all(scores, mask, got):
        return ("you took the row maximum over ALL the scores, masked ones included. A masked score far above "
                "the kept ones (here 5000) then makes every kept exp(score - max) underflow to 0. Mask first "
                "(-inf), then take the maximum over what is left.")
    nan_rows = torch.isnan(got).any(-1)
    if nan_rows.any():
        if (~mask).all(-1)[nan_rows].all():
            return ("a row whose every key is masked gives NaN (0/0). Detect such rows and return zeros for them, "
                    "e.g. divide by the sum only where it is > 0, and do not subtract a max of -inf.")
        return "you get NaN on large scores: exp(1000) overflows. Subtract the row maximum before exponentiating."
    if torch.isinf(got).any():
        return "you get inf: exp overflows on large scores. Subtract the row maximum before exponentiating."
    inverted = _reference_masked_softmax(scores, ~mask)
    if got.shape == inverted.shape and torch.allclose(got, inverted, atol=1e-6):
        return "the mask is inverted: here True means 'may attend' (keep the score), False means 'blocked'."
    if (got[~mask].abs() > 1e-12).any():
        return "masked positions must get weight exactly 0: set their scores to -inf before the softmax."
    plain = torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)
    if torch.allclose(got, plain, atol=1e-6):
        return ("you zeroed the masked weights AFTER the softmax, so the remaining weights no longer sum to 1. "
                "Mask the scores (with -inf) before the softmax instead.")
    if scores.dim() >= 2:
        wrong_dim = _reference_masked_softmax(scores.transpose(-1, -2), mask.transpose(-1, -2)).transpose(-1, -2)
        if torch.allclose(got, wrong_dim, atol=1e-6):
            return "normalise over the keys, the LAST dimension (dim=-1): each row must sum to 1."
    return None


@never_raises('a function fn(scores, mask) returning a float tensor shaped like scores')
def check_masked_softmax(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(scores, mask) -> weights``: softmax over the last dim, ``mask`` bool True = keep.

    Masked entries get weight 0, rows whose every entry is masked are all zeros, and extreme
    scores (|score| in the thousands) must not overflow.
    """
    return check_function(
        fn, _masked_softmax_cases(), what="masked softmax",
        compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
        and bool(torch.allclose(got.to(exp.dtype), exp, atol=1e-8, rtol=1e-6)),
        diagnose=_diagnose_masked_softmax, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: causal mask with a KV cache
# ----------------------------------------------------------------------------------------------

def _causal_cases() -> list[tuple[tuple, torch.Tensor]]:
    out = []
    for t_q, t_k in [(3, 3), (1, 1), (1, 5), (2, 6), (4, 7)]:
        out.append(((t_q, t_k), torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=t_k - t_q)))
    return out


def _diagnose_causal(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    t_q, t_k = args
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, not {type(got).__name__}."
    if got.shape != expected.shape:
        return f"the mask for t_q={t_q}, t_k={t_k} must have shape ({t_q}, {t_k}), got {tuple(got.shape)}."
    if got.dtype != torch.bool:
        return "return a bool tensor (True = may attend), e.g. by comparing two position tensors."
    if torch.equal(got, ~expected):
        return "the convention is inverted: True must mean 'may attend', False 'blocked'."
    if torch.equal(got, torch.ones(t_q, t_k, dtype=torch.bool).tril()):
        return (f"with t_k={t_k} > t_q={t_q} the queries are the LAST {t_q} positions (earlier ones are in the "
                f"cache), so query i sits at position i + {t_k - t_q}: shift the diagonal (tril(diagonal=t_k - t_q)).")
    if torch.equal(got, torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=t_k - t_q - 1)):
        return "a position may attend to itself: keep the diagonal (j <= i, not j < i)."
    return None


@never_raises('a function fn(t_q, t_k) returning a (t_q, t_k) bool tensor')
def check_causal_mask(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(t_q, t_k) -> bool (t_q, t_k)``: True where query i may attend to key j, with the
    queries being the last ``t_q`` of ``t_k`` positions."""
    return check_function(fn, _causal_cases(), what="causal mask",
                          compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
                          and got.dtype == torch.bool and bool(torch.equal(got, exp)),
                          diagnose=_diagnose_causal, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: online (blockwise) softmax attention
# ----------------------------------------------------------------------------------------------

def _online_variant(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor, block: int, *,
                    rescale_sum: bool = True, rescale_out: bool = True, normalise: bool = True,
                    scaled: bool = True, safe_max: bool = True, guard_div: bool = True,
                    shift: bool = True) -> torch.Tensor:
    """Blockwise attention over the keys; each flag switched off is one typical mistake."""
    scale = 1 / math.sqrt(q.shape[-1]) if scaled else 1.0
    t_q, t_k = q.shape[0], k.shape[0]
    m = torch.full((t_q, 1), float("-inf"), dtype=q.dtype)   # running maximum
    l = torch.zeros(t_q, 1, dtype=q.dtype)                   # running sum of exp(score - m)
    acc = torch.zeros(t_q, v.shape[-1], dtype=q.dtype)       # running sum of exp(score - m) v
    for start in range(0, t_k, block):
        sl = slice(start, start + block)
        s = (q @ k[sl].T * scale).masked_fill(~keep[:, sl], float("-inf"))
        m_new = torch.maximum(m, s.amax(-1, keepdim=True)) if shift else torch.zeros_like(m)
        shift_by = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new)) if safe_max else m_new
        p = torch.exp(s - shift_by)
        correction = torch.exp(m - shift_by)
        l = (l * correction if rescale_sum else l) + p.sum(-1, keepdim=True)
        acc = (acc * correction if rescale_out else acc) + p @ v[sl]
        m = m_new
    if not normalise:
        return acc
    return acc / (torch.where(l > 0, l, torch.ones_like(l)) if guard_div else l)


def _online_cases() -> list[tuple[tuple, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)

    def qkv(t_q, t_k, d=8, d_v=3, spread=1.0):
        return (torch.randn(t_q, d, generator=g, dtype=torch.float64) * spread,
                torch.randn(t_k, d, generator=g, dtype=torch.float64) * spread,
                torch.randn(t_k, d_v, generator=g, dtype=torch.float64))

    cases = []
    # 1. no mask, three blocks: the running maximum changes from block to block
    q, k, v = qkv(4, 12, spread=2.0)
    cases.append((q, k, v, torch.ones(4, 12, dtype=torch.bool), 4))
    # 2. a causal mask (queries = the last 5 of 10 positions), T_k not a multiple of the block
    q, k, v = qkv(5, 10, spread=2.0)
    cases.append((q, k, v, torch.ones(5, 10, dtype=torch.bool).tril(diagonal=5), 3))
    # 3. left padding: for some rows the whole first block is masked, later blocks are not
    q, k, v = qkv(4, 9)
    keep = torch.ones(4, 9, dtype=torch.bool)
    keep[1:, :4] = False
    cases.append((q, k, v, keep, 3))
    # 4. a row with no key at all: its output must be zeros
    q, k, v = qkv(3, 8)
    keep = torch.rand(3, 8, generator=g) > 0.4
    keep[:, 0] = True                      # every other row sees a key in the first block
    keep[1] = False
    cases.append((q, k, v, keep, 4))
    # 5. scores near a thousand: exp overflows without the shift by the running maximum
    q, k, v = qkv(3, 8, spread=30.0)
    cases.append((q, k, v, torch.ones(3, 8, dtype=torch.bool), 4))
    return [(args, _online_variant(*args)) for args in cases]


def _diagnose_online(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    q, k, v, keep, block = args
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, not {type(got).__name__}."
    if got.shape != expected.shape:
        return f"the output must have shape (T_q, d_v) = {tuple(expected.shape)}, got {tuple(got.shape)}."
    got = got.detach().to(expected.dtype)
    mistakes = [
        (dict(rescale_sum=False, rescale_out=False),
         "when a block raises the running maximum from m to m_new, everything accumulated so far was computed "
         "with the old shift: multiply BOTH the running sum and the running output by exp(m - m_new)."),
        (dict(rescale_sum=False),
         "the output accumulator is rescaled, but the running sum is not: multiply the running sum by "
         "exp(m - m_new) too when the maximum changes."),
        (dict(rescale_out=False),
         "the running sum is rescaled, but the output accumulator is not: when the maximum changes from m to "
         "m_new, multiply the accumulated output by exp(m - m_new) before adding the new block."),
        (dict(normalise=False),
         "you return the accumulated sum of exp(score - m) v; divide it by the running sum at the end."),
        (dict(scaled=False), "divide the scores q k^T by sqrt(d), as in scaled dot-product attention."),
        (dict(guard_div=False),
         "a row whose every key is masked gives 0/0 = NaN at the end: its running sum is 0. Return zeros for "
         "it (divide only where the sum is > 0)."),
        (dict(safe_max=False),
         "NaN where a whole block of a row is masked: the running maximum is still -inf, and "
         "exp(-inf - (-inf)) is NaN. Shift by 0 wherever the maximum is -inf (nothing seen yet)."),
        (dict(shift=False),
         "large scores overflow: exp(score) is inf. Subtract the running maximum before exponentiating."),
    ]
    for flags, message in mistakes:
        wrong = _online_variant(*args, **flags)
        if not torch.allclose(wrong, expected, atol=1e-6, equal_nan=True) and \
                torch.allclose(got, wrong, atol=1e-6, rtol=1e-5, equal_nan=True):
            return message
    if torch.allclose(got, _online_variant(q, k, v, ~keep, block), atol=1e-6, equal_nan=True):
        return "the mask is inverted: True means 'may attend', False 'blocked'."
    if torch.allclose(got, _online_variant(q, k, v, torch.ones_like(keep), block), atol=1e-6):
        return "the mask is ignored: set the scores of blocked keys to -inf before the block's softmax."
    if torch.isnan(got).any():
        return "your output contains NaN; watch rows and blocks in which every key is masked (-inf)."
    return None


@never_raises('a function fn(q, k, v, keep, block_size) returning a (T_q, d_v) tensor')
def check_online_attention(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(q (T_q, d), k (T_k, d), v (T_k, d_v), keep (T_q, T_k) bool, block_size) -> (T_q, d_v)``:
    masked scaled dot-product attention computed over blocks of ``block_size`` keys with a running
    maximum and sum; rows with no key left give zeros."""
    return check_function(
        fn, _online_cases(), what="online attention",
        compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
        and bool(torch.allclose(got.detach().to(exp.dtype), exp, atol=1e-6, rtol=1e-5)),
        diagnose=_diagnose_online, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: rotary position embeddings inside attention
# ----------------------------------------------------------------------------------------------

def _rotate(x: torch.Tensor, positions: torch.Tensor, base: float, *, interleaved: bool = False,
            sign: float = 1.0, freq_step: int = 2) -> torch.Tensor:
    """RoPE on the last dimension of ``x (..., T, d)`` at ``positions (T,)``, in float64."""
    d = x.shape[-1]
    inv_freq = base ** (-torch.arange(0, d // 2, dtype=torch.float64) * freq_step / d)   # (d/2,)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]                     # (T, d/2)
    cos, sin = angles.cos(), sign * angles.sin()
    if interleaved:                                   # pairs (2j, 2j+1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]         # pairs (j, j + d/2): rotate-half layout
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def _rope_variant(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, base: float, *, rotate_q: bool = True,
                  rotate_k: bool = True, rotate_v: bool = False, offset_q: bool = True, causal: bool = True,
                  **rotate_kw) -> torch.Tensor:
    t_q, t_k = q.shape[-2], k.shape[-2]
    q_pos = torch.arange(t_k - t_q, t_k) if offset_q else torch.arange(t_q)
    k_pos = torch.arange(t_k)
    q = _rotate(q, q_pos, base, **rotate_kw) if rotate_q else q
    k = _rotate(k, k_pos, base, **rotate_kw) if rotate_k else k
    v = _rotate(v, k_pos, base, **rotate_kw) if rotate_v else v
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        keep = torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=t_k - t_q)
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _rope_cases() -> list[tuple[tuple, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    cases = []
    for shape_q, shape_k, base in [((5, 8), (5, 8), 10000.0), ((2, 3, 4, 8), (2, 3, 4, 8), 100.0),
                                   ((2, 3, 16), (2, 7, 16), 100.0), ((1, 8), (6, 8), 10000.0)]:
        q = torch.randn(*shape_q, generator=g, dtype=torch.float64) * 2
        k = torch.randn(*shape_k, generator=g, dtype=torch.float64) * 2
        v = torch.randn(*shape_k, generator=g, dtype=torch.float64)
        cases.append(((q, k, v, base), _rope_variant(q, k, v, base)))
    return cases


def _diagnose_rope(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    q, k, v, base = args
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, not {type(got).__name__}."
    if got.shape != expected.shape:
        return f"the output must have the shape of the queries with d_v channels, {tuple(expected.shape)}, " \
               f"got {tuple(got.shape)}."
    got = got.detach().to(expected.dtype)
    mistakes = [
        (dict(rotate_v=True), "you rotated the values too. RoPE rotates only queries and keys: it changes WHICH "
                              "keys a query matches, not what is read from them."),
        (dict(rotate_q=False, rotate_k=False), "the output is plain causal attention: rotate q and k by their "
                                               "positions before taking the scores."),
        (dict(rotate_q=False), "you rotated the keys but not the queries; rotate both."),
        (dict(rotate_k=False), "you rotated the queries but not the keys; rotate both."),
        (dict(interleaved=True), "you paired neighbouring channels (2j, 2j+1), the interleaved layout. Use the "
                                 "rotate-half layout of lmlib: channel j pairs with channel j + d/2."),
        (dict(sign=-1.0), "the rotation goes the wrong way: (x1, x2) at angle a becomes "
                          "(x1 cos a - x2 sin a, x2 cos a + x1 sin a)."),
        (dict(freq_step=1), "the frequencies are base^(-2j/d) for j = 0 .. d/2 - 1 (each one serves a PAIR of "
                            "channels); yours look like base^(-j/d)."),
        (dict(offset_q=False), "the queries are the LAST T_q of the T_k positions (earlier ones are in the "
                               "cache): rotate query i by position T_k - T_q + i, not i."),
        (dict(causal=False), "apply the causal mask: query i (at position T_k - T_q + i) may not attend to "
                             "later keys."),
    ]
    for flags, message in mistakes:
        wrong = _rope_variant(q, k, v, base, **flags)
        if not torch.allclose(wrong, expected, atol=1e-6) and torch.allclose(got, wrong, atol=1e-5, rtol=1e-4):
            return message
    return None


@never_raises('a function fn(q, k, v, base) returning a (..., T_q, d_v) tensor')
def check_rope_attention(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(q (..., T_q, d), k (..., T_k, d), v (..., T_k, d_v), base) -> (..., T_q, d_v)``: causal
    attention with RoPE (rotate-half layout, frequencies ``base^(-2j/d)``) applied to the queries
    and keys, the queries being the last ``T_q`` of the ``T_k`` positions."""
    return check_function(
        fn, _rope_cases(), what="RoPE attention",
        compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
        and bool(torch.allclose(got.detach().to(exp.dtype), exp, atol=1e-5, rtol=1e-4)),
        diagnose=_diagnose_rope, quiet=quiet)
