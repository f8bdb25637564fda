import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, BertConfig as HFBertConfig, BertModel

from lmlib.bert import BERT, BertConfig, BertForMaskedLM
from lmlib.counting import (bert_params, count_matmul_flops, count_params, gpt_flops_per_token, gpt_matmul_params,
                            gpt_memory, gpt_params)
from lmlib.gpt import GPT, GPTConfig


@pytest.mark.parametrize("shape", [(37, 13, 3, 3, 24), (101, 32, 2, 4, 64), (5, 9, 1, 1, 6)])
@pytest.mark.parametrize("bias", [True, False])
def test_gpt_param_formula(shape, bias):
    c = GPTConfig(*shape, bias=bias)
    assert gpt_params(c) == count_params(GPT(c))
    assert gpt_params(c, non_embedding=True) == GPT(c).num_params(non_embedding=True)


def test_gpt2_small_is_124_439_808():
    c = GPTConfig.gpt2("small")
    assert gpt_params(c) == 124_439_808
    # independent check: a randomly initialised transformers GPT-2 built from its default config
    hf = GPT2LMHeadModel(GPT2Config())
    assert sum(p.numel() for p in hf.parameters()) == 124_439_808


def test_bert_param_formula_and_hf():
    c = BertConfig(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=40,
                   max_position_embeddings=16)
    assert bert_params(c) == count_params(BERT(c))
    assert bert_params(c, mlm_head=True) == count_params(BertForMaskedLM(c))
    hf = BertModel(HFBertConfig(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                                intermediate_size=40, max_position_embeddings=16))
    assert bert_params(c) == sum(p.numel() for p in hf.parameters())
    assert bert_params(BertConfig()) == 109_482_240  # BERT-base (uncased vocabulary)


@pytest.mark.parametrize("T", [8, 16])
def test_flops_formula_equals_counted_matmuls(T):
    c = GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=24)
    m = GPT(c)
    idx = torch.randint(0, 37, (3, T))
    fwd = count_matmul_flops(m, idx)
    assert fwd == 3 * T * gpt_flops_per_token(c, T)
    train = count_matmul_flops(m, idx, idx, backward=True)
    assert train == 3 * T * gpt_flops_per_token(c, T, training=True)
    assert all(b.self_attn.use_fused for b in m.blocks)  # restored


def test_six_n_rule_for_gpt2_small():
    c = GPTConfig.gpt2("small")
    per_token = gpt_flops_per_token(c, training=True)
    ratio = per_token / (6 * gpt_params(c))
    assert 1.0 < ratio < 1.2  # attention over 1024 positions adds ~ 12·L·T·C on top of 6N
    assert abs(gpt_flops_per_token(c, 1, training=True) / (6 * gpt_matmul_params(c)) - 1) < 1e-3


def test_memory():
    m = gpt_memory(GPTConfig.gpt2("small"))
    assert m.weights_bytes == 4 * 124_439_808 and m.training_bytes == 16 * 124_439_808
    assert gpt_memory(GPTConfig.gpt2("small"), dtype=torch.bfloat16).weights_bytes == 2 * 124_439_808


def test_mixed_precision_memory_keeps_float32_master_weights_and_moments():
    c = GPTConfig.gpt2("small")
    n = 124_439_808
    pure = gpt_memory(c, dtype=torch.bfloat16)
    mixed = gpt_memory(c, dtype=torch.bfloat16, mixed_precision=True)
    assert pure.training_bytes == 4 * 2 * n                      # everything in bf16 (no master copy)
    assert mixed.weights_bytes == 2 * n                         # the 16-bit copy for the matmuls
    # 16-bit weights + 16-bit grads + fp32 master weights + two fp32 moments, element by element
    sizes = [torch.empty((), dtype=d).element_size() for d in
             (torch.bfloat16, torch.bfloat16, torch.float32, torch.float32, torch.float32)]
    assert mixed.training_bytes == sum(sizes) * n == gpt_memory(c).training_bytes
    assert gpt_memory(c, dtype=torch.float16, mixed_precision=True).training_bytes == 16 * n
