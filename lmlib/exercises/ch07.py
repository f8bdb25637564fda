"""Checkers for the exercises of chapter 7 (fine-tuning)."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn

from lmlib.exercises import Verdict, check_function, describe, hint, never_raises, verdict
from lmlib.lora import LoRALinear
from lmlib.stats import paired_bootstrap

__all__ = ["check_lora_forward", "check_lora_merged", "check_sft_labels", "check_last_token_pool",
           "check_macro_f1", "check_paired_bootstrap"]


def _add_to_error(v: Verdict, explain, quiet: bool) -> Verdict:
    """Print ``v`` (from a quiet :func:`check_function`), with ``explain(message)`` appended when
    the learner's function raised an error that ``explain`` recognises."""
    message = v.message
    if not v.ok and " raised " in message:
        extra = explain(message)
        if extra:
            message = f"{message} ({extra})"
    return verdict(v.ok, message, quiet=quiet)


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


def _lora_merge_cases() -> list[dict]:
    """LoRA layers with a NON-zero ``B`` (with ``B = 0`` the update vanishes and a wrong merge
    would pass), their state before the learner's function sees them, and inputs ``x``."""
    g = torch.Generator().manual_seed(7)
    cases = []
    with torch.random.fork_rng(devices=[]):  # nn.Linear and LoRALinear initialise from the global RNG
        # first a square layer, where a transposed update has the right shape and shows as wrong values
        for d_in, d_out, r, alpha, bias in ((8, 8, 4, 3.0, False), (6, 5, 2, 4.0, True), (5, 7, 3, 6.0, True)):
            base = nn.Linear(d_in, d_out, bias=bias)
            lora = LoRALinear(base, r=r, alpha=alpha)
            with torch.no_grad():
                base.weight.copy_(torch.randn(d_out, d_in, generator=g))
                if bias:
                    base.bias.copy_(torch.randn(d_out, generator=g))
                lora.lora_A.copy_(torch.randn(r, d_in, generator=g))
                lora.lora_B.copy_(torch.randn(d_out, r, generator=g))
                x = torch.randn(4, d_in, generator=g)
                cases.append({"lora": lora, "x": x, "out": lora(x).clone(),
                              "state": {k: v.clone() for k, v in lora.state_dict().items()},
                              "attrs": (lora.r, lora.alpha, lora.scaling)})
    return cases


def _close(a, b, atol: float = 1e-4) -> bool:
    try:
        return (isinstance(a, torch.Tensor) and a.shape == b.shape
                and torch.allclose(a.detach().double(), b.double(), atol=atol, rtol=1e-5))
    except Exception:  # noqa: BLE001 - a complex tensor, a tensor on another device...
        return False


def _shares_memory(a, b) -> bool:
    try:
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr())
    except Exception:  # noqa: BLE001
        return False


