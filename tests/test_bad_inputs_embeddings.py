"""Bad-input cases of lmlib.embeddings (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Tensor, make_test
from lmlib import embeddings as E

X_BAD = Tensor(finite=False)  # activations are not scanned for NaN


def _tok(idx):
    torch.manual_seed(0)
    return E.TokenEmbedding(10, 4)(idx)


def _sin(x, offset=0):
    return E.SinusoidalPositionalEncoding(4, max_len=8)(x, offset)


def _learned(x, offset=0):
    torch.manual_seed(0)
    return E.LearnedPositionalEmbedding(8, 4)(x, offset)


def _rope(x, offset=0):
    return E.RotaryEmbedding(4)(x, offset)


SPECS = [
    Fn("lmlib.embeddings.TokenEmbedding", valid=lambda: dict(vocab_size=10, d_model=4, scale=True, padding_idx=0),
       args={"vocab_size": Int(min=1), "d_model": Int(min=1), "scale": Bool(), "padding_idx": Int(min=0, nullable=True)},
       cases=[Case("padding_idx_past_vocab", lambda: E.TokenEmbedding(10, 4, padding_idx=10), "padding_idx")]),
    Fn("lmlib.embeddings.TokenEmbedding.forward", valid=lambda: dict(idx=torch.tensor([[1, 2, 9]])), call=_tok,
       args={"idx": Ids(vocab_size=10, skip=("extra_dim",))},  # any shape of ids is valid
       cases=[Case("bool_ids", lambda: _tok(torch.tensor([True])), "idx")]),
    Fn("lmlib.embeddings.sinusoidal_encoding",
       valid=lambda: dict(n_positions=5, d_model=4, base=10000.0, offset=0, dtype=torch.float32),
       args={"n_positions": Int(min=1), "d_model": Int(min=1), "base": Float(min=0.0, min_open=True),
             "offset": Int(min=0), "dtype": Custom([("int_dtype", torch.long), ("str", "float32"), ("none", None)])},
       cases=[Case("odd_d_model", lambda: E.sinusoidal_encoding(4, 5), "even")]),
    Fn("lmlib.embeddings.SinusoidalPositionalEncoding", valid=lambda: dict(d_model=4, max_len=8, base=100.0, dropout=0.1),
       args={"d_model": Int(min=1), "max_len": Int(min=1), "base": Float(min=0.0, min_open=True),
             "dropout": Float(min=0.0, max=1.0, max_open=True)},
       cases=[Case("odd_d_model", lambda: E.SinusoidalPositionalEncoding(5), "even")]),
    Fn("lmlib.embeddings.SinusoidalPositionalEncoding.forward", valid=lambda: dict(x=torch.randn(2, 3, 4), offset=2),
       call=_sin, args={"x": X_BAD, "offset": Int(min=0)},
       cases=[Case("past_max_len", lambda: _sin(torch.randn(2, 3, 4), 6), "max_len"),
              Case("wrong_width", lambda: _sin(torch.randn(2, 3, 6)), "x")]),
    Fn("lmlib.embeddings.LearnedPositionalEmbedding", valid=lambda: dict(max_len=8, d_model=4),
       args={"max_len": Int(min=1), "d_model": Int(min=1)}),
    Fn("lmlib.embeddings.LearnedPositionalEmbedding.forward", valid=lambda: dict(x=torch.randn(2, 3, 4), offset=2),
       call=_learned, args={"x": X_BAD, "offset": Int(min=0)},
       cases=[Case("past_max_len", lambda: _learned(torch.randn(2, 3, 4), 6), "max_len"),
              Case("wrong_width", lambda: _learned(torch.randn(2, 3, 6)), "x"),
              Case("position_past_max_len", lambda: _learned(torch.tensor([0, 8])), "positions"),
              Case("negative_position", lambda: _learned(torch.tensor([-1])), "positions"),
              Case("offset_with_positions", lambda: _learned(torch.arange(3), 1), "offset")]),
    Fn("lmlib.embeddings.RotaryEmbedding", valid=lambda: dict(head_dim=4, base=10000.0),
       args={"head_dim": Int(min=1), "base": Float(min=0.0, min_open=True)},
       cases=[Case("odd_head_dim", lambda: E.RotaryEmbedding(5), "even")]),
    Fn("lmlib.embeddings.RotaryEmbedding.cos_sin", valid=lambda: dict(positions=torch.arange(3)),
       call=lambda positions: E.RotaryEmbedding(4).cos_sin(positions),
       args={"positions": Tensor(dtype="int", skip=("too_few_dims",))},
       cases=[Case("scalar", lambda: E.RotaryEmbedding(4).cos_sin(torch.tensor(3)), "positions")]),
    Fn("lmlib.embeddings.RotaryEmbedding.forward", valid=lambda: dict(x=torch.randn(2, 2, 3, 4), offset=1),
       call=_rope, args={"x": Tensor(finite=False, skip=("extra_dim",)),  # (..., T, head_dim): leading dims free
                         "offset": Int(min=0)},
       cases=[Case("wrong_head_dim", lambda: _rope(torch.randn(2, 3, 6)), "x"),
              Case("positions_wrong_length", lambda: _rope(torch.randn(2, 3, 4), torch.arange(4)), "offset"),
              Case("float_positions", lambda: _rope(torch.randn(2, 3, 4), torch.arange(3.0)), "offset")]),
    Fn("lmlib.embeddings.rotate_half", valid=lambda: dict(x=torch.randn(2, 4)),
       args={"x": Tensor(finite=False, skip=("extra_dim",))},
       cases=[Case("odd_last_dim", lambda: E.rotate_half(torch.randn(2, 5)), "x")]),
]

test_bad_input = make_test(SPECS)
