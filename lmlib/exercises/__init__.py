"""Automatic checkers for the exercises at the end of each chapter.

Each chapter has a module ``lmlib.exercises.chNN`` with functions ``check_<name>(answer)``.
A checker prints ``Correct!`` or a hint that points at the specific mistake, and returns a bool
so that the notebooks (and the unit tests) can assert on the verdict::

    from lmlib.exercises import ch01
    ch01.check_bigram_probability(0.25)   # prints a verdict, returns True or False

Checkers never raise on a wrong answer (a learner's wrong answer is not an error); they do
raise ``TypeError`` when the answer is of a kind the checker cannot judge at all, with a message
that says what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Verdict", "verdict", "correct", "hint", "check_close", "check_equal", "check_function"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``ok`` and the message shown to the learner."""

    ok: bool
    message: str

    def __bool__(self) -> bool:  # lets a notebook write ``assert check_x(...)``
        return self.ok


def verdict(ok: bool, message: str, *, quiet: bool = False) -> Verdict:
    """Print a verdict (unless ``quiet``) and return it."""
    v = Verdict(bool(ok), message)
    if not quiet:
        print(("Correct! " if v.ok else "Not yet. ") + message)
    return v


def correct(message: str = "", *, quiet: bool = False) -> Verdict:
    return verdict(True, message or "Well done.", quiet=quiet)


def hint(message: str, *, quiet: bool = False) -> Verdict:
    return verdict(False, "Hint: " + message, quiet=quiet)


def _as_float(answer: Any, what: str) -> float:
    try:
        import torch

        if isinstance(answer, torch.Tensor):
            if answer.numel() != 1:
                raise TypeError(f"{what}: expected a single number, got a tensor of shape {tuple(answer.shape)}")
            return float(answer.item())
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) and not hasattr(answer, "__float__"):
        raise TypeError(f"{what}: expected a number, got {type(answer).__name__}")
    return float(answer)


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
    when the answer is close to such a value, that specific message is shown.
    """
    if answer is None:
        return hint(f"{what}: replace `None` with your answer.", quiet=quiet)
    x = _as_float(answer, what)
    if x != x:  # NaN
        return hint(f"{what}: your answer is NaN.", quiet=quiet)
    if abs(x - expected) <= max(abs_tol, rel_tol * abs(expected)):
        return correct(f"{what} = {expected:.6g}.", quiet=quiet)
    for value, message in hints or []:
        if abs(x - value) <= max(abs_tol, rel_tol * abs(value)):
            return hint(message, quiet=quiet)
    return hint(f"{what}: {x:.6g} is not right; {default_hint}", quiet=quiet)


def check_equal(answer: Any, expected: Any, *, what: str, hints: dict[Any, str] | None = None,
                default_hint: str = "look again.", quiet: bool = False) -> Verdict:
    """Compare an exact answer (an int, a string, a tuple) with ``expected``."""
    if answer is None:
        return hint(f"{what}: replace `None` with your answer.", quiet=quiet)
    if answer == expected:
        return correct(f"{what} = {expected!r}.", quiet=quiet)
    try:
        if hints and answer in hints:
            return hint(hints[answer], quiet=quiet)
    except TypeError:  # unhashable answer
        pass
    return hint(f"{what}: {answer!r} is not right; {default_hint}", quiet=quiet)


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
    expected)`` may return a specific hint (else a generic one naming the case is shown). An
    exception inside the learner's function becomes a hint, not a crash.
    """
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        raise TypeError(f"{what}: expected a function, got {type(fn).__name__}")
    for i, (args, expected) in enumerate(cases):
        try:
            got = fn(*args)
        except NotImplementedError:
            return hint(f"{what}: the function still raises NotImplementedError.", quiet=quiet)
        except Exception as exc:  # a learner's bug is feedback, not a crash
            return hint(f"{what}: calling it on test case {i} raised {type(exc).__name__}: {exc}", quiet=quiet)
        try:
            ok = compare(got, expected)
        except Exception as exc:
            return hint(f"{what}: test case {i} returned something that cannot be compared ({exc}).", quiet=quiet)
        if not ok:
            specific = diagnose(args, got, expected) if diagnose else None
            return hint(specific or f"{what}: wrong result on test case {i}.", quiet=quiet)
    return correct(f"{what} passes all {len(cases)} test cases.", quiet=quiet)
