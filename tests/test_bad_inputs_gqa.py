"""Bad-input cases of lmlib.gqa (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Device, Float, Fn, Int, Tensor, make_test
from lmlib.attention import KVCache
from lmlib.gqa import GroupedQueryAttention, sliding_window_mask


def _gqa(**kw):
    torch.manual_seed(0)
    return GroupedQueryAttention(16, 4, 2, **{**dict(sliding_window=3), **kw}).eval()


def _ctor_valid():
    return dict(d_model=16, n_heads=4, n_kv_heads=2, head_dim=4, rope_base=100.0, qkv_bias=True, out_bias=True,
                qk_norm=True, norm_eps=1e-6, sliding_window=3, dropout=0.1)


def _filled_cache(max_length=None, B=2):
    m, cache = _gqa(), KVCache(max_length=max_length)
    with torch.no_grad():
        m(torch.randn(B, 4, 16), kv_cache=cache)
    return m, cache


def _fwd_valid():
    m, cache = _filled_cache(max_length=8)
    return dict(x=torch.randn(2, 3, 16), kv_cache=cache, model=m)


def _fwd(x, kv_cache=None, model=None):
    return (model or _gqa())(x, kv_cache=kv_cache)


def _snap(kw):
    c = kw.get("kv_cache")
    if not isinstance(c, KVCache):
        return None
    return (c.length, None if c.k is None else c.k.clone(), None if c.v is None else c.v.clone())


def _cache_case(label, x, match, *, max_length=None, model=None):
    m, cache = _filled_cache(max_length=max_length)
    m = model or m
    return Case(label, lambda: m(x, kv_cache=cache), match,
                snapshot=lambda: (cache.length, cache.k.clone(), cache.v.clone()))


SPECS = [
    Fn("lmlib.gqa.repeat_kv", valid=lambda: dict(x=torch.randn(1, 2, 3, 4), n_rep=2),
       # any dtype and any values may be repeated; the rank must be 4
       args={"x": Tensor(finite=False, skip=("int_dtype",)), "n_rep": Int(min=1)}),
    Fn("lmlib.gqa.sliding_window_mask", valid=lambda: dict(t_q=2, t_k=4, window=2, device="cpu"),
       call=lambda t_q, t_k, window, device: sliding_window_mask(t_q, t_k, window, device=device),
       args={"t_q": Int(min=1), "t_k": Int(min=1), "window": Int(min=1), "device": Device(nullable=True)},
       cases=[Case("t_k_lt_t_q", lambda: sliding_window_mask(4, 2, 2), "t_k")]),
    Fn("lmlib.gqa.kv_cache_bytes",
       valid=lambda: dict(n_layer=2, n_kv_heads=2, head_dim=4, bytes_per_value=2, tokens=3, batch=1),
       call=lambda n_layer, n_kv_heads, head_dim, **kw: __import__("lmlib.gqa").gqa.kv_cache_bytes(
           n_layer, n_kv_heads, head_dim, **kw),
       args={"n_layer": Int(min=1), "n_kv_heads": Int(min=1), "head_dim": Int(min=1),
             "bytes_per_value": Float(min=0.0, min_open=True), "tokens": Int(min=0), "batch": Int(min=0)}),
    Fn("lmlib.gqa.GroupedQueryAttention", valid=_ctor_valid,
       args={"d_model": Int(min=1), "n_heads": Int(min=1), "n_kv_heads": Int(min=1, max=4, nullable=True),
             "head_dim": Int(min=1, nullable=True), "rope_base": Float(min=0.0, min_open=True, nullable=True),
             "qkv_bias": Bool(), "out_bias": Bool(), "qk_norm": Bool(), "norm_eps": Float(min=0.0, min_open=True),
             "sliding_window": Int(min=1, nullable=True), "dropout": Float(min=0.0, max=1.0, max_open=True)},
       cases=[Case("kv_not_dividing", lambda: GroupedQueryAttention(16, 4, 3), "n_kv_heads"),
              Case("d_model_not_divisible", lambda: GroupedQueryAttention(18, 4, 2), "divisible"),
              Case("odd_head_dim_with_rope", lambda: GroupedQueryAttention(16, 4, 2, head_dim=5), "head_dim"),
              Case("odd_d_head_with_rope", lambda: GroupedQueryAttention(12, 4, 2), "head_dim")]),
    Fn("lmlib.gqa.GroupedQueryAttention.forward", valid=_fwd_valid, call=_fwd, snapshot=_snap,
       args={"x": Tensor(finite=False),
             "kv_cache": Custom([("list", [KVCache()]), ("dict", {}), ("str", "cache")])},
       cases=[
           Case("wrong_width", lambda: _gqa()(torch.randn(2, 3, 15)), "x"),
           Case("float64_x", lambda: _gqa()(torch.randn(2, 3, 16).double()), "x"),
           _cache_case("cache_wrong_width", torch.randn(2, 1, 15), "x"),
           _cache_case("cache_too_long", torch.randn(2, 3, 16), "max_length", max_length=6),
           _cache_case("cache_batch_mismatch", torch.randn(3, 1, 16), "kv_cache"),
           _cache_case("cache_heads_mismatch", torch.randn(2, 1, 16), "KV heads",
                       model=GroupedQueryAttention(16, 4, 4)),
           _cache_case("cache_dtype", torch.randn(2, 1, 16).double(), "dtype",
                       model=GroupedQueryAttention(16, 4, 2).double()),
       ]),
]

test_bad_input = make_test(SPECS)
