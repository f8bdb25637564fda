"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is ONE ``.safetensors`` file:

* tensors (safetensors): the model's ``state_dict`` (``model.<name>``), the optimiser's
  per-parameter state (``optim.<param index>.<name>``, e.g. AdamW's ``exp_avg``,
  ``exp_avg_sq`` and ``step``), and the random-number-generator states as byte tensors
  (``rng.torch``, ``rng.generator``, ``rng.cuda.<i>``);
* everything else as JSON in the file's metadata header under the key ``"lmlib"``: format
  version, step, the optimiser's ``param_groups`` (learning rate, betas, weight decay...), Python's
  and NumPy's RNG states, tied-parameter aliases, and a free-form ``extra`` dict (the trainer
  stores the :class:`~lmlib.training.History` and the ``TrainConfig`` there).

Writing is atomic: the file is written to a temporary name in the same folder, flushed to disk and
then renamed over the target with ``os.replace``, so a crash never leaves a half-written
checkpoint under the real name. Loading checks everything before touching the model: a truncated
or corrupt file, a checkpoint of another model (missing, unexpected or mis-shaped tensors) or of
another optimiser raises a ``ValueError`` that names the problem; nothing is loaded partially.

Tied parameters (the GPT's token embedding and output layer share one matrix) are stored once;
the aliases are recorded and restored.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lmlib.validation import check_bool, check_int
from lmlib.validation import check_instance, check_module, check_path, check_tensor_dict
from lmlib.weights import check_state_dict

__all__ = ["CheckpointState", "save_checkpoint", "load_checkpoint", "read_checkpoint",
           "state_dict_for_saving", "atomic_save_tensors"]

FORMAT = "lmlib-checkpoint"
VERSION = 1


@dataclass
class CheckpointState:
    """What :func:`load_checkpoint` restored besides the tensors: the step and the ``extra`` dict."""

    step: int
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def state_dict_for_saving(module: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The module's ``state_dict`` with shared tensors stored once.

    Returns ``(tensors, aliases)``: ``tensors`` maps names to contiguous CPU tensors, ``aliases``
    maps the name of every further copy of a shared tensor to the name that is stored.
    """
    check_module("module", module, who="state_dict_for_saving")
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in module.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype) \
            if t.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        tensors[name] = t.detach().to("cpu").contiguous().clone()
    return tensors, aliases


def atomic_save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically (temporary file in the same folder + ``os.replace``)."""
    from safetensors.torch import save_file

    path = check_path("path", path, who="atomic_save_tensors")
    check_tensor_dict("tensors", tensors, who="atomic_save_tensors")
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError(f"atomic_save_tensors: metadata must map str to str, got {metadata!r:.80}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def _rng_bytes(state: torch.Tensor) -> torch.Tensor:
    return state.detach().to("cpu", torch.uint8).clone()


def _jsonable_numpy_state() -> list:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _python_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


# --------------------------------------------------------------------------------------------
# Save
# --------------------------------------------------------------------------------------------

def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    step: int = 0,
    generator: torch.Generator | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint of ``model`` (+ ``optimizer``, RNG states, ``generator``) to ``path``.

    ``extra`` must be JSON-serialisable. Returns the path written.
    """
    path = check_path("path", path, who="save_checkpoint")
    check_module("model", model, who="save_checkpoint")
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer", nullable=True, who="save_checkpoint")
    step = check_int("step", step, min=0, who="save_checkpoint")
    check_instance("generator", generator, torch.Generator, "a torch.Generator", nullable=True, who="save_checkpoint")
    check_instance("extra", extra, dict, "a dict", nullable=True, who="save_checkpoint")
    tensors: dict[str, torch.Tensor] = {}
    model_tensors, aliases = state_dict_for_saving(model)
    tensors.update({"model." + k: v for k, v in model_tensors.items()})

    optim_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, pstate in sd["state"].items():
            for name, value in pstate.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{idx}.{name}"] = value.detach().to("cpu").contiguous().clone()
                else:
                    scalars.setdefault(str(idx), {})[name] = value
        optim_meta = {"class": type(optimizer).__name__, "param_groups": sd["param_groups"],
                      "scalars": scalars}

    tensors["rng.torch"] = _rng_bytes(torch.get_rng_state())
    if torch.cuda.is_available():  # pragma: no cover - no GPU in the course's CI
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = _rng_bytes(s)
    if generator is not None:
        tensors["rng.generator"] = _rng_bytes(generator.get_state())

    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "model_class": type(model).__name__,
        "aliases": aliases,
        "optimizer": optim_meta,
        "rng_python": _python_state_to_json(random.getstate()),
        "rng_numpy": _jsonable_numpy_state(),
        "extra": extra or {},
    }
    try:
        header = json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint 'extra' must be JSON-serialisable: {exc}") from None
    atomic_save_tensors(path, tensors, metadata={"lmlib": header})
    return Path(path)


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------

# The metadata fields every checkpoint has, and the JSON types they must have.
_META_FIELDS: dict[str, tuple[type, ...]] = {
    "format": (str,), "version": (int,), "step": (int,), "model_class": (str,), "aliases": (dict,),
    "optimizer": (dict, type(None)), "rng_python": (list,), "rng_numpy": (list,), "extra": (dict,),
}


def _check_meta(path: Path, meta: Any) -> dict[str, Any]:
    """Every metadata field present, of its JSON type, and a supported format and version."""
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint {path}: the 'lmlib' metadata must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION or isinstance(meta.get("version"), bool):
        raise ValueError(f"{path}: unsupported checkpoint format {meta.get('format')!r} "
                         f"version {meta.get('version')!r} (expected {FORMAT!r} version {VERSION})")
    missing = [k for k in _META_FIELDS if k not in meta]
    if missing:
        raise ValueError(f"checkpoint {path}: the metadata lacks the field(s) {missing}")
    for k, types in _META_FIELDS.items():
        if not isinstance(meta[k], types) or isinstance(meta[k], bool):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"checkpoint {path}: metadata field {k!r} must be {want}, got "
                             f"{type(meta[k]).__name__} {meta[k]!r:.60}")
    if meta["step"] < 0:
        raise ValueError(f"checkpoint {path}: metadata field 'step' must be >= 0, got {meta['step']}")
    if not all(isinstance(a, str) and isinstance(t, str) for a, t in meta["aliases"].items()):
        raise ValueError(f"checkpoint {path}: metadata field 'aliases' must map names to names")
    return meta


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint file fully: ``(tensors, meta)``. Raises ``ValueError`` for a missing,
    truncated, corrupt or foreign file."""
    from safetensors import safe_open

    path = check_path("path", path, who="read_checkpoint")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get("lmlib")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"checkpoint {path} is truncated or corrupt and cannot be read "
                         f"({type(exc).__name__}: {exc})") from None
    if header is None:
        raise ValueError(f"{path} is a safetensors file but not an lmlib checkpoint (no 'lmlib' metadata)")
    try:
        meta = json.loads(header)
    except json.JSONDecodeError as exc:
        raise ValueError(f"checkpoint {path} has a corrupt metadata header: {exc}") from None
    return tensors, _check_meta(path, meta)


def _check_model(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor],
                 aliases: dict[str, str]) -> dict[str, torch.Tensor]:
    expected = model.state_dict()
    saved = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    for alias, target in aliases.items():
        if target not in saved:
            raise ValueError(f"checkpoint {path}: alias {alias!r} points to missing tensor {target!r}")
        saved[alias] = saved[target]
    where = f"checkpoint {path} ({type(model).__name__})"
    check_state_dict({k: tuple(v.shape) for k, v in expected.items()},
                     {k: tuple(v.shape) for k, v in saved.items()}, where=where)
    bad = sorted(f"{k} (file {v.dtype}, model {expected[k].dtype})" for k, v in saved.items()
                 if v.dtype != expected[k].dtype)
    if bad:
        raise ValueError(f"{where}: weights do not match the model; wrong dtypes: {bad}")
    return saved


def _check_group_values(path: Path, saved: dict, current: dict, i: int) -> None:
    """A saved parameter group has the current group's settings, each of a compatible type."""
    if not isinstance(saved, dict) or not isinstance(saved.get("params"), list) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in saved["params"]):
        raise ValueError(f"checkpoint {path}: optimiser parameter group {i} must be an object with a "
                         "'params' list of parameter indices")
    if set(saved) != set(current):
        raise ValueError(f"checkpoint {path}: optimiser parameter group {i} has the settings {sorted(saved)}, "
                         f"the optimiser {sorted(current)}")
    for k, now in current.items():
        v = saved[k]
        if now is None:
            ok = True  # e.g. AdamW's "differentiable"/"fused" flags: None or a bool
        elif isinstance(now, bool):
            ok = isinstance(v, bool)
        elif isinstance(now, (int, float)):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        elif isinstance(now, (tuple, list)):
            ok = isinstance(v, list) and len(v) == len(now) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        else:
            ok = True
        if not ok:
            raise ValueError(f"checkpoint {path}: optimiser setting {k!r} of parameter group {i} is {v!r:.60}, "
                             f"not a value like {now!r:.60}")


