"""Bad-input cases of lmlib.transformer (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Str, make_test
from lmlib.transformer import Transformer, TransformerConfig

SV, TV, D = 11, 13, 8


def _cfg_kw(**kw):
    return {**dict(src_vocab_size=SV, tgt_vocab_size=TV, d_model=D, n_heads=2, n_encoder_layers=1,
                   n_decoder_layers=1, d_ff=16, dropout=0.0, max_len=6, activation="relu", norm_first=False,
                   share_embeddings=False, tie_output=True, layer_norm_eps=1e-5), **kw}


def _model():
    torch.manual_seed(0)
    return Transformer(TransformerConfig(**_cfg_kw())).eval()


def _src():
    return torch.tensor([[1, 2, 3, 0], [4, 5, 6, 7]])


def _tgt():
    return torch.tensor([[1, 2, 12], [3, 4, 5]])


def _pad(shape):
    m = torch.zeros(shape, dtype=torch.bool)
    m[0, -1] = True
    return m


def _forward(src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None, targets=None):
    return _model()(src, tgt, src_key_padding_mask=src_key_padding_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                    targets=targets)


def _encode(src, src_key_padding_mask=None):
    return _model().encode(src, src_key_padding_mask)


def _decode(tgt, memory, src_key_padding_mask=None, tgt_key_padding_mask=None):
    return _model().decode(tgt, memory, src_key_padding_mask=src_key_padding_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask)


def bad_mask(shape):
    wrong = (shape[0], shape[1] + 1)
    return Custom([("int", torch.zeros(shape, dtype=torch.long)), ("float", torch.zeros(shape)),
                   ("wrong_shape", torch.zeros(wrong, dtype=torch.bool)), ("list", [[False] * shape[1]] * shape[0])])


BAD_TARGETS = Custom([("out_of_range", torch.full((2, 3), TV)), ("negative", torch.full((2, 3), -1)),
                      ("float", torch.zeros(2, 3)), ("wrong_shape", torch.zeros(2, 2, dtype=torch.long)),
                      ("list", [[0] * 3] * 2)])

SPECS = [
    Fn("lmlib.transformer.TransformerConfig", valid=_cfg_kw,
       args={"src_vocab_size": Int(min=1), "tgt_vocab_size": Int(min=1), "d_model": Int(min=1), "n_heads": Int(min=1),
             "n_encoder_layers": Int(min=1), "n_decoder_layers": Int(min=1), "d_ff": Int(min=1),
             "dropout": Float(min=0.0, max=1.0, max_open=True), "max_len": Int(min=1),
             "activation": Str(choices=("relu",)), "norm_first": Bool(), "share_embeddings": Bool(),
             "tie_output": Bool(), "layer_norm_eps": Float(min=0.0, min_open=True)},
       cases=[Case("not_divisible", lambda: TransformerConfig(**_cfg_kw(d_model=10, n_heads=4)), "divisible"),
              Case("odd_d_model", lambda: TransformerConfig(**_cfg_kw(d_model=9, n_heads=3)), "even"),
              Case("share_different_vocabs", lambda: TransformerConfig(**_cfg_kw(share_embeddings=True)),
                   "share_embeddings"),
              Case("negative_eps", lambda: TransformerConfig(**_cfg_kw(layer_norm_eps=-1e-5)), "layer_norm_eps"),
              Case("unknown_activation", lambda: TransformerConfig(**_cfg_kw(activation="swish")), "activation")]),
    Fn("lmlib.transformer.Transformer", valid=lambda: dict(config=TransformerConfig(**_cfg_kw())),
       args={"config": Custom([("dict", _cfg_kw()), ("none", None)])}),
    Fn("lmlib.transformer.Transformer.forward",
       valid=lambda: dict(src=_src(), tgt=_tgt(), src_key_padding_mask=_pad((2, 4)), tgt_key_padding_mask=_pad((2, 3)),
                          targets=torch.tensor([[2, 12, -100], [4, 5, 6]])),
       call=_forward,
       args={"src": Ids(vocab_size=SV), "tgt": Ids(vocab_size=TV), "src_key_padding_mask": bad_mask((2, 4)),
             "tgt_key_padding_mask": bad_mask((2, 3)), "targets": BAD_TARGETS},
       cases=[Case("batch_mismatch", lambda: _forward(_src(), _tgt()[:1]), "batch"),
              Case("src_too_long", lambda: _forward(torch.ones(2, 7, dtype=torch.long), _tgt()), "max_len"),
              Case("empty_tgt", lambda: _forward(_src(), torch.ones(2, 0, dtype=torch.long)), "tgt")]),
    Fn("lmlib.transformer.Transformer.encode", valid=lambda: dict(src=_src(), src_key_padding_mask=_pad((2, 4))),
       call=_encode, args={"src": Ids(vocab_size=SV), "src_key_padding_mask": bad_mask((2, 4))}),
    Fn("lmlib.transformer.Transformer.decode",
       valid=lambda: dict(tgt=_tgt(), memory=torch.randn(2, 4, D), src_key_padding_mask=_pad((2, 4)),
                          tgt_key_padding_mask=_pad((2, 3))),
       call=_decode,
       args={"tgt": Ids(vocab_size=TV),
             "memory": Custom([("wrong_width", torch.randn(2, 4, D + 2)), ("int", torch.ones(2, 4, D, dtype=torch.long)),
                               ("two_dims", torch.randn(4, D)), ("batch", torch.randn(3, 4, D)), ("none", None)]),
             "src_key_padding_mask": bad_mask((2, 4)), "tgt_key_padding_mask": bad_mask((2, 3))}),
]

test_bad_input = make_test(SPECS)
