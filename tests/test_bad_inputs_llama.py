"""Bad-input cases of lmlib.llama (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Str, Tensor, make_test
from lmlib.attention import KVCache
from lmlib.gpt import GPTConfig
from lmlib.llama import Llama, LlamaBlock, LlamaConfig, matched_ffn_hidden

V = 13


def _cfg(**kw):
    return {**dict(vocab_size=V, block_size=8, n_layer=2, n_head=4, n_embd=16, n_kv_head=2, head_dim=4,
                   ffn_hidden=24, norm="rms", position="rope", ffn="swiglu", rope_base=10000.0, norm_eps=1e-5,
                   tie_embeddings=True, bias=False, qkv_bias=True, qk_norm=True, sliding_window=3, dropout=0.1),
            **kw}


def _model(**kw):
    torch.manual_seed(0)
    return Llama(LlamaConfig(**_cfg(**kw))).eval()


def _cached(B=2, T=3):
    m = _model()
    caches = m.new_kv_caches()
    with torch.no_grad():
        m(torch.randint(0, V, (B, T)), kv_caches=caches)
    return m, caches


def _snap_caches(caches):
    if not isinstance(caches, (list, tuple)) or not all(isinstance(c, KVCache) for c in caches):
        return None
    return [(c.length, None if c.k is None else c.k.clone(), None if c.v is None else c.v.clone()) for c in caches]


def _fwd_valid():
    m, caches = _cached()
    return dict(idx=torch.tensor([[1, 2, 3], [4, 5, 6]]), targets=torch.tensor([[2, 3, -100], [5, 6, 7]]),
                kv_caches=caches, model=m)


def _forward(idx, targets=None, kv_caches=None, model=None):
    return (model or _model())(idx, targets, kv_caches=kv_caches)


def _cache_case(label, idx, match):
    m, caches = _cached()
    return Case(label, lambda: m(idx, kv_caches=caches), match, snapshot=lambda: _snap_caches(caches))


def _uneven_caches():
    m, caches = _cached()
    caches[1].reset()
    return Case("caches_of_different_lengths", lambda: m(torch.tensor([[1], [2]]), kv_caches=caches), "kv_caches",
                snapshot=lambda: _snap_caches(caches))


def _block_valid():
    m, caches = _cached()
    return dict(x=torch.randn(2, 2, 16), kv_cache=caches[0], block=m.blocks[0])


def _block_call(x, kv_cache=None, block=None):
    return (block or _model().blocks[0])(x, kv_cache=kv_cache)


def _block_cache_case(label, x, match):
    m, caches = _cached()
    return Case(label, lambda: m.blocks[0](x, kv_cache=caches[0]), match,
                snapshot=lambda: _snap_caches(caches))


_NON_CONFIGS = [("dict", _cfg()), ("gpt_config", GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8)),
                ("none", None)]

SPECS = [
    Fn("lmlib.llama.matched_ffn_hidden", valid=lambda: dict(n_embd=16, n_head=4, n_kv_head=2, ffn="swiglu", head_dim=4),
       args={"n_embd": Int(min=1), "n_head": Int(min=1), "n_kv_head": Int(min=1, max=4),
             "ffn": Str(choices=("swiglu", "gelu")), "head_dim": Int(min=1, nullable=True)},
       cases=[Case("head_dim_too_large", lambda: matched_ffn_hidden(16, 4, 2, head_dim=100), "head_dim"),
              Case("kv_not_dividing", lambda: matched_ffn_hidden(16, 4, 3), "n_kv_head"),
              Case("n_embd_not_divisible", lambda: matched_ffn_hidden(10, 4, 2), "divisible")]),
    Fn("lmlib.llama.LlamaConfig", valid=_cfg,
       args={**{n: Int(min=1) for n in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")},
             "n_kv_head": Int(min=1, max=4, nullable=True), "head_dim": Int(min=1, nullable=True),
             "ffn_hidden": Int(min=1, nullable=True), "norm": Str(choices=("rms", "layer")),
             "position": Str(choices=("rope", "learned")), "ffn": Str(choices=("swiglu", "gelu")),
             "rope_base": Float(min=0.0, min_open=True), "norm_eps": Float(min=0.0, min_open=True),
             **{n: Bool() for n in ("tie_embeddings", "bias", "qkv_bias", "qk_norm")},
             "sliding_window": Int(min=1, nullable=True), "dropout": Float(min=0.0, max=1.0, max_open=True)},
       cases=[Case("kv_not_dividing", lambda: LlamaConfig(**_cfg(n_kv_head=3)), "n_kv_head"),
              Case("not_divisible", lambda: LlamaConfig(**_cfg(n_embd=18, head_dim=None)), "divisible"),
              Case("odd_head_dim_with_rope", lambda: LlamaConfig(**_cfg(head_dim=5)), "head_dim"),
              Case("default_ffn_too_small", lambda: LlamaConfig(**_cfg(head_dim=64, ffn_hidden=None)), "head_dim")]),
    Fn("lmlib.llama.LlamaConfig.gpt2_like", valid=lambda: dict(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8),
       call=lambda **kw: LlamaConfig.gpt2_like(**kw),
       args={n: Int(min=1) for n in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")},
       cases=[Case("bad_override", lambda: LlamaConfig.gpt2_like(vocab_size=V, block_size=8, n_layer=1, n_head=2,
                                                                 n_embd=8, norm="batch"), "norm"),
              Case("unknown_field", lambda: LlamaConfig.gpt2_like(vocab_size=V, block_size=8, n_layer=1, n_head=2,
                                                                  n_embd=8, n_heads=2), "n_heads")]),
    Fn("lmlib.llama.LlamaConfig.llama3_8b", valid=lambda: dict(n_layer=2),
       call=lambda **kw: LlamaConfig.llama3_8b(**kw), args={"n_layer": Int(min=1)},
       cases=[Case("kv_not_dividing", lambda: LlamaConfig.llama3_8b(n_kv_head=3), "n_kv_head")]),
    Fn("lmlib.llama.LlamaBlock", valid=lambda: dict(c=LlamaConfig(**_cfg())),
       args={"c": Custom(_NON_CONFIGS)}, aliases={"c": ["config"]}),
    Fn("lmlib.llama.LlamaBlock.forward", valid=_block_valid, call=_block_call,
       snapshot=lambda kw: _snap_caches([kw.get("kv_cache")]),
       args={"x": Tensor(finite=False), "kv_cache": Custom([("list", [KVCache()]), ("dict", {})])},
       cases=[_block_cache_case("cache_wrong_width", torch.randn(2, 1, 15), "x"),
              _block_cache_case("cache_batch_mismatch", torch.randn(3, 1, 16), "kv_cache"),
              _block_cache_case("cache_float64", torch.randn(2, 1, 16).double(), "x")]),
    Fn("lmlib.llama.Llama", valid=lambda: dict(config=LlamaConfig(**_cfg())), args={"config": Custom(_NON_CONFIGS)}),
    Fn("lmlib.llama.Llama.num_params", valid=lambda: dict(non_embedding=True),
       call=lambda non_embedding: _model().num_params(non_embedding), args={"non_embedding": Bool()}),
    Fn("lmlib.llama.Llama.forward", valid=_fwd_valid, call=_forward,
       snapshot=lambda kw: _snap_caches(kw.get("kv_caches")),
       args={"idx": Ids(vocab_size=V), "targets": Custom([
                 ("out_of_vocab", torch.tensor([[2, 3, V], [5, 6, 7]])), ("negative", torch.tensor([[2, 3, -1], [5, 6, 7]])),
                 ("float", torch.zeros(2, 3)), ("int32", torch.zeros(2, 3, dtype=torch.int32)),
                 ("wrong_shape", torch.zeros(2, 2, dtype=torch.long)), ("list", [[1, 2, 3]] * 2)]),
             "kv_caches": Custom([("too_few", [KVCache()]), ("not_caches", [None, None]), ("str", "ab")])},
       cases=[
           Case("empty", lambda: _model()(torch.zeros(1, 0, dtype=torch.long)), "idx"),
           Case("uint8_ids", lambda: _model()(torch.ones(1, 3, dtype=torch.uint8)), "idx"),
           Case("too_long", lambda: _model()(torch.zeros(1, 9, dtype=torch.long)), "block_size"),
           Case("too_long_learned", lambda: _model(position="learned")(torch.zeros(1, 9, dtype=torch.long)),
                "block_size"),
           _cache_case("cache_overflow", torch.zeros(2, 6, dtype=torch.long), "block_size"),
           _cache_case("cache_bad_id", torch.tensor([[V], [1]]), "idx"),
           _cache_case("cache_batch_mismatch", torch.zeros(3, 1, dtype=torch.long), "kv_cache"),
           _uneven_caches(),
       ]),
    Fn("lmlib.llama.Llama.hidden_states", valid=lambda: dict(idx=torch.tensor([[1, 2, 3], [4, 5, 6]])),
       call=lambda idx: _model().hidden_states(idx), args={"idx": Ids(vocab_size=V)},
       cases=[Case("empty", lambda: _model().hidden_states(torch.zeros(1, 0, dtype=torch.long)), "idx"),
              Case("float_ids", lambda: _model().hidden_states(torch.ones(1, 3)), "idx"),
              Case("too_long", lambda: _model().hidden_states(torch.zeros(1, 9, dtype=torch.long)), "block_size")]),
    Fn("lmlib.llama.Llama.new_kv_caches", call=lambda: _model().new_kv_caches()),
]

test_bad_input = make_test(SPECS)
