"""A pytest plugin beside nbval: printed floats are compared with a tolerance, everything else exactly.

nbval re-executes every notebook and compares each cell's fresh output with the stored one. A
float printed by a cell depends on how the CPU's kernels round (AVX-512, AVX2 or scalar code paths
sum in different orders), so a digit-exact comparison passes only on the machine that stored the
outputs. This plugin keeps nbval's comparison and changes only what "equal" means for text:

- the text is split into number tokens and the text between them; the text between numbers must be
  identical, and so must the count of numbers;
- a token without a decimal point or exponent (a count, a shape, an id, a year) must be identical;
- a float token matches when ``|a - b| <= max(atol, rtol * max(|a|, |b|), unit)``, where ``unit`` is
  one unit in the last printed digit of the coarser of the two (a true difference however small can
  move a rounded value across a rounding boundary by one unit). Defaults: ``rtol = 1e-4``,
  ``atol = 0``.

A cell whose printed numbers come out of training or sampling can vary more than rounding explains;
it declares its tolerance in its metadata, ``{"nbval": {"rtol": 0.02, "reason": "..."}}`` or
``{"nbval": {"atol": 1e-5, "reason": "..."}}`` (a printed round-off error, compared with the bound
the cell asserts), with the measurement that justifies it, and the notebook asserts the claim
itself in code with a tolerance measured across seeds or kernels. Load the plugin with ``-p nbval_tolerance`` and
``tests/`` on ``sys.path`` (the Makefile does this).
"""

from __future__ import annotations

import math
import re

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 0.0

# A number not glued to a word or to another number: "0.25", "-3", "1.2e-06", "124,439,808"
# (three ints), but not the "1" in "ch01", nor any part of the version "2.13.0".
NUMBER = re.compile(r"(?<![\w.])([-+]?(?:\d+\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![\w]|\.\d)")


def _is_float(token: str) -> bool:
    return "." in token or "e" in token or "E" in token


def _unit(token: str) -> float:
    """One unit in the last printed digit: 0.3356 -> 1e-4, 1.3e-06 -> 1e-7."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def numbers_match(a: str, b: str, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
    """Whether two printed number tokens agree under the rule above."""
    if not (_is_float(a) and _is_float(b)):
        return a == b
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y) or math.isinf(x) or math.isinf(y):
        return a == b
    allowed = max(atol, rtol * max(abs(x), abs(y)), max(_unit(a), _unit(b)) * (1 + 1e-9))
    return abs(x - y) <= allowed


def texts_match(a: str, b: str, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
    """Whether two outputs agree: identical text between numbers, numbers within tolerance."""
    if a == b:
        return True
    pa, pb = NUMBER.split(a), NUMBER.split(b)
    if len(pa) != len(pb):
        return False
    for i, (x, y) in enumerate(zip(pa, pb)):
        if i % 2 == 0:          # text between numbers
            if x != y:
                return False
        elif not numbers_match(x, y, rtol, atol):
            return False
    return True


def first_difference(a: str, b: str, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> str:
    """A one-line explanation of where ``a`` and ``b`` differ beyond tolerance."""
    pa, pb = NUMBER.split(a), NUMBER.split(b)
    if len(pa) != len(pb):
        return "the outputs contain a different count of numbers"
    for i, (x, y) in enumerate(zip(pa, pb)):
        if i % 2 == 0 and x != y:
            return f"the text differs: {x[:60]!r} vs {y[:60]!r}"
        if i % 2 == 1 and not numbers_match(x, y, rtol, atol):
            kind = "float" if _is_float(x) and _is_float(y) else "integer (compared exactly)"
            return f"the {kind} {x} (stored) vs {y} (fresh) differs beyond rtol={rtol:g}, atol={atol:g}"
    return "no difference"


class TolerantText(str):
    """A sanitized output string whose ``==`` is :func:`texts_match` with its cell's tolerance."""

    rtol = DEFAULT_RTOL
    atol = DEFAULT_ATOL

    def __eq__(self, other):
        if isinstance(other, str):
            return texts_match(str(self), str(other), self.rtol, self.atol)
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = str.__hash__


def cell_tolerance(metadata) -> tuple[float, float]:
    """``(rtol, atol)`` of a cell: its ``metadata["nbval"]`` entries, else the defaults.

    A cell that widens the tolerance must say why (``"reason"``: what was measured), so that a
    loose comparison is a documented decision, not a way to silence a failing cell.
    """
    spec = (metadata or {}).get("nbval", {}) or {}
    unknown = set(spec) - {"rtol", "atol", "reason"}
    if unknown:
        raise ValueError(f"unknown nbval tolerance keys {sorted(unknown)}; use 'rtol', 'atol' and 'reason'")
    if ({"rtol", "atol"} & set(spec)) and not str(spec.get("reason", "")).strip():
        raise ValueError("a cell that sets an nbval tolerance must give its 'reason' (what was measured)")
    rtol, atol = float(spec.get("rtol", DEFAULT_RTOL)), float(spec.get("atol", DEFAULT_ATOL))
    if not (0 <= rtol < 1 and 0 <= atol and math.isfinite(atol)):
        raise ValueError(f"nbval tolerance out of range: rtol={rtol}, atol={atol}")
    return rtol, atol


def pytest_configure(config):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval is not installed: nothing to adapt
        return
    if getattr(IPyNbCell, "_tolerant", False):
        return
    plain_sanitize = IPyNbCell.sanitize
    plain_compare = IPyNbCell.compare_outputs

    def sanitize(self, s):
        s = plain_sanitize(self, s)
        if not isinstance(s, str):
            return s
        text = TolerantText(s)
        text.rtol, text.atol = cell_tolerance(self.cell.get("metadata"))
        return text

    def compare_outputs(self, test, ref, skip_compare=None):
        ok = plain_compare(self, test, ref, skip_compare)
        if not ok:
            rtol, atol = cell_tolerance(self.cell.get("metadata"))
            self.comparison_traceback.append(
                f"(numbers compared with rtol={rtol:g}, atol={atol:g} and one unit of the last printed "
                "digit; text and integers exactly; see tests/nbval_tolerance.py)")
        return ok

    IPyNbCell.sanitize = sanitize
    IPyNbCell.compare_outputs = compare_outputs
    IPyNbCell._tolerant = True

