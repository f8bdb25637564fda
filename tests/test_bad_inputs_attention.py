"""Bad-input cases of lmlib.attention (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Device, Float, Fn, Int, Tensor, make_test
from lmlib import attention as A

NAN, INF = float("nan"), float("inf")


def _qkv():
    g = torch.Generator().manual_seed(0)
    return dict(q=torch.randn(2, 3, 4, generator=g), k=torch.randn(2, 5, 4, generator=g),
                v=torch.randn(2, 5, 6, generator=g))


def _float_mask(bad):
    m = torch.zeros(3, 5)
    m[0, 1] = bad
    return m


def _attn_args():
    # leading (batch, head) dimensions broadcast, so an extra leading dimension of 1 is valid
    bcast = ("extra_dim",)
    return {"q": Tensor(finite=False, skip=bcast), "k": Tensor(finite=False, skip=bcast),
            "v": Tensor(finite=False, skip=bcast),
            "attn_mask": Custom([("int_mask", torch.ones(3, 5, dtype=torch.long)),
                                 ("nan_mask", _float_mask(NAN)), ("posinf_mask", _float_mask(INF)),
                                 ("wrong_shape", torch.ones(5, 3, dtype=torch.bool)),
                                 ("one_dim", torch.ones(5, dtype=torch.bool)), ("list", [[True] * 5] * 3)]),
            "is_causal": Bool(), "training": Bool(),
            "dropout_p": Float(min=0.0, max=1.0, max_open=True),
            "scale": Float(min=0.0, min_open=True, nullable=True)}


def _attn_cases(fn):
    q, k, v = _qkv().values()
    return [
        Case("d_k_mismatch", lambda: fn(q, torch.randn(2, 5, 3), v), "d_k"),
        Case("t_k_mismatch", lambda: fn(q, k, torch.randn(2, 4, 6)), "T_k"),
        Case("dtype_mismatch", lambda: fn(q.double(), k, v), "dtype"),
        Case("batch_mismatch", lambda: fn(torch.randn(3, 3, 4), k, v), "broadcast"),
        Case("causal_t_k_lt_t_q", lambda: fn(k, q, torch.randn(2, 3, 6), is_causal=True), "T_k >= T_q"),
    ]


def _mha(**kw):
    torch.manual_seed(0)
    return A.MultiHeadAttention(8, 2, **kw).eval()


def _mha_call(query, key=None, value=None, **kw):
    return _mha()(query, key, value, **kw)


def _mha_valid():
    return dict(query=torch.randn(2, 3, 8), key=None, value=None, attn_mask=None, key_padding_mask=None,
                is_causal=False, kv_cache=None, need_weights=False)


def _cached_call(mask):
    m, cache = _mha(), A.KVCache()
    m(torch.randn(1, 2, 8), is_causal=True, kv_cache=cache)

    def call():
        m(torch.randn(1, 1, 8), attn_mask=mask, kv_cache=cache)

    return call, lambda: (cache.length, cache.k.clone())


def _cache_case(label, mask, match):
    call, snap = _cached_call(mask)
    return Case(label, call, match, snapshot=snap)


def _cache_with(n, d_head=4, heads=2):
    c = A.KVCache(max_length=4)
    c.update(torch.randn(1, heads, n, d_head), torch.randn(1, heads, n, d_head))
    return c


def _kv_update(k_new, v_new, cache=None):
    return (cache or _cache_with(2)).update(k_new, v_new)


_C = _cache_with(2)

SPECS = [
    Fn("lmlib.attention.stable_softmax", valid=lambda: dict(x=torch.tensor([[0.0, -INF, 1.0]]), dim=-1),
       args={"x": Custom([("int", torch.tensor([1, 2])), ("list", [1.0, 2.0]), ("nan", torch.tensor([0.0, NAN])),
                          ("posinf", torch.tensor([0.0, INF])), ("none", None)]),
             "dim": Int(min=-2, max=1)}),
    Fn("lmlib.attention.causal_mask", valid=lambda: dict(t_q=2, t_k=4, device="cpu"),
       args={"t_q": Int(min=1), "t_k": Int(min=1, nullable=True), "device": Device(nullable=True)},
       cases=[Case("t_k_lt_t_q", lambda: A.causal_mask(4, 2), "t_k")]),
    Fn("lmlib.attention.scaled_dot_product_attention", valid=lambda: {**_qkv(), "attn_mask": None, "is_causal": False, "training": False,
                                                             "dropout_p": 0.0, "scale": None},
       args=_attn_args(), cases=_attn_cases(A.scaled_dot_product_attention)),
    Fn("lmlib.attention.fused_attention", valid=lambda: {**_qkv(), "attn_mask": None, "is_causal": False, "training": False,
                                                             "dropout_p": 0.0, "scale": None},
       args=_attn_args(), cases=_attn_cases(A.fused_attention)),
    Fn("lmlib.attention.KVCache", valid=lambda: dict(max_length=4), args={"max_length": Int(min=1, nullable=True)}),
    Fn("lmlib.attention.KVCache.update",
       valid=lambda: dict(k_new=torch.randn(1, 2, 1, 4), v_new=torch.randn(1, 2, 1, 4)),
       call=_kv_update, args={"k_new": Tensor(finite=False), "v_new": Tensor(finite=False)},
       cases=[
           Case("too_long", lambda: _C.update(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)), "max_length",
                snapshot=lambda: (_C.length, _C.k.clone())),
           Case("heads_mismatch", lambda: _C.update(torch.randn(1, 3, 1, 4), torch.randn(1, 3, 1, 4)),
                "do not match", snapshot=lambda: (_C.length, _C.k.clone())),
           Case("k_v_disagree", lambda: A.KVCache().update(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 2, 4)),
                "disagree"),
           Case("dtype_vs_cache", lambda: _C.update(torch.randn(1, 2, 1, 4).double(), torch.randn(1, 2, 1, 4).double()),
                "dtype", snapshot=lambda: (_C.length, _C.k.clone())),
           Case("k_v_dtypes", lambda: A.KVCache().update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4).double()),
                "dtype"),
       ]),
    Fn("lmlib.attention.attention_param_count", valid=lambda: dict(d_model=8, n_heads=2, bias=True),
       args={"d_model": Int(min=1), "n_heads": Int(min=1), "bias": Bool()},
       cases=[Case("not_divisible", lambda: A.attention_param_count(10, 3), "divisible")]),
    Fn("lmlib.attention.MultiHeadAttention",
       valid=lambda: dict(d_model=8, n_heads=2, dropout=0.1, bias=True, use_fused=True, rope_base=100.0),
       args={"d_model": Int(min=1), "n_heads": Int(min=1), "dropout": Float(min=0.0, max=1.0, max_open=True),
             "bias": Bool(), "use_fused": Bool(), "rope_base": Float(min=0.0, min_open=True, nullable=True)},
       cases=[Case("not_divisible", lambda: A.MultiHeadAttention(10, 3), "divisible"),
              Case("rope_odd_head_size", lambda: A.MultiHeadAttention(6, 2, rope_base=1e4), "even head size")]),
    Fn("lmlib.attention.MultiHeadAttention.forward", valid=_mha_valid, call=_mha_call,
       args={"query": Tensor(finite=False, skip=("too_few_dims",)),
             "key": Custom([("wrong_width", torch.randn(2, 5, 6)), ("int", torch.ones(2, 5, 8, dtype=torch.long)),
                            ("float64", torch.randn(2, 5, 8).double()), ("two_dims", torch.randn(5, 8)),
                            ("list", [[0.0] * 8] * 5)]),
             "value": Custom([("without_key", torch.randn(2, 3, 8))]),
             "attn_mask": Custom([("int_mask", torch.ones(3, 3, dtype=torch.long)),
                                  ("nan_mask", torch.tensor([[0.0, NAN, 0.0]] * 3)),
                                  ("posinf_mask", torch.tensor([[0.0, INF, 0.0]] * 3)),
                                  ("wrong_shape", torch.ones(3, 4, dtype=torch.bool)),
                                  ("one_dim", torch.ones(3, dtype=torch.bool)), ("list", [[True] * 3] * 3)]),
             "key_padding_mask": Custom([("float", torch.zeros(2, 3)), ("wrong_shape", torch.zeros(2, 4, dtype=torch.bool)),
                                         ("list", [[False] * 3] * 2)]),
             "is_causal": Bool(), "need_weights": Bool(),
             "kv_cache": Custom([("not_a_cache", [None, None]), ("dict", {})])},
       cases=[
           Case("float64_query", lambda: _mha()(torch.randn(2, 3, 8).double()), "query"),
           Case("key_value_length", lambda: _mha()(torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 4, 8)),
                "same batch size and length"),
           Case("batch_mismatch", lambda: _mha()(torch.randn(2, 3, 8), torch.randn(3, 5, 8)), "batch"),
           Case("rope_cross_attention", lambda: _mha(rope_base=1e4)(torch.randn(2, 3, 8), torch.randn(2, 5, 8)),
                "self-attention only"),
           Case("cache_cross_attention", lambda: _mha()(torch.randn(2, 3, 8), torch.randn(2, 5, 8), kv_cache=A.KVCache()),
                "self-attention only"),
           Case("causal_t_k_lt_t_q", lambda: _mha()(torch.randn(2, 6, 8), torch.randn(2, 3, 8), is_causal=True),
                "T_k >= T_q"),
           _cache_case("nan_mask_with_cache", torch.tensor([[0.0, NAN, 0.0]]), "attn_mask"),
           _cache_case("posinf_mask_with_cache", torch.tensor([[0.0, 0.0, INF]]), "attn_mask"),
           _cache_case("mask_shape_with_cache", torch.ones(1, 2, dtype=torch.bool), "attn_mask"),
       ]),
]

test_bad_input = make_test(SPECS)


def test_fully_masked_float_rows_give_zeros_on_both_paths():
    q, k, v = _qkv().values()
    mask = torch.zeros(3, 5)
    mask[1] = -INF
    out_fused = A.fused_attention(q, k, v, attn_mask=mask)
    out_explicit, w = A.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not torch.isnan(out_fused).any() and not torch.isnan(out_explicit).any()
    assert torch.equal(out_fused[:, 1], torch.zeros_like(out_fused[:, 1]))
    assert torch.equal(out_explicit[:, 1], torch.zeros_like(out_explicit[:, 1]))
    torch.testing.assert_close(out_fused, out_explicit)
