"""Training the variants of the GPT-2 -> Llama ablation (``scripts/ablate_decoder.py``, Chapter 8).

An ablation spec (``configs/experiments/decoder-ablation.json``) gives the model's shape, the
training settings and the variants, each a dict of :class:`lmlib.llama.LlamaConfig` switches
applied on top of GPT-2's (:data:`GPT2_SWITCHES`)::

    {"model": {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 64},
     "train": {"steps": 1500, "batch_size": 32, "warmup_steps": 75, "weight_decay": 0.1,
               "betas": [0.9, 0.99], "grad_clip": 1.0},
     "split_seed": 0, "eval_batches": 64, "lr_grid": [...], "seeds": [0, 1, 2],
     "variants": {"GPT-2": {}, "+ RMSNorm": {"norm": "rms"}, ...}}

:func:`train_variant` trains one variant with one seed and learning rate on the training plays
(cosine schedule with warm-up, AdamW) and returns the model and its
:class:`~lmlib.training.History`; :func:`validation_batches` are the fixed batches of the
validation plays every variant is scored on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lmlib.llama import Llama, LlamaConfig
from lmlib.validation import check_bool, check_float, check_int

__all__ = ["GPT2_SWITCHES", "variant_config", "train_variant", "validation_batches"]

#: the switches of :class:`~lmlib.llama.LlamaConfig` at GPT-2's setting
GPT2_SWITCHES = {"norm": "layer", "position": "learned", "ffn": "gelu", "bias": True}

_SPEC_KEYS = {"model": ("block_size", "n_layer", "n_head", "n_embd"),
              "train": ("steps", "batch_size", "warmup_steps", "weight_decay", "betas", "grad_clip")}


def _check_spec(spec: Any, who: str) -> None:
    if not isinstance(spec, Mapping):
        raise TypeError(f"{who}: spec must be a dict (an ablation spec), got {type(spec).__name__}")
    for part, keys in _SPEC_KEYS.items():
        if not isinstance(spec.get(part), Mapping):
            raise ValueError(f"{who}: spec has no {part!r} settings")
        missing = [k for k in keys if k not in spec[part]]
        if missing:
            raise ValueError(f"{who}: spec[{part!r}] is missing {missing}")
    check_int("spec['split_seed']", spec.get("split_seed"), min=0, who=who)
    check_int("spec['eval_batches']", spec.get("eval_batches"), min=1, who=who)


def _check_changes(changes: Any, who: str) -> None:
    if not isinstance(changes, Mapping):
        raise TypeError(f"{who}: changes must be a dict of LlamaConfig switches, got {type(changes).__name__}")
    known = set(LlamaConfig.__dataclass_fields__) - {"vocab_size", *_SPEC_KEYS["model"]}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"{who}: changes has unknown LlamaConfig field(s) {unknown}")


def variant_config(spec: Mapping[str, Any], changes: Mapping[str, Any], vocab_size: int) -> LlamaConfig:
    """The model of one variant: the spec's shape, GPT-2's switches, then ``changes``."""
    who = "variant_config"
    _check_spec(spec, who)
    _check_changes(changes, who)
    check_int("vocab_size", vocab_size, min=1, who=who)
    return LlamaConfig(**{**spec["model"], "vocab_size": vocab_size, **GPT2_SWITCHES, **changes})


def validation_batches(spec: Mapping[str, Any], data) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The fixed batches of the validation plays that every variant is scored on."""
    from lmlib.training import fixed_lm_batches

    _check_spec(spec, "validation_batches")
    return fixed_lm_batches(data.val.long(), spec["model"]["block_size"], 32, spec["eval_batches"], seed=1)


def train_variant(spec: Mapping[str, Any], changes: Mapping[str, Any], *, seed: int, lr: float, data,
                  stop_after: int | None = None, progress: bool = False):
    """Train one variant on ``data.train`` (a :class:`lmlib.pretrained.CourseData`); returns
    ``(model, history)``. The seed fixes the initialisation and the order of the batches.
    ``stop_after=n`` stops after ``n`` steps of the same schedule."""
    from lmlib.data import sample_batch
    from lmlib.training import TrainConfig, train

    who = "train_variant"
    _check_spec(spec, who)
    _check_changes(changes, who)
    check_int("seed", seed, min=0, who=who)
    check_float("lr", lr, min=0.0, min_open=True, who=who)
    if stop_after is not None:
        check_int("stop_after", stop_after, min=1, who=who)
    check_bool("progress", progress, who=who)
    if not hasattr(data, "train") or not hasattr(data, "tokenizer"):
        raise TypeError(f"{who}: data must be a CourseData (lmlib.pretrained.course_data), got {type(data).__name__}")
    config = variant_config(spec, changes, data.tokenizer.vocab_size)
    torch.manual_seed(seed)
    model = Llama(config)
    t, block = spec["train"], spec["model"]["block_size"]
    cfg = TrainConfig(max_steps=t["steps"], lr=lr, min_lr=lr / 10, warmup_steps=t["warmup_steps"],
                      weight_decay=t["weight_decay"], betas=tuple(t["betas"]), grad_clip=t["grad_clip"],
                      eval_interval=t["steps"], seed=seed, progress=progress)
    train_ids = data.train.long()
    history = train(model, lambda g: sample_batch(train_ids, block, t["batch_size"], generator=g), cfg,
                    stop_after=stop_after)
    return model.eval(), history
