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
    # an answer of the wrong kind gets a hint saying what was expected, never an exception
    v = check_close("0.5", 0.5, what="p", quiet=True)
    assert not v and "expected a number" in v.message and "str" in v.message
    v = check_close(torch.ones(2), 0.5, what="p", quiet=True)
    assert not v and "single number" in v.message and "(2,)" in v.message


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
    v = check_function(3, cases, what="sq", compare=same, quiet=True)
    assert not v and "expected a function" in v.message and "int" in v.message


def test_check_function_never_crashes_on_junk_results():
    cases = [((2,), 4.0)]
    close = lambda a, b: abs(float(a) - b) < 1e-9  # noqa: E731 - raises for junk
    v = check_function(lambda x: "four", cases, what="square", compare=close, quiet=True)
    assert not v and "cannot be compared" in v.message

    def bad_diagnose(args, got, expected):
        raise KeyError("diagnosis assumed a number")

    v = check_function(lambda x: [4], cases, what="square", compare=lambda a, b: a == b,
                       diagnose=bad_diagnose, quiet=True)
    assert not v and "return a number" in v.message and "list" in v.message
    v = check_function(lambda x: torch.ones(2), cases, what="square",
                       compare=lambda a, b: isinstance(a, float) and a == b, quiet=True)
    assert not v and "return a number" in v.message and "a tensor of shape (2,)" in v.message


def test_helpers_validate_their_own_arguments():
    with pytest.raises(ValueError, match="what"):
        check_close(0.5, 0.5, what="")
    with pytest.raises(TypeError, match="hints"):
        check_close(0.5, 0.5, what="p", hints={0.25: "x"})
    with pytest.raises(TypeError, match="cases"):
        check_function(abs, "abc", what="f", compare=lambda a, b: a == b)
    with pytest.raises(TypeError, match="compare"):
        check_function(abs, [((1,), 1)], what="f", compare=None)
