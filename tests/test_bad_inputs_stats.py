"""Bad-input cases of lmlib.stats (see tests/badinput.py)."""

import math

import torch

from badinput import Case, Custom, Float, Fn, Int, make_test
from lmlib import stats as S

SCORES = [("str", "0110"), ("int", 3), ("none", None), ("empty", []), ("strs", ["1", "0", "1", "1", "0", "1"]),
          ("nan", [1.0, math.nan, 0.0, 1.0, 0.0, 1.0]), ("inf", [math.inf, 0.0, 1.0, 1.0, 0.0, 1.0]),
          ("two_dim", torch.ones(2, 3)), ("dict", {0: 1}), ("nested", [[1], [0], [1], [1], [0], [1]]),
          ("complex", torch.tensor([1 + 1j, 0j, 0j, 0j, 0j, 0j])), ("none_inside", [1, None, 0, 1, 0, 1])]
NOT_BINARY = [("not_binary", [0, 2, 1, 1, 0, 1]), ("fraction", [0.5, 1, 1, 0, 0, 1])]
A = [1, 0, 1, 1, 0, 1]
B = [0, 0, 1, 0, 1, 1]
PLAYS = ["p", "p", "q", "q", "r", "r"]
KINDS = ["x", "x", "y", "y", "x", "x"]
LABELS = [("wrong_length", ["p", "q"]), ("unhashable", [[1]] * 6), ("str", "ppqqrr"), ("int", 3),
          ("dict", {"p": 1}), ("two_dim_tensor", torch.zeros(6, 2))]
BOOT = {"n_boot": Int(min=100), "seed": Int(), "level": Float(min=0.0, max=1.0, min_open=True, max_open=True)}


def _boot_valid(**kw):
    return dict(groups=list(PLAYS), strata=list(KINDS), n_boot=100, seed=0, level=0.9, **kw)


SPECS = [
    Fn("lmlib.stats.mean_sd", valid=lambda: dict(values=[0.7, 0.72, 0.69]), args={"values": Custom(SCORES)}),
    Fn("lmlib.stats.mcnemar", valid=lambda: dict(correct_a=list(A), correct_b=list(B)),
       args={"correct_a": Custom(SCORES + NOT_BINARY), "correct_b": Custom(SCORES + NOT_BINARY)},
       cases=[Case("different_lengths", lambda: S.mcnemar([1, 0, 1], [1, 0]), "correct_b")]),
    Fn("lmlib.stats.paired_bootstrap", valid=lambda: _boot_valid(score_a=list(A), score_b=list(B)),
       args={"score_a": Custom(SCORES), "score_b": Custom(SCORES), "groups": Custom(LABELS),
             "strata": Custom(LABELS + [("spans_a_group", ["x", "y", "y", "y", "x", "x"])]), **BOOT},
       cases=[Case("different_lengths", lambda: S.paired_bootstrap([1, 0, 1], [1, 0], n_boot=100), "score_b"),
              Case("strata_without_groups_ok_but_bad_length",
                   lambda: S.paired_bootstrap(A, B, strata=["x"], n_boot=100), "strata")]),
    Fn("lmlib.stats.bootstrap_mean", valid=lambda: _boot_valid(score=list(A)),
       args={"score": Custom(SCORES), "groups": Custom(LABELS),
             "strata": Custom(LABELS + [("spans_a_group", ["x", "y", "y", "y", "x", "x"])]), **BOOT}),
    Fn("lmlib.stats.student_t_quantile", valid=lambda: dict(p=0.975, df=2),
       args={"p": Float(min=0.5, max=1.0, max_open=True), "df": Int(min=1)}),
    Fn("lmlib.stats.paired_t_interval", valid=lambda: dict(a=[2.0, 2.1, 1.9], b=[2.2, 2.2, 2.0], level=0.95),
       args={"a": Custom(SCORES), "b": Custom(SCORES),
             "level": Float(min=0.0, max=1.0, min_open=True, max_open=True)},
       cases=[Case("different_lengths", lambda: S.paired_t_interval([1.0, 2.0, 3.0], [1.0, 2.0]), "b"),
              Case("one_pair", lambda: S.paired_t_interval([1.0], [2.0]), "a")]),
]

EXEMPT = {
    "lmlib.stats.McNemar": "a frozen result record built only by mcnemar from checked counts",
    "lmlib.stats.Interval": "a frozen result record built only by paired_bootstrap/bootstrap_mean from checked values",
}

test_bad_input = make_test(SPECS)
