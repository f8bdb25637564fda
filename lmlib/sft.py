"""Supervised fine-tuning (SFT) of a causal language model on prompt -> response pairs.

An instruction example is a *prompt* (``"Who speaks: ...\\nSpeaker:"``) and the *response* we
want (``" HAMLET\\n"``). For training, the two are concatenated into one token sequence
``s = prompt + response`` and the model is trained as a language model, input ``s[:-1]``,
target ``s[1:]``, with one change: the targets that are prompt tokens get the label ``-100`` so
the loss (``cross_entropy(..., ignore_index=-100)``) counts only the response. The model is not
taught to write prompts, only to answer them.

Position ``i`` of the input predicts ``s[i + 1]``; it is a response target exactly when
``i + 1 >= len(prompt)``, i.e. for ``i >= len(prompt) - 1``. So an example of ``P`` prompt
tokens and ``R`` response tokens has ``P + R - 1`` input positions of which the last ``R`` carry
a label.

API
---
``sft_example(prompt_ids, response_ids, *, block_size) -> (input_ids, labels)`` (lists)
``collate_sft(pairs, *, pad_id, block_size) -> {"idx": (B, T), "targets": (B, T)}`` (the
keyword names of :class:`lmlib.gpt.GPT`'s forward, so :func:`lmlib.training.train` can call it)
``greedy_complete(model, prompt_ids, *, max_new_tokens, stop_ids)`` and
``exact_match(model, tokenizer, pairs, ...)`` for evaluation.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from lmlib.masking import IGNORE_INDEX
from lmlib.validation import check_int, check_sequence, check_str, check_tensor

__all__ = ["sft_example", "collate_sft", "sft_batches", "greedy_complete", "exact_match"]


def _as_ids(x: Sequence[int], what: str) -> list[int]:
    if isinstance(x, torch.Tensor):
        if x.dim() != 1:
            raise ValueError(f"{what} must be a 1-D sequence of token ids, got shape {tuple(x.shape)}")
        check_tensor(what, x, dtype="int")
        x = x.tolist()
    x = check_sequence(what, x)
    if any(isinstance(t, bool) or not isinstance(t, int) for t in x):
        raise TypeError(f"{what} must be a sequence of int token ids")
    if any(t < 0 for t in x):
        raise ValueError(f"{what} holds a negative token id {min(x)}")
    return x


def sft_example(prompt_ids: Sequence[int], response_ids: Sequence[int], *, block_size: int
                ) -> tuple[list[int], list[int]]:
    """One training example: ``(input_ids, labels)``, two lists of ``len(prompt) + len(response) - 1``
    ids, with ``labels[i] = -100`` wherever the target is a prompt token.

    Raises ``ValueError`` for an empty prompt or response, a prompt that alone fills the context
    window, or an example longer than ``block_size`` (nothing is cut silently).
    """
    p = _as_ids(prompt_ids, "prompt_ids")
    r = _as_ids(response_ids, "response_ids")
    check_int("block_size", block_size, min=1, who="sft_example")
    if not p:
        raise ValueError("the prompt is empty; an SFT example needs at least one prompt token")
    if not r:
        raise ValueError("the response is empty; there would be nothing to learn")
    if len(p) >= block_size:
        raise ValueError(f"the prompt has {len(p)} tokens but the context window is {block_size}: "
                         "no room is left for the response")
    if len(p) + len(r) - 1 > block_size:
        raise ValueError(f"prompt ({len(p)}) + response ({len(r)}) tokens need {len(p) + len(r) - 1} input "
                         f"positions, more than block_size={block_size}; shorten the example")
    s = p + r
    inputs = s[:-1]
    labels = [IGNORE_INDEX] * (len(p) - 1) + s[len(p):]
    return inputs, labels


def collate_sft(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, pad_id: int, block_size: int
                ) -> dict[str, torch.Tensor]:
    """Encode ``[(prompt_ids, response_ids), ...]`` into a right-padded batch
    ``{"idx": (B, T), "targets": (B, T)}``; padding positions get target ``-100``.

    Right padding is safe for a causal model: a real position never attends to a later one.
    """
    pairs = check_sequence("pairs", pairs, who="collate_sft")
    if len(pairs) == 0:
        raise ValueError("cannot collate an empty list of SFT pairs")
    check_int("pad_id", pad_id, min=0, who="collate_sft")
    examples = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"pair {i} (pairs[{i}]) must be (prompt_ids, response_ids)")
        try:
            examples.append(sft_example(pair[0], pair[1], block_size=block_size))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"pair {i} (pairs[{i}]): {exc}") from None
    T = max(len(x) for x, _ in examples)
    idx = torch.full((len(examples), T), pad_id, dtype=torch.long)              # (B, T)
    targets = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)    # (B, T)
    for b, (x, y) in enumerate(examples):
        idx[b, : len(x)] = torch.tensor(x)
        targets[b, : len(y)] = torch.tensor(y)
    return {"idx": idx, "targets": targets}


def sft_batches(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: int, pad_id: int,
                block_size: int) -> Callable[[torch.Generator], dict[str, torch.Tensor]]:
    """A ``get_batch(generator)`` for :func:`lmlib.training.train` drawing random SFT batches.
    Every pair is validated once, up front."""
    pairs = check_sequence("pairs", pairs, who="sft_batches")
    if len(pairs) == 0:
        raise ValueError("no SFT pairs to train on")
    check_int("batch_size", batch_size, min=1, who="sft_batches")
    collate_sft(pairs, pad_id=pad_id, block_size=block_size)  # validate everything now
    bs = min(batch_size, len(pairs))

    def get_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randperm(len(pairs), generator=generator)[:bs].tolist()
        return collate_sft([pairs[i] for i in idx], pad_id=pad_id, block_size=block_size)

    return get_batch


def _check_lm(model, who: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who}: model must be an nn.Module (a causal LM), got {type(model).__name__}")
    cfg = getattr(model, "config", None)
    if not (isinstance(getattr(cfg, "block_size", None), int) and isinstance(getattr(cfg, "vocab_size", None), int)):
        raise TypeError(f"{who}: model must have a config with block_size and vocab_size (an lmlib GPT)")


@torch.no_grad()
def greedy_complete(model: nn.Module, prompt_ids: Sequence[int], *, max_new_tokens: int,
                    stop_ids: Sequence[int] = ()) -> list[int]:
    """Greedy decoding (always the most likely next token) from a causal LM whose forward
    returns ``(logits (1, T, V), ...)``; stops after a token in ``stop_ids`` (included) or
    ``max_new_tokens``. Returns the generated ids only."""
    _check_lm(model, "greedy_complete")
    p = _as_ids(prompt_ids, "prompt_ids")
    check_int("max_new_tokens", max_new_tokens, min=0, who="greedy_complete")
    stop_ids = _as_ids(stop_ids, "stop_ids")
    block = model.config.block_size
    if not p:
        raise ValueError("the prompt is empty")
    if len(p) >= block:
        raise ValueError(f"the prompt has {len(p)} tokens; the context window is {block}")
    if p and max(p) >= model.config.vocab_size:
        raise ValueError(f"greedy_complete: prompt_ids holds id {max(p)}, outside the model's vocabulary "
                         f"0..{model.config.vocab_size - 1}")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[int] = []
    # With a KV cache (lmlib.gpt.GPT.new_kv_caches) each new token costs one position, not T.
    caches = model.new_kv_caches() if hasattr(model, "new_kv_caches") else None
    seq = torch.tensor([p], device=device)
    try:
        for _ in range(max_new_tokens):
            if len(p) + len(out) >= block:
                break
            if caches is not None:
                logits, _ = model(seq, kv_caches=caches)        # seq: the tokens not cached yet
            else:
                logits, _ = model(torch.tensor([p + out], device=device))
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            if nxt in stop_ids:
                break
            seq = torch.tensor([[nxt]], device=device)
    finally:
        model.train(was)
    return out


def _check_exact_match_args(model, encode, decode, pairs, stop, max_new_tokens) -> None:
    who = "exact_match"
    _check_lm(model, who)
    for name, f in (("encode", encode), ("decode", decode)):
        if not callable(f):
            raise TypeError(f"{who}: {name} must be a function, got {type(f).__name__}")
    items = check_sequence("pairs", pairs, who=who)
    if not items:
        raise ValueError("exact_match needs at least one pair")
    for i, pair in enumerate(items):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise TypeError(f"{who}: pairs[{i}] must be a (prompt, response) pair of str, got {pair!r:.80}")
    check_str("stop", stop, who=who)
    check_int("max_new_tokens", max_new_tokens, min=0, who=who)


def exact_match(model: nn.Module, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
                pairs: Sequence[tuple[str, str]], *, stop: str = "\n", max_new_tokens: int = 16
                ) -> tuple[float, list[str]]:
    """Fraction of ``(prompt, response)`` text pairs for which greedy decoding after the prompt
    reproduces the response exactly (compared after stripping white space, up to ``stop``).
    Returns ``(score, generated_texts)``."""
    _check_exact_match_args(model, encode, decode, pairs, stop, max_new_tokens)
    stop_ids = encode(stop) if stop else []
    stop_ids = stop_ids[-1:] if stop_ids else []
    hits, outs = 0, []
    for prompt, response in pairs:
        gen = decode(greedy_complete(model, encode(prompt), max_new_tokens=max_new_tokens, stop_ids=stop_ids))
        gen = gen.split(stop)[0] if stop else gen
        outs.append(gen)
        hits += gen.strip() == response.split(stop)[0].strip() if stop else gen.strip() == response.strip()
    return hits / len(pairs), outs
