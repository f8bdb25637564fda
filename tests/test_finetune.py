"""Tests for lmlib.finetune: the fine-tuning split, text encoders, trainable-parameter counts of
each strategy (against closed-form counts), frozen parameters that really stay frozen, probe
features, probes tuned on validation, and the stored-results helpers."""

import json
from collections import Counter

import pytest
import torch

from lmlib import finetune as ft
from lmlib import zoo
from lmlib.bert import BERT, BertConfig
from lmlib.classification import BertClassifier, GPTClassifier, encode_classification_batch, fit_logistic_regression, \
    predict
from lmlib.data import GENRES, load_play, split_plays
from lmlib.gpt import GPT, GPTConfig
from lmlib.tasks import GENRE_GROUPS, genre_of

V, C = 11, 8


@pytest.fixture(scope="module")
def gpt_zm():
    return zoo.load("gpt-char")


@pytest.fixture(scope="module")
def bert_zm():
    return zoo.load("bert-mlm")


def _gpt_clf(k=3, n_layer=2, seed=0, pooling="last"):
    torch.manual_seed(seed)
    gpt = GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=n_layer, n_head=2, n_embd=C))
    return GPTClassifier(gpt, k, pooling=pooling)


def _bert_clf(k=3, norm_first=True, seed=0):
    torch.manual_seed(seed)
    bert = BERT(BertConfig(vocab_size=V, hidden_size=C, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=16, max_position_embeddings=16, norm_first=norm_first))
    return BertClassifier(bert, k, pooling="cls", dropout=0.0)


TOKENS = [[1, 2, 3, 4], [5, 6], [7, 8, 9], [10, 1, 2, 3, 4, 5], [2], [3, 3, 3]]
LABELS = [0, 1, 2, 0, 1, 2]


# --- the split ------------------------------------------------------------------------------

