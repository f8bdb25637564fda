"""A small, reusable training loop for any model whose ``forward`` returns ``(logits, loss)``.

The loop is the one every later chapter uses (the GPT here, the BERT of chapter 6, the fine-tuning
of chapter 7). Its public entry point is::

    train(model, data, config, *, eval_fn=None, history=None, resume_from=None,
          stop_after=None, on_step=None) -> History

``model``
    An ``nn.Module``. A *batch* is passed to it as ``model(*batch)`` when it is a tuple or list
    (e.g. ``(x, y)`` for a language model: ``x, y: (B, T)`` long) and as ``model(**batch)`` when
    it is a dict (e.g. ``input_ids=..., labels=...``). ``forward`` must return ``(logits, loss)``
    with ``loss`` a scalar tensor (the mean loss of the batch).
``data``
    Either a callable ``get_batch(generator) -> batch`` that draws one batch using the
    ``torch.Generator`` the loop owns (its state is saved in checkpoints, so a resumed run draws
    exactly the batches an uninterrupted run would), or an iterable of batches (a list, a
    ``DataLoader``); an iterable is cycled when it runs out, and on resume the batches already
    used are skipped.
``config``
    A :class:`TrainConfig` (optimiser, schedule, clipping, accumulation, evaluation, checkpoints).
``eval_fn``
    ``eval_fn(model) -> float | dict[str, float]``, called every ``config.eval_interval``
    optimiser steps and after the last one, with the model in ``eval()`` mode and gradients off.
    A float is recorded as ``"val_loss"``. :func:`make_lm_eval_fn` builds one for token data.
``history``
    A :class:`History` to append to (a new one by default).
``resume_from``
    A checkpoint path (see :mod:`lmlib.checkpoint`): model, optimiser, step, RNG states, the
    data generator and the history are restored, and training continues from there. On CPU the
    result is bitwise identical to a run that was never interrupted.
``stop_after``
    Stop (as if interrupted) once this many optimiser steps are done, after writing a
    checkpoint when ``config.checkpoint_path`` is set.
``on_step``
    ``on_step(step, history)`` called after every optimiser step (for custom logging).

What one optimiser step does
----------------------------
``grad_accum_steps`` micro-batches are drawn; each loss is divided by ``grad_accum_steps`` before
``backward`` so the accumulated gradient is the gradient of the mean loss over all micro-batches.
When the micro-batches predict different numbers of targets (labels other than -100, as in masked
LM or instruction tuning), each mean loss is weighted by its number of targets instead, so the
step follows the mean over all targets of the step, exactly as one big batch would. A batch with
no target at all (every label -100) raises ``ValueError``: its mean loss would be NaN.
Then the global gradient norm is clipped to ``grad_clip`` (the norm before clipping is recorded
in ``History.grad_norm``, also when ``grad_clip`` is None), the learning rate of the step is set
by :func:`lr_at` (linear warmup then cosine decay to ``min_lr``), and AdamW updates the weights.
Weight decay applies to matrices only (weights of linear layers and embeddings): biases and
LayerNorm gains are not decayed (:func:`param_groups`).

On several processes (inside a ``torch.distributed`` process group, e.g. under ``torchrun``: see
:mod:`lmlib.distributed`) the same call trains with data parallelism. ``data`` then describes the
*global* batch: every rank draws the same batches from the same generator and trains on its
``1/world_size`` slice of each; the model is wrapped in ``DistributedDataParallel``, which
averages the gradients (micro-batches of an accumulated step skip the all-reduce until the last
one, ``no_sync``), the logged loss is all-reduced, :func:`make_lm_eval_fn` splits its batches
between the ranks, and only rank 0 writes checkpoints. The result does not depend on the number
of processes beyond float rounding, so a checkpoint resumes on any number of them. Dropout is
seeded with ``seed + rank``, so ranks drop different units.

With ``autocast_dtype="float16"`` a gradient scaler (``torch.amp.GradScaler``) keeps small
gradients from underflowing: float16 has 5 exponent bits, so a gradient below about ``6e-8``
becomes 0. The loss is multiplied by a large scale (65536 to start) before ``backward``, the
gradients are divided by it again before clipping, and a step whose gradients overflowed to
inf or NaN is skipped while the scale is halved (it doubles again after 2000 good steps). The
scaler's state is saved in checkpoints. bfloat16 has float32's exponent range and needs no
scaler.

Example::

    from lmlib.training import TrainConfig, train, make_lm_eval_fn
    cfg = TrainConfig(max_steps=500, lr=1e-3, warmup_steps=50, eval_interval=100)
    get_batch = lambda g: sample_batch(train_ids, 64, 12, generator=g)
    history = train(model, get_batch, cfg, eval_fn=make_lm_eval_fn(val_ids, 64, 32, n_batches=8))
    history.curves()   # {"train loss": (steps, losses), "val_loss": (steps, losses)}
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from lmlib import distributed
from lmlib.progress import tqdm
from lmlib.validation import check_module, check_path
from lmlib.validation import (check_bool, check_choice, check_device, check_float, check_int, check_sequence,
                              check_str, check_tensor)

__all__ = [
    "TrainConfig",
    "History",
    "train",
    "lr_at",
    "param_groups",
    "make_optimizer",
    "seed_everything",
    "run_batch",
    "evaluate_loss",
    "fixed_lm_batches",
    "sequential_lm_batches",
    "make_lm_eval_fn",
]


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Everything the training loop needs besides the model and the data.

    ``max_steps`` counts optimiser steps; each one sees ``grad_accum_steps`` micro-batches.
    ``min_lr`` defaults to ``lr / 10``. ``autocast_dtype`` (``"bfloat16"``, ``"float16"`` or
    ``None``) runs the forward pass under ``torch.autocast`` (float16 with a gradient scaler, see
    the module docstring); ``compile=True`` wraps the model's forward with ``torch.compile``
    (falling back to eager mode, with a message, when compilation fails).
    ``checkpoint_path`` with ``checkpoint_interval`` writes a checkpoint every that many steps
    and at the end.
    """

    max_steps: int = 1000
    lr: float = 1e-3
    min_lr: float | None = None
    warmup_steps: int = 100
    schedule: str = "cosine"  # "cosine" | "linear" | "constant" (after the warmup)
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    grad_accum_steps: int = 1
    eval_interval: int = 100
    log_interval: int = 1
    seed: int = 0
    device: str = "cpu"
    autocast_dtype: str | None = None
    compile: bool = False
    checkpoint_path: str | None = None
    checkpoint_interval: int | None = None
    progress: bool = True
    desc: str = "training"

    def __post_init__(self) -> None:
        who = "TrainConfig"
        check_int("max_steps", self.max_steps, min=1, who=who)
        check_float("lr", self.lr, min=0.0, min_open=True, who=who)
        if self.min_lr is None:
            self.min_lr = self.lr / 10
        check_float("min_lr", self.min_lr, min=0.0, max=self.lr, who=who)
        check_int("warmup_steps", self.warmup_steps, min=0, who=who)
        check_choice("schedule", self.schedule, ("cosine", "linear", "constant"), who=who)
        check_float("weight_decay", self.weight_decay, min=0.0, who=who)
        betas = check_sequence("betas", self.betas, who=who)  # JSON gives lists
        if len(betas) != 2:
            raise ValueError(f"TrainConfig: betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = tuple(check_float(f"betas[{i}]", b, min=0.0, max=1.0, max_open=True, who=who)
                           for i, b in enumerate(betas))
        check_float("eps", self.eps, min=0.0, min_open=True, who=who)
        if self.grad_clip is not None:
            check_float("grad_clip", self.grad_clip, min=0.0, min_open=True, who=who)
        check_int("grad_accum_steps", self.grad_accum_steps, min=1, who=who)
        check_int("eval_interval", self.eval_interval, min=1, who=who)
        check_int("log_interval", self.log_interval, min=1, who=who)
        check_int("seed", self.seed, min=-2**63, max=2**64 - 1, who=who)
        check_device("device", self.device, who=who)
        check_choice("autocast_dtype", self.autocast_dtype, (None, "bfloat16", "float16"), who=who)
        check_bool("compile", self.compile, who=who)
        if self.checkpoint_path is not None:
            check_path("checkpoint_path", self.checkpoint_path, who=who)
        if self.checkpoint_interval is not None:
            check_int("checkpoint_interval", self.checkpoint_interval, min=1, who=who)
        check_bool("progress", self.progress, who=who)
        check_str("desc", self.desc, who=who)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        if not isinstance(d, Mapping):
            raise TypeError(f"TrainConfig.from_dict: d must be a dict of fields, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; the fields are {sorted(known)}")
        return cls(**dict(d))


