"""Tests for lmlib.stats: mean ± sd, McNemar's exact test and the (cluster, stratified) bootstrap.

References are written out here: McNemar's p-value as a sum of binomial coefficients
(``math.comb``, exact fractions), the bootstrap as a plain Python loop over the same random
draws, and percentiles by linear interpolation between order statistics."""

import math
import random
import statistics
from fractions import Fraction

import pytest
import torch

from lmlib import stats as S
from lmlib.stats import Interval, McNemar, bootstrap_mean, mcnemar, mean_sd, paired_bootstrap


# --- mean ± sd ------------------------------------------------------------------------------

def test_mean_sd_matches_statistics_module():
    values = [0.71, 0.69, 0.74, 0.70, 0.66]
    m, sd = mean_sd(values)
    assert m == pytest.approx(statistics.mean(values), abs=1e-15)
    assert sd == pytest.approx(statistics.stdev(values), abs=1e-15)   # n - 1 in the denominator
    assert mean_sd([3.5]) == (3.5, 0.0)
    assert mean_sd(torch.tensor([1.0, 3.0])) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_sd([True, False, True, True]) == (0.75, pytest.approx(0.5))


# --- McNemar --------------------------------------------------------------------------------

def _pairs(a_only, b_only, both=0, neither=0):
    """Per-example correctness of A and B with the given cell counts, in a shuffled order."""
    rows = [(1, 0)] * a_only + [(0, 1)] * b_only + [(1, 1)] * both + [(0, 0)] * neither
    random.Random(a_only * 1000 + b_only).shuffle(rows)
    return [r[0] for r in rows], [r[1] for r in rows]


def _mcnemar_reference(a_only, b_only):
    """Two-sided exact binomial test, summed with exact fractions."""
    n, k = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return 1.0
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


@pytest.mark.parametrize("a_only, b_only", [(0, 1), (1, 0), (0, 5), (3, 9), (9, 3), (10, 20), (7, 7), (0, 17),
                                            (40, 61), (1, 30)])
def test_mcnemar_matches_binomial_sum(a_only, b_only):
    a, b = _pairs(a_only, b_only, both=13, neither=4)
    r = mcnemar(a, b)
    assert isinstance(r, McNemar)
    assert (r.a_only, r.b_only) == (a_only, b_only)
    assert r.p_value == pytest.approx(_mcnemar_reference(a_only, b_only), rel=1e-10, abs=1e-300)


def test_mcnemar_known_values():
    # 0 vs 5 discordant: 2 * (1/2)^5
    a, b = _pairs(0, 5)
    assert mcnemar(a, b).p_value == pytest.approx(2 / 32, rel=1e-12)
    # 1 vs 9: 2 * (1 + 10) / 1024
    a, b = _pairs(1, 9)
    assert mcnemar(a, b).p_value == pytest.approx(22 / 1024, rel=1e-12)


def test_mcnemar_large_counts_do_not_overflow():
    a, b = _pairs(900, 1100)
    p = mcnemar(a, b).p_value
    assert 0 < p < 1e-4 and p == pytest.approx(_mcnemar_reference(900, 1100), rel=1e-8)


def test_mcnemar_symmetric_and_ignores_concordant_pairs():
    a, b = _pairs(4, 11, both=20, neither=3)
    ab, ba = mcnemar(a, b), mcnemar(b, a)
    assert (ab.a_only, ab.b_only) == (ba.b_only, ba.a_only)
    assert ab.p_value == ba.p_value
    a2, b2 = _pairs(4, 11, both=500, neither=200)
    assert mcnemar(a2, b2).p_value == pytest.approx(ab.p_value, rel=1e-12)


def test_mcnemar_no_discordant_pairs_or_a_tie_gives_one():
    a, b = _pairs(0, 0, both=6, neither=2)
    assert mcnemar(a, b) == McNemar(0, 0, 1.0)
    a, b = _pairs(6, 6, both=1)
    assert mcnemar(a, b).p_value == 1.0


def test_mcnemar_accepts_bool_tensors():
    a, b = _pairs(2, 8, both=5)
    r = mcnemar(torch.tensor(a, dtype=torch.bool), torch.tensor(b, dtype=torch.bool))
    assert r == mcnemar(a, b)


# --- bootstrap: a slow reference with the same random draws -------------------------------

