"""Bad-input cases of lmlib.normalization (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Int, Tensor, make_test
from lmlib import normalization as N


def _ln(x):
    return N.LayerNorm(4)(x)


def _rms(x):
    return N.RMSNorm(4)(x)


def _x():
    return torch.randn(2, 3, 4)


BAD_PARAM = [("wrong_size", torch.ones(5)), ("two_dims", torch.ones(1, 4)), ("int", torch.ones(4, dtype=torch.long)),
             ("list", [1.0] * 4)]

SPECS = [
    Fn("lmlib.normalization.LayerNorm", valid=lambda: dict(dim=4, eps=1e-5, bias=True),
       args={"dim": Int(min=1), "eps": Float(min=0.0, min_open=True), "bias": Bool()}),
    Fn("lmlib.normalization.LayerNorm.forward", valid=lambda: dict(x=_x()), call=_ln,
       args={"x": Tensor(finite=False, skip=("extra_dim",))},  # (..., dim): any leading shape
       cases=[Case("wrong_width", lambda: _ln(torch.randn(2, 5)), "x"),
              Case("float64", lambda: _ln(torch.randn(2, 4).double()), "x")]),
    Fn("lmlib.normalization.RMSNorm", valid=lambda: dict(dim=4, eps=1e-6),
       args={"dim": Int(min=1), "eps": Float(min=0.0, min_open=True)}),
    Fn("lmlib.normalization.RMSNorm.forward", valid=lambda: dict(x=_x()), call=_rms,
       args={"x": Tensor(finite=False, skip=("extra_dim",))},
       cases=[Case("wrong_width", lambda: _rms(torch.randn(2, 5)), "x"),
              Case("float64", lambda: _rms(torch.randn(2, 4).double()), "x")]),
    Fn("lmlib.normalization.layer_norm_reference",
       valid=lambda: dict(x=_x(), weight=torch.ones(4), bias=torch.zeros(4), eps=1e-5),
       args={"x": Tensor(finite=False, skip=("extra_dim",)),
             "weight": Custom(BAD_PARAM), "bias": Custom(BAD_PARAM),
             "eps": Float(min=0.0, min_open=True)},
       cases=[Case("scalar_x", lambda: N.layer_norm_reference(torch.tensor(1.0), None, None), "x")]),
    Fn("lmlib.normalization.rms_norm_reference",
       valid=lambda: dict(x=_x(), weight=torch.ones(4), eps=1e-6),
       args={"x": Tensor(finite=False, skip=("extra_dim",)), "weight": Custom(BAD_PARAM),
             "eps": Float(min=0.0, min_open=True)}),
]

test_bad_input = make_test(SPECS)
