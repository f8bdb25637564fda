import math

import pytest

from lmlib.exercises import ch10
from lmlib.cost import training_time


# ---------------------------------------------------------------------------------------------
# Days of training
# ---------------------------------------------------------------------------------------------

def right_days(n, d, g, peak, u):
    return 6 * n * d / (g * peak * u) / 86400


def test_training_days_right_answers_pass_and_agree_with_lmlib():
    assert ch10.check_training_days(right_days, quiet=True)
    assert ch10.check_training_days(lambda n, d, g, p, u: training_time(n, d, p, u, g) / 86400, quiet=True)


@pytest.mark.parametrize("wrong, words", [
    (lambda n, d, g, p, u: 2 * n * d / (g * p * u) / 86400, "forward pass only"),
    (lambda n, d, g, p, u: 3 * n * d / (g * p * u) / 86400, "3·N·D"),
    (lambda n, d, g, p, u: 6 * n * d / (g * p * u), "seconds"),
    (lambda n, d, g, p, u: 6 * n * d / (g * p * u) / 3600, "hours"),
    (lambda n, d, g, p, u: 6 * n * d / (p * u) / 86400, "n_gpus"),
    (lambda n, d, g, p, u: 6 * n * d / (g * p) / 86400, "utilisation"),
    (lambda n, d, g, p, u: 6 * n * d * u / (g * p) / 86400, "multiply by mfu"),
    (lambda n, d, g, p, u: 6 * n * d / (g * p * u * 100) / 86400, "percentage"),
    (lambda n, d, g, p, u: n * d, "Start from"),
])
def test_training_days_mistakes_get_their_hint(wrong, words):
    v = ch10.check_training_days(wrong, quiet=True)
    assert not v and words in v.message, v.message


# ---------------------------------------------------------------------------------------------
# Ring all-reduce
# ---------------------------------------------------------------------------------------------

def right_ring(n, w):
    return 2 * (w - 1) / w * n


def ring_by_simulation(n, w):
    """Count the sends of an actual ring schedule: W chunks, 2(W-1) steps, one chunk per step."""
    chunk = n / w
    sent = 0.0
    for _phase in ("reduce-scatter", "all-gather"):
        for _step in range(w - 1):
            sent += chunk
    return sent


def test_ring_right_answers_pass_and_match_a_simulated_ring():
    assert ch10.check_ring_allreduce(right_ring, quiet=True)
    assert ch10.check_ring_allreduce(ring_by_simulation, quiet=True)
    for n, w in ch10._RING_CASES:
        assert math.isclose(ring_by_simulation(n, w), right_ring(n, w), abs_tol=1e-9)


@pytest.mark.parametrize("wrong, words", [
    (lambda n, w: (w - 1) / w * n, "reduce-scatter alone"),
    (lambda n, w: 2 * (w - 1) * n, "one chunk of n/W"),
    (lambda n, w: 2 * n if w > 1 else 0, "W chunks per phase"),
    (lambda n, w: (w - 1) * n, "two phases"),
    (lambda n, w: 2 * n, "nobody to send to"),
    (lambda n, w: (w - 1) * n / w ** 2, "two phases"),
])
def test_ring_mistakes_get_their_hint(wrong, words):
    v = ch10.check_ring_allreduce(wrong, quiet=True)
    assert not v and words in v.message, v.message


# ---------------------------------------------------------------------------------------------
# Compute-optimal N and D
# ---------------------------------------------------------------------------------------------

def right_optimal(c, e, a, alpha, b, beta):
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    n = g * (c / 6) ** (beta / (alpha + beta))
    return n, c / (6 * n)


def numeric_optimal(c, e, a, alpha, b, beta):
    """Golden-section search of the loss along 6ND = C, in log N: an independent reference."""
    loss = lambda x: a / math.exp(x) ** alpha + b / (c / 6 / math.exp(x)) ** beta  # noqa: E731
    lo, hi = 0.0, math.log(c / 6)
    r = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        m1, m2 = hi - r * (hi - lo), lo + r * (hi - lo)
        lo, hi = (lo, m2) if loss(m1) < loss(m2) else (m1, hi)
    n = math.exp((lo + hi) / 2)
    return n, c / (6 * n)


def test_compute_optimal_closed_form_matches_a_numeric_search():
    assert ch10.check_compute_optimal(right_optimal, quiet=True)
    for case in ch10._OPT_CASES:
        n1, _ = right_optimal(*case)
        n2, _ = numeric_optimal(*case)
        assert math.isclose(n1, n2, rel_tol=1e-6)


@pytest.mark.parametrize("wrong, words", [
    (lambda c, e, a, al, b, be: right_optimal(c, e, a, al, b, be)[::-1], "(D, N)"),
    (lambda c, e, a, al, b, be: (right_optimal(c, e, a, al, b, be)[0], c / right_optimal(c, e, a, al, b, be)[0]),
     "6·N·D = C, so D"),
    (lambda c, e, a, al, b, be: (1.0, 2.0), "do not spend the budget"),
    (lambda c, e, a, al, b, be: ((n := ((al * a / (be * b)) ** (1 / (al + be))) * (c / 6) ** (al / (al + be))),
                                 c / 6 / n), "exponents are swapped"),
    (lambda c, e, a, al, b, be: ((c / 6) ** 0.5, (c / 6) ** 0.5), "do not minimise"),
    (lambda c, e, a, al, b, be: c, "pair (N, D)"),
])
def test_compute_optimal_mistakes_get_their_hint(wrong, words):
    v = ch10.check_compute_optimal(wrong, quiet=True)
    assert not v and words in v.message, v.message
