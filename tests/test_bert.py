import pytest
import torch
import torch.nn.functional as F

from lmlib.bert import BERT, BertConfig, BertForMaskedLM


def cfg(**kw):
    base = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                max_position_embeddings=12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    base.update(kw)
    return BertConfig(**base)


@pytest.mark.parametrize("kw, field", [
    (dict(hidden_size=15), "divisible"),
    (dict(num_hidden_layers=0), "num_hidden_layers"),
    (dict(hidden_act="swish2"), "hidden_act"),
    (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob"),
    (dict(pad_token_id=40), "pad_token_id"),
])
def test_config_validation(kw, field):
    with pytest.raises(ValueError, match=field):
        cfg(**kw)


def test_shapes_pooler_and_tied_head():
    m = BertForMaskedLM(cfg())
    ids = torch.randint(0, 40, (3, 10))
    logits, loss = m(ids)
    assert logits.shape == (3, 10, 40) and loss is None
    hidden, pooled = m.bert(ids)
    assert hidden.shape == (3, 10, 16) and pooled.shape == (3, 16)
    assert torch.allclose(pooled, torch.tanh(m.bert.pooler.dense(hidden[:, 0])))
    assert m.mlm_head.decoder.weight is m.bert.embeddings.word_embeddings.weight
    assert torch.all(m.bert.embeddings.word_embeddings.weight[0] == 0)  # padding row starts at zero


def test_bidirectional_attention():
    """Unlike GPT, changing a LATER token changes the representation of an EARLIER one."""
    m = BERT(cfg()).eval()
    ids = torch.randint(1, 40, (1, 8))
    ids2 = ids.clone()
    ids2[0, 7] = (ids2[0, 7] % 39) + 1
    with torch.no_grad():
        assert not torch.allclose(m(ids)[0][0, 0], m(ids2)[0][0, 0])


def test_segment_embeddings_matter():
    m = BERT(cfg()).eval()
    ids = torch.randint(1, 40, (1, 8))
    with torch.no_grad():
        a = m(ids, torch.zeros_like(ids))[0]
        b = m(ids, torch.ones_like(ids))[0]
    assert not torch.allclose(a, b)


def test_post_norm_outputs_are_normalized():
    m = BERT(cfg()).eval()
    with torch.no_grad():
        h, _ = m(torch.randint(0, 40, (2, 9)))
    # the last operation of a post-norm layer is a LayerNorm (weight 1, bias 0 at init)
    assert torch.allclose(h.mean(-1), torch.zeros(2, 9), atol=1e-5)
    assert torch.allclose(h.var(-1, unbiased=False), torch.ones(2, 9), atol=1e-3)


def test_mlm_loss_ignores_minus_100():
    torch.manual_seed(0)
    m = BertForMaskedLM(cfg())
    ids = torch.randint(0, 40, (2, 10))
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 7] = 5, 9
    logits, loss = m(ids, labels=labels)
    manual = torch.nn.functional.cross_entropy(torch.stack([logits[0, 3], logits[1, 7]]), torch.tensor([5, 9]))
    assert torch.allclose(loss, manual, atol=1e-6)


def test_fully_padded_row_has_no_nan():
    m = BERT(cfg()).eval()
    ids = torch.randint(0, 40, (2, 6))
    am = torch.ones_like(ids)
    am[1] = 0
    h, p = m(ids, attention_mask=am)
    assert torch.isfinite(h).all() and torch.isfinite(p).all()


def test_bad_inputs():
    m = BertForMaskedLM(cfg())
    ids = torch.randint(0, 40, (2, 6))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        m(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        m(ids, attention_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="only 1"):
        m(ids, attention_mask=torch.full((2, 6), 2))
    with pytest.raises(ValueError, match="token_type_ids"):
        m(ids, token_type_ids=torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        m(ids, labels=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(TypeError):
        m(ids.float())
    with pytest.raises(ValueError, match=r"input_ids must hold ids in 0\.\.39; got 40"):
        m(torch.tensor([[3, 40]]))
    with pytest.raises(ValueError, match=r"token_type_ids must hold ids in 0\.\.1; got 2"):
        m(ids, token_type_ids=torch.full((2, 6), 2))


BERT_MLM_KEYS_ONE_LAYER = (
    ["bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
     "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.norm.weight", "bert.embeddings.norm.bias"]
    + [f"bert.layers.0.{m}.{p}" for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                            "self_attn.out_proj", "norm1", "ffn.fc_in", "ffn.fc_out", "norm2")
       for p in ("weight", "bias")]
    + ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "mlm_head.bias", "mlm_head.transform.weight",
       "mlm_head.transform.bias", "mlm_head.norm.weight", "mlm_head.norm.bias", "mlm_head.decoder.weight"])


def test_state_dict_keys_are_pinned():
    # The shipped checkpoints (lmlib/models) and the Hugging Face conversion rely on these names.
    from lmlib.embeddings import LearnedPositionalEmbedding, TokenEmbedding

    torch.manual_seed(0)
    c = BertConfig(vocab_size=13, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                   max_position_embeddings=10, hidden_dropout_prob=0.0)
    m = BertForMaskedLM(c)
    sd = m.state_dict()
    assert list(sd) == BERT_MLM_KEYS_ONE_LAYER
    assert sd["bert.embeddings.word_embeddings.weight"].shape == (13, 8)
    assert sd["bert.embeddings.position_embeddings.weight"].shape == (10, 8)
    assert sd["bert.embeddings.token_type_embeddings.weight"].shape == (2, 8)
    e = m.bert.embeddings
    assert isinstance(e.word_embeddings, TokenEmbedding) and isinstance(e.position_embeddings, LearnedPositionalEmbedding)
    assert m.mlm_head.decoder.weight is e.word_embeddings.weight
    assert torch.equal(e.word_embeddings.weight[c.pad_token_id], torch.zeros(8))
    ids, tt = torch.randint(0, 13, (2, 6)), torch.randint(0, 2, (2, 6))
    ref = e.norm(F.embedding(ids, e.word_embeddings.weight) + e.position_embeddings.weight[:6]
                 + F.embedding(tt, e.token_type_embeddings.weight))
    torch.testing.assert_close(e(ids, tt), ref, rtol=0, atol=0)
