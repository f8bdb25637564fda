"""Character n-gram language models: counting, add-k smoothing, perplexity and sampling.

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

import numpy as np
import torch

from lmlib.data import CharVocab
from lmlib.validation import check_float, check_int

__all__ = ["NGramModel"]

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
        self.num_predictions = 0  # number of n-grams in the training text
        self._cache: list[tuple[str, tuple[torch.Tensor, torch.Tensor]]] = []  # see _text_counts

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
        self._ctx_codes, inverse = torch.unique_consecutive(ctx, return_inverse=True)
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
        counts, ctx_counts = self._text_counts(text)  # (P,), (P,)
        return self._smooth(counts, ctx_counts).log()

    def _text_counts(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Training counts ``N(context + c)`` and ``N(context)`` at every predicted position of
        ``text``, each of shape ``(len(text) - n + 1,)``. The last two texts are cached (shared
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
        self._cache[:] = [(text, (counts, ctx_counts))] + self._cache[:1]
        return counts, ctx_counts

    def seen_context_fraction(self, text: str) -> float:
        """Fraction of the predicted characters of ``text`` whose context occurred in training."""
        _, ctx_counts = self._text_counts(text)
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
    def sample(self, n_chars: int, generator: torch.Generator | None = None, prompt: str = "") -> str:
        """Generate ``n_chars`` characters after ``prompt``; returns ``prompt`` + the new text.

        Each character is drawn with ``torch.multinomial`` from the model's next-character
        distribution given the last ``n - 1`` characters. A non-empty ``prompt`` must have at
        least ``n - 1`` characters. With an empty prompt (and ``n > 1``) the first ``n - 1``
        characters are a context drawn from the training contexts in proportion to their counts
        (they count towards ``n_chars``). Pass a seeded ``torch.Generator`` for reproducible text
        (``None`` uses torch's global random state).
        """
        self._require_fit()
        check_int("n_chars", n_chars, min=0, who="sample")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if not isinstance(prompt, str):
            raise TypeError(f"sample: prompt must be a str, got {type(prompt).__name__}")
        k = self.n - 1
        out = prompt
        if prompt == "" and k > 0 and n_chars > 0:
            i = int(torch.multinomial(self._ctx_counts.double(), 1, generator=generator))
            code = int(self._ctx_codes[i])
            digits = [(code // self.V**j) % self.V for j in range(k - 1, -1, -1)]
            start = self.vocab.decode(digits)[:n_chars]
            out, n_chars = start, n_chars - len(start)
        elif len(prompt) < k:
            self._ids(prompt, "prompt")  # an unknown character is the more useful error
            raise ValueError(f"a {self.n}-gram model needs a prompt of at least {k} characters "
                             f"(or an empty prompt), got {len(prompt)}: {prompt!r}")
        else:
            self._ids(prompt, "prompt")
        new = []
        context = out[len(out) - k:] if k else ""
        for _ in range(n_chars):
            probs = self.log_prob_next(context).exp()  # (V,)
            c = self.vocab.chars[int(torch.multinomial(probs, 1, generator=generator))]
            new.append(c)
            context = (context + c)[len(context) + 1 - k:] if k else ""
        return out + "".join(new)
