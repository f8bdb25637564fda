"""Measuring generated text: diversity, repetition, perplexity under two models, and a detector.

A decoding strategy (greedy, temperature, top-k, top-p, a repetition penalty: see
:mod:`lmlib.generation`) is judged here by four kinds of number, each computed per text so that
it can be averaged over prompts and given a bootstrap interval (:mod:`lmlib.stats`):

``distinct_n(texts, n)`` (Li et al. 2016)
    The number of *distinct* n-grams divided by the *total* number of n-grams, over a set of
    texts. The n-grams are taken inside each text (none spans two texts) and are pooled over the
    set before counting. 1 means no n-gram occurs twice; a text that loops has a low value.
``repetition_rate(text, n)``
    The fraction of the n-gram positions of ONE text whose n-gram already occurred at an earlier
    position of the same text. For a single text it equals ``1 - distinct_n([text], n)``: every
    n-gram type counts once as new, and every further occurrence is a repeat. With a long n
    (4 words) it measures verbatim loops rather than vocabulary.
``continuation_nll`` / ``continuation_bits_per_char``
    How likely a scoring model finds a continuation after its prompt. The generating model's own
    perplexity of its text is low for greedy loops (it is sure of what it just said again); an
    *independent* scorer (another model with another tokenizer, scored per character) exposes that.
``fit_detector`` / ``fraction_judged_real``
    A real-vs-generated classifier: logistic regression on character n-gram features
    (:class:`lmlib.classification.NGramFeaturizer`, :func:`lmlib.classification.fit_logistic_regression`),
    trained on real passages against generated ones. Evaluated on other texts, the fraction of
    generated texts it calls real is the *fooled rate*; the fraction of real texts it calls real
    is its accuracy on real text.

Texts are split into *words* by :func:`words`: lower-cased runs of letters, digits and
apostrophes, and each punctuation mark on its own (so ``"thee,"`` is ``["thee", ","]``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from lmlib.validation import check_float, check_int, check_module, check_sequence, check_str

__all__ = ["words", "ngrams", "distinct_n", "repetition_rate", "continuation_nll", "continuation_bits_per_char",
           "Detector", "fit_detector", "fraction_judged_real"]

_WORD = re.compile(r"[\w']+|[^\w\s]")


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------

def _units(item, name: str, who: str) -> list:
    """A text (str, split by :func:`words`) or a token list (a sequence of ints or strs, used as is)."""
    if isinstance(item, str):
        return _words(item)
    if isinstance(item, (bytes, bytearray)):
        raise TypeError(f"{who}: {name} must be a str or a token list, got bytes (decode them first)")
    if isinstance(item, torch.Tensor):
        if item.dim() != 1 or item.is_floating_point() or item.is_complex():
            raise TypeError(f"{who}: {name} must be a str or a 1-D integer tensor of token ids, "
                            f"got a tensor of shape {tuple(item.shape)} and dtype {item.dtype}")
        return item.tolist()
    items = check_sequence(name, item, who=who)
    for i, t in enumerate(items):
        if isinstance(t, bool) or not isinstance(t, (int, str)):
            raise TypeError(f"{who}: {name}[{i}] must be a token (an int or a str), got {type(t).__name__}")
    return list(items)


def _texts_units(texts, who: str) -> list[list]:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{who}: texts must be a list of texts (or of token lists), not a single str; "
                        "wrap one text in a list")
    items = check_sequence("texts", texts, nonempty=True, who=who)
    return [_units(t, f"texts[{i}]", who) for i, t in enumerate(items)]


def _check_n(n, who: str) -> int:
    return check_int("n", n, min=1, who=who)


# --------------------------------------------------------------------------------------------
# Diversity and repetition
# --------------------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    """``text`` lower-cased and split into words and punctuation marks."""
    check_str("text", text, who="words")
    return _words(text)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens, n: int) -> list[tuple]:
    """The ``len(tokens) - n + 1`` n-grams of one text (a str is split by :func:`words`), as tuples."""
    units = _units(tokens, "tokens", "ngrams")
    _check_n(n, "ngrams")
    return _ngrams(units, n)


def _ngrams(units: list, n: int) -> list[tuple]:
    return [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]


def distinct_n(texts, n: int = 2) -> float:
    """Distinct n-grams / total n-grams, pooled over ``texts`` (each a str or a token list);
    n-grams never span two texts."""
    units = _texts_units(texts, "distinct_n")
    _check_n(n, "distinct_n")
    grams = [g for u in units for g in _ngrams(u, n)]
    if not grams:
        raise ValueError(f"distinct_n: the texts hold no {n}-gram (every text is shorter than {n} tokens)")
    return len(set(grams)) / len(grams)


def repetition_rate(text, n: int = 4) -> float:
    """The fraction of the n-grams of ``text`` (a str or a token list) that already occurred
    earlier in the same text."""
    units = _units(text, "text", "repetition_rate")
    _check_n(n, "repetition_rate")
    grams = _ngrams(units, n)
    if not grams:
        raise ValueError(f"repetition_rate: text has {len(units)} tokens, fewer than n={n}: it holds no {n}-gram")
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


# --------------------------------------------------------------------------------------------
# Scoring continuations with a language model
# --------------------------------------------------------------------------------------------

def _block(model: nn.Module, who: str) -> int:
    block = getattr(getattr(model, "config", None), "block_size", None)
    if not isinstance(block, int) or block < 2:
        raise ValueError(f"{who}: model has no config.block_size >= 2: cannot know its context window")
    return block


def _check_nll_args(model, token_lists, starts, stride, batch_size, who: str) -> tuple[list, list, int, int]:
    check_module("model", model, who=who)
    block = _block(model, who)
    if isinstance(token_lists, (str, bytes)):
        raise TypeError(f"{who}: token_lists must be a list of token-id lists, got a str")
    lists = check_sequence("token_lists", token_lists, nonempty=True, who=who)
    vocab = getattr(model.config, "vocab_size", None)
    out = []
    for i, x in enumerate(lists):
        name = f"token_lists[{i}]"
        if isinstance(x, torch.Tensor):
            if x.dim() != 1 or x.is_floating_point() or x.dtype == torch.bool:
                raise TypeError(f"{who}: {name} must be a 1-D integer tensor, got shape {tuple(x.shape)}, {x.dtype}")
            x = x.tolist()
        if isinstance(x, (str, bytes)):
            raise TypeError(f"{who}: {name} must be a list of token ids, got a str")
        x = check_sequence(name, x, of=int, who=who)
        if any(isinstance(t, bool) for t in x):
            raise TypeError(f"{who}: {name} holds a bool, not a token id")
        if x and (min(x) < 0 or (isinstance(vocab, int) and max(x) >= vocab)):
            raise ValueError(f"{who}: {name} holds ids in [{min(x)}, {max(x)}], outside the model's vocabulary "
                             f"0..{vocab - 1}")
        out.append(list(x))
    if isinstance(starts, (str, bytes)):
        raise TypeError(f"{who}: starts must be a list of ints, got a str")
    if isinstance(starts, torch.Tensor):
        starts = starts.tolist()
    st = [check_int(f"starts[{i}]", s, who=who) for i, s in enumerate(check_sequence("starts", starts, who=who))]
    if len(st) != len(out):
        raise ValueError(f"{who}: {len(out)} token lists but {len(st)} starts")
    for i, (x, s) in enumerate(zip(out, st)):
        if not 1 <= s < len(x):
            raise ValueError(f"{who}: starts[{i}]={s} must be in 1..len(token_lists[{i}])-1 = {len(x) - 1} "
                             "(position 0 has no prediction, and at least one token must be scored)")
    stride = block // 2 if stride is None else check_int("stride", stride, min=1, max=block, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    return out, st, block, stride


@torch.inference_mode()
def continuation_nll(model: nn.Module, token_lists, starts, *, stride: int | None = None,
                     batch_size: int = 64) -> torch.Tensor:
    """``(N,)`` float64: ``-sum_{t >= starts[i]} ln p(x_t | x_<t)`` for each token list ``x``.

    A list longer than the model's window is scored in windows of ``block_size + 1`` tokens that
    start every ``stride`` tokens (default ``block_size // 2``): each target is scored once, in
    the first window whose *new* part holds it, so it sees at least ``block_size - stride``
    tokens of context (fewer only near the start of the list). Eval mode, restored."""
    lists, starts, block, stride = _check_nll_args(model, token_lists, starts, stride, batch_size,
                                                   "continuation_nll")
    # (text, window start, first new target, end): window ids x[s : s + block + 1] score targets [lo, hi)
    windows = []
    for i, x in enumerate(lists):
        s, lo = 0, 1
        while lo < len(x):
            hi = min(s + block + 1, len(x))
            windows.append((i, s, lo, hi))
            lo, s = hi, s + stride
            while s + block + 1 <= lo and lo < len(x):  # a window must reach beyond what is scored
                s += stride
    total = torch.zeros(len(lists), dtype=torch.float64)
    was = model.training
    model.eval()
    try:
        for b in range(0, len(windows), batch_size):
            chunk = windows[b:b + batch_size]
            T = max(hi - s for _, s, _, hi in chunk)
            ids = torch.zeros(len(chunk), T, dtype=torch.long)
            keep = torch.zeros(len(chunk), T - 1, dtype=torch.bool)
            for r, (i, s, lo, hi) in enumerate(chunk):
                ids[r, : hi - s] = torch.tensor(lists[i][s:hi])
                first = max(lo, starts[i])                     # targets before starts[i] are context only
                if first < hi:
                    keep[r, first - s - 1: hi - s - 1] = True  # target x_t sits at input position t - s - 1
            device = next(model.parameters()).device
            res = model(ids[:, :-1].to(device))
            logits = (res[0] if isinstance(res, tuple) else res).double().cpu()      # (b, T-1, V)
            logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]  # (b, T-1)
            nll = -(logp * keep).sum(1)
            total.index_add_(0, torch.tensor([i for i, *_ in chunk]), nll)
    finally:
        model.train(was)
    return total


def continuation_bits_per_char(model: nn.Module, tokenizer, prompts: Sequence[str], continuations: Sequence[str],
                               *, stride: int | None = None, batch_size: int = 64) -> torch.Tensor:
    """``(N,)`` float64: bits per character of each continuation after its prompt under
    ``model`` (prompt and continuation encoded separately with ``tokenizer``, then joined), so
    that scorers with different tokenizers are comparable."""
    who = "continuation_bits_per_char"
    check_module("model", model, who=who)
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(f"{who}: tokenizer must have encode(), got {type(tokenizer).__name__}")
    for name, seq in (("prompts", prompts), ("continuations", continuations)):
        if isinstance(seq, (str, bytes)):
            raise TypeError(f"{who}: {name} must be a list of str, got a single str")
    ps = check_sequence("prompts", prompts, of=str, nonempty=True, who=who)
    cs = check_sequence("continuations", continuations, of=str, nonempty=True, who=who)
    if len(ps) != len(cs):
        raise ValueError(f"{who}: {len(ps)} prompts but {len(cs)} continuations")
    for i, (p, c) in enumerate(zip(ps, cs)):
        if not p:
            raise ValueError(f"{who}: prompts[{i}] is empty (the first character needs a context)")
        if not c:
            raise ValueError(f"{who}: continuations[{i}] is empty: nothing to score")
    lists, starts = [], []
    for i, (p, c) in enumerate(zip(ps, cs)):
        try:
            a, b = tokenizer.encode(p), tokenizer.encode(c)
        except ValueError as exc:
            raise ValueError(f"{who}: prompts[{i}] or continuations[{i}] cannot be encoded: {exc}") from None
        lists.append(a + b)
        starts.append(len(a))
    nll = continuation_nll(model, lists, starts, stride=stride, batch_size=batch_size)
    chars = torch.tensor([len(c) for c in cs], dtype=torch.float64)
    return nll / chars / math.log(2)


# --------------------------------------------------------------------------------------------
# Real or generated?
# --------------------------------------------------------------------------------------------

@dataclass
class Detector:
    """A fitted real-vs-generated classifier (class 1 = real, 0 = generated); see :func:`fit_detector`."""

    featurizer: object
    model: nn.Module
    weight_decay: float
    selection_accuracy: dict = field(default_factory=dict)

    def is_real(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N,)`` bool: which of ``texts`` the classifier calls real."""
        who = "Detector.is_real"
        if isinstance(texts, (str, bytes)):
            raise TypeError(f"{who}: texts must be a list of str, got a single str")
        ts = check_sequence("texts", texts, of=str, nonempty=True, who=who)
        with torch.no_grad():
            return self.model(self.featurizer.transform(list(ts)))[0].argmax(-1) == 1


def _check_detector_args(real, generated, n_range, weight_decays, max_features, who: str):
    out = []
    for name, seq in (("real", real), ("generated", generated)):
        if isinstance(seq, (str, bytes)):
            raise TypeError(f"{who}: {name} must be a list of str, got a single str")
        items = check_sequence(name, seq, of=str, nonempty=True, who=who)
        if len(items) < 2:
            raise ValueError(f"{who}: {name} needs at least 2 texts (the weight decay is chosen on a 2-fold split)")
        out.append(list(items))
    if isinstance(n_range, (str, bytes)) or not isinstance(n_range, (tuple, list)):
        raise TypeError(f"{who}: n_range must be a (lo, hi) pair of ints, got {n_range!r}")
    pair = check_sequence("n_range", n_range, of=int, who=who)
    if len(pair) != 2 or not 1 <= pair[0] <= pair[1]:
        raise ValueError(f"{who}: n_range must be (lo, hi) with 1 <= lo <= hi, got {n_range!r}")
    if isinstance(weight_decays, (str, bytes)):
        raise TypeError(f"{who}: weight_decays must be a list of floats")
    decays = check_sequence("weight_decays", weight_decays, nonempty=True, who=who)
    for i, wd in enumerate(decays):
        check_float(f"weight_decays[{i}]", wd, min=0.0, who=who)
    check_int("max_features", max_features, min=1, who=who)
    return out[0], out[1], tuple(pair), [float(w) for w in decays]


def fit_detector(real: Sequence[str], generated: Sequence[str], *, n_range=(1, 3),
                 weight_decays: Sequence[float] = (1e-4, 1e-3, 1e-2), max_features: int = 20000) -> Detector:
    """Logistic regression on character n-gram features (``n_range``), real (1) vs generated (0).

    The weight decay is chosen among ``weight_decays`` by a 2-fold split of the given texts
    (even / odd positions of each list; mean accuracy of the two folds, ties to the first),
    then the classifier is refitted on all of them. Deterministic."""
    from lmlib.classification import NGramFeaturizer, fit_logistic_regression

    real, generated, n_range, decays = _check_detector_args(real, generated, n_range, weight_decays, max_features,
                                                            "fit_detector")

    def fit(texts, labels, wd):
        feat = NGramFeaturizer("char", n_range, max_features=max_features).fit(texts)
        return feat, fit_logistic_regression(feat.transform(texts), torch.tensor(labels), 2, weight_decay=wd)

    def fold(k):
        r, g = real[k::2], generated[k::2]
        return r + g, [1] * len(r) + [0] * len(g)

    scores = {}
    for wd in decays:
        accs = []
        for k in (0, 1):
            (tr, ytr), (te, yte) = fold(k), fold(1 - k)
            feat, lr = fit(tr, ytr, wd)
            with torch.no_grad():
                pred = lr(feat.transform(te))[0].argmax(-1)
            accs.append(float((pred == torch.tensor(yte)).float().mean()))
        scores[wd] = sum(accs) / 2
    best = max(decays, key=lambda wd: (scores[wd], -decays.index(wd)))
    feat, lr = fit(real + generated, [1] * len(real) + [0] * len(generated), best)
    return Detector(feat, lr, best, scores)


def fraction_judged_real(detector: Detector, texts: Sequence[str], *, groups=None, n_boot: int = 2000,
                         seed: int = 0, level: float = 0.95):
    """The fraction of ``texts`` that ``detector`` calls real, with a bootstrap interval over the
    texts (:func:`lmlib.stats.bootstrap_mean`; ``groups``: one label per text, e.g. its prompt,
    to resample texts of one prompt together). On generated texts this is the *fooled rate*; on
    real texts, the detector's accuracy on real text."""
    from lmlib.stats import bootstrap_mean

    if not isinstance(detector, Detector):
        raise TypeError(f"fraction_judged_real: detector must be a Detector (from fit_detector), "
                        f"got {type(detector).__name__}")
    judged = detector.is_real(texts).double()
    return bootstrap_mean(judged, groups=groups, n_boot=n_boot, seed=seed, level=level)
