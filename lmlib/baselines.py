"""Baselines that a fine-tuned model has to beat, each tuned on validation data.

A model's score means little until it is set beside the best thing that needs no pretraining:

- :class:`SurfaceRule`: two yes/no cues of a text, *starts with a capital letter* and *ends
  with punctuation*, and for each of the four combinations the majority training label. It
  knows nothing of words, and it is the first thing to try on a task built by editing text:
  if it scores well, the task leaks through its surface.
- :class:`NaiveBayes`: multinomial naive Bayes on n-gram counts with add-``alpha`` smoothing,
  ``log p(c | x) = log p(c) + sum_g count(g, x) log p(g | c) + const``, the classic text
  classifier, strong with few labels.
- Logistic regression on word or character n-grams (:mod:`lmlib.classification`), with its
  weight decay chosen on validation by :func:`tune`.

:func:`tune` fits one candidate per setting of a grid, scores each on the validation set, and
returns the best (ties go to the earlier setting), so that no choice ever looks at test data.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from lmlib.classification import NGramFeaturizer, fit_logistic_regression
from lmlib.metrics import accuracy
from lmlib.validation import check_float, check_int, check_sequence, check_str

__all__ = ["surface_cues", "SurfaceRule", "NaiveBayes", "Tuned", "tune", "logistic_regression_baseline"]

_PUNCT = tuple(".,;:!?-'\")]")


def _texts(texts, who: str) -> list[str]:
    return check_sequence("texts", texts, of=str, nonempty=True, who=who)


def _labels(labels, n: int, who: str, name: str = "labels") -> list[int]:
    if isinstance(labels, torch.Tensor):
        labels = labels.tolist()
    labels = check_sequence(name, labels, of=int, who=who)
    if len(labels) != n:
        raise ValueError(f"{who}: {n} texts but {len(labels)} {name}")
    if any(y < 0 for y in labels):
        raise ValueError(f"{who}: {name} must be class ids >= 0, got {min(labels)}")
    return labels


def surface_cues(text: str) -> tuple[bool, bool]:
    """``(starts with a capital letter, ends with punctuation)``, after stripping white space."""
    check_str("text", text, who="surface_cues")
    t = text.strip()
    return (bool(t) and t[0].isupper(), bool(t) and t.endswith(_PUNCT))


class SurfaceRule:
    """The majority training label of each of the four combinations of :func:`surface_cues`
    (an unseen combination gets the overall majority label)."""

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> "SurfaceRule":
        texts = _texts(texts, "SurfaceRule.fit")
        labels = _labels(labels, len(texts), "SurfaceRule.fit")
        by_cell: dict[tuple[bool, bool], Counter] = {}
        for t, y in zip(texts, labels):
            by_cell.setdefault(surface_cues(t), Counter())[y] += 1
        overall = Counter(labels).most_common(1)[0][0]
        self.table = {cell: c.most_common(1)[0][0] for cell, c in by_cell.items()}
        self.default = overall
        return self

    def predict(self, texts: Sequence[str]) -> torch.Tensor:
        if not hasattr(self, "table"):
            raise RuntimeError("SurfaceRule: call fit(texts, labels) first")
        texts = _texts(texts, "SurfaceRule.predict")
        return torch.tensor([self.table.get(surface_cues(t), self.default) for t in texts])


class NaiveBayes:
    """Multinomial naive Bayes over the n-grams of a :class:`NGramFeaturizer`'s vocabulary
    (raw counts, not its normalised features), with add-``alpha`` smoothing."""

    def __init__(self, featurizer: NGramFeaturizer, num_classes: int, *, alpha: float = 1.0) -> None:
        if not isinstance(featurizer, NGramFeaturizer) or featurizer.vocab is None:
            raise TypeError("NaiveBayes: featurizer must be a fitted lmlib.classification.NGramFeaturizer")
        self.featurizer = featurizer
        self.num_classes = check_int("num_classes", num_classes, min=2, who="NaiveBayes")
        self.alpha = check_float("alpha", alpha, min=0.0, min_open=True, who="NaiveBayes")

    def _counts(self, texts: list[str]) -> torch.Tensor:
        """Sparse ``(N, F)`` float64 n-gram counts (most entries are zero)."""
        vocab = self.featurizer.vocab
        rows, cols, vals = [], [], []
        for r, t in enumerate(texts):
            for g, c in Counter(self.featurizer.ngrams(t)).items():
                if g in vocab:
                    rows.append(r), cols.append(vocab[g]), vals.append(float(c))
        idx = torch.tensor([rows, cols], dtype=torch.long).view(2, -1)
        return torch.sparse_coo_tensor(idx, torch.tensor(vals, dtype=torch.float64), (len(texts), len(vocab)),
                                       check_invariants=False).coalesce()

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> "NaiveBayes":
        texts = _texts(texts, "NaiveBayes.fit")
        y = torch.tensor(_labels(labels, len(texts), "NaiveBayes.fit"))
        if int(y.max()) >= self.num_classes:
            raise ValueError(f"NaiveBayes.fit: labels hold class {int(y.max())}, but there are "
                             f"{self.num_classes} classes (0..{self.num_classes - 1})")
        x = self._counts(texts)                                               # (N, F), sparse
        onehot = torch.nn.functional.one_hot(y, self.num_classes).double()    # (N, K)
        counts = torch.sparse.mm(x.t(), onehot).t()                           # (K, F): n-gram counts per class
        self.log_prior = torch.log(torch.bincount(y, minlength=self.num_classes).double().clamp(min=1) / len(y))
        smoothed = counts + self.alpha
        self.log_likelihood = torch.log(smoothed / smoothed.sum(1, keepdim=True))       # log p(g | c)
        return self

    def log_scores(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, K)``: ``log p(c) + sum_g count(g, x) log p(g | c)``."""
        if not hasattr(self, "log_prior"):
            raise RuntimeError("NaiveBayes: call fit(texts, labels) first")
        x = self._counts(_texts(texts, "NaiveBayes.log_scores"))
        return torch.sparse.mm(x, self.log_likelihood.T) + self.log_prior

    def predict(self, texts: Sequence[str]) -> torch.Tensor:
        return self.log_scores(texts).argmax(-1)


