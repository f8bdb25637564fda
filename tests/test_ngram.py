"""Tests for lmlib.ngram against independent pure-Python counting and hand computation."""

from __future__ import annotations

import itertools
import math
import random
import collections
from collections import Counter

import pytest
import torch

from lmlib.data import CharVocab
from lmlib.ngram import InterpolatedNGramModel, MixtureNGramModel, NGramModel, apply_temperature

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
    _, ctx, _ = dict_model(TEXT, 3, 0, V)
    text = "the zyx cat"
    expected = [ctx[text[i:i + 2]] for i in range(len(text) - 2)]
    assert NGramModel(3, VOCAB).fit(TEXT).context_counts(text).tolist() == expected


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


# -- interpolated absolute discounting --------------------------------------------------------------
def dict_discounting(text: str, n: int, D: float, vocab: CharVocab):
    """An independent interpolated absolute-discounting model: dict counts and the recursion,
    written out per character in plain Python."""
    grams = [Counter(text[i:i + m] for i in range(len(text) - m + 1)) for m in range(n + 1)]
    V = vocab.vocab_size

    def prob(context: str, ch: str, m: int = n) -> float:
        if m == 0:
            return 1.0 / V
        h = context[len(context) - (m - 1):] if m > 1 else ""
        followers = {g[-1]: c for g, c in grams[m].items() if g[:-1] == h}
        lower = prob(context, ch, m - 1)
        total = sum(followers.values())
        if total == 0:
            return lower
        return max(followers.get(ch, 0) - D, 0) / total + D * len(followers) / total * lower

    return prob


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("D", [0.0, 0.3, 0.75, 1.0])
def test_discounting_matches_brute_force(n, D):
    m = InterpolatedNGramModel(n, VOCAB, discount=D).fit(TEXT)
    prob = dict_discounting(TEXT, n, D, VOCAB)
    for context in ["", "t", "th", "the", " ca", "zzz", "xyt", "at."]:
        if len(context) < n - 1:
            continue
        p = m.log_prob_next(context).exp()
        expected = torch.tensor([prob(context, c) for c in VOCAB.chars], dtype=torch.float64)
        torch.testing.assert_close(p, expected, rtol=1e-12, atol=1e-15)
        assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)  # a proper distribution
        if D > 0:
            assert bool((p > 0).all())  # nothing is impossible
    text = "the hat sat on the cat.\nthe end zz"
    ps = [prob(text[:t], text[t]) for t in range(n - 1, len(text))]
    lp = m.log_probs(text)
    torch.testing.assert_close(lp.exp(), torch.tensor(ps, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    if D == 0 and min(ps) == 0:  # maximum likelihood: an unseen character makes the NLL infinite
        assert m.nll(text) == math.inf
        return
    assert math.isclose(m.nll(text), -math.fsum(map(math.log, ps)) / len(ps), rel_tol=1e-12)
    assert math.isclose(m.perplexity(text), math.exp(m.nll(text)), rel_tol=1e-12)
    assert math.isclose(m.bits_per_char(text), m.nll(text) / math.log(2), rel_tol=1e-12)


def test_discounting_sums_to_one_for_every_context():
    rng = random.Random(1)
    text = "".join(rng.choice("abc ") for _ in range(400))
    vocab = CharVocab.from_text("abc d")  # 'd' never occurs
    m = InterpolatedNGramModel(3, vocab, discount=0.6).fit(text)
    for ctx in itertools.product(vocab.chars, repeat=2):
        p = m.log_prob_next("".join(ctx)).exp()
        assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    # an unseen context backs off: "dd" and "d" never occur, so the trigram row equals the unigram one
    uni = m.with_discount(0.6, n=1).log_prob_next("")
    torch.testing.assert_close(m.log_prob_next("dd"), uni)
    assert m.with_discount(0.6, n=2).log_prob_next("d").exp().sum().item() == pytest.approx(1.0)


def test_with_discount_shares_counts_and_lower_orders():
    m = InterpolatedNGramModel(4, VOCAB, discount=0.5).fit(TEXT)
    fresh = InterpolatedNGramModel(2, VOCAB, discount=0.9).fit(TEXT)
    other = m.with_discount(0.9, n=2)
    assert other.n == 2 and other.orders[0] is m.orders[0]
    assert other.nll("the mat") == fresh.nll("the mat")
    assert m.nll("the mat") != m.with_discount(0.9).nll("the mat")
    with pytest.raises(ValueError, match="n"):
        m.with_discount(0.5, n=5)


def test_discounting_with_d0_is_maximum_likelihood_on_seen_contexts():
    ml = NGramModel(3, VOCAB, smoothing=0).fit(TEXT)
    m = InterpolatedNGramModel(3, VOCAB, discount=0.0).fit(TEXT)
    torch.testing.assert_close(m.log_prob_next("the").exp(), ml.log_prob_next("the").exp())


def dict_mixture(text, n, lam, vocab):
    """Jelinek-Mercer probabilities from plain dict counts, order by order (independent of lmlib)."""
    follow = [collections.defaultdict(collections.Counter) for _ in range(n + 1)]
    for m in range(1, n + 1):
        for i in range(len(text) - m + 1):
            follow[m][text[i:i + m - 1]][text[i + m - 1]] += 1

    def prob(context, ch):
        p = 1.0 / vocab.vocab_size
        for m in range(1, n + 1):
            h = context[len(context) - (m - 1):] if m > 1 else ""
            f = follow[m][h]
            total = sum(f.values())
            if total:
                p = (1 - lam) * f.get(ch, 0) / total + lam * p
        return p

    return prob


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("lam", [0.1, 0.5, 1.0])
def test_mixture_matches_brute_force(n, lam):
    m = MixtureNGramModel(n, VOCAB, lam=lam).fit(TEXT)
    prob = dict_mixture(TEXT, n, lam, VOCAB)
    for context in ["", "t", "th", "the", " ca", "zzz", "xyt", "at."]:
        if len(context) < n - 1:
            continue
        p = m.log_prob_next(context).exp()
        expected = torch.tensor([prob(context, c) for c in VOCAB.chars], dtype=torch.float64)
        torch.testing.assert_close(p, expected, rtol=1e-12, atol=1e-15)
        assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12) and bool((p > 0).all())
    text = "the hat sat on the cat.\nthe end zz"
    ps = [prob(text[:t], text[t]) for t in range(n - 1, len(text))]
    assert math.isclose(m.nll(text), -math.fsum(map(math.log, ps)) / len(ps), rel_tol=1e-12)
    if lam == 1.0:  # all the mass goes down to the uniform distribution
        assert math.isclose(m.perplexity(text), VOCAB.vocab_size, rel_tol=1e-12)


def test_context_types_counts_distinct_followers():
    m = NGramModel(3, VOCAB, smoothing=0).fit(TEXT)
    text = "the cat zz"
    followers = collections.defaultdict(set)
    for i in range(len(TEXT) - 2):
        followers[TEXT[i:i + 2]].add(TEXT[i + 2])
    expected = [len(followers[text[t - 2:t]]) for t in range(2, len(text))]
    assert m.context_types(text).tolist() == expected
    assert (m.context_types(text) <= m.context_counts(text)).all()


def test_mixture_shares_counts():
    base = InterpolatedNGramModel(4, VOCAB, discount=0.5).fit(TEXT)
    mix = MixtureNGramModel.from_counts(base, 0.3, n=3)
    assert mix.n == 3 and mix.orders[0] is base.orders[0]
    fresh = MixtureNGramModel(3, VOCAB, lam=0.3).fit(TEXT)
    assert mix.nll("the mat") == fresh.nll("the mat")
    assert mix.with_lam(0.6).nll("the mat") == MixtureNGramModel(3, VOCAB, lam=0.6).fit(TEXT).nll("the mat")
    assert mix.with_lam(0.6, n=2).orders[1] is base.orders[1]
    assert "lam=0.3" in repr(mix) and "fitted" in repr(mix)
    with pytest.raises(ValueError, match="n"):
        MixtureNGramModel.from_counts(base, 0.3, n=5)
    with pytest.raises(TypeError, match="InterpolatedNGramModel"):
        MixtureNGramModel.from_counts(NGramModel(2, VOCAB).fit(TEXT), 0.3)


# -- temperature ------------------------------------------------------------------------------------
def test_temperature():
    m = InterpolatedNGramModel(2, VOCAB, discount=0.5).fit(TEXT)
    logp = m.log_prob_next("t")
    p = logp.exp()
    assert torch.equal(m.prob_next("t", 1.0), p)
    # independent: p ** (1 / T), renormalised
    for T in (0.3, 2.0, 7.0):
        ref = p ** (1 / T) / (p ** (1 / T)).sum()
        torch.testing.assert_close(apply_temperature(logp, T), ref)
    onehot = m.prob_next("t", 0.0)
    assert onehot.sum() == 1 and onehot[p.argmax()] == 1
    torch.testing.assert_close(m.prob_next("t", 1e-3), onehot)
    V = VOCAB.vocab_size
    torch.testing.assert_close(m.prob_next("t", 1e6), torch.full((V,), 1 / V, dtype=torch.float64),
                               rtol=0, atol=1e-6)
    # lower temperature = lower entropy
    ent = [float(-(q * q.clamp(min=1e-300).log()).sum()) for q in (m.prob_next("t", T) for T in (0.5, 1, 2))]
    assert ent[0] < ent[1] < ent[2]
    # batched rows; zero-probability characters stay impossible at any temperature
    ml = NGramModel(2, VOCAB, smoothing=0).fit(TEXT)
    rows = torch.stack([ml.log_prob_next("t"), ml.log_prob_next("h")])
    q = apply_temperature(rows, 3.0)
    assert q.shape == rows.shape and bool((q[rows == -math.inf] == 0).all())
    torch.testing.assert_close(q.sum(-1), torch.ones(2, dtype=torch.float64))


def test_sampling_at_temperature_zero_is_greedy():
    m = InterpolatedNGramModel(3, VOCAB, discount=0.7).fit(TEXT)
    s = m.sample(30, torch.Generator().manual_seed(0), prompt="th", temperature=0.0)
    for i in range(2, len(s)):
        assert VOCAB.chars[int(m.log_prob_next(s[:i]).argmax())] == s[i]
    a = m.sample(40, torch.Generator().manual_seed(3))
    assert a == m.sample(40, torch.Generator().manual_seed(3)) and len(a) == 40
    g = NGramModel(3, VOCAB, smoothing=0.1).fit(TEXT)
    assert g.sample(20, torch.Generator().manual_seed(0), prompt="the", temperature=0) == \
        g.sample(20, torch.Generator().manual_seed(5), prompt="the", temperature=0)
