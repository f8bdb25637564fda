"""Bad-input cases of lmlib.lora (see tests/badinput.py)."""

import torch
from torch import nn

from badinput import Bool, Case, Custom, Float, Fn, Int, Seq, Tensor, make_test
from lmlib.lora import LoRALinear, inject_lora, mark_only_lora_trainable

MODULE = [("str", "model"), ("dict", {"a": 1}), ("none", None)]


def _net():
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("body", nn.Linear(6, 6))
    net.add_module("head", nn.Linear(6, 2))
    return net


def _state(kwargs):
    m = kwargs.get("model")
    if not isinstance(m, nn.Module):
        return None
    return [(n, p.detach().clone(), p.requires_grad) for n, p in m.named_parameters()] + [
        type(x).__name__ for x in m.modules()]


def _twice():
    net = _net()
    inject_lora(net, ("body",), r=2)
    return net


def _lora_forward(x):
    torch.manual_seed(0)
    return LoRALinear(nn.Linear(6, 4), r=2)(x)


SPECS = [
    Fn("lmlib.lora.LoRALinear", valid=lambda: dict(base=nn.Linear(6, 4), r=2, alpha=4.0, dropout=0.1),
       args={"base": Custom([("conv", nn.Conv1d(2, 2, 1)), ("str", "linear"), ("none", None)]),
             "r": Int(min=1), "alpha": Float(), "dropout": Float(min=0.0, max=1.0, max_open=True)},
       cases=[Case("rank_too_big", lambda: LoRALinear(nn.Linear(6, 4), r=5), "r=5"),
              Case("nested", lambda: LoRALinear(LoRALinear(nn.Linear(6, 4), r=2), r=2), "already")]),
    Fn("lmlib.lora.LoRALinear.forward", valid=lambda: dict(x=torch.randn(3, 6)), call=_lora_forward,
       args={"x": Tensor(finite=False, skip=("extra_dim", "too_few_dims"))},
       cases=[Case("wrong_features", lambda: _lora_forward(torch.randn(3, 5)), "x")]),
    Fn("lmlib.lora.matching_linear_names", valid=lambda: dict(model=_net(), patterns=["body"]),
       args={"model": Custom(MODULE), "patterns": Custom([("int", 3), ("empty", []), ("non_str", ["body", 1]),
                                                          ("empty_pattern", [""]), ("none", None)])}),
    Fn("lmlib.lora.inject_lora",
       valid=lambda: dict(model=_net(), patterns=("body",), r=2, alpha=4.0, dropout=0.0, freeze_base=True),
       args={"model": Custom(MODULE), "patterns": Custom([("int", 3), ("empty", ()), ("non_str", (1,)),
                                                          ("none", None)]),
             "r": Int(min=1), "alpha": Float(), "dropout": Float(min=0.0, max=1.0, max_open=True),
             "freeze_base": Bool()},
       snapshot=_state,
       cases=[Case("twice", lambda: inject_lora(_twice(), ("head",)), "already has LoRA adapters"),
              Case("no_match", lambda: inject_lora(_net(), ("nothing",)), "no nn.Linear matches"),
              Case("rank_too_big_for_one_layer", lambda: inject_lora(_net(), ("body", "head"), r=3), "r=3")]),
    Fn("lmlib.lora.merge_lora", valid=lambda: dict(model=_twice()), args={"model": Custom(MODULE)},
       cases=[Case("no_adapters", lambda: __import__("lmlib.lora").lora.merge_lora(_net()), "no LoRA layers")]),
    Fn("lmlib.lora.lora_parameters", valid=lambda: dict(model=_twice()), args={"model": Custom(MODULE)}),
    Fn("lmlib.lora.mark_only_lora_trainable", valid=lambda: dict(model=_twice(), extra=("head.",)),
       args={"model": Custom(MODULE), "extra": Seq(nullable=False)}, snapshot=_state,
       cases=[Case("non_str_item", lambda: mark_only_lora_trainable(_twice(), extra=["head.", 3]), "extra[1]")]),
    Fn("lmlib.lora.count_parameters", valid=lambda: dict(model=_net(), trainable_only=True),
       args={"model": Custom(MODULE), "trainable_only": Bool()}),
]

test_bad_input = make_test(SPECS)
