"""Every exercise checker gives a verdict, never an exception, whatever the learner passes.

The checkers are found automatically (every ``check_*`` function of every ``lmlib.exercises.chNN``
module), so a new checker is covered without editing this file. Each gets a battery of junk
answers -- of the wrong kind, of the right kind but broken, and (for checkers of a function)
functions that raise or return junk -- and must return a falsy :class:`Verdict` with a hint.
"""

import importlib
import inspect
import math
import pkgutil

import pytest
import torch

import lmlib.exercises
from lmlib.exercises import Verdict


def _checkers():
    out = []
    for info in pkgutil.iter_modules(lmlib.exercises.__path__):
        if not (info.name.startswith("ch") and info.name[2:].isdigit()):
            continue
        module = importlib.import_module(f"lmlib.exercises.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("check_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
                out.append(pytest.param(obj, id=f"{info.name}.{name}"))
    return out


CHECKERS = _checkers()


class BadFloat:
    """An object that pretends to be a number but cannot be converted."""

    def __float__(self):
        raise RuntimeError("no float for you")

    def __int__(self):
        raise RuntimeError("no int for you")

    def __index__(self):
        raise RuntimeError("no index for you")


class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr")

    def __eq__(self, other):
        raise RuntimeError("no eq")

    __hash__ = object.__hash__


def _raises(*args, **kwargs):
    raise ValueError("learner bug 42")


def _gen():
    yield 1
    yield 2


JUNK_VALUES = {
    "none": None,
    "str": "abc",
    "numeric_str": "123",
    "int": 3,
    "float_nan": math.nan,
    "float_inf": math.inf,
    "bool": True,
    "int_tensor": torch.tensor([1, 2]),
    "float_tensor_wrong_shape": torch.zeros(7, 3),
    "empty_tensor": torch.zeros(0),
    "list": [1, 2],
    "nested_list": [[1, 2], [3]],
    "dict": {"a": 1},
    "generator": (i for i in range(3)),
    "bad_float": BadFloat(),
    "bad_repr": BadRepr(),
    "function_raises": _raises,
    "complex": 1 + 2j,
}

JUNK_RETURNS = {
    "returns_none": lambda *a, **k: None,
    "returns_str": lambda *a, **k: "abc",
    "returns_int": lambda *a, **k: 7,
    "returns_nan": lambda *a, **k: math.nan,
    "returns_int_tensor": lambda *a, **k: torch.tensor([1, 2]),
    "returns_wrong_shape": lambda *a, **k: torch.zeros(7, 3),
    "returns_list": lambda *a, **k: [1, 2],
    "returns_dict": lambda *a, **k: {"a": 1},
    "returns_generator": lambda *a, **k: _gen(),
    "returns_bad_float": lambda *a, **k: BadFloat(),
    "returns_bad_repr": lambda *a, **k: BadRepr(),
    "returns_tuple_of_junk": lambda *a, **k: ("x", None, 3),
    "wrong_arity": lambda: 0,
    "raises": _raises,
}


def _answer_params(checker):
    """The positional parameters of a checker: the learner's answer(s)."""
    return [p for p in inspect.signature(checker).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _takes_function(checker) -> bool:
    return [p.name for p in _answer_params(checker)] == ["fn"]


def _assert_hint(v, label):
    assert isinstance(v, Verdict), f"{label}: returned {type(v).__name__}, not a Verdict"
    assert not v, f"{label}: junk was judged correct: {v.message}"
    assert v.message.startswith("Hint: ") and len(v.message) > len("Hint: ") + 5, f"{label}: {v.message!r}"


def test_every_chapter_has_checkers():
    assert len(CHECKERS) >= 28
    chapters = {p.id.split(".")[0] for p in CHECKERS}
    assert {f"ch0{i}" for i in range(1, 8)} <= chapters, chapters
    for p in CHECKERS:
        checker = p.values[0]
        assert "quiet" in inspect.signature(checker).parameters, f"{checker.__name__} has no quiet= keyword"


@pytest.mark.parametrize("checker", CHECKERS)
@pytest.mark.parametrize("label", list(JUNK_VALUES))
def test_junk_answer_gets_a_hint(checker, label):
    n = len(_answer_params(checker))
    answers = [JUNK_VALUES[label]] * n
    if label == "generator":
        answers = [(i for i in range(3)) for _ in range(n)]
    v = checker(*answers, quiet=True)
    _assert_hint(v, f"{checker.__name__}({label})")
    if label == "function_raises" and _takes_function(checker):
        assert "ValueError" in v.message and "learner bug 42" in v.message, v.message


@pytest.mark.parametrize("checker", [p for p in CHECKERS if _takes_function(p.values[0])])
@pytest.mark.parametrize("label", list(JUNK_RETURNS))
def test_function_returning_junk_gets_a_hint(checker, label):
    v = checker(JUNK_RETURNS[label], quiet=True)
    _assert_hint(v, f"{checker.__name__}({label})")
    if label == "raises":
        assert "ValueError" in v.message and "learner bug 42" in v.message, v.message
    if label == "wrong_arity":
        assert "TypeError" in v.message, v.message


@pytest.mark.parametrize("checker", CHECKERS)
def test_no_output_when_quiet_and_one_line_otherwise(checker, capsys):
    n = len(_answer_params(checker))
    checker(*["abc"] * n, quiet=True)
    assert capsys.readouterr().out == ""
    checker(*["abc"] * n)
    assert capsys.readouterr().out.startswith("Not yet. Hint: ")
