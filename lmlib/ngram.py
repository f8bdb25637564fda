"""Character n-gram language models: counting, add-k smoothing, interpolated absolute
discounting, perplexity and sampling (with a temperature).

:class:`NGramModel` is the add-k model described here; :class:`InterpolatedNGramModel` combines
the counts of every order ``1, ..., n`` by interpolated absolute discounting (see its docstring),
:class:`MixtureNGramModel` by a fixed mixture (Jelinek–Mercer interpolation);
:func:`apply_temperature` reshapes a next-character distribution before sampling.

An n-gram model predicts the next character from the previous ``n - 1`` characters only (the
*context*), using how often each ``n``-character string occurred in the training text::

    P(c | context) = (N(context + c) + k) / (N(context) + k * V)

where ``N`` counts occurrences in the training text, ``V`` is the vocabulary size and ``k >= 0``
is the add-k *smoothing*. ``k = 0`` is the maximum-likelihood estimate; ``k = 1`` is Laplace's
add-one rule. ``N(context)`` counts the context only where it is followed by a character, so each
row of probabilities sums to exactly 1.

Unseen contexts
---------------
A context that never occurred in training has ``N(context) = 0``. With ``k > 0`` the formula
gives the uniform distribution ``1 / V``. With ``k = 0`` it would be ``0 / 0``; the model then
also uses the uniform distribution (no evidence, so no preference), so every context always has
a proper distribution. What ``k = 0`` cannot fix is a *seen* context followed by a character it
was never followed by in training: that character gets probability 0, its log-probability is
``-inf``, and the mean negative log-likelihood and the perplexity of any text containing it are
infinite. :meth:`NGramModel.seen_context_fraction` tells how often a text's contexts were seen.

Storage
-------
Counts are stored sparsely: every n-gram is encoded as one integer (its characters' ids read as
the digits of a base-``V`` number), and the model keeps the sorted distinct codes with their
counts. Fitting is one ``torch.unique`` over all windows of the text; a lookup is a binary search
(``torch.searchsorted``). So a 5-gram model over 80 characters (``80**5`` possible 5-grams) costs
memory only for the 5-grams that actually occur.

Which positions are predicted
-----------------------------
The first ``n - 1`` characters of a text have no full context, so :meth:`NGramModel.nll` and
friends average over the ``len(text) - n + 1`` characters that do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lmlib.data import CharVocab
from lmlib.validation import check_float, check_int, check_tensor

__all__ = ["NGramModel", "InterpolatedNGramModel", "MixtureNGramModel", "apply_temperature"]

_MAX_CODE = 2**62  # n-gram codes are int64; V**n must stay below this


class NGramModel:
    """A character n-gram language model with add-k smoothing.

    Args:
        n: the order; the model conditions on the previous ``n - 1`` characters
            (``n = 1``: unigram, no context; ``n = 2``: bigram).
        vocab: the character vocabulary; every text given to the model must use only its
            characters.
        smoothing: the ``k`` of add-k smoothing, ``>= 0`` (``0`` = maximum likelihood).

    >>> v = CharVocab.from_text("ab")
    >>> m = NGramModel(2, v, smoothing=0).fit("aab")
    >>> m.log_prob_next("a").exp().tolist()   # "a" was followed once by "a", once by "b"
    [0.5, 0.5]
    """

    def __init__(self, n: int, vocab: CharVocab, smoothing: float = 1.0):
        check_int("n", n)
        if n < 1:
            raise ValueError(f"n must be >= 1 (1 = unigram, 2 = bigram, ...), got {n}")
        if not isinstance(vocab, CharVocab):
            raise TypeError(f"vocab must be a lmlib.data.CharVocab, got {type(vocab).__name__}")
        check_float("smoothing", smoothing, min=0.0)
        V = vocab.vocab_size
        if V**n >= _MAX_CODE:
            raise ValueError(f"n = {n} is too large for a vocabulary of {V} characters "
                             f"({V}**{n} n-grams do not fit in a 64-bit code)")
        self.n = n
        self.vocab = vocab
        self.smoothing = float(smoothing)
        self.V = V
        # base-V place values of the n characters of an n-gram, most significant first
        self._place = V ** torch.arange(n - 1, -1, -1, dtype=torch.int64)  # (n,)
        # code point -> id (-1 for characters outside the vocabulary)
        self._lut = torch.full((max(map(ord, vocab.chars)) + 1,), -1, dtype=torch.int64)
        self._lut[torch.tensor([ord(c) for c in vocab.chars])] = torch.arange(V)
        self._codes: torch.Tensor | None = None  # (M,) sorted distinct n-gram codes
        self._counts: torch.Tensor | None = None  # (M,) their counts
        self._ctx_codes: torch.Tensor | None = None  # (C,) sorted distinct context codes
        self._ctx_counts: torch.Tensor | None = None  # (C,) their counts
        self._ctx_types: torch.Tensor | None = None  # (C,) how many distinct characters follow each
        self.num_predictions = 0  # number of n-grams in the training text
        self._cache: list[tuple[str, tuple[torch.Tensor, ...]]] = []  # see _text_counts

    def __repr__(self) -> str:
        state = f"{self.num_ngrams} distinct {self.n}-grams" if self.is_fitted else "not fitted"
        return f"NGramModel(n={self.n}, vocab_size={self.V}, smoothing={self.smoothing:g}; {state})"

    # ------------------------------------------------------------------ encoding
    def _ids(self, text: str, what: str) -> torch.Tensor:
        """The ids of ``text`` as a 1-D int64 tensor; clear errors for bad input."""
        if not isinstance(text, str):
            raise TypeError(f"{what} must be a str, got {type(text).__name__}")
        # code points -> ids through a lookup table (much faster than a dict on millions of chars)
        try:
            raw = text.encode("utf-32-le")
        except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from a broken decode
            raise ValueError(f"{what}: {text[exc.start]!r} at position {exc.start} is not a valid "
                             "character") from None
        points = torch.from_numpy(np.frombuffer(raw, dtype=np.uint32).astype(np.int64))  # (L,)
        inside = points < len(self._lut)
        ids = torch.where(inside, self._lut[points.clamp(max=len(self._lut) - 1)], -1)  # (L,)
        bad = torch.nonzero(ids < 0)
        if len(bad):
            i = int(bad[0, 0])
            raise ValueError(f"{what}: character {text[i]!r} at position {i} is not in the vocabulary; "
                             f"the model only knows the {self.V} characters of its vocabulary")
        return ids

    def _windows(self, ids: torch.Tensor) -> torch.Tensor:
        """Codes of all n-grams of ``ids``: (L,) -> (L - n + 1,)."""
        win = ids.unfold(0, self.n, 1)  # (L - n + 1, n)
        return win @ self._place  # (L - n + 1,)

    @staticmethod
    def _lookup(keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Count of every code in ``query`` (0 when absent), given sorted ``keys``."""
        if keys.numel() == 0:
            return torch.zeros_like(query)
        idx = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
        found = keys[idx] == query
        return torch.where(found, values[idx], torch.zeros_like(query))

    def _require_fit(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("the model has not been fitted; call .fit(text) first")

    # ------------------------------------------------------------------ fitting
    @property
    def is_fitted(self) -> bool:
        return self._codes is not None

    @property
    def num_ngrams(self) -> int:
        """Number of distinct n-grams seen in training."""
        return 0 if self._codes is None else int(self._codes.numel())

    def fit(self, text: str) -> "NGramModel":
        """Count every n-gram of ``text`` (replacing earlier counts); returns ``self``.

        ``text`` needs at least ``n`` characters (one complete n-gram).
        """
        ids = self._ids(text, "training text")
        if len(ids) < self.n:
            raise ValueError(f"the training text has {len(ids)} characters; a {self.n}-gram model "
                             f"needs at least {self.n}")
        codes = self._windows(ids)  # (L - n + 1,)
        self._codes, self._counts = torch.unique(codes, sorted=True, return_counts=True)
        # a context's count = the sum of the counts of the n-grams that start with it
        ctx = self._codes // self.V  # (M,), still sorted
        self._ctx_codes, inverse, self._ctx_types = torch.unique_consecutive(
            ctx, return_inverse=True, return_counts=True)  # _ctx_types: distinct next characters
        self._ctx_counts = torch.zeros(len(self._ctx_codes), dtype=torch.int64)
        self._ctx_counts.index_add_(0, inverse, self._counts)
        self.num_predictions = int(codes.numel())
        self._cache = []
        return self

    def with_smoothing(self, smoothing: float) -> "NGramModel":
        """A model with the same counts (shared, not copied) and another add-k ``smoothing``."""
        other = NGramModel(self.n, self.vocab, smoothing)
        other._codes, other._counts = self._codes, self._counts
        other._ctx_codes, other._ctx_counts = self._ctx_codes, self._ctx_counts
        other._ctx_types = self._ctx_types
        other.num_predictions = self.num_predictions
        other._cache = self._cache
        return other

    # ------------------------------------------------------------------ counts
    def count(self, ngram: str) -> int:
        """How often the ``n``-character string ``ngram`` occurred in training."""
        self._require_fit()
        ids = self._ids(ngram, "ngram")
        if len(ids) != self.n:
            raise ValueError(f"a {self.n}-gram has {self.n} characters, got {len(ids)}: {ngram!r}")
        code = (ids @ self._place).reshape(1)
        return int(self._lookup(self._codes, self._counts, code)[0])

    def context_count(self, context: str) -> int:
        """How often the last ``n - 1`` characters of ``context`` were followed by a character."""
        self._require_fit()
        code = self._context_code(context).reshape(1)
        return int(self._lookup(self._ctx_codes, self._ctx_counts, code)[0])

    def _context_code(self, context: str) -> torch.Tensor:
        ids = self._ids(context, "context")
        k = self.n - 1
        if len(ids) < k:
            raise ValueError(f"a {self.n}-gram model needs a context of at least {k} characters, "
                             f"got {len(ids)}: {context!r}")
        tail = ids[len(ids) - k:]  # (n - 1,) the part of the context the model looks at
        return tail @ self._place[1:]  # scalar

    def count_table(self) -> torch.Tensor:
        """All counts as a dense int64 tensor of shape ``(V,) * n``: ``table[a, b]`` for a bigram
        model is how often ``b`` followed ``a``. Only for small tables (``V**n <= 2**25``)."""
        self._require_fit()
        if self.V**self.n > 2**25:
            raise ValueError(f"a dense table of {self.V}**{self.n} counts is too large; "
                             "use count() / log_prob_next() instead")
        flat = torch.zeros(self.V**self.n, dtype=torch.int64)
        flat[self._codes] = self._counts
        return flat.reshape((self.V,) * self.n)

    def prob_table(self) -> torch.Tensor:
        """Dense next-character probabilities, shape ``(V,) * n``, float64: ``table[a, b]`` for
        a bigram model is ``P(b | a)``; summing over the last axis gives 1 everywhere."""
        counts = self.count_table().double()
        ctx = counts.sum(-1, keepdim=True)  # (V, ..., V, 1)
        return self._smooth(counts, ctx)

    # ------------------------------------------------------------------ probabilities
    def _smooth(self, ngram_counts: torch.Tensor, ctx_counts: torch.Tensor) -> torch.Tensor:
        """(N(ctx, c) + k) / (N(ctx) + kV); the uniform 1/V where N(ctx) = 0 (see module doc)."""
        k = self.smoothing
        num = ngram_counts.double() + k
        den = ctx_counts.double() + k * self.V
        probs = num / den.clamp(min=1e-300)
        return torch.where(ctx_counts == 0, torch.full_like(probs, 1.0 / self.V), probs)

    def log_prob_next(self, context: str) -> torch.Tensor:
        """Log-probabilities (natural log, float64) of every next character, shape ``(V,)``.

        Only the last ``n - 1`` characters of ``context`` matter; a shorter context raises
        ``ValueError``. With ``smoothing = 0`` a character never seen after this context gets
        ``-inf``.
        """
        self._require_fit()
        ctx = self._context_code(context)
        codes = ctx * self.V + torch.arange(self.V)  # (V,)
        counts = self._lookup(self._codes, self._counts, codes)  # (V,)
        ctx_count = self._lookup(self._ctx_codes, self._ctx_counts, ctx.reshape(1))  # (1,)
        return self._smooth(counts, ctx_count).log()

    def log_probs(self, text: str) -> torch.Tensor:
        """Log-probability of every predicted character of ``text``, float64 of shape
        ``(len(text) - n + 1,)``: entry ``i`` is ``log P(text[i + n - 1] | text[i : i + n - 1])``."""
        counts, ctx_counts, _ = self._text_counts(text)  # (P,), (P,)
        return self._smooth(counts, ctx_counts).log()

    def _text_counts(self, text: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training counts ``N(context + c)``, ``N(context)`` and the number of distinct characters
        seen after the context, at every predicted position of ``text``, each of shape
        ``(len(text) - n + 1,)``. The last two texts are cached (shared
        with :meth:`with_smoothing` copies), so sweeping ``k`` on a long text looks up once."""
        self._require_fit()
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        for cached_text, result in self._cache:
            if cached_text is text or cached_text == text:
                return result
        ids = self._ids(text, "text")
        if len(ids) < self.n:
            raise ValueError(f"the text has {len(ids)} characters; a {self.n}-gram model predicts "
                             f"nothing from fewer than {self.n} (empty text?)")
        codes = self._windows(ids)  # (P,)
        counts = self._lookup(self._codes, self._counts, codes)  # (P,)
        ctx_counts = self._lookup(self._ctx_codes, self._ctx_counts, codes // self.V)  # (P,)
        ctx_types = self._lookup(self._ctx_codes, self._ctx_types, codes // self.V)  # (P,)
        self._cache[:] = [(text, (counts, ctx_counts, ctx_types))] + self._cache[:1]
        return counts, ctx_counts, ctx_types

    def context_counts(self, text: str) -> torch.Tensor:
        """``N(context)`` in training for every predicted character of ``text``: int64 of shape
        ``(len(text) - n + 1,)`` (0 where the context was never seen)."""
        return self._text_counts(text)[1].clone()

    def context_types(self, text: str) -> torch.Tensor:
        """``T(context)``, the number of distinct characters that followed the context in training,
        for every predicted character of ``text``: int64 of shape ``(len(text) - n + 1,)``."""
        return self._text_counts(text)[2].clone()

    def seen_context_fraction(self, text: str) -> float:
        """Fraction of the predicted characters of ``text`` whose context occurred in training."""
        _, ctx_counts, _ = self._text_counts(text)
        return float((ctx_counts > 0).double().mean())

    # ------------------------------------------------------------------ evaluation
    def nll(self, text: str) -> float:
        """Mean negative log-likelihood in nats per predicted character (the cross-entropy of the
        model on ``text``); ``inf`` if some character has probability 0."""
        return float(-self.log_probs(text).mean())

    def perplexity(self, text: str) -> float:
        """``exp(nll(text))``: the geometric mean of ``1 / P(next character)``."""
        return math.exp(self.nll(text))

    def bits_per_char(self, text: str) -> float:
        """``nll(text) / ln 2``: the mean number of bits per predicted character."""
        return self.nll(text) / math.log(2)

    # ------------------------------------------------------------------ sampling
    def prob_next(self, context: str, temperature: float = 1.0) -> torch.Tensor:
        """The distribution ``sample`` draws the next character from, shape ``(V,)``, float64:
        the model's ``P(c | context)`` raised to the power ``1 / temperature`` and renormalised
        (see :func:`apply_temperature`)."""
        temperature = check_float("temperature", temperature, min=0.0, who="prob_next")
        return apply_temperature(self.log_prob_next(context), temperature)

    def sample(self, n_chars: int, generator: torch.Generator | None = None, prompt: str = "", *,
               temperature: float = 1.0) -> str:
        """Generate ``n_chars`` characters after ``prompt``; returns ``prompt`` + the new text.

        Each character is drawn with ``torch.multinomial`` from :meth:`prob_next` given the last
        ``n - 1`` characters (``temperature = 1``: the model itself; ``0``: always the most likely
        character). A non-empty ``prompt`` must have at least ``n - 1`` characters. With an empty
        prompt (and ``n > 1``) the first ``n - 1`` characters are a context drawn from the training
        contexts in proportion to their counts (they count towards ``n_chars``). Pass a seeded
        ``torch.Generator`` for reproducible text (``None`` uses torch's global random state).
        """
        self._require_fit()
        _check_sample_args(self, n_chars, generator, prompt, temperature)
        return _sample(self, self, n_chars, generator, prompt, temperature)

    def _random_context(self, generator: torch.Generator | None) -> str:
        """A training context of ``n - 1`` characters, drawn in proportion to its count."""
        k = self.n - 1
        i = int(torch.multinomial(self._ctx_counts.double(), 1, generator=generator))
        code = int(self._ctx_codes[i])
        return self.vocab.decode([(code // self.V**j) % self.V for j in range(k - 1, -1, -1)])


def apply_temperature(log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sampling probabilities from log-probabilities ``(..., V)`` at a ``temperature`` >= 0.

    ``p_T(c) = p(c)**(1/T) / sum_c' p(c')**(1/T)``, i.e. ``softmax(log p / T)``. ``T = 1`` returns
    ``exp(log p)`` unchanged; ``T -> 0`` puts all the mass on the most likely character (``T = 0``
    is exactly that one-hot distribution, the first maximum on ties); a large ``T`` tends to the
    uniform distribution over the characters of nonzero probability.
    """
    _check_log_probs(log_probs)
    temperature = check_float("temperature", temperature, min=0.0, who="apply_temperature")
    return _tempered(log_probs, temperature)


def _tempered(log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """:func:`apply_temperature` without the checks (for the sampling loop)."""
    if temperature == 1.0:
        return log_probs.exp()
    if temperature == 0.0:
        return F.one_hot(log_probs.argmax(-1), log_probs.shape[-1]).to(log_probs.dtype)
    return torch.softmax(log_probs / temperature, dim=-1)


def _check_sample_args(model, n_chars, generator, prompt, temperature) -> None:
    check_int("n_chars", n_chars, min=0, who="sample")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not isinstance(prompt, str):
        raise TypeError(f"sample: prompt must be a str, got {type(prompt).__name__}")
    check_float("temperature", temperature, min=0.0, who="sample")
    k = model.n - 1
    if prompt:
        model._ids(prompt, "prompt")  # an unknown character is the more useful error
        if len(prompt) < k:
            raise ValueError(f"a {model.n}-gram model needs a prompt of at least {k} characters "
                             f"(or an empty prompt), got {len(prompt)}: {prompt!r}")


def _sample(model, starts, n_chars, generator, prompt, temperature) -> str:
    """The sampling loop shared by the models (arguments already checked); ``starts`` is the
    :class:`NGramModel` whose training contexts start a text when ``prompt`` is empty."""
    k = model.n - 1
    out = prompt
    if prompt == "" and k > 0 and n_chars > 0:
        out = starts._random_context(generator)[:n_chars]
        n_chars -= len(out)
    new = []
    context = out[len(out) - k:] if k else ""
    for _ in range(n_chars):
        probs = _tempered(model.log_prob_next(context), temperature)  # (V,) = model.prob_next(...)
        c = model.vocab.chars[int(torch.multinomial(probs, 1, generator=generator))]
        new.append(c)
        context = (context + c)[len(context) + 1 - k:] if k else ""
    return out + "".join(new)


def _check_log_probs(log_probs: Any) -> None:
    check_tensor("log_probs", log_probs, dtype="float", nonempty=True, who="apply_temperature")
    if log_probs.ndim == 0:
        raise ValueError("apply_temperature: log_probs must have a last axis (of V entries), got a scalar")
    if torch.isnan(log_probs).any() or (log_probs == math.inf).any() or (log_probs > 1e-6).any():
        raise ValueError("apply_temperature: log_probs must be log-probabilities (<= 0, no NaN)")
    if (log_probs == -math.inf).all(-1).any():
        raise ValueError("apply_temperature: log_probs has a row where every entry is -inf")


class InterpolatedNGramModel:
    """A character n-gram model with interpolated absolute discounting.

    Every order ``m = 1, ..., n`` is counted on the same training text. The order-``m``
    distribution takes a fixed ``discount`` ``D`` (``0 <= D <= 1``) from the count of every
    n-gram that occurred and hands the freed mass to the order-``m - 1`` distribution of the
    context without its first character (order 0 is the uniform ``1 / V``)::

        P_m(c | h) = max(N(hc) - D, 0) / N(h)  +  D * T(h) / N(h) * P_{m-1}(c | h')

    where ``N(h)`` counts the context ``h`` followed by any character and ``T(h)`` is the number
    of distinct characters that followed it: exactly the mass the discount removed, so every
    distribution sums to 1. A context never seen (``N(h) = 0``) *backs off* entirely to
    ``P_{m-1}(c | h')``. With ``D > 0`` every character has a positive probability.

    Args:
        n: the highest order (``n - 1`` characters of context), ``>= 1``.
        vocab: the character vocabulary.
        discount: ``D``, in ``[0, 1]``.

    Attributes:
        orders: the unsmoothed :class:`NGramModel` of every order ``1, ..., n`` (its counts).
    """

    def __init__(self, n: int, vocab: CharVocab, discount: float = 0.75):
        check_int("n", n, min=1, who="InterpolatedNGramModel")
        self.discount = check_float("discount", discount, min=0.0, max=1.0, who="InterpolatedNGramModel")
        self.orders = [NGramModel(m, vocab, smoothing=0) for m in range(1, n + 1)]  # validates vocab
        self.n, self.vocab, self.V = n, vocab, vocab.vocab_size

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"InterpolatedNGramModel(n={self.n}, vocab_size={self.V}, discount={self.discount:g}; {state})"

    @property
    def is_fitted(self) -> bool:
        return self.orders[-1].is_fitted

    def _ids(self, text: str, what: str) -> torch.Tensor:
        return self.orders[-1]._ids(text, what)

    def fit(self, text: str) -> "InterpolatedNGramModel":
        """Count the n-grams of every order ``1, ..., n`` of ``text``; returns ``self``."""
        ids = self._ids(text, "training text")
        if len(ids) < self.n:
            raise ValueError(f"the training text has {len(ids)} characters; a {self.n}-gram model "
                             f"needs at least {self.n}")
        for model in self.orders:
            model.fit(text)
        return self

    def with_discount(self, discount: float, n: int | None = None) -> "InterpolatedNGramModel":
        """A model sharing these counts (not copied) with another ``discount`` and, optionally,
        a lower highest order ``n`` (default: the same)."""
        n = self.n if n is None else check_int("n", n, min=1, max=self.n, who="with_discount")
        other = InterpolatedNGramModel(n, self.vocab, discount)
        other.orders = self.orders[:n]
        return other

    @staticmethod
    def _interpolate(counts, ctx_counts, ctx_types, lower, discount):
        """One order: ``max(N(hc) - D, 0) / N(h) + D T(h) / N(h) * lower``; ``lower`` if N(h) = 0."""
        n_h = ctx_counts.double().clamp(min=1)  # avoids 0/0; those rows are replaced below
        p = (counts.double() - discount).clamp(min=0) / n_h + discount * ctx_types.double() / n_h * lower
        return torch.where(ctx_counts > 0, p, lower)

    def log_prob_next(self, context: str) -> torch.Tensor:
        """Log-probabilities (float64) of every next character, shape ``(V,)``; only the last
        ``n - 1`` characters of ``context`` matter."""
        self._require_fit()
        ids = self.orders[-1]._ids(context, "context")
        if len(ids) < self.n - 1:
            raise ValueError(f"a {self.n}-gram model needs a context of at least {self.n - 1} characters, "
                             f"got {len(ids)}: {context!r}")
        p = torch.full((self.V,), 1.0 / self.V, dtype=torch.float64)
        for model in self.orders:
            ctx = ids[len(ids) - (model.n - 1):] @ model._place[1:]  # code of the last n_m - 1 characters
            counts = model._lookup(model._codes, model._counts, ctx * self.V + torch.arange(self.V))
            n_h = model._lookup(model._ctx_codes, model._ctx_counts, ctx.reshape(1))
            t_h = model._lookup(model._ctx_codes, model._ctx_types, ctx.reshape(1))
            p = self._interpolate(counts, n_h, t_h, p, self.discount)
        return p.log()

    def log_probs(self, text: str) -> torch.Tensor:
        """``log P(text[i + n - 1] | text[i : i + n - 1])`` for every predicted character,
        float64 of shape ``(len(text) - n + 1,)``, as :meth:`NGramModel.log_probs`."""
        self._require_fit()
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if len(text) < self.n:
            self._ids(text, "text")
            raise ValueError(f"the text has {len(text)} characters; a {self.n}-gram model predicts "
                             f"nothing from fewer than {self.n} (empty text?)")
        p = torch.tensor(1.0 / self.V, dtype=torch.float64)
        for model in self.orders:
            skip = self.n - model.n  # order m predicts from position m - 1; align on position n - 1
            counts, n_h, t_h = (x[skip:] for x in model._text_counts(text))  # (P,) each
            p = self._interpolate(counts, n_h, t_h, p, self.discount)
        return p.log()

    def _require_fit(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("the model has not been fitted; call .fit(text) first")

    nll = NGramModel.nll
    perplexity = NGramModel.perplexity
    bits_per_char = NGramModel.bits_per_char
    prob_next = NGramModel.prob_next

    def sample(self, n_chars: int, generator: torch.Generator | None = None, prompt: str = "", *,
               temperature: float = 1.0) -> str:
        """Generate text as :meth:`NGramModel.sample` does, from this model's distributions."""
        self._require_fit()
        _check_sample_args(self, n_chars, generator, prompt, temperature)
        return _sample(self, self.orders[-1], n_chars, generator, prompt, temperature)


class MixtureNGramModel(InterpolatedNGramModel):
    """A character n-gram model with a fixed mixture of orders (Jelinek–Mercer interpolation).

    The counts are those of :class:`InterpolatedNGramModel`; only the share of the shorter context
    differs. Instead of the discount's ``D * T(h) / N(h)``, which shrinks as a context is seen
    more often, every seen context hands the same fixed share ``lam`` to the order below::

        P_m(c | h) = (1 - lam) * N(hc) / N(h)  +  lam * P_{m-1}(c | h')

    An unseen context (``N(h) = 0``) backs off entirely to ``P_{m-1}(c | h')``; order 0 is the
    uniform ``1 / V``. Every distribution sums to 1, and with ``lam > 0`` nothing has probability 0.

    Args:
        n: the highest order, ``>= 1``.
        vocab: the character vocabulary.
        lam: the share of the shorter context, in ``(0, 1]`` (``1`` is the uniform model).
    """

    def __init__(self, n: int, vocab: CharVocab, lam: float = 0.5):
        lam = check_float("lam", lam, min=0.0, max=1.0, min_open=True, who="MixtureNGramModel")
        super().__init__(n, vocab, discount=0.0)
        self.lam = float(lam)

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"MixtureNGramModel(n={self.n}, vocab_size={self.V}, lam={self.lam:g}; {state})"

    def _interpolate(self, counts, ctx_counts, ctx_types, lower, discount):
        """One order: ``(1 - lam) N(hc) / N(h) + lam * lower``; ``lower`` if N(h) = 0."""
        n_h = ctx_counts.double().clamp(min=1)  # avoids 0/0; those rows are replaced below
        p = (1 - self.lam) * counts.double() / n_h + self.lam * lower
        return torch.where(ctx_counts > 0, p, lower)

    def with_lam(self, lam: float, n: int | None = None) -> "MixtureNGramModel":
        """A model sharing these counts (not copied) with another ``lam`` and, optionally, a lower
        highest order ``n`` (default: the same)."""
        n = self.n if n is None else check_int("n", n, min=1, max=self.n, who="with_lam")
        other = MixtureNGramModel(n, self.vocab, lam)
        other.orders = self.orders[:n]
        return other

    @classmethod
    def from_counts(cls, model: InterpolatedNGramModel, lam: float, n: int | None = None) -> "MixtureNGramModel":
        """A mixture model over the counts of ``model`` (any fitted :class:`InterpolatedNGramModel`,
        not copied), with share ``lam`` and highest order ``n`` (default: the model's)."""
        if not isinstance(model, InterpolatedNGramModel):
            raise TypeError(f"from_counts: model must be an InterpolatedNGramModel, got {type(model).__name__}")
        n = model.n if n is None else check_int("n", n, min=1, max=model.n, who="from_counts")
        other = cls(n, model.vocab, lam)
        other.orders = model.orders[:n]
        return other
