"""Checkers for the exercises of Chapter 1 (what is a language model?).

- :func:`check_text_probability` -- the probability of a short text under a toy bigram model.
- :func:`check_perplexity` -- the perplexity of four predictions, computed by hand.
- :func:`check_add_k` -- add-k smoothing of one row of counts (with the unseen-context rule).
- :func:`check_bigram_counts` -- a ``(V, V)`` table of bigram counts.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`. The expected answers are computed here in plain Python,
independently of :mod:`lmlib.ngram`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

import torch

from lmlib.data import CharVocab
from lmlib.exercises import Verdict, check_close, check_function, hint, never_raises

__all__ = [
    "TOY_START",
    "TOY_NEXT",
    "TOY_TEXT",
    "PERPLEXITY_PROBS",
    "check_text_probability",
    "check_perplexity",
    "check_add_k",
    "check_bigram_counts",
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
# Exercise: add-k smoothing
# ----------------------------------------------------------------------------------------------

def _add_k_reference(counts: list[float], k: float) -> list[float]:
    V, total = len(counts), sum(counts)
    if total == 0:
        return [1.0 / V] * V
    return [(c + k) / (total + k * V) for c in counts]


def _as_list(x: Any) -> list[float]:
    if isinstance(x, torch.Tensor):
        return [float(v) for v in x.detach().flatten().tolist()]
    return [float(v) for v in x]


@never_raises('a function fn(counts, k) returning a 1-D tensor of V probabilities')
def check_add_k(fn: Callable[[torch.Tensor, float], torch.Tensor] | None, *, quiet: bool = False) -> Verdict:
    """``fn(counts, k)``: a 1-D tensor of next-character counts ``(V,)`` and ``k >= 0`` -> the
    smoothed probabilities ``(V,)``, uniform when all counts are zero."""
    cases_in = [
        ([3.0, 0.0, 1.0], 1.0),
        ([3.0, 0.0, 1.0], 0.0),
        ([10.0, 5.0, 0.0, 0.0, 1.0], 0.5),
        ([0.0, 0.0, 0.0, 0.0], 1.0),
        ([0.0, 0.0, 0.0, 0.0], 0.0),
    ]
    cases = [((torch.tensor(c, dtype=torch.float64), k), _add_k_reference(c, k)) for c, k in cases_in]

    def compare(got: Any, expected: list[float]) -> bool:
        try:
            values = _as_list(got)
        except Exception:
            return False
        return len(values) == len(expected) and all(abs(a - b) <= 1e-6 for a, b in zip(values, expected))

    def diagnose(args: tuple, got: Any, expected: list[float]) -> str | None:
        counts, k = args
        c = [float(v) for v in counts.tolist()]
        V, total = len(c), sum(c)
        if got is None:
            return "your function returns None: fill in the body so that it returns the probabilities."
        try:
            values = _as_list(got)
        except Exception:
            return "return a 1-D tensor (or list) of probabilities, one per character."
        if len(values) != V:
            return f"return one probability per character: {V} values, not {len(values)}."
        if any(v != v for v in values):
            return ("you returned NaN: with all counts zero and k = 0 the formula is 0/0. An unseen "
                    "context has no evidence, so return the uniform distribution 1/V there.")

        def near(ref: list[float]) -> bool:
            return all(abs(a - b) <= 1e-6 for a, b in zip(values, ref))

        if total > 0 and near([(x + k) / (total + k) for x in c]):
            return "the denominator must be N + k*V: k is added to every one of the V counts."
        if total > 0 and near([(x + k) / (total + V) for x in c]):
            return "the denominator is N + k*V (k times V), not N + V."
        if total > 0 and near([x / total for x in c]) and k > 0:
            return "you did not add k: every count gets k extra before normalising."
        if total == 0 and k > 0 and near([0.0] * V):
            return "with all counts zero, (0 + k) / (0 + k*V) = 1/V for every character."
        if abs(sum(values) - 1) > 1e-6:
            return f"the probabilities must sum to 1 (yours sum to {sum(values):.4f})."
        return None

    return check_function(fn, cases, what="add-k smoothing", compare=compare, diagnose=diagnose, quiet=quiet)


# ----------------------------------------------------------------------------------------------
# Exercise: the table of bigram counts
# ----------------------------------------------------------------------------------------------

def _bigram_reference(text: str, vocab: CharVocab) -> list[list[int]]:
    V = vocab.vocab_size
    table = [[0] * V for _ in range(V)]
    for (a, b), count in Counter(zip(text, text[1:])).items():
        table[vocab.stoi[a]][vocab.stoi[b]] = count
    return table


@never_raises('a function fn(text, vocab) returning a (V, V) tensor of counts')
def check_bigram_counts(fn: Callable[[str, CharVocab], torch.Tensor] | None, *, quiet: bool = False) -> Verdict:
    """``fn(text, vocab)`` -> a ``(V, V)`` tensor whose entry ``[i, j]`` counts how often the
    character with id ``j`` directly follows the character with id ``i`` in ``text``."""
    texts = ["abca", "to be or not to be", "aaaa\nbab\n", "the cat sat on the mat.\nthe end"]
    cases = []
    for t in texts:
        vocab = CharVocab.from_text(t + "z")  # 'z' never occurs: its row and column stay 0
        cases.append(((t, vocab), _bigram_reference(t, vocab)))

    def as_table(got: Any) -> list[list[float]] | None:
        if isinstance(got, torch.Tensor) and got.dim() == 2:
            return got.detach().double().tolist()
        return None

    def compare(got: Any, expected: list[list[int]]) -> bool:
        table = as_table(got)
        return table is not None and table == [[float(x) for x in row] for row in expected]

    def diagnose(args: tuple, got: Any, expected: list[list[int]]) -> str | None:
        text, vocab = args
        V = vocab.vocab_size
        if got is None:
            return "your function returns None: fill in the body so that it returns the (V, V) table."
        if not isinstance(got, torch.Tensor):
            return f"return a torch.Tensor, not {type(got).__name__}."
        if tuple(got.shape) != (V, V):
            return f"the table has shape (V, V) = ({V}, {V}); yours has {tuple(got.shape)}."
        table = as_table(got)
        exp_t = [[float(expected[j][i]) for j in range(V)] for i in range(V)]
        if table == exp_t:
            return "your table is transposed: row = previous character, column = next character."
        total = sum(map(sum, table))
        if total == len(text):
            return (f"your table holds {len(text)} pairs, but a text of {len(text)} characters has "
                    f"{len(text) - 1} adjacent pairs: the last character has no successor (no wrap-around).")
        if total != len(text) - 1:
            return f"the counts should add up to len(text) - 1 = {len(text) - 1}; yours add up to {total:g}."
        return f"some counts are wrong for the text {text!r}; compare with a Counter of zip(text, text[1:])."

    return check_function(fn, cases, what="bigram counts", compare=compare, diagnose=diagnose, quiet=quiet)
