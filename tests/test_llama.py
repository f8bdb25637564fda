"""Tests of lmlib.llama: the Llama-style decoder, its config, and its equivalence with GPT-2."""

import math

import pytest
import torch
from torch import nn

from lmlib.attention import KVCache
from lmlib.feedforward import FeedForward, SwiGLU, swiglu_hidden
from lmlib.gpt import GPT, GPTConfig
from lmlib.gqa import GroupedQueryAttention, kv_cache_bytes
from lmlib.llama import Llama, LlamaBlock, LlamaConfig, matched_ffn_hidden
from lmlib.normalization import LayerNorm, RMSNorm

V = 29


def small(**kw):
    return LlamaConfig(**{**dict(vocab_size=V, block_size=16, n_layer=2, n_head=4, n_embd=16), **kw})


def _perturbed(cfg, seed=0):
    """A model whose norms and biases are not at their initial 1 / 0 (so that they matter)."""
    torch.manual_seed(seed)
    m = Llama(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- config ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, field, error", [
    (dict(n_kv_head=3), "n_kv_head", ValueError),                 # 3 does not divide 4
    (dict(n_kv_head=8), "n_kv_head", ValueError),                 # more kv heads than heads
    (dict(n_kv_head=0), "n_kv_head", ValueError),
    (dict(n_embd=15, n_head=5), "even head_dim", ValueError),      # head_dim 3 with RoPE
    (dict(head_dim=5), "even head_dim", ValueError),
    (dict(n_embd=10, n_head=4), "divisible", ValueError),
    (dict(norm="batch"), "norm", ValueError),
    (dict(position="alibi"), "position", ValueError),
    (dict(ffn="relu"), "ffn", ValueError),
    (dict(ffn_hidden=0), "ffn_hidden", ValueError),
    (dict(rope_base=0.0), "rope_base", ValueError),
    (dict(norm_eps=0.0), "norm_eps", ValueError),
    (dict(sliding_window=0), "sliding_window", ValueError),
    (dict(dropout=1.0), "dropout", ValueError),
    (dict(tie_embeddings=1), "tie_embeddings", TypeError),
    (dict(qk_norm="yes"), "qk_norm", TypeError),
    (dict(vocab_size=0), "vocab_size", ValueError),
    (dict(block_size=2.0), "block_size", TypeError),
])
def test_config_validation(kw, field, error):
    with pytest.raises(error, match=field):
        small(**kw)


def test_config_fills_in_defaults():
    c = small()
    assert (c.n_kv_head, c.head_dim, c.ffn_hidden) == (4, 4, matched_ffn_hidden(16, 4, 4, "swiglu"))
    assert small(position="learned", n_embd=15, n_head=5).head_dim == 3   # odd head_dim is fine without RoPE
    assert small(ffn_hidden=7).ffn_hidden == 7
    d = small(n_kv_head=2).to_dict()
    assert d["n_kv_head"] == 2 and LlamaConfig(**d) == small(n_kv_head=2)


def test_gpt2_like_config():
    c = LlamaConfig.gpt2_like(vocab_size=V, block_size=16, n_layer=2, n_head=4, n_embd=16)
    assert (c.norm, c.position, c.ffn, c.bias, c.tie_embeddings, c.ffn_hidden, c.n_kv_head) == \
        ("layer", "learned", "gelu", True, True, 64, 4)


# --- parameter counts -----------------------------------------------------------------------

def _weights(block):
    """The block's weights, without norms and biases."""
    return sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("ffn", ["gelu", "swiglu"])
@pytest.mark.parametrize("d, nh, nkv", [(48, 6, 6), (48, 6, 2), (48, 6, 1), (64, 8, 4), (96, 12, 1)])
def test_matched_ffn_hidden_gives_twelve_d_squared(ffn, d, nh, nkv):
    c = LlamaConfig(vocab_size=V, block_size=8, n_layer=1, n_head=nh, n_embd=d, n_kv_head=nkv, ffn=ffn)
    block = LlamaBlock(c)
    assert abs(_weights(block) - 12 * d * d) <= 3 * d
    hs = d // nh
    attn = d * hs * (2 * nh + 2 * nkv)                              # q, out; k, v
    assert sum(p.numel() for p in block.self_attn.parameters()) == attn
    assert c.ffn_hidden == matched_ffn_hidden(d, nh, nkv, ffn)


def test_matched_ffn_hidden_mha_values():
    # MHA: attention 4 d^2, the FFN gets 8 d^2: 4d for GELU, 8d/3 for SwiGLU
    assert matched_ffn_hidden(48, 6, 6, "gelu") == 4 * 48
    assert matched_ffn_hidden(48, 6, 6, "swiglu") == 128               # 8 * 48 / 3
    assert matched_ffn_hidden(48, 6, 1, "swiglu") == round((12 * 48 * 48 - 48 * 8 * 14) / (3 * 48))
    # the default head size is d / n_head; a given head_dim changes the attention share
    assert matched_ffn_hidden(48, 6, 6, "gelu", head_dim=4) == round((12 * 48 - 4 * 24) / 2)


