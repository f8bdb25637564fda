"""Checkers for the exercises of chapter 7 (fine-tuning)."""

from __future__ import annotations

import torch

from lmlib.exercises import Verdict, check_close, check_function, never_raises

__all__ = ["check_lora_count", "check_lora_forward", "check_sft_labels", "check_macro_f1"]


@never_raises('a number (of trainable parameters)')
def check_lora_count(answer, *, quiet: bool = False) -> Verdict:
    """Trainable parameters of LoRA with rank 8 on q_proj and v_proj of every block of a GPT with
    6 layers and n_embd = 256 (no head)."""
    L, d, r = 6, 256, 8
    expected = L * 2 * r * (d + d)
    return check_close(answer, expected, what="LoRA parameter count", quiet=quiet, hints=[
        (L * r * (d + d), "LoRA goes on two projections per block (q_proj and v_proj)."),
        (L * 2 * r * d, "each adapter has TWO matrices: A is (r, d_in) and B is (d_out, r)."),
        (2 * r * (d + d), "there are 6 blocks."),
        (L * 2 * d * d, "that is the size of the full q and v matrices, not of the low-rank adapters."),
    ])


@never_raises('a function fn(x, W, b, A, B, alpha) returning a float tensor')
def check_lora_forward(fn, *, quiet: bool = False) -> Verdict:
    """``fn(x, W, b, A, B, alpha) -> y``: the LoRA layer's output ``x W^T + b + (alpha/r) x A^T B^T``."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for n, d_in, d_out, r, alpha in ((3, 6, 5, 2, 4.0), (4, 8, 8, 4, 16.0)):
        x = torch.randn(n, d_in, generator=g)
        W = torch.randn(d_out, d_in, generator=g)
        b = torch.randn(d_out, generator=g)
        A = torch.randn(r, d_in, generator=g)
        B = torch.randn(d_out, r, generator=g)
        cases.append(((x, W, b, A, B, alpha), x @ W.T + b + (alpha / r) * (x @ A.T @ B.T)))

    def diagnose(args, got, expected):
        if got is None:
            return "your function returned None; replace the placeholder with your code."
        x, W, b, A, B, alpha = args
        r = A.shape[0]
        got = torch.as_tensor(got)
        if got.shape == expected.shape:
            if torch.allclose(got, x @ W.T + b + (x @ A.T @ B.T), atol=1e-4):
                return "scale the update by alpha / r."
            if torch.allclose(got, x @ W.T + b + alpha * (x @ A.T @ B.T), atol=1e-4):
                return "the scale is alpha / r, not alpha."
            if torch.allclose(got, x @ W.T + (alpha / r) * (x @ A.T @ B.T), atol=1e-4):
                return "keep the base layer's bias b."
        return "y = x W^T + b + (alpha / r) (x A^T) B^T; check the transposes: A is (r, d_in), B is (d_out, r)."

    return check_function(fn, cases, what="LoRA forward", quiet=quiet, diagnose=diagnose,
                          compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
                          and got.is_floating_point() and torch.allclose(got.to(exp.dtype), exp, atol=1e-4))


@never_raises('a function fn(prompt_ids, response_ids) returning (inputs, labels) lists')
def check_sft_labels(fn, *, quiet: bool = False) -> Verdict:
    """``fn(prompt_ids, response_ids) -> (inputs, labels)`` (lists): next-token inputs/targets
    of ``prompt + response`` with the targets that are prompt tokens replaced by -100."""
    cases = []
    for p, r in (([5, 6, 7], [8, 9]), ([1], [2, 3, 4]), ([4, 4, 4, 4], [4])):
        s = p + r
        cases.append(((list(p), list(r)), (s[:-1], [-100] * (len(p) - 1) + r)))

    def diagnose(args, got, expected):
        if got is None:
            return "your function returned None; replace the placeholder with your code."
        p, r = args
        s = p + r
        try:
            inputs, labels = (list(map(int, got[0])), list(map(int, got[1])))
        except Exception:
            return "return two lists: (inputs, labels)."
        if inputs == s:
            return "the inputs are prompt + response without its LAST token (nothing follows the last token)."
        if labels == [-100] * len(p) + r[1:]:
            return "off by one: the first response token is the TARGET of the last prompt position."
        if labels == s[1:]:
            return "mask the targets that are prompt tokens with -100."
        return "inputs = s[:-1], labels = s[1:] with the first len(prompt) - 1 targets set to -100."

    def compare(got, exp):
        try:
            return (isinstance(got, (tuple, list)) and len(got) == 2
                    and list(map(int, got[0])) == exp[0] and list(map(int, got[1])) == exp[1])
        except Exception:  # noqa: BLE001 - not two lists of ints: diagnosed as such
            return False

    return check_function(fn, cases, what="SFT inputs and labels", quiet=quiet, diagnose=diagnose, compare=compare)


def _close_number(got, expected: float) -> bool:
    if got is None or isinstance(got, (str, bytes, bool)):
        return False
    try:
        return abs(float(got) - expected) < 1e-6
    except Exception:  # noqa: BLE001 - not a number: diagnosed as such
        return False


@never_raises('a function fn(cm) returning a float')
def check_macro_f1(fn, *, quiet: bool = False) -> Verdict:
    """``fn(cm) -> float``: macro-F1 from a confusion matrix (rows = true, columns = predicted),
    every class present."""
    cms = [torch.tensor([[5, 1, 0], [2, 3, 1], [0, 0, 8]]), torch.tensor([[50, 0], [9, 1]])]
    cases = []
    for cm in cms:
        c = cm.double()
        tp = c.diag()
        p, r = tp / c.sum(0).clamp(min=1), tp / c.sum(1)
        f1 = torch.where(p + r > 0, 2 * p * r / (p + r).clamp(min=1e-12), torch.zeros_like(p))
        cases.append(((cm,), f1.mean().item()))

    def diagnose(args, got, expected):
        if got is None:
            return "your function returned None; replace the placeholder with your code."
        cm = args[0].double()
        acc = (cm.diag().sum() / cm.sum()).item()
        if abs(float(got) - acc) < 1e-6:
            return "that is accuracy (= micro-F1 here); macro-F1 averages the per-class F1 scores."
        c = cm.T  # rows and columns swapped
        tp = c.diag()
        p, r = tp / c.sum(0), tp / c.sum(1)
        return ("precision_k = TP / column sum (everything predicted as k), recall_k = TP / row sum; "
                "F1_k = 2 P R / (P + R), then the plain mean over classes.")

    return check_function(fn, cases, what="macro-F1", quiet=quiet, diagnose=diagnose,
                          compare=_close_number)
