"""Tests for lmlib.masking: the BERT 15% / 80-10-10 rule and MLM collation."""

import math

import pytest
import torch

from lmlib.masking import IGNORE_INDEX, collate_mlm, mask_tokens, pad_sequences

V, MASK = 50, 3


def _sample(n=400_000, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (n,), generator=g)
    corrupted, labels = mask_tokens(ids, mask_id=MASK, vocab_size=V, generator=g, **kw)
    return ids, corrupted, labels


def _within(x, p, n, k=5.0):
    """x (a proportion of n Bernoulli(p) trials) is within k standard deviations of p."""
    return abs(x - p) <= k * math.sqrt(p * (1 - p) / n)


def test_rates_on_a_large_sample():
    ids, corrupted, labels = _sample()
    n = ids.numel()
    selected = labels != IGNORE_INDEX
    s = int(selected.sum())
    assert _within(s / n, 0.15, n)
    masked = corrupted == MASK
    assert not (masked & ~selected).any()          # [MASK] only at selected positions
    changed = (corrupted != ids) & ~masked         # random replacements that differ
    kept = (corrupted == ids) & selected
    assert _within(int(masked.sum()) / s, 0.8, s)
    # a random replacement equals the original with prob 1/(#candidates); count those as "kept"
    n_cand = V - 1                                 # every id except [MASK]
    p_random_same = 0.1 / n_cand
    assert _within(int(changed.sum()) / s, 0.1 - p_random_same, s)
    assert _within(int(kept.sum()) / s, 0.1 + p_random_same, s)
    # unselected positions are untouched and carry label -100; selected ones carry the original id
    assert torch.equal(corrupted[~selected], ids[~selected])
    assert torch.equal(labels[selected], ids[selected])


def test_random_replacements_are_uniform_and_never_special():
    ids, corrupted, labels = _sample(special_ids=(0, 1))
    sel = labels != IGNORE_INDEX
    rand = sel & (corrupted != MASK) & (corrupted != ids)
    vals = corrupted[rand]
    assert not ((vals == 0) | (vals == 1) | (vals == MASK)).any()
    counts = torch.bincount(vals, minlength=V).double()[5:]   # ids 5..49 (2..4 possible too)
    assert counts.min() > 0.5 * counts.mean()


def test_special_ids_never_selected():
    g = torch.Generator().manual_seed(1)
    ids = torch.tensor([[0, 7, 8, 9, 1, 2, 2]] * 2000)
    c, lab = mask_tokens(ids, mask_id=MASK, vocab_size=V, special_ids=(0, 1, 2), generator=g)
    assert (lab[:, [0, 4, 5, 6]] == IGNORE_INDEX).all()
    assert torch.equal(c[:, [0, 4, 5, 6]], ids[:, [0, 4, 5, 6]])


def test_deterministic_with_generator():
    a = _sample(n=1000, seed=5)
    b = _sample(n=1000, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_loss_only_on_masked_positions():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, V, (4, 32), generator=g)
    c, lab = mask_tokens(ids, mask_id=MASK, vocab_size=V, generator=g)
    logits = torch.randn(4, 32, V, generator=g)
    loss = torch.nn.functional.cross_entropy(logits.view(-1, V), lab.view(-1), ignore_index=-100)
    sel = lab != IGNORE_INDEX
    ref = -torch.log_softmax(logits, -1)[sel].gather(-1, ids[sel][:, None]).mean()
    assert torch.allclose(loss, ref, atol=1e-6)


@pytest.mark.parametrize("kw,msg", [
    (dict(mask_id=60), "outside the vocabulary"),
    (dict(mask_prob=1.5), "probability"),
    (dict(replace_with_mask=0.95, replace_with_random=0.1), "at most 1"),
])
def test_bad_arguments(kw, msg):
    args = dict(mask_id=MASK, vocab_size=V)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        mask_tokens(torch.tensor([[5, 6]]), **args)


def test_bad_ids():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        mask_tokens(torch.tensor([[5, 99]]), mask_id=MASK, vocab_size=V)
    with pytest.raises(TypeError):
        mask_tokens(torch.tensor([[0.5]]), mask_id=MASK, vocab_size=V)
    with pytest.raises(ValueError, match="empty"):
        mask_tokens(torch.zeros(0, dtype=torch.long), mask_id=MASK, vocab_size=V)