def _check_optimizer(path: Path, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                     om: Any) -> dict[str, Any]:
    """The optimiser state of the checkpoint, checked against ``optimizer``; nothing is modified."""
    if om is None:
        raise ValueError(f"checkpoint {path} holds no optimiser state, but an optimiser was given")
    if not isinstance(om.get("class"), str) or not isinstance(om.get("param_groups"), list) \
            or not isinstance(om.get("scalars", {}), dict):
        raise ValueError(f"checkpoint {path}: corrupt optimiser metadata (needs 'class', a 'param_groups' "
                         "list and a 'scalars' object)")
    if om["class"] != type(optimizer).__name__:
        raise ValueError(f"checkpoint {path} holds {om['class']} state, not {type(optimizer).__name__}")
    current = optimizer.state_dict()
    for i, (a, b) in enumerate(zip(om["param_groups"], current["param_groups"])):
        _check_group_values(path, a, b, i)
    if len(om["param_groups"]) != len(current["param_groups"]) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(om["param_groups"], current["param_groups"])):
        raise ValueError(f"checkpoint {path}: the optimiser's parameter groups do not match "
                         f"(saved sizes {[len(g['params']) for g in om['param_groups']]}, "
                         f"current {[len(g['params']) for g in current['param_groups']]})")
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = (k.split(".", 2) + ["", ""])[:3]
            if not idx.isdigit() or not name:
                raise ValueError(f"checkpoint {path}: malformed optimiser tensor name {k!r}")
            state.setdefault(int(idx), {})[name] = v
    for idx, scalars in om.get("scalars", {}).items():
        if not idx.isdigit() or not isinstance(scalars, dict):
            raise ValueError(f"checkpoint {path}: malformed optimiser scalars for parameter {idx!r}")
        state.setdefault(int(idx), {}).update(scalars)
    params = dict(zip((i for g in current["param_groups"] for i in g["params"]),
                      (p for g in optimizer.param_groups for p in g["params"])))
    for idx, pstate in state.items():
        if idx not in params:
            raise ValueError(f"checkpoint {path}: optimiser state for unknown parameter index {idx}")
        for name, v in pstate.items():
            if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != params[idx].shape:
                raise ValueError(f"checkpoint {path}: optimiser state {name!r} of parameter {idx} has "
                                 f"shape {tuple(v.shape)}, the parameter {tuple(params[idx].shape)}")
            if isinstance(v, torch.Tensor) and not v.is_floating_point():
                raise ValueError(f"checkpoint {path}: optimiser state {name!r} of parameter {idx} has "
                                 f"dtype {v.dtype}, not a floating point dtype")
    groups = [dict(g) for g in om["param_groups"]]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def _check_rng_state(path: Path, tensors: dict[str, torch.Tensor], key: str, like: torch.Tensor) -> None:
    t = tensors.get(key)
    if t is None:
        raise ValueError(f"checkpoint {path} lacks the random-number-generator state {key!r}")
    if t.dtype != torch.uint8 or t.shape != like.shape:
        raise ValueError(f"checkpoint {path}: the random-number-generator state {key!r} has dtype {t.dtype} "
                         f"and shape {tuple(t.shape)}, expected uint8 of shape {tuple(like.shape)}")
    try:
        torch.Generator().set_state(t)  # a scratch generator: checks the state's contents
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"checkpoint {path}: the random-number-generator state {key!r} is corrupt ({exc})") from None


