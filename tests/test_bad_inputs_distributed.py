"""Bad-input cases of lmlib.distributed (see tests/badinput.py)."""

import torch

from badinput import Case, Custom, Device, Fn, Int, Seq, make_test
from lmlib import distributed as D

X, Y = torch.arange(24).view(6, 4), torch.arange(6)

SPECS = [
    Fn("lmlib.distributed.init_from_env", valid=lambda: dict(device="cpu", backend=None),
       args={"device": Device(), "backend": Custom([("unknown", "mpi"), ("int", 1)])},
       cases=[Case("world_size_not_an_int", lambda: _with_env("WORLD_SIZE", "two", D.init_from_env), "WORLD_SIZE")]),
    Fn("lmlib.distributed.shard", valid=lambda: dict(batch=(X, Y), rank=1, world_size=2),
       args={"batch": Custom([("str", "xy"), ("none", None), ("tensor", X), ("no_tensor", (1, 2)),
                              ("ragged", (X, torch.arange(5))), ("indivisible", (X[:5], Y[:5]))]),
             "rank": Int(min=0, max=1), "world_size": Int(min=1)},
       aliases={"batch": ["rows", "world_size", "tensor"]}),
    Fn("lmlib.distributed.all_reduce_sum", valid=lambda: dict(values=[1.0, 2]),
       args={"values": Seq()},
       cases=[Case("not_numbers", lambda: D.all_reduce_sum(["a"]), "values[0]"),
              Case("a_tensor_of_two", lambda: D.all_reduce_sum([torch.ones(2)]), "values[0]")]),
]

EXEMPT = {
    "lmlib.distributed.rank": "takes no argument: the rank of the process group, or 0",
    "lmlib.distributed.world_size": "takes no argument: the size of the process group, or 1",
    "lmlib.distributed.local_rank": "takes no argument; a malformed LOCAL_RANK is covered through init_from_env",
    "lmlib.distributed.barrier": "takes no argument; a no-op without a process group",
    "lmlib.distributed.destroy": "takes no argument; a no-op without a process group",
}


def _with_env(name, value, fn):
    import os

    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return fn()
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


test_bad_input = make_test(SPECS)
