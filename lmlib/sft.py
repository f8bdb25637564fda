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

__all__ = ["sft_example", "collate_sft", "sft_batches", "greedy_complete", "exact_match", "CHAT_TOKENS",
           "ChatTemplate", "grow_vocabulary", "add_chat_tokens", "rank_responses"]


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
    from lmlib.generation import generate

    device = next(model.parameters()).device
    room = min(max_new_tokens, block - len(p))             # never slide past the context window
    if room == 0:
        return []
    eos = stop_ids[0] if len(stop_ids) == 1 and stop_ids[0] < model.config.vocab_size else None
    out = generate(model, torch.tensor([p], device=device), room, do_sample=False, eos_id=eos,
                   use_cache=hasattr(model, "new_kv_caches"), context="error")[0, len(p):].tolist()
    for i, t in enumerate(out):                            # cut after the first stop token
        if t in stop_ids:
            return out[: i + 1]
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


# --------------------------------------------------------------------------------------------
# A chat template with special tokens
# --------------------------------------------------------------------------------------------

CHAT_TOKENS = ("<|user|>", "<|assistant|>", "<|end|>")


def grow_vocabulary(gpt: nn.Module, n_new: int) -> nn.Module:
    """A copy of an :class:`lmlib.gpt.GPT` with ``n_new`` more token ids. The old rows of the
    (tied) embedding are kept; each new row starts at the mean of the old rows, so a new token
    begins as an "average" token instead of a random vector the network has never seen."""
    from lmlib.gpt import GPT

    if not isinstance(gpt, GPT):
        raise TypeError(f"grow_vocabulary: gpt must be an lmlib.gpt.GPT, got {type(gpt).__name__}")
    check_int("n_new", n_new, min=1, who="grow_vocabulary")
    import dataclasses

    old = gpt.config.vocab_size
    new = GPT(dataclasses.replace(gpt.config, vocab_size=old + n_new)).to(gpt.wte.weight.device)
    state = {k: v for k, v in gpt.state_dict().items() if k not in ("wte.weight", "lm_head.weight")}
    new.load_state_dict(state, strict=False)
    with torch.no_grad():
        new.wte.weight[:old] = gpt.wte.weight
        new.wte.weight[old:] = gpt.wte.weight.mean(0)
    return new


def add_chat_tokens(gpt: nn.Module, tokenizer) -> tuple[nn.Module, "ChatTemplate"]:
    """``(grown copy of gpt, ChatTemplate)``: the three :data:`CHAT_TOKENS` get the ids right
    after the tokenizer's vocabulary."""
    from lmlib.gpt import GPT

    if not isinstance(gpt, GPT):
        raise TypeError(f"add_chat_tokens: gpt must be an lmlib.gpt.GPT, got {type(gpt).__name__}")
    vocab = check_int("tokenizer.vocab_size", getattr(tokenizer, "vocab_size", None), min=1, who="add_chat_tokens")
    if gpt.config.vocab_size != vocab:
        raise ValueError(f"add_chat_tokens: the model has {gpt.config.vocab_size} token ids, the tokenizer {vocab}")
    template = ChatTemplate(tokenizer, vocab)              # checks the tokenizer before anything is built
    return grow_vocabulary(gpt, len(CHAT_TOKENS)), template


class ChatTemplate:
    """``<|user|> prompt <|assistant|> response <|end|>``, with the three markers as ids
    ``first_id, first_id + 1, first_id + 2`` that no text can produce. ``pair(prompt, response)``
    gives ``(prompt_ids, response_ids)`` for :func:`collate_sft`: the prompt part ends with
    ``<|assistant|>``, the response part ends with ``<|end|>``, so the model learns to stop."""

    def __init__(self, tokenizer, first_id: int) -> None:
        if isinstance(tokenizer, (str, bytes)) or not callable(getattr(tokenizer, "encode", None)):
            raise TypeError(f"ChatTemplate: tokenizer must have encode(text), got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        first_id = check_int("first_id", first_id, min=0, who="ChatTemplate")
        vocab = getattr(tokenizer, "vocab_size", None)
        if isinstance(vocab, int) and not isinstance(vocab, bool) and first_id < vocab:
            raise ValueError(f"ChatTemplate: first_id={first_id} is an id of the tokenizer (0..{vocab - 1}): the "
                             f"markers would collide with text; use first_id >= {vocab}")
        self.user_id, self.assistant_id, self.end_id = first_id, first_id + 1, first_id + 2

    def prompt(self, text: str) -> list[int]:
        check_str("text", text, who="ChatTemplate.prompt")
        return [self.user_id] + self.tokenizer.encode(text) + [self.assistant_id]

    def response(self, text: str) -> list[int]:
        check_str("text", text, nonempty=True, who="ChatTemplate.response")
        return self.tokenizer.encode(text) + [self.end_id]

    def pair(self, prompt: str, response: str) -> tuple[list[int], list[int]]:
        return self.prompt(prompt), self.response(response)


def rank_responses(model: nn.Module, prompt_ids: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]],
                   *, batch_size: int = 64) -> torch.Tensor:
    """``(N, K)`` float64: ``log p(candidate_k | prompt_n)`` summed over the candidate's tokens,
    for every prompt and each of the ``K`` candidate responses; ``.argmax(1)`` is the answer the
    model ranks first. Scoring the answers we accept, instead of decoding freely, measures what
    the model knows even when its free text would not match a string exactly."""
    from lmlib.evaluation import sequence_log_likelihood

    _check_lm(model, "rank_responses")
    prompts = [_as_ids(p, f"prompt_ids[{i}]") for i, p in enumerate(check_sequence("prompt_ids", prompt_ids,
                                                                                   nonempty=True, who="rank_responses"))]
    cands = [_as_ids(c, f"candidates[{k}]") for k, c in enumerate(check_sequence("candidates", candidates,
                                                                                 nonempty=True, who="rank_responses"))]
    if any(not p for p in prompts) or any(not c for c in cands):
        raise ValueError("rank_responses: prompts and candidates must be non-empty")
    vocab = model.config.vocab_size
    for what, lists in (("prompt_ids", prompts), ("candidates", cands)):
        for i, ids in enumerate(lists):
            if max(ids) >= vocab:
                raise ValueError(f"rank_responses: {what}[{i}] holds id {max(ids)}, outside the model's "
                                 f"vocabulary 0..{vocab - 1}")
    longest = max(len(p) for p in prompts) + max(len(c) for c in cands)
    if longest > model.config.block_size + 1:
        raise ValueError(f"rank_responses: prompt + candidate needs {longest} tokens; the context window is "
                         f"{model.config.block_size}")
    seqs = [p + c for p in prompts for c in cands]
    starts = [len(p) for p in prompts for _ in cands]
    scores = sequence_log_likelihood(model, seqs, starts=starts, batch_size=batch_size)
    return scores.view(len(prompts), len(cands))