def _merge_problem(case: dict, got) -> str | None:
    """What is wrong with ``got = merged_linear(lora)``, or None when it is right."""
    lora, x = case["lora"], case["x"]
    state = case["state"]
    W, A, B = state["base.weight"], state["lora_A"], state["lora_B"]
    bias = state.get("base.bias")
    r, alpha, scale = case["attrs"]
    d_out, d_in = W.shape
    delta = scale * (B @ A)
    if got is None:
        return "your function returned None; replace the placeholder with your code."
    if isinstance(got, LoRALinear):
        return ("you returned a LoRA layer (the one you were given, or a copy); merging means building a "
                "plain nn.Linear whose weight already contains the update.")
    # The LoRA layer must be exactly as it was: nothing changed in place.
    now = lora.state_dict()
    changed = [k for k, v in state.items() if k not in now or not torch.equal(now[k], v)]
    same_base = got is lora.base
    if changed or (lora.r, lora.alpha, lora.scaling) != case["attrs"]:
        if "base.weight" in changed and _close(now["base.weight"], W + delta):
            return ("you added the update to lora.base.weight in place"
                    + (" and returned lora.base" if same_base else "")
                    + ": the LoRA layer now adds (alpha / r) B A twice, so its own output changed. Leave "
                    "the LoRA layer untouched: put W + (alpha / r) B A into a NEW nn.Linear (or into a "
                    "copy.deepcopy of lora.base).")
        what = ", ".join(changed) if changed else "its r / alpha / scaling"
        return (f"your function changed the LoRA layer it was given ({what}); merging must leave it as "
                "it was: read its tensors and write only into the new layer.")
    if not torch.equal(lora(x).detach(), case["out"]):
        return "after your function ran, the LoRA layer gives different outputs; merging must not touch it."
    if isinstance(got, torch.Tensor):
        return (f"you returned {describe(got)}; return a new nn.Linear that holds the merged weight "
                "(and the bias) instead of the bare tensor.")
    if not isinstance(got, nn.Linear):
        return f"return a new torch.nn.Linear, not {describe(got)}."
    if same_base:
        return ("you returned lora.base itself, the frozen layer without the update; build a NEW "
                "nn.Linear with weight W + (alpha / r) B A.")
    w = getattr(got, "weight", None)
    if not isinstance(w, torch.Tensor):
        return f"the weight of your nn.Linear is {describe(w)}, not a tensor."
    if w.shape != (d_out, d_in):
        return (f"the merged weight must have W's shape (out_features, in_features) = {(d_out, d_in)}; "
                f"yours is {tuple(w.shape)}. B A is (out, r) @ (r, in).")
    if (got.in_features, got.out_features) != (d_in, d_out):
        return (f"create the layer as nn.Linear(in_features, out_features) = nn.Linear({d_in}, {d_out}); "
                f"yours says in_features={got.in_features}, out_features={got.out_features}.")
    if not _close(w, W + delta):
        if _close(w, W):
            return "the weight is still W: add the low-rank update (alpha / r) B A to it."
        if _close(w, W + B @ A):
            return "you added B A without its scale: the update is (alpha / r) B A."
        if _close(w, W + alpha * (B @ A)):
            return "the scale is alpha / r, not alpha."
        if _close(w, W + (r / alpha) * (B @ A)):
            return "the scale is alpha / r, not r / alpha."
        if d_in == d_out and _close(w, W + scale * (B @ A).T):
            return ("you added the transpose of the update: B A (out x in, like W) is lora_B @ lora_A; "
                    "A^T B^T is its transpose.")
        return ("the merged weight should be W + (alpha / r) B A with W = lora.base.weight, "
                "B = lora.lora_B (out, r) and A = lora.lora_A (r, in).")
    if bias is not None:
        if got.bias is None:
            return "keep the bias: this base layer has one, so the merged layer needs lora.base.bias too."
        if not _close(got.bias, bias):
            return ("copy the base layer's bias into the merged layer; yours differs from lora.base.bias "
                    "(a new nn.Linear starts with a random bias).")
    elif got.bias is not None:
        return ("this base layer has no bias (bias=False); create the merged layer with "
                "bias=lora.base.bias is not None.")
    try:
        y = got(x.to(w.dtype))
    except Exception as exc:  # noqa: BLE001
        return f"calling your merged layer raised {type(exc).__name__}: {exc}"
    if not _close(y, case["out"]):
        return "your merged layer's outputs differ from the LoRA layer's outputs on the same input."
    for mine, theirs in ((w, lora.base.weight), (got.bias, lora.base.bias)):
        if mine is not None and _shares_memory(mine, theirs):
            return ("the merged layer shares a tensor with lora.base (e.g. the same bias Parameter): "
                    "training or editing one would change the other; copy the values (.clone()).")
    return None


def _explain_merge_error(message: str) -> str | None:
    if any(k in message for k in ("size of tensor", "shape", "mat1 and mat2", "must match the size")):
        return ("B A is lora_B @ lora_A: (out, r) @ (r, in) = (out, in), the shape of W; "
                "A @ B does not fit")
    return None