def test_swiglu_hidden_of_llama_7b():
    # Llama 1/2 7B: d = 4096, FFN width 11008 = 2/3 * 4 * 4096 = 10922.67, rounded up to a multiple of 256
    assert swiglu_hidden(4096, multiple_of=256) == 11008


def _count_from_shapes(c):
    """Parameters of a Llama config from the shapes, written out (GQA, SwiGLU, RMSNorm, no biases)."""
    d, hs = c.n_embd, c.head_dim
    attn = d * c.n_head * hs * 2 + d * c.n_kv_head * hs * 2
    ffn = 3 * d * c.ffn_hidden
    per_layer = attn + ffn + 2 * d
    emb = c.vocab_size * d * (1 if c.tie_embeddings else 2)
    return c.n_layer * per_layer + emb + d


def test_llama3_8b_has_its_published_parameter_count():
    c = LlamaConfig.llama3_8b()
    assert (c.n_layer, c.n_head, c.n_kv_head, c.n_embd, c.head_dim, c.ffn_hidden, c.vocab_size) == \
        (32, 32, 8, 4096, 128, 14336, 128256)
    # 32 * (41,943,040 attention + 176,160,768 FFN + 8,192 norms) + 2 * 525,336,576 embeddings + 4,096
    assert _count_from_shapes(c) == 8_030_261_248
    with torch.device("meta"):
        m = Llama(c)
    assert m.lm_head.weight is not m.wte.weight
    assert m.num_params() == sum(p.numel() for p in m.parameters()) == 8_030_261_248
    assert m.num_params(non_embedding=True) == 8_030_261_248 - 2 * 128256 * 4096
    # its KV cache: 128 KiB per token in bfloat16, 1 GiB for 8192 tokens
    assert kv_cache_bytes(c.n_layer, c.n_kv_head, c.head_dim, tokens=8192) == 2 ** 30


@pytest.mark.parametrize("kw", [dict(), dict(n_kv_head=1, ffn="gelu", tie_embeddings=False),
                                dict(position="learned", bias=True, qk_norm=True)])
def test_num_params_counts_tied_matrix_once(kw):
    m = Llama(small(**kw))
    unique = {id(p): p.numel() for p in m.parameters()}
    assert m.num_params() == sum(unique.values())
    assert (m.lm_head.weight is m.wte.weight) == m.config.tie_embeddings
    emb = V * 16 + (16 * 16 if m.wpe is not None else 0) + (0 if m.config.tie_embeddings else V * 16)
    assert m.num_params(non_embedding=True) == m.num_params() - emb


def test_init_is_gpt2():
    m = Llama(LlamaConfig(vocab_size=500, block_size=8, n_layer=4, n_head=4, n_embd=64))
    assert abs(m.wte.weight.std().item() - 0.02) < 0.002
    for b in m.blocks:
        assert abs(b.self_attn.out_proj.weight.std().item() - 0.02 / math.sqrt(8)) < 0.002
        assert abs(b.ffn.down_proj.weight.std().item() - 0.02 / math.sqrt(8)) < 0.002
        assert abs(b.ffn.gate_proj.weight.std().item() - 0.02) < 0.002
        assert torch.equal(b.norm1.weight, torch.ones(64))


