"""Bad-input cases of lmlib.hf_llama (see tests/badinput.py)."""

import dataclasses

import torch

from badinput import Case, Custom, Fn, Float, Int, Str, Tensor, make_test
from lmlib import hf_llama as H
from lmlib.gpt import GPT, GPTConfig
from lmlib.llama import Llama, LlamaConfig

CFG = LlamaConfig(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=2, n_embd=16, ffn_hidden=24)
GCFG = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)
ARCH = Str(choices=H.ARCHS)


def _cfg():
    return dataclasses.replace(CFG)


def _llama():
    torch.manual_seed(0)
    return Llama(_cfg())


def _sd():
    return _llama().state_dict()


def _hf():
    return H.llama_to_hf(_llama())


def _hf_sd():
    return H.llama_state_to_hf(_sd(), 2)


def _without(sd, key):
    sd = dict(sd)
    del sd[key]
    return sd


def _with(sd, key, value):
    sd = dict(sd)
    sd[key] = value
    return sd


def _sd_cases(sd_fn, key, where):
    return [("missing_key", _without(sd_fn(), key)), ("extra_key", _with(sd_fn(), where + ".extra", torch.zeros(1))),
            ("wrong_shape", _with(sd_fn(), key, torch.zeros(3, 3))), ("list", list(sd_fn())),
            ("not_a_tensor", _with(sd_fn(), key, [0.0])), ("none", None)]


def _untied_hf():
    """A tied HF model whose lm_head was replaced by a different matrix (a corrupt tie)."""
    hf = _hf()
    hf.lm_head.weight = torch.nn.Parameter(hf.model.embed_tokens.weight.detach() + 1.0)
    return hf


def _hf_config(**changes):
    c = H.llama_config_to_hf(_cfg())
    return type(c)(**{**c.to_dict(), **changes})


MODELS = [("str", "model"), ("linear", torch.nn.Linear(2, 2)), ("none", None)]
W = torch.randn(4 * 6, 5)   # 4 heads of size 6
ROPE_W = Tensor(finite=False)  # a permutation of rows is defined for any values

