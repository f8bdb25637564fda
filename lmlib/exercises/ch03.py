"""Checkers for the exercises of Chapter 3 (attention).

- :func:`check_attention_weights` -- attention weights of one query, computed by hand.
- :func:`check_masked_softmax` -- a masked, numerically stable softmax.
- :func:`check_causal_mask` -- a causal mask that also works with a KV cache (``t_k > t_q``).
- :func:`check_split_heads` -- reshaping ``(B, T, C)`` into heads ``(B, n_heads, T, d_head)``.
- :func:`check_param_count` -- the parameter count of a multi-head attention layer.

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
    "check_split_heads",
    "check_param_count",
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


def _diagnose_masked_softmax(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    scores, mask = args
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, not {type(got).__name__}."
    if got.shape != expected.shape:
        return f"the output must have the shape of the scores {tuple(expected.shape)}, got {tuple(got.shape)}."
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
# Exercise: splitting into heads
# ----------------------------------------------------------------------------------------------

def _split_cases() -> list[tuple[tuple, torch.Tensor]]:
    out = []
    for B, T, C, h in [(1, 3, 4, 2), (2, 5, 12, 3), (3, 4, 8, 8), (2, 6, 6, 1)]:
        x = torch.arange(B * T * C, dtype=torch.float32).view(B, T, C)
        out.append(((x, h), x.view(B, T, h, C // h).transpose(1, 2)))
    return out


def _diagnose_split(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    x, h = args
    B, T, C = x.shape
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, not {type(got).__name__}."
    if got.shape != expected.shape:
        return f"(B, T, C) = {tuple(x.shape)} with {h} heads must become (B, n_heads, T, d_head) = {tuple(expected.shape)}, got {tuple(got.shape)}."
    if torch.equal(got, x.reshape(B, h, T, C // h)):
        return ("the shape is right but the numbers are scrambled: reshaping (B, T, C) straight to (B, n_heads, T, "
                "d_head) mixes positions and channels. View as (B, T, n_heads, d_head) first, then transpose(1, 2).")
    if torch.equal(got, x.view(B, T, C // h, h).permute(0, 3, 1, 2)):
        return "head h must own the CONTIGUOUS channels h*d_head:(h+1)*d_head; view as (B, T, n_heads, d_head)."
    return None


@never_raises('a function fn(x, n_heads) returning a (B, n_heads, T, d_head) tensor')
def check_split_heads(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(x (B, T, C), n_heads) -> (B, n_heads, T, C // n_heads)``, head ``h`` holding channels
    ``h*d_head:(h+1)*d_head`` of every position."""
    return check_function(fn, _split_cases(), what="split heads",
                          compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
                          and bool(torch.equal(got, exp)),
                          diagnose=_diagnose_split, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: parameter count
# ----------------------------------------------------------------------------------------------

def _count(d: int, h: int, bias: bool) -> int:
    return 4 * d * d + (4 * d if bias else 0)


def _diagnose_count(args: tuple, got: Any, expected: int) -> str | None:
    d, h, bias = args
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, int) or isinstance(got, bool):
        return f"return an int, not {type(got).__name__}."
    known = {
        3 * d * d + (3 * d if bias else 0): "you counted the query, key and value projections; add the output projection.",
        4 * d * d: "with bias=True each of the 4 projections also has d_model biases.",
        4 * d * d * h + (4 * d * h if bias else 0): ("the number of heads does not multiply the count: the heads SPLIT "
                                                    "d_model into n_heads slices of d_model // n_heads."),
        4 * d * (d // h) + (4 * d if bias else 0): ("each projection maps all d_model inputs to all d_model outputs "
                                                   "(every head's slice together), so it is d_model x d_model."),
        4 * d * d + 4 * d * h: "the biases have d_model entries per projection, not n_heads.",
    }
    if got in known and got != expected:
        return known[got]
    return None


@never_raises('a function fn(d_model, n_heads, bias) returning an int')
def check_param_count(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(d_model, n_heads, bias) -> int``: parameters of a multi-head attention layer with
    four ``d_model x d_model`` projections (query, key, value, output)."""
    cases = [((d, h, b), _count(d, h, b)) for d, h, b in
             [(8, 2, True), (64, 8, False), (768, 12, True), (12, 3, False), (1024, 16, True)]]
    return check_function(fn, cases, what="parameter count",
                          compare=lambda got, exp: isinstance(got, int) and not isinstance(got, bool) and got == exp,
                          diagnose=_diagnose_count, quiet=quiet)
