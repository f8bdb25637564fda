"""Checkers for the exercises of Chapter 4 (Transformer layers and the three architectures).

- :func:`check_gpt_param_count` -- a function giving the parameter count of a GPT from its shapes.
- :func:`check_split_c_attn` -- GPT-2's fused ``c_attn`` Conv1D weight split into three nn.Linear weights.
- :func:`check_pre_norm_forward` -- the forward pass of a pre-norm encoder layer, from its parts.
- :func:`check_training_flops` -- the 6·N·D estimate of a training run's compute.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from lmlib.exercises import Verdict, check_close, check_function, correct, describe, hint, never_raises

__all__ = ["check_gpt_param_count", "check_split_c_attn", "check_pre_norm_forward", "check_training_flops",
           "GPT2_SMALL_PARAMS", "TRAINING_TOKENS"]

GPT2_SMALL_PARAMS = 124_439_808
#: tokens of the training run in :func:`check_training_flops`
TRAINING_TOKENS = 10_000_000_000


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
# Exercise: pre-norm forward pass
# ---------------------------------------------------------------------------------------------

@never_raises('a function fn(layer, x) returning a tensor shaped like x')
def check_pre_norm_forward(fn: Callable[[Any, torch.Tensor], torch.Tensor] | None, *, quiet: bool = False) -> Verdict:
    """``fn(layer, x) -> y``: the pre-norm forward of an :class:`lmlib.blocks.EncoderLayer` from its parts
    ``layer.norm1, layer.self_attn, layer.norm2, layer.ffn`` (dropout is 0)."""
    from lmlib.blocks import EncoderLayer

    if fn is None:
        return hint("pre_norm_forward: define your function and pass it to the checker.", quiet=quiet)
    torch.manual_seed(0)
    layer = EncoderLayer(8, 2, 16, norm_first=True).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        expected = layer(x)
        try:
            got = fn(layer, x.clone())
        except Exception as exc:  # noqa: BLE001
            return hint(f"pre_norm_forward raised {type(exc).__name__}: {exc}", quiet=quiet)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return hint(f"return a tensor of shape {tuple(expected.shape)} (the same as x).", quiet=quiet)
        if not got.is_floating_point():
            return hint(f"return a floating-point tensor (like x), not {describe(got)}.", quiet=quiet)
        got = got.to(expected.dtype)
        if torch.allclose(got, expected, atol=1e-5):
            return correct("x + sublayer(norm(x)): the residual path stays un-normalised.", quiet=quiet)
        post = layer.norm1(x + layer.self_attn(x))
        post = layer.norm2(post + layer.ffn(post))
        if torch.allclose(got, post, atol=1e-5):
            return hint("that is the POST-norm layer: normalise the sublayer's INPUT, and add its output to the "
                        "un-normalised x.", quiet=quiet)
        h = layer.norm1(x)
        wrong_res = h + layer.self_attn(h)
        wrong_res = layer.norm2(wrong_res) + layer.ffn(layer.norm2(wrong_res))
        if torch.allclose(got, wrong_res, atol=1e-5):
            return hint("the residual must carry x itself (before the norm): x = x + attn(norm1(x)).", quiet=quiet)
        a = x + layer.self_attn(layer.norm1(x))
        if torch.allclose(got, a, atol=1e-5):
            return hint("you stopped after the attention sublayer; add the FFN sublayer the same way.", quiet=quiet)
    return hint("write it as two lines: x = x + attn(norm1(x)); x = x + ffn(norm2(x)).", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: training compute
# ---------------------------------------------------------------------------------------------

@never_raises('a number (of FLOPs)')
def check_training_flops(answer: Any, *, quiet: bool = False) -> Verdict:
    """FLOPs to train GPT-2 small (N = 124,439,808) on D = 10 billion tokens with the 6·N·D rule."""
    N, D = GPT2_SMALL_PARAMS, TRAINING_TOKENS
    return check_close(answer, 6 * N * D, what="training FLOPs", rel_tol=1e-2, hints=[
        (2 * N * D, "2·N·D is the forward pass only; the backward pass costs about twice the forward."),
        (4 * N * D, "backward ≈ 2 × forward, so training ≈ 2N + 4N = 6N per token."),
        (6 * N, "that is per token; multiply by the number of tokens D."),
        (3 * N * D, "each weight costs 2 FLOPs (a multiply and an add) per token in the forward pass."),
    ], default_hint="training ≈ 6 FLOPs per parameter per token (2 forward + 4 backward), times D tokens.",
        quiet=quiet)
