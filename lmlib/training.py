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
Then the global gradient norm is clipped to ``grad_clip``, the learning rate of the step is set
by :func:`lr_at` (linear warmup then cosine decay to ``min_lr``), and AdamW updates the weights.
Weight decay applies to matrices only (weights of linear layers and embeddings): biases and
LayerNorm gains are not decayed (:func:`param_groups`).

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

from lmlib.progress import tqdm

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
    ``min_lr`` defaults to ``lr / 10``. ``autocast_dtype`` (``"bfloat16"`` or ``None``) runs the
    forward pass under ``torch.autocast``; ``compile=True`` wraps the model's forward with
    ``torch.compile`` (falling back to eager mode, with a message, when compilation fails).
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
        def positive_int(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
                raise ValueError(f"TrainConfig.{name} must be a {'non-negative' if allow_zero else 'positive'} "
                                 f"int, got {v!r}")

        positive_int("max_steps")
        positive_int("warmup_steps", allow_zero=True)
        positive_int("grad_accum_steps")
        positive_int("eval_interval")
        positive_int("log_interval")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if self.min_lr is None:
            self.min_lr = self.lr / 10
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"TrainConfig.min_lr must be in [0, lr={self.lr}], got {self.min_lr!r}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"TrainConfig.schedule must be 'cosine', 'linear' or 'constant', got {self.schedule!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        self.betas = tuple(float(b) for b in self.betas)  # JSON gives lists
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip must be positive or None, got {self.grad_clip!r}")
        if self.autocast_dtype not in (None, "bfloat16", "float16"):
            raise ValueError(f"TrainConfig.autocast_dtype must be None, 'bfloat16' or 'float16', "
                             f"got {self.autocast_dtype!r}")
        if self.checkpoint_interval is not None:
            positive_int("checkpoint_interval")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
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
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
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
    groups = param_groups(model, config.weight_decay)
    if not groups[0]["params"] and not groups[1]["params"]:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=lr_at(0, config), betas=config.betas, eps=config.eps, foreach=True)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------

@dataclass
class History:
    """What happened during training, ready to plot.

    ``steps``/``train_loss``/``lr``: one entry per logged optimiser step (1-based step numbers;
    the loss is the mean over the step's micro-batches). ``eval_steps`` and ``evals``
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

    def record_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        n = len(self.eval_steps)
        for name, value in metrics.items():
            self.evals.setdefault(name, [float("nan")] * n).append(float(value))
        self.eval_steps.append(step)
        for name, values in self.evals.items():  # metrics missing this time
            if len(values) < n + 1:
                values.append(float("nan"))

    def smoothed_train_loss(self, window: int = 50) -> list[float]:
        """Running mean of the training loss over the last ``window`` logged steps."""
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
        c = {"train loss" + (f" (mean of {smooth})" if smooth > 1 else ""):
             (list(self.steps), self.smoothed_train_loss(smooth) if smooth > 1 else list(self.train_loss))}
        for name, values in self.evals.items():
            c[name] = (list(self.eval_steps), list(values))
        return c

    def last(self, name: str) -> float:
        """The latest value of an evaluation metric (or of ``"train_loss"``)."""
        if name == "train_loss":
            return self.train_loss[-1]
        if name not in self.evals:
            raise KeyError(f"no metric {name!r}; recorded: {sorted(self.evals)}")
        return self.evals[name][-1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        return cls(**{k: (dict(v) if k == "evals" else v) for k, v in d.items()})


# --------------------------------------------------------------------------------------------
# Batches and evaluation
# --------------------------------------------------------------------------------------------

def run_batch(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Call ``model`` on a batch (tuple/list -> positional, dict -> keywords) and return
    ``(logits, loss)``, checking that a loss came back."""
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
    if loss.dim() != 0:
        raise ValueError(f"the loss must be a scalar, got shape {tuple(loss.shape)}")
    return logits, loss


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
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in batches:
            _, loss = run_batch(model, batch)
            if weighted:
                if isinstance(batch, Mapping):
                    tgt = batch.get("labels", batch.get("targets"))
                else:
                    tgt = batch[-1]
                n = int((tgt != -100).sum()) if isinstance(tgt, torch.Tensor) else 1
            else:
                n = 1
            total += float(loss) * n
            count += n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate_loss got no batches (or no predicted targets)")
    return total / count


def fixed_lm_batches(data: torch.Tensor, block_size: int, batch_size: int, n_batches: int,
                     *, seed: int = 1234) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n_batches`` random ``(x, y)`` batches, each ``(batch_size, block_size)``, drawn once
    with a fixed seed, so that every evaluation of a run uses the same text."""
    from lmlib.data import sample_batch

    g = torch.Generator().manual_seed(seed)
    return [sample_batch(data, block_size, batch_size, generator=g) for _ in range(n_batches)]


def sequential_lm_batches(data: torch.Tensor, block_size: int, batch_size: int
                          ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cover ``data`` with consecutive non-overlapping windows: every token after the first is a
    target exactly once (the last window is shorter when needed). Returns ``(x, y)`` batches of
    up to ``batch_size`` windows of ``block_size`` tokens, ``x, y: (b, t)``.

    Each window starts from scratch, so a target sees between 0 and ``block_size - 1`` tokens of
    context: the mean loss over these batches is the model's held-out loss on the whole text.
    """
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        raise ValueError("data must be a 1-D tensor of token ids")
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
    ``data`` (or on all of it, in order, with ``n_batches=None``)."""
    if n_batches is None:
        batches = sequential_lm_batches(data, block_size, batch_size)
    else:
        batches = fixed_lm_batches(data, block_size, batch_size, n_batches, seed=seed)

    def eval_fn(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        return {name: evaluate_loss(model, (_to_device(b, device) for b in batches))}

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

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if stop_after is not None and not (isinstance(stop_after, int) and stop_after >= 0):
        raise ValueError(f"stop_after must be a non-negative int, got {stop_after!r}")

    device = torch.device(config.device)
    model.to(device)
    model.train()
    optimizer = make_optimizer(model, config)
    history = history if history is not None else History()
    generator = torch.Generator()  # drives get_batch; its state is checkpointed
    start_step = 0
    if resume_from is not None:
        state = ckpt.load_checkpoint(resume_from, model, optimizer, generator=generator)
        start_step = state.step
        saved = state.extra.get("history")
        if saved is not None:
            restored = History.from_dict(saved)
            for f in dataclasses.fields(History):
                setattr(history, f.name, getattr(restored, f.name))
        ckpt_cfg = state.extra.get("train_config")
        if ckpt_cfg is not None:
            _check_resume_config(TrainConfig.from_dict(ckpt_cfg), config)
    else:
        seed_everything(config.seed)
        generator.manual_seed(config.seed)

    source = _BatchSource(data, generator)
    if resume_from is not None:
        source.skip(start_step * config.grad_accum_steps)
    forward_model = _maybe_compile(model, config.compile)
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
        ckpt.save_checkpoint(config.checkpoint_path, model, optimizer, step=step, generator=generator,
                             extra={"history": history.to_dict(), "train_config": config.to_dict()})

    if start_step == 0 and eval_fn is not None and not history.eval_steps:
        run_eval(0)
    bar = tqdm(range(start_step, end_step), desc=config.desc, disable=not config.progress,
               initial=start_step, total=config.max_steps, mininterval=0.5)
    accum = config.grad_accum_steps
    for step in bar:
        t0 = time.perf_counter()
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for _ in range(accum):
            batch = _to_device(source.next(), device)
            with autocast():
                _, loss = run_batch(forward_model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {float(loss)} at step {step + 1}; "
                                         f"try a smaller learning rate or stronger clipping")
            (loss / accum).backward()
            loss_sum += float(loss.detach())
            history.tokens += _batch_tokens(batch)
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.seconds += time.perf_counter() - t0
        done = step + 1
        if done % config.log_interval == 0 or done == config.max_steps:
            history.steps.append(done)
            history.train_loss.append(loss_sum / accum)
            history.lr.append(lr)
            bar.set_postfix(loss=f"{loss_sum / accum:.4f}", refresh=False)
        if done % config.eval_interval == 0 or done == config.max_steps:
            run_eval(done)
        if on_step is not None:
            on_step(done, history)
        if config.checkpoint_interval and done % config.checkpoint_interval == 0 and done != end_step:
            save(done)
    bar.close()
    save(end_step)
    return history


def _check_resume_config(saved: TrainConfig, current: TrainConfig) -> None:
    """Refuse to resume with a configuration that changes the optimisation itself."""
    free = {"progress", "desc", "checkpoint_path", "checkpoint_interval", "eval_interval", "log_interval",
            "device", "compile"}
    diffs = [f.name for f in dataclasses.fields(TrainConfig)
             if f.name not in free and getattr(saved, f.name) != getattr(current, f.name)]
    if diffs:
        details = ", ".join(f"{n}: {getattr(saved, n)!r} -> {getattr(current, n)!r}" for n in diffs)
        raise ValueError(f"cannot resume: the checkpoint was trained with a different TrainConfig ({details})")
