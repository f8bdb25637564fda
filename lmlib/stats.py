"""Telling an effect from noise: seeds, paired tests and bootstrap intervals.

A fine-tuning result is a number measured on a finite test set after a training run that
depends on a random seed. Two methods are compared fairly when

- each is run with several seeds, reported as **mean ± sd** over seeds (:func:`mean_sd`);
- both are scored on the *same* test examples, and the comparison looks at the per-example
  differences (**paired**): an example both get right or both get wrong says nothing about
  which is better;
- the interval respects how the test set was drawn. Passages of one play share characters,
  topics and style, so they are not independent draws; resampling whole plays (a **cluster
  bootstrap**, :func:`paired_bootstrap` with ``groups=``) gives an honest interval, resampling
  single passages an over-confident one.

:func:`mcnemar` is the classical exact test for two classifiers on the same examples: only
the discordant examples (one right, the other wrong) count, and under "no difference" each of
them is a fair coin flip.

API
---
``mean_sd(values) -> (mean, sd)``
``mcnemar(correct_a, correct_b) -> McNemar(a_only, b_only, p_value)``
``paired_bootstrap(score_a, score_b, *, groups=None, strata=None, n_boot=2000, seed=0, level=0.95)
-> Interval(estimate, low, high)`` for ``mean(score_a) - mean(score_b)``
``bootstrap_mean(score, ...) -> Interval`` for one mean (an accuracy with its interval)
``paired_t_interval(a, b, level=0.95) -> Interval`` for ``mean(a - b)`` over a few paired runs
(seeds), with Student's t (:func:`student_t_quantile`): the interval for training runs, where
each seed is one draw and there are too few of them to bootstrap.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Hashable, Sequence

import torch

from lmlib.validation import check_float, check_int, check_sequence

__all__ = ["mean_sd", "McNemar", "mcnemar", "Interval", "paired_bootstrap", "bootstrap_mean",
           "student_t_quantile", "paired_t_interval"]


def _scores(name: str, x, who: str) -> torch.Tensor:
    """A 1-D float64 tensor of finite per-example scores (bools become 0/1)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        items = check_sequence(name, x, who=who)
        if any(isinstance(v, str) or not isinstance(v, (int, float, bool)) for v in items):
            raise TypeError(f"{who}: {name} must hold numbers or bools, got {items[:3]!r}")
        t = torch.tensor([float(v) for v in items], dtype=torch.float64)
    if t.dim() != 1:
        raise ValueError(f"{who}: {name} must be 1-D (one score per example), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{who}: {name} is empty")
    if t.is_complex():
        raise TypeError(f"{who}: {name} must be real, got {t.dtype}")
    t = t.double()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{who}: {name} holds a NaN or infinite score")
    return t


def _bools(name: str, x, who: str) -> torch.Tensor:
    t = _scores(name, x, who)
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(f"{who}: {name} must hold 0/1 (wrong/right) per example")
    return t.bool()


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1`` in the denominator) of ``values``; the sd
    of a single value is 0."""
    v = _scores("values", values, "mean_sd")
    sd = float(v.std(unbiased=True)) if v.numel() > 1 else 0.0
    return float(v.mean()), sd


@dataclass(frozen=True)
class McNemar:
    """``a_only``: examples A gets right and B wrong; ``b_only`` the reverse; ``p_value``: the
    two-sided exact binomial test of ``a_only ~ Binomial(a_only + b_only, 1/2)``."""

    a_only: int
    b_only: int
    p_value: float


def mcnemar(correct_a, correct_b) -> McNemar:
    """McNemar's exact test on the same examples; ``correct_*``: 0/1 (or bool) per example."""
    a = _bools("correct_a", correct_a, "mcnemar")
    b = _bools("correct_b", correct_b, "mcnemar")
    if a.numel() != b.numel():
        raise ValueError(f"mcnemar: correct_a has {a.numel()} examples but correct_b has {b.numel()}")
    n01, n10 = int((a & ~b).sum()), int((~a & b).sum())
    n = n01 + n10
    if n == 0:
        return McNemar(0, 0, 1.0)
    k = min(n01, n10)
    # P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so that large n cannot overflow
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(x - top) for x in logs)
    return McNemar(n01, n10, min(1.0, 2 * tail))


@dataclass(frozen=True)
class Interval:
    """A point estimate with an interval ``[low, high]`` (bootstrap percentile, or Student's t)."""

    estimate: float
    low: float
    high: float
    level: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def _labels(name: str, x, n: int, who: str) -> list[Hashable]:
    if isinstance(x, torch.Tensor):
        x = x.tolist()
    items = check_sequence(name, x, who=who)
    if len(items) != n:
        raise ValueError(f"{who}: {name} has {len(items)} entries for {n} examples")
    for v in items:
        try:
            hash(v)
        except TypeError:
            raise TypeError(f"{who}: {name} must hold hashable labels (play names, class ids)") from None
    return items


def _check_bootstrap_args(n_boot, seed, level, who: str) -> None:
    check_int("n_boot", n_boot, min=100, who=who)
    check_int("seed", seed, who=who)
    check_float("level", level, min=0.0, max=1.0, min_open=True, max_open=True, who=who)


