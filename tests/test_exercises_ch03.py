"""The Chapter 3 checkers accept right answers and give the specific hint for typical wrong ones."""

from __future__ import annotations

import math

import torch

from lmlib.attention import MultiHeadAttention, KVCache, causal_mask, scaled_dot_product_attention
from lmlib.embeddings import RotaryEmbedding
from lmlib.exercises import ch03

Q = torch.tensor(ch03.HAND_QUERY, dtype=torch.float64)
K = torch.tensor(ch03.HAND_KEYS, dtype=torch.float64)


def message(v) -> str:
    return v.message


# ---------------------------------------------------------------------------- weights by hand

def test_attention_weights_right_answer_from_torch():
    _, w = scaled_dot_product_attention(Q[None], K, torch.eye(3, dtype=torch.float64))
    assert ch03.check_attention_weights(w[0], quiet=True)
    assert ch03.check_attention_weights(w[0].tolist(), quiet=True)
    # the scores are [1, 1, 4]; by hand
    e = [math.exp(1 / math.sqrt(2)), math.exp(1 / math.sqrt(2)), math.exp(4 / math.sqrt(2))]
    assert ch03.check_attention_weights([x / sum(e) for x in e], quiet=True)


def test_attention_weights_wrong_answers_get_specific_hints():
    raw = torch.tensor([1.0, 1.0, 4.0])
    v = ch03.check_attention_weights(torch.softmax(raw, 0), quiet=True)
    assert not v and "sqrt(d_k)" in message(v)
    v = ch03.check_attention_weights(torch.softmax(raw / 2, 0), quiet=True)
    assert not v and "not by d_k" in message(v)
    v = ch03.check_attention_weights(raw / raw.sum(), quiet=True)
    assert not v and "softmax" in message(v)
    v = ch03.check_attention_weights(raw / math.sqrt(2), quiet=True)
    assert not v and "apply the softmax" in message(v)
    v = ch03.check_attention_weights([0.5, 0.5], quiet=True)
    assert not v and "3 weights" in message(v)
    v = ch03.check_attention_weights([0.5, 0.5, 0.5], quiet=True)
    assert not v and "sum to 1" in message(v)
    v = ch03.check_attention_weights(None, quiet=True)
    assert not v and "None" in message(v)


# ---------------------------------------------------------------------------- masked softmax

def right_masked_softmax(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    m = x.amax(-1, keepdim=True).clamp(min=torch.finfo(x.dtype).min)
    e = (x - m).exp()
    return e / e.sum(-1, keepdim=True).clamp(min=1e-300)


def test_masked_softmax_right_answers():
    assert ch03.check_masked_softmax(right_masked_softmax, quiet=True)
    from lmlib.attention import stable_softmax
    assert ch03.check_masked_softmax(lambda s, m: stable_softmax(s.masked_fill(~m, -math.inf)), quiet=True)


def test_masked_softmax_wrong_answers():
    def naive(scores, mask):  # overflows
        e = scores.exp() * mask
        return e / e.sum(-1, keepdim=True)

    def nan_on_empty_rows(scores, mask):
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)

    def inverted(scores, mask):
        return right_masked_softmax(scores, ~mask)

    def after(scores, mask):
        return torch.softmax(scores, -1).masked_fill(~mask, 0.0)

    def wrong_dim(scores, mask):
        return right_masked_softmax(scores.transpose(-1, -2), mask.transpose(-1, -2)).transpose(-1, -2)

    def not_masked(scores, mask):
        return torch.softmax(scores, -1)

    def crashes(scores, mask):
        raise RuntimeError("boom")

    def max_over_all(scores, mask):  # the shift includes the masked scores
        e = torch.exp(scores - scores.amax(-1, keepdim=True)) * mask
        return e / e.sum(-1, keepdim=True)

    def max_over_all_guarded(scores, mask):
        x = scores.masked_fill(~mask, float("-inf"))
        e = torch.exp(x - scores.amax(-1, keepdim=True))
        return e / e.sum(-1, keepdim=True).clamp(min=1e-300)

    expectations = [
        (naive, "maximum"),
        (nan_on_empty_rows, "every key is masked"),
        (inverted, "inverted"),
        (after, "AFTER the softmax"),
        (wrong_dim, "LAST dimension"),
        (not_masked, "weight exactly 0"),
        (crashes, "raised RuntimeError"),
        (max_over_all, "masked ones included"),
        (max_over_all_guarded, "masked ones included"),
        (lambda s, m: None, "returns None"),
        (lambda s, m: s.tolist(), "return a tensor"),
    ]
    for fn, text in expectations:
        v = ch03.check_masked_softmax(fn, quiet=True)
        assert not v, fn
        assert text in message(v), (fn, message(v))
    assert not ch03.check_masked_softmax(None, quiet=True)


