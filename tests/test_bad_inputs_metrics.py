"""Bad-input cases of lmlib.metrics (see tests/badinput.py)."""

import torch

from badinput import Case, Custom, Float, Fn, Int, Seq, make_test
from lmlib import metrics as M

IDS = [("float", torch.tensor([0.0, 1.0, 1.0])), ("bool", torch.tensor([True, False, True])),
       ("two_dim", torch.tensor([[0, 1, 1]])), ("str", "abc"), ("int", 3), ("strings", ["a", "b", "c"]),
       ("too_short", torch.tensor([0, 1])), ("none", None)]
RANGE = [("id_out_of_range", torch.tensor([0, 1, 5])), ("negative_id", torch.tensor([0, -1, 1]))]


def _v(**kw):
    return {**dict(pred=torch.tensor([0, 1, 1]), target=torch.tensor([0, 1, 0]), num_classes=2), **kw}


def _spec(name, extra_args=None, **kw):
    args = {"pred": Custom(IDS + RANGE), "target": Custom(IDS + RANGE), "num_classes": Int(min=1)}
    args.update(extra_args or {})
    return Fn(f"lmlib.metrics.{name}", valid=lambda: _v(**kw), args=args,
              cases=[Case("empty", lambda: getattr(M, name)([], [], **({} if name == "accuracy" else
                                                                           {"num_classes": 2})), "zero examples")])


SPECS = [
    Fn("lmlib.metrics.accuracy", valid=lambda: dict(pred=torch.tensor([0, 1, 1]), target=torch.tensor([0, 1, 0])),
       args={"pred": Custom(IDS), "target": Custom(IDS)},
       cases=[Case("empty", lambda: M.accuracy([], []), "zero examples"),
              Case("list_float", lambda: M.accuracy([0.5, 1.0], [0, 1]), "pred")]),
    _spec("confusion_matrix"),
    _spec("precision_recall_f1", {"zero_division": Float(min=0.0, max=1.0)}, zero_division=0.0),
    _spec("macro_f1", {"zero_division": Float(min=0.0, max=1.0)}, zero_division=0.0),
    Fn("lmlib.metrics.classification_report",
       valid=lambda: dict(pred=torch.tensor([0, 1, 1]), target=torch.tensor([0, 1, 0]), class_names=["a", "b"]),
       args={"pred": Custom(IDS + [("id_out_of_range", torch.tensor([0, 1, 5]))]),
             "target": Custom(IDS + [("negative_id", torch.tensor([0, -1, 1]))]),
             "class_names": Seq(nonempty=True)},
       cases=[Case("non_str_name", lambda: M.classification_report([0, 1], [0, 1], ["a", 1]), "class_names"),
              Case("too_few_names", lambda: M.classification_report([0, 2], [0, 1], ["a", "b"]), "pred")]),
]

test_bad_input = make_test(SPECS)
