"""Tests for lmlib.classification: pooling, GPT/BERT heads, batching and the n-gram baseline."""

import pytest
import torch
import torch.nn.functional as F

from lmlib.bert import BertConfig, BertForMaskedLM
from lmlib.classification import (BertClassifier, GPTClassifier, LogisticRegression, NGramFeaturizer,
                                  classification_batches, encode_classification_batch, fit_logistic_regression,
                                  gpt_hidden_states, pool, predict)
from lmlib.gpt import GPT, GPTConfig


def _gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16))


def test_gpt_hidden_states_give_back_the_logits():
    gpt = _gpt()
    x = torch.randint(0, 30, (2, 10))
    assert torch.allclose(gpt.lm_head(gpt_hidden_states(gpt, x)), gpt(x)[0], atol=1e-6)


def test_pooling_by_hand():
    h = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    m = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(h, m, "last").tolist() == [h[0, 1].tolist(), h[1, 2].tolist()]
    assert pool(h, m, "mean")[0].tolist() == ((h[0, 0] + h[0, 1]) / 2).tolist()
    assert pool(h, m, "first").tolist() == h[:, 0].tolist()
    with pytest.raises(ValueError):
        pool(h, m, "max")


def test_gpt_classifier_padding_does_not_change_the_prediction():
    gpt = _gpt()
    clf = GPTClassifier(gpt, 3, pooling="last").eval()
    seqs = [[1, 2, 3, 4, 5], [6, 7]]
    b = encode_classification_batch(seqs, [0, 2], pad_id=0, max_len=16, num_classes=3)
    logits, loss = clf(**b)
    alone, _ = clf(torch.tensor([[6, 7]]))
    assert torch.allclose(logits[1], alone[0], atol=1e-5)
    assert torch.allclose(loss, F.cross_entropy(logits, torch.tensor([0, 2])))
    clf_mean = GPTClassifier(gpt, 3, pooling="mean").eval()
    lm, _ = clf_mean(**{k: v for k, v in b.items() if k != "labels"})
    alone_m, _ = clf_mean(torch.tensor([[6, 7]]))
    assert torch.allclose(lm[1], alone_m[0], atol=1e-5)


def test_bert_classifier_padding_invariance_and_poolings():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    bert = BertForMaskedLM(cfg).bert
    for pooling in ("cls", "pooler", "mean"):
        clf = BertClassifier(bert, 2, pooling=pooling).eval()
        b = encode_classification_batch([[1, 5, 6, 7, 2], [1, 8, 2]], [0, 1], pad_id=0, max_len=16, num_classes=2)
        logits, _ = clf(**b)
        alone, _ = clf(torch.tensor([[1, 8, 2]]))
        assert torch.allclose(logits[1], alone[0], atol=1e-5), pooling


def test_bad_input():
    clf = GPTClassifier(_gpt(), 3)
    with pytest.raises(ValueError, match="out of range"):
        clf(torch.tensor([[1, 2]]), labels=torch.tensor([3]))
    with pytest.raises(ValueError, match="empty batch"):
        clf(torch.zeros(0, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="right padding"):
        clf(torch.tensor([[1, 2]]), attention_mask=torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="block_size"):
        clf(torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="more than the maximum"):
        encode_classification_batch([[1] * 20], [0], pad_id=0, max_len=16)
    with pytest.raises(ValueError, match="out of range"):
        classification_batches([[1]], [5], batch_size=1, pad_id=0, max_len=4, num_classes=3)
    with pytest.raises(ValueError, match="no training examples"):
        classification_batches([], [], batch_size=1, pad_id=0, max_len=4, num_classes=3)


def test_classifier_learns_a_toy_task_with_the_training_loop():
    from lmlib.training import TrainConfig, train
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(1, 30, (int(torch.randint(3, 10, (1,), generator=g)),), generator=g).tolist() for _ in range(64)]
    labels = [int(5 in s or 6 in s) for s in seqs]   # does the sequence contain token 5 or 6?
    clf = GPTClassifier(_gpt(), 2, pooling="mean")
    get = classification_batches(seqs, labels, batch_size=16, pad_id=0, max_len=16, num_classes=2)
    train(clf, get, TrainConfig(max_steps=120, lr=3e-3, warmup_steps=5, progress=False))
    pred = predict(clf, seqs, pad_id=0, max_len=16)
    assert (pred == torch.tensor(labels)).float().mean() > 0.9


def test_ngram_features_by_hand():
    f = NGramFeaturizer("word", (1, 2), min_count=1).fit(["the cat", "the dog the"])
    assert set(f.vocab) == {"the", "cat", "dog", "the cat", "the dog", "dog the"}
    x = f.transform(["the the cat"]).to_dense()[0]
    raw = torch.zeros(f.num_features)
    raw[f.vocab["the"]] = torch.log1p(torch.tensor(2.0))
    raw[f.vocab["cat"]] = torch.log1p(torch.tensor(1.0))
    raw[f.vocab["the cat"]] = torch.log1p(torch.tensor(1.0))
    assert torch.allclose(x, raw / raw.norm())
    c = NGramFeaturizer("char", (2, 2), min_count=1).fit(["ab ab"])
    assert set(c.vocab) == {"ab", "b ", " a"}


