"""Tests for lmlib.ngram against independent pure-Python counting and hand computation."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import torch

from lmlib.data import CharVocab
from lmlib.ngram import NGramModel

TEXT = "the cat sat on the mat. the dog ate the hat!\nand then the cat ran."
VOCAB = CharVocab.from_text(TEXT + "xyz")  # three characters never seen in training


def dict_model(text: str, n: int, k: float, V: int):
    """An independent n-gram model: dict counting and the add-k formula, in plain Python."""
    grams = Counter(text[i:i + n] for i in range(len(text) - n + 1))
    ctx = Counter()
    for g, c in grams.items():
        ctx[g[:-1]] += c

    def prob(context: str, ch: str) -> float:
        context = context[len(context) - (n - 1):] if n > 1 else ""
        if ctx[context] == 0:
            return 1.0 / V
        return (grams[context + ch] + k) / (ctx[context] + k * V)

    return grams, ctx, prob


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [0.0, 0.5, 1.0])
def test_probabilities_match_dict_counting(n, k):
    m = NGramModel(n, VOCAB, smoothing=k).fit(TEXT)
    grams, ctx, prob = dict_model(TEXT, n, k, VOCAB.vocab_size)
    assert m.num_ngrams == len(grams)
    for g, c in grams.items():
        assert m.count(g) == c
    for context in ["", "t", "th", "the", " ca", "zzz", "xy", "at."]:
        if len(context) < n - 1:
            continue
        lp = m.log_prob_next(context)
        assert lp.shape == (VOCAB.vocab_size,)
        expected = torch.tensor([prob(context, c) for c in VOCAB.chars], dtype=torch.float64)
        torch.testing.assert_close(lp.exp(), expected)
        assert math.isclose(float(lp.exp().sum()), 1.0, rel_tol=1e-12)


def test_context_counts_and_dense_tables():
    m = NGramModel(2, VOCAB, smoothing=0.3).fit(TEXT)
    grams, ctx, prob = dict_model(TEXT, 2, 0.3, VOCAB.vocab_size)
    table = m.count_table()
    assert table.shape == (VOCAB.vocab_size, VOCAB.vocab_size)
    assert int(table.sum()) == len(TEXT) - 1
    for a in VOCAB.chars:
        assert m.context_count(a) == ctx[a]
        for b in "a th.":
            assert int(table[VOCAB.stoi[a], VOCAB.stoi[b]]) == grams[a + b]
    probs = m.prob_table()
    torch.testing.assert_close(probs.sum(-1), torch.ones(VOCAB.vocab_size, dtype=torch.float64))
    torch.testing.assert_close(probs[VOCAB.stoi["h"]], m.log_prob_next("h").exp())


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_nll_perplexity_bits_independent(n):
    train = TEXT
    text = "the hat sat on the cat.\nthe end"
    m = NGramModel(n, VOCAB, smoothing=0.5).fit(train)
    _, _, prob = dict_model(train, n, 0.5, VOCAB.vocab_size)
    ps = [prob(text[:t], text[t]) for t in range(n - 1, len(text))]
    nll = -math.fsum(math.log(p) for p in ps) / len(ps)
    assert math.isclose(m.nll(text), nll, rel_tol=1e-12)
    # perplexity, computed a second way: the geometric mean of 1/p as a product of powers
    geo = math.prod(p ** (-1 / len(ps)) for p in ps)
    assert math.isclose(m.perplexity(text), geo, rel_tol=1e-10)
    # bits: the same average with base-2 logarithms
    assert math.isclose(m.bits_per_char(text), -sum(math.log2(p) for p in ps) / len(ps), rel_tol=1e-12)
    assert m.log_probs(text).shape == (len(text) - n + 1,)


def test_nll_equals_torch_cross_entropy():
    """The mean NLL is the cross-entropy of the model's rows against the true next characters."""
    m = NGramModel(2, VOCAB, smoothing=1.0).fit(TEXT)
    text = "the dog sat on the hat."
    ids = torch.tensor(VOCAB.encode(text))
    logp = m.prob_table().log()  # (V, V)
    ce = torch.nn.functional.cross_entropy(logp[ids[:-1]], ids[1:])
    assert math.isclose(m.nll(text), float(ce), rel_tol=1e-12)


def test_unseen_contexts_and_zero_probabilities():
    V = VOCAB.vocab_size
    # an unseen context gets the uniform distribution, with and without smoothing
    for k in (0.0, 2.0):
        m = NGramModel(3, VOCAB, smoothing=k).fit(TEXT)
        assert m.context_count("zz") == 0
        torch.testing.assert_close(m.log_prob_next("zz").exp(), torch.full((V,), 1 / V, dtype=torch.float64))
    # with k = 0 a seen context followed by a new character gives probability 0 -> inf
    m = NGramModel(2, VOCAB, smoothing=0).fit(TEXT)
    assert m.log_prob_next("q" if "q" in VOCAB.stoi else "t")[VOCAB.stoi["x"]] == -math.inf
    assert m.nll("tx") == math.inf and m.perplexity("tx") == math.inf
    assert m.seen_context_fraction("tx") == 1.0
    # and smoothing makes it finite
    assert math.isfinite(m.with_smoothing(0.1).perplexity("tx"))
    assert NGramModel(2, VOCAB).fit(TEXT).seen_context_fraction("xyth") == pytest.approx(1 / 3)


