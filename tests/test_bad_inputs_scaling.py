"""Bad-input cases of lmlib.scaling (see tests/badinput.py)."""

import functools
import math

import torch

from badinput import Case, Custom, Float, Fn, Int, make_test
from lmlib import scaling as S

P = {"E": 1.5, "A": 30.0, "alpha": 0.3, "B": 200.0, "beta": 0.35}
N6 = [1e4, 3e4, 1e5, 1e4, 3e4, 1e5]
D6 = [2e5, 2e5, 2e5, 1e6, 1e6, 1e6]
L6 = [float(S.chinchilla_loss(n, d, P)) for n, d in zip(N6, D6)]

AMOUNT = Custom([("str", "1e5"), ("none", None), ("zero", 0.0), ("negative", -1.0), ("nan", math.nan),
                 ("inf", math.inf), ("bool", True), ("empty", []), ("nan_inside", [1e5, math.nan]),
                 ("zero_inside", [1e5, 0.0]), ("nested", [[1e5]]), ("str_inside", [1e5, "2"]),
                 ("dict", {1: 2}), ("tensor", torch.tensor([1e5, 2e5]))])
RUNS = Custom([("str", "123456"), ("none", None), ("number", 1e5), ("too_few", [1e5, 2e5, 3e5, 4e5]),
               ("nan_inside", [math.nan] + N6[1:]), ("zero_inside", [0.0] + N6[1:]),
               ("negative_inside", [-1.0] + N6[1:]), ("inf_inside", [math.inf] + N6[1:]),
               ("str_inside", ["1"] + N6[1:]), ("bool_inside", [True] + N6[1:]), ("dict", dict(enumerate(N6))),
               ("tensor", torch.tensor(N6))])


def _without(key):
    return {k: v for k, v in P.items() if k != key}


PARAMS = Custom([("none", None), ("list", list(P.values())), ("str", "chinchilla"), ("missing_beta", _without("beta")),
                 ("extra_key", dict(P, C=1.0)), ("negative_alpha", dict(P, alpha=-0.3)),
                 ("zero_beta", dict(P, beta=0.0)),
                 ("zero_A", dict(P, A=0.0)), ("negative_E", dict(P, E=-0.1)), ("nan_B", dict(P, B=math.nan)),
                 ("inf_A", dict(P, A=math.inf)), ("str_value", dict(P, E="1.5")), ("bool_value", dict(P, alpha=True))])
COMPUTE = Custom([("str", "1e15"), ("none", None), ("number", 1e15), ("empty", []), ("zero", [0.0]),
                  ("negative", [1e15, -1e15]), ("nan", [math.nan]), ("inf", [math.inf]), ("str_inside", ["1e15"])])
FIT_ARGS = {"N": RUNS, "D": RUNS, "L": RUNS, "delta": Float(min=0.0, min_open=True), "n_starts": Int(min=1, max=4500)}


@functools.lru_cache(maxsize=1)
def _data():
    from lmlib.pretrained import course_data

    return course_data(0)


def _point(**kw):
    return dict(dict(n_layer=1, n_embd=8, n_head=2, tokens=4 * 8 * 3, lr=3e-3, seed=0, block_size=8, batch_size=4,
                     warmup_frac=0.1, eval_batches=1, data=_data()), **kw)


SPECS = [
    Fn("lmlib.scaling.chinchilla_loss", valid=lambda: dict(N=1e5, D=[1e6, 2e6], params=dict(P)),
       args={"N": AMOUNT, "D": AMOUNT, "params": PARAMS},
       cases=[Case("different_lengths", lambda: S.chinchilla_loss([1e4, 1e5], [1e6, 2e6, 3e6], P), "N and D")]),
    Fn("lmlib.scaling.fit_scaling_law", valid=lambda: dict(N=list(N6), D=list(D6), L=list(L6), delta=1e-3, n_starts=1,
                                                          fixed_E=None),
       args={**FIT_ARGS, "fixed_E": Float(min=0.0, min_open=True, nullable=True)},
       cases=[Case("different_lengths", lambda: S.fit_scaling_law(N6, D6 + [1e6], L6), "N, D and L"),
              Case("fixed_E_above_a_loss", lambda: S.fit_scaling_law(N6, D6, L6, fixed_E=max(L6)), "fixed_E")]),
    Fn("lmlib.scaling.bootstrap_fit",
       valid=lambda: dict(N=list(N6), D=list(D6), L=list(L6), compute=[1e12, 1e14], n_boot=10, seed=0, level=0.9,
                          delta=1e-3, n_starts=1),
       args={**FIT_ARGS, "compute": COMPUTE, "n_boot": Int(min=10), "seed": Int(min=0, max=2**63 - 1),
             "level": Float(min=0.0, max=1.0, min_open=True, max_open=True)},
       cases=[Case("different_lengths", lambda: S.bootstrap_fit(N6, D6, L6[:-1], compute=[1e12]), "N, D and L"),
              # the loss grows with the model: the fit's exponent is negative, there is no optimum
              Case("no_optimum", lambda: S.bootstrap_fit(N6, D6, [2.0, 2.5, 3.0, 1.9, 2.4, 2.9], compute=[1e12],
                                                         n_boot=10, n_starts=1), "exponent")]),
    Fn("lmlib.scaling.compute_optimal", valid=lambda: dict(C=1e15, params=dict(P)),
       args={"C": Float(min=0.0, min_open=True), "params": PARAMS},
       cases=[Case("overflow", lambda: S.compute_optimal(1e300, dict(P, alpha=1e-3, beta=1e-3)), "overflows")]),
    Fn("lmlib.scaling.run_point", valid=_point,
       args={"n_layer": Int(min=1), "n_embd": Int(min=1), "n_head": Int(min=1), "tokens": Int(min=32),
             "lr": Float(min=0.0, min_open=True), "seed": Int(min=0, max=2**63 - 1), "block_size": Int(min=1),
             "batch_size": Int(min=1), "warmup_frac": Float(min=0.0, max=1.0, max_open=True),
             "eval_batches": Int(min=1),
             "data": Custom([("str", "shakespeare"), ("dict", {"train": torch.zeros(10, dtype=torch.long)}),
                             ("tensor", torch.zeros(100, dtype=torch.long))])},
       cases=[Case("heads_do_not_divide_width", lambda: S.run_point(**_point(n_embd=12, n_head=5)), "n_head"),
              Case("tokens_not_whole_batches", lambda: S.run_point(**_point(tokens=100)), "tokens"),
              Case("block_longer_than_data", lambda: S.run_point(**_point(data=_tiny_data(), tokens=4 * 64,
                                                                          block_size=64)), "block_size")]),
]


def _tiny_data():
    from lmlib.pretrained import CourseData

    d = _data()
    return CourseData(d.tokenizer, d.split, d.train[:50], d.val[:50], d.test[:50])


test_bad_input = make_test(SPECS)