def _bootstrap(d: torch.Tensor, groups, strata, n_boot: int, seed: int, level: float, who: str) -> Interval:
    """Percentile interval of ``mean(d)`` when whole groups (``groups``) are resampled with
    replacement, separately inside each stratum (``strata``: one label per example, constant
    within a group), so that every resample keeps each stratum's number of groups."""
    n = d.numel()
    groups = list(range(n)) if groups is None else _labels("groups", groups, n, who)
    strata = [0] * n if strata is None else _labels("strata", strata, n, who)
    index: dict[Hashable, int] = {}
    gid = torch.tensor([index.setdefault(g, len(index)) for g in groups])
    n_groups = len(index)
    sums = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, gid, d)            # (G,)
    counts = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, gid, torch.ones_like(d))
    stratum_of: dict[int, Hashable] = {}
    for g, s in zip(gid.tolist(), strata):
        if stratum_of.setdefault(g, s) != s:
            raise ValueError(f"{who}: a group spans two strata ({stratum_of[g]!r} and {s!r}); "
                             "strata must be constant within a group")
    gen = torch.Generator().manual_seed(seed)
    tot_s = torch.zeros(n_boot, dtype=torch.float64)
    tot_c = torch.zeros(n_boot, dtype=torch.float64)
    for s in dict.fromkeys(strata):
        members = torch.tensor([g for g in range(n_groups) if stratum_of[g] == s])
        pick = members[torch.randint(len(members), (n_boot, len(members)), generator=gen)]  # (n_boot, G_s)
        tot_s += sums[pick].sum(1)
        tot_c += counts[pick].sum(1)
    stats = tot_s / tot_c
    alpha = (1 - level) / 2
    lo, hi = torch.quantile(stats, torch.tensor([alpha, 1 - alpha], dtype=torch.float64)).tolist()
    return Interval(float(d.mean()), lo, hi, level)


def paired_bootstrap(score_a, score_b, *, groups=None, strata=None, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> Interval:
    """Interval for ``mean(score_a) - mean(score_b)`` over the same examples.

    ``score_*``: one number per example (1/0 for right/wrong, or an average over seeds).
    ``groups``: a label per example (its play); whole groups are resampled, so examples of one
    play move together. ``strata``: a label per example (its class) constant within a group;
    groups are resampled within each stratum. Without ``groups`` single examples are resampled.
    """
    who = "paired_bootstrap"
    a, b = _scores("score_a", score_a, who), _scores("score_b", score_b, who)
    if a.numel() != b.numel():
        raise ValueError(f"{who}: score_a has {a.numel()} examples but score_b has {b.numel()}")
    _check_bootstrap_args(n_boot, seed, level, who)
    return _bootstrap(a - b, groups, strata, n_boot, seed, level, who)


def bootstrap_mean(score, *, groups=None, strata=None, n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> Interval:
    """Interval for ``mean(score)`` (an accuracy, with ``score`` 0/1), resampled as in
    :func:`paired_bootstrap`."""
    s = _scores("score", score, "bootstrap_mean")
    _check_bootstrap_args(n_boot, seed, level, "bootstrap_mean")
    return _bootstrap(s, groups, strata, n_boot, seed, level, "bootstrap_mean")


def _t_density(x: float, df: int) -> float:
    c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(c - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf(t: float, df: int, n: int = 2000) -> float:
    """P(T <= t) for t >= 0: 1/2 plus the density integrated over [0, t] (Simpson's rule)."""
    h = t / n
    inner = sum((4 if i % 2 else 2) * _t_density(i * h, df) for i in range(1, n))
    return 0.5 + h / 3 * (_t_density(0.0, df) + inner + _t_density(t, df))


def student_t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (``0.5 <= p < 1``) of Student's t with ``df`` degrees of freedom, by
    bisection on its CDF (4.303 for p = 0.975, df = 2; 1.960 as df grows)."""
    check_float("p", p, min=0.5, max=1.0, max_open=True, who="student_t_quantile")
    check_int("df", df, min=1, who="student_t_quantile")
    return _t_quantile(float(p), int(df))


@functools.lru_cache(maxsize=256)
def _t_quantile(p: float, df: int) -> float:
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:                 # heavy tails: 12.7 for df = 1 at 0.975
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def paired_t_interval(a, b, *, level: float = 0.95) -> Interval:
    """Student-t interval for ``mean(a - b)`` over paired runs (``a[i]``, ``b[i]``: the same seed):
    ``d̄ ± t_{(1+level)/2, n-1} · sd(d) / sqrt(n)``. Needs at least 2 pairs."""
    who = "paired_t_interval"
    x, y = _scores("a", a, who), _scores("b", b, who)
    if x.numel() != y.numel():
        raise ValueError(f"{who}: a has {x.numel()} runs but b has {y.numel()}")
    if x.numel() < 2:
        raise ValueError(f"{who}: a and b need at least 2 paired runs for an interval, got {x.numel()}")
    check_float("level", level, min=0.0, max=1.0, min_open=True, max_open=True, who=who)
    d = (x - y).double()
    mean, sd = float(d.mean()), float(d.std(unbiased=True))
    half = student_t_quantile((1 + level) / 2, d.numel() - 1) * sd / math.sqrt(d.numel())
    return Interval(mean, mean - half, mean + half, level)