def test_switches_pick_the_components():
    m = Llama(small(n_kv_head=2, qkv_bias=True, qk_norm=True, sliding_window=4))
    b = m.blocks[0]
    assert isinstance(b.norm1, RMSNorm) and isinstance(b.ffn, SwiGLU) and m.wpe is None
    assert isinstance(b.self_attn, GroupedQueryAttention) and b.self_attn.n_kv_heads == 2
    assert b.self_attn.q_proj.bias is not None and b.self_attn.out_proj.bias is None
    assert b.ffn.gate_proj.bias is None and b.self_attn.q_norm is not None
    assert b.self_attn.sliding_window == 4 and b.self_attn.rotary is not None
    g = Llama(small(norm="layer", position="learned", ffn="gelu", bias=True))
    assert isinstance(g.blocks[0].norm1, LayerNorm) and isinstance(g.blocks[0].ffn, FeedForward)
    assert g.blocks[0].ffn.activation_name == "gelu_tanh" and g.wpe is not None
    assert g.blocks[0].self_attn.rotary is None and g.blocks[0].norm1.bias is not None
    with pytest.raises(TypeError, match="config"):
        Llama(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(TypeError, match="config"):
        LlamaBlock(small().to_dict())


# --- GPT-2 equivalence ----------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_gpt2_like_computes_what_gpt_computes(bias):
    torch.manual_seed(0)
    g = GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=4, n_embd=16, bias=bias)).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    m = Llama(LlamaConfig.gpt2_like(vocab_size=V, block_size=16, n_layer=2, n_head=4, n_embd=16, bias=bias)).eval()
    sd = {k.replace("ln_f.", "norm_f."): v for k, v in g.state_dict().items()}
    assert set(sd) == set(m.state_dict())                              # same keys, ln_f -> norm_f
    assert all(sd[k].shape == v.shape for k, v in m.state_dict().items())
    m.load_state_dict(sd)
    assert m.num_params() == g.num_params() and m.num_params(True) == g.num_params(True)
    idx = torch.randint(0, V, (3, 16))
    tgt = torch.randint(0, V, (3, 16))
    with torch.no_grad():
        (lg, loss_g), (lm, loss_m) = g(idx, tgt), m(idx, tgt)
    assert (lg - lm).abs().max().item() < 1e-6
    assert abs(loss_g.item() - loss_m.item()) < 1e-6
    # a switch flipped is another model: RMSNorm instead of LayerNorm changes the logits
    r = Llama(LlamaConfig.gpt2_like(vocab_size=V, block_size=16, n_layer=2, n_head=4, n_embd=16, bias=bias,
                                    norm="rms")).eval()
    r.load_state_dict({k: v for k, v in sd.items() if not (k.endswith("bias") and "norm" in k)})
    with torch.no_grad():
        assert (r(idx)[0] - lg).abs().max().item() > 1e-3


# --- forward, cache, causality -------------------------------------------------------------

def test_forward_shapes_and_loss():
    m = _perturbed(small(n_kv_head=2))
    idx = torch.randint(0, V, (2, 10))
    tgt = torch.randint(0, V, (2, 10))
    tgt[0, :3] = -100
    logits, loss = m(idx, tgt)
    assert logits.shape == (2, 10, V) and m(idx)[1] is None
    keep = tgt != -100
    manual = -(logits.log_softmax(-1)[keep].gather(-1, tgt[keep][:, None])).mean()
    assert torch.allclose(loss, manual, atol=1e-6)
    with torch.no_grad():
        h = m.hidden_states(idx)
        assert torch.equal(m.lm_head(h), m(idx)[0])


CACHE_CONFIGS = {
    "mha": dict(),
    "gqa": dict(n_kv_head=2),
    "mqa": dict(n_kv_head=1),
    "qk_norm": dict(n_kv_head=2, qk_norm=True),
    "window": dict(n_kv_head=2, sliding_window=3),
    "learned": dict(position="learned", n_kv_head=2),
    "gpt2_like": dict(norm="layer", position="learned", ffn="gelu", bias=True),
    "qkv_bias_untied": dict(n_kv_head=2, qkv_bias=True, tie_embeddings=False),
}


@pytest.mark.parametrize("name", list(CACHE_CONFIGS))
def test_cached_decoding_equals_full_forward(name):
    c = small(**CACHE_CONFIGS[name])
    m = _perturbed(c)
    idx = torch.randint(0, V, (2, 16))
    with torch.no_grad():
        full, _ = m(idx)
        caches = m.new_kv_caches()
        assert len(caches) == 2 and all(isinstance(k, KVCache) for k in caches)
        parts = [m(idx[:, :6], kv_caches=caches)[0]]
        parts += [m(idx[:, t:t + 1], kv_caches=caches)[0] for t in range(6, 16)]
    assert (torch.cat(parts, 1) - full).abs().max().item() < 1e-5
    hs = c.head_dim
    for cache in caches:
        assert cache.k.shape == cache.v.shape == (2, c.n_kv_head, 16, hs)
    nbytes = sum(t.numel() * t.element_size() for cache in caches for t in (cache.k, cache.v))
    assert nbytes == kv_cache_bytes(c.n_layer, c.n_kv_head, hs, bytes_per_value=4, tokens=16, batch=2)
    with pytest.raises(ValueError, match="block_size"):
        m(idx[:, :1], kv_caches=caches)                              # 16 cached + 1 > block_size


def test_bfloat16_cache_bytes():
    c = small(n_kv_head=1)
    m = Llama(c).to(torch.bfloat16).eval()
    caches = m.new_kv_caches()
    with torch.no_grad():
        logits, _ = m(torch.randint(0, V, (3, 5)), kv_caches=caches)
    assert logits.dtype == torch.bfloat16 and caches[0].k.dtype == torch.bfloat16
    nbytes = sum(t.numel() * t.element_size() for cache in caches for t in (cache.k, cache.v))
    assert nbytes == kv_cache_bytes(2, 1, 4, bytes_per_value=2, tokens=5, batch=3) == 2 * 2 * 4 * 2 * 5 * 3


