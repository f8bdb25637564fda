"""Bad-input cases of lmlib.optim (see tests/badinput.py)."""

import torch
from torch import nn

from badinput import Case, Custom, Float, Fn, make_test
from lmlib.optim import AdamW


def _params():
    torch.manual_seed(0)
    return list(nn.Linear(3, 2).parameters())


def _valid():
    return dict(params=_params(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


_leaf = nn.Parameter(torch.ones(2))

SPECS = [
    Fn("lmlib.optim.AdamW", valid=_valid,
       args={"params": Custom([("tensor", nn.Parameter(torch.zeros(2))), ("int", 3), ("str", "ab"), ("none", None),
                               ("empty", []), ("list_of_ints", [1, 2]), ("dict_not_in_list", {"params": _params()}),
                               ("non_leaf", [_leaf * 2])]),
             "lr": Float(min=0.0),
             "betas": Custom([("one", (0.9,)), ("three", (0.9, 0.9, 0.9)), ("str", "ab"), ("above_one", (0.9, 1.0)),
                              ("negative", (-0.1, 0.9)), ("nan", (float("nan"), 0.9)), ("none", None), ("int", 3)]),
             "eps": Float(min=0.0, min_open=True),
             "weight_decay": Float(min=0.0)},
       cases=[
           Case("group_lr", lambda: AdamW([{"params": _params(), "lr": -1.0}]), "lr of parameter group 0"),
           Case("group_betas", lambda: AdamW([{"params": _params()}, {"params": _params(), "betas": (1.0, 0.9)}]),
                "betas of parameter group 1"),
           Case("group_without_params", lambda: AdamW([{"lr": 0.1}]), "'params'"),
           Case("group_empty", lambda: AdamW([{"params": []}]), "params of parameter group 0"),
           Case("group_of_str", lambda: AdamW([{"params": ["w"]}]), "params of parameter group 0"),
       ]),
]

test_bad_input = make_test(SPECS)
