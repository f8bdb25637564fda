"""Decoding variable-length outputs: greedy search and beam search, for seq2seq and decoder-only models.

Both searches look for the output ``y = y_1 ... y_n`` (ending in ``eos_id``) with the highest
model score ``log p(y | x) = sum_t log p(y_t | x, y_<t)``; neither is guaranteed to find it.

Greedy search
    Append the most likely next token, one step at a time; a row stops at its first EOS.

Beam search (束搜索)
    Keep the ``K = beam_size`` best prefixes (the *beams*) of each source. One step extends every
    beam by every token of the vocabulary, ``K · V`` candidates, each scored by the sum of its
    log-probabilities. Among the ``K`` best candidates, those ending in EOS leave the beam: they are
    *finished* hypotheses, kept in a pool per source. The ``K`` best candidates that do not end in
    EOS are the next beams, so the beam stays full. ``beam_size=1`` is exactly greedy search.

Length normalisation
    Every token adds a negative log-probability, so the raw score prefers short outputs. A finished
    hypothesis of ``n`` generated tokens (EOS included) is ranked by ``log p(y | x) / lp(n)``:

    - ``length_norm="average"``: ``lp(n) = n ** length_penalty`` (``length_penalty=1``: the
      average log-probability per token);
    - ``length_norm="gnmt"``: ``lp(n) = ((5 + n) / 6) ** length_penalty``, the form of
      Wu et al. (2016), usually with ``length_penalty`` in 0.6 .. 1.

    ``length_penalty=0`` means no normalisation (``lp = 1``) in both forms. The normalisation only
    ranks finished hypotheses; the beams themselves are always chosen by raw log-probability.

When the search stops
    A source is done as soon as its pool holds ``K`` finished hypotheses (more may join in the
    same step). The search stops when every source is done, or after ``max_len`` generated tokens
    (EOS included). At ``max_len`` the beams still alive (``max_len`` tokens, no EOS) of the sources
    that are not done join the pool as candidates, normalised by their length ``max_len``. The
    answer is the pool's best hypothesis by normalised score. Stopping at ``K`` finished
    hypotheses is a rule, not a guarantee: with normalisation, a beam still alive could later
    finish with a better normalised score. With a beam wide enough to hold every prefix, nothing is
    pruned and no source is done before ``max_len``, so the search is exhaustive.

Sequence-to-sequence models (:class:`lmlib.transformer.Transformer`): the sources are encoded
once, each memory is repeated for its ``K`` beams, and the decoder reads ``bos_id`` followed by a
beam's tokens. Decoder-only language models (any ``nn.Module`` with ``config.vocab_size``,
``config.block_size`` and ``forward(idx) -> (logits, loss)``, such as :class:`lmlib.gpt.GPT`):
one prompt at a time, the model reads the prompt followed by a beam's tokens, and the result is the
continuation after the prompt. No KV cache: every step runs the model on the whole prefix.

Every function returns token lists without BOS, prompt or EOS, puts the model in eval mode for the
call and restores its mode afterwards; it draws no random numbers.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn
import torch.nn.functional as F

from lmlib.validation import check_bool, check_choice, check_float, check_ids, check_instance, check_int, check_tensor

__all__ = ["LENGTH_NORMS", "length_normalizer", "greedy_search_seq2seq", "beam_search_seq2seq", "greedy_search_lm",
           "beam_search_lm"]

#: the forms of length normalisation :func:`beam_search_seq2seq` and :func:`beam_search_lm` know
LENGTH_NORMS = ("average", "gnmt")


def length_normalizer(n: int, length_penalty: float = 1.0, length_norm: str = "average") -> float:
    """The divisor ``lp(n)`` of the score of a hypothesis of ``n`` generated tokens (EOS included):
    ``n ** length_penalty`` (``"average"``) or ``((5 + n) / 6) ** length_penalty`` (``"gnmt"``)."""
    who = "length_normalizer"
    check_int("n", n, min=1, who=who)
    _check_norm(length_penalty, length_norm, who)
    return _lp(n, length_penalty, length_norm)


def _lp(n: int, alpha: float, form: str) -> float:
    return (n if form == "average" else (5 + n) / 6) ** alpha


# --------------------------------------------------------------------------------------------
# Argument checks (kept out of the functions below, so that their bodies are the algorithm)
# --------------------------------------------------------------------------------------------

def _check_norm(length_penalty, length_norm, who: str) -> None:
    check_float("length_penalty", length_penalty, min=0.0, who=who)
    check_choice("length_norm", length_norm, LENGTH_NORMS, who=who)


def _check_seq2seq(model, src, src_key_padding_mask, max_len, bos_id, eos_id, who: str) -> None:
    from lmlib.transformer import Transformer

    check_instance("model", model, Transformer, "an lmlib.transformer.Transformer", who=who)
    c = model.config
    check_ids("src", src, c.src_vocab_size, dims=2, who=who)
    if src.shape[0] == 0 or not 1 <= src.shape[1] <= c.max_len:
        raise ValueError(f"{who}: src must be (B, S) with B >= 1 and 1 <= S <= max_len={c.max_len}, "
                         f"got {tuple(src.shape)}")
    if src_key_padding_mask is not None:
        check_tensor("src_key_padding_mask", src_key_padding_mask, dtype=torch.bool, who=who)
        if src_key_padding_mask.shape != src.shape:
            raise ValueError(f"{who}: src_key_padding_mask must have the shape of src {tuple(src.shape)} "
                             f"(True = padding), got {tuple(src_key_padding_mask.shape)}")
        if bool(src_key_padding_mask.all(dim=1).any()):
            raise ValueError(f"{who}: src_key_padding_mask marks every position of a source as padding")
    check_int("max_len", max_len, min=1, max=c.max_len, who=who)
    check_int("bos_id", bos_id, min=0, max=c.tgt_vocab_size - 1, who=who)
    check_int("eos_id", eos_id, min=0, max=c.tgt_vocab_size - 1, who=who)


def _lm_vocab_and_block(model, who: str) -> tuple[int, int]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who}: model must be a torch.nn.Module (a language model such as lmlib.gpt.GPT), "
                        f"got {type(model).__name__}")
    cfg = getattr(model, "config", None)
    vocab, block = getattr(cfg, "vocab_size", None), getattr(cfg, "block_size", None)
    if not isinstance(vocab, int) or not isinstance(block, int):
        raise ValueError(f"{who}: the model needs config.vocab_size and config.block_size (as lmlib.gpt.GPT)")
    return vocab, block


def _check_lm(model, prompt, max_new_tokens, eos_id, who: str) -> torch.Tensor:
    """Every check of the LM searches; returns the prompt as a 1-D long tensor on the model's device."""
    vocab, block = _lm_vocab_and_block(model, who)
    if isinstance(prompt, (list, tuple)):
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            raise TypeError(f"{who}: prompt must be a list of int token ids or a 1-D integer tensor")
        prompt = torch.tensor(list(prompt), dtype=torch.long)
    check_ids("prompt", prompt, vocab, dims=1, who=who)
    if prompt.numel() == 0:
        raise ValueError(f"{who}: prompt is empty: give at least one token")
    check_int("max_new_tokens", max_new_tokens, min=1, who=who)
    if prompt.numel() + max_new_tokens > block:
        raise ValueError(f"{who}: prompt ({prompt.numel()} tokens) + max_new_tokens ({max_new_tokens}) exceeds "
                         f"the model's block_size={block}")
    if eos_id is not None:
        check_int("eos_id", eos_id, min=0, max=vocab - 1, who=who)
    param = next(model.parameters(), None)
    return prompt.long().to(param.device if param is not None else "cpu")


