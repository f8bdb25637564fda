"""Checkers for the exercises of chapter 6 (masked-language-model pretraining)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lmlib.exercises import Verdict, check_close, check_function, correct, hint, never_raises

__all__ = ["check_loss_positions", "check_mask_tokens", "check_mlm_loss", "check_attention_pairs"]


@never_raises('a number (of positions)')
def check_loss_positions(answer, *, quiet: bool = False) -> Verdict:
    """Expected number of positions that contribute to the MLM loss in a batch of 32 sequences
    of 64 tokens (no special tokens), with the 15 % / 80-10-10 rule."""
    expected = 32 * 64 * 0.15
    return check_close(answer, expected, what="expected number of loss positions", quiet=quiet, hints=[
        (32 * 64 * 0.15 * 0.8, "that counts only the [MASK] positions; the random and unchanged "
                               "selected tokens are predicted too."),
        (32 * 64 * 0.15 * 0.9, "the tokens left unchanged are still selected and still predicted."),
        (64 * 0.15, "that is one sequence; the batch has 32."),
        (32 * 64, "only the selected 15 % carry a label; the rest are -100."),
    ])


def _rates(fn, n: int = 200_000, vocab: int = 40, mask_id: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (n,), generator=g)
    out = fn(ids.clone(), mask_id, vocab, torch.Generator().manual_seed(seed + 1))
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError("return (corrupted_ids, labels)")
    corrupted, labels = out
    if not (isinstance(corrupted, torch.Tensor) and isinstance(labels, torch.Tensor)
            and corrupted.shape == ids.shape and labels.shape == ids.shape):
        raise TypeError("both outputs must be tensors shaped like the input ids")
    return ids, corrupted.long(), labels.long()


@never_raises('a function fn(ids, mask_id, vocab_size, generator) returning (corrupted, labels) tensors')
def check_mask_tokens(fn, *, quiet: bool = False) -> Verdict:
    """``fn(ids (N,), mask_id, vocab_size, generator) -> (corrupted, labels)`` implementing the
    BERT rule; checked statistically on 200,000 tokens."""
    if fn is None:
        return hint("define my_mask_tokens and pass it to the checker.", quiet=quiet)
    try:
        ids, c, lab = _rates(fn)
    except NotImplementedError:
        return hint("the function still raises NotImplementedError.", quiet=quiet)
    except Exception as exc:
        return hint(f"calling your function raised {type(exc).__name__}: {exc}", quiet=quiet)
    n = ids.numel()
    sel = lab != -100
    s = int(sel.sum())
    tol = lambda p, m: 5 * math.sqrt(p * (1 - p) / max(m, 1))  # noqa: E731
    if s == 0:
        return hint("no label differs from -100: the selected positions must keep their original id as label.",
                    quiet=quiet)
    if int((lab != -100).sum()) == n:
        return hint("every position has a label; unselected positions must get -100.", quiet=quiet)
    if not torch.equal(lab[sel], ids[sel]):
        return hint("the label of a selected position must be the ORIGINAL token, not the corrupted one.",
                    quiet=quiet)
    if abs(s / n - 0.15) > tol(0.15, n):
        return hint(f"{s / n:.3f} of the positions are selected; it should be 0.15.", quiet=quiet)
    if not torch.equal(c[~sel], ids[~sel]):
        return hint("an unselected position was changed; only selected positions may be corrupted.", quiet=quiet)
    m = int((c[sel] == 1).sum()) / s
    kept = int((c[sel] == ids[sel]).sum()) / s
    if abs(m - 0.8) > tol(0.8, s):
        if abs(m - 1.0) < 0.01:
            return hint("every selected token became [MASK]; 10 % should become a random token and 10 % stay.",
                        quiet=quiet)
        return hint(f"{m:.3f} of the selected tokens became [MASK]; it should be 0.8.", quiet=quiet)
    if abs(kept - 0.1) > 0.02:
        return hint(f"{kept:.3f} of the selected tokens are unchanged; it should be about 0.1 "
                    "(plus the rare random draws that hit the original).", quiet=quiet)
    return correct(f"{s / n:.3f} selected; of those {m:.3f} [MASK], {kept:.3f} unchanged, the rest random.",
                   quiet=quiet)


def _ref_mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


@never_raises('a function fn(logits, labels) returning a scalar tensor')
def check_mlm_loss(fn, *, quiet: bool = False) -> Verdict:
    """``fn(logits (B, T, V), labels (B, T)) -> scalar`` mean cross-entropy over labelled positions."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for B, T, V in ((2, 5, 7), (3, 8, 11)):
        logits = torch.randn(B, T, V, generator=g)
        labels = torch.randint(V, (B, T), generator=g)
        labels[torch.rand(B, T, generator=g) > 0.3] = -100
        labels[0, 0] = 3
        cases.append(((logits, labels), _ref_mlm_loss(logits, labels)))

    def diagnose(args, got, expected):
        if got is None:
            return "your function returned None; replace the placeholder with your code."
        logits, labels = args
        V = logits.shape[-1]
        safe = labels.clamp(min=0)
        every = F.cross_entropy(logits.reshape(-1, V), safe.reshape(-1), reduction="none")
        sel = (labels != -100).reshape(-1)
        if torch.allclose(torch.as_tensor(got, dtype=every.dtype), every[sel].sum() / sel.numel(), atol=1e-5):
            return "you divided by ALL positions; average over the labelled positions only."
        if torch.allclose(torch.as_tensor(got, dtype=every.dtype), every[sel].sum(), atol=1e-4):
            return "that is the sum; the loss is the mean over the labelled positions."
        return "use log_softmax over the vocabulary and pick the label's entry at positions whose label is not -100."

    return check_function(fn, cases, what="masked-LM loss", quiet=quiet, diagnose=diagnose,
                          compare=lambda got, exp: isinstance(got, torch.Tensor) and got.numel() == 1
                          and torch.allclose(got.float(), exp, atol=1e-5))


@never_raises('two numbers (the BERT count and the GPT count)')
def check_attention_pairs(bert_pairs, gpt_pairs, *, quiet: bool = False) -> Verdict:
    """Number of (query, key) pairs that may attend in one sequence of 8 tokens: BERT, GPT."""
    v1 = check_close(bert_pairs, 64, what="BERT (query, key) pairs for T = 8", quiet=True,
                     hints=[(36, "that is the causal count; BERT attends in both directions."),
                            (56, "a token attends to itself too.")])
    if not v1:
        return hint(v1.message.removeprefix("Hint: "), quiet=quiet)
    v2 = check_close(gpt_pairs, 36, what="GPT (query, key) pairs for T = 8", quiet=True,
                     hints=[(28, "a token attends to itself as well: T (T + 1) / 2."),
                            (32, "count the lower triangle including the diagonal: T (T + 1) / 2."),
                            (64, "GPT is causal: a query sees only keys at or before its position.")])
    if not v2:
        return hint(v2.message.removeprefix("Hint: "), quiet=quiet)
    return correct("BERT: T^2 = 64 pairs, GPT: T (T + 1) / 2 = 36 pairs.", quiet=quiet)
