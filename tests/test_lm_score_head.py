"""The LM-score head and LP-FT initialisation (lmlib.classification, lmlib.finetune)."""

import torch

from lmlib import finetune as ft
from lmlib.classification import GPTClassifier, encode_classification_batch
from lmlib.evaluation import sequence_log_likelihood
from lmlib.gpt import GPT, GPTConfig


def _gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=13, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()


def test_lm_score_feature_is_the_mean_next_token_log_probability():
    gpt = _gpt()
    clf = GPTClassifier(gpt, 2, pooling="lm-score").eval()
    lists = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10, 11, 12, 1, 2]]
    b = encode_classification_batch(lists, None, pad_id=0, max_len=16)
    f = clf.features(**b)
    ref = sequence_log_likelihood(gpt, lists) / torch.tensor([len(x) - 1 for x in lists])   # independent path
    assert f.shape == (3, 1)
    assert torch.allclose(f[:, 0].double(), ref, atol=1e-5)
    assert clf.head.in_features == 1


def test_lm_score_of_a_sequence_does_not_depend_on_padding():
    gpt = _gpt(1)
    clf = GPTClassifier(gpt, 2, pooling="lm-score").eval()
    alone = clf.features(**encode_classification_batch([[3, 4, 5]], None, pad_id=0, max_len=16))
    padded = clf.features(**encode_classification_batch([[3, 4, 5], [1] * 12], None, pad_id=0, max_len=16))
    assert torch.allclose(alone[0], padded[0], atol=1e-6)


def test_init_head_from_probe_gives_the_probes_logits():
    torch.manual_seed(0)
    gpt = _gpt(2)
    clf = GPTClassifier(gpt, 3, pooling="mean").eval()
    lists = [[int(t) for t in torch.randint(1, 13, (int(torch.randint(2, 10, ())),))] for _ in range(60)]
    y = torch.randint(0, 3, (60,))
    feats = ft.features(clf, lists, pad_id=0, max_len=16)
    probe = ft.fit_probe(feats[:40], y[:40], feats[40:], y[40:], 3)
    before = clf(**encode_classification_batch(lists, None, pad_id=0, max_len=16))[0]
    ft.init_head_from_probe(clf, probe)
    after = clf(**encode_classification_batch(lists, None, pad_id=0, max_len=16))[0]
    assert torch.allclose(after, probe.logits(feats), atol=1e-4)      # the head now computes the probe
    assert not torch.allclose(before, after, atol=1e-3)               # ...which it did not before


def test_text_encoder_truncates_only_when_asked_and_counts_it():
    class Tok:
        def encode(self, t):
            return [5] * len(t)

    enc = ft.TextEncoder("bert", Tok(), 0, 6, 1, 2)
    try:
        enc.encode(["abcdefg"])
        raise AssertionError("a text longer than the window must raise")
    except ValueError as e:
        assert "truncate=True" in str(e)
    out = enc.encode(["abcdefg", "ab"], truncate=True)
    assert out == [[1, 5, 5, 5, 5, 2], [1, 5, 5, 2]] and enc.truncated == 1
