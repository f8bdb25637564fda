"""Bad-input cases of lmlib.hf (see tests/badinput.py)."""

import dataclasses

import torch

from badinput import Bool, Case, Custom, Fn, Int, Str, make_test
from lmlib import hf
from lmlib.bert import BERT, BertConfig, BertForMaskedLM
from lmlib.gpt import GPT, GPTConfig

GCFG = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
BCFG = BertConfig(vocab_size=13, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                  max_position_embeddings=10)


def _gpt():
    torch.manual_seed(0)
    return GPT(GPCFG_COPY())


def GPCFG_COPY():
    return dataclasses.replace(GCFG)


def _bert():
    torch.manual_seed(0)
    return BERT(dataclasses.replace(BCFG))


def _gpt_sd():
    return _gpt().state_dict()


def _hf_gpt_sd():
    return hf.gpt_state_to_hf(_gpt_sd(), 2)


def _bert_sd():
    return _bert().state_dict()


def _hf_bert_sd():
    return hf.bert_state_to_hf(_bert_sd(), 2)


def _without(sd, key):
    sd = dict(sd)
    del sd[key]
    return sd


def _with(sd, key, value):
    sd = dict(sd)
    sd[key] = value
    return sd


MODELS = [("str", "model"), ("linear", torch.nn.Linear(2, 2)), ("none", None)]
N_LAYER = Int(min=1)


def _sd_cases(sd_fn, key, where):
    return [("missing_key", _without(sd_fn(), key)), ("extra_key", _with(sd_fn(), where + ".extra", torch.zeros(1))),
            ("wrong_shape", _with(sd_fn(), key, torch.zeros(3, 3))), ("list", list(sd_fn())),
            ("not_a_tensor", _with(sd_fn(), key, [0.0])), ("none", None)]


SPECS = [
    Fn("lmlib.hf.gpt_state_to_hf", valid=lambda: dict(sd=_gpt_sd(), n_layer=2),
       args={"sd": Custom(_sd_cases(_gpt_sd, "blocks.1.self_attn.q_proj.weight", "blocks.1")), "n_layer": N_LAYER},
       aliases={"sd": ["blocks.1", "wte"]},
       cases=[Case("n_layer_too_small", lambda: hf.gpt_state_to_hf(_gpt_sd(), 1), "blocks.1"),
              Case("n_layer_too_big", lambda: hf.gpt_state_to_hf(_gpt_sd(), 3), "blocks.2"),
              Case("n_layer_zero", lambda: hf.gpt_state_to_hf(_gpt_sd(), 0), "n_layer")]),
    Fn("lmlib.hf.gpt_state_from_hf", valid=lambda: dict(sd=_hf_gpt_sd(), n_layer=2),
       args={"sd": Custom(_sd_cases(_hf_gpt_sd, "transformer.h.1.attn.c_attn.weight", "transformer.h.1")),
             "n_layer": N_LAYER},
       aliases={"sd": ["transformer.h.1", "wte"]},
       cases=[Case("n_layer_too_small", lambda: hf.gpt_state_from_hf(_hf_gpt_sd(), 1), "transformer.h.1"),
              Case("untied_head", lambda: hf.gpt_state_from_hf(_with(_hf_gpt_sd(), "lm_head.weight",
                                                                     torch.zeros(11, 8)), 2), "lm_head")]),
    Fn("lmlib.hf.gpt_config_to_hf", valid=lambda: dict(config=GPCFG_COPY()),
       args={"config": Custom([("dict", dataclasses.asdict(GCFG)), ("bert_config", BCFG), ("none", None)])},
       cases=[Case("no_bias", lambda: hf.gpt_config_to_hf(dataclasses.replace(GCFG, bias=False)), "bias")]),
    Fn("lmlib.hf.gpt_config_from_hf", valid=lambda: dict(hf_config=hf.gpt_config_to_hf(GCFG)),
       args={"hf_config": Custom([("ours", GCFG), ("dict", {"n_layer": 2}), ("none", None)])},
       cases=[Case("zero_layers", lambda: hf.gpt_config_from_hf(hf.gpt_config_to_hf(GCFG, n_layer=0)), "n_layer"),
              Case("activation", lambda: hf.gpt_config_from_hf(hf.gpt_config_to_hf(GCFG, activation_function="relu")),
                   "activation")]),
    Fn("lmlib.hf.gpt_to_hf", valid=lambda: dict(model=_gpt()), args={"model": Custom(MODELS + [("bert", _bert())])}),
    Fn("lmlib.hf.gpt_from_hf", valid=lambda: dict(hf_model=hf.gpt_to_hf(_gpt())),
       args={"hf_model": Custom(MODELS + [("ours", _gpt())])}),
    Fn("lmlib.hf.bert_state_to_hf",
       valid=lambda: dict(sd=_bert_sd(), n_layer=2, pooler=True, mlm=False, our_prefix="", hf_prefix=""),
       args={"sd": Custom(_sd_cases(_bert_sd, "layers.1.ffn.fc_in.weight", "layers.1")), "n_layer": N_LAYER,
             "pooler": Bool(), "mlm": Bool(), "our_prefix": Str(), "hf_prefix": Str()},
       aliases={"sd": ["layers.1", "word_embeddings"]},
       cases=[Case("n_layer_too_small", lambda: hf.bert_state_to_hf(_bert_sd(), 1), "layers.1"),
              Case("mlm_keys_missing", lambda: hf.bert_state_to_hf(_bert_sd(), 2, mlm=True), "mlm_head")]),
    Fn("lmlib.hf.bert_state_from_hf",
       valid=lambda: dict(sd=_hf_bert_sd(), n_layer=2, pooler=True, mlm=False, our_prefix="", hf_prefix=""),
       args={"sd": Custom(_sd_cases(_hf_bert_sd, "encoder.layer.1.output.dense.weight", "encoder.layer.1")),
             "n_layer": N_LAYER, "pooler": Bool(), "mlm": Bool(), "our_prefix": Str(), "hf_prefix": Str()},
       aliases={"sd": ["encoder.layer.1", "word_embeddings"]},
       cases=[Case("n_layer_too_big", lambda: hf.bert_state_from_hf(_hf_bert_sd(), 3), "encoder.layer.2")]),
    Fn("lmlib.hf.bert_config_to_hf", valid=lambda: dict(config=dataclasses.replace(BCFG)),
       args={"config": Custom([("gpt_config", GCFG), ("dict", {"hidden_size": 8}), ("none", None)])}),
    Fn("lmlib.hf.bert_config_from_hf", valid=lambda: dict(hf_config=hf.bert_config_to_hf(BCFG)),
       args={"hf_config": Custom([("ours", BCFG), ("gpt2_config", hf.gpt_config_to_hf(GCFG)), ("none", None)])},
       cases=[Case("zero_layers", lambda: hf.bert_config_from_hf(hf.bert_config_to_hf(BCFG, num_hidden_layers=0)),
                   "num_hidden_layers")]),
    Fn("lmlib.hf.bert_to_hf", valid=lambda: dict(model=_bert()), args={"model": Custom(MODELS + [("gpt", _gpt())])}),
    Fn("lmlib.hf.bert_from_hf", valid=lambda: dict(hf_model=hf.bert_to_hf(_bert())),
       args={"hf_model": Custom(MODELS + [("ours", _bert())])},
       cases=[Case("mlm_roundtrip_ok_but_ours_rejected",
                   lambda: hf.bert_from_hf(BertForMaskedLM(dataclasses.replace(BCFG))), "hf_model")]),
]

test_bad_input = make_test(SPECS)
