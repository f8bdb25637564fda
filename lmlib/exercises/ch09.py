"""Checkers for the exercises of Chapter 9 (applications: translation, summarization, generation).

- :func:`check_lm_targets` -- the input and the targets of one decoder-only translation example:
  which positions the loss counts, and what each one predicts.
- :func:`check_beam_step` -- one step of beam search: the ``K`` best extensions of ``K`` beams that
  do not end in EOS, chosen jointly over all ``K * V`` candidates.
- :func:`check_repetition_penalty` -- CTRL's repetition penalty applied to a batch of logits.
- :func:`check_rouge1` -- ROUGE-1 precision, recall and F-measure of a candidate summary.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any, Callable

import torch

from lmlib.exercises import Verdict, correct, describe, hint, never_raises

__all__ = ["check_lm_targets", "check_beam_step", "check_repetition_penalty", "check_rouge1", "ROUGE1_CASES"]

_RETURNS_NONE = "your function returns None: replace the placeholder `return None` with your code."


def _raised(what: str, exc: Exception) -> str:
    if isinstance(exc, NotImplementedError):
        return f"{what}: the function still raises NotImplementedError."
    return f"{what}: calling it raised {type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# Exercise: the targets of a decoder-only translator
# ---------------------------------------------------------------------------------------------

def _lm_targets(prompt: list[int], answer: list[int], eos: int) -> tuple[list[int], list[int]]:
    """The reference: the model reads prompt + answer and predicts answer + [eos] after the prompt."""
    idx = prompt + answer
    targets = [-100] * (len(prompt) - 1) + answer + [eos]
    return idx, targets


def _cases() -> list[tuple[list[int], list[int], int]]:
    rng = random.Random(9)
    cases = [([7, 3, 1], [20, 21], 2), ([5, 1], [30], 2), ([9, 8, 6, 4, 1], [11, 12, 13, 14], 2)]
    for _ in range(5):
        prompt = [rng.randrange(40, 90) for _ in range(rng.randrange(1, 6))] + [1]
        cases.append((prompt, [rng.randrange(10, 40) for _ in range(rng.randrange(1, 8))], 2))
    return cases


def _as_int_list(x: Any) -> list[int] | None:
    try:
        out = [int(v) for v in x]
    except Exception:  # noqa: BLE001 - any kind of answer
        return None
    return out if all(float(v) == o for v, o in zip(x, out)) else None


def _diagnose_targets(prompt, answer, eos, idx, targets) -> str:
    want_idx, want_t = _lm_targets(prompt, answer, eos)
    p = len(prompt)
    if idx == want_idx + [eos]:
        return ("the input ends with <eos>: the model never needs to read <eos>, only to predict it, so the "
                "input is prompt + answer and <eos> is the last target.")
    if idx != want_idx:
        return f"the input should be the prompt followed by the answer, {want_idx}; yours is {idx}."
    if targets == [-100] * (p - 1) + answer:
        return ("the last target should be <eos>: without it the model never learns where an answer ends, and "
                "decoding would not know when to stop.")
    if len(targets) != len(idx):
        return (f"targets must have one entry per input position ({len(idx)}), yours has {len(targets)}: "
                "targets[t] is what the model should predict after reading idx[:t + 1].")
    if targets == idx:
        return "your targets equal the input: targets[t] is the token that comes AFTER idx[t] (shift left by one)."
    if targets == (idx[1:] + [eos]):
        return ("the loss also counts predicting the prompt (the source and <sep>); mark those positions -100 "
                "so that the model is trained to translate, not to model the source.")
    if targets == [-100] * p + answer[1:] + [eos]:
        return ("one position too many is masked: the position of <sep> (the prompt's last token) predicts the "
                "first answer token, so it must not be -100.")
    if targets[:p - 1] == want_t[:p - 1] and targets[p - 1:] == [-100] * (len(targets) - p + 1):
        return "the answer positions are masked too: only the prompt positions (before <sep>'s) are -100."
    first = next(i for i, (a, b) in enumerate(zip(targets, want_t)) if a != b)
    return f"position {first} (input token {idx[first]}) should have target {want_t[first]}, yours is {targets[first]}."


@never_raises("a function fn(prompt, answer, eos) returning (idx, targets), two lists of ints")
def check_lm_targets(fn: Callable, *, quiet: bool = False) -> Verdict:
    """``fn(prompt, answer, eos) -> (idx, targets)`` for a decoder-only translator: ``prompt`` ends with
    ``<sep>``; ``targets[t]`` is the token to predict after ``idx[:t+1]`` or -100 where no loss counts."""
    what = "lm_targets"
    if not callable(fn):
        return hint(f"{what}: pass your function itself (check_lm_targets(lm_targets)), not {describe(fn)}.",
                    quiet=quiet)
    for prompt, answer, eos in _cases():
        try:
            got = fn(list(prompt), list(answer), eos)
        except Exception as exc:  # noqa: BLE001 - the learner's code
            return hint(_raised(what, exc), quiet=quiet)
        if got is None:
            return hint(f"{what}: {_RETURNS_NONE}", quiet=quiet)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return hint(f"{what}: return a pair (idx, targets), not {describe(got)}.", quiet=quiet)
        idx, targets = _as_int_list(got[0]), _as_int_list(got[1])
        if idx is None or targets is None:
            return hint(f"{what}: idx and targets must be lists (or 1-D tensors) of ints; got "
                        f"{describe(got[0])} and {describe(got[1])}.", quiet=quiet)
        if (idx, targets) != _lm_targets(list(prompt), list(answer), eos):
            return hint(f"{what} for prompt={prompt}, answer={answer}, eos={eos}: "
                        + _diagnose_targets(list(prompt), list(answer), eos, idx, targets), quiet=quiet)
    return correct("the model reads the prompt and the answer, and the loss counts exactly the answer and "
                   "<eos>, each predicted from everything before it.", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: one step of beam search
# ---------------------------------------------------------------------------------------------

def _reference_step(scores: torch.Tensor, log_probs: torch.Tensor, eos_id: int):
    """The K best (parent, token, score) extensions that do not end in EOS, best first."""
    K, V = log_probs.shape
    cand = scores[:, None] + log_probs
    cand[:, eos_id] = -math.inf
    new_scores, flat = cand.view(-1).topk(K)
    return flat // V, flat % V, new_scores


def _beam_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(scores, log_probs, eos_id) cases where each typical mistake gives a different answer."""
    g = torch.Generator().manual_seed(9)
    cases = []
    for K, V, eos, spread in ((3, 6, 1, 2.0), (2, 5, 0, 3.0), (4, 7, 2, 1.5)):
        log_probs = torch.log_softmax(spread * torch.randn(K, V, generator=g, dtype=torch.float64), dim=-1)
        log_probs[0, eos] = log_probs[0].max() + 0.5                  # beam 0 likes EOS most
        log_probs[0] = torch.log_softmax(log_probs[0], dim=-1)
        scores = -torch.arange(K, dtype=torch.float64) * 1.7 - 0.3   # beam 0 is far ahead
        cases.append((scores, log_probs, eos))
    scores = torch.tensor([-0.5, -math.inf], dtype=torch.float64)   # the first step: one real beam
    cases.append((scores, torch.log_softmax(torch.tensor([[0.1, 2.0, 1.0, -1.0], [0.3, 0.2, 0.1, 0.0]],
                                                         dtype=torch.float64), dim=-1), 0))
    return cases


