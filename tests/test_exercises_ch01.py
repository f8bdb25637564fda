"""The Chapter 1 checkers accept right answers and give the specific hint for typical wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from lmlib.exercises import ch01


# -- the probability of a text ------------------------------------------------------------------
def test_text_probability(capsys):
    # by hand: P(a) P(b|a) P(b|b) P(b|b) = 0.6 * 0.7 * 0.2 * 0.2
    assert ch01.check_text_probability(0.0168)
    assert "Correct!" in capsys.readouterr().out
    cases = {
        0.7 * 0.2 * 0.2: "first factor",
        0.6 * 0.8 * 0.2 * 0.2: "wrong way round",
        math.log(0.0168): "log-probability",
        0.6 + 0.7 + 0.2 + 0.2: "added",
        0.5 * 0.7 * 0.2 * 0.2: "uniform",
        0.3: "multiply P(x_1)",
    }
    for wrong, words in cases.items():
        v = ch01.check_text_probability(wrong, quiet=True)
        assert not v and words in v.message, (wrong, v.message)
    assert not ch01.check_text_probability(None, quiet=True)


# -- perplexity -----------------------------------------------------------------------------------
def test_perplexity():
    # mean -log2 p = (1 + 2 + 3 + 1) / 4 = 1.75 bits, so perplexity = 2 ** 1.75
    assert ch01.check_perplexity(2 ** 1.75, quiet=True)
    assert ch01.check_perplexity(torch.tensor(2 ** 1.75), quiet=True)
    cases = {
        1.75 * math.log(2): "exp of it",
        1.75: "bits",
        (2 + 4 + 8 + 2) / 4: "arithmetic mean",
        1 / ((0.5 + 0.25 + 0.125 + 0.5) / 4): "average the log",
        2.0 ** 7: "total",
        2 ** -1.75: "sign",
    }
    for wrong, words in cases.items():
        v = ch01.check_perplexity(wrong, quiet=True)
        assert not v and words in v.message, (wrong, v.message)
    v = ch01.check_perplexity("3.36", quiet=True)  # a wrong kind of answer: a hint, not an exception
    assert not v and "expected a number" in v.message


# -- interpolated absolute discounting (measured on the validation plays) ---------------------------
def good_backoff(counts, lower, d):
    """Interpolated absolute discounting, written independently of the checker's reference."""
    out = lower.clone()
    for i in range(counts.shape[0]):
        row, n_h = counts[i], counts[i].sum()
        if n_h == 0:
            continue  # an unseen context: back off entirely
        seen = row > 0
        freed = d * seen.sum() / n_h
        out[i] = torch.where(seen, (row - d) / n_h, torch.zeros_like(row)) + freed * lower[i]
    return out


def fast_backoff(counts, lower, d):
    n_h = counts.sum(-1, keepdim=True)
    t_h = (counts > 0).sum(-1, keepdim=True)
    p = (counts - d).clamp(min=0) / n_h.clamp(min=1) + d * t_h / n_h.clamp(min=1) * lower
    return torch.where(n_h > 0, p, lower)


def test_backoff_right():
    assert ch01.check_backoff(fast_backoff, 0.85, quiet=True)
    assert ch01.check_backoff(fast_backoff, 0.9, quiet=True)
    toy = torch.tensor([[3.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    low = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], dtype=torch.float64)
    torch.testing.assert_close(good_backoff(toy, low, 0.5), fast_backoff(toy, low, 0.5))


def jelinek_mercer(counts, lower, lam):
    """Another proper estimator (a fixed mixture with the lower order): it must pass too."""
    n_h = counts.sum(-1, keepdim=True)
    return torch.where(n_h > 0, (1 - lam) * counts / n_h.clamp(min=1) + lam * lower, lower)


def test_backoff_accepts_other_proper_estimators():
    v = ch01.check_backoff(jelinek_mercer, 0.3, quiet=True)
    assert v, v.message


def _no_fallback(c, l, d):
    n_h, t_h = c.sum(-1, keepdim=True), (c > 0).sum(-1, keepdim=True)
    return (c - d).clamp(min=0) / n_h + d * t_h / n_h * l


def _no_clamp(c, l, d):
    n_h, t_h = c.sum(-1, keepdim=True).clamp(min=1), (c > 0).sum(-1, keepdim=True)
    return torch.where(c.sum(-1, keepdim=True) > 0, (c - d) / n_h + d * t_h / n_h * l, l)


def _gives_back_d(c, l, d):
    n_h = c.sum(-1, keepdim=True).clamp(min=1)
    return torch.where(c.sum(-1, keepdim=True) > 0, (c - d).clamp(min=0) / n_h + d / n_h * l, l)


def _not_normalised(c, l, d):
    n_h = c.sum(-1, keepdim=True).clamp(min=1)
    return torch.where(c.sum(-1, keepdim=True) > 0, c / n_h + d * l, l)


def _no_lower(c, l, d):
    n_h = c.sum(-1, keepdim=True)
    return torch.where(n_h > 0, c / n_h.clamp(min=1), l)


@pytest.mark.parametrize("wrong, d, words", [
    (_no_fallback, 0.85, "never seen in training are NaN"),
    (_no_clamp, 0.85, "max(N(hc) - d, 0)"),
    (_gives_back_d, 0.85, "d * T(h) / N(h)"),
    (_not_normalised, 0.85, "sums to"),
    (_no_lower, 0.85, "probability 0"),
    (lambda c, l, d: l, 0.85, "whatever the discount"),            # ignores the counts
    (fast_backoff, 0.2, "Choose d by trying several"),              # a guessed discount, worse than add-k
    (fast_backoff, 0.6, "not by guessing"),                         # beats add-k, but not tuned
    (jelinek_mercer, 0.85, "other discounts do better"),
    (lambda c, l, d: None, 0.85, "returned None"),
    (lambda c, l, d: c[:, :-1], 0.85, "one row of"),
    (lambda c, l, d: c.long(), 0.85, "floating-point"),
    (lambda c, l, d: [[0.5]], 0.85, "return a tensor"),
])
def test_backoff_wrong(wrong, d, words):
    v = ch01.check_backoff(wrong, d, quiet=True)
    assert not v and words in v.message, v.message


def test_backoff_bad_discounts_and_placeholders():
    for d, words in [(None, "second argument"), (0, "(0, 1]"), (1.5, "(0, 1]"), ("0.8", "(0, 1]"),
                     (True, "(0, 1]")]:
        v = ch01.check_backoff(fast_backoff, d, quiet=True)
        assert not v and words in v.message, (d, v.message)
    assert not ch01.check_backoff(None, 0.8, quiet=True)
    v = ch01.check_backoff("fn", 0.8, quiet=True)
    assert not v and "expected a function" in v.message

    def broken(c, l, d):
        raise IndexError("oops")

    v = ch01.check_backoff(broken, 0.8, quiet=True)
    assert not v and "IndexError" in v.message

    def todo(c, l, d):
        raise NotImplementedError

    v = ch01.check_backoff(todo, 0.8, quiet=True)
    assert not v and "NotImplementedError" in v.message


def test_backoff_does_not_let_the_learner_change_the_data():
    def vandal(c, l, d):
        c.zero_()
        l.fill_(float("nan"))
        return fast_backoff(torch.ones_like(c), torch.full_like(l, 1 / l.shape[-1]), d)

    ch01.check_backoff(vandal, 0.85, quiet=True)
    assert ch01.check_backoff(fast_backoff, 0.85, quiet=True)  # the cached counts are intact