def _python_numpy_states(path: Path, meta: dict[str, Any]) -> tuple[tuple, tuple]:
    """Python's and NumPy's RNG states from the metadata, checked on scratch generators."""
    try:
        version, internal, gauss = meta["rng_python"]
        py = (version, tuple(internal), gauss)
        random.Random().setstate(py)
        name, keys, pos, has_gauss, cached = meta["rng_numpy"]
        npy = (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)
        np.random.RandomState().set_state(npy)
    except (TypeError, ValueError, OverflowError, IndexError, KeyError) as exc:
        raise ValueError(f"checkpoint {path}: corrupt Python/NumPy random-number-generator state "
                         f"in the metadata ({type(exc).__name__}: {exc})") from None
    return py, npy


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    generator: torch.Generator | None = None,
    restore_rng: bool = True,
    check_extra: Callable[[dict[str, Any]], None] | None = None,
) -> CheckpointState:
    """Restore ``model`` (and ``optimizer``, the global RNG states, ``generator``) from ``path``.

    Everything is validated before anything is modified: the file, every metadata field, the
    tensors' names, shapes and dtypes, the optimiser's groups and state, the RNG states, and
    ``check_extra(extra)`` when given (a function that raises ``ValueError`` to refuse the
    checkpoint, e.g. one trained with another configuration). A failed load leaves the model,
    the optimiser, the generator and the global RNGs exactly as they were. Returns the step and
    ``extra`` dict.
    """
    path = check_path("path", path, who="load_checkpoint")
    check_module("model", model, who="load_checkpoint")
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer", nullable=True, who="load_checkpoint")
    check_instance("generator", generator, torch.Generator, "a torch.Generator", nullable=True, who="load_checkpoint")
    restore_rng = check_bool("restore_rng", restore_rng, who="load_checkpoint")
    if check_extra is not None and not callable(check_extra):
        raise TypeError(f"load_checkpoint: check_extra must be a function or None, got {type(check_extra).__name__}")
    tensors, meta = read_checkpoint(path)
    model_state = _check_model(path, model, tensors, meta["aliases"])
    optim_state = _check_optimizer(path, optimizer, tensors, meta["optimizer"]) if optimizer is not None else None
    if generator is not None:
        _check_rng_state(path, tensors, "rng.generator", generator.get_state())
    if restore_rng:
        _check_rng_state(path, tensors, "rng.torch", torch.get_rng_state())
        py_state, np_state = _python_numpy_states(path, meta)
        if torch.cuda.is_available():  # pragma: no cover - no GPU in the course's CI
            for k in (t for t in tensors if t.startswith("rng.cuda.")):
                i = k[len("rng.cuda."):]
                if not i.isdigit() or int(i) >= torch.cuda.device_count() or tensors[k].dtype != torch.uint8 \
                        or tensors[k].shape != torch.cuda.get_rng_state(int(i)).shape:
                    raise ValueError(f"checkpoint {path}: the CUDA random-number-generator state {k!r} does not fit "
                                     "this machine's devices")
    if check_extra is not None:
        check_extra(meta["extra"])

    # Everything checked: now modify.
    model.load_state_dict(model_state, strict=True)
    if optimizer is not None:
        optimizer.load_state_dict(optim_state)
    if generator is not None:
        generator.set_state(tensors["rng.generator"])
    if restore_rng:
        torch.set_rng_state(tensors["rng.torch"])
        if torch.cuda.is_available():  # pragma: no cover
            cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
            if cuda:
                torch.cuda.set_rng_state_all(cuda)
        random.setstate(py_state)
        np.random.set_state(np_state)
    return CheckpointState(step=meta["step"], extra=meta["extra"])
