"""Saving and loading model weights with ``safetensors`` (never pickle).

A ``.safetensors`` file is a JSON header (names, dtypes, shapes, byte offsets) followed by raw
tensor bytes: loading it cannot run code, unlike ``torch.load`` of a pickle.

* :func:`save_weights` writes every tensor of ``model.state_dict()`` once. Tied weights (two names,
  one tensor, e.g. GPT's ``lm_head.weight`` and ``wte.weight``) are stored under the first name and
  recorded as aliases in the header metadata.
* :func:`load_weights` is strict: it raises a ValueError that lists every missing key, every
  unexpected key and every key whose shape differs, before changing anything in the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from lmlib.validation import check_device, check_module, check_path, check_str, check_tensor_dict

__all__ = ["save_weights", "load_weights", "tied_aliases", "check_state_dict"]

_ALIAS_KEY = "lmlib.aliases"
_RESERVED_METADATA = ("format", _ALIAS_KEY)


def _check_shape_map(name: str, value) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of name -> shape, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or isinstance(v, (str, bytes)) or not isinstance(v, (tuple, list, torch.Size)):
            raise TypeError(f"{name} must map str names to shapes (tuples of ints), got {k!r} -> {v!r}")
    return value


def _check_metadata(name: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(f"{name} must map str to str, got {value!r:.80}")
    reserved = sorted(set(value) & set(_RESERVED_METADATA))
    if reserved:
        raise ValueError(f"{name} must not use the reserved key(s) {reserved} (lmlib writes them)")
    return value


def tied_aliases(state_dict: dict[str, torch.Tensor]) -> dict[str, str]:
    """``{alias: canonical}`` for state-dict entries that are views of the same memory as an earlier entry."""
    check_tensor_dict("state_dict", state_dict, who="tied_aliases")
    seen: dict[tuple, str] = {}
    aliases: dict[str, str] = {}
    for name, t in state_dict.items():
        if t.numel() == 0:
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
    return aliases


def check_state_dict(expected: dict[str, tuple], got: dict[str, tuple], *, where: str) -> None:
    """Compare ``{name: shape}`` maps; ValueError naming missing, unexpected and mis-shaped keys."""
    _check_shape_map("expected", expected), _check_shape_map("got", got), check_str("where", where)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    bad = sorted(f"{k} (file {tuple(got[k])}, model {tuple(expected[k])})"
                 for k in set(expected) & set(got) if tuple(expected[k]) != tuple(got[k]))
    if missing or extra or bad:
        parts = []
        if missing:
            parts.append(f"missing keys: {missing}")
        if extra:
            parts.append(f"unexpected keys: {extra}")
        if bad:
            parts.append(f"wrong shapes: {bad}")
        raise ValueError(f"{where}: weights do not match the model; " + "; ".join(parts))


def save_weights(model: nn.Module, path: str | os.PathLike, *, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` to ``path`` as safetensors (tied tensors stored once). Returns the path."""
    from lmlib.checkpoint import atomic_save_tensors

    check_module("model", model, who="save_weights")
    path = check_path("path", path, who="save_weights")
    metadata = _check_metadata("metadata", metadata)
    sd = model.state_dict()
    aliases = tied_aliases(sd)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items() if k not in aliases}
    meta = {"format": "pt", _ALIAS_KEY: json.dumps(aliases), **metadata}
    atomic_save_tensors(path, tensors, metadata=meta)
    return path


def load_weights(model: nn.Module, path: str | os.PathLike, *, device: str | torch.device | None = None) -> nn.Module:
    """Load a file written by :func:`save_weights` into ``model`` (strict). Returns the model.

    Raises FileNotFoundError for a missing file, ValueError for a file that is not valid
    safetensors or whose keys/shapes do not match the model (naming the keys).
    """
    from safetensors import safe_open

    check_module("model", model, who="load_weights")
    path = check_path("path", path, who="load_weights")
    device = None if device is None else check_device("device", device, who="load_weights")
    if not path.is_file():
        raise FileNotFoundError(f"load_weights: no weights file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise ValueError(f"load_weights: {path} is not a valid safetensors file ({exc})") from None
    own = model.state_dict()
    own_aliases = tied_aliases(own)
    expected = {k: tuple(v.shape) for k, v in own.items() if k not in own_aliases}
    check_state_dict(expected, {k: tuple(v.shape) for k, v in tensors.items()}, where=f"load_weights({path})")
    _check_dtypes(own, tensors, where=f"load_weights({path})")
    # Everything checked: now modify.
    for alias, canonical in own_aliases.items():
        tensors[alias] = tensors[canonical]
    for k, v in tensors.items():
        if v.dtype != own[k].dtype:
            tensors[k] = v.to(own[k].dtype)
    with torch.no_grad():
        model.load_state_dict(tensors, strict=True)
    if device is not None:
        model.to(device)
    return model


def _dtype_kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_floating_point:
        return "floating point"
    return "complex" if dtype.is_complex else "integer"


def _check_dtypes(own: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], *, where: str) -> None:
    """A float tensor may be loaded into a float tensor of another precision (it is converted),
    but never a float into an integer buffer or the other way round."""
    bad = sorted(f"{k} (file {v.dtype}, model {own[k].dtype})" for k, v in tensors.items()
                 if k in own and _dtype_kind(v.dtype) != _dtype_kind(own[k].dtype))
    if bad:
        raise ValueError(f"{where}: weights do not match the model; wrong dtypes: {bad}")