def _quantile(sorted_values, q):
    """Linear interpolation between order statistics (what torch.quantile does)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def _bootstrap_reference(d, groups, strata, n_boot, seed, level):
    """Resample whole groups with replacement inside each stratum; the statistic is the mean
    over the examples of the resampled groups. Uses the same torch.randint draws as lmlib."""
    n = len(d)
    groups = list(range(n)) if groups is None else list(groups)
    strata = [0] * n if strata is None else list(strata)
    names = list(dict.fromkeys(groups))                       # groups in order of first appearance
    members = {g: [i for i in range(n) if groups[i] == g] for g in names}
    stratum = {g: strata[members[g][0]] for g in names}
    gen = torch.Generator().manual_seed(seed)
    picks = []                                                # per stratum: n_boot lists of groups
    for s in dict.fromkeys(strata):
        in_s = [g for g in names if stratum[g] == s]
        draws = torch.randint(len(in_s), (n_boot, len(in_s)), generator=gen).tolist()
        picks.append([[in_s[j] for j in row] for row in draws])
    stats = []
    for b in range(n_boot):
        values = [d[i] for p in picks for g in p[b] for i in members[g]]
        stats.append(math.fsum(values) / len(values))
    stats.sort()
    alpha = (1 - level) / 2
    return math.fsum(d) / n, _quantile(stats, alpha), _quantile(stats, 1 - alpha)


def _data(n=60, seed=0):
    rng = random.Random(seed)
    a = [int(rng.random() < 0.7) for _ in range(n)]
    b = [int(rng.random() < 0.6) for _ in range(n)]
    plays = [f"play{i % 7}" for i in range(n)]
    kinds = {f"play{j}": ("comedy", "tragedy", "history")[j % 3] for j in range(7)}
    return a, b, plays, [kinds[p] for p in plays]


@pytest.mark.parametrize("use_groups, use_strata", [(False, False), (True, False), (True, True), (False, True)])
def test_paired_bootstrap_matches_python_loop(use_groups, use_strata):
    a, b, plays, kinds = _data()
    groups = plays if use_groups else None
    strata = kinds if use_strata else None
    iv = paired_bootstrap(a, b, groups=groups, strata=strata, n_boot=300, seed=5, level=0.9)
    est, lo, hi = _bootstrap_reference([x - y for x, y in zip(a, b)], groups, strata, 300, 5, 0.9)
    assert isinstance(iv, Interval) and iv.level == 0.9
    assert iv.estimate == pytest.approx(est, abs=1e-12)
    assert iv.low == pytest.approx(lo, abs=1e-12) and iv.high == pytest.approx(hi, abs=1e-12)


def test_bootstrap_mean_matches_python_loop():
    a, _, plays, kinds = _data(seed=1)
    iv = bootstrap_mean(a, groups=plays, strata=kinds, n_boot=250, seed=3)
    est, lo, hi = _bootstrap_reference([float(x) for x in a], plays, kinds, 250, 3, 0.95)
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((est, lo, hi), abs=1e-12)


def test_estimate_is_the_exact_mean_difference():
    a, b, plays, _ = _data(n=77, seed=2)
    iv = paired_bootstrap(a, b, groups=plays, n_boot=100)
    assert iv.estimate == (sum(a) - sum(b)) / len(a)          # integers: no rounding anywhere
    assert bootstrap_mean(a, n_boot=100).estimate == sum(a) / len(a)
    # the interval of a difference of a score with itself is exactly zero
    z = paired_bootstrap(a, a, n_boot=100)
    assert (z.estimate, z.low, z.high) == (0.0, 0.0, 0.0) and not z.excludes_zero()


def test_per_example_interval_agrees_with_the_normal_approximation():
    rng = random.Random(4)
    x = [int(rng.random() < 0.7) for _ in range(400)]
    p = sum(x) / len(x)
    iv = bootstrap_mean(x, n_boot=4000, seed=0, level=0.95)
    half = 1.959964 * math.sqrt(p * (1 - p) / len(x))
    assert (iv.high - iv.low) == pytest.approx(2 * half, rel=0.1)
    assert iv.low < p < iv.high


def test_grouped_interval_is_wider_when_errors_are_correlated_within_groups():
    # 20 plays of 20 passages; within a play every passage is right or every one is wrong
    rng = random.Random(0)
    x, groups = [], []
    for g in range(20):
        right = int(rng.random() < 0.6)
        x += [right] * 20
        groups += [g] * 20
    per_example = bootstrap_mean(x, n_boot=2000, seed=0)
    grouped = bootstrap_mean(x, groups=groups, n_boot=2000, seed=0)
    assert per_example.estimate == grouped.estimate
    assert (grouped.high - grouped.low) > 3 * (per_example.high - per_example.low)


def test_strata_keep_every_stratum_in_every_resample():
    # stratum "hit": 4 plays all right; stratum "miss": 4 plays all wrong (equal sizes). With
    # strata every resample has 4 plays of each, so the mean is always 1/2: a zero-width interval.
    x, groups, strata = [], [], []
    for g in range(8):
        x += [int(g < 4)] * 5
        groups += [f"p{g}"] * 5
        strata += ["hit" if g < 4 else "miss"] * 5
    s = bootstrap_mean(x, groups=groups, strata=strata, n_boot=500, seed=1)
    assert (s.estimate, s.low, s.high) == (0.5, 0.5, 0.5)
    free = bootstrap_mean(x, groups=groups, n_boot=500, seed=1)
    assert free.high - free.low > 0.3


def test_strata_must_be_constant_within_a_group():
    with pytest.raises(ValueError, match="strata"):
        bootstrap_mean([1, 0, 1, 1], groups=["a", "a", "b", "b"], strata=[0, 1, 0, 0], n_boot=100)


def test_bootstrap_is_deterministic_and_level_widens_the_interval():
    a, b, plays, _ = _data(n=120, seed=6)
    one = paired_bootstrap(a, b, groups=plays, n_boot=500, seed=9)
    assert one == paired_bootstrap(a, b, groups=plays, n_boot=500, seed=9)
    assert one != paired_bootstrap(a, b, groups=plays, n_boot=500, seed=10)
    narrow = paired_bootstrap(a, b, n_boot=2000, seed=0, level=0.5)
    wide = paired_bootstrap(a, b, n_boot=2000, seed=0, level=0.99)
    assert wide.low < narrow.low <= narrow.high < wide.high


def test_groups_may_be_a_tensor_and_scores_bools():
    a, b, _, _ = _data(n=40, seed=7)
    g = torch.arange(40) // 4
    ref = paired_bootstrap(a, b, groups=g.tolist(), n_boot=200)
    got = paired_bootstrap(torch.tensor(a, dtype=torch.bool), torch.tensor(b, dtype=torch.bool), groups=g,
                           n_boot=200)
    assert got == ref


def test_interval_helpers():
    assert Interval(0.1, 0.02, 0.2, 0.95).excludes_zero()
    assert Interval(-0.1, -0.2, -0.01, 0.95).excludes_zero()
    assert not Interval(0.1, -0.02, 0.2, 0.95).excludes_zero()
    assert not Interval(0.0, 0.0, 0.2, 0.95).excludes_zero()   # touching zero does not exclude it
    assert str(Interval(0.05, -0.012, 0.1, 0.95)) == "+0.050 [-0.012, +0.100]"


# Student's t: published two-sided 95% (p = 0.975) and 90% (p = 0.95) critical values
@pytest.mark.parametrize("p, df, table", [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776),
                                          (0.975, 9, 2.262), (0.975, 30, 2.042), (0.95, 2, 2.920),
                                          (0.95, 10, 1.812), (0.995, 5, 4.032)])
def test_student_t_quantile_matches_the_published_table(p, df, table):
    assert S.student_t_quantile(p, df) == pytest.approx(table, abs=6e-4)


def test_student_t_quantile_tends_to_the_normal_and_is_the_median_at_one_half():
    assert S.student_t_quantile(0.975, 5000) == pytest.approx(1.95996, abs=2e-3)
    assert S.student_t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-9)


def test_paired_t_interval_is_mean_difference_plus_minus_t_times_standard_error():
    a, b = [2.00, 2.10, 1.95, 2.05], [2.10, 2.18, 2.03, 2.16]
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    r = S.paired_t_interval(a, b)
    half = 3.182 * sd / 2                     # t_{0.975, 3} = 3.182 (table)
    assert r.estimate == pytest.approx(mean, abs=1e-12)
    assert r.low == pytest.approx(mean - half, abs=1e-4) and r.high == pytest.approx(mean + half, abs=1e-4)
    assert r.excludes_zero()                  # every difference is negative, and consistently so


def test_paired_t_interval_covers_the_true_difference_about_95_percent_of_the_time():
    g = torch.Generator().manual_seed(0)
    hits = 0
    for _ in range(400):
        seed_noise = torch.randn(3, generator=g, dtype=torch.float64)        # shared by a pair
        a = 1.0 + seed_noise + 0.3 * torch.randn(3, generator=g, dtype=torch.float64)
        b = 0.8 + seed_noise + 0.3 * torch.randn(3, generator=g, dtype=torch.float64)
        r = S.paired_t_interval(a, b)
        hits += r.low <= 0.2 <= r.high
    assert 0.91 <= hits / 400 <= 0.985
