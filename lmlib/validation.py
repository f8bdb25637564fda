"""Argument checks shared by every module of :mod:`lmlib`.

A public function validates its arguments with one line per argument at the top, using these
helpers, so that the body that :func:`lmlib.display.show_source` shows a reader is the algorithm.
Every helper raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong
value), and the message starts with the argument's name, optionally prefixed by the caller::

    check_int("top_k", 0, min=1, who="generate")
    # ValueError: generate: top_k must be an int >= 1, got 0

Rules the helpers enforce everywhere:

- an int argument never accepts a float (``1.7`` is not silently ``1``) or a bool;
- a float argument never accepts NaN or infinity unless ``finite=False`` is asked for;
- a sequence argument never accepts a ``str`` (which would be split into characters);
- a tensor argument is checked for kind (floating point, integer, bool), rank and sizes before any
  arithmetic, so a wrong shape never surfaces as a raw matmul error deep inside.

Helpers return the validated value (converted to a plain ``int``/``float`` where that is safe), so
that a caller can write ``n = check_int("n", n, min=1)``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "check_int",
    "check_float",
    "check_bool",
    "check_str",
    "check_choice",
    "check_sequence",
    "check_tensor",
    "check_finite",
    "check_ids",
    "check_mask",
    "check_device",
    "check_path",
    "check_module",
    "check_tensor_dict",
    "check_instance",
]


def _prefix(who: str | None) -> str:
    return f"{who}: " if who else ""


def _bound_text(min: Any, max: Any, min_open: bool = False, max_open: bool = False) -> str:
    parts = []
    if min is not None:
        parts.append(f"{'>' if min_open else '>='} {min}")
    if max is not None:
        parts.append(f"{'<' if max_open else '<='} {max}")
    return " and ".join(parts)


def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None,
              who: str | None = None) -> int:
    """``value`` as an ``int``; rejects bools, floats (even ``2.0``), strings and ``None``.

    NumPy integers and integer tensors with one element are accepted and converted.
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{_prefix(who)}{name} must be an int, got a tensor of dtype {value.dtype} "
                            f"and shape {tuple(value.shape)}")
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_prefix(who)}{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        raise ValueError(f"{_prefix(who)}{name} must be an int {_bound_text(min, max)}, got {value}")
    return value


def check_float(name: str, value: Any, *, min: float | None = None, max: float | None = None,
                min_open: bool = False, max_open: bool = False, finite: bool = True,
                who: str | None = None) -> float:
    """``value`` as a ``float``: an int or float (not a bool, str or ``None``), finite unless
    ``finite=False``, and inside ``[min, max]`` (``min_open``/``max_open`` exclude the bounds).
    NaN is always rejected."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{_prefix(who)}{name} must be a number, got a tensor of dtype {value.dtype} "
                            f"and shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(who)}{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{_prefix(who)}{name} must be a number, got NaN")
    if finite and math.isinf(value):
        raise ValueError(f"{_prefix(who)}{name} must be finite, got {value}")
    low_bad = min is not None and (value <= min if min_open else value < min)
    high_bad = max is not None and (value >= max if max_open else value > max)
    if low_bad or high_bad:
        raise ValueError(f"{_prefix(who)}{name} must be {_bound_text(min, max, min_open, max_open)}, got {value}")
    return value


def check_bool(name: str, value: Any, *, who: str | None = None) -> bool:
    """``value`` must be ``True`` or ``False`` (not 0/1, not a string such as ``"false"``)."""
    if not isinstance(value, bool):
        raise TypeError(f"{_prefix(who)}{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_str(name: str, value: Any, *, nonempty: bool = False, who: str | None = None) -> str:
    """``value`` must be a ``str`` (non-empty if ``nonempty``)."""
    if not isinstance(value, str):
        raise TypeError(f"{_prefix(who)}{name} must be a str, got {type(value).__name__} {value!r}")
    if nonempty and not value:
        raise ValueError(f"{_prefix(who)}{name} must be a non-empty str")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any], *, who: str | None = None) -> Any:
    """``value`` must be one of ``choices`` (compared with ``==``; a bool never matches an int)."""
    choices = list(choices)
    for c in choices:
        if type(value) is type(c) and value == c:
            return value
    raise ValueError(f"{_prefix(who)}{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def check_sequence(name: str, value: Any, *, of: type | tuple[type, ...] | None = None,
                   nonempty: bool = False, who: str | None = None) -> list:
    """``value`` as a list: any sequence or iterable except ``str``/``bytes`` (which would otherwise
    be split into characters) and mappings. ``of`` checks every element's type."""
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"{_prefix(who)}{name} must be a list, not a {type(value).__name__} "
                        f"(a string would be split into its characters); got {value!r}")
    if isinstance(value, (Mapping, torch.Tensor)) or not isinstance(value, (Sequence, Iterable)):
        raise TypeError(f"{_prefix(who)}{name} must be a list, got {type(value).__name__}")
    items = list(value)
    if nonempty and not items:
        raise ValueError(f"{_prefix(who)}{name} must not be empty")
    if of is not None:
        for i, item in enumerate(items):
            bad = not isinstance(item, of) or (isinstance(item, bool) and of in (int, (int,)))
            if bad:
                want = of.__name__ if isinstance(of, type) else " or ".join(t.__name__ for t in of)
                raise TypeError(f"{_prefix(who)}{name}[{i}] must be a {want}, got {type(item).__name__} {item!r}")
    return items


