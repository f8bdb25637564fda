"""Automatic checkers for the exercises at the end of each chapter.

Each chapter has a module ``lmlib.exercises.chNN`` with functions ``check_<name>(answer)``.
A checker prints ``Correct!`` or a hint that points at the specific mistake, and returns a bool
so that the notebooks (and the unit tests) can assert on the verdict::

    from lmlib.exercises import ch01
    ch01.check_bigram_probability(0.25)   # prints a verdict, returns True or False

Checkers never raise: a learner's wrong answer is feedback, not an error. An answer of the wrong
kind (a string where a number is expected, a list where a function is expected, a function that
raises or returns something of the wrong type) gets a falsy verdict whose hint says what kind of
answer was expected; an exception raised by a learner's function is shown with its type and
message. (Only the checker helpers below validate their own, course-author-given arguments.)
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import torch

from lmlib.validation import check_bool, check_float, check_int, check_sequence, check_str

__all__ = ["Verdict", "verdict", "correct", "hint", "check_close", "check_equal", "check_function",
           "describe", "never_raises"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``ok`` and the message shown to the learner."""

    ok: bool
    message: str

    def __post_init__(self) -> None:
        check_bool("ok", self.ok, who="Verdict")
        check_str("message", self.message, who="Verdict")

    def __bool__(self) -> bool:  # lets a notebook write ``assert check_x(...)``
        return self.ok


def verdict(ok: bool, message: str, *, quiet: bool = False) -> Verdict:
    """Print a verdict (unless ``quiet``) and return it."""
    check_bool("ok", ok, who="verdict")
    check_str("message", message, who="verdict")
    check_bool("quiet", quiet, who="verdict")
    v = Verdict(bool(ok), message)
    if not quiet:
        print(("Correct! " if v.ok else "Not yet. ") + message)
    return v


def correct(message: str = "", *, quiet: bool = False) -> Verdict:
    return verdict(True, check_str("message", message, who="correct") or "Well done.", quiet=quiet)


def hint(message: str, *, quiet: bool = False) -> Verdict:
    return verdict(False, "Hint: " + check_str("message", message, who="hint"), quiet=quiet)


def describe(value: Any, limit: int = 60) -> str:
    """A short description of any value for a hint (``"str 'abc'"``, ``"a tensor of shape (2, 3)
    and dtype torch.int64"``); never raises, even for an object whose ``repr`` does."""
    check_int("limit", limit, min=4, who="describe")
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__
        text = "<unprintable>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


def _expected_kind(expected: Any) -> str:
    """What kind of value ``expected`` is, in words ("a number", "a tensor of shape (2, 3)")."""
    if isinstance(expected, torch.Tensor):
        return f"a tensor of shape {tuple(expected.shape)}"
    if isinstance(expected, bool):
        return "True or False"
    if isinstance(expected, numbers.Integral):
        return "an int"
    if isinstance(expected, numbers.Real):
        return "a number"
    if isinstance(expected, (list, tuple)):
        return f"a {type(expected).__name__} of {len(expected)} items"
    return f"a {type(expected).__name__}"


def _is_number(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return x.numel() == 1 and x.dtype != torch.bool and not x.is_complex()
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _wrong_kind(got: Any, expected: Any) -> str | None:
    """A hint when ``got`` is not even the kind of value ``expected`` is, else ``None``."""
    if got is None:
        return "your function returned None; make it return " + _expected_kind(expected) + "."
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"return {_expected_kind(expected)}, not {describe(got)}."
        if got.shape != expected.shape:
            return f"return {_expected_kind(expected)}; yours has shape {tuple(got.shape)}."
        if got.is_floating_point() != expected.is_floating_point() or (got.dtype == torch.bool) != (
                expected.dtype == torch.bool):
            return f"return a tensor of dtype {expected.dtype} (or a similar one), not {got.dtype}."
        return None
    if _is_number(expected) and not _is_number(got):
        return f"return {_expected_kind(expected)}, not {describe(got)}."
    if isinstance(expected, (list, tuple)) and not isinstance(got, (list, tuple, torch.Tensor)):
        return f"return {_expected_kind(expected)}, not {describe(got)}."
    return None


class _NotANumber(Exception):
    pass


def _as_float(answer: Any, what: str) -> float:
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1:
            raise _NotANumber(f"{what}: expected a single number, got a tensor of shape {tuple(answer.shape)}.")
        return float(answer.item())
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) and not hasattr(answer, "__float__"):
        raise _NotANumber(f"{what}: expected a number, got {describe(answer)}.")
    try:
        return float(answer)
    except Exception as exc:  # noqa: BLE001 - an object whose __float__ raises
        raise _NotANumber(f"{what}: expected a number, but float() of your answer raised "
                          f"{type(exc).__name__}: {exc}") from None


