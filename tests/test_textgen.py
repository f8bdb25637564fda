"""Tests for lmlib.textgen: distinct-n and repetition against hand counts, the strided scorer
against a brute-force loop and lmlib.evaluation, the detector on separable and inseparable data."""

import math
import random

import pytest
import torch

from lmlib import textgen as tg
from lmlib.evaluation import sequence_log_likelihood
from lmlib.gpt import GPT, GPTConfig


def test_words_splits_punctuation_and_lowercases():
    assert tg.words("To be, or NOT to be: that's it.") == ["to", "be", ",", "or", "not", "to", "be", ":", "that's",
                                                           "it", "."]


def test_distinct_n_hand_counts():
    # "a b a b" has bigrams ab, ba, ab: 2 distinct of 3
    assert tg.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    # pooled over texts, never across the boundary: [ab] + [ba, ab] -> 2 distinct / 3 total
    assert tg.distinct_n(["a b", "b a b"], 2) == pytest.approx(2 / 3)
    # concatenating the texts would add the bigram (b, b): a different (wrong) answer
    assert tg.distinct_n(["a b b a b"], 2) == pytest.approx(3 / 4)
    assert tg.distinct_n([[1, 2, 3, 1]], 1) == pytest.approx(3 / 4)
    assert tg.distinct_n([["x", "y"], ["x", "y"]], 2) == pytest.approx(1 / 2)
    assert tg.distinct_n(["one", "two three"], 2) == 1.0   # a text too short for an n-gram adds none


def test_distinct_n_equals_an_independent_counter():
    rng = random.Random(0)
    texts = [[rng.randrange(5) for _ in range(rng.randrange(3, 30))] for _ in range(20)]
    for n in (1, 2, 3):
        grams = [tuple(t[i:i + n]) for t in texts for i in range(len(t) - n + 1)]
        assert tg.distinct_n(texts, n) == len(set(grams)) / len(grams)


def test_repetition_rate_is_one_minus_distinct_of_one_text():
    assert tg.repetition_rate("a b c a b c a b", 3) == pytest.approx(3 / 6)   # abc bca cab | abc bca cab
    assert tg.repetition_rate([1, 2, 3, 4], 2) == 0.0
    rng = random.Random(1)
    for _ in range(20):
        t = [rng.randrange(4) for _ in range(rng.randrange(4, 40))]
        for n in (1, 2, 4):
            assert tg.repetition_rate(t, n) == pytest.approx(1 - tg.distinct_n([t], n))


def tiny(block=16, vocab=13, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=2, n_embd=16)).eval()


def test_continuation_nll_equals_sequence_log_likelihood_within_the_window():
    m = tiny()
    g = torch.Generator().manual_seed(0)
    lists = [torch.randint(0, 13, (n,), generator=g).tolist() for n in (5, 17, 9)]
    starts = [1, 4, 8]
    ours = tg.continuation_nll(m, lists, starts)
    ref = -sequence_log_likelihood(m, lists, starts=starts)
    assert torch.allclose(ours, ref, atol=1e-9)


def test_continuation_nll_long_lists_match_a_brute_force_loop():
    """stride=1: every target past the first window sees exactly block_size tokens of context."""
    m, block = tiny(), 16
    x = torch.randint(0, 13, (60,), generator=torch.Generator().manual_seed(1)).tolist()
    ref = 0.0
    for t in range(10, 60):
        ctx = torch.tensor([x[max(0, t - block):t]])
        ref -= torch.log_softmax(m(ctx)[0][0, -1].double(), -1)[x[t]].item()
    ours = tg.continuation_nll(m, [x, x[:30]], [10, 3], stride=1, batch_size=5)
    assert ours[0].item() == pytest.approx(ref, rel=1e-6)
    # the default stride (block // 2) gives each target at least 8 tokens of context: close, not equal
    half = tg.continuation_nll(m, [x], [10])[0].item()
    assert half == pytest.approx(ref, rel=0.05) and half != ref
    # each target is scored once: a sum over a split equals the whole
    a = tg.continuation_nll(m, [x], [10], stride=4)[0]
    b = tg.continuation_nll(m, [x[:35]], [10], stride=4)[0] + tg.continuation_nll(m, [x], [35], stride=4)[0]
    assert a.item() == pytest.approx(b.item(), rel=0.02)


def test_continuation_bits_per_char_of_a_char_model():
    from lmlib.tokenizers import CharTokenizer

    tok = CharTokenizer(list("abcdefghijkl "))
    m = tiny()
    bpc = tg.continuation_bits_per_char(m, tok, ["abc", "l"], ["de f", "kkkk"])
    ids = [tok.encode("abcde f"), tok.encode("lkkkk")]
    ref = tg.continuation_nll(m, ids, [3, 1]) / torch.tensor([4.0, 4.0]) / math.log(2)
    assert torch.allclose(bpc, ref)
    assert bpc.shape == (2,) and bool((bpc > 0).all())


def test_detector_separates_separable_texts_and_not_inseparable_ones():
    rng = random.Random(0)
    a = ["".join(rng.choice("abcde ") for _ in range(60)) for _ in range(40)]
    b = ["".join(rng.choice("vwxyz ") for _ in range(60)) for _ in range(40)]
    det = tg.fit_detector(a[:20], b[:20])
    assert det.weight_decay in (1e-4, 1e-3, 1e-2)
    assert tg.fraction_judged_real(det, b[20:]).estimate == 0.0      # nobody fooled
    assert tg.fraction_judged_real(det, a[20:]).estimate == 1.0      # real text recognised
    same = ["".join(rng.choice("abcde ") for _ in range(60)) for _ in range(200)]
    det = tg.fit_detector(same[:50], same[50:100])
    rate = tg.fraction_judged_real(det, same[100:])
    assert 0.2 < rate.estimate < 0.8 and rate.low < rate.estimate < rate.high
    is_real = det.is_real(same[100:110])
    assert is_real.dtype == torch.bool and is_real.shape == (10,)


def test_fraction_judged_real_groups_resample_texts_together():
    rng = random.Random(2)
    real = ["".join(rng.choice("abc ") for _ in range(40)) for _ in range(30)]
    fake = ["".join(rng.choice("abcxyz ") for _ in range(40)) for _ in range(30)]
    det = tg.fit_detector(real[:15], fake[:15])
    texts = real[15:] + fake[15:]
    plain = tg.fraction_judged_real(det, texts)
    grouped = tg.fraction_judged_real(det, texts, groups=[i % 15 for i in range(30)])
    assert plain.estimate == grouped.estimate
    assert plain.estimate == float(det.is_real(texts).double().mean())
