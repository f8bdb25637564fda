"""Text generation from a causal language model: greedy decoding, sampling, and the KV cache.

A language model gives, for every position, logits over the next token. Generation repeats
three steps: run the model on the tokens so far, turn the last position's logits into a choice
of next token, append it. :func:`generate` does that for a batch of prompts.

Choosing the next token (applied in this order, the same as ``transformers``):

``repetition_penalty``
    The CTRL rule (Keskar et al. 2019): for every token id already in the sequence (prompt and
    generated tokens), a positive logit is divided by the penalty and a negative one multiplied
    by it, so a penalty ``> 1`` makes every repeat less likely, in greedy decoding too.
    ``1.0`` (the default) is off. See :func:`apply_repetition_penalty`.
``temperature``
    Divide the logits by ``T`` before the softmax: ``T < 1`` sharpens the distribution,
    ``T > 1`` flattens it. ``temperature=0`` means greedy decoding.
``top_k``
    Keep only the ``k`` largest logits (ties with the k-th are kept), set the rest to ``-inf``.
``top_p`` (nucleus sampling)
    Keep the smallest set of most-probable tokens whose total probability reaches ``p``;
    the most probable token is always kept.
``do_sample``
    ``True``: draw from the resulting distribution with ``torch.multinomial`` (pass a seeded
    ``torch.Generator`` for reproducible samples). ``False``: greedy, take the argmax (the
    filters above do not change the argmax).

Stopping: after ``max_new_tokens`` tokens, or, when ``eos_id`` is given, as soon as every
sequence of the batch has produced it. A sequence that has finished keeps receiving
``pad_id`` (default: ``eos_id``) so the batch stays rectangular.

Context-window policy
---------------------
The model has learned ``block_size`` positions, so it can look at most ``block_size`` tokens
back. ``context="slide"`` (the default) conditions every prediction on the last ``block_size``
tokens: prompts longer than the window and generations that run past it simply forget the
oldest tokens. ``context="error"`` refuses (``ValueError``) when prompt + ``max_new_tokens``
would not fit in the window.

The KV cache
------------
Without a cache every step runs the model on the whole context again, although the keys and
values of the earlier positions have not changed (causal attention: a position never looks
forward). With ``use_cache=True`` the prompt is run once, each layer's keys and values are kept
in a :class:`~lmlib.attention.KVCache`, and each further step runs the model on ONE new token,
attending over the cached keys and values. When the window is full, a model with learned
absolute positions cannot just drop the oldest entry (every cached key was computed at its
old position), so the cache is rebuilt from the last ``block_size`` tokens: from then on each
step costs as much as without a cache, and the tokens are exactly those of ``use_cache=False``.

The model interface: ``model(idx (B, T)) -> (logits (B, T, V), loss)``, plus, for the cache,
``model(idx, kv_caches=caches)`` and ``model.new_kv_caches()`` (as :class:`lmlib.gpt.GPT`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmlib.validation import check_bool, check_choice, check_float, check_instance, check_int, check_str, check_tensor

__all__ = [
    "apply_temperature",
    "apply_repetition_penalty",
    "top_k_filter",
    "top_p_filter",
    "next_token_logits_to_probs",
    "sample_next",
    "generate",
    "generate_text",
]


# --------------------------------------------------------------------------------------------
# Argument checks (kept out of the functions below, so that their bodies are the algorithm)
# --------------------------------------------------------------------------------------------

def _check_logits(logits: torch.Tensor, who: str, dims=None) -> None:
    """A floating-point ``(..., V)`` tensor without NaN or ``+inf`` and with a finite entry in every
    row (``-inf`` marks a filtered-out token). Two reductions and one host sync: a row's maximum
    is NaN, ``+inf`` or ``-inf`` exactly when the row is bad, and so is then the sum of the maxima
    (summed in float64, which cannot overflow)."""
    check_tensor("logits", logits, dims=dims, dtype="float", who=who)
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"{who}: logits must have shape (..., V) with V >= 1, got {tuple(logits.shape)}")
    if logits.numel() and not math.isfinite(logits.amax(dim=-1).sum(dtype=torch.float64).item()):
        n_nan, n_inf = int(torch.isnan(logits).sum()), int(torch.isposinf(logits).sum())
        raise ValueError(f"{who}: logits contain {n_nan} NaN and {n_inf} +inf entries, or a row that is all "
                         "-inf: the model produced NaN or infinite logits")


def _check_temperature(temperature: float, who: str, *, allow_zero: bool = False) -> float:
    return check_float("temperature", temperature, min=0.0, min_open=not allow_zero, who=who)


def _check_filters(top_k: int | None, top_p: float | None, who: str) -> None:
    if top_k is not None:
        check_int("top_k", top_k, min=1, who=who)
    if top_p is not None:
        check_float("top_p", top_p, min=0.0, max=1.0, min_open=True, who=who)


# --------------------------------------------------------------------------------------------
# Choosing the next token
# --------------------------------------------------------------------------------------------

def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` for ``temperature > 0``. logits: (..., V)."""
    _check_logits(logits, "apply_temperature")
    _check_temperature(temperature, "apply_temperature")
    return logits / temperature