# ---------------------------------------------------------------------------- causal mask

def test_causal_mask_right_answers():
    assert ch03.check_causal_mask(causal_mask, quiet=True)

    def by_positions(t_q, t_k):
        i = torch.arange(t_k - t_q, t_k)[:, None]
        return torch.arange(t_k)[None, :] <= i

    assert ch03.check_causal_mask(by_positions, quiet=True)


def test_causal_mask_wrong_answers():
    cases = [
        (lambda t_q, t_k: torch.ones(t_q, t_k, dtype=torch.bool).tril(), "LAST"),
        (lambda t_q, t_k: ~causal_mask(t_q, t_k), "inverted"),
        (lambda t_q, t_k: torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q - 1), "itself"),
        (lambda t_q, t_k: causal_mask(t_q, t_k).float(), "bool tensor"),
        (lambda t_q, t_k: torch.ones(t_q, t_q, dtype=torch.bool).tril(), "shape"),
        (lambda t_q, t_k: None, "returns None"),
    ]
    for fn, text in cases:
        v = ch03.check_causal_mask(fn, quiet=True)
        assert not v and text in message(v), message(v)


# ---------------------------------------------------------------------------- online attention

def learner_online(q, k, v, keep, block, *, rescale_sum=True, rescale_out=True, normalise=True,
                   scaled=True, safe=True, guard=True, shift=True):
    """A learner's blockwise attention; each flag switched off is one typical mistake."""
    scale = q.shape[-1] ** -0.5 if scaled else 1.0
    m = torch.full((q.shape[0], 1), -math.inf, dtype=q.dtype)
    total = torch.zeros(q.shape[0], 1, dtype=q.dtype)
    out = torch.zeros(q.shape[0], v.shape[1], dtype=q.dtype)
    for kb, vb, keepb in zip(k.split(block), v.split(block), keep.split(block, dim=1)):
        s = torch.where(keepb, q @ kb.T * scale, -math.inf)
        new_m = torch.maximum(m, s.max(dim=1, keepdim=True).values) if shift else torch.zeros_like(m)
        ref = new_m.nan_to_num(neginf=0.0) if safe else new_m
        p, c = (s - ref).exp(), (m - ref).exp()
        total = (total * c if rescale_sum else total) + p.sum(1, keepdim=True)
        out = (out * c if rescale_out else out) + p @ vb
        m = new_m
    if not normalise:
        return out
    return out / total.clamp(min=torch.finfo(total.dtype).tiny) if guard else out / total


def test_online_attention_right_answers():
    assert ch03.check_online_attention(learner_online, quiet=True)
    # the explicit attention of lmlib is an independent reference for the checker's expected outputs
    assert ch03.check_online_attention(
        lambda q, k, v, keep, b: scaled_dot_product_attention(q, k, v, attn_mask=keep)[0], quiet=True)
    # float32 arithmetic is accurate enough
    assert ch03.check_online_attention(
        lambda q, k, v, keep, b: learner_online(q.float(), k.float(), v.float(), keep, b), quiet=True)


def test_online_attention_wrong_answers():
    cases = [
        (dict(rescale_sum=False, rescale_out=False), "BOTH"),
        (dict(rescale_sum=False), "running sum is not"),
        (dict(rescale_out=False), "output accumulator is not"),
        (dict(normalise=False), "divide it by the running sum"),
        (dict(scaled=False), "sqrt(d)"),
        (dict(safe=False), "exp(-inf - (-inf))"),
        (dict(guard=False), "0/0"),
        (dict(shift=False), "overflow"),
    ]
    for flags, text in cases:
        v = ch03.check_online_attention(lambda *a, flags=flags: learner_online(*a, **flags), quiet=True)
        assert not v and text in message(v), (flags, message(v))
    v = ch03.check_online_attention(lambda q, k, v, keep, b: learner_online(q, k, v, ~keep, b), quiet=True)
    assert not v and "inverted" in message(v), message(v)
    v = ch03.check_online_attention(lambda q, k, v, keep, b: learner_online(q, k, v, keep | True, b), quiet=True)
    assert not v and "ignored" in message(v), message(v)
    v = ch03.check_online_attention(lambda q, k, v, keep, b: learner_online(q, k, v, keep, b).T, quiet=True)
    assert not v and "shape" in message(v), message(v)
    v = ch03.check_online_attention(lambda *a: None, quiet=True)
    assert not v and "returns None" in message(v)