_KINDS = {
    "float": (lambda t: t.is_floating_point(), "floating point"),
    "int": (lambda t: not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool, "an integer dtype"),
    "bool": (lambda t: t.dtype == torch.bool, "bool"),
}


def check_tensor(name: str, x: Any, *, dims: int | Sequence[int] | None = None,
                 dtype: str | torch.dtype | Sequence[str | torch.dtype] | None = None,
                 sizes: Mapping[int, int] | None = None, nonempty: bool = False,
                 who: str | None = None) -> torch.Tensor:
    """``x`` must be a ``torch.Tensor`` with the given rank(s), kind of dtype and sizes.

    - ``dims``: the allowed number(s) of dimensions, e.g. ``2`` or ``(2, 3)``.
    - ``dtype``: ``"float"``, ``"int"``, ``"bool"``, a ``torch.dtype``, or a tuple of those.
    - ``sizes``: ``{dim: size}`` for dimensions whose size is fixed (negative dims count from the end).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{_prefix(who)}{name} must be a torch.Tensor, got {type(x).__name__}")
    if dims is not None:
        allowed = (dims,) if isinstance(dims, int) else tuple(dims)
        if x.dim() not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{_prefix(who)}{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    if dtype is not None:
        wanted = (dtype,) if isinstance(dtype, (str, torch.dtype)) else tuple(dtype)
        ok = any(_KINDS[d][0](x) if isinstance(d, str) else x.dtype == d for d in wanted)
        if not ok:
            want = " or ".join(_KINDS[d][1] if isinstance(d, str) else str(d) for d in wanted)
            raise TypeError(f"{_prefix(who)}{name} must be {want}, got dtype {x.dtype}")
    for dim, size in (sizes or {}).items():
        if not -x.dim() <= dim < x.dim():
            raise ValueError(f"{_prefix(who)}{name} must have a dimension {dim} of size {size}, "
                             f"got shape {tuple(x.shape)}")
        if x.shape[dim] != size:
            raise ValueError(f"{_prefix(who)}{name} must have size {size} in dimension {dim}, "
                             f"got shape {tuple(x.shape)}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{_prefix(who)}{name} must not be empty, got shape {tuple(x.shape)}")
    return x


def check_finite(name: str, x: Any, *, allow_neg_inf: bool = False, who: str | None = None):
    """Raise ``ValueError`` if the tensor or number ``x`` holds NaN or infinity.

    ``allow_neg_inf`` admits ``-inf`` (a masked score) but still rejects NaN and ``+inf``.
    """
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex():
            bad = torch.isnan(x) | torch.isposinf(x) if allow_neg_inf else ~torch.isfinite(x)
            if bool(bad.any()):
                what = "NaN or +inf" if allow_neg_inf else "NaN or infinity"
                raise ValueError(f"{_prefix(who)}{name} contains {what} ({int(bad.sum())} entries)")
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        v = float(x)
        if math.isnan(v) or (math.isinf(v) and not (allow_neg_inf and v < 0)):
            raise ValueError(f"{_prefix(who)}{name} must be finite, got {v}")
        return x
    raise TypeError(f"{_prefix(who)}{name} must be a tensor or a number, got {type(x).__name__}")


def check_ids(name: str, ids: Any, vocab_size: int, *, dims: int | Sequence[int] | None = None,
              allow: Iterable[int] = (), who: str | None = None) -> torch.Tensor:
    """``ids`` must be an integer tensor of token ids in ``0..vocab_size-1`` (values in ``allow``,
    such as the ignore index ``-100``, are also admitted)."""
    check_tensor(name, ids, dims=dims, dtype="int", who=who)
    if ids.numel():
        ok = (ids >= 0) & (ids < vocab_size)
        for a in allow:
            ok |= ids == a
        if not bool(ok.all()):
            bad = ids[~ok]
            raise ValueError(f"{_prefix(who)}{name} must hold ids in 0..{vocab_size - 1}"
                             f"{' (or ' + ', '.join(map(str, allow)) + ')' if allow else ''}; "
                             f"got {int(bad[0])} ({bad.numel()} out of range)")
    return ids


def check_mask(name: str, mask: Any, shape: Sequence[int], *, who: str | None = None) -> torch.Tensor:
    """A padding mask: a bool or 0/1 integer tensor of exactly ``shape`` (1 = a real token)."""
    check_tensor(name, mask, dtype=("bool", "int"), who=who)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{_prefix(who)}{name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{_prefix(who)}{name} must hold only 0 and 1 (or be bool)")
    return mask


def check_device(name: str, device: Any, *, who: str | None = None) -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine ("cpu", "cuda", "cuda:1", "mps")."""
    if device is None or isinstance(device, bool) or not isinstance(device, (str, torch.device)):
        raise TypeError(f"{_prefix(who)}{name} must be a device such as 'cpu' or 'cuda', "
                        f"got {type(device).__name__} {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{_prefix(who)}{name} must be a device such as 'cpu', 'cuda' or 'cuda:0', "
                         f"got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{_prefix(who)}{name} is {device!r}, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{_prefix(who)}{name} is {device!r}, but only {torch.cuda.device_count()} "
                             "CUDA device(s) exist")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"{_prefix(who)}{name} is {device!r}, but MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ValueError(f"{_prefix(who)}{name} must be 'cpu', 'cuda' or 'mps', got {device!r}")
    return dev