@never_raises('a function fn(lora) returning a new torch.nn.Linear')
def check_lora_merged(fn, *, quiet: bool = False) -> Verdict:
    """``fn(lora: LoRALinear) -> nn.Linear``: a NEW plain linear layer with weight
    ``W + (alpha / r) B A`` and the base layer's bias (or none), giving the LoRA layer's outputs,
    and leaving the LoRA layer unchanged."""
    cases = [((c["lora"],), c) for c in _lora_merge_cases()]
    v = check_function(fn, cases, what="merged LoRA layer", quiet=True,
                       compare=lambda got, case: _merge_problem(case, got) is None,
                       diagnose=lambda args, got, case: _merge_problem(case, got))
    return _add_to_error(v, _explain_merge_error, quiet)


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


def _last_real_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The reference, one row and one position at a time: the last position whose mask is 1."""
    B, T, C = hidden.shape
    out = torch.empty(B, C, dtype=hidden.dtype)
    for b in range(B):
        last = None
        for t in range(T):
            if int(attention_mask[b, t]) == 1:
                last = t
        out[b] = hidden[b, last]
    return out


def _right_padded(lengths, T: int) -> torch.Tensor:
    return torch.tensor([[1] * n + [0] * (T - n) for n in lengths])


# (B, T, C) and the row lengths: rows of different lengths, a row of length 1, and (not in the
# first case, so that an off-by-one shows as wrong values rather than an IndexError) full rows
_POOL_CASES = (((4, 6, 3), (3, 1, 5, 2)), ((3, 5, 2), (5, 2, 4)), ((5, 7, 4), (7, 1, 3, 6, 2)))


@never_raises('a function fn(hidden, attention_mask) returning a (B, C) tensor')
def check_last_token_pool(fn, *, quiet: bool = False) -> Verdict:
    """``fn(hidden (B, T, C), attention_mask (B, T) right padded) -> (B, C)``: the hidden vector
    of every row's last real token, checked against a loop over rows and positions."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for (B, T, C), lengths in _POOL_CASES:
        hidden = torch.randn(B, T, C, generator=g)
        mask = _right_padded(lengths, T)
        cases.append(((hidden, mask), _last_real_token(hidden, mask)))

    def diagnose(args, got, expected):
        if got is None:
            return "your function returned None; replace the placeholder with your code."
        hidden, mask = args
        B, T, C = hidden.shape
        if not isinstance(got, torch.Tensor):
            return f"return a tensor of shape (B, C) = {(B, C)}, not {describe(got)}."
        shape = tuple(got.shape)
        if shape == (B, T):
            return (f"your result has shape (B, T) = {(B, T)}: that indexes the channel axis. Pick ONE "
                    f"position per row along the time axis (dim 1) and keep all C channels: (B, C) = {(B, C)}.")
        if shape in ((B, 1, C), (1, B, C)):
            return f"drop the extra axis: return shape (B, C) = {(B, C)}, not {shape}."
        if shape != (B, C):
            return f"return one C-vector per row, shape (B, C) = {(B, C)}; yours has shape {shape}."
        if not got.is_floating_point():
            return f"return a float tensor (the hidden vectors themselves), not one of dtype {got.dtype}."
        got = got.detach().double()
        h = hidden.double()
        lengths = mask.sum(1).tolist()
        near = lambda ref: torch.allclose(got, ref, atol=1e-5)  # noqa: E731
        if near(h[:, -1]):
            return ("hidden[:, -1] is the last POSITION, and in the padded rows that is a padding token; "
                    "take each row's last REAL token, at position length - 1.")
        padded = [b for b in range(B) if lengths[b] < T]
        if padded and all(torch.allclose(got[b], h[b, lengths[b]], atol=1e-5) for b in padded):
            return ("off by one: position length is the first PADDING token; the last real token of a "
                    "row of `length` tokens is at position length - 1.")
        m = mask.to(h.dtype).unsqueeze(-1)
        if near((h * m).sum(1) / m.sum(1)):
            return ("that is the mean over the real tokens (mean pooling); this exercise takes the vector "
                    "of the last real token, the only one that has attended to the whole sequence.")
        if near(h.mean(1)):
            return ("that is the mean over all T positions, padding included; take the vector of each "
                    "row's last real token instead.")
        if near(h[:, 0]):
            return ("that is position 0 (BERT's [CLS] choice); in a causal GPT the first token has seen "
                    "only itself. Take the last real token.")
        return ("row b has attention_mask[b].sum() real tokens; its last real token is at position "
                "attention_mask[b].sum() - 1: return hidden[b, that position] for every b.")

    def explain(message):
        if "IndexError" in message or "out of bounds" in message or "not in list" in message:
            return ("a row without padding has length T, no 0 in its mask, and its last real token at "
                    "position T - 1")
        return None

    v = check_function(fn, cases, what="last-token pooling", quiet=True, diagnose=diagnose,
                       compare=lambda got, exp: isinstance(got, torch.Tensor) and got.shape == exp.shape
                       and got.is_floating_point() and torch.allclose(got.detach().to(exp.dtype), exp, atol=1e-5))
    return _add_to_error(v, explain, quiet)


