"""Toy sequence-to-sequence tasks for the encoder–decoder :class:`lmlib.transformer.Transformer`.

A task maps a source sequence of symbols to a target sequence: ``"copy"`` (the target is the
source) or ``"reverse"`` (the target is the source backwards). Symbols are the ids ``1..n_symbols``;
id ``0`` (:data:`BOS`) is the beginning-of-sequence token that starts every decoder input, so the
vocabulary has ``n_symbols + 1`` ids on both sides. All sequences of a batch have one length, so no
padding is needed.

Training is *teacher-forced*: the decoder reads the true target shifted right by one position
(:func:`shift_right`: ``BOS, y_1, ..., y_{T-1}``) and is trained to predict ``y_1, ..., y_T``, every
position at once. At test time there is no true target to read, so :func:`greedy_decode` feeds the
model its own most likely token, one step at a time. :func:`cross_attention_weights` records where
each decoder position looks in the source.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lmlib.progress import trange
from lmlib.validation import check_bool, check_choice, check_float, check_ids, check_instance, check_int, check_tensor

__all__ = ["BOS", "TASKS", "make_pairs", "shift_right", "train_seq2seq", "greedy_decode", "exact_match",
           "cross_attention_weights"]

#: the beginning-of-sequence id, the first token of every decoder input
BOS = 0
#: the toy tasks :func:`make_pairs` can generate
TASKS = ("copy", "reverse")


def _check_model(model: Any, who: str):
    from lmlib.transformer import Transformer

    return check_instance("model", model, Transformer, "an lmlib.transformer.Transformer", who=who)


def make_pairs(n: int, length: int, n_symbols: int, *, task: str = "reverse",
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random source sequences of ``length`` symbols (ids ``1..n_symbols``) and their targets.

    Returns ``(src, tgt)``, two ``(n, length)`` long tensors; ``tgt`` is ``src`` (``task="copy"``)
    or ``src`` reversed along the sequence (``task="reverse"``).
    """
    who = "make_pairs"
    check_int("n", n, min=1, who=who)
    check_int("length", length, min=1, who=who)
    check_int("n_symbols", n_symbols, min=1, who=who)
    check_choice("task", task, TASKS, who=who)
    check_instance("generator", generator, torch.Generator, "a torch.Generator", nullable=True, who=who)
    src = torch.randint(1, n_symbols + 1, (n, length), generator=generator)
    tgt = src.flip(1) if task == "reverse" else src.clone()
    return src, tgt


def shift_right(tgt: torch.Tensor, bos_id: int = BOS) -> torch.Tensor:
    """The decoder input of teacher forcing: ``bos_id`` then the target without its last token.

    ``tgt (B, T) -> (B, T)``; position ``t`` of the result holds ``tgt[:, t - 1]`` (and ``bos_id``
    at ``t = 0``), so the causal decoder predicts ``tgt[:, t]`` having read only earlier targets.
    """
    check_tensor("tgt", tgt, dims=2, dtype="int", nonempty=True, who="shift_right")
    check_int("bos_id", bos_id, min=0, who="shift_right")
    bos = torch.full_like(tgt[:, :1], bos_id)
    return torch.cat([bos, tgt[:, :-1]], dim=1)


def _check_pairs(src, tgt, model, who: str, tgt_name: str = "tgt") -> None:
    c = model.config
    check_ids("src", src, c.src_vocab_size, dims=2, who=who)
    check_ids(tgt_name, tgt, c.tgt_vocab_size, dims=2, who=who)
    if src.shape[0] != tgt.shape[0] or src.shape[0] == 0:
        raise ValueError(f"{who}: src and {tgt_name} must hold the same number (> 0) of sequences, "
                         f"got {src.shape[0]} and {tgt.shape[0]}")
    for name, x in (("src", src), (tgt_name, tgt)):
        if not 1 <= x.shape[1] <= c.max_len:
            raise ValueError(f"{who}: {name} sequences must have 1..max_len={c.max_len} tokens, got {x.shape[1]}")


def _lr_factor(step: int, steps: int, warmup_steps: int, decay: bool) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return (steps - step) / (steps - warmup_steps) if decay else 1.0