def check_path(name: str, value: Any, *, who: str | None = None) -> Path:
    """``value`` (a non-empty ``str`` or an ``os.PathLike``) as a ``Path``; every file loader and
    saver of lmlib uses this check."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{_prefix(who)}{name} must be a path (str or os.PathLike), "
                        f"got {type(value).__name__} {value!r}")
    if isinstance(value, str) and not value:
        raise ValueError(f"{_prefix(who)}{name} must be a non-empty path")
    return Path(value)


def check_module(name: str, value: Any, *, who: str | None = None) -> nn.Module:
    """``value`` must be a ``torch.nn.Module``."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{_prefix(who)}{name} must be an nn.Module, got {type(value).__name__}")
    return value


def check_tensor_dict(name: str, value: Any, *, who: str | None = None) -> dict:
    """``value`` must be a ``dict`` mapping ``str`` names to tensors (a state dict)."""
    if not isinstance(value, dict):
        raise TypeError(f"{_prefix(who)}{name} must be a dict of name -> tensor, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise TypeError(f"{_prefix(who)}{name} must map str names to tensors, "
                            f"got {type(k).__name__} -> {type(v).__name__} for {k!r}")
    return value


def check_instance(name: str, value: Any, kind: type | tuple[type, ...], what: str, *, nullable: bool = False,
                   who: str | None = None) -> Any:
    """``value`` must be an instance of ``kind`` (described to the reader as ``what``, e.g.
    ``"a torch.Generator"``), or ``None`` when ``nullable``."""
    if (value is None and nullable) or isinstance(value, kind):
        return value
    raise TypeError(f"{_prefix(who)}{name} must be {what}{' or None' if nullable else ''}, "
                    f"got {type(value).__name__}")