def _close_number(got, expected: float) -> bool:
    if got is None or isinstance(got, (str, bytes, bool)):
        return False
    try:
        return abs(float(got) - expected) < 1e-6
    except Exception:  # noqa: BLE001 - not a number: diagnosed as such
        return False


def _per_class(cm: torch.Tensor):
    """Per-class precision, recall and F1 of a confusion matrix (rows = true, columns =
    predicted); a class that is never predicted has precision 0 and, unless found, F1 0."""
    c = cm.double()
    tp, predicted, true = c.diag(), c.sum(0), c.sum(1)
    p = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    r = tp / true
    f1 = torch.where(p + r > 0, 2 * p * r / (p + r).clamp(min=1e-12), torch.zeros_like(tp))
    return p, r, f1, true, predicted


@never_raises('a function fn(cm) returning a float')
def check_macro_f1(fn, *, quiet: bool = False) -> Verdict:
    """``fn(cm) -> float``: macro-F1 from a confusion matrix (rows = true, columns = predicted),
    every class present in the data. The last case has a class that is never predicted (its
    precision is 0 / 0, its F1 counts as 0)."""
    cms = [torch.tensor([[5, 1, 0], [2, 3, 1], [0, 0, 8]]), torch.tensor([[50, 0], [9, 1]]),
           torch.tensor([[4, 0, 1], [3, 0, 2], [0, 0, 6]])]
    cases = [((cm,), _per_class(cm)[2].mean().item()) for cm in cms]

    def diagnose(args, got, expected):
        if got is None:
            return "your function returned None; replace the placeholder with your code."
        cm = args[0].double()
        p, r, f1, true, predicted = _per_class(cm)
        if isinstance(got, torch.Tensor) and got.numel() == f1.numel() > 1:
            if torch.allclose(got.detach().double().flatten(), f1, atol=1e-6):
                return "those are the per-class F1 scores; macro-F1 is their plain mean, one float."
            return f"return one float (the mean over the {f1.numel()} classes), not {describe(got)}."
        x = float(got)
        if math.isnan(x):
            if bool((predicted == 0).any()):
                return ("NaN: a class that is never predicted has column sum 0, so its precision is 0 / 0. "
                        "Count it as 0 (its F1 is then 0), e.g. divide by the column sum clamped to at least 1.")
            return "your answer is NaN; check the divisions."
        wrong = [
            ((cm.diag().sum() / cm.sum()).item(),
             "that is accuracy (= micro-F1 here); macro-F1 averages the per-class F1 scores."),
            (p.mean().item(), "that is the mean precision; F1 combines each class's precision AND recall."),
            (r.mean().item(), "that is the mean recall (balanced accuracy); F1 combines each class's "
                              "precision AND recall."),
            ((2 * p.mean() * r.mean() / (p.mean() + r.mean())).item(),
             "that is the F1 of the averaged precision and recall; macro-F1 computes F1 for each class "
             "first, then averages the F1 scores."),
            (((p + r) / 2).mean().item(), "F1 is the harmonic mean 2 P R / (P + R), not the arithmetic "
                                          "mean (P + R) / 2."),
            (((f1 * true).sum() / true.sum()).item(),
             "that is the support-weighted F1; macro-F1 gives every class the same weight (a plain mean)."),
        ]
        for value, message in wrong:
            if abs(x - value) < 1e-6:
                return message
        return ("precision_k = TP / column sum (everything predicted as k), recall_k = TP / row sum; "
                "F1_k = 2 P R / (P + R), then the plain mean over classes.")

    return check_function(fn, cases, what="macro-F1", quiet=quiet, diagnose=diagnose,
                          compare=_close_number)


