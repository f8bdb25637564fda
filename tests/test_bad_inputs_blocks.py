"""Bad-input cases of lmlib.blocks (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Int, Str, Tensor, make_test
from lmlib.attention import KVCache
from lmlib.blocks import Decoder, DecoderLayer, Encoder, EncoderLayer

D, H = 8, 2


def _layer_args():
    return dict(d_model=D, n_heads=H, d_ff=16, dropout=0.1, attn_dropout=0.0, activation="relu", norm_first=True,
                layer_norm_eps=1e-5, bias=True)


LAYER_CONSTRAINTS = {
    "d_model": Int(min=1), "n_heads": Int(min=1), "d_ff": Int(min=1, nullable=True),
    "dropout": Float(min=0.0, max=1.0, max_open=True),
    "attn_dropout": Float(min=0.0, max=1.0, max_open=True, nullable=True),
    "activation": Str(choices=("relu",)), "norm_first": Bool(), "layer_norm_eps": Float(min=0.0, min_open=True),
    "bias": Bool(),
}


def _x(T=3):
    return torch.randn(2, T, D)


def _enc_layer(x, key_padding_mask=None, attn_mask=None):
    torch.manual_seed(0)
    return EncoderLayer(D, H, 16).eval()(x, key_padding_mask=key_padding_mask, attn_mask=attn_mask)


def _dec_layer(x, memory, is_causal=True, key_padding_mask=None, memory_key_padding_mask=None, kv_cache=None):
    torch.manual_seed(0)
    return DecoderLayer(D, H, 16).eval()(x, memory, is_causal=is_causal, key_padding_mask=key_padding_mask,
                                           memory_key_padding_mask=memory_key_padding_mask, kv_cache=kv_cache)


def _encoder(x, key_padding_mask=None):
    torch.manual_seed(0)
    return Encoder(2, D, H, 16).eval()(x, key_padding_mask=key_padding_mask)


def _decoder(x, memory, key_padding_mask=None, memory_key_padding_mask=None, kv_caches=None):
    torch.manual_seed(0)
    return Decoder(2, D, H, 16).eval()(x, memory, key_padding_mask=key_padding_mask,
                                         memory_key_padding_mask=memory_key_padding_mask, kv_caches=kv_caches)


X_BAD = Tensor(finite=False)  # NaN activations are not scanned (a hot path)
PAD_BAD = [("float", torch.zeros(2, 3)), ("wrong_shape", torch.zeros(2, 4, dtype=torch.bool)),
           ("list", [[False] * 3] * 2)]
MEM_PAD_BAD = [("float", torch.zeros(2, 5)), ("wrong_shape", torch.zeros(2, 3, dtype=torch.bool)),
               ("list", [[False] * 5] * 2)]
MEM_BAD = [("wrong_width", torch.randn(2, 5, D + 1)), ("int", torch.ones(2, 5, D, dtype=torch.long)),
           ("float64", torch.randn(2, 5, D).double()), ("two_dims", torch.randn(5, D)),
           ("batch_mismatch", torch.randn(3, 5, D)), ("list", [[[0.0] * D] * 5] * 2)]

SPECS = [
    Fn("lmlib.blocks.EncoderLayer", valid=_layer_args, args=dict(LAYER_CONSTRAINTS),
       cases=[Case("not_divisible", lambda: EncoderLayer(10, 3), "divisible")]),
    Fn("lmlib.blocks.DecoderLayer", valid=lambda: {**_layer_args(), "cross_attention": True},
       args={**LAYER_CONSTRAINTS, "cross_attention": Bool()},
       cases=[Case("not_divisible", lambda: DecoderLayer(10, 3), "divisible")]),
    Fn("lmlib.blocks.EncoderLayer.forward", valid=lambda: dict(x=_x(), key_padding_mask=None, attn_mask=None),
       call=_enc_layer,
       args={"x": X_BAD, "key_padding_mask": Custom(PAD_BAD),
             "attn_mask": Custom([("int", torch.ones(3, 3, dtype=torch.long)), ("wrong_shape", torch.ones(3, 4) > 0),
                                  ("nan", torch.full((3, 3), float("nan")))])},
       cases=[Case("float64_x", lambda: _enc_layer(_x().double()), "x")]),
    Fn("lmlib.blocks.DecoderLayer.forward",
       valid=lambda: dict(x=_x(), memory=torch.randn(2, 5, D), is_causal=True, key_padding_mask=None,
                          memory_key_padding_mask=None, kv_cache=None),
       call=_dec_layer,
       args={"x": X_BAD, "memory": Custom(MEM_BAD + [("none", None)]), "is_causal": Bool(),
             "key_padding_mask": Custom(PAD_BAD), "memory_key_padding_mask": Custom(MEM_PAD_BAD),
             "kv_cache": Custom([("not_a_cache", []), ("dict", {})])},
       cases=[Case("memory_without_cross_attention",
                   lambda: DecoderLayer(D, H, cross_attention=False)(_x(), torch.randn(2, 5, D)), "memory")]),
    Fn("lmlib.blocks.Encoder", valid=lambda: dict(n_layers=2, d_model=D, n_heads=H, d_ff=16),
       args={"n_layers": Int(min=1), "d_model": Int(min=1), "n_heads": Int(min=1), "d_ff": Int(min=1, nullable=True)},
       cases=[Case("bad_layer_kwarg", lambda: Encoder(1, D, H, activation="swish"), "activation")]),
    Fn("lmlib.blocks.Encoder.forward", valid=lambda: dict(x=_x(), key_padding_mask=None), call=_encoder,
       args={"x": X_BAD, "key_padding_mask": Custom(PAD_BAD)}),
    Fn("lmlib.blocks.Decoder", valid=lambda: dict(n_layers=2, d_model=D, n_heads=H, d_ff=16),
       args={"n_layers": Int(min=1), "d_model": Int(min=1), "n_heads": Int(min=1), "d_ff": Int(min=1, nullable=True)},
       cases=[Case("bad_layer_kwarg", lambda: Decoder(1, D, H, norm_first=1), "norm_first")]),
    Fn("lmlib.blocks.Decoder.forward",
       valid=lambda: dict(x=_x(), memory=torch.randn(2, 5, D), key_padding_mask=None, memory_key_padding_mask=None,
                          kv_caches=None),
       call=_decoder,
       args={"x": X_BAD, "memory": Custom(MEM_BAD + [("none", None)]), "key_padding_mask": Custom(PAD_BAD),
             "memory_key_padding_mask": Custom(MEM_PAD_BAD),
             "kv_caches": Custom([("too_few", [KVCache()]), ("not_caches", [1, 2]), ("str", "ab")])}),
]

test_bad_input = make_test(SPECS)
