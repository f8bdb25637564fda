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
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

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

    path = Path(path)
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
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
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
        "step": int(step),
        "model_class": type(model).__name__,
        "aliases": aliases,
        "optimizer": optim_meta,
        "rng_python": _python_state_to_json(random.getstate()),
        "rng_numpy": _jsonable_numpy_state(),
        "extra": extra or {},
    }
    try:
        header = json.dumps(meta)
    except TypeError as exc:
        raise TypeError(f"checkpoint 'extra' must be JSON-serialisable: {exc}") from None
    atomic_save_tensors(path, tensors, metadata={"lmlib": header})
    return Path(path)


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------

def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint file fully: ``(tensors, meta)``. Raises ``ValueError`` for a missing,
    truncated, corrupt or foreign file."""
    from safetensors import safe_open

    path = Path(path)
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
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported checkpoint format {meta.get('format')!r} "
                         f"version {meta.get('version')!r} (expected {FORMAT!r} version {VERSION})")
    return tensors, meta


def _check_model(path: Path, model: nn.Module, tensors: dict[str, torch.Tensor],
                 aliases: dict[str, str]) -> dict[str, torch.Tensor]:
    expected = model.state_dict()
    saved = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    for alias, target in aliases.items():
        if target not in saved:
            raise ValueError(f"checkpoint {path}: alias {alias!r} points to missing tensor {target!r}")
        saved[alias] = saved[target]
    check_state_dict({k: tuple(v.shape) for k, v in expected.items()},
                     {k: tuple(v.shape) for k, v in saved.items()},
                     where=f"checkpoint {path} ({type(model).__name__})")
    return saved


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    generator: torch.Generator | None = None,
    restore_rng: bool = True,
) -> CheckpointState:
    """Restore ``model`` (and ``optimizer``, the global RNG states, ``generator``) from ``path``.

    Everything is validated before anything is modified. Returns the step and ``extra`` dict.
    """
    path = Path(path)
    tensors, meta = read_checkpoint(path)
    model_state = _check_model(path, model, tensors, meta.get("aliases", {}))

    optim_state = None
    if optimizer is not None:
        om = meta.get("optimizer")
        if om is None:
            raise ValueError(f"checkpoint {path} holds no optimiser state, but an optimiser was given")
        if om["class"] != type(optimizer).__name__:
            raise ValueError(f"checkpoint {path} holds {om['class']} state, not {type(optimizer).__name__}")
        current = optimizer.state_dict()
        if len(om["param_groups"]) != len(current["param_groups"]) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(om["param_groups"], current["param_groups"])):
            raise ValueError(f"checkpoint {path}: the optimiser's parameter groups do not match "
                             f"(saved sizes {[len(g['params']) for g in om['param_groups']]}, "
                             f"current {[len(g['params']) for g in current['param_groups']]})")
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v
        for idx, scalars in om.get("scalars", {}).items():
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
        optim_state = {"state": state, "param_groups": om["param_groups"]}
    if generator is not None and "rng.generator" not in tensors:
        raise ValueError(f"checkpoint {path} holds no data-generator state")

    # Everything checked: now modify.
    model.load_state_dict(model_state, strict=True)
    if optimizer is not None:
        for g in optim_state["param_groups"]:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        optimizer.load_state_dict(optim_state)
    if generator is not None:
        generator.set_state(tensors["rng.generator"])
    if restore_rng:
        torch.set_rng_state(tensors["rng.torch"])
        if torch.cuda.is_available():  # pragma: no cover
            cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
            if cuda:
                torch.cuda.set_rng_state_all(cuda)
        version, internal, gauss = meta["rng_python"]
        random.setstate((version, tuple(internal), gauss))
        name, keys, pos, has_gauss, cached = meta["rng_numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    return CheckpointState(step=int(meta["step"]), extra=meta.get("extra", {}))