def check_close(
    answer: Any,
    expected: float,
    *,
    what: str,
    rel_tol: float = 1e-3,
    abs_tol: float = 1e-6,
    hints: list[tuple[float, str]] | None = None,
    default_hint: str = "recompute it step by step.",
    quiet: bool = False,
) -> Verdict:
    """Compare a numeric answer with ``expected``.

    ``hints`` lists ``(value, message)`` pairs for known wrong answers (typical mistakes):
    when the answer is close to such a value, that specific message is shown. An answer that is
    not a number gets a hint saying so.
    """
    _check_helper_args(expected=expected, what=what, rel_tol=rel_tol, abs_tol=abs_tol, hints=hints,
                       default_hint=default_hint, quiet=quiet, who="check_close")
    if answer is None:
        return hint(f"{what}: replace `None` with your answer.", quiet=quiet)
    try:
        x = _as_float(answer, what)
    except _NotANumber as exc:
        return hint(str(exc), quiet=quiet)
    if x != x:  # NaN
        return hint(f"{what}: your answer is NaN.", quiet=quiet)
    if abs(x - expected) <= max(abs_tol, rel_tol * abs(expected)):
        return correct(f"{what} = {expected:.6g}.", quiet=quiet)
    for value, message in hints or []:
        if abs(x - value) <= max(abs_tol, rel_tol * abs(value)):
            return hint(message, quiet=quiet)
    return hint(f"{what}: {x:.6g} is not right; {default_hint}", quiet=quiet)


def _check_helper_args(*, what: str, quiet: bool, who: str, expected: Any = 0.0, rel_tol: float = 0.0,
                       abs_tol: float = 0.0, hints: Any = None, default_hint: str = "") -> None:
    """The author-given arguments of the helpers (never the learner's answer)."""
    check_float("expected", expected, finite=False, who=who)
    check_str("what", what, nonempty=True, who=who)
    check_float("rel_tol", rel_tol, min=0.0, who=who)
    check_float("abs_tol", abs_tol, min=0.0, who=who)
    for i, pair in enumerate(check_sequence("hints", hints, who=who) if hints is not None else []):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{who}: hints[{i}] must be a (value, message) pair, got {describe(pair)}")
        check_float(f"hints[{i}] value", pair[0], finite=False, who=who)
        check_str(f"hints[{i}] message", pair[1], who=who)
    check_str("default_hint", default_hint, who=who)
    check_bool("quiet", quiet, who=who)


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. a tensor of several elements
        return False


def check_equal(answer: Any, expected: Any, *, what: str, hints: dict[Any, str] | None = None,
                default_hint: str = "look again.", quiet: bool = False) -> Verdict:
    """Compare an exact answer (an int, a string, a tuple) with ``expected``."""
    check_str("what", what, nonempty=True, who="check_equal")
    if hints is not None and not isinstance(hints, dict):
        raise TypeError(f"check_equal: hints must be a dict {{wrong answer: message}}, got {describe(hints)}")
    check_str("default_hint", default_hint, who="check_equal")
    check_bool("quiet", quiet, who="check_equal")
    if answer is None:
        return hint(f"{what}: replace `None` with your answer.", quiet=quiet)
    if _equal(answer, expected):
        return correct(f"{what} = {expected!r}.", quiet=quiet)
    try:
        if hints and answer in hints:
            return hint(hints[answer], quiet=quiet)
    except Exception:  # noqa: BLE001 - an unhashable answer, or one whose == raises
        pass
    wrong_kind = _wrong_kind(answer, expected)
    if wrong_kind is not None:
        return hint(f"{what}: expected {_expected_kind(expected)}, got {describe(answer)}.", quiet=quiet)
    try:
        shown = repr(answer)
    except Exception:  # noqa: BLE001
        shown = describe(answer)
    return hint(f"{what}: {shown} is not right; {default_hint}", quiet=quiet)


