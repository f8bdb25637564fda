"""Text generation from a causal language model: greedy decoding, sampling, and the KV cache.

A language model gives, for every position, logits over the next token. Generation repeats
three steps: run the model on the tokens so far, turn the last position's logits into a choice
of next token, append it. :func:`generate` does that for a batch of prompts.

Choosing the next token (applied in this order, the same as ``transformers``):

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

import torch
from torch import nn

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "next_token_logits_to_probs",
    "sample_next",
    "generate",
    "generate_text",
]


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating-point tensor of shape (..., V)")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got {tuple(logits.shape)}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` for ``temperature > 0``. logits: (..., V)."""
    _check_logits(logits)
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number here, got {temperature!r}")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the ``k``-th largest of its row to ``-inf``. logits: (..., V).

    ``k >= V`` keeps everything."""
    _check_logits(logits)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be a positive int, got {k!r}")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the most probable tokens until their probability mass reaches
    ``p`` (always at least one token); the others get ``-inf``. logits: (..., V)."""
    _check_logits(logits)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p!r}")
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
    logits = apply_temperature(logits.float(), temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def sample_next(logits: torch.Tensor, *, do_sample: bool = True, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Choose one next token per row. logits: (B, V) -> ids (B,) long."""
    _check_logits(logits)
    if logits.dim() != 2:
        raise ValueError(f"sample_next expects logits of shape (B, V), got {tuple(logits.shape)}")
    if not do_sample or temperature == 0:
        return torch.argmax(logits, dim=-1)
    probs = next_token_logits_to_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


def _block_size(model: nn.Module) -> int | None:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "block_size", None) or getattr(cfg, "n_positions", None)


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
) -> torch.Tensor:
    """Extend the prompts ``idx: (B, T)`` by up to ``max_new_tokens`` tokens.

    Returns ``(B, T + n)`` long, the prompts followed by the ``n <= max_new_tokens`` generated
    tokens (``n < max_new_tokens`` only when every row produced ``eos_id``). See the module
    docstring for the arguments; ``temperature=0`` is the same as ``do_sample=False``.
    The model is put in eval mode for the call and restored afterwards.
    """
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        raise ValueError(f"idx must be a (B, T) tensor of token ids, got "
                         f"{tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__}")
    if idx.is_floating_point() or idx.dtype == torch.bool:
        raise TypeError(f"idx must hold integer token ids, got dtype {idx.dtype}")
    if idx.shape[1] == 0:
        raise ValueError("the prompt is empty (T = 0): give at least one token")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if context not in ("slide", "error"):
        raise ValueError(f"context must be 'slide' or 'error', got {context!r}")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and (int(idx.min()) < 0 or int(idx.max()) >= vocab):
        raise ValueError(f"token ids must be in [0, {vocab}), got values in [{int(idx.min())}, {int(idx.max())}]")
    block = _block_size(model)
    if block is None:
        raise ValueError("the model has no config.block_size: cannot know its context window")
    if context == "error" and idx.shape[1] + max_new_tokens > block:
        raise ValueError(f"prompt ({idx.shape[1]} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
                         f"context window of {block} tokens (use context='slide' to slide the window)")
    if use_cache and not hasattr(model, "new_kv_caches"):
        raise ValueError(f"{type(model).__name__} has no new_kv_caches(): call generate(..., use_cache=False)")
    pad = eos_id if pad_id is None else pad_id
    greedy = (not do_sample) or temperature == 0

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
            nxt = sample_next(last, do_sample=not greedy, temperature=temperature or 1.0,
                              top_k=top_k, top_p=top_p, generator=generator)  # (B,)
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
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must be a non-empty string")
    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)
    out = generate(model, ids, max_new_tokens, **kwargs)
    return tokenizer.decode(out[0].tolist())