# ---------------------------------------------------------------------------- RoPE inside attention

def learner_rope(q, k, v, base, *, layout="half", sign=1.0, freq_step=2, rotate=("q", "k"),
                 offset=True, causal=True):
    """A learner's RoPE attention; the keyword arguments select typical mistakes."""
    d, t_q, t_k = q.shape[-1], q.shape[-2], k.shape[-2]

    def rope(x, pos):
        theta = pos[:, None].double() * base ** (-(torch.arange(0, d, 2) // 2 * freq_step).double() / d)
        c, s = theta.cos(), sign * theta.sin()
        if layout == "half":
            a, b = x.chunk(2, dim=-1)
            return torch.cat([a * c - b * s, a * s + b * c], dim=-1)
        a, b = x[..., ::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., ::2], out[..., 1::2] = a * c - b * s, a * s + b * c
        return out

    q_pos = torch.arange(t_k - t_q, t_k) if offset else torch.arange(t_q)
    q = rope(q, q_pos) if "q" in rotate else q
    k = rope(k, torch.arange(t_k)) if "k" in rotate else k
    v = rope(v, torch.arange(t_k)) if "v" in rotate else v
    mask = causal_mask(t_q, t_k) if causal else None
    return scaled_dot_product_attention(q, k, v, attn_mask=mask)[0]


def test_rope_attention_right_answers():
    assert ch03.check_rope_attention(learner_rope, quiet=True)

    def with_lmlib_rotary(q, k, v, base):                     # an independent reference: lmlib's RoPE
        rope = RotaryEmbedding(q.shape[-1], base=base)
        t_q, t_k = q.shape[-2], k.shape[-2]
        return scaled_dot_product_attention(rope(q, offset=t_k - t_q), rope(k), v, is_causal=True)[0]

    assert ch03.check_rope_attention(with_lmlib_rotary, quiet=True)


def test_rope_checker_agrees_with_multi_head_attention_and_its_cache():
    # MultiHeadAttention(rope_base=...) with identity projections and one head is RoPE attention;
    # a cached decoding step sees queries at the last positions.
    torch.manual_seed(0)
    d = 8
    mha = MultiHeadAttention(d, 1, bias=False, rope_base=100.0).double().eval()
    with torch.no_grad():
        for lin in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
            lin.weight.copy_(torch.eye(d))
    x = torch.randn(1, 6, d, dtype=torch.float64)
    cache = KVCache()
    mha(x[:, :4], is_causal=True, kv_cache=cache)
    step = mha(x[:, 4:], is_causal=True, kv_cache=cache)     # 2 queries at positions 4, 5
    mine = ch03._rope_variant(x[:, 4:], x, x, 100.0)
    assert torch.allclose(step, mine, atol=1e-5)              # RotaryEmbedding rotates in float32
    assert torch.allclose(learner_rope(x[:, 4:], x, x, 100.0), step, atol=1e-5)


def test_rope_attention_wrong_answers():
    cases = [
        (dict(rotate=("q", "k", "v")), "values too"),
        (dict(rotate=()), "plain causal attention"),
        (dict(rotate=("k",)), "not the queries"),
        (dict(rotate=("q",)), "not the keys"),
        (dict(layout="interleaved"), "interleaved"),
        (dict(sign=-1.0), "wrong way"),
        (dict(freq_step=1), "base^(-2j/d)"),
        (dict(offset=False), "LAST T_q"),
        (dict(causal=False), "causal mask"),
    ]
    for kw, text in cases:
        v = ch03.check_rope_attention(lambda *a, kw=kw: learner_rope(*a, **kw), quiet=True)
        assert not v and text in message(v), (kw, message(v))
    v = ch03.check_rope_attention(lambda q, k, v, base: None, quiet=True)
    assert not v and "returns None" in message(v)
    v = ch03.check_rope_attention(lambda q, k, v, base: learner_rope(q, k, v, base)[..., :1], quiet=True)
    assert not v and "shape" in message(v)
