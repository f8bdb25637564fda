"""The Chapter 1 checkers accept right answers and give the specific hint for typical wrong ones."""

from __future__ import annotations

import math

import pytest
import torch

from lmlib.data import CharVocab
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


# -- add-k smoothing -----------------------------------------------------------------------------
def good_add_k(counts, k):
    if counts.sum() == 0:
        return torch.full_like(counts, 1 / len(counts))
    return (counts + k) / (counts.sum() + k * len(counts))


def test_add_k_right():
    assert ch01.check_add_k(good_add_k, quiet=True)
    assert ch01.check_add_k(lambda c, k: good_add_k(c, k).tolist(), quiet=True)  # a list is fine


@pytest.mark.parametrize("wrong, words", [
    (lambda c, k: (c + k) / (c.sum() + k), "N + k*V"),
    (lambda c, k: (c + k) / (c.sum() + len(c)), "not N + V"),
    (lambda c, k: c / c.sum(), "did not add k"),
    (lambda c, k: (c + k) / (c.sum() + k * len(c)), "NaN"),  # forgets the unseen-context rule
    (lambda c, k: good_add_k(c, k)[:-1], "one probability per character"),
    (lambda c, k: torch.zeros_like(c) if c.sum() == 0 else good_add_k(c, k), "1/V"),
    (lambda c, k: None, "returns None"),
    (lambda c, k: "abc", "1-D tensor"),
])
def test_add_k_wrong(wrong, words):
    v = ch01.check_add_k(wrong, quiet=True)
    assert not v and words in v.message, v.message


def test_add_k_placeholder_and_exception():
    assert not ch01.check_add_k(None, quiet=True)

    def broken(c, k):
        raise IndexError("oops")

    v = ch01.check_add_k(broken, quiet=True)
    assert not v and "IndexError" in v.message


# -- bigram counts -------------------------------------------------------------------------------
def good_counts(text: str, vocab: CharVocab) -> torch.Tensor:
    ids = torch.tensor(vocab.encode(text))
    V = vocab.vocab_size
    return torch.bincount(ids[:-1] * V + ids[1:], minlength=V * V).reshape(V, V)


def test_bigram_counts_right():
    assert ch01.check_bigram_counts(good_counts, quiet=True)
    assert ch01.check_bigram_counts(lambda t, v: good_counts(t, v).float(), quiet=True)


def wrap_around(text, vocab):
    return good_counts(text + text[0], vocab)


@pytest.mark.parametrize("wrong, words", [
    (lambda t, v: good_counts(t, v).T, "transposed"),
    (wrap_around, "no wrap-around"),
    (lambda t, v: good_counts(t, v)[:-1], "shape"),
    (lambda t, v: good_counts(t, v).tolist(), "torch.Tensor"),
    (lambda t, v: None, "returns None"),
    (lambda t, v: good_counts(t[1:], v), "add up to"),
])
def test_bigram_counts_wrong(wrong, words):
    v = ch01.check_bigram_counts(wrong, quiet=True)
    assert not v and words in v.message, v.message


def test_bigram_counts_same_total_wrong_cells():
    def shuffled(text, vocab):
        t = good_counts(text, vocab)
        return t.flip(0)  # same total, rows swapped

    v = ch01.check_bigram_counts(shuffled, quiet=True)
    assert not v and "some counts are wrong" in v.message