def test_logistic_regression_sparse_equals_dense_and_fits_separable_data():
    texts = ["love wit jest"] * 5 + ["king crown war"] * 5 + ["death blood grave"] * 5
    y = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)
    f = NGramFeaturizer("word").fit(texts)
    X = f.transform(texts)
    model = fit_logistic_regression(X, y, 3, steps=50)
    logits_sparse, _ = model(X)
    logits_dense, _ = model(X.to_dense())
    assert torch.allclose(logits_sparse, logits_dense, atol=1e-5)
    assert (logits_sparse.argmax(-1) == y).all()
    with pytest.raises(ValueError):
        LogisticRegression(3, 2)(torch.zeros(2, 4))


# --- features: what the head reads --------------------------------------------------------

def _manual_gpt_hidden(gpt, idx):
    x = gpt.drop(gpt.wte(idx) + gpt.wpe(torch.arange(idx.shape[1])))
    for block in gpt.blocks:
        x = block(x, is_causal=True)
    return gpt.ln_f(x)


def test_gpt_hidden_states_match_the_written_out_forward_path():
    gpt = _gpt().eval()
    x = torch.randint(0, 30, (2, 12))
    with torch.no_grad():
        assert torch.allclose(gpt_hidden_states(gpt, x), _manual_gpt_hidden(gpt, x), atol=1e-6)
        assert torch.equal(gpt_hidden_states(gpt, x), gpt.hidden_states(x))


def _padded_batch():
    return encode_classification_batch([[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]], None, pad_id=0, max_len=16)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_gpt_features_are_the_heads_input(pooling):
    clf = GPTClassifier(_gpt(), 3, pooling=pooling, dropout=0.3).eval()
    b = _padded_batch()
    with torch.no_grad():
        f = clf.features(**b)
        logits, _ = clf(**b)
        assert f.shape == (3, 16)
        assert torch.allclose(clf.head(f), logits, atol=1e-6)
        h = _manual_gpt_hidden(clf.gpt, b["input_ids"])
        lengths = b["attention_mask"].sum(1)
        for i, n in enumerate(lengths.tolist()):
            want = h[i, n - 1] if pooling == "last" else h[i, :n].mean(0)
            assert torch.allclose(f[i], want, atol=1e-5)


def test_gpt_lm_score_feature_is_the_mean_next_token_log_probability():
    clf = GPTClassifier(_gpt(), 2, pooling="lm-score").eval()
    b = _padded_batch()
    with torch.no_grad():
        f = clf.features(**b)
        assert f.shape == (3, 1)
        assert torch.allclose(clf.head(f), clf(**b)[0], atol=1e-6)
        for i, seq in enumerate([[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]):
            logp = torch.log_softmax(clf.gpt(torch.tensor([seq]))[0][0], -1)
            want = sum(float(logp[t - 1, seq[t]]) for t in range(1, len(seq))) / (len(seq) - 1)
            assert float(f[i, 0]) == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "pooler", "mean"])
def test_bert_features_are_the_heads_input(pooling):
    torch.manual_seed(0)
    bert = BertForMaskedLM(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32, max_position_embeddings=16)).bert
    clf = BertClassifier(bert, 3, pooling=pooling, dropout=0.5).eval()
    b = _padded_batch()
    with torch.no_grad():
        f = clf.features(**b)
        logits, _ = clf(**b)
        assert f.shape == (3, 16)
        assert torch.allclose(clf.head(f), logits, atol=1e-6)
        hidden, pooled = bert(b["input_ids"], token_type_ids=None, attention_mask=b["attention_mask"])
        want = {"cls": hidden[:, 0], "pooler": pooled,
                "mean": torch.stack([hidden[i, :n].mean(0) for i, n in enumerate(b["attention_mask"].sum(1).tolist())])}
        assert torch.allclose(f, want[pooling], atol=1e-5)


def test_features_check_the_batch_like_forward():
    clf = GPTClassifier(_gpt(), 3)
    with pytest.raises(ValueError, match="input_ids"):
        clf.features(torch.tensor([[1, 30]]))
    with pytest.raises(ValueError, match="attention_mask"):
        clf.features(torch.tensor([[1, 2]]), torch.tensor([[0, 1]]))


def test_gpt_lm_score_of_a_sequence_does_not_depend_on_padding():
    clf = GPTClassifier(_gpt(), 2, pooling="lm-score").eval()
    with torch.no_grad():
        alone = clf.features(**encode_classification_batch([[3, 4, 5]], None, pad_id=0, max_len=16))
        padded = clf.features(**encode_classification_batch([[3, 4, 5], [1] * 12], None, pad_id=0, max_len=16))
    assert torch.allclose(alone[0], padded[0], atol=1e-6)
