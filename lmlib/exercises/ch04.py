"""Checkers for the exercises of Chapter 4 (Transformer layers and the three architectures).

- :func:`check_gpt_param_count` -- a function giving the parameter count of a GPT from its shapes.
- :func:`check_split_c_attn` -- GPT-2's fused ``c_attn`` Conv1D weight split into three nn.Linear weights.
- :func:`check_warmup_lr` -- a learning-rate schedule with linear warm-up and linear decay.
- :func:`check_attention_crossover` -- the context length at which attention's weight-free FLOPs
  equal those of a block's weight matrices.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from lmlib.exercises import Verdict, check_close, check_function, correct, describe, hint, never_raises

__all__ = ["check_gpt_param_count", "check_split_c_attn", "check_warmup_lr", "check_attention_crossover",
           "GPT2_SMALL_PARAMS", "GPT2_SMALL_WIDTH"]

GPT2_SMALL_PARAMS = 124_439_808
#: n_embd of GPT-2 small, the C of :func:`check_attention_crossover`
GPT2_SMALL_WIDTH = 768


# ---------------------------------------------------------------------------------------------
# Exercise: parameter count of a GPT
# ---------------------------------------------------------------------------------------------

def _gpt_count(V: int, P: int, L: int, C: int) -> int:
    return V * C + P * C + L * (12 * C * C + 13 * C) + 2 * C


def _same_int(got: Any, expected: int) -> bool:
    try:
        return got is not None and not isinstance(got, (str, bytes)) and int(got) == expected
    except Exception:  # noqa: BLE001 - not a number at all: diagnosed as such
        return False


_COUNT_CASES = [(50257, 1024, 12, 768), (65, 256, 6, 384), (100, 10, 1, 4), (50257, 1024, 24, 1024)]


@never_raises('a function fn(vocab_size, block_size, n_layer, n_embd) returning an int')
def check_gpt_param_count(fn: Callable[[int, int, int, int], int] | None, *, quiet: bool = False) -> Verdict:
    """``fn(vocab_size, block_size, n_layer, n_embd) -> int`` for a GPT with biases and tied embeddings."""

    def diagnose(args, got, expected):
        V, P, L, C = args
        if got is None:
            return "your function returns None: replace it with the formula."
        try:
            got = int(got)
        except (TypeError, ValueError):
            return "return an int (the number of parameters)."
        d = got - expected
        if d == V * C:
            return "you counted the output matrix (lm_head) separately; it is tied to the token embedding."
        if d == -P * C:
            return "you left out the learned position embeddings (block_size × n_embd)."
        if d == -L * 4 * C - 2 * C:
            return "you left out the LayerNorms (each has a weight AND a bias of n_embd numbers; 2 per block + 1 final)."
        if d == -2 * C:
            return "you left out the final LayerNorm (ln_f) after the last block."
        if d == -L * 9 * C:
            return "you left out the biases of the linear layers (4C in attention, 4C + C in the FFN)."
        if d == -L * 4 * C * C:
            return "the FFN has TWO matrices of C × 4C each (8C² in total), plus 4C² in attention."
        return f"for vocab_size={V}, block_size={P}, n_layer={L}, n_embd={C} you returned {got:,}; count " \
               "embeddings, then one block (attention 4C²+4C, FFN 8C²+5C, two LayerNorms), then ln_f."

    cases = [(args, _gpt_count(*args)) for args in _COUNT_CASES]
    return check_function(fn, cases, what="gpt_param_count", compare=_same_int,
                          diagnose=diagnose, quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: split GPT-2's c_attn
# ---------------------------------------------------------------------------------------------

@never_raises('a function fn(c_attn_weight) returning a tuple of three (C, C) tensors')
def check_split_c_attn(fn: Callable[[torch.Tensor], tuple] | None, *, quiet: bool = False) -> Verdict:
    """``fn(c_attn_weight (C, 3C)) -> (Wq, Wk, Wv)``, each (C, C) in nn.Linear's (out, in) layout."""
    if fn is None:
        return hint("split_c_attn: define your function and pass it to the checker.", quiet=quiet)
    C = 6
    g = torch.Generator().manual_seed(4)
    W = torch.randn(C, 3 * C, generator=g)
    expected = [W[:, i * C:(i + 1) * C].t() for i in range(3)]
    try:
        got = fn(W.clone())
    except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
        return hint(f"split_c_attn raised {type(exc).__name__}: {exc}", quiet=quiet)
    try:
        got = [torch.as_tensor(t) for t in got]
    except Exception:  # noqa: BLE001 - not an iterable of tensors
        return hint("return a tuple of three tensors (Wq, Wk, Wv).", quiet=quiet)
    if len(got) != 3:
        return hint(f"return three tensors (Wq, Wk, Wv), got {len(got)}.", quiet=quiet)
    if any(t.shape != (C, C) for t in got):
        return hint(f"each weight must be (C, C) = ({C}, {C}); got {[tuple(t.shape) for t in got]}. c_attn is "
                    "(C, 3C): split dim 1 (the 3C outputs) into three blocks of C columns.", quiet=quiet)
    if not all(t.is_floating_point() for t in got):
        return hint(f"return floating-point tensors (slices of the weight), got dtypes {[t.dtype for t in got]}.",
                    quiet=quiet)
    got = [t.to(W.dtype) for t in got]
    if all(torch.allclose(a, b) for a, b in zip(got, expected)):
        return correct("a Conv1D weight is (in, out): split the OUTPUT columns, then transpose.", quiet=quiet)
    if all(torch.allclose(a.t(), b) for a, b in zip(got, expected)):
        return hint("the right blocks, but not transposed: Conv1D stores (in, out), nn.Linear stores (out, in).",
                    quiet=quiet)
    mixed = list(W.reshape(3, C, C))  # a reshape mixes columns of different outputs
    if all(torch.allclose(a, b) or torch.allclose(a, b.t()) for a, b in zip(got, mixed)):
        return hint("a reshape of (C, 3C) into (3, C, C) mixes queries, keys and values: slice the columns "
                    "[:, 0:C], [:, C:2C], [:, 2C:3C] instead.", quiet=quiet)
    if {tuple(map(float, t.flatten()[:3])) for t in got} == {tuple(map(float, t.flatten()[:3])) for t in expected}:
        return hint("the pieces are right but in the wrong order: c_attn's columns are [queries | keys | values].",
                    quiet=quiet)
    return hint("compare your Wq with c_attn_weight[:, :C]; x @ c_attn_weight[:, :C] must equal x @ Wq.T.",
                quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: a warm-up learning-rate schedule
# ---------------------------------------------------------------------------------------------

def _warmup_right(step: int, peak: float, W: int, N: int) -> float:
    if step < W:
        return peak * (step + 1) / W
    return peak * (N - step) / (N - W)


#: typical wrong schedules, each with its diagnosis (tried in this order)
_WARMUP_MISTAKES: list[tuple[Callable[[int, float, int, int], float], str]] = [
    (lambda s, p, W, N: p * s / W if s < W else p * (N - s) / (N - W),
     "off by one in the warm-up: your step 0 has learning rate 0, so the first update does nothing; "
     "step 0 should get peak_lr / warmup_steps and step warmup_steps - 1 the full peak_lr."),
    (lambda s, p, W, N: p * (s + 1) / W if s < W else p,
     "there is no decay: after the warm-up the rate must fall linearly, to reach 0 at step total_steps."),
    (lambda s, p, W, N: p * s / W if s < W else p,
     "two things: step 0 gets 0 (it should get peak_lr / warmup_steps), and there is no decay after the warm-up."),
    (lambda s, p, W, N: p * (N - s) / (N - W) if s >= W else p,
     "the warm-up starts at peak_lr: the point of a warm-up is to start near 0 and rise to peak_lr."),
    (lambda s, p, W, N: p * (N - s) / N,
     "that decays from step 0 without any warm-up: rise linearly over the first warmup_steps steps first."),
    (lambda s, p, W, N: p * (s + 1) / W if s < W else p * (N - 1 - s) / (N - 1 - W),
     "off by one in the decay: your last step (total_steps - 1) gets 0, a wasted step; the rate should reach "
     "0 one step later, at step total_steps."),
    (lambda s, p, W, N: p * (s + 1) / W if s < W else p * (N - s) / N,
     "the decay must start from peak_lr at step warmup_steps: divide by the length of the decay "
     "(total_steps - warmup_steps), not by total_steps."),
]

#: (peak_lr, warmup_steps, total_steps) of the test cases; the last has no warm-up at all
_WARMUP_CASES = [(1e-3, 10, 100), (0.3, 4, 12), (2.0, 1, 5), (0.5, 0, 6)]


def _schedule(fn, peak, W, N) -> list[float]:
    return [fn(s, peak, W, N) for s in range(N)]


def _close_lists(a: list, b: list) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12) for x, y in zip(a, b))


