"""lmlib.flops against an independent count: torch.utils.flop_counter.FlopCounterMode running a
real forward (and backward) of lmlib.gpt.GPT.

FlopCounterMode counts exactly the matrix multiplies (mm, addmm, bmm, and the attention kernels it
has a formula for), 2 FLOPs per multiply-add, and nothing else: it ignores the bias addition of an
addmm, LayerNorm, GELU, softmax, the mask, residual additions, the embedding gather and the loss,
which is also what the analytic count leaves out. So the two must agree exactly, with one caveat:
on CPU, PyTorch's fused attention kernel (``_scaled_dot_product_flash_attention_for_cpu``) has no
formula in FlopCounterMode and is counted as 0 FLOPs. The exact comparisons therefore switch the
attention modules to their explicit path (``q @ kᵀ`` and ``weights @ v`` as two bmm), and
``test_fused_attention_on_cpu_is_not_counted`` pins down the caveat.
"""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lmlib import counting
from lmlib.attention import MultiHeadAttention
from lmlib.flops import gpt_flops_breakdown, non_embedding_params, training_flops
from lmlib.gpt import GPT, GPTConfig

CONFIGS = [
    GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=32),
    GPTConfig(vocab_size=50, block_size=12, n_layer=1, n_head=4, n_embd=16, bias=False),
    GPTConfig(vocab_size=11, block_size=24, n_layer=3, n_head=3, n_embd=24),
]
ATTENTION_TERMS = ("attention_scores", "attention_weighted_sum")


def _model(config: GPTConfig, fused: bool = False) -> GPT:
    torch.manual_seed(0)
    model = GPT(config)
    for m in model.modules():
        if isinstance(m, MultiHeadAttention):
            m.use_fused = fused
    return model


def _count(model: GPT, idx: torch.Tensor, backward: bool = False) -> FlopCounterMode:
    with FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        if backward:
            loss.backward()
    return counter


def _module_flops(counter: FlopCounterMode, *suffixes: str) -> int:
    """FLOPs counted inside the modules whose names end with one of ``suffixes``."""
    return sum(sum(ops.values()) for name, ops in counter.get_flop_counts().items() if name.endswith(suffixes))


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seq_len", [None, 5])
def test_forward_flops_match_the_counted_matmuls_component_by_component(config, seq_len):
    T = config.block_size if seq_len is None else seq_len
    B = 3
    idx = torch.randint(0, config.vocab_size, (B, T), generator=torch.Generator().manual_seed(1))
    f = gpt_flops_breakdown(config, seq_len)
    counter = _count(_model(config), idx)
    n = B * T  # tokens in the batch
    assert counter.get_total_flops() == n * f["total"]
    projections = _module_flops(counter, ".q_proj", ".k_proj", ".v_proj", ".out_proj")
    assert projections == n * f["attention_projections"]
    # the two bmm of attention run inside self_attn but outside its projection layers
    attention = n * (f["attention_scores"] + f["attention_weighted_sum"])
    assert _module_flops(counter, ".self_attn") - projections == attention
    assert _module_flops(counter, ".ffn") == n * f["mlp"]
    assert _module_flops(counter, "GPT.lm_head") == n * f["output_head"]
    assert f["total"] == sum(v for k, v in f.items() if k != "total")


@pytest.mark.parametrize("config", CONFIGS)
def test_forward_plus_backward_is_three_forwards(config):
    """Every matmul's backward is two matmuls of its size (gradients of both operands: the input
    of every layer needs one, as it comes from a LayerNorm or an embedding that is trained)."""
    T, B = config.block_size, 2
    idx = torch.randint(0, config.vocab_size, (B, T), generator=torch.Generator().manual_seed(2))
    counter = _count(_model(config), idx, backward=True)
    assert counter.get_total_flops() == 3 * B * T * gpt_flops_breakdown(config)["total"]