def test_random_replacement_needs_an_ordinary_token():
    ids = torch.tensor([[0, 2, 1, 2]])  # every id of the vocabulary 0..2 is special or [MASK]
    kw = dict(mask_id=2, vocab_size=3, special_ids=(0, 1), mask_prob=1.0)
    with pytest.raises(ValueError, match="no ordinary token is left"):
        mask_tokens(ids, replace_with_mask=0.0, replace_with_random=1.0, generator=torch.Generator().manual_seed(0),
                    **kw)
    corrupted, labels = mask_tokens(ids, replace_with_mask=1.0, replace_with_random=0.0, **kw)  # none needed
    assert corrupted.tolist() == [[0, 2, 1, 2]] and labels.tolist() == [[-100, 2, -100, 2]]


def test_collate_mlm_padding_and_specials():
    PAD, CLS, SEP = 0, 1, 2
    seqs = [[10, 11, 12, 13, 14], [20, 21]]
    g = torch.Generator().manual_seed(0)
    b = collate_mlm(seqs, pad_id=PAD, mask_id=MASK, cls_id=CLS, sep_id=SEP, vocab_size=V,
                    mask_prob=1.0, replace_with_mask=1.0, replace_with_random=0.0, generator=g)
    assert b.original_ids.tolist() == [[1, 10, 11, 12, 13, 14, 2], [1, 20, 21, 2, 0, 0, 0]]
    assert b.attention_mask.tolist() == [[1] * 7, [1, 1, 1, 1, 0, 0, 0]]
    # with mask_prob=1 every ordinary token is masked; CLS/SEP/PAD never
    assert b.input_ids.tolist() == [[1, 3, 3, 3, 3, 3, 2], [1, 3, 3, 2, 0, 0, 0]]
    assert b.labels.tolist() == [[-100, 10, 11, 12, 13, 14, -100], [-100, 20, 21, -100, -100, -100, -100]]
    assert set(b.as_kwargs()) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert (b.token_type_ids == 0).all()


def test_collate_errors():
    with pytest.raises(ValueError, match="empty list"):
        collate_mlm([], pad_id=0, mask_id=MASK, vocab_size=V)
    with pytest.raises(ValueError, match="empty"):
        collate_mlm([[5], []], pad_id=0, mask_id=MASK, vocab_size=V)
    with pytest.raises(ValueError, match="more than the maximum"):
        collate_mlm([[5] * 10], pad_id=0, mask_id=MASK, vocab_size=V, cls_id=1, sep_id=2, max_len=11)
    ids, m = pad_sequences([[5] * 9], pad_id=0, max_len=9)
    assert ids.shape == (1, 9) and m.all()


def _tiny_bert():
    from lmlib.bert import BertConfig, BertForMaskedLM
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForMaskedLM(cfg).eval()


def test_masked_positions_wrapper_has_the_same_loss_and_gradients():
    from lmlib.masking import MaskedPositionsMLM, evaluate_mlm, mlm_window_batches
    model = _tiny_bert()
    stream = torch.randint(5, V, (500,), generator=torch.Generator().manual_seed(0))
    get = mlm_window_batches(stream, seq_len=12, batch_size=8, cls_id=1, sep_id=2, pad_id=0, mask_id=MASK,
                             vocab_size=V)
    b = get(torch.Generator().manual_seed(1))
    assert b["input_ids"].shape == (8, 12) and (b["input_ids"][:, 0] == 1).all() and (b["input_ids"][:, -1] == 2).all()
    full_logits, full_loss = model(**b)
    wrapper = MaskedPositionsMLM(model)
    logits, loss = wrapper(**b)
    sel = b["labels"] != -100
    assert torch.allclose(logits, full_logits[sel], atol=1e-5)
    assert torch.allclose(loss, full_loss, atol=1e-6)
    loss.backward()
    g1 = model.bert.embeddings.word_embeddings.weight.grad.clone()
    model.zero_grad()
    model(**b)[1].backward()
    assert torch.allclose(g1, model.bert.embeddings.word_embeddings.weight.grad, atol=1e-6)
    # evaluate_mlm: loss and accuracy by hand from the full logits
    res = evaluate_mlm(model, [b])
    assert abs(res["loss"] - full_loss.item()) < 1e-5
    acc = (full_logits[sel].argmax(-1) == b["labels"][sel]).double().mean().item()
    assert abs(res["accuracy"] - acc) < 1e-9
    with pytest.raises(ValueError, match="all labels are -100"):
        wrapper(b["input_ids"], labels=torch.full_like(b["labels"], -100))