def test_huge_smoothing_is_uniform():
    m = NGramModel(2, VOCAB, smoothing=1e12).fit(TEXT)
    assert m.perplexity("the cat") == pytest.approx(VOCAB.vocab_size, rel=1e-6)


def test_with_smoothing_shares_counts():
    m = NGramModel(3, VOCAB, smoothing=0).fit(TEXT)
    m1 = m.with_smoothing(1.0)
    fresh = NGramModel(3, VOCAB, smoothing=1.0).fit(TEXT)
    assert m.nll("the mat") != m1.nll("the mat")
    assert m1.nll("the mat") == fresh.nll("the mat")


def test_sampling_is_reproducible_and_follows_the_model():
    # wrap the text around so that every context is followed by something (no dead end, where
    # the model would fall back to the uniform distribution)
    cyclic = TEXT + TEXT[:2]
    m = NGramModel(3, VOCAB, smoothing=0).fit(cyclic)
    a = m.sample(200, torch.Generator().manual_seed(1))
    b = m.sample(200, torch.Generator().manual_seed(1))
    c = m.sample(200, torch.Generator().manual_seed(2))
    assert a == b and a != c and len(a) == 200
    # with k = 0 every trigram of a sample occurred in training (the start is a training context)
    seen = {cyclic[i:i + 3] for i in range(len(cyclic) - 2)}
    assert all(a[i:i + 3] in seen for i in range(len(a) - 2))
    s = m.sample(50, torch.Generator().manual_seed(0), prompt="the ")
    assert s.startswith("the ") and len(s) == 54
    assert NGramModel(1, VOCAB).fit(TEXT).sample(0, None) == ""


def test_sampling_distribution_matches_probabilities():
    """Empirical next-character frequencies of many one-step samples match log_prob_next."""
    m = NGramModel(2, VOCAB, smoothing=0).fit(TEXT)
    g = torch.Generator().manual_seed(0)
    draws = Counter(m.sample(1, g, prompt="t")[-1] for _ in range(4000))
    p = m.log_prob_next("t").exp()
    for ch, cnt in draws.items():
        assert abs(cnt / 4000 - float(p[VOCAB.stoi[ch]])) < 0.03


def test_fit_replaces_counts_and_matches_on_random_text():
    rng = random.Random(0)
    text = "".join(rng.choice("ab c") for _ in range(3000))
    vocab = CharVocab.from_text("abc ")
    m = NGramModel(4, vocab, smoothing=0).fit("abcabc")
    m.fit(text)
    grams, _, _ = dict_model(text, 4, 0, 4)
    assert m.num_predictions == len(text) - 3
    assert sum(m.count(g) for g in grams) == len(text) - 3
    assert all(m.count(g) == c for g, c in grams.items())


def test_errors():
    with pytest.raises(ValueError, match="n must be >= 1"):
        NGramModel(0, VOCAB)
    with pytest.raises(TypeError):
        NGramModel(2.0, VOCAB)
    with pytest.raises(ValueError, match="smoothing"):
        NGramModel(2, VOCAB, smoothing=-1)
    with pytest.raises(TypeError, match="CharVocab"):
        NGramModel(2, "abc")
    with pytest.raises(ValueError, match="too large"):
        NGramModel(20, VOCAB)
    m = NGramModel(3, VOCAB)
    with pytest.raises(RuntimeError, match="fit"):
        m.nll("the")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        m.fit("the Cat")
    with pytest.raises(ValueError, match="at least 3"):
        m.fit("th")
    with pytest.raises(ValueError, match="at least 3"):
        m.fit("")
    m.fit(TEXT)
    with pytest.raises(ValueError, match="context of at least 2"):
        m.log_prob_next("t")
    with pytest.raises(ValueError, match="empty text"):
        m.nll("")
    with pytest.raises(ValueError, match="fewer than 3"):
        m.perplexity("at")
    with pytest.raises(ValueError, match="'Q' at position 4"):
        m.nll("the Q")
    with pytest.raises(ValueError, match="prompt of at least 2"):
        m.sample(5, torch.Generator(), prompt="t")
    with pytest.raises(TypeError, match="Generator"):
        m.sample(5, 0)
    with pytest.raises(ValueError, match="n_chars"):
        m.sample(-1, None)
    with pytest.raises(ValueError, match="2-gram|3-gram"):
        m.count("th")
    with pytest.raises(TypeError):
        m.nll(["t", "h", "e"])
    with pytest.raises(ValueError, match="not a valid character"):
        m.nll("the\ud800")
