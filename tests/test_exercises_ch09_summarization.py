"""Tests of the summarization checker."""

import sys
from collections import Counter
from pathlib import Path

import pytest

from lmlib.exercises import ch09


def right(c, r):
    overlap = sum((Counter(c) & Counter(r)).values())
    p = overlap / len(c) if c else 0.0
    rr = overlap / len(r) if r else 0.0
    return p, rr, (2 * p * rr / (p + rr) if p + rr else 0.0)


def right_loops(c, r):
    left = list(r)
    hits = 0
    for w in c:
        if w in left:
            left.remove(w)
            hits += 1
    p, rr = (hits / len(c) if c else 0), (hits / len(r) if r else 0)
    return [p, rr, 0 if hits == 0 else 2 / (1 / p + 1 / rr)]


def test_right_answers_pass():
    assert ch09.check_rouge1(right, quiet=True)
    assert ch09.check_rouge1(right_loops, quiet=True)


def test_reference_is_rouge_score_and_hand_counts():
    # by hand: candidate enter hamlet hamlet and | reference enter hamlet and horatio and
    # clipped overlap 3 -> P 3/4, R 3/5, F = 2 * 0.75 * 0.6 / 1.35 = 2/3
    assert ch09._rouge_reference(*ch09.ROUGE1_CASES[0]) == pytest.approx((0.75, 0.6, 2 / 3))
    for c, r in ch09.ROUGE1_CASES:
        assert ch09._rouge_reference(c, r) == pytest.approx(right(c, r))


def clipped(c, r):
    return sum((Counter(c) & Counter(r)).values())


def prf(o, nc, nr):
    p, r = (o / nc if nc else 0.0), (o / nr if nr else 0.0)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


WRONG = [
    (lambda c, r: prf(len(set(c) & set(r)), len(set(c)), len(set(r))), "word TYPES"),
    (lambda c, r: prf(len(set(c) & set(r)), len(c), len(r)), "set intersection"),
    (lambda c, r: prf(sum(w in r for w in c), len(c), len(r)), "not clipped"),
    (lambda c, r: prf(sum(w in c for w in r), len(c), len(r)), "reference tokens found"),
    (lambda c, r: (lambda p, q, f: (q, p, f))(*right(c, r)), "swapped"),
    (lambda c, r: (lambda p, q, f: (p, q, (p + q) / 2))(*right(c, r)), "harmonic mean"),
    (lambda c, r: (lambda p, q, f: (p, q, p * q))(*right(c, r)), "not P · R"),
    (lambda c, r: (clipped(c, r) / len(c), clipped(c, r) / len(r), 0.0), "divides by zero"),
]


@pytest.mark.parametrize("fn,words", WRONG)
def test_each_mistake_gets_its_hint(fn, words):
    v = ch09.check_rouge1(fn, quiet=True)
    assert not v
    assert words in v.message


@pytest.mark.parametrize("answer,words", [
    (None, "define your function"), (3, "expected a function"), (lambda c, r: None, "returns None"),
    (lambda c, r: 0.5, "three finite numbers"), (lambda c, r: (1, 2), "three finite numbers"),
    (lambda c, r: 1 / 0 if c else (0, 0, 0), "divides by zero"),
    (lambda c, r: [].pop(), "IndexError"), (lambda c, r: (0.1, 0.2, 0.3), "rouge-score gives"),
])
def test_junk_answers(answer, words):
    v = ch09.check_rouge1(answer, quiet=True)
    assert not v and words in v.message


def test_stub_raises_not_implemented():
    def stub(c, r):
        raise NotImplementedError
    v = ch09.check_rouge1(stub, quiet=True)
    assert not v and "NotImplementedError" in v.message


def test_never_crashes_on_the_course_junk():
    # the battery of tests/test_checkers_never_crash.py, run on this checker before it is merged
    sys.path.insert(0, str(Path(__file__).resolve().parents[0]))
    sys.path.insert(0, "/work/main/tests")
    import test_checkers_never_crash as T
    for label, junk in {**T.JUNK_VALUES, **T.JUNK_RETURNS}.items():
        v = ch09.check_rouge1(junk, quiet=True)
        T._assert_hint(v, label)