def check_function(
    fn: Callable[..., Any] | None,
    cases: list[tuple[tuple, Any]],
    *,
    what: str,
    compare: Callable[[Any, Any], bool],
    diagnose: Callable[[tuple, Any, Any], str | None] | None = None,
    quiet: bool = False,
) -> Verdict:
    """Run a learner's function on ``cases`` ``[(args, expected), ...]``.

    ``compare(got, expected)`` decides each case; on the first failing case ``diagnose(args, got,
    expected)`` may return a specific hint (else a hint about the kind of value returned, or a
    generic one naming the case). An exception inside the learner's function becomes a hint
    naming its type and message, not a crash; so does an answer that is not a function.
    """
    check_str("what", what, nonempty=True, who="check_function")
    cases = check_sequence("cases", cases, nonempty=True, who="check_function")
    for i, case in enumerate(cases):
        if not isinstance(case, (tuple, list)) or len(case) != 2 or not isinstance(case[0], tuple):
            raise TypeError(f"check_function: cases[{i}] must be an (args tuple, expected) pair, got {describe(case)}")
    for name, f in (("compare", compare), ("diagnose", diagnose)):
        if not callable(f) and not (name == "diagnose" and f is None):
            raise TypeError(f"check_function: {name} must be a function, got {describe(f)}")
    check_bool("quiet", quiet, who="check_function")
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself "
                    "(its name, without calling it).", quiet=quiet)
    for i, (args, expected) in enumerate(cases):
        try:
            got = fn(*args)
        except NotImplementedError:
            return hint(f"{what}: the function still raises NotImplementedError.", quiet=quiet)
        except Exception as exc:  # a learner's bug is feedback, not a crash
            return hint(f"{what}: calling it on test case {i} raised {type(exc).__name__}: {exc}", quiet=quiet)
        try:
            ok = bool(compare(got, expected))
        except Exception as exc:  # noqa: BLE001
            return hint(f"{what}: test case {i} returned something that cannot be compared ({exc}).", quiet=quiet)
        if not ok:
            try:
                specific = diagnose(args, got, expected) if diagnose else None
            except Exception:  # noqa: BLE001 - the diagnosis assumed an answer of the right kind
                specific = None
            if specific is None:
                wrong_kind = _wrong_kind(got, expected)
                if wrong_kind is not None:
                    specific = f"{what}: on test case {i} {wrong_kind}"
            return hint(specific or f"{what}: wrong result on test case {i}.", quiet=quiet)
    return correct(f"{what} passes all {len(cases)} test cases.", quiet=quiet)


def never_raises(expects: str) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Decorator for a chapter's ``check_*`` function: an answer that makes the checker's own code
    fail (an answer of a kind it did not foresee) gets a hint saying that ``expects`` was expected,
    with the error, instead of an exception reaching the learner."""
    check_str("expects", expects, nonempty=True, who="never_raises")

    def wrap(checker: Callable[..., Verdict]) -> Callable[..., Verdict]:
        if not callable(checker):
            raise TypeError(f"never_raises decorates a checker function, got {describe(checker)}")
        name = checker.__name__.removeprefix("check_").replace("_", " ")

        @functools.wraps(checker)
        def guarded(*args: Any, **kwargs: Any) -> Verdict:
            quiet = kwargs.get("quiet", False)
            check_bool("quiet", quiet, who=checker.__name__)
            try:
                return checker(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - never let a junk answer crash the notebook
                return hint(f"{name}: expected {expects}; your answer could not be checked "
                            f"({type(exc).__name__}: {exc}).", quiet=quiet)

        return guarded

    return wrap