# --------------------------------------------------------------------------------------------
# Learning-rate schedule, parameter groups, optimiser, seeding
# --------------------------------------------------------------------------------------------

def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate of optimiser step ``step`` (0-based).

    Linear warmup over the first ``warmup_steps`` steps, ``lr * (step + 1) / warmup_steps``,
    then (for ``schedule="cosine"``) a half cosine from ``lr`` down to ``min_lr`` at the last step:
    ``min_lr + (lr - min_lr) * (1 + cos(pi * progress)) / 2`` with
    ``progress = (step - warmup_steps) / max(1, max_steps - 1 - warmup_steps)`` in [0, 1].
    """
    check_int("step", step, min=0, who="lr_at")
    _check_config(config, who="lr_at")
    w, n = config.warmup_steps, config.max_steps
    if step < w:
        return config.lr * (step + 1) / w
    if config.schedule == "constant":
        return config.lr
    progress = min(1.0, (step - w) / max(1, n - 1 - w))
    if config.schedule == "linear":
        return config.lr + (config.min_lr - config.lr) * progress
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: parameters with 2 or more dimensions (weight matrices, embedding
    tables) are decayed, the others (biases, LayerNorm gains and shifts) are not. Tied
    parameters appear once."""
    check_module("model", model, who="param_groups")
    check_float("weight_decay", weight_decay, min=0.0, who="param_groups")
    decay, no_decay = [], []
    for p in model.parameters():  # .parameters() yields each shared tensor once
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, with the config's betas and eps."""
    check_module("model", model, who="make_optimizer")
    _check_config(config, who="make_optimizer")
    groups = param_groups(model, config.weight_decay)
    if not groups[0]["params"] and not groups[1]["params"]:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=lr_at(0, config), betas=config.betas, eps=config.eps, foreach=True)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (all devices)."""
    check_int("seed", seed, min=-2**63, max=2**64 - 1, who="seed_everything")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------

@dataclass
class History:
    """What happened during training, ready to plot.

    ``steps``/``train_loss``/``lr``/``grad_norm``: one entry per logged optimiser step (1-based
    step numbers; the loss is the mean over the step's micro-batches; ``grad_norm`` is the global
    L2 norm of the gradient before clipping; inf or NaN for a float16 step that overflowed and
    was skipped). A history stored before ``grad_norm`` existed has none, so a run resumed from
    such a checkpoint records it only for its new steps. ``eval_steps`` and ``evals``
    (``name -> list of values``) hold the periodic evaluations. ``tokens`` counts the elements of
    the first tensor of every batch; ``seconds`` is wall time spent in training steps.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    evals: dict[str, list[float]] = field(default_factory=dict)
    tokens: int = 0
    seconds: float = 0.0
    grad_norm: list[float] = field(default_factory=list)

    def record_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        check_int("step", step, min=0, who="History.record_eval")
        metrics = _check_metrics("metrics", metrics, who="History.record_eval")
        n = len(self.eval_steps)
        for name, value in metrics.items():
            self.evals.setdefault(name, [float("nan")] * n).append(float(value))
        self.eval_steps.append(step)
        for name, values in self.evals.items():  # metrics missing this time
            if len(values) < n + 1:
                values.append(float("nan"))

    def smoothed_train_loss(self, window: int = 50) -> list[float]:
        """Running mean of the training loss over the last ``window`` logged steps."""
        check_int("window", window, min=1, who="History.smoothed_train_loss")
        out, acc = [], 0.0
        for i, v in enumerate(self.train_loss):
            acc += v
            if i >= window:
                acc -= self.train_loss[i - window]
            out.append(acc / min(i + 1, window))
        return out

    def curves(self, smooth: int = 50) -> dict[str, tuple[list[int], list[float]]]:
        """``{name: (steps, values)}`` for :func:`lmlib.plots.plot_curves`: the (smoothed) training
        loss and every evaluation metric."""
        check_int("smooth", smooth, min=0, who="History.curves")
        c = {"train loss" + (f" (mean of {smooth})" if smooth > 1 else ""):
             (list(self.steps), self.smoothed_train_loss(smooth) if smooth > 1 else list(self.train_loss))}
        for name, values in self.evals.items():
            c[name] = (list(self.eval_steps), list(values))
        return c

    def last(self, name: str) -> float:
        """The latest value of an evaluation metric (or of ``"train_loss"``)."""
        check_str("name", name, who="History.last")
        if name != "train_loss" and name not in self.evals:
            raise ValueError(f"History.last: no metric name {name!r}; recorded: {sorted(self.evals)} and 'train_loss'")
        values = self.train_loss if name == "train_loss" else self.evals[name]
        if not values:
            raise ValueError(f"History.last: nothing recorded yet for name {name!r}")
        return values[-1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        """The inverse of :meth:`to_dict`; every field is checked (it comes from a file)."""
        _check_history_dict(d)
        return cls(**{k: (dict(v) if k == "evals" else v) for k, v in d.items()})


def _check_history_dict(d: Any) -> None:
    who = "History.from_dict"
    if not isinstance(d, Mapping):
        raise TypeError(f"{who}: d must be a dict of History fields, got {type(d).__name__}")
    known = [f.name for f in dataclasses.fields(History)]
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{who}: unknown History field(s) {unknown}; the fields are {known}")
    number = (int, float)
    for k in ("steps", "eval_steps"):
        if k in d and not (isinstance(d[k], list) and all(isinstance(v, int) and not isinstance(v, bool) for v in d[k])):
            raise ValueError(f"{who}: field {k!r} must be a list of ints, got {d[k]!r:.60}")
    for k in ("train_loss", "lr", "grad_norm"):
        if k in d and not (isinstance(d[k], list) and all(isinstance(v, number) and not isinstance(v, bool) for v in d[k])):
            raise ValueError(f"{who}: field {k!r} must be a list of numbers, got {d[k]!r:.60}")
    if "evals" in d:
        ev = d["evals"]
        if not isinstance(ev, Mapping) or not all(
                isinstance(name, str) and isinstance(vs, list)
                and all(isinstance(v, number) and not isinstance(v, bool) for v in vs) for name, vs in ev.items()):
            raise ValueError(f"{who}: field 'evals' must map metric names to lists of numbers, got {ev!r:.60}")
    if "tokens" in d and (isinstance(d["tokens"], bool) or not isinstance(d["tokens"], int) or d["tokens"] < 0):
        raise ValueError(f"{who}: field 'tokens' must be an int >= 0, got {d['tokens']!r}")
    if "seconds" in d and (isinstance(d["seconds"], bool) or not isinstance(d["seconds"], number)):
        raise ValueError(f"{who}: field 'seconds' must be a number, got {d['seconds']!r}")


def _check_metrics(name: str, metrics: Any, *, who: str) -> Mapping[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{who}: {name} must be a dict of metric name -> number, got {type(metrics).__name__}")
    for k, v in metrics.items():
        check_str(f"{name} key", k, who=who)
        check_float(f"{name}[{k!r}]", v, finite=False, who=who)
    return metrics


def _check_config(config: Any, *, who: str) -> "TrainConfig":
    if not isinstance(config, TrainConfig):
        raise TypeError(f"{who}: config must be a TrainConfig, got {type(config).__name__}")
    return config


# --------------------------------------------------------------------------------------------
# Batches and evaluation
# --------------------------------------------------------------------------------------------

def run_batch(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Call ``model`` on a batch (tuple/list -> positional, dict -> keywords) and return
    ``(logits, loss)``, checking that a loss came back."""
    if not callable(model):
        raise TypeError(f"run_batch: model must be an nn.Module (callable), got {type(model).__name__}")
    if isinstance(batch, Mapping):
        out = model(**batch)
    elif isinstance(batch, (tuple, list)):
        out = model(*batch)
    else:
        raise TypeError(f"a batch must be a tuple/list (positional arguments) or a dict (keyword "
                        f"arguments) for the model, got {type(batch).__name__}")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("the model's forward must return (logits, loss)")
    logits, loss = out
    if loss is None:
        raise ValueError("the model returned loss=None: pass the targets/labels in the batch")
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"the model's loss must be a scalar tensor, got {type(loss).__name__}")
    if loss.dim() != 0:
        raise ValueError(f"the loss must be a scalar, got shape {tuple(loss.shape)}")
    return logits, loss


def _target_count(batch: Any) -> int | None:
    """The number of predicted targets of a batch: the entries other than -100 of its
    ``labels``/``targets`` (a dict) or of its last element (a tuple); ``None`` when unknown."""
    tgt = batch.get("labels", batch.get("targets")) if isinstance(batch, Mapping) else batch[-1] if batch else None
    return int((tgt != -100).sum()) if isinstance(tgt, torch.Tensor) else None


def _loss_divisors(batches: list[Any], step: int) -> list[float]:
    """What each micro-batch's mean loss is divided by before ``backward`` so that the step follows
    the mean loss over all targets of its micro-batches: ``len(batches)`` when they predict equally
    many targets (or the counts are unknown), else ``total / count`` (see the module docstring)."""
    counts = [_target_count(b) for b in batches]
    for i, n in enumerate(counts):
        if n == 0:
            raise ValueError(f"micro-batch {i + 1} of step {step + 1} has no targets to predict: all its "
                             "labels/targets are -100 (the ignore index), so its mean loss is NaN; "
                             "check how the batch's targets are made")
    if None in counts or len(set(counts)) == 1:
        return [len(batches)] * len(batches)
    total = sum(counts)
    return [total / n for n in counts]


def _batch_tokens(batch: Any) -> int:
    first = next(iter(batch.values())) if isinstance(batch, Mapping) else batch[0]
    return int(first.numel()) if isinstance(first, torch.Tensor) else 0


def _to_device(batch: Any, device: str | torch.device) -> Any:
    if isinstance(batch, Mapping):
        return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(v.to(device) if isinstance(v, torch.Tensor) else v for v in batch)
    raise TypeError(f"a batch must be a tuple/list (positional arguments) or a dict (keyword "
                    f"arguments) for the model, got {type(batch).__name__}")


@torch.no_grad()
def evaluate_loss(model: nn.Module, batches: Iterable[Any], *, weighted: bool = True) -> float:
    """Mean loss of ``model`` over ``batches`` in eval mode (restoring the previous mode).

    With ``weighted=True`` every batch's (mean) loss is weighted by its number of predicted
    targets (labels != -100 in the last tensor/``labels``/``targets``), so the result is the mean
    over all predicted tokens even when batches differ in size.
    """
    check_module("model", model, who="evaluate_loss")
    if isinstance(batches, (str, bytes, Mapping, torch.Tensor)) or not hasattr(batches, "__iter__"):
        raise TypeError(f"evaluate_loss: batches must be an iterable of batches, got {type(batches).__name__}")
    check_bool("weighted", weighted, who="evaluate_loss")
    total, count = _loss_total(model, batches, weighted)
    if count == 0:
        raise ValueError("evaluate_loss got no batches (or no predicted targets)")
    return total / count


@torch.no_grad()
def _loss_total(model: nn.Module, batches: Iterable[Any], weighted: bool) -> tuple[float, int]:
    """(sum of the batches' mean losses, each times its number of targets; that number), in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in batches:
            if not isinstance(batch, (Mapping, tuple, list)):
                raise TypeError(f"evaluate_loss: each of the batches must be a tuple/list or a dict, "
                                f"got {type(batch).__name__}")
            n = (_target_count(batch) if weighted else 1)
            n = 1 if n is None else n
            if n == 0:
                continue  # no target: the batch adds nothing (its mean loss would be NaN)
            _, loss = run_batch(model, batch)
            total += float(loss) * n
            count += n
    finally:
        model.train(was_training)
    return total, count


def fixed_lm_batches(data: torch.Tensor, block_size: int, batch_size: int, n_batches: int,
                     *, seed: int = 1234) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` random ``(x, y)`` batches, each ``(batch_size, block_size)``, drawn once
    with a fixed seed, so that every evaluation of a run uses the same text."""
    from lmlib.data import sample_batch

    check_int("n_batches", n_batches, min=1, who="fixed_lm_batches")
    check_int("seed", seed, min=-2**63, max=2**64 - 1, who="fixed_lm_batches")
    _check_nonnegative_ids(data, who="fixed_lm_batches")

    g = torch.Generator().manual_seed(seed)
    return [sample_batch(data, block_size, batch_size, generator=g) for _ in range(n_batches)]


def _check_nonnegative_ids(data: Any, *, who: str) -> None:
    """``data`` holds token ids, so none is negative (checked once, when the batches are made)."""
    if isinstance(data, torch.Tensor) and not data.is_floating_point() and data.numel() and int(data.min()) < 0:
        raise ValueError(f"{who}: data holds the negative token id {int(data.min())}")


def sequential_lm_batches(data: torch.Tensor, block_size: int, batch_size: int
                          ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cover ``data`` with consecutive non-overlapping windows: every token after the first is a
    target exactly once (the last window is shorter when needed). Returns ``(x, y)`` batches of
    up to ``batch_size`` windows of ``block_size`` tokens, ``x, y: (b, t)``.

    Each window starts from scratch, so a target sees between 0 and ``block_size - 1`` tokens of
    context: the mean loss over these batches is the model's held-out loss on the whole text.
    """
    check_tensor("data", data, dims=1, dtype="int", who="sequential_lm_batches")
    check_int("block_size", block_size, min=1, who="sequential_lm_batches")
    check_int("batch_size", batch_size, min=1, who="sequential_lm_batches")
    _check_nonnegative_ids(data, who="sequential_lm_batches")
    if len(data) < 2:
        raise ValueError("data needs at least 2 tokens")
    n_full = (len(data) - 1) // block_size
    batches = []
    if n_full:
        x = data[: n_full * block_size].long().view(n_full, block_size)  # (N, T)
        y = data[1: n_full * block_size + 1].long().view(n_full, block_size)  # (N, T)
        for i in range(0, n_full, batch_size):
            batches.append((x[i:i + batch_size], y[i:i + batch_size]))
    rest = (len(data) - 1) - n_full * block_size
    if rest:
        s = n_full * block_size
        batches.append((data[s:s + rest].long()[None], data[s + 1:s + 1 + rest].long()[None]))
    return batches


def make_lm_eval_fn(data: torch.Tensor, block_size: int, batch_size: int, *, n_batches: int | None = 8,
                    seed: int = 1234, name: str = "val_loss") -> Callable[[nn.Module], dict[str, float]]:
    """An ``eval_fn`` for :func:`train`: the mean loss on ``n_batches`` fixed random batches of
    ``data`` (or on all of it, in order, with ``n_batches=None``). On several processes each rank
    evaluates every ``world_size``-th batch and the totals are all-reduced."""
    check_str("name", name, nonempty=True, who="make_lm_eval_fn")
    if n_batches is None:
        batches = sequential_lm_batches(data, block_size, batch_size)
    else:
        batches = fixed_lm_batches(data, block_size, batch_size, n_batches, seed=seed)

    def eval_fn(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        rank, world = distributed.rank(), distributed.world_size()
        if world == 1:
            return {name: evaluate_loss(model, (_to_device(b, device) for b in batches))}
        # several processes: each evaluates every world-th batch, the sums are all-reduced
        total, count = _loss_total(model, (_to_device(b, device) for b in batches[rank::world]), True)
        total, count = distributed.all_reduce_sum([total, count])
        return {name: total / count}

    return eval_fn


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------

class _BatchSource:
    """Uniform access to a get_batch callable or a (cycled) iterable of batches."""

    def __init__(self, data: Any, generator: torch.Generator):
        self.generator = generator
        if callable(data) and not isinstance(data, (list, tuple)) and not hasattr(data, "__iter__"):
            self.fn, self.it = data, None
        elif hasattr(data, "__iter__"):
            self.fn, self.iterable = None, data
            self.it = iter(data)
        else:
            raise TypeError("data must be a callable get_batch(generator) or an iterable of batches")

    def next(self) -> Any:
        if self.fn is not None:
            return self.fn(self.generator)
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.iterable)
            try:
                return next(self.it)
            except StopIteration:
                raise ValueError("the iterable of batches is empty") from None

    def skip(self, n: int) -> None:
        if self.fn is None:
            for _ in range(n):
                self.next()


def _maybe_compile(model: nn.Module, enabled: bool) -> nn.Module:
    if not enabled:
        return model
    try:
        return torch.compile(model)
    except Exception as exc:  # pragma: no cover - depends on the platform
        print(f"torch.compile is not available here ({type(exc).__name__}: {exc}); training in eager mode")
        return model


def train(
    model: nn.Module,
    data: Callable[[torch.Generator], Any] | Iterable[Any],
    config: TrainConfig,
    *,
    eval_fn: Callable[[nn.Module], float | Mapping[str, float]] | None = None,
    history: History | None = None,
    resume_from: str | None = None,
    stop_after: int | None = None,
    on_step: Callable[[int, History], None] | None = None,
) -> History:
    """Train ``model`` in place and return its :class:`History` (see the module docstring)."""
    from lmlib import checkpoint as ckpt

    _check_train_args(model, data, config, eval_fn, history, resume_from, stop_after, on_step)

    rank, world = distributed.rank(), distributed.world_size()
    device = torch.device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", distributed.local_rank())   # one GPU per process
    before = _mode_and_device(model)                 # given back if a resume is refused
    model.to(device)
    model.train()
    optimizer = make_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=config.autocast_dtype == "float16")  # float16 only
    history = history if history is not None else History()
    generator = torch.Generator()  # drives get_batch; its state is checkpointed
    start_step = 0
    if resume_from is not None:
        start_step = _resume(resume_from, model, optimizer, scaler, generator, history, config, before)
    else:
        seed_everything(config.seed + rank)           # dropout differs between ranks
        generator.manual_seed(config.seed)            # the global batches do not

    source = _BatchSource(data, generator)
    if resume_from is not None:
        source.skip(start_step * config.grad_accum_steps)
    forward_model = model
    if world > 1:  # averages the gradients over the ranks during backward
        forward_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    forward_model = _maybe_compile(forward_model, config.compile)
    if config.autocast_dtype is not None:
        autocast = lambda: torch.autocast(device.type, dtype=getattr(torch, config.autocast_dtype))  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    end_step = config.max_steps if stop_after is None else min(config.max_steps, stop_after)

    def run_eval(step: int) -> None:
        if eval_fn is None:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = eval_fn(model)
        model.train(was_training)
        if not isinstance(metrics, Mapping):
            metrics = {"val_loss": float(metrics)}
        history.record_eval(step, metrics)

    def save(step: int) -> None:
        if config.checkpoint_path is None:
            return
        extra = {"history": history.to_dict(), "train_config": config.to_dict()}
        if scaler.is_enabled():
            extra["grad_scaler"] = scaler.state_dict()
        if rank == 0:  # the ranks hold identical copies: one file
            ckpt.save_checkpoint(config.checkpoint_path, model, optimizer, step=step, generator=generator,
                                 extra=extra)
        distributed.barrier()

    if start_step == 0 and eval_fn is not None and not history.eval_steps:
        run_eval(0)
    bar = tqdm(range(start_step, end_step), desc=config.desc, disable=not config.progress or rank != 0,
               initial=start_step, total=config.max_steps, mininterval=0.5)
    accum = config.grad_accum_steps
    for step in bar:
        t0 = time.perf_counter()
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        batches = [source.next() for _ in range(accum)]   # global batches: the same on every rank
        pieces = [distributed.shard(b, r, world) for b in batches for r in range(world)]
        divisors = _loss_divisors(pieces, step)            # weights of every rank's share of the step
        for i, batch in enumerate(batches):
            last = i == accum - 1                          # DDP all-reduces on the last backward only
            with contextlib.nullcontext() if world == 1 or last else forward_model.no_sync():
                with autocast():
                    _, loss = run_batch(forward_model, _to_device(pieces[i * world + rank], device))
                if world == 1 and not torch.isfinite(loss):
                    raise FloatingPointError(_nonfinite(float(loss), step))
                divisor = divisors[i * world + rank] / world  # DDP divides the summed gradient by world
                scaler.scale(loss / divisor).backward()    # float16: loss x scale; otherwise unchanged
            loss_sum += float(loss.detach()) / divisors[i * world + rank]
            history.tokens += _batch_tokens(batch)
        if world > 1:
            loss_sum = distributed.all_reduce_sum([loss_sum])[0]  # the loss of the whole step
            if not math.isfinite(loss_sum):
                raise FloatingPointError(_nonfinite(loss_sum, step))
        scaler.unscale_(optimizer)                        # float16: the true gradients again
        max_norm = math.inf if config.grad_clip is None else config.grad_clip
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # the norm before clipping
        scaler.step(optimizer)                            # float16: skipped if a gradient overflowed
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        history.seconds += time.perf_counter() - t0
        done = step + 1
        if done % config.log_interval == 0 or done == config.max_steps:
            history.steps.append(done)
            history.train_loss.append(loss_sum)
            history.lr.append(lr)
            history.grad_norm.append(float(grad_norm))
            bar.set_postfix(loss=f"{loss_sum:.4f}", refresh=False)
        if done % config.eval_interval == 0 or done == config.max_steps:
            run_eval(done)
        if on_step is not None:
            on_step(done, history)
        if config.checkpoint_interval and done % config.checkpoint_interval == 0 and done != end_step:
            save(done)
    bar.close()
    save(end_step)
    return history


def _nonfinite(loss: float, step: int) -> str:
    return f"the loss became {loss} at step {step + 1}; try a smaller learning rate or stronger clipping"


def _check_train_args(model, data, config, eval_fn, history, resume_from, stop_after, on_step) -> None:
    who = "train"
    check_module("model", model, who=who)
    if isinstance(data, (str, bytes, Mapping)) or not (callable(data) or hasattr(data, "__iter__")):
        raise TypeError(f"{who}: data must be a callable get_batch(generator) or an iterable of batches, "
                        f"got {type(data).__name__}")
    _check_config(config, who=who)
    for name, fn in (("eval_fn", eval_fn), ("on_step", on_step)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{who}: {name} must be a function or None, got {type(fn).__name__}")
    if history is not None and not isinstance(history, History):
        raise TypeError(f"{who}: history must be a History or None, got {type(history).__name__}")
    if resume_from is not None:
        check_path("resume_from", resume_from, who=who)
    if stop_after is not None:
        check_int("stop_after", stop_after, min=0, who=who)


def _mode_and_device(model: nn.Module) -> tuple[bool, torch.device | None]:
    return model.training, next((p.device for p in model.parameters()), None)


def _resume(path, model: nn.Module, optimizer, scaler, generator: torch.Generator, history: History,
            config: TrainConfig, before: tuple[bool, torch.device | None]) -> int:
    """Restore a run from its checkpoint; returns the step. The saved history and configuration
    are checked before the model, the optimiser or any generator is modified; if the checkpoint is
    refused, the model also gets back its mode and device (``before``)."""
    try:
        return _restore(path, model, optimizer, scaler, generator, history, config)
    except Exception:
        model.train(before[0])
        if before[1] is not None:
            model.to(before[1])
        raise


def _restore(path, model: nn.Module, optimizer, scaler, generator: torch.Generator, history: History,
             config: TrainConfig) -> int:
    from lmlib import checkpoint as ckpt

    restored: list[History | None] = []
    scaler_state: list[dict[str, Any] | None] = []

    def check_extra(extra: dict[str, Any]) -> None:
        saved = extra.get("history")
        restored.append(History.from_dict(saved) if saved is not None else None)
        scaler_state.append(_check_scaler_state(path, extra.get("grad_scaler"), scaler))
        ckpt_cfg = extra.get("train_config")
        if ckpt_cfg is not None:
            if not isinstance(ckpt_cfg, Mapping):
                raise ValueError(f"checkpoint {path}: 'train_config' must be an object, got {ckpt_cfg!r:.60}")
            # the device is free to change (and need not exist here)
            _check_resume_config(TrainConfig.from_dict({**ckpt_cfg, "device": config.device}), config)

    state = ckpt.load_checkpoint(path, model, optimizer, generator=generator, check_extra=check_extra)
    if restored[0] is not None:
        for f in dataclasses.fields(History):
            setattr(history, f.name, getattr(restored[0], f.name))
    if scaler_state[0] is not None:
        scaler.load_state_dict(scaler_state[0])
    return state.step


def _check_scaler_state(path, saved: Any, scaler) -> dict[str, Any] | None:
    """The gradient scaler's state from a checkpoint, checked; ``None`` when there is nothing to
    restore (no float16 now, or a checkpoint written before the scaler's state was saved: the
    scaler then starts afresh)."""
    if saved is None or not scaler.is_enabled():
        return None
    expected = scaler.state_dict()
    if not isinstance(saved, Mapping) or set(saved) != set(expected) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in saved.values()):
        raise ValueError(f"checkpoint {path}: 'grad_scaler' must hold the numbers {sorted(expected)}, "
                         f"got {saved!r:.80}")
    if saved["scale"] <= 0:
        raise ValueError(f"checkpoint {path}: 'grad_scaler' scale must be > 0, got {saved['scale']}")
    return dict(saved)


def _check_resume_config(saved: TrainConfig, current: TrainConfig) -> None:
    """Refuse to resume with a configuration that changes the optimisation itself."""
    free = {"progress", "desc", "checkpoint_path", "checkpoint_interval", "eval_interval", "log_interval",
            "device", "compile"}
    diffs = [f.name for f in dataclasses.fields(TrainConfig)
             if f.name not in free and getattr(saved, f.name) != getattr(current, f.name)]
    if diffs:
        details = ", ".join(f"{n}: {getattr(saved, n)!r} -> {getattr(current, n)!r}" for n in diffs)
        raise ValueError(f"cannot resume: the checkpoint was trained with a different TrainConfig ({details})")