@dataclass
class Tuned:
    """The best setting of a grid (chosen on validation), its model, and every setting's score."""

    setting: Any
    model: Any
    val_score: float
    scores: dict


def tune(fit: Callable[[Any], Any], grid: Sequence[Any], score: Callable[[Any], float]) -> Tuned:
    """``fit(setting) -> model`` for every setting of ``grid``; ``score(model) -> float`` on
    validation data (higher is better). Returns the best; ties keep the earlier setting."""
    for name, f in (("fit", fit), ("score", score)):
        if not callable(f):
            raise TypeError(f"tune: {name} must be a function, got {type(f).__name__}")
    grid = check_sequence("grid", grid, nonempty=True, who="tune")
    for setting in grid:                                   # settings key the scores dict
        try:
            hash(setting)
        except TypeError:
            raise TypeError(f"tune: grid settings must be hashable (numbers, str, tuples), "
                            f"got {setting!r:.60}") from None
    best, scores = None, {}
    for setting in grid:
        model = fit(setting)
        s = score(model)
        try:                                               # a float, a 0-d tensor, a NumPy number
            s = float(s)
        except (TypeError, ValueError):
            raise TypeError(f"tune: score(model) must return a number, "
                            f"got {type(s).__name__} {s!r:.60}") from None
        if math.isnan(s):
            raise ValueError(f"tune: the validation score of setting {setting!r} is NaN")
        scores[setting] = s
        if best is None or s > best.val_score:
            best = Tuned(setting, model, s, scores)
    return best


def logistic_regression_baseline(train_texts: Sequence[str], train_labels, val_texts: Sequence[str], val_labels,
                                 num_classes: int, *, kind: str = "word", n_range=(1, 1),
                                 weight_decays: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2),
                                 max_features: int = 20000) -> tuple[NGramFeaturizer, Tuned]:
    """An n-gram featurizer fitted on the training texts and a logistic regression whose
    weight decay is chosen by validation accuracy (:func:`tune`)."""
    _check_lr_baseline_args(train_texts, train_labels, val_texts, val_labels, n_range, weight_decays)
    feat = NGramFeaturizer(kind, tuple(n_range), max_features=max_features).fit(list(train_texts))
    x_tr, x_va = feat.transform(list(train_texts)), feat.transform(list(val_texts))
    y_tr = torch.as_tensor(list(train_labels) if not isinstance(train_labels, torch.Tensor) else train_labels)
    y_va = torch.as_tensor(list(val_labels) if not isinstance(val_labels, torch.Tensor) else val_labels)
    tuned = tune(lambda wd: fit_logistic_regression(x_tr, y_tr, num_classes, weight_decay=wd),
                 weight_decays, lambda m: accuracy(m(x_va)[0].argmax(-1), y_va))
    return feat, tuned


def _check_lr_baseline_args(train_texts, train_labels, val_texts, val_labels, n_range, weight_decays) -> None:
    """The checks of :func:`logistic_regression_baseline` that the featurizer and the fit cannot
    make under the argument's own name (and a str must not become a list of characters)."""
    who = "logistic_regression_baseline"
    tr = check_sequence("train_texts", train_texts, of=str, nonempty=True, who=who)
    va = check_sequence("val_texts", val_texts, of=str, nonempty=True, who=who)
    for name, labels, n in (("train_labels", train_labels, len(tr)), ("val_labels", val_labels, len(va))):
        if callable(getattr(labels, "tolist", None)) and not isinstance(labels, (list, tuple)):
            labels = labels.tolist()                       # a tensor or a NumPy array
        _labels(labels, n, who, name)
    if isinstance(n_range, (str, bytes)) or not isinstance(n_range, (tuple, list)):
        raise TypeError(f"{who}: n_range must be a (lo, hi) pair of ints, got {n_range!r}")
    decays = check_sequence("weight_decays", weight_decays, nonempty=True, who=who)
    for i, wd in enumerate(decays):
        check_float(f"weight_decays[{i}]", wd, min=0.0, who=who)
