"""Checkers for the exercises of Chapter 1 (what is a language model?).

- :func:`check_text_probability` -- the probability of a short text under a toy bigram model.
- :func:`check_perplexity` -- the perplexity of four predictions, computed by hand.
- :func:`check_backoff` -- interpolated absolute discounting that beats add-k on the validation
  plays, with a discount chosen on them.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`. The expected answers are computed here in plain Python,
independently of :mod:`lmlib.ngram`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np
import torch

from lmlib.data import CharVocab
from lmlib.exercises import Verdict, check_close, correct, describe, hint, never_raises

__all__ = [
    "TOY_START",
    "TOY_NEXT",
    "TOY_TEXT",
    "PERPLEXITY_PROBS",
    "check_text_probability",
    "check_perplexity",
    "BACKOFF_N",
    "check_backoff",
]

# ----------------------------------------------------------------------------------------------
# Exercise: the probability of a text under a toy bigram model
# ----------------------------------------------------------------------------------------------

#: P(first character) of the toy model over the alphabet {a, b}
TOY_START = {"a": 0.6, "b": 0.4}
#: P(next | previous) of the toy model: ``TOY_NEXT[prev][next]``
TOY_NEXT = {"a": {"a": 0.3, "b": 0.7}, "b": {"a": 0.8, "b": 0.2}}
#: the text whose probability the exercise asks for
TOY_TEXT = "abbb"


def _toy_probability(start: dict, nxt: dict, text: str) -> float:
    p = start[text[0]]
    for prev, cur in zip(text, text[1:]):
        p *= nxt[prev][cur]
    return p


@never_raises('a number (a probability between 0 and 1)')
def check_text_probability(answer: Any, *, quiet: bool = False) -> Verdict:
    """P(``TOY_TEXT``) under the toy bigram model ``TOY_START`` / ``TOY_NEXT`` (a probability)."""
    expected = _toy_probability(TOY_START, TOY_NEXT, TOY_TEXT)  # 0.6 * 0.7 * 0.2 * 0.2
    transposed = {a: {b: TOY_NEXT[b][a] for b in "ab"} for a in "ab"}
    no_start = expected / TOY_START[TOY_TEXT[0]]
    hints = [
        (no_start, "you left out the first factor, P(x_1): the chain rule starts with the "
                   "probability of the first character, from TOY_START."),
        (_toy_probability(TOY_START, transposed, TOY_TEXT),
         "you read the table the wrong way round: TOY_NEXT[prev][next] is P(next | prev), "
         "so P(b | a) is TOY_NEXT['a']['b']."),
        (math.log(expected), "that is the log-probability; the question asks for the probability itself."),
        (-math.log(expected), "that is the negative log-probability; give the probability itself."),
        (sum([TOY_START[TOY_TEXT[0]]] + [TOY_NEXT[a][b] for a, b in zip(TOY_TEXT, TOY_TEXT[1:])]),
         "the chain rule multiplies the conditional probabilities; you added them."),
        (_toy_probability({"a": 0.5, "b": 0.5}, TOY_NEXT, TOY_TEXT),
         "the first character comes from TOY_START (0.6 for 'a'), not from a uniform 1/2."),
    ]
    return check_close(answer, expected, what=f"P({TOY_TEXT!r})", rel_tol=1e-6, abs_tol=1e-12,
                       hints=hints, default_hint="multiply P(x_1) by P(x_t | x_{t-1}) for t = 2, 3, 4.",
                       quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: perplexity by hand
# ----------------------------------------------------------------------------------------------

#: the probabilities a model gave to the four characters that actually came next
PERPLEXITY_PROBS = (0.5, 0.25, 0.125, 0.5)


@never_raises('a number (a perplexity, at least 1)')
def check_perplexity(answer: Any, *, quiet: bool = False) -> Verdict:
    """The perplexity of a model that gave the true next characters ``PERPLEXITY_PROBS``."""
    ps = PERPLEXITY_PROBS
    nll = -sum(math.log(p) for p in ps) / len(ps)
    expected = math.exp(nll)  # 2 ** 1.75
    hints = [
        (nll, "that is the mean negative log-likelihood (the cross-entropy, in nats); "
              "perplexity is exp of it."),
        (nll / math.log(2), "that is the cross-entropy in bits per character; perplexity is 2 to that power."),
        (sum(1 / p for p in ps) / len(ps),
         "you took the arithmetic mean of 1/p; perplexity is the geometric mean of 1/p, "
         "i.e. exp of the mean of -log p."),
        (1 / (sum(ps) / len(ps)), "1 / (mean probability) is not perplexity: average the log-probabilities, not the probabilities."),
        (math.exp(nll * len(ps)), "you exponentiated the total negative log-likelihood; divide by the number of characters first."),
        (math.exp(-nll), "check the sign: perplexity = exp(-mean log p), which is at least 1."),
    ]
    return check_close(answer, expected, what="perplexity", rel_tol=1e-4, hints=hints,
                       default_hint="compute the mean of -log p, then exp of it.", quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: interpolated absolute discounting that beats add-k on the validation plays
# ----------------------------------------------------------------------------------------------

#: the order of the model the exercise builds (4 characters of context)
BACKOFF_N = 5
#: the discounts the checker compares the learner's choice with (on the validation slice)
_DISCOUNT_GRID = (0.5, 0.7, 0.8, 0.9, 1.0)
_ADD_K_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
_SLICE = 5_000  # characters from the start of every validation play: fast, yet six plays


@functools.lru_cache(maxsize=1)
def _backoff_data():
    """Training n-gram counts of every order and the validation slice, counted here with torch
    (independently of :mod:`lmlib.ngram`). Cached: the first call takes a few seconds."""
    from lmlib import data  # the corpus is only loaded when the exercise is checked

    split = data.split_plays(seed=0)
    vocab = CharVocab.from_text(data.corpus_text())
    V = vocab.vocab_size
    lut = np.zeros(max(map(ord, vocab.chars)) + 1, dtype=np.int64)
    lut[[ord(c) for c in vocab.chars]] = np.arange(V)

    def ids(text: str) -> torch.Tensor:
        return torch.from_numpy(lut[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)])

    train = ids(split.text("train"))
    val = ids("".join(data.load_play(p).text[:_SLICE] for p in split.val))
    tables = []  # order m: (sorted distinct m-gram codes, their counts)
    for m in range(1, BACKOFF_N + 1):
        codes = train.unfold(0, m, 1) @ (V ** torch.arange(m - 1, -1, -1))
        tables.append(torch.unique(codes, sorted=True, return_counts=True))
    orders, targets = _backoff_rows(V, tables, val)
    return V, orders, targets


def _lookup(table, query: torch.Tensor) -> torch.Tensor:
    keys, counts = table
    idx = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
    return torch.where(keys[idx] == query, counts[idx], torch.zeros_like(query))


def _backoff_rows(V, tables, ids):
    """For every order m: the distinct contexts of the predicted positions of ``ids`` (their
    index per position), their ``(C_m, V)`` count rows, and the index of each context's
    shorter context among the order m-1 contexts."""
    n = BACKOFF_N
    T = len(ids) - n + 1
    orders = []
    prev_uniq = None
    for m in range(1, n + 1):
        if m == 1:
            ctx = torch.zeros(T, dtype=torch.int64)
        else:
            ctx = ids.unfold(0, n, 1)[:, n - m:n - 1] @ (V ** torch.arange(m - 2, -1, -1))  # (T,)
        uniq, inv = torch.unique(ctx, sorted=True, return_inverse=True)
        rows = _lookup(tables[m - 1], uniq[:, None] * V + torch.arange(V)).double()  # (C_m, V)
        parent = (torch.zeros(len(uniq), dtype=torch.int64) if m == 1 else
                  torch.searchsorted(prev_uniq, uniq % V ** (m - 2)))  # h -> h[1:]
        orders.append((inv, rows, parent))
        prev_uniq = uniq
    return orders, ids[n - 1:]


def _run_backoff(fn, d, V, orders, targets, check_each):
    """The mean NLL of the order-n model built by applying ``fn(counts, lower, d)`` order by
    order; ``check_each(counts, lower, probs)`` may return a hint (a str) to stop."""
    lower_table = torch.full((1, V), 1.0 / V, dtype=torch.float64)
    for inv, rows, parent in orders:
        lower = lower_table[parent]  # (C_m, V)
        probs = fn(rows, lower, d)  # fn works on copies
        problem = check_each(rows, lower, probs) if check_each else None
        if problem:
            return problem
        lower_table = torch.as_tensor(probs, dtype=torch.float64)
    p = lower_table[orders[-1][0], targets]  # (T,) probability of each actual next character
    return float(-p.log().mean())


def _add_k_nll(k, V, orders, targets):
    inv, rows, _ = orders[-1]
    n_h = rows.sum(1, keepdim=True)
    probs = torch.where(n_h > 0, (rows + k) / (n_h + k * V), torch.full_like(rows, 1.0 / V))
    return float(-probs[inv, targets].log().mean())


def _reference_discounting(counts, lower, d):
    n_h = counts.sum(-1, keepdim=True)
    types = (counts > 0).sum(-1, keepdim=True)
    p = (counts - d).clamp(min=0) / n_h.clamp(min=1) + d * types / n_h.clamp(min=1) * lower
    return torch.where(n_h > 0, p, lower)


def _toy_cases():
    """Count rows with a seen context, a context seen with every character, and an unseen one."""
    counts = torch.tensor([[3.0, 0.0, 1.0, 0.0], [2.0, 2.0, 1.0, 5.0], [0.0, 0.0, 0.0, 0.0],
                           [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    lower = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.4, 0.3, 0.2, 0.1],
                          [0.7, 0.1, 0.1, 0.1]], dtype=torch.float64)
    return counts, lower


def _diagnose_probs(counts, lower, probs, d) -> str | None:
    """A hint when ``probs`` is not a proper, positive distribution in every row, else None."""
    if probs is None:
        return "your function returned None; return the (C, V) tensor of probabilities."
    if not isinstance(probs, torch.Tensor):
        return f"return a tensor of shape {tuple(counts.shape)}, not {describe(probs)}."
    if tuple(probs.shape) != tuple(counts.shape):
        return (f"return one row of {counts.shape[1]} probabilities per context: shape "
                f"{tuple(counts.shape)}, not {tuple(probs.shape)}.")
    if not probs.is_floating_point():
        return f"return floating-point probabilities, not a tensor of dtype {probs.dtype}."
    probs = probs.detach().double()
    unseen = counts.sum(-1) == 0
    if torch.isnan(probs).any():
        if torch.isnan(probs[unseen]).any() and not torch.isnan(probs[~unseen]).any():
            return ("rows of a context never seen in training are NaN: there N(h) = 0 and your "
                    "formula divides 0 by 0. An unseen context has no counts to trust; back off to "
                    "the lower-order distribution (use it unchanged).")
        return "some probabilities are NaN."
    if (probs < -1e-12).any():
        return ("some probabilities are negative: you subtracted the discount from counts that are "
                "0 (or smaller than d). Discount only what was seen: max(N(hc) - d, 0).")
    sums = probs.sum(-1)
    if ((sums - 1).abs() > 1e-6).any():
        n_h = counts.sum(-1, keepdim=True).clamp(min=1)
        gave_d = (counts - d).clamp(min=0) / n_h + d / n_h * lower
        gave_d = torch.where(counts.sum(-1, keepdim=True) > 0, gave_d, lower)
        if torch.allclose(probs, gave_d, atol=1e-6):
            return ("the rows do not sum to 1: the discount d is taken from every character that was "
                    "seen, so the mass handed to the lower order is d * T(h) / N(h), with T(h) the number "
                    "of distinct characters seen after h, not d / N(h).")
        i = int(((sums - 1).abs() > 1e-6).nonzero()[0])
        kind = "an unseen context" if bool(unseen[i]) else "a seen context"
        return (f"every row must be a distribution that sums to 1; the row of {kind} sums to "
                f"{float(sums[i]):.4f}. Whatever you subtract by discounting must go to the lower order.")
    if (probs[lower > 0] <= 0).any():
        return ("some characters get probability 0 although the lower-order distribution gives them "
                "some: one unseen character then makes the perplexity infinite. Mix in the lower order "
                "for every character, not only where N(hc) = 0 or only where N(hc) > 0.")
    return None


@never_raises('a function fn(counts, lower, d) returning a (C, V) tensor, and a discount d')
def check_backoff(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] | None,
                  discount: Any = None, *, quiet: bool = False) -> Verdict:
    """``fn(counts, lower, d)``: ``counts`` ``(C, V)`` next-character counts of ``C`` contexts,
    ``lower`` ``(C, V)`` the distributions of their shorter contexts, ``d`` the discount -> the
    ``(C, V)`` interpolated probabilities. The checker builds a ``BACKOFF_N``-gram model from it
    (order 1 interpolates with the uniform distribution) and compares it on a slice of the
    validation plays with the best add-k model, at the learner's chosen ``discount``."""
    if fn is None:
        return hint("define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"expected a function fn(counts, lower, d), got {describe(fn)}.", quiet=quiet)
    if discount is None:
        return hint("pass the discount you chose as the second argument: check_backoff(fn, d).", quiet=quiet)
    if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0 < discount <= 1:
        return hint(f"the discount must be a number in (0, 1], got {describe(discount)}: a count of 1 "
                    "can give away at most all of itself.", quiet=quiet)
    d = float(discount)

    def call(counts, lower, dd):
        try:
            return fn(counts.clone(), lower.clone(), dd), None
        except NotImplementedError:
            return None, "your function still raises NotImplementedError."
        except Exception as exc:  # a learner's bug is feedback, not a crash
            return None, f"calling your function raised {type(exc).__name__}: {exc}"

    # 1. a proper, positive distribution on small hand-made rows (at the chosen d and another)
    counts, lower = _toy_cases()
    for dd in (d, 0.5):
        probs, error = call(counts, lower, dd)
        problem = error or _diagnose_probs(counts, lower, probs, dd)
        if problem:
            return hint(problem, quiet=quiet)

    # 2. on the validation slice: beat add-k, with a discount chosen on validation
    V, orders, targets = _backoff_data()

    def check_each(rows, low, probs):
        return _diagnose_probs(rows, low, probs, d)

    def nll_at(dd, check=None):
        def guarded(counts_, lower_, d_):
            probs, error = call(counts_, lower_, d_)
            if error:
                raise _LearnerError(error)
            return probs
        try:
            return _run_backoff(guarded, dd, V, orders, targets, check)
        except _LearnerError as exc:
            return str(exc)

    ours = nll_at(d, check_each)
    if isinstance(ours, str):
        return hint(ours + " (on the contexts of the validation plays)", quiet=quiet)
    best_k = min(_ADD_K_GRID, key=lambda k: _add_k_nll(k, V, orders, targets))
    add_k = _add_k_nll(best_k, V, orders, targets)
    ppl, ppl_k = math.exp(ours), math.exp(add_k)
    if ours >= add_k:
        sweep = {dd: nll_at(dd) for dd in _DISCOUNT_GRID}
        if all(isinstance(v, float) and v >= add_k for v in sweep.values()):
            return hint(f"your {BACKOFF_N}-gram model has validation perplexity {ppl:.3f}, the best add-k "
                        f"(k = {best_k:g}) {ppl_k:.3f}, whatever the discount. Does your function use the "
                        "counts (the first term, max(N(hc) - d, 0) / N(h)) and hand exactly the freed "
                        "mass to the lower order?", quiet=quiet)
        return hint(f"at d = {d:g} your model has validation perplexity {ppl:.3f}, worse than add-k "
                    f"({ppl_k:.3f}); other discounts do better. Choose d by trying several on the "
                    "validation plays (never on the test plays).", quiet=quiet)
    sweep = {dd: nll_at(dd) for dd in _DISCOUNT_GRID if dd != d}
    good = {dd: v for dd, v in sweep.items() if isinstance(v, float)}
    if good:
        d_best = min(good, key=good.get)
        if ours > good[d_best] + 0.005:  # more than 0.5% worse in perplexity
            return hint(f"your model beats add-k ({ppl:.3f} < {ppl_k:.3f}), but d = {d_best:g} gives "
                        f"{math.exp(good[d_best]):.3f} on the validation plays. Choose the discount by a "
                        "sweep on the validation plays, not by guessing (and not on the test plays).",
                        quiet=quiet)
    return correct(f"validation perplexity {ppl:.3f} at d = {d:g}, against {ppl_k:.3f} for the best "
                   f"add-k (k = {best_k:g}), on the first {_SLICE:,} characters of every validation play.",
                   quiet=quiet)


class _LearnerError(Exception):
    pass