def _as_pair(got) -> tuple[float, float] | None:
    """``got`` as two finite-or-not floats, or None when it is not two numbers."""
    if isinstance(got, (str, bytes, dict)) or got is None:
        return None
    if isinstance(got, torch.Tensor):
        items = got.detach().flatten().tolist() if got.numel() == 2 else None
    else:
        try:
            items = list(got) if len(got) == 2 else None
        except Exception:  # noqa: BLE001 - no len(): not a pair
            return None
    if items is None:
        return None
    out = []
    for v in items:
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                return None
            v = v.item()
        if isinstance(v, (bool, str, bytes, complex)):
            return None
        try:
            out.append(float(v))
        except Exception:  # noqa: BLE001
            return None
    return out[0], out[1]


def _is_single_number(got) -> bool:
    if isinstance(got, torch.Tensor):
        return got.numel() == 1
    if isinstance(got, (bool, str, bytes, complex)):
        return False
    try:
        float(got)
        return not hasattr(got, "__len__")
    except Exception:  # noqa: BLE001
        return False


def _plays(sizes, p_a, p_b, seed: int, label=lambda k: f"play {k}", shuffle: bool = True):
    """Per-example 0/1 correctness of two models (A right with probability ``p_a[k]`` in play k,
    B with ``p_b[k]``) and the play of every example, in a shuffled order (plays interleaved)."""
    g = torch.Generator().manual_seed(seed)
    groups, a, b = [], [], []
    for k, (n, pa, pb) in enumerate(zip(sizes, p_a, p_b)):
        groups += [label(k)] * n
        a.append((torch.rand(n, generator=g) < pa).float())
        b.append((torch.rand(n, generator=g) < pb).float())
    a, b = torch.cat(a), torch.cat(b)
    order = torch.randperm(len(groups), generator=g) if shuffle else torch.arange(len(groups))
    return a[order], b[order], [groups[i] for i in order.tolist()]


_N_BOOT = 5000         # what the learner's function is called with
_REF_BOOT = 40_000     # the reference's own resamples: its Monte-Carlo error is small beside _N_BOOT's
_BAND = 0.01           # a learner's 2.5 % (97.5 %) quantile must lie between the reference's
_SLACK = 0.01          # 1.5 % and 3.5 % (96.5 % and 98.5 %) quantiles, widened by _SLACK


