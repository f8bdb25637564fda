"""Tests of the Chapter 9 decoding checker."""

import math
import sys

import pytest
import torch

from lmlib.exercises import ch09


def right(scores, log_probs, eos_id):
    K, V = log_probs.shape
    cand = scores[:, None] + log_probs
    cand[:, eos_id] = -math.inf
    best, flat = cand.flatten().topk(K)
    return flat // V, flat % V, best


def keeps_eos(scores, log_probs, eos_id):
    K, V = log_probs.shape
    best, flat = (scores[:, None] + log_probs).flatten().topk(K)
    return flat // V, flat % V, best


def probabilities(scores, log_probs, eos_id):
    p, t, s = right(scores, log_probs, eos_id)
    return p, t, s.exp()


def no_beam_scores(scores, log_probs, eos_id):
    K, V = log_probs.shape
    cand = log_probs.clone()
    cand[:, eos_id] = -math.inf
    best, flat = cand.flatten().topk(K)
    return flat // V, flat % V, best


def adds_probabilities(scores, log_probs, eos_id):
    K, V = log_probs.shape
    cand = scores.exp()[:, None] + log_probs.exp()
    cand[:, eos_id] = -math.inf
    best, flat = cand.flatten().topk(K)
    return flat // V, flat % V, best.log()


def best_child_per_beam(scores, log_probs, eos_id):
    cand = scores[:, None] + log_probs
    cand[:, eos_id] = -math.inf
    best, tok = cand.max(-1)
    order = best.argsort(descending=True)
    return order, tok[order], best[order]


def divides_by_k(scores, log_probs, eos_id):
    K, V = log_probs.shape
    cand = scores[:, None] + log_probs
    cand[:, eos_id] = -math.inf
    best, flat = cand.flatten().topk(K)
    return flat // K, flat % V, best


def swapped(scores, log_probs, eos_id):
    p, t, s = right(scores, log_probs, eos_id)
    return t, p, s


def unsorted(scores, log_probs, eos_id):
    p, t, s = right(scores, log_probs, eos_id)
    return p.flip(0), t.flip(0), s.flip(0)


def as_lists(scores, log_probs, eos_id):
    return tuple(x.tolist() for x in right(scores, log_probs, eos_id))


def test_right_answers_pass(capsys):
    assert ch09.check_beam_step(right)
    assert ch09.check_beam_step(as_lists)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(("fn", "words"), [
    (keeps_eos, "finished hypothesis"),
    (probabilities, "are probabilities"),
    (no_beam_scores, "PLUS"),
    (adds_probabilities, "added probabilities"),
    (best_child_per_beam, "jointly"),
    (divides_by_k, "divide by V"),
    (swapped, "swapped"),
    (unsorted, "best first"),
])
def test_typical_mistakes_get_their_hint(fn, words):
    v = ch09.check_beam_step(fn, quiet=True)
    assert not v and words in v.message, v.message


@pytest.mark.parametrize(("answer", "words"), [
    (None, "define your function"),
    (3, "expected a function"),
    (lambda s, lp, e: None, "return a tuple"),
    (lambda s, lp, e: (s, s), "return a tuple"),
    (lambda s, lp, e: (s[:1], s[:1], s[:1]), "shape"),
    (lambda s, lp, e: 1 / 0, "ZeroDivisionError"),
    (lambda s, lp, e: ("a", "b", "c"), "parents"),
])
def test_junk_answers_get_a_hint_and_never_raise(answer, words):
    v = ch09.check_beam_step(answer, quiet=True)
    assert not v and words in v.message, v.message


def test_cases_leave_the_inputs_alone():
    def mutating(scores, log_probs, eos_id):
        log_probs[:, eos_id] = -math.inf      # in place: the checker passes copies
        return right(scores, log_probs, eos_id)

    assert ch09.check_beam_step(mutating, quiet=True)
    assert ch09.check_beam_step(right, quiet=True)
