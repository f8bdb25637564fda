"""Bad-input cases of lmlib.feedforward (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Float, Fn, Int, Str, Tensor, make_test
from lmlib.feedforward import FeedForward, SwiGLU, swiglu_hidden


def _ffn_call(x):
    torch.manual_seed(0)
    return FeedForward(8, 16)(x)


def _swiglu_call(x):
    torch.manual_seed(0)
    return SwiGLU(8, 12)(x)


SPECS = [
    Fn("lmlib.feedforward.gelu_erf", valid=lambda: dict(x=torch.randn(3, 4)),
       args={"x": Tensor(finite=False, skip=("extra_dim", "too_few_dims"))}),  # any shape is valid
    Fn("lmlib.feedforward.gelu_tanh", valid=lambda: dict(x=torch.randn(3, 4)),
       args={"x": Tensor(finite=False, skip=("extra_dim", "too_few_dims"))}),
    Fn("lmlib.feedforward.get_activation", valid=lambda: dict(name="relu"),
       args={"name": Str(choices=("relu",))}, aliases={"name": ["activation"]}),
    Fn("lmlib.feedforward.FeedForward",
       valid=lambda: dict(d_model=8, d_ff=16, activation="gelu_tanh", dropout=0.1, bias=True),
       args={"d_model": Int(min=1), "d_ff": Int(min=1), "activation": Str(choices=("gelu_tanh",)),
             "dropout": Float(min=0.0, max=1.0, max_open=True), "bias": Bool()}),
    Fn("lmlib.feedforward.FeedForward.forward", valid=lambda: dict(x=torch.randn(2, 3, 8)), call=_ffn_call,
       # any leading shape (..., d_model) is valid; NaN activations are not scanned (a hot path)
       args={"x": Tensor(finite=False, skip=("extra_dim",))},
       cases=[Case("wrong_width", lambda: _ffn_call(torch.randn(2, 3, 7)), "x"),
              Case("float64_vs_float32", lambda: _ffn_call(torch.randn(2, 3, 8).double()), "x"),
              Case("scalar", lambda: _ffn_call(torch.tensor(1.0)), "x")]),
    Fn("lmlib.feedforward.SwiGLU", valid=lambda: dict(d_model=8, hidden=12, dropout=0.1, bias=True),
       args={"d_model": Int(min=1), "hidden": Int(min=1), "dropout": Float(min=0.0, max=1.0, max_open=True),
             "bias": Bool()}),
    Fn("lmlib.feedforward.SwiGLU.forward", valid=lambda: dict(x=torch.randn(2, 3, 8)), call=_swiglu_call,
       # any leading shape (..., d_model) is valid; NaN activations are not scanned (a hot path)
       args={"x": Tensor(finite=False, skip=("extra_dim",))},
       cases=[Case("wrong_width", lambda: _swiglu_call(torch.randn(2, 3, 7)), "x"),
              Case("float64_vs_float32", lambda: _swiglu_call(torch.randn(2, 3, 8).double()), "x"),
              Case("scalar", lambda: _swiglu_call(torch.tensor(1.0)), "x")]),
    Fn("lmlib.feedforward.swiglu_hidden", valid=lambda: dict(d_model=16, d_ff=40, multiple_of=8),
       call=lambda d_model, d_ff, multiple_of: swiglu_hidden(d_model, d_ff, multiple_of=multiple_of),
       args={"d_model": Int(min=1), "d_ff": Int(min=1, nullable=True), "multiple_of": Int(min=1)}),
]

test_bad_input = make_test(SPECS)
