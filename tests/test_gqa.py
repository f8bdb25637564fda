"""Tests of lmlib.gqa: grouped-query attention against references written out here."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmlib.attention import KVCache, MultiHeadAttention
from lmlib.gqa import GroupedQueryAttention, kv_cache_bytes, repeat_kv, sliding_window_mask


# --- independent references ------------------------------------------------------------------

def _rope_ref(x, base, offset=0):
    """Rotate-half RoPE written from the formula: pair (j, j + hs/2) turned by p * base^(-2j/hs)."""
    T, hs = x.shape[-2], x.shape[-1]
    half = hs // 2
    pos = torch.arange(offset, offset + T, dtype=torch.float64)[:, None]          # (T, 1)
    w = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / hs)[None, :]    # (1, hs/2)
    cos, sin = (pos * w).cos().to(x.dtype), (pos * w).sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def _rms_ref(x, weight, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def _window_mask_ref(t_q, t_k, window):
    m = torch.zeros(t_q, t_k, dtype=torch.bool)
    for i in range(t_q):
        pos = t_k - t_q + i                       # absolute position of query i
        for j in range(t_k):
            m[i, j] = j <= pos and pos - j < window
    return m


def _gqa_ref(m, x, *, window=None, qk_norm_first=True, tiled=False):
    """Per query head h: softmax(q_h k_{h//rep}^T / sqrt(hs) + mask) v_{h//rep}, a loop over heads."""
    B, T, _ = x.shape
    nh, nkv, hs = m.n_heads, m.n_kv_heads, m.head_dim
    rep = nh // nkv
    q = F.linear(x, m.q_proj.weight, m.q_proj.bias).view(B, T, nh, hs).transpose(1, 2)
    k = F.linear(x, m.k_proj.weight, m.k_proj.bias).view(B, T, nkv, hs).transpose(1, 2)
    v = F.linear(x, m.v_proj.weight, m.v_proj.bias).view(B, T, nkv, hs).transpose(1, 2)
    if m.q_norm is not None and qk_norm_first:
        q, k = _rms_ref(q, m.q_norm.weight, m.q_norm.eps), _rms_ref(k, m.k_norm.weight, m.k_norm.eps)
    if m.rotary is not None:
        q, k = _rope_ref(q, m.rotary.base), _rope_ref(k, m.rotary.base)
    if m.q_norm is not None and not qk_norm_first:          # the wrong order, for a negative check
        q, k = _rms_ref(q, m.q_norm.weight, m.q_norm.eps), _rms_ref(k, m.k_norm.weight, m.k_norm.eps)
    allowed = _window_mask_ref(T, T, window if window is not None else T)
    heads = []
    for h in range(nh):
        g = h % nkv if tiled else h // rep                  # tiled: the wrong pairing, for a negative check
        s = q[:, h] @ k[:, g].transpose(-1, -2) / math.sqrt(hs)                   # (B, T, T)
        s = s.masked_fill(~allowed, float("-inf"))
        heads.append(torch.softmax(s, -1) @ v[:, g])                              # (B, T, hs)
    y = torch.stack(heads, 1).transpose(1, 2).reshape(B, T, nh * hs)
    return F.linear(y, m.out_proj.weight, m.out_proj.bias)


def _gqa(d=16, nh=4, nkv=2, seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    m = GroupedQueryAttention(d, nh, nkv, **kw).to(dtype).eval()
    if m.q_norm is not None:                                 # weights other than 1, so that they matter
        with torch.no_grad():
            m.q_norm.weight.uniform_(0.5, 1.5)
            m.k_norm.weight.uniform_(0.5, 1.5)
    return m


# --- repeat_kv ------------------------------------------------------------------------------

@pytest.mark.parametrize("n_kv, n_rep", [(1, 1), (1, 4), (2, 3), (3, 2), (4, 1)])
def test_repeat_kv_equals_repeat_interleave(n_kv, n_rep):
    x = torch.randn(2, n_kv, 5, 6)
    out = repeat_kv(x, n_rep)
    assert out.shape == (2, n_kv * n_rep, 5, 6)
    assert torch.equal(out, torch.repeat_interleave(x, n_rep, dim=1))
    for h in range(n_kv * n_rep):                            # query head h meets kv head h // n_rep
        assert torch.equal(out[:, h], x[:, h // n_rep])


def test_repeat_kv_is_not_tiling():
    # x.repeat(1, n_rep, 1, 1) tiles the heads (0, 1, 0, 1): query head h would meet h % n_kv.
    x = torch.randn(1, 2, 3, 4)
    tiled = x.repeat(1, 3, 1, 1)
    assert not torch.equal(repeat_kv(x, 3), tiled)
    assert torch.equal(tiled[:, 1], x[:, 1]) and torch.equal(repeat_kv(x, 3)[:, 1], x[:, 0])
    # with one kv head the two orders agree (MQA has nothing to get wrong)
    x1 = torch.randn(1, 1, 3, 4)
    assert torch.equal(repeat_kv(x1, 3), x1.repeat(1, 3, 1, 1))


def test_repeat_kv_one_returns_input():
    x = torch.randn(1, 2, 3, 4)
    assert repeat_kv(x, 1) is x


# --- sliding_window_mask ------------------------------------------------------------------

@pytest.mark.parametrize("t_q, t_k, window", [(1, 1, 1), (5, 5, 1), (5, 5, 2), (6, 6, 3), (3, 7, 2),
                                              (1, 9, 4), (4, 10, 3), (2, 5, 5)])
def test_sliding_window_mask_matches_double_loop(t_q, t_k, window):
    m = sliding_window_mask(t_q, t_k, window)
    assert m.dtype == torch.bool and m.shape == (t_q, t_k)
    assert torch.equal(m, _window_mask_ref(t_q, t_k, window))
    assert (m.sum(-1) <= window).all()
    assert m[torch.arange(t_q), torch.arange(t_k - t_q, t_k)].all()   # every query sees itself


@pytest.mark.parametrize("t_q, t_k", [(4, 4), (3, 8), (1, 6)])
def test_sliding_window_at_least_t_is_causal(t_q, t_k):
    from lmlib.attention import causal_mask

    for window in (t_k, t_k + 1, 100):
        assert torch.equal(sliding_window_mask(t_q, t_k, window), causal_mask(t_q, t_k))
    assert not torch.equal(sliding_window_mask(t_q, t_k, t_k - 1), causal_mask(t_q, t_k))


def test_sliding_window_mask_with_cache_offset_by_hand():
    # 2 new queries at positions 3, 4 of 5; window 2: position 3 sees 2, 3; position 4 sees 3, 4
    expected = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(sliding_window_mask(2, 5, 2), expected)


# --- kv_cache_bytes -------------------------------------------------------------------------

def test_kv_cache_bytes_published_sizes():
    # Llama 2 7B (MHA, 32 layers, 32 heads of 128) in fp16: 2*32*32*128*2 = 512 KiB per token;
    # Llama 3 8B (GQA, 8 KV heads): a quarter of that, 128 KiB per token.
    assert kv_cache_bytes(32, 32, 128) == 512 * 1024
    assert kv_cache_bytes(32, 8, 128) == 128 * 1024
    assert kv_cache_bytes(32, 8, 128, tokens=8192, batch=2) == 2 * 8192 * 128 * 1024   # 2 GiB
    assert kv_cache_bytes(2, 3, 4, bytes_per_value=4, tokens=5, batch=6) == 2 * 2 * 3 * 4 * 4 * 5 * 6
    assert kv_cache_bytes(2, 3, 4, tokens=0) == 0


@pytest.mark.parametrize("nkv", [4, 2, 1])
def test_cache_holds_kv_heads_and_its_bytes(nkv):
    m = _gqa(16, 4, nkv, dtype=torch.float32)
    cache = KVCache()
    with torch.no_grad():
        m(torch.randn(3, 5, 16), kv_cache=cache)
        m(torch.randn(3, 1, 16), kv_cache=cache)
    assert cache.k.shape == cache.v.shape == (3, nkv, 6, 4)
    got = cache.k.numel() * cache.k.element_size() + cache.v.numel() * cache.v.element_size()
    assert got == kv_cache_bytes(1, nkv, 4, bytes_per_value=4, tokens=6, batch=3)


# --- the attention itself -------------------------------------------------------------------

CONFIGS = [  # (d, n_heads, n_kv_heads, extra)
    (16, 4, 4, {}),                                 # MHA
    (16, 4, 2, {}),                                 # GQA
    (16, 4, 1, {}),                                 # MQA
    (24, 6, 3, dict(qkv_bias=True, out_bias=True)),
    (16, 4, 2, dict(rope_base=None)),
    (16, 4, 2, dict(head_dim=6)),                   # head_dim != d / n_heads
    (16, 4, 2, dict(qk_norm=True)),
]


@pytest.mark.parametrize("d, nh, nkv, extra", CONFIGS)
def test_gqa_matches_per_head_reference(d, nh, nkv, extra):
    m = _gqa(d, nh, nkv, **extra)
    x = torch.randn(2, 7, d, dtype=torch.float64)
    torch.testing.assert_close(m(x), _gqa_ref(m, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nkv", [4, 2, 1])
def test_gqa_matches_torch_sdpa_enable_gqa(nkv):
    m = _gqa(16, 4, nkv, rope_base=100.0)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    B, T, hs = 2, 6, 4
    q = m.q_proj(x).view(B, T, 4, hs).transpose(1, 2)
    k = m.k_proj(x).view(B, T, nkv, hs).transpose(1, 2)
    v = m.v_proj(x).view(B, T, nkv, hs).transpose(1, 2)
    q, k = _rope_ref(q, 100.0), _rope_ref(k, 100.0)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected = m.out_proj(y.transpose(1, 2).reshape(B, T, 16))
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-6)


def test_gqa_wrong_grouping_would_be_detected():
    # Pairing query head h with kv head h % n_kv (what x.repeat(1, n_rep, 1, 1) does) is another
    # function, so the reference comparisons above can fail.
    m = _gqa(16, 4, 2)
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    assert not torch.allclose(m(x), _gqa_ref(m, x, tiled=True), atol=1e-4)
    mqa = _gqa(16, 4, 1)                                     # one kv head: both pairings agree
    torch.testing.assert_close(mqa(x), _gqa_ref(mqa, x, tiled=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bias", [False, True])
def test_mha_extreme_equals_multihead_attention(bias):
    torch.manual_seed(0)
    gqa = GroupedQueryAttention(16, 4, 4, rope_base=500.0, qkv_bias=bias, out_bias=bias).eval()
    mha = MultiHeadAttention(16, 4, bias=bias, rope_base=500.0).eval()
    with torch.no_grad():
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            getattr(mha, name).weight.copy_(getattr(gqa, name).weight)
            if bias:
                getattr(mha, name).bias.copy_(getattr(gqa, name).bias)
    x = torch.randn(2, 9, 16)
    torch.testing.assert_close(gqa(x), mha(x, is_causal=True), rtol=1e-5, atol=1e-6)
    # and cached, token by token
    c1, c2 = KVCache(), KVCache()
    with torch.no_grad():
        a = [gqa(x[:, :4], kv_cache=c1)] + [gqa(x[:, t:t + 1], kv_cache=c1) for t in range(4, 9)]
        b = [mha(x[:, :4], is_causal=True, kv_cache=c2)] + [mha(x[:, t:t + 1], kv_cache=c2) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(a, 1), torch.cat(b, 1), rtol=1e-5, atol=1e-6)


def test_fewer_kv_heads_means_fewer_parameters():
    count = {nkv: sum(p.numel() for p in GroupedQueryAttention(32, 8, nkv).parameters()) for nkv in (8, 4, 1)}
    hs = 4
    for nkv, n in count.items():
        assert n == 32 * 8 * hs * 2 + 32 * nkv * hs * 2        # q and out: d * nh * hs; k and v: d * nkv * hs
    assert count[8] == 4 * 32 * 32


def test_qk_norm_normalises_each_head_before_rope():
    m = _gqa(16, 4, 2, qk_norm=True, rope_base=50.0)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    out = m(x)
    torch.testing.assert_close(out, _gqa_ref(m, x), rtol=1e-5, atol=1e-6)
    # normalising after the rotation is different (the per-dimension weights do not commute with it)
    assert not torch.allclose(out, _gqa_ref(m, x, qk_norm_first=False), atol=1e-4)
    # each head's queries are normalised separately: scaling one head's projection changes nothing
    with torch.no_grad():
        m.q_proj.weight[:4] *= 7.0
    torch.testing.assert_close(m(x), out, rtol=1e-5, atol=1e-6)
    assert m.q_norm.weight.shape == m.k_norm.weight.shape == (4,)


def test_qk_norm_module_output_per_head():
    # the normalised queries themselves, caught on the way: RMS over the head dimension, times weight
    m = _gqa(16, 4, 2, qk_norm=True)
    x = torch.randn(1, 3, 16, dtype=torch.float64)
    seen = {}
    m.q_norm.register_forward_hook(lambda mod, args, out: seen.update(q_in=args[0], q_out=out))
    m(x)
    q = m.q_proj(x).view(1, 3, 4, 4).transpose(1, 2)
    torch.testing.assert_close(seen["q_in"], q)
    torch.testing.assert_close(seen["q_out"], _rms_ref(q, m.q_norm.weight, m.q_norm.eps))


@pytest.mark.parametrize("nkv, window", [(2, 3), (1, 1), (4, 2)])
def test_sliding_window_matches_reference(nkv, window):
    m = _gqa(16, 4, nkv, sliding_window=window)
    x = torch.randn(2, 8, 16, dtype=torch.float64)
    out = m(x)
    torch.testing.assert_close(out, _gqa_ref(m, x, window=window), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out, _gqa_ref(m, x))          # the window does cut something off
    # a window at least T long is plain causal attention
    wide = _gqa(16, 4, nkv, sliding_window=8)
    torch.testing.assert_close(wide(x), _gqa_ref(wide, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nkv, extra", [(4, {}), (2, {}), (1, {}), (2, dict(sliding_window=3)),
                                        (2, dict(qk_norm=True)), (2, dict(rope_base=None))])
def test_cached_decoding_equals_full_pass(nkv, extra):
    m = _gqa(16, 4, nkv, dtype=torch.float32, **extra)
    x = torch.randn(2, 9, 16)
    with torch.no_grad():
        full = m(x)
        cache = KVCache()
        parts = [m(x[:, :5], kv_cache=cache)] + [m(x[:, t:t + 1], kv_cache=cache) for t in range(5, 9)]
    assert cache.length == 9 and cache.k.shape == (2, nkv, 9, 4)
    assert (torch.cat(parts, 1) - full).abs().max().item() < 1e-5
    # two chunks of several tokens (queries not at the start of the keys) also agree
    cache = KVCache()
    with torch.no_grad():
        parts = [m(x[:, :4], kv_cache=cache), m(x[:, 4:9], kv_cache=cache)]
    assert (torch.cat(parts, 1) - full).abs().max().item() < 1e-5


def test_causal_future_does_not_change_past():
    m = _gqa(16, 4, 2, dtype=torch.float32)
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[:, 5:] += 1.0
    a, b = m(x), m(y)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_dropout_in_training_only():
    torch.manual_seed(0)
    m = GroupedQueryAttention(16, 4, 2, dropout=0.5)
    x = torch.randn(2, 6, 16)
    m.train()
    assert not torch.allclose(m(x), m(x))
    m.eval()
    assert torch.equal(m(x), m(x))


def test_gradients_reach_every_parameter():
    m = _gqa(16, 4, 2, dtype=torch.float32, qk_norm=True, qkv_bias=True, out_bias=True)
    m(torch.randn(2, 5, 16)).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_input_leaves_cache_unchanged():
    m = _gqa(16, 4, 2, dtype=torch.float32)
    cache = KVCache(max_length=6)
    with torch.no_grad():
        m(torch.randn(1, 4, 16), kv_cache=cache)
    k, v = cache.k.clone(), cache.v.clone()
    for bad, err in [(torch.randn(1, 1, 15), ValueError), (torch.randn(1, 3, 16), ValueError),
                     (torch.randn(2, 1, 16), ValueError), (torch.randn(1, 1, 16).double(), TypeError)]:
        with pytest.raises(err):
            m(bad, kv_cache=cache)
        assert cache.length == 4 and torch.equal(cache.k, k) and torch.equal(cache.v, v)
    other_heads = KVCache()
    _gqa(16, 4, 4, dtype=torch.float32)(torch.randn(1, 2, 16), kv_cache=other_heads)
    with pytest.raises(ValueError, match="KV heads"):
        m(torch.randn(1, 1, 16), kv_cache=other_heads)
    assert other_heads.length == 2


def test_extra_repr():
    r = repr(GroupedQueryAttention(16, 4, 2, qk_norm=True, sliding_window=5))
    assert "n_kv_heads=2" in r and "qk_norm=True" in r and "sliding_window=5" in r
