"""Tests for lmlib.baselines: surface cues, the surface rule, naive Bayes (against a hand-computed
example), tune (argmax, ties keep the earlier setting) and the tuned logistic regression."""

import math
from collections import Counter

import pytest
import torch

from lmlib.baselines import NaiveBayes, SurfaceRule, Tuned, logistic_regression_baseline, surface_cues, tune
from lmlib.classification import NGramFeaturizer, fit_logistic_regression


# --- surface cues and the surface rule -----------------------------------------------------

@pytest.mark.parametrize("text, cues", [
    ("Hello there.", (True, True)), ("  Hello there!  ", (True, True)), ("hello there", (False, False)),
    ("Hello there", (True, False)), ("'Tis so,", (False, True)), ("", (False, False)), ("   ", (False, False)),
    ("O, woe?", (True, True)), ("and then-", (False, True)), ('"Go"', (False, True)),
])
def test_surface_cues(text, cues):
    assert surface_cues(text) == cues


def _cell_text(cap: bool, punct: bool, i: int) -> str:
    word = f"word{i} and more words"
    return (word.capitalize() if cap else word) + ("." if punct else "")


def test_surface_rule_is_perfect_when_the_label_is_a_cue():
    # label 1 exactly when the text starts with a capital and ends with punctuation
    cells = [(c, p) for c in (False, True) for p in (False, True)]
    texts = [_cell_text(c, p, i) for i in range(5) for c, p in cells]
    labels = [int(c and p) for i in range(5) for c, p in cells]
    rule = SurfaceRule().fit(texts, labels)
    test = [_cell_text(c, p, 100 + i) for i in range(3) for c, p in cells]
    want = [int(c and p) for i in range(3) for c, p in cells]
    assert rule.predict(test).tolist() == want
    assert rule.predict(test).dtype == torch.long


def test_surface_rule_is_at_chance_when_the_cues_say_nothing():
    # in every cell half the texts are 0 and half are 1: whatever the rule predicts per cell, it
    # gets exactly half of the texts right
    cells = [(c, p) for c in (False, True) for p in (False, True)]
    texts, labels = [], []
    for c, p in cells:
        for i in range(6):
            texts.append(_cell_text(c, p, i))
            labels.append(i % 2)
    rule = SurfaceRule().fit(texts, labels)
    pred = rule.predict(texts)
    assert float((pred == torch.tensor(labels)).double().mean()) == 0.5
    # a prediction is constant within a cell
    for c, p in cells:
        assert len({int(pred[j]) for j, t in enumerate(texts) if surface_cues(t) == (c, p)}) == 1


def test_surface_rule_majority_per_cell_and_default_for_an_unseen_cell():
    texts = ["Alpha beta.", "Gamma delta.", "Eps zeta.", "lower case", "lower again", "more lower"]
    labels = [2, 2, 0, 1, 1, 0]
    rule = SurfaceRule().fit(texts, torch.tensor(labels))
    assert rule.table == {(True, True): 2, (False, False): 1}
    assert rule.default == Counter(labels).most_common(1)[0][0]
    # (True, False) and (False, True) were never seen: the overall majority label
    assert rule.predict(["Capital no punct", "lower with punct."]).tolist() == [rule.default] * 2


def test_surface_rule_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match="fit"):
        SurfaceRule().predict(["A."])


# --- naive Bayes against a hand computation -----------------------------------------------

TRAIN = ["the cat sat", "the cat the cat", "a dog ran", "the dog ran fast"]
LABELS = [0, 0, 1, 1]


def _nb_reference(train, labels, texts, num_classes, alpha):
    """log p(c) + sum_g count(g, x) log p(g | c), add-alpha smoothing over the vocabulary of
    words seen in the training texts, written out with Python loops."""
    tokenize = lambda t: t.lower().split()                                          # noqa: E731
    vocab = sorted({w for t in train for w in tokenize(t)})
    counts = {c: Counter() for c in range(num_classes)}
    for t, y in zip(train, labels):
        counts[y].update(tokenize(t))
    n_c = Counter(labels)
    out = []
    for t in texts:
        row = []
        for c in range(num_classes):
            total = sum(counts[c][w] for w in vocab)
            s = math.log(n_c[c] / len(labels))
            for w, k in Counter(tokenize(t)).items():
                if w in vocab:                                                         # unseen words add nothing
                    s += k * math.log((counts[c][w] + alpha) / (total + alpha * len(vocab)))
            row.append(s)
        out.append(row)
    return out


@pytest.mark.parametrize("alpha", [1.0, 0.1, 2.5])
def test_naive_bayes_matches_hand_computation(alpha):
    feat = NGramFeaturizer("word", (1, 1), min_count=1).fit(TRAIN)
    nb = NaiveBayes(feat, 2, alpha=alpha).fit(TRAIN, LABELS)
    texts = ["the cat", "dog ran ran ran", "zebra unicorn", "the the the dog"]
    got = nb.log_scores(texts)
    assert got.shape == (4, 2) and got.dtype == torch.float64
    ref = torch.tensor(_nb_reference(TRAIN, LABELS, texts, 2, alpha), dtype=torch.float64)
    assert torch.allclose(got, ref, atol=1e-12, rtol=0)
    assert nb.predict(texts).tolist() == ref.argmax(1).tolist()