def _as_triple(got: Any, K: int):
    """The learner's answer as three 1-D tensors of length K, or a hint string."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return "return a tuple (parents, tokens, new_scores) of three tensors of length K, " \
               f"not {describe(got)}."
    out = []
    for name, x in zip(("parents", "tokens", "new_scores"), got):
        try:
            t = torch.as_tensor(x).detach().cpu()
        except Exception:  # noqa: BLE001 - not convertible
            return f"{name} must be a tensor (or list) of {K} numbers, not {describe(x)}."
        if t.shape != (K,):
            return f"{name} must have shape ({K},) (one entry per new beam), got {tuple(t.shape)}."
        out.append(t)
    return out


def _same(got, ref) -> bool:
    p, t, s = got
    rp, rt, rs = ref
    return (torch.equal(p.long(), rp.long()) and torch.equal(t.long(), rt.long())
            and torch.allclose(s.double(), rs.double(), rtol=1e-6, atol=1e-8))


def _diagnose(got, scores, log_probs, eos_id) -> str:
    K, V = log_probs.shape
    p, t, s = (x.long() if i < 2 else x.double() for i, x in enumerate(got))
    ref = _reference_step(scores.clone(), log_probs.clone(), eos_id)
    finite = torch.isfinite(ref[2])
    if torch.allclose(s[finite], ref[2].exp()[finite], rtol=1e-5):
        return ("your new_scores are probabilities (the exp of the right values): keep log-probabilities and "
                "add them; products of many probabilities underflow.")
    order = s.argsort(descending=True, stable=True)
    if _same((p[order], t[order], s[order]), ref):
        return "the right K candidates, in the wrong order: return them best first (descending score)."
    cand = scores[:, None] + log_probs
    top, flat = cand.view(-1).topk(K)
    if _same(got, (flat // V, flat % V, top)):
        return ("an extension that ends in EOS is a finished hypothesis: it leaves the beam (give it a score of "
                "-inf before choosing), so that the K new beams can all still grow.")
    if _same(got, (ref[1], ref[0], ref[2])):
        return "parents and tokens are swapped: return (parents, tokens, new_scores) in that order."
    if _same(got, ((ref[0] * V + ref[1]) // K, ref[1], ref[2])):
        return "flat index i of the (K, V) candidate matrix is beam i // V and token i % V (divide by V, not K)."
    no_prefix = _reference_step(torch.zeros_like(scores), log_probs.clone(), eos_id)
    if torch.equal(p, no_prefix[0]) and torch.equal(t, no_prefix[1]):
        return ("a candidate's score is its beam's score PLUS the log-probability of the new token; you ranked "
                "the tokens by their own log-probability only.")
    probs = scores.exp()[:, None] + log_probs.exp()
    probs[:, eos_id] = -math.inf
    _, pflat = probs.view(-1).topk(K)
    if torch.equal(p, pflat // V) and torch.equal(t, pflat % V):
        return ("you added probabilities: the probability of a sequence is a product, so its log-probability is "
                "the sum of the log-probabilities.")
    cand[:, eos_id] = -math.inf
    best, tok = cand.max(-1)
    by_score = best.argsort(descending=True, stable=True)
    if _same((p[order], t[order], s[order]), (by_score, tok[by_score], best[by_score])):
        return ("choose the K best among all K x V candidates jointly, not the best token of each beam: a strong "
                "beam may have several children in the new beam, and a weak one none.")
    if torch.allclose(s, ref[2], rtol=1e-6):
        return ("the scores are right but not the (parent, token) pairs: each score must belong to the pair "
                "that produced it (flat index i of the (K, V) matrix: beam i // V, token i % V).")
    return "compare your K candidates with the K best sums scores[k] + log_probs[k, v] over v != eos_id."


@never_raises("a function beam_step(scores, log_probs, eos_id) returning (parents, tokens, new_scores)")
def check_beam_step(fn: Callable[[torch.Tensor, torch.Tensor, int], Any] | None, *, quiet: bool = False) -> Verdict:
    """``fn(scores (K,), log_probs (K, V), eos_id) -> (parents (K,), tokens (K,), new_scores (K,))``:
    the K best extensions that do not end in ``eos_id``, best first."""
    what = "beam_step"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    cases = _beam_cases()
    for i, (scores, log_probs, eos_id) in enumerate(cases):
        try:
            got = fn(scores.clone(), log_probs.clone(), eos_id)
        except NotImplementedError:
            return hint(f"{what}: the function still raises NotImplementedError.", quiet=quiet)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            return hint(f"{what}: on test case {i} it raised {type(exc).__name__}: {exc}", quiet=quiet)
        triple = _as_triple(got, log_probs.shape[0])
        if isinstance(triple, str):
            return hint(f"{what}: {triple}", quiet=quiet)
        if not _same(triple, _reference_step(scores.clone(), log_probs.clone(), eos_id)):
            return hint(f"{what} (test case {i}, K={log_probs.shape[0]}, V={log_probs.shape[1]}): "
                        + _diagnose(triple, scores, log_probs, eos_id), quiet=quiet)
    return correct(f"{what} passes all {len(cases)} test cases.", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: the repetition penalty
# ---------------------------------------------------------------------------------------------

def _penalty_reference(logits: torch.Tensor, prev: torch.Tensor, penalty: float) -> torch.Tensor:
    out = logits.clone()
    for b in range(logits.shape[0]):
        for t in set(prev[b].tolist()):
            x = out[b, t]
            out[b, t] = x / penalty if x > 0 else x * penalty
    return out


def _penalty_cases() -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(logits, previous_ids, penalty): positive and negative seen logits, repeated ids, rows that
    saw different ids, so that each typical mistake gives a different answer."""
    g = torch.Generator().manual_seed(9)
    cases = [(torch.tensor([[2.0, -1.0, 0.5, -3.0, 1.5], [1.0, 3.0, -2.0, 4.0, -0.5]]),
              torch.tensor([[0, 1, 1, 3], [3, 2, 3, 3]]), 2.0)]
    for B, V, T, p in ((3, 11, 6, 1.3), (1, 7, 9, 1.7)):
        logits = 2 * torch.randn(B, V, generator=g)
        prev = torch.randint(0, V // 2, (B, T), generator=g)
        prev[:, 1] = prev[:, 0]                          # a repeated id in every row
        cases.append((logits, prev, p))
    return cases


def _wrong_penalties():
    def divide_all(lg, prev, p):
        out = lg.clone()
        for b in range(lg.shape[0]):
            for t in set(prev[b].tolist()):
                out[b, t] = out[b, t] / p
        return out

    def per_occurrence(lg, prev, p):
        out = lg.clone()
        for b in range(lg.shape[0]):
            for t in prev[b].tolist():
                out[b, t] = out[b, t] / p if out[b, t] > 0 else out[b, t] * p
        return out

    def union_of_rows(lg, prev, p):
        seen = set(prev.reshape(-1).tolist())
        return _penalty_reference(lg, torch.tensor([sorted(seen)] * lg.shape[0]), p)

    def reversed_rule(lg, prev, p):
        return _penalty_reference(lg, prev, 1 / p)

    def unseen_tokens(lg, prev, p):
        V = lg.shape[1]
        others = [sorted(set(range(V)) - set(r.tolist())) or [0] for r in prev]
        n = max(len(o) for o in others)
        return _penalty_reference(lg, torch.tensor([o + o[:1] * (n - len(o)) for o in others]), p)

    def subtract(lg, prev, p):
        out = lg.clone()
        for b in range(lg.shape[0]):
            for t in set(prev[b].tolist()):
                out[b, t] = out[b, t] - p
        return out

    return [
        (divide_all, "a negative logit divided by the penalty moves TOWARDS zero, so the repeated token becomes "
                     "MORE likely. Divide a positive logit, but multiply a negative one."),
        (per_occurrence, "a token that occurs several times is penalised once per occurrence in your answer; the "
                         "rule penalises each distinct previous id once (a set of ids, e.g. scatter/gather on "
                         "unique positions, not a loop over every occurrence of a running tensor)."),
        (union_of_rows, "a row is penalised for ids that only OTHER rows of the batch have produced; each row "
                        "of previous_ids belongs to its own row of logits."),
        (reversed_rule, "the rule is reversed: positive logits must shrink (divide by the penalty) and negative "
                        "ones grow more negative (multiply)."),
        (unseen_tokens, "you penalised the tokens that have NOT appeared yet; the penalty is for the ids in "
                        "previous_ids."),
        (subtract, "the CTRL rule scales the logit (divide if positive, multiply if negative); it does not "
                   "subtract the penalty."),
    ]


def _close(a, b) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and a.is_floating_point() and \
        bool(torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6))


