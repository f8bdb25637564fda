"""Checkers for the exercises of Chapter 10 (scale: what training costs, how loss grows, many processes).

- :func:`check_training_days` -- days of training from ``6·N·D``, the number of accelerators,
  their peak and the utilisation.
- :func:`check_ring_allreduce` -- the bytes each rank sends in a ring all-reduce.
- :func:`check_compute_optimal` -- the model size and token count that minimise the fitted loss
  ``E + A/N^α + B/D^β`` at a fixed compute ``C = 6·N·D``.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from lmlib.exercises import Verdict, correct, describe, hint, never_raises

__all__ = ["check_training_days", "check_ring_allreduce", "check_compute_optimal", "CHINCHILLA_FIT"]

_RETURNS_NONE = "your function returns None: replace the placeholder `return None` with your code."

#: The parametric fit of Hoffmann et al. (2022), their "approach 3": E, A, alpha, B, beta.
CHINCHILLA_FIT = (1.69, 406.4, 0.34, 410.7, 0.28)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def _call(fn: Callable, case: tuple, what: str) -> tuple[Any, str | None]:
    try:
        return fn(*case), None
    except NotImplementedError:
        return None, f"{what}: the function still raises NotImplementedError."
    except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
        return None, f"{what}: calling it on {case} raised {type(exc).__name__}: {exc}"


def _numbers(fn: Any, cases: list[tuple], what: str, quiet: bool) -> tuple[list[float] | None, Verdict | None]:
    """The learner's numbers on every case, or a hint."""
    if fn is None:
        return None, hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return None, hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    got = []
    for case in cases:
        v, problem = _call(fn, case, what)
        if problem:
            return None, hint(problem, quiet=quiet)
        if v is None:
            return None, hint(f"{what}: {_RETURNS_NONE}", quiet=quiet)
        x = _number(v)
        if x is None:
            return None, hint(f"{what}: return a finite number; for {case} you returned {describe(v)}.", quiet=quiet)
        got.append(x)
    return got, None


def _diagnose(got: list[float], want: list[float], patterns: list[tuple[list[float], str]]) -> str | None:
    """The message of the first mistake whose ratios got/want match, case by case."""
    if any(w == 0 for w in want):
        return None
    ratios = [g / w for g, w in zip(got, want)]
    for pattern, message in patterns:
        if all(math.isclose(r, p, rel_tol=1e-6) for r, p in zip(ratios, pattern)):
            return message
    return None


# ---------------------------------------------------------------------------------------------
# Exercise: days of training
# ---------------------------------------------------------------------------------------------

#: (n_params, n_tokens, n_gpus, peak_flops, mfu)
_DAYS_CASES = [(8e9, 15e12, 1024, 989e12, 0.4), (124e6, 2.5e9, 1, 312e12, 0.5), (70e9, 2e12, 256, 312e12, 0.3)]


def _days(n, d, g, peak, u):
    return 6 * n * d / (g * peak * u) / 86400