def test_naive_bayes_by_hand_small_numbers():
    # class 0 ("the cat sat", "the cat the cat"): the x3, cat x3, sat x1 = 7 tokens;
    # vocabulary {a, cat, dog, fast, ran, sat, the} = 7 words; class 1: a, dog x2, ran x2, the, fast = 7
    feat = NGramFeaturizer("word", (1, 1), min_count=1).fit(TRAIN)
    nb = NaiveBayes(feat, 2, alpha=1.0).fit(TRAIN, LABELS)
    s = nb.log_scores(["cat cat"])[0].tolist()
    assert s[0] == pytest.approx(math.log(1 / 2) + 2 * math.log((3 + 1) / (7 + 7)), abs=1e-12)
    assert s[1] == pytest.approx(math.log(1 / 2) + 2 * math.log((0 + 1) / (7 + 7)), abs=1e-12)
    # the prior alone decides a text without known words
    nb3 = NaiveBayes(feat, 2, alpha=1.0).fit(TRAIN + ["a"], LABELS + [1])
    assert nb3.log_scores(["unknown"])[0].tolist() == pytest.approx([math.log(2 / 5), math.log(3 / 5)])


def test_naive_bayes_uses_raw_counts_and_learns_the_words():
    feat = NGramFeaturizer("word", (1, 1), min_count=1).fit(TRAIN)
    nb = NaiveBayes(feat, 2).fit(TRAIN, LABELS)
    assert nb.predict(["cat", "dog", "the cat sat", "a dog ran"]).tolist() == [0, 1, 0, 1]
    one, three = nb.log_scores(["cat"])[0], nb.log_scores(["cat cat cat"])[0]
    # three times the word: three times its log-likelihood (minus the prior counted once)
    assert torch.allclose(three - nb.log_prior, 3 * (one - nb.log_prior), atol=1e-12)


def test_naive_bayes_refuses_labels_beyond_num_classes_and_predict_before_fit():
    feat = NGramFeaturizer("word", (1, 1), min_count=1).fit(TRAIN)
    with pytest.raises(ValueError, match="labels"):
        NaiveBayes(feat, 2).fit(TRAIN, [0, 1, 2, 0])
    with pytest.raises(RuntimeError, match="fit"):
        NaiveBayes(feat, 2).predict(["the"])


# --- tune -----------------------------------------------------------------------------------

def test_tune_picks_the_maximum_and_records_every_score():
    calls = []
    scores = {0.1: 0.5, 0.2: 0.9, 0.3: 0.7}
    t = tune(lambda s: calls.append(s) or ("model", s), [0.1, 0.2, 0.3], lambda m: scores[m[1]])
    assert isinstance(t, Tuned)
    assert calls == [0.1, 0.2, 0.3]                      # each setting fitted once, in order
    assert (t.setting, t.model, t.val_score) == (0.2, ("model", 0.2), 0.9)
    assert t.scores == scores


def test_tune_keeps_the_earlier_setting_on_ties():
    t = tune(lambda s: s, ["a", "b", "c", "d"], lambda m: {"a": 0.1, "b": 0.8, "c": 0.8, "d": 0.8}[m])
    assert t.setting == "b"
    t = tune(lambda s: s, [3, 2, 1], lambda m: 1.0)
    assert t.setting == 3


def test_tune_rejects_a_nan_score():
    with pytest.raises(ValueError, match="NaN"):
        tune(lambda s: s, [1, 2], lambda m: float("nan") if m == 2 else 0.5)


# --- tuned logistic regression ----------------------------------------------------------

def _toy():
    pos = ["a good play", "good and kind", "kind words", "a kind good man", "good good", "so kind"]
    neg = ["a bad play", "bad and cruel", "cruel words", "a cruel bad man", "bad bad", "so cruel"]
    texts = [t for pair in zip(pos, neg) for t in pair]
    labels = [y for _ in pos for y in (1, 0)]
    return texts[:8], labels[:8], texts[8:], labels[8:]


def test_logistic_regression_baseline_tunes_weight_decay_on_validation():
    tr_x, tr_y, va_x, va_y = _toy()
    grid = (1e-2, 10.0)
    feat, t = logistic_regression_baseline(tr_x, tr_y, va_x, va_y, 2, weight_decays=grid)
    assert isinstance(feat, NGramFeaturizer) and feat.vocab is not None
    assert set(t.scores) == set(grid)
    # an independent refit of every setting gives the same validation accuracies
    x_tr, x_va = feat.transform(tr_x), feat.transform(va_x)
    for wd in grid:
        m = fit_logistic_regression(x_tr, torch.tensor(tr_y), 2, weight_decay=wd)
        acc = float((m(x_va)[0].argmax(-1) == torch.tensor(va_y)).double().mean())
        assert t.scores[wd] == pytest.approx(acc)
    best = max(t.scores.values())
    assert t.val_score == best and t.setting == next(wd for wd in grid if t.scores[wd] == best)
    assert t.val_score == 1.0


def test_logistic_regression_baseline_takes_tensor_labels():
    tr_x, tr_y, va_x, va_y = _toy()
    _, a = logistic_regression_baseline(tr_x, tr_y, va_x, va_y, 2, weight_decays=(1e-3,))
    _, b = logistic_regression_baseline(tr_x, torch.tensor(tr_y), va_x, torch.tensor(va_y), 2, weight_decays=(1e-3,))
    assert a.scores == b.scores
    assert torch.equal(a.model.linear.weight, b.model.linear.weight)
