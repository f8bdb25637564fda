"""Bad-input cases of lmlib.benchmarking (see tests/badinput.py)."""

import torch

from badinput import Custom, Device, Fn, Int, make_test


def _work():
    return torch.ones(4) * 2


SPECS = [
    Fn("lmlib.benchmarking.peak_memory", valid=lambda: dict(fn=_work, device=torch.device("cpu")),
       args={"fn": Custom([("not_callable", 3), ("tensor", torch.ones(2)), ("none", None)]), "device": Device()}),
    Fn("lmlib.benchmarking.time_pair", valid=lambda: dict(fns={"a": _work, "b": _work}, device="cpu", repeats=2),
       args={"fns": Custom([("empty", {}), ("list", [_work]), ("not_callable", {"a": 3}), ("none", None)]),
             "device": Device(), "repeats": Int(min=1)}),
]

EXEMPT = {
    "lmlib.benchmarking.track_large_allocations": "takes no arguments: there is nothing a caller can pass wrongly",
}

test_bad_input = make_test(SPECS)
