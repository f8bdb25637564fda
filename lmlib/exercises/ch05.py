"""Checkers for the exercises of Chapter 5 (pretraining and generation).

- :func:`check_lr_schedule` -- linear warmup followed by cosine decay.
- :func:`check_top_p` -- nucleus (top-p) filtering of logits.
- :func:`check_kv_cache_floats` -- how many numbers a KV cache holds.
- :func:`check_bits_per_char` -- comparing models with different tokenizers fairly.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from lmlib.exercises import Verdict, check_close, check_function, never_raises

__all__ = [
    "KV_CONFIG",
    "BPC_LOSS_NATS_PER_TOKEN",
    "BPC_CHARS_PER_TOKEN",
    "check_lr_schedule",
    "check_top_p",
    "check_kv_cache_floats",
    "check_bits_per_char",
]

_RETURNS_NONE = "your function returns None: replace the placeholder `return None` with your code."


# ----------------------------------------------------------------------------------------------
# Exercise: the learning-rate schedule
# ----------------------------------------------------------------------------------------------

def _reference_lr(step: int, max_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    from lmlib.training import TrainConfig, lr_at

    return lr_at(step, TrainConfig(max_steps=max_steps, warmup_steps=warmup_steps, lr=lr, min_lr=min_lr))


_LR_CASES = [(s, 100, 10, 1.0, 0.1) for s in (0, 4, 9, 10, 30, 55, 80, 99)] + \
            [(s, 50, 0, 3e-4, 0.0) for s in (0, 25, 49)]


def _diagnose_lr(args: tuple, got: Any, expected: float) -> str | None:
    step, max_steps, warmup, lr, min_lr = args
    if got is None:
        return _RETURNS_NONE
    g = float(got)
    if step < warmup:
        if math.isclose(g, lr * step / warmup, rel_tol=1e-6, abs_tol=1e-12):
            return ("during warmup use (step + 1) / warmup_steps: step 0 must already have a small "
                    "positive learning rate, and the last warmup step reaches the full lr.")
        if math.isclose(g, lr, rel_tol=1e-6):
            return "the warmup is missing: the first warmup_steps steps should ramp linearly up to lr."
        return f"at warmup step {step} the rate should be lr * (step + 1) / warmup_steps = {expected:.6g}."
    progress = (step - warmup) / max(1, max_steps - 1 - warmup)
    if math.isclose(g, lr * 0.5 * (1 + math.cos(math.pi * progress)), rel_tol=1e-6, abs_tol=1e-12):
        return "the cosine should end at min_lr, not 0: min_lr + (lr - min_lr) * (1 + cos(pi * progress)) / 2."
    alt = step / max(1, max_steps - 1)
    if math.isclose(g, min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * alt)), rel_tol=1e-6):
        return ("measure the cosine's progress from the END of the warmup: "
                "progress = (step - warmup_steps) / (max_steps - 1 - warmup_steps).")
    return f"at step {step} (after the warmup) expected {expected:.6g}, got {g:.6g}."


def _number(x: Any) -> float | None:
    """``float(x)`` for a number (or a one-element tensor), ``None`` for any other answer."""
    if x is None or isinstance(x, (str, bytes, bool)):
        return None
    try:
        return float(x)
    except Exception:  # noqa: BLE001
        return None


@never_raises('a function fn(step, max_steps, warmup_steps, lr, min_lr) returning a float')
def check_lr_schedule(fn: Callable[[int, int, int, float, float], float] | None, *, quiet: bool = False) -> Verdict:
    """``fn(step, max_steps, warmup_steps, lr, min_lr) -> float``: the learning rate of step
    ``step`` (0-based) with linear warmup then cosine decay to ``min_lr`` at the last step."""
    cases = [(args, _reference_lr(*args)) for args in _LR_CASES]
    return check_function(fn, cases, what="lr schedule",
                          compare=lambda g, e: _number(g) is not None and math.isclose(_number(g), e, rel_tol=1e-6,
                                                                                       abs_tol=1e-12),
                          diagnose=_diagnose_lr, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: nucleus (top-p) filtering
# ----------------------------------------------------------------------------------------------

def _top_p_cases() -> list[tuple[tuple, torch.Tensor]]:
    from lmlib.generation import top_p_filter

    g = torch.Generator().manual_seed(5)
    hand = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    cases = [(hand.clone(), 0.75), (hand.clone(), 0.4), (hand[[2, 0, 3, 1]].clone(), 0.9),
             (torch.randn(3, 20, generator=g) * 2, 0.6), (torch.randn(2, 10, generator=g), 1.0)]
    return [((x, p), top_p_filter(x, p)) for x, p in cases]


def _same_kept(got: Any, expected: torch.Tensor) -> bool:
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or not got.is_floating_point():
        return False
    got = got.to(expected.dtype)
    keep = ~torch.isinf(expected)
    return bool(torch.equal(torch.isinf(got) & (got < 0), ~keep)) and torch.allclose(got[keep], expected[keep])


def _diagnose_top_p(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    logits, p = args
    if got is None:
        return _RETURNS_NONE
    if not isinstance(got, torch.Tensor):
        return f"return a tensor of filtered logits, got {type(got).__name__}."
    if got.shape != expected.shape:
        return f"return the logits with the same shape {tuple(expected.shape)}, got {tuple(got.shape)}."
    keep_exp = ~torch.isinf(expected)
    keep_got = ~torch.isinf(got)
    if bool((got >= 0).all()) and torch.allclose(got.sum(-1), torch.ones(got.shape[:-1])):
        return "return filtered LOGITS (removed entries set to -inf), not probabilities."
    if int(keep_got.sum()) == 0 or (~keep_got.reshape(-1, logits.shape[-1])).all(-1).any():
        return "a row has no token left: always keep the most probable token, even when its probability exceeds p."
    if (keep_got.sum() < keep_exp.sum()).item():
        return ("you drop the token that makes the mass reach p: keep every token whose preceding mass "
                "(the probability of the tokens ranked above it) is still below p.")
    if (keep_got.sum() > keep_exp.sum()).item():
        return "you keep too many tokens: stop as soon as the kept probability mass reaches p."
    return ("the right NUMBER of tokens is kept, but not the right ones: after sorting, map the decision "
            "back to the original vocabulary order (e.g. with scatter).")


@never_raises('a function fn(logits, p) returning a float tensor of logits shaped like logits')
def check_top_p(fn: Callable[[torch.Tensor, float], torch.Tensor] | None, *, quiet: bool = False) -> Verdict:
    """``fn(logits (..., V), p) -> logits`` with the tokens outside the nucleus set to ``-inf``."""
    return check_function(fn, _top_p_cases(), what="top-p filter", compare=_same_kept, diagnose=_diagnose_top_p,
                          quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: the size of a KV cache
# ----------------------------------------------------------------------------------------------

#: the model and context of the KV-cache exercise (GPT-2 small shapes, a full window, batch 1)
KV_CONFIG = {"n_layer": 12, "n_head": 12, "n_embd": 768, "tokens": 1024, "batch": 1}


@never_raises('a number (how many values the cache holds)')
def check_kv_cache_floats(answer: Any, *, quiet: bool = False) -> Verdict:
    """How many numbers does the KV cache of :data:`KV_CONFIG` hold when it is full?"""
    c = KV_CONFIG
    d_head = c["n_embd"] // c["n_head"]
    expected = 2 * c["n_layer"] * c["batch"] * c["n_head"] * c["tokens"] * d_head  # K and V, every layer
    one = expected // 2
    hints = [
        (one, "you counted the keys only: the cache holds the values too (x 2)."),
        (expected // c["n_layer"], "that is one layer: every layer has its own keys and values."),
        (one // c["n_layer"], "that is the keys of one layer: count keys AND values, in every layer."),
        (expected * c["n_head"], "the heads split n_embd (d_head = n_embd / n_head); do not multiply by "
                                 "n_head on top of n_embd."),
        (expected * 4, "that is bytes in float32; the question asks for the number of values."),
        (expected / c["tokens"], "that is per token; multiply by the number of cached tokens."),
    ]
    return check_close(answer, expected, what="numbers in the KV cache", rel_tol=1e-9, hints=hints,
                       default_hint="per layer, the cache holds a key and a value vector of n_embd numbers "
                                    "for each token.", quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: bits per character across tokenizers
# ----------------------------------------------------------------------------------------------

#: a BPE model's mean loss (nats per token) and the mean number of characters per token of its text
BPC_LOSS_NATS_PER_TOKEN = 3.2
BPC_CHARS_PER_TOKEN = 3.9


@never_raises('a number (bits per character)')
def check_bits_per_char(answer: Any, *, quiet: bool = False) -> Verdict:
    """Convert the BPE model's loss to bits per character."""
    loss, cpt = BPC_LOSS_NATS_PER_TOKEN, BPC_CHARS_PER_TOKEN
    expected = loss / math.log(2) / cpt
    hints = [
        (loss / cpt, "that is nats per character: divide by ln 2 to get bits."),
        (loss / math.log(2), "that is bits per TOKEN: a token covers several characters, so divide by "
                             "the characters per token."),
        (loss / math.log(2) * cpt, "divide by the characters per token, do not multiply: the same total "
                                   "information is spread over more characters than tokens."),
        (math.exp(loss), "that is the perplexity per token; the question asks for bits per character."),
        (loss / math.log10(2) / cpt, "use the natural logarithm's conversion: bits = nats / ln 2."),
    ]
    return check_close(answer, expected, what="bits per character", rel_tol=1e-4, hints=hints,
                       default_hint="nats/token -> bits/token (divide by ln 2) -> bits/char (divide by "
                                    "chars per token).", quiet=quiet)
