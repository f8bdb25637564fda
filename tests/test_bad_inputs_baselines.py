"""Bad-input cases of lmlib.baselines (see tests/badinput.py)."""

import torch

from badinput import Case, Custom, Float, Fn, Int, Str, make_test
from lmlib import baselines as B
from lmlib.classification import NGramFeaturizer

TEXTS = ["A good play.", "a bad play", "Good and kind.", "bad and cruel"]
LABELS = [1, 0, 1, 0]
BAD_TEXTS = [("str", "a good play"), ("ints", [1, 2]), ("empty", []), ("none", None), ("bytes", [b"a"]),
             ("mixed", ["a", 3])]
BAD_LABELS = [("wrong_count", [0, 1]), ("floats", [1.0, 0.0, 1.0, 0.0]), ("negative", [1, -1, 1, 0]),
              ("str", "1010"), ("bools", [True, False, True, False]), ("none", None),
              ("float_tensor", torch.tensor([1.0, 0.0, 1.0, 0.0])), ("two_dim", torch.tensor([[1, 0, 1, 0]]))]


def _feat():
    return NGramFeaturizer("word", (1, 1), min_count=1).fit(TEXTS)


def _fitted_rule():
    return B.SurfaceRule().fit(["Alpha beta.", "lower"], [1, 0])


def _fitted_nb():
    return B.NaiveBayes(_feat(), 2).fit(["good", "bad"], [1, 0])


def _rule_state(kw):
    r = kw["rule"]
    return dict(r.table), r.default


def _nb_state(kw):
    nb = kw["nb"]
    return nb.log_prior.clone(), nb.log_likelihood.clone()


SPECS = [
    Fn("lmlib.baselines.surface_cues", valid=lambda: dict(text="Hello."), args={"text": Str()}),
    Fn("lmlib.baselines.SurfaceRule.fit", valid=lambda: dict(rule=_fitted_rule(), texts=list(TEXTS), labels=list(LABELS)),
       call=lambda rule, texts, labels: rule.fit(texts, labels),
       args={"texts": Custom(BAD_TEXTS), "labels": Custom(BAD_LABELS)}, snapshot=_rule_state),
    Fn("lmlib.baselines.SurfaceRule.predict", valid=lambda: dict(texts=["Hello.", "there"]),
       call=lambda texts: _fitted_rule().predict(texts), args={"texts": Custom(BAD_TEXTS)},
       cases=[Case("before_fit", lambda: B.SurfaceRule().predict(["A."]), "fit", error=RuntimeError)]),
    Fn("lmlib.baselines.NaiveBayes", valid=lambda: dict(featurizer=_feat(), num_classes=2, alpha=0.5),
       args={"featurizer": Custom([("unfitted", NGramFeaturizer()), ("str", "word"), ("none", None),
                                   ("dict", {"a": 0})]),
             "num_classes": Int(min=2), "alpha": Float(min=0.0, min_open=True)}),
    Fn("lmlib.baselines.NaiveBayes.fit", valid=lambda: dict(nb=_fitted_nb(), texts=list(TEXTS), labels=list(LABELS)),
       call=lambda nb, texts, labels: nb.fit(texts, labels),
       args={"texts": Custom(BAD_TEXTS), "labels": Custom(BAD_LABELS + [("beyond_num_classes", [0, 1, 2, 0])])},
       snapshot=_nb_state),
    Fn("lmlib.baselines.NaiveBayes.log_scores", valid=lambda: dict(texts=["good play"]),
       call=lambda texts: _fitted_nb().log_scores(texts), args={"texts": Custom(BAD_TEXTS)},
       cases=[Case("before_fit", lambda: B.NaiveBayes(_feat(), 2).log_scores(["a"]), "fit", error=RuntimeError)]),
    Fn("lmlib.baselines.NaiveBayes.predict", valid=lambda: dict(texts=["good play"]),
       call=lambda texts: _fitted_nb().predict(texts), args={"texts": Custom(BAD_TEXTS)}),
    Fn("lmlib.baselines.tune", valid=lambda: dict(fit=lambda s: s, grid=[1, 2], score=lambda m: 0.5),
       args={"fit": Custom([("str", "fit"), ("none", None), ("int", 3)]),
             "grid": Custom([("str", "12"), ("empty", []), ("none", None), ("int", 3), ("unhashable", [[1], [2]]),
                             ("dict", {1: 2})]),
             "score": Custom([("str", "acc"), ("none", None), ("returns_str", lambda m: "high"),
                              ("returns_nan", lambda m: float("nan")), ("returns_none", lambda m: None)])},
       aliases={"score": ["NaN"]}),
    Fn("lmlib.baselines.logistic_regression_baseline",
       valid=lambda: dict(train_texts=list(TEXTS), train_labels=list(LABELS), val_texts=["good", "bad"],
                          val_labels=[1, 0], num_classes=2, kind="word", n_range=(1, 1), weight_decays=(1e-3, 1e-2),
                          max_features=100),
       args={"train_texts": Custom(BAD_TEXTS), "train_labels": Custom(BAD_LABELS),
             "val_texts": Custom(BAD_TEXTS), "val_labels": Custom([("wrong_count", [1]), ("floats", [1.0, 0.0]),
                                                                   ("str", "10"), ("none", None),
                                                                   ("negative", [1, -1])]),
             "num_classes": Int(min=2), "kind": Str(choices=("word", "char")),
             "n_range": Custom([("str", "11"), ("int", 1), ("reversed", (2, 1)), ("zero", (0, 1)), ("none", None),
                                ("floats", (1.0, 1.0))]),
             "weight_decays": Custom([("str", "0.1"), ("empty", []), ("negative", (1e-3, -1.0)),
                                      ("nan", (float("nan"),)), ("strs", ("a",)), ("none", None), ("float", 0.1)]),
             "max_features": Int(min=1)},
       cases=[Case("labels_beyond_num_classes",
                   lambda: B.logistic_regression_baseline(TEXTS, [0, 1, 2, 0], ["good"], [1], 2), "labels")]),
]

EXEMPT = {
    "lmlib.baselines.Tuned": "a result record built only by tune from the settings it tried",
}

test_bad_input = make_test(SPECS)
