"""Bad-input cases of lmlib.attention_only (see tests/badinput.py)."""

import torch

from badinput import Case, Custom, Float, Fn, Ids, Int, make_test
from lmlib.attention_only import AttentionOnlyLM

V = 11


def _model(**kw):
    torch.manual_seed(0)
    return AttentionOnlyLM(V, d_model=8, n_heads=2, block_size=6, **kw)


def _ids(B=2, T=5):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))


def _forward(idx, targets=None):
    return _model()(idx, targets)


def _maps(idx):
    return _model(rope_base=100.0).attention_maps(idx)


SPECS = [
    Fn("lmlib.attention_only.AttentionOnlyLM",
       valid=lambda: dict(vocab_size=V, d_model=8, n_heads=2, n_layers=2, block_size=6, rope_base=100.0),
       args={"vocab_size": Int(min=1), "d_model": Int(min=1), "n_heads": Int(min=1), "n_layers": Int(min=1),
             "block_size": Int(min=1), "rope_base": Float(min=0.0, min_open=True, nullable=True)},
       cases=[Case("heads_do_not_divide", lambda: AttentionOnlyLM(V, d_model=10, n_heads=3), "divisible"),
              Case("rope_odd_head_size", lambda: AttentionOnlyLM(V, d_model=6, n_heads=2, rope_base=1e4),
                   "even head size")]),
    Fn("lmlib.attention_only.AttentionOnlyLM.forward", valid=lambda: dict(idx=_ids(), targets=_ids()),
       call=_forward,
       args={"idx": Ids(vocab_size=V),
             "targets": Custom([("float", _ids().float()), ("id_out_of_range", torch.full((2, 5), V)),
                                ("wrong_shape", _ids(2, 4)), ("list", _ids().tolist())])},
       cases=[Case("longer_than_block", lambda: _forward(_ids(2, 7)), "block_size"),
              Case("empty_sequence", lambda: _forward(_ids(2, 0)), "idx"),
              Case("one_dim", lambda: _forward(_ids()[0]), "idx")]),
    Fn("lmlib.attention_only.AttentionOnlyLM.attention_maps", valid=lambda: dict(idx=_ids()), call=_maps,
       args={"idx": Ids(vocab_size=V)},
       cases=[Case("longer_than_block", lambda: _maps(_ids(1, 7)), "block_size")]),
]

test_bad_input = make_test(SPECS)
