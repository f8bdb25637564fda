"""Course models <-> Hugging Face transformers, with weights copied across (no downloads).

Reference models are built from their config classes with random weights. Weights are drawn
larger than the default initialisation so that logits are O(1) and a wrong mapping cannot hide.
"""

import math

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import BertConfig as HFBertConfig, BertForMaskedLM as HFBertForMaskedLM  # noqa: E402
from transformers import BertModel as HFBertModel, GPT2Config, GPT2LMHeadModel  # noqa: E402

from lmlib.bert import BERT, BertConfig, BertForMaskedLM  # noqa: E402
from lmlib.gpt import GPT, GPTConfig  # noqa: E402
from lmlib.hf import bert_from_hf, bert_to_hf, gpt_from_hf, gpt_to_hf  # noqa: E402

GPT_CONFIGS = [  # (vocab, block, n_layer, n_head, n_embd): several depths/widths, odd sizes
    (37, 13, 3, 3, 24),
    (101, 32, 2, 4, 64),
    (5, 9, 1, 1, 6),
    (257, 17, 4, 6, 30),   # head size 5
]


@torch.no_grad()
def randomize(model, std=0.3, seed=0):
    """Overwrite every parameter with N(0, std) (LayerNorm weights around 1) in a fixed order."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        p.copy_(torch.randn(p.shape, generator=g) * std)
        if "norm" in name.lower() or "ln_" in name:
            if name.endswith("weight"):
                p.add_(1.0)
    return model


@pytest.mark.parametrize("shape", GPT_CONFIGS)
def test_gpt_to_hf_same_logits(shape):
    V, T, L, H, C = shape
    torch.manual_seed(0)
    ours = randomize(GPT(GPTConfig(V, T, L, H, C, layer_norm_eps=1e-5))).eval()
    hf = gpt_to_hf(ours).eval()
    idx = torch.randint(0, V, (3, T))
    with torch.no_grad():
        a = ours(idx)[0]
        b = hf(idx).logits
    diff = (a - b).abs().max().item()
    print(f"GPT -> GPT2LMHeadModel {shape}: max|dlogits| = {diff:.2e} (logit scale {a.abs().max():.2f})")
    assert a.abs().max() > 1.0  # the comparison is not between near-zero numbers
    assert diff < 1e-4


@pytest.mark.parametrize("shape", GPT_CONFIGS)
def test_gpt_from_hf_same_logits(shape):
    V, T, L, H, C = shape
    torch.manual_seed(1)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=T, n_layer=L, n_head=H, n_embd=C,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                    bos_token_id=None, eos_token_id=None))
    randomize(hf, seed=1)
    hf.eval()
    ours = gpt_from_hf(hf).eval()
    idx = torch.randint(0, V, (2, T))
    with torch.no_grad():
        a = ours(idx)[0]
        b = hf(idx).logits
    diff = (a - b).abs().max().item()
    print(f"GPT2LMHeadModel -> GPT {shape}: max|dlogits| = {diff:.2e}")
    assert diff < 1e-4
    assert ours.lm_head.weight is ours.wte.weight


def test_gpt_conv1d_transpose_and_tie():
    ours = randomize(GPT(GPTConfig(11, 8, 1, 2, 8)))
    hf = gpt_to_hf(ours)
    blk, h = ours.blocks[0], hf.transformer.h[0]
    C = 8
    # Conv1D stores (in, out): the first C output columns of c_attn are the query projection
    assert torch.equal(h.attn.c_attn.weight[:, :C], blk.self_attn.q_proj.weight.t())
    assert torch.equal(h.attn.c_attn.weight[:, 2 * C:], blk.self_attn.v_proj.weight.t())
    assert torch.equal(h.mlp.c_fc.weight, blk.ffn.fc_in.weight.t())
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()
    back = gpt_from_hf(hf)
    for (k1, v1), (k2, v2) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1


def test_gpt_loss_matches_hf():
    ours = randomize(GPT(GPTConfig(23, 16, 2, 2, 16))).eval()
    hf = gpt_to_hf(ours).eval()
    idx = torch.randint(0, 23, (4, 16))
    with torch.no_grad():
        ref = hf(input_ids=idx, labels=idx).loss  # HF shifts the labels inside
        _, loss = ours(idx[:, :-1], idx[:, 1:])
    assert abs(loss.item() - ref.item()) < 1e-5


def test_gpt_gradients_match_hf():
    ours = randomize(GPT(GPTConfig(19, 12, 2, 2, 12)), std=0.2)
    hf = gpt_to_hf(ours)
    idx = torch.randint(0, 19, (2, 12))
    ours(idx[:, :-1], idx[:, 1:])[1].backward()
    hf(input_ids=idx, labels=idx).loss.backward()
    g_ours = ours.blocks[1].ffn.fc_in.weight.grad
    g_hf = hf.transformer.h[1].mlp.c_fc.weight.grad.t()
    assert torch.allclose(g_ours, g_hf, atol=1e-5)
    assert torch.allclose(ours.wte.weight.grad, hf.transformer.wte.weight.grad, atol=1e-5)  # tied: both uses


def test_gpt_to_hf_save_pretrained_round_trip_and_generate(tmp_path):
    torch.manual_seed(0)
    ours = randomize(GPT(GPTConfig(29, 24, 2, 2, 16)), std=0.5).eval()
    hf = gpt_to_hf(ours, eos_token_id=0).eval()
    hf.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))  # no pickle
    hf2 = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    idx = torch.randint(1, 29, (2, 6))
    with torch.no_grad():
        diff = (hf2(idx).logits - ours(idx)[0]).abs().max().item()
    print(f"GPT -> save_pretrained -> from_pretrained: max|dlogits| = {diff:.2e}")
    assert diff < 1e-4
    # greedy generation by transformers equals our own greedy loop with a KV cache
    out = hf2.generate(idx, max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0)
    seq, caches = idx, ours.new_kv_caches()
    with torch.no_grad():
        logits, _ = ours(seq, kv_caches=caches)
        for _ in range(8):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
            logits, _ = ours(nxt, kv_caches=caches)
    assert torch.equal(out, seq)


def test_gpt_config_conversion_errors():
    with pytest.raises(ValueError, match="bias"):
        gpt_to_hf(GPT(GPTConfig(11, 8, 1, 2, 8, bias=False)))
    with pytest.raises(ValueError, match="activation"):
        gpt_from_hf(GPT2LMHeadModel(GPT2Config(vocab_size=11, n_positions=8, n_layer=1, n_head=2, n_embd=8,
                                               activation_function="relu", bos_token_id=None, eos_token_id=None)))
    with pytest.raises(TypeError):
        gpt_to_hf(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------- BERT ----------------------------------

def _bert_cfg(**kw):
    base = dict(vocab_size=53, hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=40,
                max_position_embeddings=16, type_vocab_size=2, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    base.update(kw)
    return base


def _batch(V, T=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (3, T), generator=g)
    tt = torch.randint(0, 2, (3, T), generator=g)
    am = torch.ones(3, T, dtype=torch.long)
    am[1, 7:] = 0  # padding at the end of two sequences
    am[2, 3:] = 0
    ids[am == 0] = 0
    return ids, tt, am


BERT_SHAPES = [dict(), dict(hidden_size=30, num_attention_heads=5, intermediate_size=37, num_hidden_layers=3),
               dict(hidden_size=8, num_attention_heads=1, num_hidden_layers=1, type_vocab_size=3)]


@pytest.mark.parametrize("kw", BERT_SHAPES)
def test_bert_mlm_both_directions(kw):
    cfg = _bert_cfg(**kw)
    ours = randomize(BertForMaskedLM(BertConfig(**cfg))).eval()
    hf = bert_to_hf(ours).eval()
    ids, tt, am = _batch(cfg["vocab_size"])
    labels = torch.full_like(ids, -100)
    labels[:, 1] = ids[:, 1]
    labels[0, 5] = 7
    with torch.no_grad():
        a, loss = ours(ids, tt, am, labels)
        ref = hf(input_ids=ids, token_type_ids=tt, attention_mask=am, labels=labels)
    real = am.bool()
    d1 = (a - ref.logits).abs().max().item()
    d1_real = (a - ref.logits)[real].abs().max().item()
    print(f"BertForMaskedLM -> HF {kw}: max|dlogits| = {d1:.2e} (real tokens {d1_real:.2e})")
    assert a.abs().max() > 1.0 and d1 < 1e-4
    assert abs(loss.item() - ref.loss.item()) < 1e-5
    # and back: a model built from the HF one
    hf2 = HFBertForMaskedLM(HFBertConfig(**cfg))
    randomize(hf2, seed=3)
    hf2.eval()
    ours2 = bert_from_hf(hf2).eval()
    with torch.no_grad():
        d2 = (ours2(ids, tt, am)[0] - hf2(input_ids=ids, token_type_ids=tt, attention_mask=am).logits).abs().max().item()
    print(f"HF BertForMaskedLM -> lmlib {kw}: max|dlogits| = {d2:.2e}")
    assert d2 < 1e-4
    assert ours2.mlm_head.decoder.weight is ours2.bert.embeddings.word_embeddings.weight


@pytest.mark.parametrize("kw", BERT_SHAPES[:2])
def test_bert_model_hidden_and_pooled_both_directions(kw):
    cfg = _bert_cfg(**kw)
    ids, tt, am = _batch(cfg["vocab_size"], seed=1)
    hf = HFBertModel(HFBertConfig(**cfg))
    randomize(hf, seed=5)
    hf.eval()
    ours = bert_from_hf(hf).eval()
    with torch.no_grad():
        ref = hf(input_ids=ids, token_type_ids=tt, attention_mask=am)
        hid, pooled = ours(ids, tt, am)
    dh = (hid - ref.last_hidden_state).abs().max().item()
    dp = (pooled - ref.pooler_output).abs().max().item()
    print(f"HF BertModel -> lmlib {kw}: max|dhidden| = {dh:.2e}, max|dpooled| = {dp:.2e}")
    assert dh < 1e-4 and dp < 1e-4
    back = bert_to_hf(ours).eval()
    with torch.no_grad():
        out = back(input_ids=ids, token_type_ids=tt, attention_mask=am)
    assert (out.last_hidden_state - hid).abs().max() < 1e-4


def test_bert_padding_does_not_leak():
    """Changing the ids at padded positions changes nothing at the real positions (both models)."""
    cfg = _bert_cfg()
    ours = randomize(BERT(BertConfig(**cfg))).eval()
    ids, tt, am = _batch(cfg["vocab_size"])
    ids2 = ids.clone()
    ids2[am == 0] = 5
    with torch.no_grad():
        h1, _ = ours(ids, tt, am)
        h2, _ = ours(ids2, tt, am)
    real = am.bool()
    assert torch.allclose(h1[real], h2[real], atol=1e-6)
    assert not torch.allclose(h1[~real], h2[~real])


def test_bert_save_pretrained_round_trip(tmp_path):
    cfg = _bert_cfg()
    ours = randomize(BertForMaskedLM(BertConfig(**cfg))).eval()
    bert_to_hf(ours).save_pretrained(tmp_path)
    hf = HFBertForMaskedLM.from_pretrained(tmp_path).eval()
    ids, tt, am = _batch(cfg["vocab_size"])
    with torch.no_grad():
        d = (hf(input_ids=ids, token_type_ids=tt, attention_mask=am).logits - ours(ids, tt, am)[0]).abs().max()
    assert d < 1e-4
