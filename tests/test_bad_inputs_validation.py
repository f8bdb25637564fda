"""Bad-input cases of lmlib.validation itself (the helpers every module uses)."""

import torch

from badinput import Case, Custom, Fn, Int, Seq, Str, Tensor, make_test
from lmlib import validation as V

SPECS = [
    Fn("lmlib.validation.check_int", valid=lambda: dict(name="n", value=3, min=1),
       args={"value": Int(min=1, skip=("none",))},
       aliases={"value": ["n"]}, cases=[
           Case("tensor_float", lambda: V.check_int("n", torch.tensor(1.0)), "n"),
           Case("none", lambda: V.check_int("n", None), "n")]),
    Fn("lmlib.validation.check_float", valid=lambda: dict(name="p", value=0.5, min=0.0, max=1.0),
       args={"value": Custom([("nan", float("nan")), ("inf", float("inf")), ("str", "0.5"), ("bool", True),
                              ("below", -0.1), ("above", 1.1), ("none", None)])},
       aliases={"value": ["p"]}),
    Fn("lmlib.validation.check_bool", valid=lambda: dict(name="flag", value=True),
       args={"value": Custom([("int", 1), ("str", "true"), ("none", None)])}, aliases={"value": ["flag"]}),
    Fn("lmlib.validation.check_str", valid=lambda: dict(name="s", value="x", nonempty=True),
       args={"value": Custom([("int", 1), ("empty", ""), ("none", None)])}, aliases={"value": ["s"]}),
    Fn("lmlib.validation.check_choice", valid=lambda: dict(name="mode", value="a", choices=("a", "b")),
       args={"value": Custom([("unknown", "c"), ("none", None)])}, aliases={"value": ["mode"]},
       cases=[Case("bool_for_int", lambda: V.check_choice("k", True, (1, 2)), "k")]),
    Fn("lmlib.validation.check_sequence", valid=lambda: dict(name="xs", value=["a"], of=str, nonempty=True),
       args={"value": Seq(nonempty=True)}, aliases={"value": ["xs"]},
       cases=[Case("wrong_item", lambda: V.check_sequence("xs", ["a", 1], of=str), "xs[1]"),
              Case("bool_item", lambda: V.check_sequence("xs", [1, True], of=int), "xs[1]")]),
    Fn("lmlib.validation.check_tensor",
       valid=lambda: dict(name="x", x=torch.zeros(2, 3), dims=2, dtype="float", sizes={-1: 3}),
       args={"x": Tensor(finite=False)}, aliases={"x": ["x"]},
       cases=[Case("size", lambda: V.check_tensor("x", torch.zeros(2, 4), sizes={-1: 3}), "x"),
              Case("missing_dim", lambda: V.check_tensor("x", torch.zeros(2), sizes={-2: 3}), "x"),
              Case("empty", lambda: V.check_tensor("x", torch.zeros(0), nonempty=True), "x")]),
    Fn("lmlib.validation.check_finite", valid=lambda: dict(name="x", x=torch.zeros(3)),
       args={"x": Custom([("nan", torch.tensor([0.0, float("nan")])), ("inf", torch.tensor([float("inf")])),
                          ("str", "0"), ("float_nan", float("nan")), ("none", None)])}, aliases={"x": ["x"]},
       cases=[Case("posinf_with_neg_allowed",
                   lambda: V.check_finite("s", torch.tensor([float("inf")]), allow_neg_inf=True), "s")]),
    Fn("lmlib.validation.check_ids", valid=lambda: dict(name="ids", ids=torch.tensor([0, 4]), vocab_size=5),
       args={"ids": Custom([("float", torch.tensor([0.0])), ("big", torch.tensor([5])),
                            ("neg", torch.tensor([-1])), ("list", [0]), ("none", None)])},
       aliases={"ids": ["ids"]}),
    Fn("lmlib.validation.check_mask", valid=lambda: dict(name="m", mask=torch.ones(2, 3, dtype=torch.long), shape=(2, 3)),
       args={"mask": Custom([("float", torch.ones(2, 3)), ("shape", torch.ones(3, 2, dtype=torch.long)),
                             ("values", torch.full((2, 3), 2)), ("none", None)])}, aliases={"mask": ["m"]}),
    Fn("lmlib.validation.check_path", valid=lambda: dict(name="path", value="model.safetensors"),
       args={"value": Custom([("int", 3), ("bool", True), ("empty", ""), ("none", None), ("list", ["a"])])},
       aliases={"value": ["path"]}),
    Fn("lmlib.validation.check_module", valid=lambda: dict(name="model", value=torch.nn.Linear(2, 2)),
       args={"value": Custom([("dict", {}), ("tensor", torch.zeros(2)), ("none", None)])},
       aliases={"value": ["model"]}),
    Fn("lmlib.validation.check_tensor_dict", valid=lambda: dict(name="state", value={"w": torch.zeros(2)}),
       args={"value": Custom([("list", [torch.zeros(2)]), ("int_key", {1: torch.zeros(2)}),
                              ("array_value", {"w": [0.0]}), ("none", None)])},
       aliases={"value": ["state"]}),
    Fn("lmlib.validation.check_device", valid=lambda: dict(name="device", device="cpu"),
       args={"device": Custom([("gpu", "gpu"), ("int", 3), ("none", None), ("tpu", "xla")])}),
]

test_bad_input = make_test(SPECS)
