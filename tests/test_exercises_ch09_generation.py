"""Tests of the text-generation checker."""


import torch

from lmlib.exercises import ch09


def right(logits, prev, p):
    seen = logits.gather(1, prev)
    return logits.scatter(1, prev, torch.where(seen > 0, seen / p, seen * p))


def right_loop(logits, prev, p):
    out = logits.clone()
    for b in range(len(prev)):
        for t in set(prev[b].tolist()):
            out[b, t] = out[b, t] / p if out[b, t] > 0 else out[b, t] * p
    return out


def test_right_answers_pass():
    assert ch09.check_repetition_penalty(right, quiet=True)
    assert ch09.check_repetition_penalty(right_loop, quiet=True)


def _msg(fn):
    v = ch09.check_repetition_penalty(fn, quiet=True)
    assert not v
    return v.message


def test_divide_negative_logits():
    def f(lg, prev, p):
        return lg.scatter(1, prev, lg.gather(1, prev) / p)
    assert "multiply a negative one" in _msg(f)


def test_per_occurrence():
    def f(lg, prev, p):
        out = lg.clone()
        for b in range(len(prev)):
            for t in prev[b].tolist():
                out[b, t] = out[b, t] / p if out[b, t] > 0 else out[b, t] * p
        return out
    assert "once per occurrence" in _msg(f)


def test_union_of_rows():
    def f(lg, prev, p):
        ids = torch.tensor(sorted(set(prev.reshape(-1).tolist())))
        return right(lg, ids.expand(lg.shape[0], -1), p)
    assert "OTHER rows" in _msg(f)


def test_reversed_rule():
    def f(lg, prev, p):
        seen = lg.gather(1, prev)
        return lg.scatter(1, prev, torch.where(seen > 0, seen * p, seen / p))
    assert "reversed" in _msg(f)


def test_subtract():
    def f(lg, prev, p):
        return lg.scatter(1, prev, lg.gather(1, prev) - p)
    assert "subtract" in _msg(f)


def test_unseen_tokens():
    def f(lg, prev, p):
        mask = torch.ones_like(lg, dtype=torch.bool).scatter(1, prev, False)
        return torch.where(mask & (lg > 0), lg / p, torch.where(mask, lg * p, lg))
    assert "NOT appeared" in _msg(f)


def test_in_place_and_none():
    def inplace_none(lg, prev, p):
        lg.copy_(right(lg, prev, p))
    assert "in place and returned None" in _msg(inplace_none)

    def inplace_return(lg, prev, p):
        lg.copy_(right(lg, prev, p))
        return lg.clone()
    assert "modified the logits it was given" in _msg(inplace_return)


def test_unchanged_shape_raise_and_junk():
    assert "unchanged" in _msg(lambda lg, prev, p: lg.clone())
    assert "expected shape" in _msg(lambda lg, prev, p: lg[0])
    assert "raised ZeroDivisionError" in _msg(lambda lg, prev, p: 1 / 0)
    assert "return a tensor" in _msg(lambda lg, prev, p: [1, 2])
    assert "define your function" in _msg(None)
    assert "expected a function" in _msg(3)
    assert "floating-point" in _msg(lambda lg, prev, p: lg.long())