def apply_repetition_penalty(logits: torch.Tensor, previous_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """The CTRL repetition penalty. logits: (B, V); previous_ids: (B, T) ids already in each row.

    For every id of row ``b`` of ``previous_ids`` (an id counts once, however often it occurs),
    ``logits[b, id]`` becomes ``logit / penalty`` if it is positive and ``logit * penalty``
    otherwise; the other logits are unchanged. ``penalty=1`` changes nothing."""
    _check_logits(logits, "apply_repetition_penalty", dims=2)
    _check_previous_ids(previous_ids, logits, "apply_repetition_penalty")
    _check_repetition_penalty(penalty, "apply_repetition_penalty")
    return _repetition_penalty(logits, previous_ids, penalty)


def _repetition_penalty(logits: torch.Tensor, previous_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    seen = logits.gather(-1, previous_ids)                               # (B, T): the logits of seen ids
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, previous_ids, seen)                         # (B, V)


def _check_repetition_penalty(penalty: float, who: str, name: str = "penalty") -> float:
    return check_float(name, penalty, min=0.0, min_open=True, who=who)


def _check_previous_ids(previous_ids, logits: torch.Tensor, who: str) -> None:
    check_tensor("previous_ids", previous_ids, dims=2, dtype="int", who=who)
    if previous_ids.shape[0] != logits.shape[0]:
        raise ValueError(f"{who}: previous_ids has {previous_ids.shape[0]} rows but logits has {logits.shape[0]}")
    V = logits.shape[-1]
    if previous_ids.numel() and bool(((previous_ids < 0) | (previous_ids >= V)).any()):
        raise ValueError(f"{who}: previous_ids must be token ids in [0, {V}), got values in "
                         f"[{int(previous_ids.min())}, {int(previous_ids.max())}]")
    if previous_ids.device != logits.device:
        raise ValueError(f"{who}: previous_ids is on {previous_ids.device} but logits is on {logits.device}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the ``k``-th largest of its row to ``-inf``. logits: (..., V).

    ``k >= V`` keeps everything."""
    _check_logits(logits, "top_k_filter")
    check_int("k", k, min=1, who="top_k_filter")
    return _top_k(logits, k)


def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the most probable tokens until their probability mass reaches
    ``p`` (always at least one token); the others get ``-inf``. logits: (..., V)."""
    _check_logits(logits, "top_p_filter")
    check_float("p", p, min=0.0, max=1.0, min_open=True, who="top_p_filter")
    return _top_p(logits, p)


def _top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    if p == 1:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # probability of the tokens ranked above
    remove_sorted = mass_before >= p
    remove_sorted[..., 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)  # back to vocab order
    return logits.masked_fill(remove, float("-inf"))


def next_token_logits_to_probs(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                               top_p: float | None = None) -> torch.Tensor:
    """The sampling distribution (..., V) after temperature, top-k and top-p."""
    _check_logits(logits, "next_token_logits_to_probs")
    _check_temperature(temperature, "next_token_logits_to_probs")
    _check_filters(top_k, top_p, "next_token_logits_to_probs")
    return _probs(logits, temperature, top_k, top_p)


def _probs(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    logits = logits.float() / temperature  # (the checks are done once by the caller)
    if top_k is not None:
        logits = _top_k(logits, top_k)
    if top_p is not None:
        logits = _top_p(logits, top_p)
    return torch.softmax(logits, dim=-1)


def sample_next(logits: torch.Tensor, *, do_sample: bool = True, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Choose one next token per row. logits: (B, V) -> ids (B,) long. ``temperature=0`` or
    ``do_sample=False``: greedy (argmax)."""
    _check_sampling(do_sample, temperature, top_k, top_p, generator, "sample_next")
    _check_logits(logits, "sample_next", dims=2)
    return _choose(logits, do_sample and temperature != 0, temperature, top_k, top_p, generator)


def _check_sampling(do_sample, temperature, top_k, top_p, generator, who: str) -> None:
    check_bool("do_sample", do_sample, who=who)
    _check_temperature(temperature, who, allow_zero=True)
    _check_filters(top_k, top_p, who)
    check_instance("generator", generator, torch.Generator, "a torch.Generator", nullable=True, who=who)


def _choose(logits: torch.Tensor, sample: bool, temperature: float, top_k: int | None, top_p: float | None,
            generator: torch.Generator | None) -> torch.Tensor:
    """:func:`sample_next` without its checks (``sample=False``: greedy), for callers that made them."""
    if not sample:
        return torch.argmax(logits, dim=-1)  # (B,)
    probs = _probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


# --------------------------------------------------------------------------------------------
# The generation loop
# --------------------------------------------------------------------------------------------

def _block_size(model: nn.Module) -> int | None:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "block_size", None) or getattr(cfg, "n_positions", None)


def _check_generate_args(model, idx, max_new_tokens, temperature, top_k, top_p, do_sample, eos_id, pad_id,
                         use_cache, generator, context, repetition_penalty=1.0) -> int:
    """Every check of :func:`generate`, once, before the loop; returns the model's ``block_size``."""
    who = "generate"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who}: model must be a torch.nn.Module, got {type(model).__name__}")
    check_tensor("idx", idx, dims=2, dtype="int", who=who)
    if idx.shape[1] == 0:
        raise ValueError(f"{who}: the prompt idx is empty (T = 0): give at least one token")
    check_int("max_new_tokens", max_new_tokens, min=0, who=who)
    _check_sampling(do_sample, temperature, top_k, top_p, generator, who)
    _check_repetition_penalty(repetition_penalty, who, "repetition_penalty")
    check_bool("use_cache", use_cache, who=who)
    check_choice("context", context, ("slide", "error"), who=who)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    for name, tok in (("eos_id", eos_id), ("pad_id", pad_id)):
        if tok is not None:
            check_int(name, tok, min=0, max=None if vocab is None else vocab - 1, who=who)
    if vocab is not None and idx.numel() and bool(((idx < 0) | (idx >= vocab)).any()):
        raise ValueError(f"{who}: token ids idx must be in [0, {vocab}), got values in "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    param = next(model.parameters(), None)
    if param is not None and param.device != idx.device:
        raise ValueError(f"{who}: idx is on {idx.device} but the model is on {param.device}")
    block = _block_size(model)
    if block is None:
        raise ValueError(f"{who}: the model has no config.block_size: cannot know its context window")
    if context == "error" and idx.shape[1] + max_new_tokens > block:
        raise ValueError(f"{who}: prompt ({idx.shape[1]} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
                         f"context window of {block} tokens (use context='slide' to slide the window)")
    if use_cache and not hasattr(model, "new_kv_caches"):
        raise ValueError(f"{who}: {type(model).__name__} has no new_kv_caches(): call generate(..., use_cache=False)")
    return block


@torch.inference_mode()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    do_sample: bool = True,
    eos_id: int | None = None,
    pad_id: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    context: str = "slide",
    repetition_penalty: float = 1.0,
) -> torch.Tensor:
    """Extend the prompts ``idx: (B, T)`` by up to ``max_new_tokens`` tokens.

    Returns ``(B, T + n)`` long, the prompts followed by the ``n <= max_new_tokens`` generated
    tokens (``n < max_new_tokens`` only when every row produced ``eos_id``). See the module
    docstring for the arguments; ``temperature=0`` is the same as ``do_sample=False``;
    ``repetition_penalty`` (default 1.0: off) is applied to the logits before everything else.
    The model is put in eval mode for the call and restored afterwards.
    """
    block = _check_generate_args(model, idx, max_new_tokens, temperature, top_k, top_p, do_sample, eos_id,
                                 pad_id, use_cache, generator, context, repetition_penalty)
    pad = eos_id if pad_id is None else pad_id
    sample = do_sample and temperature != 0

    was_training = model.training
    model.eval()
    try:
        out = idx.long()
        finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        caches = None
        for _ in range(max_new_tokens):
            if not use_cache:
                logits, _ = model(out[:, -block:])                          # (B, t, V)
            elif caches is None or caches[0].length + 1 > block:
                caches = model.new_kv_caches()                             # (re)build from the window
                logits, _ = model(out[:, -block:], kv_caches=caches)
            else:
                logits, _ = model(out[:, -1:], kv_caches=caches)           # (B, 1, V): one new token
            last = logits[:, -1, :].float()                                # (B, V)
            _check_logits(last, "generate")                                # one fused NaN/inf scan
            if repetition_penalty != 1.0:
                last = _repetition_penalty(last, out, repetition_penalty)  # every id seen so far
            nxt = _choose(last, sample, temperature, top_k, top_p, generator)  # (B,)
            if eos_id is not None:
                nxt = torch.where(finished, torch.full_like(nxt, pad), nxt)
                finished |= nxt == eos_id
            out = torch.cat([out, nxt[:, None]], dim=1)                    # (B, t + 1)
            if eos_id is not None and bool(finished.all()):
                break
    finally:
        model.train(was_training)
    return out


def generate_text(model: nn.Module, tokenizer, prompt: str, max_new_tokens: int, **kwargs) -> str:
    """Encode ``prompt`` with ``tokenizer`` (``encode``/``decode``), :func:`generate`, and decode
    the prompt plus the new tokens. Keyword arguments go to :func:`generate`."""
    device = _check_generate_text_args(model, tokenizer, prompt)
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)
    out = generate(model, ids, max_new_tokens, **kwargs)
    return tokenizer.decode(out[0].tolist())


def _check_generate_text_args(model, tokenizer, prompt) -> torch.device:
    """Checks of :func:`generate_text` that :func:`generate` cannot make; returns the model's device."""
    who = "generate_text"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who}: model must be a torch.nn.Module, got {type(model).__name__}")
    for method in ("encode", "decode"):
        if not callable(getattr(tokenizer, method, None)):
            raise TypeError(f"{who}: tokenizer must have encode() and decode(), got {type(tokenizer).__name__}")
    check_str("prompt", prompt, nonempty=True, who=who)
    param = next(model.parameters(), None)
    return torch.device("cpu") if param is None else param.device