@functools.lru_cache(maxsize=1)
def _bootstrap_cases() -> tuple[tuple[tuple, dict], ...]:
    """Three test sets, each with its reference interval, the band of accepted ends and the
    intervals of the typical mistakes (computed once; the checker passes copies of the data).

    0. 6 plays of 10 passages; A gets nearly all of a play right or nearly all wrong, so the
       differences are strongly correlated within a play: resampling passages gives a much
       narrower interval than resampling plays.
    1. 12 plays of very unequal sizes (40 down to 2 passages), A good on the big plays and poor on
       the small ones: pooling the passages and giving every play the same weight disagree.
    2. 10 plays of similar sizes with play ids that are ints; nothing special.

    The band: a correct implementation with any random number generator draws _N_BOOT resamples,
    and its 2.5 % quantile is within about 4.5 Monte-Carlo standard errors (sqrt(0.025 * 0.975 /
    _N_BOOT) = 0.0022 in probability) of 2.5 % when it lies between the reference's 1.5 % and 3.5 %
    quantiles; counting in probability rather than in score keeps the test honest where the
    bootstrap distribution is lumpy (few plays)."""
    specs = [
        dict(sizes=[10] * 6, p_a=[0.95, 0.05, 0.9, 0.95, 0.05, 0.1], p_b=[0.45, 0.4, 0.5, 0.4, 0.45, 0.5], seed=0),
        dict(sizes=[40, 35, 30, 25, 20, 6, 5, 4, 4, 3, 3, 2],
             p_a=[0.8, 0.7, 0.75, 0.65, 0.7, 0.2, 0.1, 0.3, 0.0, 0.3, 0.0, 0.5], p_b=[0.5] * 12, seed=0),
        dict(sizes=[15, 9, 12, 20, 7, 11, 14, 8, 10, 16], p_a=[0.6, 0.5, 0.7, 0.55, 0.4, 0.65, 0.6, 0.5, 0.45, 0.7],
             p_b=[0.5, 0.45, 0.55, 0.5, 0.4, 0.5, 0.6, 0.4, 0.45, 0.6], seed=2, label=lambda k: 100 + k),
    ]
    cases = []
    for spec in specs:
        a, b, groups = _plays(**spec)
        kw = dict(groups=groups, n_boot=_REF_BOOT, seed=12345)
        ref, inner, outer = (paired_bootstrap(a, b, level=lv, **kw)
                             for lv in (0.95, 0.95 - 2 * _BAND, 0.95 + 2 * _BAND))
        d = a - b
        names = list(dict.fromkeys(groups))
        play_means = torch.stack([d[[i for i, x in enumerate(groups) if x == n]].mean() for n in names])
        info = {
            "estimate": ref.estimate, "ref": (ref.low, ref.high),
            "low_band": (outer.low - _SLACK, inner.low + _SLACK),
            "high_band": (inner.high - _SLACK, outer.high + _SLACK),
            "examples": paired_bootstrap(a, b, n_boot=10_000, seed=1),
            "equal_weight": paired_bootstrap(play_means, torch.zeros_like(play_means), n_boot=_REF_BOOT, seed=2),
            "level_90": paired_bootstrap(a, b, level=0.90, **kw),
        }
        cases.append(((a, b, tuple(groups)), info))
    return tuple(cases)


def _fresh(args: tuple) -> tuple:
    """The arguments of a call, copied (a learner's function may change its inputs in place)."""
    a, b, groups = args
    return a.clone(), b.clone(), list(groups), _N_BOOT, 0


def _in_bands(pair, info) -> bool:
    (l0, l1), (h0, h1) = info["low_band"], info["high_band"]
    return l0 <= pair[0] <= l1 and h0 <= pair[1] <= h1


def _near(pair, interval, tol: float = 0.03) -> bool:
    return abs(pair[0] - interval.low) <= tol and abs(pair[1] - interval.high) <= tol


