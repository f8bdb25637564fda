"""Classification metrics: accuracy, per-class precision/recall/F1, macro-F1, confusion matrix.

Conventions: ``pred`` and ``target`` are 1-D integer tensors (or lists) of class ids in
``0..num_classes-1``, of the same length ``N``. The confusion matrix has the *true* class on
the rows and the *predicted* class on the columns: ``cm[i, j]`` counts examples of class ``i``
predicted as ``j``, so its diagonal holds the correct predictions.

Macro-F1 averages the per-class F1 scores with equal weight, so a classifier that ignores a
small class is punished even when its accuracy looks good. A class with no true and no predicted
example has an undefined F1; it is left out of the average (``zero_division`` decides what a
class with predictions but no true examples, or the reverse, scores: 0 by default).
"""

from __future__ import annotations

from typing import Sequence

import torch

from lmlib.validation import check_float, check_int, check_sequence, check_str, check_tensor

__all__ = ["accuracy", "confusion_matrix", "precision_recall_f1", "macro_f1", "classification_report"]


def _as_ids(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = check_sequence(name, x)
        try:
            x = torch.as_tensor(x) if x else torch.zeros(0, dtype=torch.long)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a list or tensor of int class ids, got {x[:5]!r}") from None
    if x.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one class id per example), got shape {tuple(x.shape)}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class ids, got dtype {x.dtype} "
                        "(take .argmax(-1) of logits first)")
    return x.long().cpu()


def _check(pred, target, num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_ids(pred, "pred"), _as_ids(target, "target")
    if p.numel() != t.numel():
        raise ValueError(f"pred has {p.numel()} entries but target has {t.numel()}")
    if p.numel() == 0:
        raise ValueError("cannot compute a metric on zero examples")
    if num_classes is not None:
        check_int("num_classes", num_classes, min=1)
        for name, x in (("pred", p), ("target", t)):
            if int(x.min()) < 0 or int(x.max()) >= num_classes:
                bad = int(x.min()) if int(x.min()) < 0 else int(x.max())
                raise ValueError(f"{name} contains class id {bad}, outside 0..{num_classes - 1}")
    return p, t


def accuracy(pred, target) -> float:
    """Fraction of examples whose predicted class equals the true class."""
    p, t = _check(pred, target)
    return (p == t).double().mean().item()


def confusion_matrix(pred, target, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` long tensor; rows = true class, columns = predicted."""
    check_int("num_classes", num_classes, min=1, who="confusion_matrix")
    p, t = _check(pred, target, num_classes)
    flat = t * num_classes + p  # one bin per (true, predicted) pair
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def precision_recall_f1(pred, target, num_classes: int, *, zero_division: float = 0.0
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class ``(precision, recall, f1)``, each a float64 tensor of shape ``(num_classes,)``.

    precision_k = TP_k / (TP_k + FP_k), recall_k = TP_k / (TP_k + FN_k),
    F1_k = 2 P_k R_k / (P_k + R_k). A 0/0 ratio becomes ``zero_division``; a class that is
    neither present nor predicted gets NaN (see :func:`macro_f1`).
    """
    check_float("zero_division", zero_division, min=0.0, max=1.0, who="precision_recall_f1")
    cm = confusion_matrix(pred, target, num_classes).double()
    tp = cm.diag()
    predicted = cm.sum(0)  # TP + FP per class (column sums)
    actual = cm.sum(1)     # TP + FN per class (row sums)
    zd = torch.tensor(float(zero_division), dtype=torch.float64)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), zd)
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), zd)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), zd)
    absent = (predicted == 0) & (actual == 0)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    return (torch.where(absent, nan, precision), torch.where(absent, nan, recall),
            torch.where(absent, nan, f1))


def macro_f1(pred, target, num_classes: int, *, zero_division: float = 0.0) -> float:
    """Unweighted mean of the per-class F1 over the classes that occur (as truth or prediction)."""
    _, _, f1 = precision_recall_f1(pred, target, num_classes, zero_division=zero_division)
    present = ~torch.isnan(f1)
    return f1[present].mean().item()


def classification_report(pred, target, class_names: Sequence[str]) -> str:
    """A small text table: per-class precision, recall, F1 and support, then accuracy and macro-F1."""
    class_names = check_sequence("class_names", class_names, of=str, nonempty=True, who="classification_report")
    k = len(class_names)
    p, r, f = precision_recall_f1(pred, target, k)
    support = confusion_matrix(pred, target, k).sum(1)
    width = max(8, max(len(c) for c in class_names))
    lines = [f"{'class':<{width}}  precision  recall      f1  support"]
    for i, name in enumerate(class_names):
        lines.append(f"{name:<{width}}  {p[i].item():9.4f}  {r[i].item():6.4f}  {f[i].item():6.4f}  {int(support[i]):7d}")
    lines.append(f"{'accuracy':<{width}}  {accuracy(pred, target):9.4f}")
    lines.append(f"{'macro-F1':<{width}}  {macro_f1(pred, target, k):9.4f}")
    return "\n".join(lines)