@never_raises("a function fn(logits, previous_ids, penalty) returning a float tensor shaped like logits")
def check_repetition_penalty(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(logits (B, V), previous_ids (B, T), penalty) -> (B, V)``: for each distinct id in row
    ``b`` of ``previous_ids``, ``logits[b, id]`` is divided by ``penalty`` if positive and
    multiplied by it otherwise; compared with :func:`lmlib.generation.apply_repetition_penalty`."""
    from lmlib.generation import apply_repetition_penalty

    what = "repetition_penalty"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    for i, (logits, prev, p) in enumerate(_penalty_cases()):
        case = f" (test case {i}: logits {tuple(logits.shape)}, previous_ids {tuple(prev.shape)}, penalty {p})"
        want = apply_repetition_penalty(logits, prev, p)
        given = logits.clone()
        try:
            got = fn(given, prev.clone(), p)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            return hint(f"{what}: your function raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        f"{case}", quiet=quiet)
        if got is None:
            if _close(given, want):
                return hint(f"{what}: your function changed the logits in place and returned None; return the "
                            "new logits (and leave the input unchanged: generate still needs them).", quiet=quiet)
            return hint(f"{what}: your function returned None; return the penalised logits.", quiet=quiet)
        if not isinstance(got, torch.Tensor):
            return hint(f"{what}: return a tensor, not {describe(got)}.", quiet=quiet)
        if tuple(got.shape) != tuple(want.shape):
            return hint(f"{what}: expected shape {tuple(want.shape)} (the logits' shape), got {tuple(got.shape)}"
                        f"{case}.", quiet=quiet)
        if not got.is_floating_point():
            return hint(f"{what}: the result must be floating-point logits, got dtype {got.dtype}.", quiet=quiet)
        if _close(got, want):
            if not torch.equal(given, logits):
                return hint(f"{what}: the values are right, but your function also modified the logits it was "
                            "given (in place); work on a copy (e.g. torch.where / scatter return new tensors).",
                            quiet=quiet)
            continue
        if _close(got, logits):
            return hint(f"{what}: your function returned the logits unchanged{case}.", quiet=quiet)
        for wrong, message in _wrong_penalties():
            if _close(got, wrong(logits, prev, p)):
                return hint(f"{what}: {message}", quiet=quiet)
        return hint(f"{what}: wrong values on test case {i}{case}; for each distinct id of row b, divide "
                    "logits[b, id] by the penalty if it is positive, multiply it otherwise.", quiet=quiet)
    return correct("each id already in the row is penalised once: positive logits shrink, negative ones "
                   "grow more negative, so every repeat loses probability.", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: ROUGE-1
# ---------------------------------------------------------------------------------------------

#: (candidate tokens, reference tokens): repeats on both sides, a candidate longer and one shorter
#: than the reference, no overlap, and an empty candidate
ROUGE1_CASES: list[tuple[list[str], list[str]]] = [
    ("enter hamlet hamlet and".split(), "enter hamlet and horatio and".split()),
    ("enter the king the queen and the lords".split(), "enter king lear".split()),
    ("enter ghost".split(), "re enter ghost and hamlet".split()),
    ("the the the".split(), "the king and the queen".split()),
    ("exit".split(), "enter hamlet".split()),
    ([], "enter hamlet".split()),
]


def _rouge_f(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _rouge_prf(overlap: float, n_cand: int, n_ref: int) -> tuple[float, float, float]:
    p = overlap / n_cand if n_cand else 0.0
    r = overlap / n_ref if n_ref else 0.0
    return p, r, _rouge_f(p, r)


def _rouge_reference(cand: list[str], ref: list[str]) -> tuple[float, float, float]:
    """rouge-score itself, on the tokens joined by spaces (its tokenizer splits them back)."""
    from rouge_score import rouge_scorer

    s = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False).score(" ".join(ref), " ".join(cand))["rouge1"]
    return s.precision, s.recall, s.fmeasure


def _rouge_clipped(c, r):
    return sum((Counter(c) & Counter(r)).values())


#: typical wrong answers ``(cand, ref) -> (p, r, f)``, each with its diagnosis, tried in order
_ROUGE_MISTAKES: list[tuple[Callable, str]] = [
    (lambda c, r: _rouge_prf(len(set(c) & set(r)), len(set(c)), len(set(r))),
     "you count word TYPES (sets); ROUGE counts tokens: a word that occurs twice in both texts "
     "matches twice. Use Counter(candidate) & Counter(reference)."),
    (lambda c, r: _rouge_prf(len(set(c) & set(r)), len(c), len(r)),
     "the overlap counts each shared word once (a set intersection) while the denominators count "
     "tokens; count the overlap with multiplicity too: sum((Counter(c) & Counter(r)).values())."),
    (lambda c, r: _rouge_prf(sum(1 for w in c if w in r), len(c), len(r)),
     "the overlap is not clipped: a candidate word counts at most as many times as it occurs in the "
     "reference ('the the the' against one 'the' matches once). Take min(count in c, count in r)."),
    (lambda c, r: _rouge_prf(sum(1 for w in r if w in c), len(c), len(r)),
     "the overlap counts reference tokens found in the candidate, without clipping; take "
     "min(count in candidate, count in reference) for every word."),
    (lambda c, r: (lambda p, rr, f: (rr, p, f))(*_rouge_prf(_rouge_clipped(c, r), len(c), len(r))),
     "precision and recall are swapped: precision divides the overlap by the CANDIDATE's length "
     "(how much of what was written is right), recall by the REFERENCE's (how much was covered)."),
    (lambda c, r: (lambda p, rr: (p, rr, (p + rr) / 2))(*_rouge_prf(_rouge_clipped(c, r), len(c), len(r))[:2]),
     "precision and recall are right, but F is their harmonic mean, 2PR / (P + R), not (P + R) / 2."),
    (lambda c, r: (lambda p, rr: (p, rr, p * rr))(*_rouge_prf(_rouge_clipped(c, r), len(c), len(r))[:2]),
     "precision and recall are right, but F is 2PR / (P + R), not P · R."),
]


def _rouge_triple(v: Any) -> tuple[float, float, float] | None:
    try:
        if isinstance(v, (str, bytes)) or len(v) != 3:
            return None
        out = tuple(float(x) for x in v)
    except Exception:  # noqa: BLE001 - anything that is not three numbers
        return None
    return out if all(math.isfinite(x) for x in out) else None


def _rouge_close(a, b) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b))


@never_raises("a function fn(candidate_tokens, reference_tokens) returning (precision, recall, fmeasure)")
def check_rouge1(fn: Callable[[list[str], list[str]], tuple] | None, *, quiet: bool = False) -> Verdict:
    """``fn(candidate, reference) -> (precision, recall, fmeasure)`` of ROUGE-1 on token lists,
    compared with ``rouge_score`` on several pairs, with a diagnosis of the usual mistakes."""
    what = "rouge1"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    got = []
    for cand, ref in ROUGE1_CASES:
        try:
            v = fn(list(cand), list(ref))
        except ZeroDivisionError:
            return hint(f"{what}: your function divides by zero for candidate {cand} (an empty summary): "
                        "define precision, recall and F as 0 when there is nothing to divide by.", quiet=quiet)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            if isinstance(exc, NotImplementedError):
                return hint(f"{what}: the function still raises NotImplementedError.", quiet=quiet)
            return hint(f"{what}: on candidate {cand} and reference {ref} it raised {type(exc).__name__}: {exc}",
                        quiet=quiet)
        if v is None:
            return hint(f"{what}: your function returns None: return (precision, recall, fmeasure).", quiet=quiet)
        t = _rouge_triple(v)
        if t is None:
            return hint(f"{what}: return three finite numbers (precision, recall, fmeasure); for candidate "
                        f"{cand} you returned {describe(v)}.", quiet=quiet)
        got.append(t)
    want = [_rouge_reference(c, r) for c, r in ROUGE1_CASES]
    if all(_rouge_close(g, w) for g, w in zip(got, want)):
        return correct("clipped unigram overlap / candidate length = precision, / reference length = recall, "
                       "and F their harmonic mean: the numbers rouge-score gives.", quiet=quiet)
    for mistake, message in _ROUGE_MISTAKES:
        if all(_rouge_close(g, mistake(c, r)) for g, (c, r) in zip(got, ROUGE1_CASES)):
            return hint(f"{what}: {message}", quiet=quiet)
    i = next(i for i, (g, w) in enumerate(zip(got, want)) if not _rouge_close(g, w))
    c, r = ROUGE1_CASES[i]
    return hint(f"{what}: for candidate {c} and reference {r} you returned "
                f"({got[i][0]:.4g}, {got[i][1]:.4g}, {got[i][2]:.4g}); rouge-score gives "
                f"({want[i][0]:.4g}, {want[i][1]:.4g}, {want[i][2]:.4g}). Count, for every word, "
                "min(count in candidate, count in reference), and sum.", quiet=quiet)