def _bootstrap_problem(got, info) -> str | None:
    if got is None:
        return "your function returned None; replace the placeholder with your code."
    pair = _as_pair(got)
    if pair is None:
        if _is_single_number(got):
            return ("you returned a single number; return the two ends of the 95 % interval as a pair "
                    "(low, high).")
        try:
            n = len(got)
        except Exception:  # noqa: BLE001
            n = None
        if n is not None and n != 2 and not isinstance(got, (str, bytes, dict)):
            return f"return exactly two numbers (low, high), not {n} items."
        return f"return a pair (low, high) of two numbers, not {describe(got)}."
    lo, hi = pair
    est = info["estimate"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"your interval ({lo}, {hi}) has a NaN or infinite end."
    if _in_bands(pair, info):
        return None
    if lo > hi:
        return (f"low = {lo:.3f} is above high = {hi:.3f}: return (low, high), the 2.5th percentile "
                "of the resampled differences first, then the 97.5th.")
    if _in_bands((-hi, -lo), info):
        return "that is the interval for mean(correct_b) - mean(correct_a); the difference is A minus B."
    ex, eq, l90 = info["examples"], info["equal_weight"], info["level_90"]
    if _near(pair, ex) and not _near(pair, eq):
        return (f"your interval ({lo:.3f}, {hi:.3f}) matches resampling single examples "
                f"({ex.low:.3f}, {ex.high:.3f}), not the plays ({info['ref'][0]:.3f}, {info['ref'][1]:.3f}): "
                "you resampled examples, not groups. Draw the plays with replacement and take all the "
                "examples of every play drawn.")
    if _near(pair, eq):
        return (f"your interval ({lo:.3f}, {hi:.3f}) is what you get by averaging the per-play means "
                "(every play weighted equally); pool the examples instead: the statistic of a resample "
                "is (sum of the differences of all examples in the drawn plays) / (their number), so a "
                "play with 40 passages counts more than one with 2.")
    if _near(pair, l90, tol=0.02):
        return "that is a 90 % interval (5th and 95th percentiles); a 95 % interval cuts 2.5 % from each end."
    if hi <= info["low_band"][1]:
        return ("both ends lie in the far lower tail of the resampled differences: np.percentile takes "
                "percents (2.5, 97.5), while np.quantile and torch.quantile take fractions (0.025, 0.975).")
    if not lo <= est <= hi:
        return (f"your interval ({lo:.3f}, {hi:.3f}) does not contain the point estimate "
                f"mean(correct_a) - mean(correct_b) = {est:.3f}; the statistic of each resample is that "
                "same difference, computed on the examples of the drawn plays.")
    return (f"expected about ({info['ref'][0]:.3f}, {info['ref'][1]:.3f}), got ({lo:.3f}, {hi:.3f}); draw "
            "G plays with replacement (G = number of plays), compute the pooled mean difference over "
            "their examples, repeat n_boot times and take the 2.5th and 97.5th percentiles.")


@never_raises('a function fn(correct_a, correct_b, groups, n_boot, seed) returning (low, high)')
def check_paired_bootstrap(fn, *, quiet: bool = False) -> Verdict:
    """``fn(correct_a, correct_b, groups, n_boot=2000, seed=0) -> (low, high)``: the 95 % percentile
    interval of ``mean(correct_a) - mean(correct_b)`` when whole groups (plays) are resampled with
    replacement. Checked against :func:`lmlib.stats.paired_bootstrap` with a tolerance from the
    Monte-Carlo error (see :func:`_bootstrap_cases`), then for reproducibility: the same seed must
    give the same interval."""
    if callable(fn):
        results = []

        def recorded(*args):
            out = fn(*args)
            results.append(out)
            return out
    else:
        recorded = fn
    cases = [(_fresh(args), info) for args, info in _bootstrap_cases()]
    v = check_function(recorded, cases, what="cluster bootstrap", quiet=True,
                       compare=lambda got, info: _bootstrap_problem(got, info) is None,
                       diagnose=lambda args, got, info: _bootstrap_problem(got, info))
    if v.ok:
        try:
            again = _as_pair(fn(*_fresh(_bootstrap_cases()[-1][0])))
        except Exception as exc:  # noqa: BLE001 - it worked a moment ago
            return hint(f"calling your function a second time raised {type(exc).__name__}: {exc}", quiet=quiet)
        if again != _as_pair(results[-1]):
            return hint("called twice with the same seed, your function returned two different intervals, "
                        f"{_as_pair(results[-1])} and {again}; draw the resamples from a generator seeded "
                        "with `seed` (torch.Generator().manual_seed(seed) or np.random.default_rng(seed)) so "
                        "that a result can be reproduced.", quiet=quiet)
    return _add_to_error(v, _explain_bootstrap_error, quiet)


def _explain_bootstrap_error(message: str) -> str | None:
    if "positional argument" in message or "unexpected keyword" in message:
        return f"the checker calls fn(correct_a, correct_b, groups, n_boot, seed) with n_boot = {_N_BOOT}, seed = 0"
    return None
