"""Checkers for the exercises of Chapter 8 (the modern decoder: from GPT-2 to Llama).

- :func:`check_swiglu` -- the SwiGLU feed-forward from its three weight matrices.
- :func:`check_repeat_kv` -- grouped-query attention's repetition of the key/value heads.
- :func:`check_hf_to_course` -- the names of a Hugging Face ``LlamaForCausalLM``'s weights mapped
  to those of :class:`lmlib.llama.Llama`; decided by loading the mapped weights and comparing logits.
- :func:`check_kv_cache_size` -- the bytes of a KV cache from a model's shape.

Every checker prints a verdict with a specific hint for the usual mistakes and returns a
:class:`lmlib.exercises.Verdict`.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from typing import Any, Callable

import torch
import torch.nn.functional as F

from lmlib.exercises import Verdict, correct, describe, hint, never_raises

__all__ = ["check_swiglu", "check_repeat_kv", "check_hf_to_course", "check_kv_cache_size", "LLAMA3_8B_KV_CASE"]

_RETURNS_NONE = "your function returns None: replace the placeholder `return None` with your code."


def _raised(what: str, exc: Exception, where: str = "") -> str:
    if isinstance(exc, NotImplementedError):
        return f"{what}: the function still raises NotImplementedError."
    return f"{what}: calling it{where} raised {type(exc).__name__}: {exc}"


def _tensor_problem(what: str, got: Any, shape: tuple) -> str | None:
    """A hint when ``got`` is not a float tensor of ``shape``, else None."""
    if got is None:
        return f"{what}: {_RETURNS_NONE}"
    if not isinstance(got, torch.Tensor):
        return f"{what}: return a tensor of shape {shape}, not {describe(got)}."
    if not got.is_floating_point():
        return f"{what}: return a floating-point tensor, not one of dtype {got.dtype}."
    if tuple(got.shape) != tuple(shape):
        return f"{what}: expected a tensor of shape {tuple(shape)}, yours has shape {tuple(got.shape)}."
    return None


# ---------------------------------------------------------------------------------------------
# Exercise: the SwiGLU feed-forward
# ---------------------------------------------------------------------------------------------

def _lin(x, w):
    return x @ w.T


#: typical wrong SwiGLUs ``(x, w_gate, w_up, w_down) -> y``, each with its diagnosis, tried in order
_SWIGLU_MISTAKES: list[tuple[Callable, str]] = [
    (lambda x, g, u, d: _lin(F.silu(_lin(x, u)) * _lin(x, g), d),
     "gate and up are swapped: SiLU goes on the GATE projection, silu(x W_gate^T), and multiplies the "
     "plain up projection x W_up^T."),
    (lambda x, g, u, d: _lin(F.gelu(_lin(x, g)) * _lin(x, u), d),
     "that is GeGLU (GELU on the gate); SwiGLU uses SiLU, silu(z) = z · sigmoid(z) (F.silu)."),
    (lambda x, g, u, d: _lin(F.gelu(_lin(x, g), approximate="tanh") * _lin(x, u), d),
     "that is GeGLU with GPT-2's tanh GELU; SwiGLU uses SiLU, silu(z) = z · sigmoid(z) (F.silu)."),
    (lambda x, g, u, d: _lin(torch.sigmoid(_lin(x, g)) * _lin(x, u), d),
     "you used sigmoid(z) as the gate (that is the original GLU); SiLU is z · sigmoid(z) (F.silu)."),
    (lambda x, g, u, d: _lin(F.relu(_lin(x, g)) * _lin(x, u), d),
     "that is ReGLU (ReLU on the gate); SwiGLU uses SiLU, silu(z) = z · sigmoid(z) (F.silu)."),
    (lambda x, g, u, d: _lin(F.silu(_lin(x, g) * _lin(x, u)), d),
     "SiLU is applied after the product; it belongs on the gate alone: silu(x W_gate^T) * (x W_up^T)."),
    (lambda x, g, u, d: F.silu(_lin(_lin(x, g) * _lin(x, u), d)),
     "SiLU is applied to the output; it belongs on the gate alone, before the product and before W_down."),
    (lambda x, g, u, d: _lin(F.silu(_lin(x, g)) + _lin(x, u), d),
     "you ADD the two branches; the gate MULTIPLIES the up projection, element by element."),
    (lambda x, g, u, d: _lin(F.silu(_lin(x, g)) * _lin(x, g), d),
     "you use w_gate for both branches; the second factor is the up projection x W_up^T."),
    (lambda x, g, u, d: _lin(F.silu(_lin(x, u)) * _lin(x, u), d),
     "you use w_up for both branches; the gate is silu(x W_gate^T)."),
    (lambda x, g, u, d: _lin(F.silu(_lin(x, u)), d),
     "there is no gate: multiply silu(x W_gate^T) with x W_up^T before W_down."),
    (lambda x, g, u, d: _lin(_lin(x, g) * _lin(x, u), d),
     "the SiLU is missing: the gate is silu(x W_gate^T)."),
    (lambda x, g, u, d: (F.silu(x @ g) * (x @ u)) @ d,
     "the weights are in nn.Linear's layout (out_features, in_features): a layer computes x @ W.T, not x @ W."),
]

_LAYOUT = ("the weights are in nn.Linear's layout (out_features, in_features): w_gate and w_up are "
           "(hidden, d_model), w_down is (d_model, hidden), and a layer computes x @ W.T.")


def _swiglu_cases() -> list[tuple[torch.Tensor, ...]]:
    """(x, w_gate, w_up, w_down) cases: non-square ones (d_model != hidden, so that a missing
    transpose fails) with 3 and 1 leading dimensions, then a square one (where it would run)."""
    g = torch.Generator().manual_seed(8)
    out = []
    for lead, d, h in (((2, 3, 4), 6, 10), ((7,), 5, 12), ((3, 5), 8, 8)):
        x = torch.randn(*lead, d, generator=g)
        w_gate, w_up = (torch.randn(h, d, generator=g) / math.sqrt(d) for _ in range(2))
        w_down = torch.randn(d, h, generator=g) / math.sqrt(h)
        out.append((x, w_gate, w_up, w_down))
    return out


def _swiglu_reference(x, w_gate, w_up, w_down) -> torch.Tensor:
    from lmlib.feedforward import SwiGLU

    h, d = w_gate.shape
    m = SwiGLU(d, h)
    with torch.no_grad():
        m.gate_proj.weight.copy_(w_gate)
        m.up_proj.weight.copy_(w_up)
        m.down_proj.weight.copy_(w_down)
        return m(x)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.to(b.dtype), b, rtol=1e-4, atol=1e-5)


@never_raises("a function fn(x, w_gate, w_up, w_down) returning a float tensor shaped like x")
def check_swiglu(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(x (..., d_model), w_gate (hidden, d_model), w_up (hidden, d_model), w_down (d_model, hidden))
    -> (..., d_model)``: ``(silu(x W_gate^T) * (x W_up^T)) W_down^T``, compared with
    :class:`lmlib.feedforward.SwiGLU` holding the same weights."""
    what = "swiglu"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    for i, args in enumerate(_swiglu_cases()):
        x, wg, wu, wd = args
        want = _swiglu_reference(*args)
        shapes = f" (test case {i}: x {tuple(x.shape)}, w_gate {tuple(wg.shape)}, w_down {tuple(wd.shape)})"
        try:
            got = fn(*(a.clone() for a in args))
        except RuntimeError as exc:
            text = str(exc)
            if any(w in text for w in ("shape", "size", "dimension")):
                return hint(f"{what}: {_LAYOUT} Your function raised{shapes}: {text.splitlines()[0]}", quiet=quiet)
            return hint(_raised(what, exc, shapes), quiet=quiet)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            return hint(_raised(what, exc, shapes), quiet=quiet)
        if isinstance(got, torch.Tensor) and got.is_floating_point() and tuple(got.shape) == (*x.shape[:-1], wg.shape[0]) \
                and wg.shape[0] != x.shape[-1]:
            return hint(f"{what}: your output has the hidden width {wg.shape[0]}; project it back to d_model "
                        "with w_down (x W_down^T).", quiet=quiet)
        problem = _tensor_problem(what, got, tuple(want.shape))
        if problem is not None:
            return hint(problem + ("" if got is None else shapes), quiet=quiet)
        if _close(got, want):
            continue
        for wrong, message in _SWIGLU_MISTAKES:
            try:
                if _close(got, wrong(*args)):
                    return hint(f"{what}: {message}", quiet=quiet)
            except RuntimeError:   # e.g. the untransposed product of a non-square case
                pass
        return hint(f"{what}: wrong values on test case {i}{shapes}; compute silu(x @ w_gate.T) * (x @ w_up.T), "
                    "then multiply by w_down.T.", quiet=quiet)
    return correct("the gate silu(x W_gate^T) scales x W_up^T unit by unit, and W_down maps back to d_model.",
                   quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: repeat the key/value heads for grouped-query attention
# ---------------------------------------------------------------------------------------------

#: ((B, n_kv_heads, T, head_dim), n_rep): every size different, so a wrong axis shows in the shape;
#: multi-query attention (n_kv_heads = 1) and plain multi-head attention (n_rep = 1) last
_REPEAT_CASES = [((2, 3, 5, 4), 2), ((1, 2, 7, 6), 4), ((3, 1, 4, 5), 3), ((2, 4, 3, 6), 1)]


def _repeat_cases():
    g = torch.Generator().manual_seed(8)
    return [(torch.randn(*shape, generator=g), n_rep) for shape, n_rep in _REPEAT_CASES]


@never_raises("a function fn(x, n_rep) returning a tensor of shape (B, n_kv_heads * n_rep, T, head_dim)")
def check_repeat_kv(fn: Callable | None, *, quiet: bool = False) -> Verdict:
    """``fn(x (B, n_kv_heads, T, head_dim), n_rep) -> (B, n_kv_heads * n_rep, T, head_dim)`` where
    output head ``h`` is input head ``h // n_rep``; compared with :func:`lmlib.gqa.repeat_kv`."""
    from lmlib.gqa import repeat_kv

    what = "repeat_kv"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    for x, r in _repeat_cases():
        B, n, T, hs = x.shape
        case = f" for x of shape {tuple(x.shape)} and n_rep={r}"
        want = repeat_kv(x, r)
        try:
            got = fn(x.clone(), r)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            extra = " (n_rep = 1 is plain multi-head attention: return x as it is)" if r == 1 else ""
            return hint(_raised(what, exc, case) + extra, quiet=quiet)
        if got is None:
            return hint(f"{what}: {_RETURNS_NONE}", quiet=quiet)
        if not isinstance(got, torch.Tensor):
            return hint(f"{what}: return a tensor, not {describe(got)}.", quiet=quiet)
        shape = tuple(got.shape)
        if shape != tuple(want.shape):
            wrong_axes = {(B, n, T * r, hs): "you repeated along the time axis (dim 2); the heads are dim 1.",
                          (B, n, T, hs * r): "you repeated along head_dim (dim 3); the heads are dim 1.",
                          (B * r, n, T, hs): "you repeated along the batch (dim 0); the heads are dim 1.",
                          (B, n, r, T, hs): "merge the new group axis into the heads: reshape to "
                                            "(B, n_kv_heads * n_rep, T, head_dim).",
                          (B, r, n, T, hs): "merge the new group axis into the heads: reshape to "
                                            "(B, n_kv_heads * n_rep, T, head_dim) (and mind the order of the two "
                                            "head axes: each key/value head's copies must sit next to each other)."}
            if shape in wrong_axes:
                return hint(f"{what}{case}: your output has shape {shape}: {wrong_axes[shape]}", quiet=quiet)
            if shape == (B, n, T, hs):
                return hint(f"{what}{case}: your output has the input's shape {shape}; each of the {n} key/value "
                            f"heads must appear {r} times.", quiet=quiet)
            return hint(f"{what}{case}: expected shape {tuple(want.shape)}, yours is {shape}.", quiet=quiet)
        if got.dtype != x.dtype:
            return hint(f"{what}: keep the dtype of x ({x.dtype}), yours returned {got.dtype}.", quiet=quiet)
        if torch.equal(got, want):
            continue
        if r == 1:
            return hint(f"{what}{case}: with n_rep = 1 (plain multi-head attention) return x unchanged.", quiet=quiet)
        if torch.equal(got, x.repeat(1, r, 1, 1)):
            order = ", ".join(str(h % n) for h in range(n * r))
            return hint(f"{what}{case}: you tiled the heads (x.repeat): your heads are key/value heads {order}. "
                        f"Query head h must read key/value head h // n_rep, so each head's copies sit next to each "
                        "other (0, 0, 1, 1, ...): use repeat_interleave on dim 1, or expand a new axis after dim 1 "
                        "and reshape.", quiet=quiet)
        for h in range(n * r):
            if not torch.equal(got[:, h], x[:, h // r]):
                return hint(f"{what}{case}: output head {h} should be a copy of key/value head {h // r} "
                            f"(h // n_rep), and it is not.", quiet=quiet)
        return hint(f"{what}{case}: wrong values.", quiet=quiet)
    return correct("query head h now meets key/value head h // n_rep, and n_rep = 1 leaves x as it is.", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: Hugging Face Llama weight names -> course names
# ---------------------------------------------------------------------------------------------

#: the tiny model of the check: 3 layers, 4 query heads sharing 2 key/value heads, untied lm_head
_TINY = dict(vocab=50, d=24, hidden=40, layers=3, heads=4, kv_heads=2, head_dim=6, ctx=32, eps=1e-5)

_HF_NAMES = [  # (HF suffix, course suffix) inside a layer
    ("input_layernorm", "norm1"), ("post_attention_layernorm", "norm2"),
    ("self_attn.q_proj", "self_attn.q_proj"), ("self_attn.k_proj", "self_attn.k_proj"),
    ("self_attn.v_proj", "self_attn.v_proj"), ("self_attn.o_proj", "self_attn.out_proj"),
    ("mlp.gate_proj", "ffn.gate_proj"), ("mlp.up_proj", "ffn.up_proj"), ("mlp.down_proj", "ffn.down_proj"),
]


def _true_name(name: str) -> str:
    """The course name of a Hugging Face Llama weight (the answer, used only to diagnose)."""
    ends = {"model.embed_tokens.weight": "wte.weight", "model.norm.weight": "norm_f.weight",
            "lm_head.weight": "lm_head.weight"}
    if name in ends:
        return ends[name]
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", name)
    if m is None:
        raise KeyError(name)
    return f"blocks.{m.group(1)}.{dict(_HF_NAMES)[m.group(2)]}.weight"


def _course_config():
    from lmlib.llama import LlamaConfig

    t = _TINY
    return LlamaConfig(vocab_size=t["vocab"], block_size=t["ctx"], n_layer=t["layers"], n_head=t["heads"],
                       n_embd=t["d"], n_kv_head=t["kv_heads"], head_dim=t["head_dim"], ffn_hidden=t["hidden"],
                       norm_eps=t["eps"], tie_embeddings=False)


@functools.lru_cache(maxsize=1)
def _hf_reference() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """A tiny transformers ``LlamaForCausalLM`` with random weights (norms too, so that swapping two
    norms changes the output): its state dict, a batch of token ids and its logits on them."""
    from transformers import LlamaConfig as HFLlamaConfig
    from transformers import LlamaForCausalLM

    t = _TINY
    cfg = HFLlamaConfig(vocab_size=t["vocab"], hidden_size=t["d"], intermediate_size=t["hidden"],
                        num_hidden_layers=t["layers"], num_attention_heads=t["heads"],
                        num_key_value_heads=t["kv_heads"], head_dim=t["head_dim"],
                        max_position_embeddings=t["ctx"], rms_norm_eps=t["eps"], tie_word_embeddings=False,
                        attention_bias=False, mlp_bias=False)
    g = torch.Generator().manual_seed(8)
    with torch.random.fork_rng(devices=[]):   # leave the learner's random state alone
        model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1.0 + 0.3 * noise if name.endswith("norm.weight") else 0.3 * noise)
        idx = torch.randint(0, t["vocab"], (2, 9), generator=g)
        logits = model(idx).logits.float()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, idx, logits


def _layer(name: str) -> int | None:
    m = re.match(r"(?:model\.layers|blocks)\.(-?\d+)\.", name)
    return None if m is None else int(m.group(1))


def _unknown_hint(src: str, tgt: str, course_keys: list[str]) -> str:
    where = f"{src!r} -> {tgt!r}, which is not a weight of the course Llama"
    n_layer = _TINY["layers"]
    if tgt == src:
        return f"{where} (you returned the name unchanged)."
    if tgt.startswith("model."):
        return f"{where}: drop the 'model.' prefix (the course model keeps its layers at the top level)."
    if "layers." in tgt:
        return f"{where}: the course calls its list of layers `blocks`."
    if "embed_tokens" in tgt:
        return f"{where}: the course's token embedding is `wte`."
    if "o_proj" in tgt:
        return f"{where}: the course calls the attention's output projection `out_proj`."
    if "mlp." in tgt:
        return f"{where}: the course calls a block's feed-forward `ffn`."
    if "layernorm" in tgt:
        return (f"{where}: a course block's norms are `norm1` (before attention; HF's input_layernorm) and "
                "`norm2` (before the feed-forward; HF's post_attention_layernorm).")
    i, j = _layer(src), _layer(tgt)
    if i is not None and tgt.startswith("blocks.") and j is None:
        return f"{where}: keep the layer index: HF's layer {i} is the course's `blocks.{i}`."
    if i is not None and j is not None and not 0 <= j < n_layer:
        return (f"{where}: the model has blocks 0 .. {n_layer - 1}; both libraries count layers from 0, so "
                f"layer {i} is `blocks.{i}` (an index off by one?).")
    if src == "model.norm.weight":
        return f"{where}: the final norm, after the last block, is `norm_f`."
    return f"{where}. Its weights are named like: {', '.join(course_keys[:3])}, ..., {course_keys[-1]}."


def _swap_hint(src: str, tgt: str) -> str:
    """Why a name that loads went to the wrong place (a weight of the same shape)."""
    right = _true_name(src)
    if {right.rsplit(".", 2)[-2], tgt.rsplit(".", 2)[-2]} == {"norm1", "norm2"}:
        return ("the two norms of a block are swapped: input_layernorm comes before attention (`norm1`), "
                "post_attention_layernorm before the feed-forward (`norm2`).")
    if {right.rsplit(".", 2)[-2], tgt.rsplit(".", 2)[-2]} == {"gate_proj", "up_proj"}:
        return ("gate_proj and up_proj are swapped: the course's SwiGLU applies SiLU to `ffn.gate_proj`, so the "
                "two have the same shape but are not interchangeable.")
    if _layer(right) is not None and _layer(tgt) is not None and _layer(right) != _layer(tgt):
        return (f"{src!r} goes to block {_layer(tgt)}; HF's layer i is the course's `blocks.i` (the order of the "
                "layers matters).")
    if {right, tgt} == {"wte.weight", "lm_head.weight"}:
        return ("embed_tokens and lm_head are swapped: embed_tokens is the input embedding `wte`, lm_head the "
                "output layer (they have the same shape, and here they are not tied).")
    if "norm_f" in (right.split(".")[0], tgt.split(".")[0]):
        return f"look again at {src!r}: the final norm (HF's model.norm) is `norm_f`, a block's norms are norm1/norm2."
    return f"{src!r} is loaded into {tgt!r}: the shapes fit, but that is a different weight."


@never_raises("a function fn(name: str) returning the course's name (a str)")
def check_hf_to_course(fn: Callable[[str], str] | None, *, quiet: bool = False) -> Verdict:
    """``fn(hf_name) -> course_name`` for every weight of a Hugging Face ``LlamaForCausalLM`` (untied
    ``lm_head``). Decided by loading the renamed weights into :class:`lmlib.llama.Llama` (strictly)
    and comparing its logits with those of ``transformers``."""
    from lmlib.llama import Llama

    what = "hf_to_course"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    hf_state, idx, hf_logits = _hf_reference()
    mapping: dict[str, str] = {}
    for src in hf_state:
        try:
            tgt = fn(src)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            return hint(_raised(what, exc, f" on {src!r}"), quiet=quiet)
        if tgt is None:
            return hint(f"{what}: for {src!r} {_RETURNS_NONE}", quiet=quiet)
        if not isinstance(tgt, str):
            return hint(f"{what}: return the course's name as a str; for {src!r} you returned {describe(tgt)}.",
                        quiet=quiet)
        mapping[src] = tgt
    with torch.random.fork_rng(devices=[]):
        course = Llama(_course_config())
    course_keys = list(course.state_dict())
    for src, tgt in mapping.items():
        if tgt not in course_keys:
            return hint(f"{what}: {_unknown_hint(src, tgt, course_keys)}", quiet=quiet)
    counts = Counter(mapping.values())
    for tgt, k in counts.items():
        if k > 1:
            srcs = [s for s, t in mapping.items() if t == tgt]
            layers = {_layer(s) for s in srcs}
            why = (" Keep the layer index: HF's layer i is the course's `blocks.i`." if len(layers) > 1
                   else " Each weight has a place of its own.")
            return hint(f"{what}: {len(srcs)} weights go to {tgt!r} ({', '.join(map(repr, srcs[:3]))}"
                        f"{', ...' if len(srcs) > 3 else ''}).{why}", quiet=quiet)
    missing = [k for k in course_keys if k not in counts]
    if missing:
        return hint(f"{what}: nothing is loaded into {missing[0]!r}.", quiet=quiet)
    for src, tgt in mapping.items():
        a, b = tuple(hf_state[src].shape), tuple(course.state_dict()[tgt].shape)
        if a != b:
            return hint(f"{what}: {src!r} has shape {a}, but {tgt!r} has shape {b}: those are different weights "
                        "(gate_proj and up_proj map d_model -> hidden, down_proj hidden -> d_model).", quiet=quiet)
    course.load_state_dict({mapping[k]: v for k, v in hf_state.items()}, strict=True)
    with torch.no_grad():
        logits = course.eval()(idx)[0]
    if logits.shape == hf_logits.shape and torch.allclose(logits, hf_logits, rtol=1e-4, atol=1e-4):
        return correct(f"all {len(mapping)} weights load strictly, and the course Llama computes the logits of "
                       "transformers' LlamaForCausalLM.", quiet=quiet)
    wrong = [(s, t) for s, t in mapping.items() if t != _true_name(s)]
    if wrong:
        return hint(f"{what}: every weight loads, but the logits differ from transformers': "
                    f"{_swap_hint(*wrong[0])}", quiet=quiet)
    return hint(f"{what}: the names look right, but the logits differ from transformers'.", quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Exercise: the size of a KV cache
# ---------------------------------------------------------------------------------------------

#: (n_layer, n_head, n_kv_head, head_dim, context, batch, bytes_per_value) of Llama 3 8B, one sequence
#: of 8192 tokens in bfloat16: its cache is 1 GiB
LLAMA3_8B_KV_CASE = (32, 32, 8, 128, 8192, 1, 2)

#: the test cases; the sizes differ from case to case so that each mistake has its own pattern of ratios
_KV_CASES = [
    LLAMA3_8B_KV_CASE,
    (80, 64, 8, 128, 4096, 4, 2),     # a Llama 2 70B shape, batch 4
    (6, 6, 1, 64, 256, 3, 4),         # multi-query attention in float32
    (3, 4, 2, 6, 10, 2, 1),           # a tiny GQA model, one byte per value (int8 / fp8)
    (12, 12, 12, 64, 1024, 1, 4),     # GPT-2 small (MHA) in float32
]


def _kv_right(L, H, K, hd, T, B, b) -> int:
    return 2 * L * K * hd * T * B * b


#: (name, factor(case) by which the mistake multiplies the right answer, diagnosis)
_KV_FACTORS: list[tuple[str, Callable[..., float], str]] = [
    ("n_head", lambda L, H, K, hd, T, B, b: H / K,
     "you cache n_head heads (or n_head · head_dim = d_model numbers per token); with grouped-query attention "
     "only the n_kv_head key/value heads are cached"),
    ("two", lambda *c: 0.5, "you count the keys only: the cache holds keys AND values (a factor 2)"),
    ("layers", lambda L, *c: 1 / L, "you count one layer: every layer has its own cache (a factor n_layer)"),
    ("bits", lambda *c: 8.0, "your answer is in bits: bytes_per_value is already in bytes"),
    ("bytes", lambda *c: 1 / c[-1], "you count values, not bytes: multiply by bytes_per_value"),
    ("batch", lambda *c: 1 / c[-2], "you leave out the batch: each sequence has its own cache"),
    ("context", lambda *c: 1 / c[-3], "you give one token's cache: multiply by the context length"),
    ("head_dim", lambda *c: 1 / c[3], "you leave out head_dim: each cached head is a vector of head_dim numbers"),
]
_KV_UNITS = [("GiB", 2.0 ** -30), ("MiB", 2.0 ** -20), ("GB", 1e-9), ("MB", 1e-6), ("KiB", 2.0 ** -10)]


def _kv_patterns():
    """Every combination of up to three mistakes (and a unit), with its ratio to the right answer on
    each case: fewer mistakes first."""
    out = []
    for k in range(0, 4):
        for combo in itertools.combinations(_KV_FACTORS, k):
            for unit in [None, *_KV_UNITS]:
                if k == 0 and unit is None:
                    continue
                ratios = [math.prod(f(*case) for _, f, _ in combo) * (1.0 if unit is None else unit[1])
                          for case in _KV_CASES]
                out.append((combo, unit, ratios))
    return out


def _kv_number(v: Any) -> float | None:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1 or v.dtype == torch.bool or v.is_complex():
            return None
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            import numpy as np
            if isinstance(v, (np.integer, np.floating)):
                return float(v)
        except ImportError:  # pragma: no cover
            pass
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@never_raises("a function fn(n_layer, n_head, n_kv_head, head_dim, context, batch, bytes_per_value) returning an int")
def check_kv_cache_size(fn: Callable[..., int] | None, *, quiet: bool = False) -> Verdict:
    """``fn(n_layer, n_head, n_kv_head, head_dim, context, batch, bytes_per_value) -> int``, the bytes of
    the keys and values a decoder caches for ``batch`` sequences of ``context`` tokens (the formula of
    :func:`lmlib.gqa.kv_cache_bytes`)."""
    what = "kv_cache_size"
    if fn is None:
        return hint(f"{what}: define your function and pass it to the checker.", quiet=quiet)
    if not callable(fn):
        return hint(f"{what}: expected a function, got {describe(fn)}; pass the function itself.", quiet=quiet)
    got = []
    for case in _KV_CASES:
        try:
            v = fn(*case)
        except Exception as exc:  # noqa: BLE001 - a learner's bug is feedback
            return hint(_raised(what, exc, f" on {case}"), quiet=quiet)
        if v is None:
            return hint(f"{what}: {_RETURNS_NONE}", quiet=quiet)
        x = _kv_number(v)
        if x is None:
            return hint(f"{what}: return a number of bytes (an int); for {case} you returned {describe(v)}.",
                        quiet=quiet)
        got.append(x)
    want = [_kv_right(*case) for case in _KV_CASES]
    if all(g == w for g, w in zip(got, want)):
        return correct("2 (keys and values) × n_layer × n_kv_head × head_dim × context × batch × bytes: "
                       "Llama 3 8B caches 1 GiB per sequence of 8192 tokens in bfloat16.", quiet=quiet)
    if all(math.isclose(g, w, rel_tol=1e-9) for g, w in zip(got, want)):
        return hint(f"{what}: almost, but not an exact count of bytes: compute it with integers.", quiet=quiet)
    ratios = [g / w for g, w in zip(got, want)]
    for combo, unit, pattern in _kv_patterns():
        if all(math.isclose(r, p, rel_tol=1e-9) for r, p in zip(ratios, pattern)):
            reasons = [message for _, _, message in combo]
            if unit is not None:
                reasons.append(f"your answer is in {unit[0]}: return bytes (an int)")
            head = "" if len(reasons) == 1 else f"{len(reasons)} things: "
            return hint(f"{what}: {head}{'; '.join(reasons)}.", quiet=quiet)
    i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
    return hint(f"{what}: for (n_layer, n_head, n_kv_head, head_dim, context, batch, bytes_per_value) = "
                f"{_KV_CASES[i]} you returned {got[i]:,.6g}, which is not right. Count per token and layer first: "
                "keys and values of every key/value head, head_dim numbers each.", quiet=quiet)
