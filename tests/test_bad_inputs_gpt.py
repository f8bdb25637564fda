"""Bad-input cases of lmlib.gpt (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Str, make_test
from lmlib.attention import KVCache
from lmlib.gpt import GPT, GPTConfig

V = 13


def _cfg(**kw):
    return {**dict(vocab_size=V, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0, bias=True,
                   layer_norm_eps=1e-5), **kw}


def _model():
    torch.manual_seed(0)
    return GPT(GPTConfig(**_cfg())).eval()


def _forward(idx, targets=None, kv_caches=None, model=None):
    return (model or _model())(idx, targets, kv_caches=kv_caches)


def _fwd_valid():
    m = _model()
    return dict(idx=torch.tensor([[1, 2, 3], [4, 5, 6]]), targets=torch.tensor([[2, 3, -100], [5, 6, 7]]),
                kv_caches=m.new_kv_caches(), model=m)


def _cached():
    m = _model()
    caches = m.new_kv_caches()
    m(torch.tensor([[1, 2, 3]]), kv_caches=caches)
    return m, caches


def _cache_case(label, idx, match):
    m, caches = _cached()
    return Case(label, lambda: m(idx, kv_caches=caches), match,
                snapshot=lambda: [(c.length, None if c.k is None else c.k.clone()) for c in caches])


def _uneven_caches():
    m, caches = _cached()
    caches[1].reset()
    return lambda: m(torch.tensor([[1]]), kv_caches=caches)


SPECS = [
    Fn("lmlib.gpt.GPTConfig", valid=_cfg,
       args={"vocab_size": Int(min=1), "block_size": Int(min=1), "n_layer": Int(min=1), "n_head": Int(min=1),
             "n_embd": Int(min=1), "dropout": Float(min=0.0, max=1.0, max_open=True), "bias": Bool(),
             "layer_norm_eps": Float(min=0.0, min_open=True)},
       cases=[Case("not_divisible", lambda: GPTConfig(**_cfg(n_embd=10, n_head=3)), "divisible")]),
    Fn("lmlib.gpt.GPTConfig.gpt2", valid=lambda: dict(size="small"), args={"size": Str(choices=("small",))},
       cases=[Case("bad_override", lambda: GPTConfig.gpt2("small", n_layer=0), "n_layer")]),
    Fn("lmlib.gpt.GPT", valid=lambda: dict(config=GPTConfig(**_cfg())),
       args={"config": Custom([("dict", _cfg()), ("none", None)])}),
    Fn("lmlib.gpt.GPT.num_params", valid=lambda: dict(non_embedding=True),
       call=lambda non_embedding: _model().num_params(non_embedding), args={"non_embedding": Bool()}),
    Fn("lmlib.gpt.GPT.forward", valid=_fwd_valid, call=_forward,
       args={"idx": Ids(vocab_size=V), "targets": Custom([
                 ("out_of_vocab", torch.tensor([[2, 3, V], [5, 6, 7]])), ("negative", torch.tensor([[2, 3, -1], [5, 6, 7]])),
                 ("float", torch.zeros(2, 3)), ("int32", torch.zeros(2, 3, dtype=torch.int32)),
                 ("wrong_shape", torch.zeros(2, 2, dtype=torch.long)), ("list", [[1, 2, 3]] * 2)]),
             "kv_caches": Custom([("too_few", [KVCache()]), ("not_caches", [None, None]), ("str", "ab")])},
       cases=[
           Case("empty", lambda: _model()(torch.zeros(1, 0, dtype=torch.long)), "idx"),
           Case("uint8_ids", lambda: _model()(torch.ones(1, 3, dtype=torch.uint8)), "idx"),
           Case("too_long", lambda: _model()(torch.zeros(1, 9, dtype=torch.long)), "block_size"),
           _cache_case("cache_overflow", torch.zeros(1, 6, dtype=torch.long), "block_size"),
           _cache_case("cache_bad_id", torch.tensor([[V]]), "idx"),
           _cache_case("cache_batch_mismatch", torch.zeros(2, 1, dtype=torch.long), "do not match"),
           Case("caches_of_different_lengths", _uneven_caches(), "kv_caches"),
       ]),
    Fn("lmlib.gpt.GPT.hidden_states", valid=lambda: dict(idx=torch.tensor([[1, 2, 3], [4, 5, 6]])),
       call=lambda idx: _model().hidden_states(idx),
       args={"idx": Ids(vocab_size=V)},
       cases=[Case("empty", lambda: _model().hidden_states(torch.zeros(1, 0, dtype=torch.long)), "idx"),
              Case("float_ids", lambda: _model().hidden_states(torch.ones(1, 3)), "idx"),
              Case("too_long", lambda: _model().hidden_states(torch.zeros(1, 9, dtype=torch.long)), "block_size")]),
]

test_bad_input = make_test(SPECS)