@never_raises("a function fn(step, peak_lr, warmup_steps, total_steps) returning a number")
def check_warmup_lr(fn: Callable[[int, float, int, int], float] | None, *, quiet: bool = False) -> Verdict:
    """``fn(step, peak_lr, warmup_steps, total_steps) -> lr`` for steps ``0 .. total_steps - 1``:
    linear warm-up (step 0 at ``peak_lr / warmup_steps``, step ``warmup_steps - 1`` at ``peak_lr``),
    then linear decay that would reach 0 at step ``total_steps``; ``warmup_steps = 0``: no warm-up."""
    if fn is None:
        return hint("warmup_lr: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"warmup_lr: expected a function, got {describe(fn)}.", quiet=quiet)
    for peak, W, N in _WARMUP_CASES:
        try:
            got = _schedule(fn, peak, W, N)
        except ZeroDivisionError:
            if W == 0:
                return hint("warmup_lr divides by zero when warmup_steps = 0: with no warm-up, every step is "
                            "in the decay phase.", quiet=quiet)
            return hint(f"warmup_lr raised ZeroDivisionError for peak_lr={peak}, warmup_steps={W}, "
                        f"total_steps={N}.", quiet=quiet)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            return hint(f"warmup_lr raised {type(exc).__name__}: {exc} (peak_lr={peak}, warmup_steps={W}, "
                        f"total_steps={N}).", quiet=quiet)
        bad = next((v for v in got if not _is_real(v)), "ok")
        if bad != "ok":
            return hint(f"warmup_lr must return a number (the learning rate), got {describe(bad)}.", quiet=quiet)
        got = [float(v) for v in got]
        want = _schedule(_warmup_right, peak, W, N)
        if _close_lists(got, want):
            continue
        if W > 0:   # the mistakes are told apart on a case with a warm-up
            for wrong, message in _WARMUP_MISTAKES:
                try:
                    if _close_lists(got, _schedule(wrong, peak, W, N)):
                        return hint(message, quiet=quiet)
                except ZeroDivisionError:
                    pass
        first = next(s for s in range(N) if not math.isclose(got[s], want[s], rel_tol=1e-6, abs_tol=1e-12))
        return hint(f"for peak_lr={peak}, warmup_steps={W}, total_steps={N}, step {first} should get "
                    f"{want[first]:.6g}, yours gives {got[first]:.6g}.", quiet=quiet)
    return correct("linear warm-up from peak_lr / warmup_steps to peak_lr, then linear decay towards 0.",
                   quiet=quiet)


def _is_real(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.numel() == 1 and v.dtype != torch.bool and not v.is_complex() and bool(torch.isfinite(v))
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------------------------
# Exercise: where attention's context term overtakes the weights
# ---------------------------------------------------------------------------------------------

@never_raises("a number (a context length T)")
def check_attention_crossover(answer: Any, *, quiet: bool = False) -> Verdict:
    """The context length ``T`` at which the attention scores and weighted sum of one GPT block
    cost as many FLOPs per token as all of the block's weight matrices, for GPT-2 small (C = 768)."""
    C = GPT2_SMALL_WIDTH
    return check_close(answer, 6 * C, what="crossover context length T", rel_tol=1e-3, hints=[
        (3 * C, "a weight costs 2 FLOPs per token (a multiply and an add), just like each term of q·k and of the "
                "weighted sum: count both sides in FLOPs."),
        (12 * C, "the context-dependent work is two products, the scores q·k AND the weighted sum of the values: "
                 "2·T·C FLOPs each."),
        (2 * C, "a block has 12·C² weights: 4·C² in attention's projections and 8·C² in the FFN; count them all."),
        (C, "count the FFN's 8·C² weights as well as attention's 4·C², at 2 FLOPs each."),
        (18 * C, "if you count the backward pass, count it on both sides: it triples the attention products too."),
        (1024, "1024 is GPT-2's context length; the question is where the two costs would be equal."),
    ], default_hint="per token and block: the weights cost 2·12·C² FLOPs, the scores and the weighted sum "
                    "2·T·C each; solve for T.", quiet=quiet)
