"""The chapter-7 checkers accept right answers and give specific hints for typical wrong ones."""

import torch

from lmlib.exercises import ch07
from lmlib.metrics import confusion_matrix, macro_f1
from lmlib.sft import sft_example


def test_lora_count():
    assert ch07.check_lora_count(6 * 2 * 8 * 512, quiet=True)
    v = ch07.check_lora_count(6 * 8 * 512, quiet=True)
    assert not v and "two projections" in v.message


def test_lora_forward():
    assert ch07.check_lora_forward(lambda x, W, b, A, B, alpha: x @ W.T + b + alpha / A.shape[0] * x @ A.T @ B.T,
                                   quiet=True)
    v = ch07.check_lora_forward(lambda x, W, b, A, B, alpha: x @ W.T + b + x @ A.T @ B.T, quiet=True)
    assert not v and "alpha / r" in v.message
    v = ch07.check_lora_forward(lambda x, W, b, A, B, alpha: x @ W.T + alpha / A.shape[0] * x @ A.T @ B.T,
                                quiet=True)
    assert not v and "bias" in v.message


def test_sft_labels():
    assert ch07.check_sft_labels(lambda p, r: sft_example(p, r, block_size=64), quiet=True)
    v = ch07.check_sft_labels(lambda p, r: ((p + r)[:-1], (p + r)[1:]), quiet=True)
    assert not v and "-100" in v.message
    v = ch07.check_sft_labels(lambda p, r: ((p + r)[:-1], [-100] * len(p) + r[1:]), quiet=True)
    assert not v and "off by one" in v.message


def test_macro_f1():
    def from_cm(cm):
        k = cm.shape[0]
        target = torch.repeat_interleave(torch.arange(k), cm.sum(1))
        pred = torch.cat([torch.repeat_interleave(torch.arange(k), cm[i]) for i in range(k)])
        assert torch.equal(confusion_matrix(pred, target, k), cm)
        return macro_f1(pred, target, k)

    assert ch07.check_macro_f1(from_cm, quiet=True)
    v = ch07.check_macro_f1(lambda cm: (cm.diag().sum() / cm.sum()).item(), quiet=True)
    assert not v and "accuracy" in v.message


def test_placeholders_give_hints_not_errors():
    for check in (ch07.check_lora_forward, ch07.check_sft_labels, ch07.check_macro_f1):
        v = check(lambda *a: None, quiet=True)
        assert not v and "None" in v.message