@never_raises("a function (n_params, n_tokens, n_gpus, peak_flops, mfu) -> days")
def check_training_days(fn: Callable[..., float] | None, *, quiet: bool = False) -> Verdict:
    """``fn(n_params, n_tokens, n_gpus, peak_flops, mfu) -> days``: ``6·N·D`` FLOPs done at
    ``n_gpus · peak_flops · mfu`` FLOP/s, in days."""
    what = "training_days"
    got, problem = _numbers(fn, _DAYS_CASES, what, quiet)
    if problem is not None:
        return problem
    want = [_days(*c) for c in _DAYS_CASES]
    if all(math.isclose(g, w, rel_tol=1e-9) for g, w in zip(got, want)):
        return correct("6·N·D / (GPUs × peak × MFU) seconds, / 86,400: Llama-3-8B-sized training on 1024 H100s "
                       f"at 40% MFU takes {want[0]:.1f} days.", quiet=quiet)
    per_case = lambda f: [f(*c) for c in _DAYS_CASES]  # noqa: E731
    patterns = [
        ([1 / 3] * 3, "you count 2·N·D, the forward pass only; training also runs the backward pass, twice "
                      "the forward's FLOPs: 6·N·D."),
        ([0.5] * 3, "you count 3·N·D; each parameter costs 2 FLOPs per token forward and 4 backward: 6·N·D."),
        ([86400] * 3, "your answer is in seconds: divide by 86,400 for days."),
        ([24] * 3, "your answer is in hours: divide by 24 for days."),
        ([1 / 24] * 3, "divide seconds by 86,400 (60 × 60 × 24) for days, not by 3,600 × 24 × 24."),
        (per_case(lambda n, d, g, p, u: g), "the run is shared by n_gpus accelerators: divide by their number."),
        (per_case(lambda n, d, g, p, u: u), "you did not use the utilisation: the accelerators reach only "
                                            "mfu × peak FLOP/s, so divide by mfu as well."),
        (per_case(lambda n, d, g, p, u: u * u), "you multiply by mfu: the accelerators are slower than their "
                                                "peak, so the run takes longer; divide by mfu."),
        (per_case(lambda n, d, g, p, u: 1 / 100), "mfu is a fraction (0.4), not a percentage (40)."),
    ]
    message = _diagnose(got, want, patterns)
    if message:
        return hint(f"{what}: {message}", quiet=quiet)
    return hint(f"{what}: for {_DAYS_CASES[0]} you returned {got[0]:.4g} days, expected {want[0]:.4g}. Start from "
                "the FLOPs, 6·N·D, and the FLOP/s the machines actually reach.", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: the ring all-reduce
# ---------------------------------------------------------------------------------------------

#: (n_bytes, world_size)
_RING_CASES = [(400e6, 2), (400e6, 8), (1e9, 64), (12345.0, 3), (100.0, 1)]


def _ring(n, w):
    return 2 * (w - 1) / w * n


@never_raises("a function (n_bytes, world_size) -> bytes sent by each rank")
def check_ring_allreduce(fn: Callable[..., float] | None, *, quiet: bool = False) -> Verdict:
    """``fn(n_bytes, world_size) -> bytes``: what each rank sends in a ring all-reduce of
    ``n_bytes`` (a reduce-scatter then an all-gather, each ``world_size - 1`` chunks of
    ``n_bytes / world_size``)."""
    what = "ring_allreduce_bytes"
    got, problem = _numbers(fn, _RING_CASES, what, quiet)
    if problem is not None:
        return problem
    want = [_ring(*c) for c in _RING_CASES]
    if all(math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9) for g, w in zip(got, want)):
        return correct("2·(W−1)/W × n: under 2n whatever the number of ranks, so adding ranks does not "
                       "add traffic per rank.", quiet=quiet)
    if got[-1] != 0 and want[-1] == 0:
        return hint(f"{what}: with world_size = 1 there is nobody to send to: your formula should give 0.",
                    quiet=quiet)
    known, exp = _RING_CASES[:-1], want[:-1]
    per_case = lambda f: [f(*c) for c in known]  # noqa: E731
    patterns = [
        ([0.5] * 4, "that is half of it: the reduce-scatter alone. Every rank then also sends its reduced chunk "
                    "round the ring again (the all-gather), another (W−1)/W × n."),
        (per_case(lambda n, w: w), "each step of the ring sends one chunk of n/W bytes, not all n bytes."),
        (per_case(lambda n, w: w / (w - 1)), "you count W chunks per phase; a ring of W ranks needs W−1 steps "
                                             "per phase (a rank already holds its own chunk)."),
        (per_case(lambda n, w: w / 2), "you count (W−1)·n: each of the W−1 steps sends a chunk of n/W bytes, "
                                       "and there are two phases."),
    ]
    message = _diagnose(got[:-1], exp, patterns)
    if message:
        return hint(f"{what}: {message}", quiet=quiet)
    i = next(i for i, (g, w) in enumerate(zip(got, want)) if not math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9))
    return hint(f"{what}: for (n_bytes, world_size) = {_RING_CASES[i]} you returned {got[i]:.6g}, expected "
                f"{want[i]:.6g}. Split the buffer into W chunks and count the chunks a rank sends in the "
                "two phases.", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: the compute-optimal model
# ---------------------------------------------------------------------------------------------

_OPT_CASES = [(1e21, *CHINCHILLA_FIT), (5.76e23, *CHINCHILLA_FIT), (1e15, 1.0, 2.0, 0.5, 3.0, 0.25)]


def _g(e, a, alpha, b, beta):
    return (alpha * a / (beta * b)) ** (1 / (alpha + beta))


def _optimal(c, e, a, alpha, b, beta):
    n = _g(e, a, alpha, b, beta) * (c / 6) ** (beta / (alpha + beta))
    return n, (c / 6) / n


def _pair(v: Any) -> tuple[float, float] | None:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        return None
    try:
        if len(v) != 2:
            return None
        a, b = _number(v[0]), _number(v[1])
    except Exception:  # noqa: BLE001
        return None
    return None if a is None or b is None else (a, b)


@never_raises("a function (C, E, A, alpha, B, beta) -> (N, D)")
def check_compute_optimal(fn: Callable[..., tuple] | None, *, quiet: bool = False) -> Verdict:
    """``fn(C, E, A, alpha, B, beta) -> (N, D)``: the parameters and tokens that minimise
    ``E + A/N^alpha + B/D^beta`` subject to ``6·N·D = C``."""
    what = "compute_optimal"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    got = []
    for case in _OPT_CASES:
        v, problem = _call(fn, case, what)
        if problem:
            return hint(problem, quiet=quiet)
        if v is None:
            return hint(f"{what}: {_RETURNS_NONE}", quiet=quiet)
        p = _pair(v)
        if p is None or p[0] <= 0 or p[1] <= 0:
            return hint(f"{what}: return a pair (N, D) of positive numbers; for C = {case[0]:g} you returned "
                        f"{describe(v)}.", quiet=quiet)
        got.append(p)
    want = [_optimal(*c) for c in _OPT_CASES]
    if all(math.isclose(g[0], w[0], rel_tol=1e-6) and math.isclose(g[1], w[1], rel_tol=1e-6)
           for g, w in zip(got, want)):
        n, d = want[1]
        return correct(f"at Chinchilla's budget (5.76e23 FLOPs) the fit gives N = {n / 1e9:.0f}B parameters and "
                       f"D = {d / 1e12:.1f}T tokens, {d / n:.0f} tokens per parameter.", quiet=quiet)
    if not all(math.isclose(6 * g[0] * g[1], c[0], rel_tol=1e-6) for g, c in zip(got, _OPT_CASES)):
        if all(math.isclose(g[0] * g[1], c[0], rel_tol=1e-6) for g, c in zip(got, _OPT_CASES)):
            return hint(f"{what}: your N·D equals C; the constraint is 6·N·D = C, so D = C / (6N).", quiet=quiet)
        return hint(f"{what}: your N and D do not spend the budget: check that 6·N·D = C for your answer.",
                    quiet=quiet)
    if all(math.isclose(g[0], w[1], rel_tol=1e-6) for g, w in zip(got, want)):
        return hint(f"{what}: you return (D, N); the checker expects (N, D), parameters first.", quiet=quiet)
    wrong_exponent = [_g(*c[1:]) * (c[0] / 6) ** (c[3] / (c[3] + c[5])) for c in _OPT_CASES]
    if all(math.isclose(g[0], n, rel_tol=1e-6) for g, n in zip(got, wrong_exponent)):
        return hint(f"{what}: the exponents are swapped: N grows as (C/6)^(beta/(alpha+beta)), with the exponent "
                    "of the DATA term on top (a large beta means more data helps fast, "
                    "so the budget goes to parameters).", quiet=quiet)
    return hint(f"{what}: your (N, D) spend the budget but do not minimise the loss. Substitute D = C/(6N), set "
                "the derivative in N to zero, and solve for N.", quiet=quiet)