# --------------------------------------------------------------------------------------------
# The two searches, for any model: next_log_probs(tokens (N, t)) -> (N, V)
# --------------------------------------------------------------------------------------------

def _greedy_search(next_log_probs: Callable[[torch.Tensor], torch.Tensor], batch: int, max_len: int,
                   eos_id: int | None, pad_id: int, device) -> list[list[int]]:
    tokens = torch.zeros(batch, 0, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    for _ in range(max_len):
        next_token = next_log_probs(tokens).argmax(-1)                      # (B,): the most likely token
        next_token = next_token.masked_fill(finished, pad_id)               # a finished row only pads
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        if eos_id is not None:
            finished |= next_token == eos_id
            if bool(finished.all()):
                break
    rows = tokens.tolist()
    return [row[:row.index(eos_id)] if eos_id in row else row for row in rows]


def _beam_search(next_log_probs: Callable[[torch.Tensor], torch.Tensor], n_sources: int, beam_size: int,
                 max_len: int, eos_id: int | None, lp: Callable[[int], float], device) -> list[tuple[float, list[int]]]:
    """The best (normalised score, tokens) of each source; the beams of source b are rows b*K .. b*K+K-1."""
    B, K = n_sources, beam_size
    tokens = torch.zeros(B * K, 0, dtype=torch.long, device=device)      # the beams' tokens so far
    score = torch.full((B, K), -math.inf, device=device)
    score[:, 0] = 0.0                           # K copies of the empty prefix: only one may be extended
    pool: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]   # finished hypotheses per source
    done = [False] * B
    for t in range(1, max_len + 1):
        logp = next_log_probs(tokens).view(B, K, -1)                       # (B, K, V)
        cand = score[:, :, None] + logp                                    # log p of every extension
        V = cand.shape[-1]
        if eos_id is not None:
            kth_best = cand.view(B, -1).topk(K).values[:, -1:]             # (B, 1)
            eos = cand[:, :, eos_id]                                       # (B, K)
            ends = (eos >= kth_best) & torch.isfinite(eos)                 # an EOS among the K best
            for b, k in ends.nonzero().tolist():
                if not done[b]:
                    pool[b].append((eos[b, k].item() / lp(t), tokens[b * K + k].tolist()))
            cand[:, :, eos_id] = -math.inf                                 # beams never hold an EOS
        score, best = cand.view(B, -1).topk(K)                             # (B, K): the next beams
        parent = (torch.arange(B, device=device)[:, None] * K + best // V).view(-1)
        tokens = torch.cat([tokens[parent], (best % V).view(-1, 1)], dim=1)
        done = [d or len(p) >= K for d, p in zip(done, pool)]
        if all(done):
            break
    else:                                       # max_len reached: the live beams are candidates too
        for b in range(B):
            if not done[b]:
                pool[b] += [(s / lp(max_len), tokens[b * K + k].tolist())
                            for k, s in enumerate(score[b].tolist()) if s > -math.inf]
    return [max(p, key=lambda h: h[0]) for p in pool]


def _eval_no_grad(model: nn.Module, fn: Callable[[], Any]) -> Any:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return fn()
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------------
# Sequence-to-sequence models
# --------------------------------------------------------------------------------------------

def _seq2seq_step(model, src, src_key_padding_mask, bos_id: int, repeat: int):
    """Encode once; return next_log_probs(tokens (B*repeat, t)) -> (B*repeat, V)."""
    memory = model.encode(src, src_key_padding_mask).repeat_interleave(repeat, dim=0)    # (B*K, S, d)
    mask = None if src_key_padding_mask is None else src_key_padding_mask.repeat_interleave(repeat, dim=0)
    bos = torch.full((memory.shape[0], 1), bos_id, dtype=torch.long, device=src.device)

    def next_log_probs(tokens):
        logits = model.decode(torch.cat([bos, tokens], dim=1), memory, src_key_padding_mask=mask)
        return F.log_softmax(logits[:, -1].float(), dim=-1)

    return next_log_probs


def greedy_search_seq2seq(model: nn.Module, src: torch.Tensor, *, max_len: int, bos_id: int, eos_id: int,
                          pad_id: int = 0, src_key_padding_mask: torch.Tensor | None = None) -> list[list[int]]:
    """Greedy decoding of the sources ``src (B, S)``: a list of ``B`` token lists (without BOS/EOS).

    Each row stops at its first ``eos_id`` (then receives ``pad_id``, which is not returned), the
    loop when every row has stopped or after ``max_len`` tokens. ``src_key_padding_mask (B, S)``:
    True marks padding, which does not change a row's output.
    """
    who = "greedy_search_seq2seq"
    _check_seq2seq(model, src, src_key_padding_mask, max_len, bos_id, eos_id, who)
    check_int("pad_id", pad_id, min=0, max=model.config.tgt_vocab_size - 1, who=who)
    return _eval_no_grad(model, lambda: _greedy_search(
        _seq2seq_step(model, src, src_key_padding_mask, bos_id, 1), src.shape[0], max_len, eos_id, pad_id,
        src.device))


def beam_search_seq2seq(model: nn.Module, src: torch.Tensor, *, beam_size: int, max_len: int, bos_id: int,
                        eos_id: int, src_key_padding_mask: torch.Tensor | None = None, length_penalty: float = 1.0,
                        length_norm: str = "average", return_scores: bool = False):
    """Beam search for each source of ``src (B, S)``: a list of ``B`` token lists (without BOS/EOS).

    ``return_scores=True`` returns ``(token lists, scores)``, each score the normalised score
    ``log p(y | x) / lp(n)`` of the returned hypothesis (see the module docstring for ``lp``, the
    pool of finished hypotheses and when the search stops). Sources are searched together, ``K``
    beams each; ``src_key_padding_mask (B, S)`` (True = padding) does not change a row's result.
    """
    who = "beam_search_seq2seq"
    _check_seq2seq(model, src, src_key_padding_mask, max_len, bos_id, eos_id, who)
    check_int("beam_size", beam_size, min=1, who=who)
    _check_norm(length_penalty, length_norm, who)
    check_bool("return_scores", return_scores, who=who)
    best = _eval_no_grad(model, lambda: _beam_search(
        _seq2seq_step(model, src, src_key_padding_mask, bos_id, beam_size), src.shape[0], beam_size, max_len,
        eos_id, lambda n: _lp(n, length_penalty, length_norm), src.device))
    seqs = [tokens for _, tokens in best]
    return (seqs, [s for s, _ in best]) if return_scores else seqs


# --------------------------------------------------------------------------------------------
# Decoder-only language models
# --------------------------------------------------------------------------------------------

def _lm_step(model, prompt: torch.Tensor):
    """next_log_probs(tokens (N, t)) -> (N, V): the model reads the prompt, then the tokens."""
    def next_log_probs(tokens):
        idx = torch.cat([prompt.expand(tokens.shape[0], -1), tokens], dim=1)
        logits, _ = model(idx)
        return F.log_softmax(logits[:, -1].float(), dim=-1)

    return next_log_probs


def greedy_search_lm(model: nn.Module, prompt, *, max_new_tokens: int, eos_id: int | None = None) -> list[int]:
    """Greedy continuation of one ``prompt`` (1-D integer tensor or list of ids): at most
    ``max_new_tokens`` tokens, stopping at ``eos_id`` (not returned). ``len(prompt) +
    max_new_tokens`` must fit in the model's ``block_size``."""
    prompt = _check_lm(model, prompt, max_new_tokens, eos_id, "greedy_search_lm")
    return _eval_no_grad(model, lambda: _greedy_search(
        _lm_step(model, prompt), 1, max_new_tokens, eos_id, 0, prompt.device))[0]


def beam_search_lm(model: nn.Module, prompt, *, beam_size: int, max_new_tokens: int, eos_id: int | None = None,
                   length_penalty: float = 1.0, length_norm: str = "average", return_scores: bool = False):
    """Beam search for the continuation of one ``prompt`` (1-D integer tensor or list of ids).

    Returns the best continuation (a token list without the prompt and the EOS), or with
    ``return_scores=True`` the pair ``(tokens, normalised score)``. The rules are those of
    :func:`beam_search_seq2seq` with ``max_len = max_new_tokens``; without ``eos_id`` no
    hypothesis finishes early and all have ``max_new_tokens`` tokens.
    """
    who = "beam_search_lm"
    prompt = _check_lm(model, prompt, max_new_tokens, eos_id, who)
    check_int("beam_size", beam_size, min=1, who=who)
    _check_norm(length_penalty, length_norm, who)
    check_bool("return_scores", return_scores, who=who)
    score, tokens = _eval_no_grad(model, lambda: _beam_search(
        _lm_step(model, prompt), 1, beam_size, max_new_tokens, eos_id,
        lambda n: _lp(n, length_penalty, length_norm), prompt.device))[0]
    return (tokens, score) if return_scores else tokens
