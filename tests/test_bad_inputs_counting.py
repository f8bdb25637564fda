"""Bad-input cases of lmlib.counting (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Fn, Int, Str, make_test
from lmlib import counting as C
from lmlib.bert import BertConfig
from lmlib.gpt import GPT, GPTConfig
from lmlib.transformer import TransformerConfig


def _gpt_cfg():
    return GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)


def _bert_cfg():
    return BertConfig(vocab_size=11, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)


def _tr_cfg():
    return TransformerConfig(11, 13, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=16)


def _wrong_configs(right):
    others = [("dict", {"n_layer": 1}), ("gpt", _gpt_cfg()), ("bert", _bert_cfg()), ("transformer", _tr_cfg())]
    return Custom([(label, value) for label, value in others if label != right] + [("none", None)])


def _gpt():
    torch.manual_seed(0)
    return GPT(_gpt_cfg())


def _dims(d_ff=False):
    args = {"d_model": Int(min=1), "bias": Bool()}
    if d_ff:
        args["d_ff"] = Int(min=1)
    return args


SPECS = [
    Fn("lmlib.counting.attention_params", valid=lambda: dict(d_model=8, bias=True), args=_dims()),
    Fn("lmlib.counting.ffn_params", valid=lambda: dict(d_model=8, d_ff=16, bias=True), args=_dims(True)),
    Fn("lmlib.counting.layer_norm_params", valid=lambda: dict(d_model=8, bias=False), args=_dims()),
    Fn("lmlib.counting.gpt_block_params", valid=lambda: dict(n_embd=8, bias=True),
       args={"n_embd": Int(min=1), "bias": Bool()}),
    Fn("lmlib.counting.encoder_layer_params", valid=lambda: dict(d_model=8, d_ff=16, bias=True), args=_dims(True)),
    Fn("lmlib.counting.decoder_layer_params", valid=lambda: dict(d_model=8, d_ff=16, bias=True), args=_dims(True)),
    Fn("lmlib.counting.gpt_params", valid=lambda: dict(config=_gpt_cfg(), non_embedding=True),
       args={"config": _wrong_configs("gpt"), "non_embedding": Bool()}),
    Fn("lmlib.counting.bert_params", valid=lambda: dict(config=_bert_cfg(), pooler=True, mlm_head=True),
       args={"config": _wrong_configs("bert"), "pooler": Bool(), "mlm_head": Bool()}),
    Fn("lmlib.counting.transformer_params", valid=lambda: dict(config=_tr_cfg()),
       args={"config": _wrong_configs("transformer")}),
    Fn("lmlib.counting.count_params", valid=lambda: dict(model=_gpt()),
       args={"model": Custom([("config", _gpt_cfg()), ("list", [torch.zeros(3)]), ("none", None)])}),
    Fn("lmlib.counting.gpt_matmul_params", valid=lambda: dict(config=_gpt_cfg()), args={"config": _wrong_configs("gpt")}),
    Fn("lmlib.counting.gpt_flops_per_token", valid=lambda: dict(config=_gpt_cfg(), seq_len=4, training=True),
       args={"config": _wrong_configs("gpt"), "seq_len": Int(min=1, nullable=True), "training": Bool()}),
    Fn("lmlib.counting.count_matmul_flops",
       valid=lambda: dict(model=_gpt(), backward=True),
       call=lambda model, backward: C.count_matmul_flops(model, torch.tensor([[1, 2]]), torch.tensor([[2, 3]]),
                                                         backward=backward),
       args={"model": Custom([("config", _gpt_cfg()), ("none", None)]), "backward": Bool()},
       cases=[Case("backward_without_loss", lambda: C.count_matmul_flops(_gpt(), torch.tensor([[1, 2]]), backward=True),
                   "loss"),
              Case("bad_model_input", lambda: C.count_matmul_flops(_gpt(), torch.tensor([[1, 99]])), "idx")]),
    Fn("lmlib.counting.MemoryEstimate.gib", valid=lambda: dict(what="training"),
       call=lambda what: C.gpt_memory(_gpt_cfg()).gib(what), args={"what": Str(choices=("weights", "training"))}),
    Fn("lmlib.counting.gpt_memory",
       valid=lambda: dict(config=_gpt_cfg(), dtype=torch.bfloat16, mixed_precision=True),
       args={"config": _wrong_configs("gpt"), "dtype": Custom([("str", "float32"), ("none", None), ("int", 4),
                                                               ("float32_mixed", torch.float32),
                                                               ("int16_mixed", torch.int16)]),
             "mixed_precision": Bool()}),
]

test_bad_input = make_test(SPECS)
