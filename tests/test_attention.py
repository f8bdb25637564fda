"""Tests for lmlib.attention against independent references.

References: ``torch.nn.functional.scaled_dot_product_attention``, ``torch.nn.MultiheadAttention``
with the weights copied across, ``torch.softmax``/``torch.tril``, and hand computation.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlib.attention import (
    KVCache,
    MultiHeadAttention,
    attention_param_count,
    causal_mask,
    fused_attention,
    scaled_dot_product_attention,
    stable_softmax,
)

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is faster, and much faster on a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TOL = {torch.float64: dict(atol=1e-10, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-5)}


def close(a, b, dtype):
    torch.testing.assert_close(a, b, **TOL[dtype])


# --------------------------------------------------------------------------------------------
# stable_softmax
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_stable_softmax_matches_torch(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, 7, generator=g, dtype=dtype) * 3
    for dim in (-1, 0, 1):
        close(stable_softmax(x, dim=dim), torch.softmax(x, dim=dim), dtype)


def test_stable_softmax_extreme_scores_hand_values():
    # exp(1000) overflows float64 (max ~ 1.8e308 = exp(709.8)), so the naive formula gives NaN.
    x = torch.tensor([[1000.0, 1000.0], [1000.0, 0.0], [-1000.0, -1000.0], [1e30, 1e30 - 1e15]],
                     dtype=torch.float64)
    naive = torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)
    assert torch.isnan(naive[0]).all()
    assert torch.isnan(naive[2]).all()  # 0/0: exp(-1000) underflows to 0
    p = stable_softmax(x)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p[0], torch.tensor([0.5, 0.5], dtype=torch.float64))
    # [1000, 0]: 1 / (1 + e^-1000) rounds to exactly 1, and e^-1000 / (1 + e^-1000) underflows to 0
    torch.testing.assert_close(p[1], torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(p[2], torch.tensor([0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(p[3], torch.tensor([1.0, 0.0], dtype=torch.float64))
    # float32 extreme scores too
    x32 = torch.tensor([88.0, 89.0, 90.0]) * 100
    assert torch.isinf(torch.exp(x32)).all()
    torch.testing.assert_close(stable_softmax(x32), torch.tensor([0.0, 0.0, 1.0]))


def test_stable_softmax_all_masked_rows_are_zero_and_gradients_finite():
    x = torch.tensor([[0.5, -math.inf, 1.0], [-math.inf, -math.inf, -math.inf]], requires_grad=True)
    p = stable_softmax(x)
    e = math.exp(0.5) + math.exp(1.0)
    torch.testing.assert_close(p.detach(), torch.tensor([[math.exp(0.5) / e, 0.0, math.exp(1.0) / e], [0.0, 0.0, 0.0]]))
    (p * torch.arange(3.0)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[1] == 0).all()


def test_stable_softmax_gradient_matches_torch():
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 6, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((stable_softmax(x) * w).sum(), x)
    (g_ref,) = torch.autograd.grad((torch.softmax(x, -1) * w).sum(), x)
    close(g_ours, g_ref, torch.float64)


def test_stable_softmax_bad_input():
    with pytest.raises(TypeError, match="floating"):
        stable_softmax(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="Tensor"):
        stable_softmax([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        stable_softmax(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match=r"\+inf"):
        stable_softmax(torch.tensor([1.0, float("inf")]))


# --------------------------------------------------------------------------------------------
# causal_mask
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("t_q,t_k", [(1, 1), (4, 4), (1, 6), (3, 8)])
def test_causal_mask_matches_tril(t_q, t_k):
    expected = torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=t_k - t_q)
    assert torch.equal(causal_mask(t_q, t_k), expected)


def test_causal_mask_hand():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


def test_causal_mask_errors():
    with pytest.raises(ValueError, match="t_k"):
        causal_mask(5, 3)
    with pytest.raises(ValueError, match="t_q"):
        causal_mask(0)
    with pytest.raises(TypeError, match="t_q must be an int"):
        causal_mask(2.5)


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention (explicit) and fused_attention vs torch
# --------------------------------------------------------------------------------------------

def test_three_token_example_by_hand():
    # d_k = 4 so the scale is 1/2. Keys are orthogonal, so q.k picks one coordinate.
    q = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    k = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    out, w = scaled_dot_product_attention(q, k, v)
    # query 0: scores (2, 0, 0)/2 = (1, 0, 0) -> weights (e, 1, 1)/(e + 2)
    e = math.e
    w0 = [e / (e + 2), 1 / (e + 2), 1 / (e + 2)]
    w1 = [1 / (e + 2), e / (e + 2), 1 / (e + 2)]
    w2 = [1 / 3, 1 / 3, 1 / 3]
    expected_w = torch.tensor([w0, w1, w2], dtype=torch.float64)
    expected_out = torch.tensor([[w0[0] + w0[2], w0[1] + w0[2]], [w1[0] + w1[2], w1[1] + w1[2]], [2 / 3, 2 / 3]],
                                dtype=torch.float64)
    close(w, expected_w, torch.float64)
    close(out, expected_out, torch.float64)


def _qkv(shape_q, shape_k, d_v, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_q, generator=g, dtype=dtype).requires_grad_()
    k = torch.randn(*shape_k, generator=g, dtype=dtype).requires_grad_()
    v = torch.randn(*shape_k[:-1], d_v, generator=g, dtype=dtype).requires_grad_()
    return q, k, v


def _mask(kind, lead, t_q, t_k, dtype, seed):
    g = torch.Generator().manual_seed(seed + 100)
    if kind == "none":
        return None
    if kind == "bool":
        m = torch.rand(*lead, t_q, t_k, generator=g) > 0.4
        m[..., 0] = True  # every row keeps at least one key (torch's reference differs on empty rows)
        return m
    if kind == "bool2d":
        m = torch.rand(t_q, t_k, generator=g) > 0.4
        m[..., -1] = True
        return m
    if kind == "float":
        return torch.randn(*lead, t_q, t_k, generator=g, dtype=dtype)
    if kind == "float_inf":
        m = torch.zeros(t_q, t_k, dtype=dtype)
        m[torch.rand(t_q, t_k, generator=g) > 0.5] = -math.inf
        m[:, 0] = 0.0
        return m
    raise AssertionError(kind)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("lead", [(1, 1), (3, 2), (2, 4)])
@pytest.mark.parametrize("t_q,t_k", [(1, 1), (5, 5), (3, 7), (6, 2)])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "bool2d", "float", "float_inf"])
def test_sdpa_matches_torch_outputs_and_gradients(dtype, lead, t_q, t_k, mask_kind):
    d_k, d_v = 8, 5
    seed = hash((lead, t_q, t_k, mask_kind)) % 1000
    q, k, v = _qkv((*lead, t_q, d_k), (*lead, t_k, d_k), d_v, dtype, seed)
    mask = _mask(mask_kind, lead, t_q, t_k, dtype, seed)
    grad_out = torch.randn(*lead, t_q, d_v, dtype=dtype)

    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad_out)
    for fn in (lambda *a, **kw: scaled_dot_product_attention(*a, **kw)[0], fused_attention):
        out = fn(q, k, v, attn_mask=mask)
        grads = torch.autograd.grad(out, (q, k, v), grad_out)
        close(out, ref, dtype)
        for g_ours, g_ref in zip(grads, ref_grads):
            close(g_ours, g_ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("t", [1, 4, 9])
def test_sdpa_causal_matches_torch(dtype, t):
    q, k, v = _qkv((2, 3, t, 4), (2, 3, t, 4), 4, dtype, t)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True)
    close(out, ref, dtype)
    close(fused_attention(q, k, v, is_causal=True), ref, dtype)
    assert (w.detach().triu(1) == 0).all()
    close(w.detach().sum(-1), torch.ones(2, 3, t, dtype=dtype), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_causal_with_longer_keys_is_bottom_right_aligned(dtype):
    t_q, t_k = 3, 7
    q, k, v = _qkv((2, t_q, 4), (2, t_k, 4), 3, dtype, 1)
    explicit_mask = torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=t_k - t_q)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=explicit_mask)
    close(scaled_dot_product_attention(q, k, v, is_causal=True)[0], ref, dtype)
    close(fused_attention(q, k, v, is_causal=True), ref, dtype)
    # combined with another mask
    extra = torch.rand(t_q, t_k, generator=torch.Generator().manual_seed(3)) > 0.3
    extra[:, 0] = True
    ref2 = F.scaled_dot_product_attention(q, k, v, attn_mask=explicit_mask & extra)
    close(scaled_dot_product_attention(q, k, v, attn_mask=extra, is_causal=True)[0], ref2, dtype)
    close(fused_attention(q, k, v, attn_mask=extra, is_causal=True), ref2, dtype)
    add = torch.zeros(t_q, t_k, dtype=dtype)
    close(fused_attention(q, k, v, attn_mask=add, is_causal=True), ref, dtype)


def test_weights_are_probabilities_and_match_softmax_reference():
    q, k, v = _qkv((2, 3, 6, 8), (2, 3, 9, 8), 4, torch.float64, 7)
    mask = _mask("bool", (2, 3), 6, 9, torch.float64, 7)
    _, w = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(8)
    ref_w = torch.softmax(scores.masked_fill(~mask, -math.inf), dim=-1)
    close(w, ref_w, torch.float64)
    assert (w[~mask] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows_give_zero_output_and_finite_gradients(dtype, kind):
    q, k, v = _qkv((2, 2, 4, 8), (2, 2, 5, 8), 3, dtype, 11)
    keep = torch.ones(4, 5, dtype=torch.bool)
    keep[1] = False  # query 1 may attend to nothing
    keep[3, 2:] = False
    mask = keep if kind == "bool" else torch.zeros(4, 5, dtype=dtype).masked_fill(~keep, -math.inf)
    for fn in (lambda *a, **kw: scaled_dot_product_attention(*a, **kw)[0], fused_attention):
        out = fn(q, k, v, attn_mask=mask)
        assert torch.isfinite(out).all()
        assert (out[..., 1, :] == 0).all()
        grads = torch.autograd.grad(out.sum(), (q, k, v))
        for g in grads:
            assert torch.isfinite(g).all()
        assert (grads[0][..., 1, :] == 0).all()
        # the other rows are ordinary attention
        rows = [0, 2, 3]
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)[..., rows, :]
        close(out[..., rows, :], ref, dtype)
    _, w = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (w[..., 1, :] == 0).all()


def test_large_finite_negative_mask_is_not_fully_masked():
    q, k, v = _qkv((1, 2, 4), (1, 3, 4), 2, torch.float64, 0)
    mask = torch.full((2, 3), -1e9, dtype=torch.float64)
    out, w = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    close(w, torch.softmax((q @ k.transpose(-1, -2)) / 2 - 1e9, -1), torch.float64)
    close(fused_attention(q, k, v, attn_mask=mask), out, torch.float64)


def test_additive_minus_inf_equals_boolean_mask():
    q, k, v = _qkv((3, 5, 8), (3, 6, 8), 4, torch.float64, 5)
    keep = _mask("bool", (3,), 5, 6, torch.float64, 5)
    additive = torch.zeros(3, 5, 6, dtype=torch.float64).masked_fill(~keep, -math.inf)
    out_b, w_b = scaled_dot_product_attention(q, k, v, attn_mask=keep)
    out_f, w_f = scaled_dot_product_attention(q, k, v, attn_mask=additive)
    assert torch.equal(w_b, w_f)
    assert torch.equal(out_b, out_f)


def test_custom_scale_matches_torch():
    q, k, v = _qkv((2, 4, 8), (2, 4, 8), 8, torch.float64, 2)
    for scale in (1.0, 0.1):
        close(scaled_dot_product_attention(q, k, v, scale=scale)[0],
              F.scaled_dot_product_attention(q, k, v, scale=scale), torch.float64)
        close(fused_attention(q, k, v, scale=scale), F.scaled_dot_product_attention(q, k, v, scale=scale), torch.float64)


def test_dropout_explicit_path():
    q, k, v = _qkv((1, 6, 4), (1, 6, 4), 6, torch.float64, 0)
    torch.manual_seed(0)
    out, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=True)
    # dropped weights are 0; kept weights are scaled by 1/(1-p) = 2
    _, w_eval = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    kept = w != 0
    assert 0 < kept.sum() < kept.numel()
    close(w[kept], 2 * w_eval[kept], torch.float64)
    close(out, w @ v, torch.float64)
    # not in training: no dropout
    close(scaled_dot_product_attention(q, k, v, dropout_p=0.5)[0], F.scaled_dot_product_attention(q, k, v),
          torch.float64)


@settings(max_examples=30, deadline=None)
@given(t_q=st.integers(1, 6), t_k=st.integers(1, 6), d=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_output_is_convex_combination_of_values(t_q, t_k, d, seed):
    q, k, v = _qkv((t_q, d), (t_k, d), 3, torch.float64, seed)
    out, w = scaled_dot_product_attention(q, k, v)
    assert (w >= 0).all()
    close(w.sum(-1), torch.ones(t_q, dtype=torch.float64), torch.float64)
    lo, hi = v.min(0).values, v.max(0).values
    assert (out >= lo - 1e-12).all() and (out <= hi + 1e-12).all()


def test_sdpa_bad_inputs():
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="last dimension d_k"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 7), v)
    with pytest.raises(ValueError, match="same length T_k"):
        scaled_dot_product_attention(q, k, torch.randn(2, 6, 3))
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(3, 4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(4, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="floating"):
        scaled_dot_product_attention(q.long(), k, v)
    with pytest.raises(TypeError, match="dtype"):
        scaled_dot_product_attention(q.double(), k, v)
    with pytest.raises(ValueError, match="shape"):
        scaled_dot_product_attention(torch.randn(8), k, v)
    with pytest.raises(ValueError, match="do not broadcast"):
        scaled_dot_product_attention(torch.randn(3, 4, 8), k, v)
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match="broadcast"):
        fused_attention(q, k, v, attn_mask=torch.ones(5, 4, dtype=torch.bool))


# --------------------------------------------------------------------------------------------
# MultiHeadAttention vs torch.nn.MultiheadAttention
# --------------------------------------------------------------------------------------------

def _pair(d_model, n_heads, dtype, bias=True, seed=0):
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d_model, n_heads, bias=bias).to(dtype)
    return ours, _torch_copy(ours)


def _torch_copy(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    """A torch.nn.MultiheadAttention holding the same weights as ``ours``."""
    bias = ours.q_proj.bias is not None
    dtype = ours.q_proj.weight.dtype
    ref = nn.MultiheadAttention(ours.d_model, ours.n_heads, bias=bias, batch_first=True).to(dtype)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        if bias:
            ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
            ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ref


def _param_grads_ours(m: MultiHeadAttention, bias: bool):
    w = torch.cat([m.q_proj.weight.grad, m.k_proj.weight.grad, m.v_proj.weight.grad])
    out = [w, m.out_proj.weight.grad]
    if bias:
        out += [torch.cat([m.q_proj.bias.grad, m.k_proj.bias.grad, m.v_proj.bias.grad]), m.out_proj.bias.grad]
    return out


def _param_grads_ref(m: nn.MultiheadAttention, bias: bool):
    out = [m.in_proj_weight.grad, m.out_proj.weight.grad]
    if bias:
        out += [m.in_proj_bias.grad, m.out_proj.bias.grad]
    return out


CASES = [
    # (d_model, n_heads, B, T_q, T_k, cross, masks)
    (8, 1, 1, 5, 5, False, "none"),
    (16, 2, 3, 6, 6, False, "causal"),
    (16, 4, 2, 7, 7, False, "padding"),
    (24, 3, 2, 5, 5, False, "causal+padding"),
    (32, 8, 1, 4, 4, False, "float"),
    (16, 4, 3, 3, 6, True, "none"),
    (16, 2, 2, 4, 7, True, "padding"),
    (12, 6, 2, 5, 8, True, "bool"),
    (16, 16, 2, 1, 3, True, "bool_batched"),
]


CASE_IDS = [f"d{c[0]}h{c[1]}B{c[2]}Tq{c[3]}Tk{c[4]}{'x' if c[5] else 's'}-{c[6]}" for c in CASES]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("use_fused", [False, True])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_mha_matches_torch_multihead_attention(dtype, use_fused, case):
    _compare_with_torch_mha(dtype, use_fused, True, case)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", [CASES[3], CASES[6]], ids=[CASE_IDS[3], CASE_IDS[6]])
def test_mha_without_bias_matches_torch(dtype, case):
    _compare_with_torch_mha(dtype, True, False, case)


def _compare_with_torch_mha(dtype, use_fused, bias, case):
    d, h, B, t_q, t_k, cross, masks = case
    ours, ref = _pair(d, h, dtype, bias=bias, seed=d + h)
    ours.use_fused = use_fused
    g = torch.Generator().manual_seed(B * 10 + t_q)
    x = torch.randn(B, t_q, d, generator=g, dtype=dtype, requires_grad=True)
    mem = torch.randn(B, t_k, d, generator=g, dtype=dtype, requires_grad=True) if cross else x

    kw_ours, kw_ref = {}, {}
    if "causal" in masks:
        kw_ours["is_causal"] = True
        kw_ref["attn_mask"] = ~torch.ones(t_q, t_k, dtype=torch.bool).tril()  # torch: True = blocked
    if "padding" in masks:
        pad = torch.zeros(B, t_k, dtype=torch.bool)
        pad[-1, t_k - 2:] = True  # last sequence has two padding keys
        kw_ours["key_padding_mask"] = kw_ref["key_padding_mask"] = pad
    if masks == "float":
        fm = torch.randn(t_q, t_k, generator=g, dtype=dtype)
        kw_ours["attn_mask"] = kw_ref["attn_mask"] = fm
    if masks == "bool":
        keep = torch.rand(t_q, t_k, generator=g) > 0.5
        keep[:, 0] = True
        kw_ours["attn_mask"], kw_ref["attn_mask"] = keep, ~keep
    if masks == "bool_batched":
        keep = torch.rand(B, t_q, t_k, generator=g) > 0.5
        keep[..., 1] = True
        kw_ours["attn_mask"] = keep
        kw_ref["attn_mask"] = (~keep).repeat_interleave(h, dim=0)  # torch wants (B * n_heads, T_q, T_k)

    grad_out = torch.randn(B, t_q, d, generator=g, dtype=dtype)
    out = ours(x, mem if cross else None, **kw_ours)
    out_ref, _ = ref(x, mem, mem, need_weights=False, **kw_ref)
    close(out, out_ref, dtype)

    inputs = (x, mem) if cross else (x,)
    ours.zero_grad()
    ref.zero_grad()
    g_ours = torch.autograd.grad(out, inputs, grad_out, retain_graph=True)
    g_ref = torch.autograd.grad(out_ref, inputs, grad_out, retain_graph=True)
    for a, b in zip(g_ours, g_ref):
        close(a, b, dtype)
    out.backward(grad_out)
    out_ref.backward(grad_out)
    for a, b in zip(_param_grads_ours(ours, bias), _param_grads_ref(ref, bias)):
        close(a, b, dtype)

    # attention weights, per head
    out_w, w = ours(x, mem if cross else None, need_weights=True, **kw_ours)
    _, w_ref = ref(x, mem, mem, need_weights=True, average_attn_weights=False, **kw_ref)
    assert w.shape == (B, h, t_q, t_k)
    close(out_w, out_ref, dtype)
    close(w, w_ref, dtype)


def test_mha_value_defaults_to_key_for_cross_attention():
    m = MultiHeadAttention(8, 2).double()
    x, mem = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)
    close(m(x, mem), m(x, mem, mem), torch.float64)
    close(m(x), m(x, x, x), torch.float64)


def test_mha_fully_masked_query_gives_bias_only_and_finite_gradients():
    torch.manual_seed(0)
    m = MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[2] = False
    for use_fused in (False, True):
        m.use_fused = use_fused
        out = m(x, attn_mask=keep)
        # attention output of that query is 0, so the block outputs just the out_proj bias
        close(out[:, 2], m.out_proj.bias.expand(2, 8), torch.float64)
        (gx,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(gx).all()
    pad = torch.ones(2, 4, dtype=torch.bool)  # every key of every sequence is padding
    for use_fused in (False, True):
        m.use_fused = use_fused
        out = m(x, key_padding_mask=pad)
        close(out, m.out_proj.bias.expand(2, 4, 8), torch.float64)


def test_mha_parameter_count():
    for d, h, bias in [(8, 1, True), (64, 8, True), (64, 8, False), (768, 12, True)]:
        m = MultiHeadAttention(d, h, bias=bias)
        n = sum(p.numel() for p in m.parameters())
        assert n == attention_param_count(d, h, bias) == 4 * d * d + (4 * d if bias else 0)
        ref = nn.MultiheadAttention(d, h, bias=bias)
        assert n == sum(p.numel() for p in ref.parameters())


def test_mha_dropout_uses_fused_kernel_in_training(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs.get("dropout_p", 0.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    m = MultiHeadAttention(16, 4, dropout=0.25)
    x = torch.randn(2, 5, 16)
    m.train()
    m(x, is_causal=True)
    m(x, is_causal=True, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool))
    assert calls == [0.25, 0.25]
    m.eval()
    m(x, is_causal=True)
    assert calls[-1] == 0.0
    calls.clear()
    m.train()
    m(x, need_weights=True)  # the explicit path: no fused call
    m.use_fused = False
    m(x)
    assert calls == []


@pytest.mark.parametrize("use_fused", [False, True])
def test_mha_dropout_changes_training_output_but_not_eval(use_fused):
    m = MultiHeadAttention(16, 4, dropout=0.5, use_fused=use_fused)
    x = torch.randn(2, 6, 16)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(1)
    b = m(x)
    torch.manual_seed(2)
    c = m(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_mha_bad_inputs():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="n_heads must be an int >= 1"):
        MultiHeadAttention(8, 0)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(8, 2, dropout=1.5)
    m = MultiHeadAttention(8, 2)
    x = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="query must have size 8 in dimension -1"):
        m(torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match="query must have 3 dimensions"):
        m(torch.randn(4, 8))
    with pytest.raises(ValueError, match="key must have size 8 in dimension -1"):
        m(x, torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="same batch size and length"):
        m(x, torch.randn(2, 5, 8), torch.randn(2, 6, 8))
    with pytest.raises(ValueError, match="batch"):
        m(x, torch.randn(3, 5, 8))
    with pytest.raises(ValueError, match="value given without key"):
        m(x, None, torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="broadcast"):
        m(x, attn_mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        m(x, attn_mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        m(x, attn_mask=torch.ones(4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(B, T_k\)"):
        m(x, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="key_padding_mask must be a bool"):
        m(x, key_padding_mask=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="self-attention only"):
        m(x, torch.randn(2, 5, 8), kv_cache=KVCache())
    with pytest.raises(ValueError, match="T_k >= T_q"):
        m(torch.randn(2, 6, 8), torch.randn(2, 3, 8), is_causal=True)


# --------------------------------------------------------------------------------------------
# KV cache
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("use_fused", [False, True])
@pytest.mark.parametrize("B,n_heads,chunks", [(1, 1, [1, 1, 1, 1]), (3, 4, [4, 1, 1, 2]), (2, 2, [2, 3, 1])])
def test_kv_cache_incremental_equals_full_causal(dtype, use_fused, B, n_heads, chunks):
    torch.manual_seed(0)
    m = MultiHeadAttention(16, n_heads, use_fused=use_fused).to(dtype).eval()
    T = sum(chunks)
    x = torch.randn(B, T, 16, dtype=dtype)
    full = m(x, is_causal=True)
    # an independent reference: torch's MHA with an explicit causal mask
    ref_full, _ = _torch_copy(m)(x, x, x, attn_mask=~causal_mask(T), need_weights=False)
    close(full, ref_full, dtype)

    cache = KVCache()
    pieces, start = [], 0
    for n in chunks:
        pieces.append(m(x[:, start:start + n], is_causal=True, kv_cache=cache))
        start += n
        assert cache.length == start == len(cache)
    close(torch.cat(pieces, dim=1), full, dtype)
    assert cache.k.shape == (B, n_heads, T, 16 // n_heads)
    cache.reset()
    assert cache.length == 0 and cache.k is None


def test_kv_cache_writes_in_place_into_a_buffer_that_doubles():
    """Without autograd the cache writes new positions into a buffer (no copy of the cached ones);
    a full buffer is replaced by one twice as long, capped at max_length; the views handed out
    earlier keep their values; the contents equal concatenating the updates."""
    g = torch.Generator().manual_seed(0)
    ks = [torch.randn(2, 3, n, 4, generator=g) for n in (3, 1, 1, 1, 2, 1)]
    vs = [torch.randn(2, 3, n, 5, generator=g) for n in (3, 1, 1, 1, 2, 1)]
    cache, returned, capacities = KVCache(), [], []
    with torch.no_grad():
        for k, v in zip(ks, vs):
            k_all, v_all = cache.update(k, v)
            returned.append((k_all, v_all, k_all.clone(), v_all.clone()))
            capacities.append(cache.capacity)
    assert capacities == [3, 6, 6, 6, 12, 12]
    assert cache.length == len(cache) == 9 and cache.k.shape == (2, 3, 9, 4) and cache.v.shape == (2, 3, 9, 5)
    assert torch.equal(cache.k, torch.cat(ks, dim=-2)) and torch.equal(cache.v, torch.cat(vs, dim=-2))
    for n, (k_all, v_all, k_then, v_then) in zip((3, 4, 5, 6, 8, 9), returned):
        assert k_all.shape[-2] == v_all.shape[-2] == n
        assert torch.equal(k_all, k_then) and torch.equal(v_all, v_then)  # later writes left them alone
    capped = KVCache(max_length=5)
    with torch.no_grad():
        capped.update(ks[0], vs[0])
        capped.update(ks[1], vs[1])
    assert capped.capacity == 5 and capped.length == 4
    cache.reset()
    assert cache.length == 0 and cache.k is None and cache.capacity == 0


def test_kv_cache_under_autograd_concatenates_and_backpropagates():
    """While autograd records, the cache grows by torch.cat (writing in place would change tensors
    autograd saved); gradients through cached decoding equal those of the full causal pass."""
    torch.manual_seed(0)
    m = MultiHeadAttention(16, 4).double()
    x = torch.randn(2, 6, 16, dtype=torch.float64, requires_grad=True)
    full = m(x, is_causal=True)
    g_full = torch.autograd.grad(full.pow(2).sum(), [x, *m.parameters()])
    cache = KVCache()
    steps = [m(x[:, :3], is_causal=True, kv_cache=cache)] + [m(x[:, t:t + 1], is_causal=True, kv_cache=cache)
                                                              for t in range(3, 6)]
    assert cache.capacity == cache.length == 6  # exactly as long as needed: no spare buffer
    g_cached = torch.autograd.grad(torch.cat(steps, 1).pow(2).sum(), [x, *m.parameters()])
    for a, b in zip(g_cached, g_full):
        close(a, b, torch.float64)


def test_kv_cache_filled_under_inference_mode_continues_outside_it():
    torch.manual_seed(0)
    m = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        full = m(x, is_causal=True)
    cache = KVCache()
    with torch.inference_mode():
        a = m(x[:, :3], is_causal=True, kv_cache=cache)
    with torch.no_grad():  # the inference-mode buffer cannot be written here: it is copied once
        b = m(x[:, 3:5], is_causal=True, kv_cache=cache)
        c = m(x[:, 5:], is_causal=True, kv_cache=cache)
    close(torch.cat([a.clone(), b, c], 1), full, torch.float32)
    assert not cache.k.is_inference() and cache.length == 6


def test_kv_cache_with_need_weights_and_padding():
    torch.manual_seed(0)
    m = MultiHeadAttention(8, 2).double().eval()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    pad[1, 0] = True  # a left-padded sequence
    full, w_full = m(x, is_causal=True, key_padding_mask=pad, need_weights=True)
    cache = KVCache()
    a = m(x[:, :3], is_causal=True, kv_cache=cache, key_padding_mask=pad[:, :3])
    b, w_last = m(x[:, 3:], is_causal=True, kv_cache=cache, key_padding_mask=pad, need_weights=True)
    close(torch.cat([a, b], 1), full, torch.float64)
    close(w_last, w_full[:, :, 3:], torch.float64)


def test_kv_cache_errors():
    c = KVCache(max_length=4)
    c.update(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    with pytest.raises(ValueError, match="max_length"):
        c.update(torch.randn(1, 2, 2, 4), torch.randn(1, 2, 2, 4))
    with pytest.raises(ValueError, match="do not match"):
        c.update(torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4))
    with pytest.raises(ValueError, match=r"\(B, n_heads, T_new, d_head\)"):
        c.update(torch.randn(2, 1, 4), torch.randn(2, 1, 4))
    with pytest.raises(ValueError, match="disagree"):
        KVCache().update(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 2, 4))
    with pytest.raises(TypeError, match="dtype"):
        c.update(torch.randn(1, 2, 1, 4, dtype=torch.float64), torch.randn(1, 2, 1, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="max_length"):
        KVCache(max_length=0)
    assert c.length == 3


# --------------------------------------------------------------------------------------------
# the attention plotting helper (lmlib.plots.plot_attention)
# --------------------------------------------------------------------------------------------

def test_plot_attention_grid_and_errors():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlib.plots import plot_attention

    m = MultiHeadAttention(8, 2).eval()
    _, w = m(torch.randn(1, 4, 8), is_causal=True, need_weights=True)       # (1, 2, 4, 4)
    weights = torch.stack([w[0], w[0]])                                     # (layers=2, heads=2, 4, 4)
    fig = plot_attention(weights, ["a", "b", "\n", "d"], suptitle="x")
    assert len(fig.axes) == 2 * 2 + 1                                       # 4 heatmaps + colour bar
    assert fig.axes[0].get_title() == "head 0"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "\\n", "d"]
    plt.close(fig)
    fig = plot_attention(w[0], list("abcd"), heads=[1], head_titles=["the second head"])
    assert fig.axes[0].get_title() == "the second head"
    plt.close(fig)
    fig = plot_attention(torch.rand(3, 5), list("abc"), key_tokens=list("vwxyz"))  # cross-attention
    plt.close(fig)
    with pytest.raises(ValueError, match="query tokens"):
        plot_attention(w[0], list("abc"))
    with pytest.raises(ValueError, match="key tokens"):
        plot_attention(torch.rand(3, 5), list("abc"))
    with pytest.raises(ValueError, match="head titles"):
        plot_attention(w[0], list("abcd"), head_titles=["one"])
    with pytest.raises(ValueError, match="layers, heads"):
        plot_attention(torch.rand(1, 2, 3, 4, 4))


# --------------------------------------------------------------------------------------------
# RoPE inside multi-head attention
# --------------------------------------------------------------------------------------------

def _rotation(p: int, hs: int, base: float) -> torch.Tensor:
    """The (hs, hs) matrix that RoPE applies at position p, built pair by pair: dimension j and
    j + hs/2 are rotated together by the angle p * base^(-2j/hs) (the rotate-half layout)."""
    R = torch.zeros(hs, hs, dtype=torch.float64)
    half = hs // 2
    for j in range(half):
        a = p * base ** (-2 * j / hs)
        c, s = math.cos(a), math.sin(a)
        R[j, j], R[j, j + half] = c, -s
        R[j + half, j], R[j + half, j + half] = s, c
    return R


@pytest.mark.parametrize("causal", [False, True])
def test_mha_rope_matches_rotation_matrices(causal):
    torch.manual_seed(0)
    d, nh, T, base = 12, 2, 5, 50.0
    m = MultiHeadAttention(d, nh, rope_base=base).double().eval()   # RoPE itself rotates in float32
    x = torch.randn(2, T, d, dtype=torch.float64)
    hs = d // nh
    q = m.q_proj(x).view(2, T, nh, hs).transpose(1, 2)
    k = m.k_proj(x).view(2, T, nh, hs).transpose(1, 2)
    v = m.v_proj(x).view(2, T, nh, hs).transpose(1, 2)
    R = torch.stack([_rotation(p, hs, base) for p in range(T)])       # (T, hs, hs)
    q = torch.einsum("tij,bhtj->bhti", R, q)
    k = torch.einsum("tij,bhtj->bhti", R, k)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs)
    if causal:
        scores = scores.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    y = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(2, T, d)
    expected = m.out_proj(y)
    torch.testing.assert_close(m(x, is_causal=causal), expected, rtol=1e-5, atol=1e-6)


def test_mha_rope_scores_depend_only_on_offsets():
    """Shifting every position by the same amount (a cache of s dummy positions whose keys are
    then masked out) leaves the output unchanged: RoPE scores see only m - n."""
    torch.manual_seed(1)
    m = MultiHeadAttention(16, 4, rope_base=1e4).double().eval()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    plain = m(x, is_causal=True)
    cache = KVCache()
    m(torch.randn(1, 3, 16, dtype=torch.float64), kv_cache=cache)     # positions 0..2, later masked
    keep = torch.ones(6, 9, dtype=torch.bool)
    keep[:, :3] = False
    keep[:, 3:] = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    shifted = m(x, attn_mask=keep, kv_cache=cache)                    # the same tokens at 3..8
    torch.testing.assert_close(shifted, plain, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(m(x.flip(1), is_causal=True).flip(1), plain)  # order still matters


def test_mha_rope_cached_decoding_equals_full_pass():
    torch.manual_seed(2)
    m = MultiHeadAttention(16, 2, rope_base=500.0).eval()
    x = torch.randn(2, 7, 16)
    full = m(x, is_causal=True)
    cache = KVCache()
    steps = [m(x[:, :3], is_causal=True, kv_cache=cache)] + [m(x[:, t:t + 1], kv_cache=cache) for t in range(3, 7)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-6)


def test_mha_rope_off_is_unchanged_and_has_no_parameters():
    torch.manual_seed(3)
    plain = MultiHeadAttention(16, 2)
    torch.manual_seed(3)
    rope = MultiHeadAttention(16, 2, rope_base=1e4)
    assert sum(p.numel() for p in rope.parameters()) == sum(p.numel() for p in plain.parameters())
    assert set(rope.state_dict()) == set(plain.state_dict())           # inv_freq is not persistent
    x = torch.randn(1, 4, 16)
    assert not torch.allclose(rope(x), plain(x))
    x1 = torch.randn(1, 1, 16)                                         # one position: p = 0, no rotation
    torch.testing.assert_close(rope(x1), plain(x1))