def train_seq2seq(model: nn.Module, src: torch.Tensor, tgt: torch.Tensor, *, steps: int, batch_size: int = 64,
                  lr: float = 1e-3, warmup_steps: int = 0, decay: bool = True, seed: int = 0,
                  progress: bool = True) -> list[float]:
    """Teacher-forced training of ``model`` on the pairs ``(src (N, S), tgt (N, T))``; returns the losses.

    Each of ``steps`` AdamW steps draws ``batch_size`` pairs (a generator seeded with ``seed``),
    feeds ``shift_right(tgt)`` to the decoder and minimises the cross-entropy of predicting ``tgt``.
    The learning rate rises linearly over ``warmup_steps`` steps to ``lr``, then (``decay=True``)
    falls linearly towards 0 at the last step, or (``decay=False``) stays at ``lr``.
    """
    who = "train_seq2seq"
    _check_model(model, who)
    _check_pairs(src, tgt, model, who)
    check_int("steps", steps, min=1, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    check_float("lr", lr, min=0.0, min_open=True, who=who)
    check_int("warmup_steps", warmup_steps, min=0, who=who)
    check_bool("decay", decay, who=who)
    check_int("seed", seed, min=0, who=who)
    check_bool("progress", progress, who=who)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in trange(steps, desc="seq2seq", disable=not progress):
        for group in opt.param_groups:
            group["lr"] = lr * _lr_factor(step, steps, warmup_steps, decay)
        i = torch.randint(0, src.shape[0], (batch_size,), generator=g)
        _, loss = model(src[i], shift_right(tgt[i]), targets=tgt[i])   # teacher forcing
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def _check_decode_args(model, src, length, bos_id, who: str) -> None:
    _check_model(model, who)
    check_ids("src", src, model.config.src_vocab_size, dims=2, who=who)
    check_int("length", length, min=1, max=model.config.max_len, who=who)
    check_int("bos_id", bos_id, min=0, max=model.config.tgt_vocab_size - 1, who=who)
    if src.shape[0] == 0 or not 1 <= src.shape[1] <= model.config.max_len:
        raise ValueError(f"{who}: src must be (B, S) with B >= 1 and 1 <= S <= max_len, got {tuple(src.shape)}")


@torch.no_grad()
def greedy_decode(model: nn.Module, src: torch.Tensor, length: int, *, bos_id: int = BOS) -> torch.Tensor:
    """Generate ``length`` target tokens for each source, feeding back the most likely token.

    ``src (B, S) -> (B, length)``. The source is encoded once; the decoder then reads
    ``bos_id`` and the tokens generated so far, and appends the argmax of its last position.
    """
    _check_decode_args(model, src, length, bos_id, "greedy_decode")
    was_training = model.training
    model.eval()
    memory = model.encode(src)                                   # (B, S, C), computed once
    out = torch.full((src.shape[0], 1), bos_id, dtype=torch.long)
    for _ in range(length):
        logits = model.decode(out, memory)                       # (B, t, V): every prefix position
        next_token = logits[:, -1].argmax(-1, keepdim=True)      # the most likely token after the last one
        out = torch.cat([out, next_token], dim=1)
    model.train(was_training)
    return out[:, 1:]                                            # without the BOS


def exact_match(pred: torch.Tensor, target: torch.Tensor) -> float:
    """The fraction of rows of ``pred`` equal to the same row of ``target`` in every position."""
    check_tensor("pred", pred, dims=2, dtype="int", who="exact_match")
    check_tensor("target", target, dims=2, dtype="int", who="exact_match")
    if pred.shape != target.shape or pred.shape[0] == 0:
        raise ValueError(f"exact_match: pred and target must have one non-empty shape, "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")
    return (pred == target).all(dim=1).float().mean().item()


@torch.no_grad()
def cross_attention_weights(model: nn.Module, src: torch.Tensor, tgt_in: torch.Tensor) -> list[torch.Tensor]:
    """The cross-attention weights of every decoder layer for the decoder input ``tgt_in``.

    Returns one ``(B, n_heads, T, S)`` tensor per decoder layer: row ``t`` is how decoder
    position ``t`` spreads its attention over the ``S`` source positions (each row sums to 1).
    """
    who = "cross_attention_weights"
    _check_model(model, who)
    _check_pairs(src, tgt_in, model, who, "tgt_in")
    weights: list[torch.Tensor] = []

    def record(module, args, kwargs, output):
        # run the module's forward again (not module(...), which would call this hook) for its weights
        weights.append(module.forward(*args, **{**kwargs, "need_weights": True})[1])

    was_training = model.training
    model.eval()
    hooks = [layer.cross_attn.register_forward_hook(record, with_kwargs=True) for layer in model.decoder.layers]
    try:
        model(src, tgt_in)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return weights
