"""Tests for lmlib.metrics against hand computation and brute-force counting."""

import math
import random

import pytest
import torch

from lmlib.metrics import accuracy, classification_report, confusion_matrix, macro_f1, precision_recall_f1


def test_small_hand_example():
    target = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    assert accuracy(pred, target) == pytest.approx(4 / 6)
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    p, r, f = precision_recall_f1(pred, target, 3)
    # class 0: P = 2/2, R = 2/3; class 1: P = 1/2, R = 1/2; class 2: P = 1/2, R = 1/1
    assert p.tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert r.tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    f_hand = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 * 1 / 1.5]
    assert f.tolist() == pytest.approx(f_hand)
    assert macro_f1(pred, target, 3) == pytest.approx(sum(f_hand) / 3)


def test_against_brute_force_random():
    rng = random.Random(0)
    for _ in range(20):
        k = rng.randint(2, 6)
        n = rng.randint(1, 60)
        t = [rng.randrange(k) for _ in range(n)]
        p = [rng.randrange(k) for _ in range(n)]
        cm = confusion_matrix(torch.tensor(p), torch.tensor(t), k)
        for i in range(k):
            for j in range(k):
                assert cm[i, j] == sum(1 for a, b in zip(t, p) if a == i and b == j)
        f1s = []
        for c in range(k):
            tp = sum(1 for a, b in zip(t, p) if a == c and b == c)
            fp = sum(1 for a, b in zip(t, p) if a != c and b == c)
            fn = sum(1 for a, b in zip(t, p) if a == c and b != c)
            if tp + fp + fn == 0:
                continue
            prec = tp / (tp + fp) if tp + fp else 0.0
            rec = tp / (tp + fn) if tp + fn else 0.0
            f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
        assert macro_f1(p, t, k) == pytest.approx(sum(f1s) / len(f1s))
        assert accuracy(p, t) == pytest.approx(sum(a == b for a, b in zip(t, p)) / n)


def test_absent_class_is_left_out():
    p, r, f = precision_recall_f1([0, 1], [0, 1], 3)
    assert math.isnan(f[2].item())
    assert macro_f1([0, 1], [0, 1], 3) == 1.0


def test_errors():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="zero examples"):
        accuracy([], [])
    with pytest.raises(ValueError, match="entries"):
        accuracy([0, 1], [0])
    with pytest.raises(TypeError, match="argmax"):
        accuracy(torch.randn(3), torch.tensor([0, 1, 1]))


def test_report_lists_classes():
    text = classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])
    assert "macro-F1" in text and text.count("\n") == 4


def test_confusion_matrix_plot_labels_counts_and_fractions():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lmlib.plots import confusion_matrix_plot

    cm = torch.tensor([[3, 1], [0, 4]])
    fig = confusion_matrix_plot(cm, ["x", "y"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3\n75%", "1\n25%", "0\n0%", "4\n100%"]
    plt.close(fig)
    with pytest.raises(ValueError):
        confusion_matrix_plot(torch.zeros(2, 3), ["a", "b"])
