"""Tests of the exercise-checking mechanism shared by every chapter."""

import pytest
import torch

from lmlib.exercises import check_close, check_equal, check_function


def test_check_close_right_wrong_and_known_mistake(capsys):
    assert check_close(0.5, 0.5, what="p")
    assert "Correct!" in capsys.readouterr().out
    v = check_close(0.25, 0.5, what="p", hints=[(0.25, "you squared it")])
    assert not v and "you squared it" in v.message
    assert "Not yet. Hint: you squared it" in capsys.readouterr().out
    v = check_close(0.9, 0.5, what="p")
    assert not v and "0.9 is not right" in v.message
    assert not check_close(None, 0.5, what="p")
    assert not check_close(float("nan"), 0.5, what="p")
    assert check_close(torch.tensor(0.5), 0.5, what="p")
    with pytest.raises(TypeError):
        check_close("0.5", 0.5, what="p")
    with pytest.raises(TypeError):
        check_close(torch.ones(2), 0.5, what="p")


def test_check_equal_with_hints():
    assert check_equal(3, 3, what="n", quiet=True)
    v = check_equal(4, 3, what="n", hints={4: "off by one"}, quiet=True)
    assert not v and "off by one" in v.message
    assert not check_equal([1], 3, what="n", hints={4: "x"}, quiet=True)  # unhashable answer


def test_check_function_reports_failures_and_exceptions():
    cases = [((2,), 4), ((3,), 9)]
    same = lambda a, b: a == b  # noqa: E731
    assert check_function(lambda x: x * x, cases, what="square", compare=same, quiet=True)
    v = check_function(lambda x: x + x, cases, what="square", compare=same, quiet=True,
                       diagnose=lambda args, got, exp: "you doubled" if got == 2 * args[0] else None)
    # 2 + 2 == 4 passes case 0; case 1 fails and the diagnosis names the mistake
    assert not v and "you doubled" in v.message

    def boom(x):
        raise ZeroDivisionError("oops")

    v = check_function(boom, cases, what="square", compare=same, quiet=True)
    assert not v and "ZeroDivisionError" in v.message

    def todo(x):
        raise NotImplementedError

    assert "NotImplementedError" in check_function(todo, cases, what="sq", compare=same, quiet=True).message
    assert not check_function(None, cases, what="sq", compare=same, quiet=True)
    with pytest.raises(TypeError):
        check_function(3, cases, what="sq", compare=same)