@pytest.mark.parametrize("kw", [dict(), dict(n_kv_head=1, sliding_window=2)])
def test_causal_future_does_not_change_past(kw):
    m = _perturbed(small(**kw))
    idx = torch.randint(0, V, (2, 12))
    idx2 = idx.clone()
    idx2[:, 8:] = (idx2[:, 8:] + 1) % V
    with torch.no_grad():
        a, b = m(idx)[0], m(idx2)[0]
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_sliding_window_limits_what_one_layer_sees():
    # one layer with window w: the logits at position i depend on tokens i-w+1..i only
    w = 3
    m = _perturbed(small(n_layer=1, sliding_window=w))
    idx = torch.randint(0, V, (1, 12))
    idx2 = idx.clone()
    idx2[:, 2] = (idx2[:, 2] + 1) % V                               # seen by positions 2, 3, 4 only
    with torch.no_grad():
        a, b = m(idx)[0], m(idx2)[0]
    changed = ((a - b).abs().amax(-1) > 1e-6)[0]
    assert changed.tolist() == [False, False, True, True, True] + [False] * 7
    # without the window every later position changes
    full = _perturbed(small(n_layer=1))
    with torch.no_grad():
        changed = ((full(idx)[0] - full(idx2)[0]).abs().amax(-1) > 1e-6)[0]
    assert changed.tolist() == [False, False] + [True] * 10


def test_learned_positions_reject_long_input_rope_limited_by_block_size():
    for kw in (dict(position="learned"), dict()):
        m = Llama(small(**kw))
        with pytest.raises(ValueError, match="block_size"):
            m(torch.zeros(1, 17, dtype=torch.long))


# --- training -------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(n_kv_head=2), dict(n_kv_head=1, qk_norm=True, tie_embeddings=False,
                                                         qkv_bias=True)])
def test_overfits_one_batch_and_gradients_reach_every_parameter(one_thread, kw):
    torch.manual_seed(0)
    m = Llama(small(**kw))
    params = list(m.parameters())
    assert len(params) == len({id(p) for p in params})              # a tied matrix appears once
    idx = torch.randint(0, V, (4, 16))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    first = None
    for step in range(50):
        _, loss = m(idx[:, :-1], idx[:, 1:])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        if step == 0:
            missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert not missing, missing
        opt.step()
    assert first > 0.9 * math.log(V)
    assert loss.item() < 0.1 * first


def test_dropout_in_training_only():
    torch.manual_seed(0)
    m = Llama(small(dropout=0.3, n_kv_head=2))
    idx = torch.randint(0, V, (2, 8))
    m.train()
    assert not torch.allclose(m(idx)[0], m(idx)[0])
    m.eval()
    assert torch.equal(m(idx)[0], m(idx)[0])


def test_bad_input_leaves_caches_unchanged():
    m = _perturbed(small(n_kv_head=2))
    caches = m.new_kv_caches()
    with torch.no_grad():
        m(torch.randint(0, V, (1, 10)), kv_caches=caches)
    snap = [(c.length, c.k.clone(), c.v.clone()) for c in caches]
    for bad, err in [(torch.zeros(1, 7, dtype=torch.long), ValueError),    # 10 + 7 > block_size
                     (torch.tensor([[V]]), ValueError),                    # id out of range
                     (torch.zeros(2, 1, dtype=torch.long), ValueError),    # batch mismatch
                     (torch.zeros(1, 1), TypeError)]:                      # float ids
        with pytest.raises(err):
            m(bad, kv_caches=caches)
        for (n, k, v), c in zip(snap, caches):
            assert c.length == n and torch.equal(c.k, k) and torch.equal(c.v, v)
    block = m.blocks[0]
    with pytest.raises(ValueError, match="x must"):
        block(torch.randn(1, 1, 15), kv_cache=caches[0])                   # wrong width
    assert caches[0].length == 10 and torch.equal(caches[0].k, snap[0][1])


def test_bfloat16_model_keeps_rope_angles():
    # .to(torch.bfloat16) must not round the RoPE frequencies: at position 1000 the angles of a
    # bfloat16 model are those of the float32 model (only q and k themselves are rounded).
    c = small(n_head=2, n_kv_head=1, n_embd=64, block_size=2048)     # head_dim 32
    rot32 = Llama(c).blocks[0].self_attn.rotary
    rot16 = Llama(c).to(torch.bfloat16).blocks[0].self_attn.rotary
    x = torch.randn(1, 1, 3, c.head_dim).to(torch.bfloat16)
    expected = rot32(x.float(), offset=1000)
    got = rot16(x, offset=1000).float()
    assert (got - expected).abs().max().item() < 0.02 * x.float().abs().max().item()
