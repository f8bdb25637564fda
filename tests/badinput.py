"""A small framework for the bad-input suite (``tests/test_bad_inputs_*.py``).

Each public function or class of ``lmlib`` gets one :class:`Fn` spec: a factory for a *valid* call
and a description of each argument's constraint (:class:`Int`, :class:`Float`, :class:`Tensor`,
...). From the constraints the suite generates the bad inputs for every argument -- wrong rank,
wrong dtype, NaN/inf, negative, zero, float-for-int, str-for-list, ``None``, out-of-range ids,
empty input -- and asserts for each one that

1. the call raises ``TypeError`` or ``ValueError`` (never a raw ``IndexError``, ``KeyError``,
   ``RuntimeError`` from a matmul, ... and never silently returns),
2. the message names the argument (the spec may list aliases a message may use instead),
3. if the spec gives a ``snapshot``, the state it captures is unchanged after the error.

Hand-written :class:`Case` entries cover what a constraint cannot say (two arguments that must
agree, a corrupt file). ``tests/test_bad_inputs_coverage.py`` fails when a name in any module's
``__all__`` has no spec and no documented exemption, so a new public function cannot be added
without its bad-input cases.

A test file declares ``SPECS = [...]`` (and optionally ``EXEMPT = {"module.name": "reason"}``) and
ends with ``test_bad_input = make_test(SPECS)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch

_MISSING = object()


# ---------------------------------------------------------------------------------------------
# Argument constraints: each yields (label, bad value, expected exception types)
# ---------------------------------------------------------------------------------------------

ERRORS = (TypeError, ValueError)


class Arg:
    """Base class: ``bad(valid_value)`` yields ``(label, bad_value)`` pairs."""

    nullable = False  # None is a legitimate value (e.g. an optional argument)
    skip: tuple[str, ...] = ()

    def bad(self, valid: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    def cases(self, valid: Any):
        for label, value in self.bad(valid):
            if label not in self.skip:
                yield label, value
        if not self.nullable and "none" not in self.skip:
            yield "none", None


@dataclass
class Int(Arg):
    min: int | None = None
    max: int | None = None
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        yield "float", 1.5
        yield "integral_float", float(valid if isinstance(valid, int) else 2)
        yield "bool", True
        yield "str", "3"
        if self.min is not None:
            yield f"below_min({self.min})", self.min - 1
            if self.min >= 1:
                yield "negative", -3
        if self.max is not None:
            yield f"above_max({self.max})", self.max + 1


@dataclass
class Float(Arg):
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        yield "nan", math.nan
        yield "inf", math.inf
        yield "str", "0.5"
        yield "bool", True
        if self.min is not None:
            yield "below_min", self.min - 1.0
            if self.min_open:
                yield "at_min", self.min
        if self.max is not None:
            yield "above_max", self.max + 1.0
            if self.max_open:
                yield "at_max", self.max


@dataclass
class Bool(Arg):
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        yield "int", 1
        yield "str", "false"


@dataclass
class Str(Arg):
    choices: tuple[str, ...] | None = None
    nonempty: bool = False
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        yield "int", 3
        yield "bytes", b"x"
        if self.choices is not None:
            yield "unknown_choice", "no-such-choice"
        if self.nonempty:
            yield "empty", ""


@dataclass
class Seq(Arg):
    """A list/tuple argument: a str must not be split into characters."""

    nonempty: bool = False
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        yield "str_for_list", "abc"
        yield "int", 3
        if self.nonempty:
            yield "empty", type(valid)() if isinstance(valid, (list, tuple)) else []


@dataclass
class Tensor(Arg):
    """A floating-point (``dtype="float"``), integer (``"int"``) or bool tensor argument."""

    dtype: str = "float"
    finite: bool = True
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        assert isinstance(valid, torch.Tensor), "Tensor() describes a tensor argument"
        yield "list_for_tensor", valid.tolist()
        yield "extra_dim", valid.unsqueeze(0).unsqueeze(0)
        if valid.dim() >= 1:
            yield "too_few_dims", valid.reshape(-1)[0]
        if self.dtype == "float":
            yield "int_dtype", valid.round().long()
            if self.finite and valid.numel():
                nan = valid.clone()
                nan.view(-1)[0] = math.nan
                yield "nan", nan
                inf = valid.clone()
                inf.view(-1)[-1] = math.inf
                yield "inf", inf
        elif self.dtype == "int":
            yield "float_dtype", valid.float() + 0.5
        elif self.dtype == "bool":
            yield "float_dtype", valid.float() + 0.5


@dataclass
class Ids(Arg):
    """An integer tensor of token ids below ``vocab_size``."""

    vocab_size: int = 0
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        assert isinstance(valid, torch.Tensor)
        yield "float_ids", valid.float() + 0.5
        yield "integral_float_ids", valid.float()
        yield "list_for_tensor", valid.tolist()
        big = valid.clone()
        big.view(-1)[0] = self.vocab_size
        yield "id_out_of_range", big
        neg = valid.clone()
        neg.view(-1)[-1] = -1
        yield "negative_id", neg
        yield "extra_dim", valid.unsqueeze(0).unsqueeze(0)


@dataclass
class Device(Arg):
    nullable: bool = False
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        yield "unknown_device", "gpu"
        yield "int", 3


@dataclass
class Custom(Arg):
    """Explicit bad values for an argument no other constraint describes: ``[(label, value), ...]``."""

    values: list = field(default_factory=list)
    nullable: bool = True  # only the listed values are tried
    skip: tuple[str, ...] = ()

    def bad(self, valid):
        yield from self.values


# ---------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------

@dataclass
class Case:
    """A hand-written bad call: ``call()`` must raise ``error`` with ``match`` in its message."""

    label: str
    call: Callable[[], Any]
    match: str | list[str]
    error: type | tuple[type, ...] = ERRORS
    snapshot: Callable[[], Any] | None = None  # captured before and after; must be equal


@dataclass
class Fn:
    """One public function, class (its constructor) or method, and how to call it validly.

    - ``target``: ``"module.Name"`` or ``"module.Class.method"`` (covers that name of ``__all__``).
    - ``valid()``: a dict of keyword arguments for a call that succeeds (fresh objects per call).
    - ``call(**kwargs)``: how to make the call; default: the target itself.
    - ``args``: ``{argument: constraint}``; ``aliases``: other words a message may use instead.
    - ``snapshot(kwargs)``: state that a failed call must leave unchanged (e.g. a model's tensors).
    """

    target: str
    valid: Callable[[], dict] = dict
    args: dict[str, Arg] = field(default_factory=dict)
    call: Callable[..., Any] | None = None
    aliases: dict[str, list[str]] = field(default_factory=dict)
    snapshot: Callable[[dict], Any] | None = None
    cases: list[Case] = field(default_factory=list)
    check_valid: bool = True  # also assert that the valid call itself succeeds


def resolve(target: str) -> Any:
    import importlib

    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):  # bitwise, NaN included
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        a, b = a.detach().cpu().contiguous(), b.detach().cpu().contiguous()
        return a.numel() == 0 or torch.equal(a.view(-1).view(torch.uint8), b.view(-1).view(torch.uint8))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _returns_nan(out: Any) -> bool:
    if isinstance(out, torch.Tensor) and out.is_floating_point():
        return bool(torch.isnan(out).any())
    if isinstance(out, float):
        return math.isnan(out)
    if isinstance(out, (list, tuple)):
        return any(_returns_nan(o) for o in out)
    return False


def _default_call(spec: Fn) -> Callable[..., Any]:
    return resolve(spec.target)


def expand(specs: list[Fn]) -> list:
    """All generated and hand-written cases as pytest params."""
    params = []
    for spec in specs:
        if spec.check_valid:
            params.append(pytest.param(spec, None, None, id=f"{spec.target}[valid]"))
        for arg, constraint in spec.args.items():
            probe = spec.valid()
            valid_value = probe.get(arg, _MISSING)
            if valid_value is _MISSING:
                raise AssertionError(f"{spec.target}: valid() has no value for {arg!r}")
            for label, _ in constraint.cases(valid_value):
                params.append(pytest.param(spec, arg, label, id=f"{spec.target}[{arg}={label}]"))
        for case in spec.cases:
            params.append(pytest.param(spec, case, None, id=f"{spec.target}[{case.label}]"))
    return params


def run_param(spec: Fn, arg: Any, label: str | None) -> None:
    call = spec.call or _default_call(spec)
    if arg is None:  # the valid call must succeed (so the bad cases test what they claim to)
        out = call(**spec.valid())
        assert not _returns_nan(out), f"{spec.target}: the valid call returned NaN"
        return
    if isinstance(arg, Case):
        before = arg.snapshot() if arg.snapshot else None
        with pytest.raises(arg.error) as info:
            arg.call()
        words = [arg.match] if isinstance(arg.match, str) else arg.match
        assert any(w in str(info.value) for w in words), \
            f"{spec.target}[{arg.label}]: message {str(info.value)!r} does not mention any of {words}"
        if arg.snapshot:
            assert _same(before, arg.snapshot()), f"{spec.target}[{arg.label}]: state changed before the error"
        return
    kwargs = spec.valid()
    bad = dict(spec.args[arg].cases(kwargs[arg]))[label]
    kwargs[arg] = bad
    before = spec.snapshot(kwargs) if spec.snapshot else None
    try:
        out = call(**kwargs)
    except ERRORS as e:
        words = [arg, *spec.aliases.get(arg, [])]
        assert any(w in str(e) for w in words), \
            f"{spec.target}: {arg}={label}: message {str(e)!r} does not name {words}"
    except Exception as e:  # an opaque error: the reader cannot tell which argument was wrong
        pytest.fail(f"{spec.target}: {arg}={label} raised {type(e).__name__}: {e}")
    else:
        nan = " (and returned NaN)" if _returns_nan(out) else ""
        pytest.fail(f"{spec.target}: {arg}={label} ({bad!r:.60}) was accepted silently{nan}")
    if spec.snapshot:
        assert _same(before, spec.snapshot(kwargs)), f"{spec.target}: {arg}={label}: state changed before the error"


def make_test(specs: list[Fn]):
    """The parametrised test function for a file's ``SPECS``."""

    @pytest.mark.parametrize(("spec", "arg", "label"), expand(specs))
    def test_bad_input(spec, arg, label):
        run_param(spec, arg, label)

    return test_bad_input