def test_finetune_split_parts_and_genres():
    s, zs = ft.finetune_split(0), split_plays(0)
    parts = [set(s.train), set(s.val), set(s.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] == set(zs.train) | set(zs.val) | set(zs.test)
    # the test plays are exactly the plays the zoo's models never saw
    assert s.test == tuple(sorted(zs.val + zs.test))
    assert set(s.train) | set(s.val) == set(zs.train)
    # validation: one play of each folder genre and a second history
    folders = Counter(load_play(n).genre for n in s.val)
    assert folders == Counter({g: 2 if g == "histories" else 1 for g in GENRES})
    # every merged class has at least two test plays (and training plays)
    test_classes = Counter(genre_of(load_play(n).genre) for n in s.test)
    train_classes = Counter(genre_of(load_play(n).genre) for n in s.train)
    assert set(test_classes) == set(GENRE_GROUPS) and min(test_classes.values()) >= 2
    assert set(train_classes) == set(GENRE_GROUPS)
    assert all(tuple(sorted(p)) == p for p in (s.train, s.val, s.test))


def test_finetune_split_is_deterministic_and_seed_moves_only_validation():
    a, b = ft.finetune_split(0), ft.finetune_split(0)
    assert a == b
    others = [ft.finetune_split(seed) for seed in (1, 2, 3)]
    assert all(o.test == a.test for o in others)
    assert any(o.val != a.val for o in others)


# --- text encoders ------------------------------------------------------------------------

def test_gpt_text_encoder_reads_the_characters_and_refuses_long_texts(gpt_zm):
    enc = ft.text_encoder(gpt_zm)
    block = gpt_zm.model.config.block_size
    assert (enc.kind, enc.pad_id, enc.max_len) == ("gpt", 0, block)
    texts = ["To be, or not to be", "x" * block]
    assert enc.encode(texts) == [gpt_zm.tokenizer.encode(t) for t in texts]
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        enc.encode(["fine", "x" * (block + 1)])                    # nothing is cut silently
    with pytest.raises(ValueError, match="empty"):
        enc.encode([""])
    # truncate=True keeps the first tokens and counts the texts it cut
    long = "y" * (block + 5)
    assert enc.encode(["ab", long, "x" * (block + 1)], truncate=True) == \
        [gpt_zm.tokenizer.encode("ab"), gpt_zm.tokenizer.encode(long)[:block], gpt_zm.tokenizer.encode("x" * block)]
    assert enc.truncated == 2
    enc.encode(["ab"], truncate=True)
    assert enc.truncated == 0


def test_bert_text_encoder_wraps_cls_and_sep(bert_zm):
    enc = ft.text_encoder(bert_zm)
    sp = bert_zm.tokenizer.special_tokens
    assert (enc.kind, enc.pad_id, enc.cls_id, enc.sep_id) == ("bert", sp["[PAD]"], sp["[CLS]"], sp["[SEP]"])
    assert enc.max_len == bert_zm.model.config.max_position_embeddings
    for text, ids in zip(["Now is the winter", "of our discontent"], enc.encode(["Now is the winter",
                                                                                 "of our discontent"])):
        assert ids == [sp["[CLS]"]] + bert_zm.tokenizer.encode(text) + [sp["[SEP]"]]
    long = " ".join(["discontent"] * 200)
    with pytest.raises(ValueError, match="tokens"):
        enc.encode([long])
    cut = enc.encode([long], truncate=True)[0]          # the first tokens, and the final [SEP] kept
    assert len(cut) == enc.max_len and cut[0] == sp["[CLS]"] and cut[-1] == sp["[SEP]"]
    assert cut[1:-1] == bert_zm.tokenizer.encode(long)[: enc.max_len - 2] and enc.truncated == 1
    with pytest.raises(ValueError, match="empty"):
        enc.encode(["fine", ""])


# --- classifiers on zoo models ------------------------------------------------------------

def test_classifier_for_copies_the_pretrained_model(gpt_zm, bert_zm):
    clf = ft.classifier_for(gpt_zm, 3)
    assert isinstance(clf, GPTClassifier) and clf.pooling == "last" and clf.num_classes == 3
    ref = gpt_zm.model.state_dict()
    for k, v in clf.gpt.state_dict().items():
        assert torch.equal(v, ref[k]) and v.data_ptr() != ref[k].data_ptr()     # equal, but a copy
    again = ft.classifier_for(gpt_zm, 3)
    assert torch.equal(clf.head.weight, again.head.weight)                        # the head's seed
    rnd, rnd2 = ft.classifier_for(gpt_zm, 3, init="random", seed=1), ft.classifier_for(gpt_zm, 3, init="random", seed=1)
    assert not torch.equal(rnd.gpt.wte.weight, gpt_zm.model.wte.weight)
    assert torch.equal(rnd.gpt.wte.weight, rnd2.gpt.wte.weight)
    assert ft.classifier_for(gpt_zm, 2, pooling="lm-score").head.in_features == 1
    b = ft.classifier_for(bert_zm, 3)
    assert isinstance(b, BertClassifier) and b.pooling == "cls"
    assert torch.equal(b.bert.embeddings.word_embeddings.weight,
                       bert_zm.model.bert.embeddings.word_embeddings.weight)


# --- trainable parameters --------------------------------------------------------------------

def _n(module):
    return sum(p.numel() for p in module.parameters())


def _head(k=3):
    return C * k + k


@pytest.mark.parametrize("n_layer", [1, 2])
def test_set_trainable_counts_gpt(n_layer):
    full = _gpt_clf(n_layer=n_layer)
    assert ft.set_trainable(full, "full") == _n(full)                 # the tied matrix once
    probe = _gpt_clf(n_layer=n_layer)
    assert ft.set_trainable(probe, "probe") == _head()
    last = _gpt_clf(n_layer=n_layer)
    assert ft.set_trainable(last, "last") == _n(last.gpt.blocks[-1]) + _n(last.gpt.ln_f) + _head()
    for r in (1, 2, 4):
        lora = _gpt_clf(n_layer=n_layer)
        # 4 projections (q, k, v, out) per block, each with A (r, in) and B (out, r), in = out = C
        assert ft.set_trainable(lora, "lora", rank=r) == n_layer * 4 * r * (C + C) + _head()


def test_set_trainable_counts_bert():
    assert ft.set_trainable(_bert_clf(), "probe") == _head()
    last = _bert_clf()
    assert last.bert.final_norm is not None
    assert ft.set_trainable(last, "last") == _n(last.bert.layers[-1]) + _n(last.bert.final_norm) + _head()
    post = _bert_clf(norm_first=False)                                 # no final norm
    assert ft.set_trainable(post, "last") == _n(post.bert.layers[-1]) + _head()
    assert ft.set_trainable(_bert_clf(), "lora", rank=2) == 2 * 4 * 2 * (C + C) + _head()
    full = _bert_clf()
    assert ft.set_trainable(full, "full") == _n(full)


def _batch():
    return encode_classification_batch(TOKENS, LABELS, pad_id=0, max_len=16, num_classes=3)


@pytest.mark.parametrize("make", [_gpt_clf, _bert_clf])
@pytest.mark.parametrize("strategy", ["probe", "last", "lora", "full"])
def test_frozen_parameters_get_no_gradient(make, strategy):
    clf = make()
    ft.set_trainable(clf, strategy, rank=2)
    _, loss = clf(**_batch())
    loss.backward()
    for name, p in clf.named_parameters():
        if not p.requires_grad:
            assert p.grad is None, name
    trainable = {n for n, p in clf.named_parameters() if p.requires_grad}
    assert {"head.weight", "head.bias"} <= trainable
    if strategy == "probe":
        assert trainable == {"head.weight", "head.bias"}
    if strategy == "lora":
        assert all(n.startswith("head.") or "lora_" in n for n in trainable)


def test_lora_starts_as_the_pretrained_model():
    clf = _gpt_clf().eval()
    with torch.no_grad():
        before = clf(**_batch())[0]
        ft.set_trainable(clf, "lora", rank=2)
        assert torch.allclose(clf(**_batch())[0], before, atol=1e-6)


def test_finetune_changes_only_what_trains():
    clf = _gpt_clf()
    ft.set_trainable(clf, "last")
    before = {n: p.detach().clone() for n, p in clf.named_parameters()}
    seen = []
    hist = ft.finetune(clf, TOKENS, torch.tensor(LABELS), pad_id=0, max_len=16, lr=1e-2, steps=4, batch_size=3,
                       eval_every=2, eval_fn=lambda m: seen.append(m.training) or {"x": 1.0})
    assert hist.steps == [1, 2, 3, 4] and len(hist.train_loss) == 4
    assert hist.eval_steps[-1] == 4 and len(seen) >= 2
    for n, p in clf.named_parameters():
        if not p.requires_grad:                                        # frozen: bitwise unchanged
            assert torch.equal(p, before[n]), n
    # what trains moves (a key bias may not: softmax ignores it, so its gradient is zero)
    for n in ("head.weight", "gpt.blocks.1.ffn.fc_in.weight", "gpt.blocks.1.self_attn.q_proj.weight", "gpt.ln_f.weight"):
        assert not torch.equal(dict(clf.named_parameters())[n], before[n]), n
    # the same seed gives the same run
    other = _gpt_clf()
    ft.set_trainable(other, "last")
    h2 = ft.finetune(other, TOKENS, LABELS, pad_id=0, max_len=16, lr=1e-2, steps=4, batch_size=3)
    assert h2.train_loss == hist.train_loss
    assert all(torch.equal(a, b) for a, b in zip(clf.parameters(), other.parameters()))


def test_finetune_learns_a_separable_toy_task():
    clf = _gpt_clf(k=2, n_layer=1, seed=3)
    ft.set_trainable(clf, "full")
    tokens = [[1, 2, 3], [1, 3, 2], [2, 1, 3], [4, 5, 6], [5, 4, 6], [6, 5, 4]] * 2
    labels = [0, 0, 0, 1, 1, 1] * 2
    ft.finetune(clf, tokens, labels, pad_id=0, max_len=16, lr=3e-2, steps=40, batch_size=12, weight_decay=0.0)
    correct = ft.evaluate(clf, tokens, labels, pad_id=0, max_len=16)
    assert correct.dtype == torch.bool and bool(correct.all())


def test_evaluate_is_predict_equals_labels():
    clf = _gpt_clf(seed=5)
    got = ft.evaluate(clf, TOKENS, LABELS, pad_id=0, max_len=16)
    pred = predict(clf, TOKENS, pad_id=0, max_len=16)
    assert got.tolist() == [int(p) == y for p, y in zip(pred.tolist(), LABELS)]
    with pytest.raises(ValueError, match="labels"):
        ft.evaluate(clf, TOKENS, LABELS[:-1], pad_id=0, max_len=16)    # one label missing


# --- features and probes --------------------------------------------------------------------

@pytest.mark.parametrize("make", [_gpt_clf, _bert_clf, lambda: _gpt_clf(pooling="lm-score")])
def test_features_are_the_heads_input(make):
    clf = make().train()
    f = ft.features(clf, TOKENS, pad_id=0, max_len=16, batch_size=4)
    assert clf.training                                                # restored
    clf.eval()
    with torch.no_grad():
        for i, seq in enumerate(TOKENS):                               # each sequence alone, no padding
            logits, _ = clf(torch.tensor([seq]))
            assert torch.allclose(clf.head(f[i:i + 1]), logits, atol=1e-5)
    assert torch.allclose(ft.features(clf, TOKENS, pad_id=0, max_len=16, batch_size=1), f, atol=1e-5)


def _probe_data():
    g = torch.Generator().manual_seed(0)
    # training: 30 of class 0, 10 of class 1, separable along feature 0; validation balanced
    def sample(n0, n1):
        x = torch.randn(n0 + n1, 5, generator=g)
        y = torch.tensor([0] * n0 + [1] * n1)
        x[:, 0] += 8.0 * y - 4.0                   # classes 8 sd apart along feature 0
        return x, y
    return (*sample(30, 10), *sample(10, 10))


def test_fit_probe_picks_the_weight_decay_with_the_best_validation_accuracy():
    f_tr, y_tr, f_va, y_va = _probe_data()
    grid = (1e4, 1e-3)                 # a huge decay leaves only the bias: the majority class, 1/2
    probe = ft.fit_probe(f_tr, y_tr, f_va, y_va, 2, weight_decays=grid)
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
    accs = []
    for wd in grid:                    # an independent refit and score of every setting
        m = fit_logistic_regression((f_tr - mu) / sd, y_tr, 2, weight_decay=wd, steps=300)
        accs.append(float((m((f_va - mu) / sd)[0].argmax(-1) == y_va).double().mean()))
    assert accs[0] == 0.5 and accs[1] >= 0.95
    assert probe.weight_decay == 1e-3 and probe.val_accuracy == accs[1]
    assert torch.equal(probe.mean, mu) and torch.equal(probe.std, sd)
    # predict standardises with the training statistics
    manual = probe.model((f_va - mu) / sd)[0].argmax(-1)
    assert torch.equal(probe.predict(f_va), manual)
    # in general: the first setting with the best independent validation accuracy
    grid = (1e-1, 1e-3, 1e-2, 1.0)
    accs = []
    for wd in grid:
        m = fit_logistic_regression((f_tr - mu) / sd, y_tr, 2, weight_decay=wd, steps=300)
        accs.append(float((m((f_va - mu) / sd)[0].argmax(-1) == y_va).double().mean()))
    assert ft.fit_probe(f_tr, y_tr, f_va, y_va, 2, weight_decays=grid).weight_decay == grid[accs.index(max(accs))]


def test_init_head_from_probe_reproduces_the_probe():
    clf = _gpt_clf(k=2).eval()
    f = ft.features(clf, TOKENS, pad_id=0, max_len=16)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    probe = ft.fit_probe(f, y, f, y, 2, weight_decays=(1e-2,))
    ft.init_head_from_probe(clf, probe)
    with torch.no_grad():
        assert torch.allclose(clf.head(f), probe.logits(f), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        ft.init_head_from_probe(_gpt_clf(k=3), probe)


# --- stored results ---------------------------------------------------------------------------

def test_stored_results_and_correctness(tmp_path):
    (tmp_path / "ch07-genre.json").write_text(json.dumps({"command": "python x", "runs": [1]}))
    assert ft.stored_results("genre", directory=tmp_path) == {"command": "python x", "runs": [1]}
    with pytest.raises(FileNotFoundError, match="finetune_experiments"):
        ft.stored_results("sft", directory=tmp_path)
    (tmp_path / "ch07-shuffle.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a results file"):
        ft.stored_results("shuffle", directory=str(tmp_path))
    runs = [{"test": "0110", "val": "1"}, {"test": "1110", "val": "0"}]
    c = ft.correctness(runs)
    assert c.dtype == torch.float64 and c.tolist() == [[0, 1, 1, 0], [1, 1, 1, 0]]
    assert ft.correctness(runs, "val").tolist() == [[1.0], [0.0]]
    with pytest.raises(ValueError, match="different sizes"):
        ft.correctness([{"test": "01"}, {"test": "011"}])
    with pytest.raises(ValueError, match="0/1"):
        ft.correctness([{"test": "0x1"}])