@pytest.mark.parametrize("config", CONFIGS)
def test_fused_attention_on_cpu_is_not_counted(config):
    """The caveat of the module docstring: on CPU the fused kernel adds 0 counted FLOPs, so the
    count is the total without the context-dependent terms. (Where a future PyTorch counts it,
    the count is the full total; either way the rest must match exactly.)"""
    T, B = config.block_size, 2
    idx = torch.randint(0, config.vocab_size, (B, T), generator=torch.Generator().manual_seed(3))
    f = gpt_flops_breakdown(config)
    counted = _count(_model(config, fused=True), idx).get_total_flops()
    assert counted in (B * T * f["total"], B * T * (f["total"] - sum(f[k] for k in ATTENTION_TERMS)))


@pytest.mark.parametrize("config", CONFIGS)
def test_total_is_counting_gpt_flops_per_token_and_weights_count_twice(config):
    for T in (1, 7, config.block_size):
        f = gpt_flops_breakdown(config, T)
        assert f["total"] == counting.gpt_flops_per_token(config, T)
        weights = f["total"] - sum(f[k] for k in ATTENTION_TERMS)
        assert weights == 2 * counting.gpt_matmul_params(config)  # 2 FLOPs per matmul weight per token
        assert f["attention_scores"] == f["attention_weighted_sum"] == 2 * config.n_layer * T * config.n_embd


def test_causal_counts_the_visible_keys():
    """Query i (0-based) sees i + 1 keys: summed over a sequence of T, T(T + 1)/2 query-key
    pairs, each costing 2·C FLOPs per layer for the scores (and again for the weighted sum)."""
    c = CONFIGS[0]
    for T in (1, 2, 9, 16):
        f = gpt_flops_breakdown(c, T, causal=True)
        pairs = sum(i + 1 for i in range(T))
        assert f["attention_scores"] * T == c.n_layer * 2 * c.n_embd * pairs
        dense = gpt_flops_breakdown(c, T)
        assert {k: v for k, v in f.items() if k not in (*ATTENTION_TERMS, "total")} == \
            {k: v for k, v in dense.items() if k not in (*ATTENTION_TERMS, "total")}


@pytest.mark.parametrize("config", CONFIGS)
def test_non_embedding_params_of_model_and_config_agree(config):
    model = _model(config)
    n = non_embedding_params(model)
    assert n == non_embedding_params(config)
    embeddings = model.wte.weight.numel() + model.wpe.weight.numel()
    assert n == sum(p.numel() for p in model.parameters()) - embeddings  # the tied head is wte itself


def test_training_flops_is_six_n_d_and_six_is_forward_plus_backward():
    assert training_flops(10, 7) == 420 and isinstance(training_flops(10, 7), int)
    assert training_flops(124e6, 3e11) == pytest.approx(6 * 124e6 * 3e11)
    assert training_flops(0, 5) == 0
    # per token, on the course GPT at context 1 (the attention term is then negligible): the counted
    # forward + backward of the matmul weights is exactly 6 FLOPs per matmul weight
    c = CONFIGS[0]
    model = _model(c)
    idx = torch.randint(0, c.vocab_size, (4, 1), generator=torch.Generator().manual_seed(4))
    counted = _count(model, idx, backward=True).get_total_flops()
    f = gpt_flops_breakdown(c, 1)
    attention = 3 * 4 * sum(f[k] for k in ATTENTION_TERMS)  # forward + backward of 4 tokens
    assert counted - attention == training_flops(counting.gpt_matmul_params(c), 4)


@pytest.mark.parametrize("config", CONFIGS)
def test_gap_to_six_n_is_the_attention_context_term(config):
    # counted training FLOPs minus 6N: attention's 12·L·T·C, less 6 FLOPs for each parameter that is
    # counted in N but takes part in no matmul (positions, biases, LayerNorms)
    T = config.block_size
    model = _model(config)
    idx = torch.randint(0, config.vocab_size, (1, T), generator=torch.Generator().manual_seed(5))
    counted = _count(model, idx, backward=True).get_total_flops() // T          # per token
    n_all = sum(p.numel() for p in model.parameters())
    n_matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    context = 12 * config.n_layer * T * config.n_embd
    assert counted - 6 * n_all == context - 6 * (n_all - n_matmul)
    gpt2 = GPTConfig.gpt2("small")
    gap = counting.gpt_flops_per_token(gpt2, training=True) - 6 * counting.gpt_params(gpt2)
    assert 0.95 < gap / (12 * gpt2.n_layer * gpt2.block_size * gpt2.n_embd) < 1.0