SPECS = [
    Fn("lmlib.hf_llama.llama_config_to_hf", valid=lambda: dict(config=_cfg(), arch="llama"),
       args={"config": Custom([("dict", dataclasses.asdict(CFG)), ("gpt_config", GCFG), ("none", None)]),
             "arch": ARCH},
       cases=[Case("qwen2_needs_qkv_bias", lambda: H.llama_config_to_hf(_cfg(), "qwen2"), "qkv_bias"),
              Case("layer_norm", lambda: H.llama_config_to_hf(dataclasses.replace(CFG, norm="layer")), "norm"),
              Case("extra_overrides_mapped_field", lambda: H.llama_config_to_hf(_cfg(), num_hidden_layers=3),
                   "num_hidden_layers")]),
    Fn("lmlib.hf_llama.llama_config_from_hf", valid=lambda: dict(hf_config=H.llama_config_to_hf(_cfg())),
       args={"hf_config": Custom([("ours", CFG), ("dict", {"hidden_size": 16}), ("gpt_config", GCFG),
                                  ("none", None)])},
       cases=[Case("zero_layers", lambda: H.llama_config_from_hf(_hf_config(num_hidden_layers=0)),
                   "num_hidden_layers"),
              Case("gelu", lambda: H.llama_config_from_hf(_hf_config(hidden_act="gelu")), "hidden_act"),
              Case("rope_scaling", lambda: H.llama_config_from_hf(_hf_config(
                  rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0})), "rope_type")]),
    Fn("lmlib.hf_llama.llama_state_to_hf", valid=lambda: dict(sd=_sd(), n_layer=2),
       args={"sd": Custom(_sd_cases(_sd, "blocks.1.self_attn.k_proj.weight", "blocks.1")), "n_layer": Int(min=1)},
       aliases={"sd": ["blocks.1", "wte"]},
       cases=[Case("n_layer_too_small", lambda: H.llama_state_to_hf(_sd(), 1), "blocks.1"),
              Case("n_layer_too_big", lambda: H.llama_state_to_hf(_sd(), 3), "blocks.2"),
              Case("qk_norm_keys", lambda: H.llama_state_to_hf(Llama(dataclasses.replace(CFG, qk_norm=True))
                                                               .state_dict(), 2), "q_norm"),
              Case("bias_in_one_layer_only", lambda: H.llama_state_to_hf(
                  _with(_sd(), "blocks.1.self_attn.q_proj.bias", torch.zeros(16)), 2), "blocks.1.self_attn.q_proj.bias"),
              Case("v_proj_wrong_rows", lambda: H.llama_state_to_hf(
                  _with(_sd(), "blocks.0.self_attn.v_proj.weight", torch.zeros(12, 16)), 2), "v_proj")]),
    Fn("lmlib.hf_llama.llama_state_from_hf", valid=lambda: dict(sd=_hf_sd(), n_layer=2),
       args={"sd": Custom(_sd_cases(_hf_sd, "model.layers.1.mlp.up_proj.weight", "model.layers.1")),
             "n_layer": Int(min=1)},
       aliases={"sd": ["model.layers.1", "embed_tokens"]},
       cases=[Case("n_layer_too_small", lambda: H.llama_state_from_hf(_hf_sd(), 1), "model.layers.1"),
              Case("n_layer_too_big", lambda: H.llama_state_from_hf(_hf_sd(), 3), "model.layers.2"),
              Case("lm_head_wrong_shape", lambda: H.llama_state_from_hf(
                  _with(_hf_sd(), "lm_head.weight", torch.zeros(10, 16)), 2), "lm_head")]),
    Fn("lmlib.hf_llama.llama_to_hf", valid=lambda: dict(model=_llama(), arch="llama"),
       args={"model": Custom(MODELS + [("gpt", GPT(GCFG))]), "arch": ARCH},
       cases=[Case("mistral_has_no_bias", lambda: H.llama_to_hf(Llama(dataclasses.replace(CFG, qkv_bias=True)),
                                                                "mistral"), "qkv_bias")]),
    Fn("lmlib.hf_llama.llama_from_hf", valid=lambda: dict(hf_model=_hf()),
       args={"hf_model": Custom(MODELS + [("ours", _llama()), ("hf_config", H.llama_config_to_hf(CFG))])},
       cases=[Case("corrupt_tie", lambda: H.llama_from_hf(_untied_hf()), "lm_head")]),
    Fn("lmlib.hf_llama.rope_interleaved_to_half", valid=lambda: dict(w=W.clone(), n_heads=4),
       args={"w": ROPE_W, "n_heads": Int(min=1)},
       cases=[Case("rows_not_divisible", lambda: H.rope_interleaved_to_half(W, 5), "n_heads"),
              Case("odd_head_size", lambda: H.rope_interleaved_to_half(W, 8), "even")]),
    Fn("lmlib.hf_llama.rope_half_to_interleaved", valid=lambda: dict(w=W.clone(), n_heads=4),
       args={"w": ROPE_W, "n_heads": Int(min=1)},
       cases=[Case("rows_not_divisible", lambda: H.rope_half_to_interleaved(W, 7), "n_heads"),
              Case("odd_head_size", lambda: H.rope_half_to_interleaved(torch.randn(6, 2), 2), "even")]),
    Fn("lmlib.hf_llama.rope_interleaved",
       valid=lambda: dict(x=torch.randn(2, 5, 8), positions=torch.arange(5), base=10000.0),
       # extra leading dimensions are legal: x is (..., T, hs)
       args={"x": Tensor(skip=("extra_dim",)), "positions": Tensor(dtype="int"),
             "base": Float(min=0.0, min_open=True)},
       cases=[Case("odd_hs", lambda: H.rope_interleaved(torch.randn(5, 7), torch.arange(5)), "even"),
              Case("positions_wrong_length", lambda: H.rope_interleaved(torch.randn(5, 8), torch.arange(4)),
                   "positions")]),
]

test_bad_input = make_test(SPECS)
