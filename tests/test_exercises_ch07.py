"""The chapter-7 checkers accept right answers and give specific hints for typical wrong ones."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

from lmlib.classification import pool
from lmlib.exercises import ch07
from lmlib.metrics import confusion_matrix, macro_f1
from lmlib.sft import sft_example
from lmlib.stats import paired_bootstrap


def _fails_with(v, phrase):
    assert not v, f"judged correct, expected a hint with {phrase!r}"
    assert phrase in v.message, v.message


def test_lora_forward():
    assert ch07.check_lora_forward(lambda x, W, b, A, B, alpha: x @ W.T + b + alpha / A.shape[0] * x @ A.T @ B.T,
                                   quiet=True)
    v = ch07.check_lora_forward(lambda x, W, b, A, B, alpha: x @ W.T + b + x @ A.T @ B.T, quiet=True)
    assert not v and "alpha / r" in v.message
    v = ch07.check_lora_forward(lambda x, W, b, A, B, alpha: x @ W.T + alpha / A.shape[0] * x @ A.T @ B.T,
                                quiet=True)
    assert not v and "bias" in v.message


# ---------------------------------------------------------------------------------------------
# merging a LoRA layer
# ---------------------------------------------------------------------------------------------

def merged_linear(lora):
    """What the exercise asks for, written out."""
    W, b = lora.base.weight, lora.base.bias
    lin = nn.Linear(W.shape[1], W.shape[0], bias=b is not None, dtype=W.dtype)
    with torch.no_grad():
        lin.weight.copy_(W + (lora.alpha / lora.r) * lora.lora_B @ lora.lora_A)
        if b is not None:
            lin.bias.copy_(b)
    return lin


def with_weight(weight_of, copy_bias=True):
    """A merge that builds a correct new layer except for its weight, ``weight_of(lora)``."""
    def merge(lora):
        b = lora.base.bias
        lin = nn.Linear(lora.in_features, lora.out_features, bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(weight_of(lora))
            if b is not None and copy_bias:
                lin.bias.copy_(b)
        return lin
    return merge


def test_lora_merged_accepts_right_answers():
    assert ch07.check_lora_merged(merged_linear, quiet=True)
    assert ch07.check_lora_merged(lambda lora: lora.merged(), quiet=True)

    def on_a_deep_copy(lora):
        lin = copy.deepcopy(lora.base)
        with torch.no_grad():
            lin.weight += lora.scaling * lora.lora_B @ lora.lora_A
        return lin

    assert ch07.check_lora_merged(on_a_deep_copy, quiet=True)


def test_lora_merged_cases_have_a_real_update():
    for case in ch07._lora_merge_cases():
        lora = case["lora"]
        assert lora.lora_B.abs().min() > 0  # with B = 0 every wrong scale would pass
        scales = (lora.scaling, 1.0, lora.alpha, lora.r / lora.alpha)  # right, forgotten, two wrong ones
        assert len(set(scales)) == 4, scales
    assert {c["lora"].base.bias is None for c in ch07._lora_merge_cases()} == {True, False}


def test_lora_merged_leaves_the_global_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    ch07._lora_merge_cases()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("weight_of, phrase", [
    (lambda lora: lora.base.weight + lora.lora_B @ lora.lora_A, "without its scale"),
    (lambda lora: lora.base.weight + lora.alpha * lora.lora_B @ lora.lora_A, "not alpha."),
    (lambda lora: lora.base.weight + lora.r / lora.alpha * lora.lora_B @ lora.lora_A, "not r / alpha"),
    (lambda lora: lora.base.weight + lora.scaling * lora.lora_A.T @ lora.lora_B.T, "transpose"),
    (lambda lora: lora.base.weight + lora.scaling * lora.lora_A @ lora.lora_B, "A @ B does not fit"),
    (lambda lora: lora.base.weight, "still W"),
], ids=["no_scale", "alpha", "r_over_alpha", "transposed", "A_at_B", "no_update"])
def test_lora_merged_wrong_weight(weight_of, phrase):
    _fails_with(ch07.check_lora_merged(with_weight(weight_of), quiet=True), phrase)


def test_lora_merged_bias_mistakes():
    # a fresh nn.Linear always has a bias, and this one keeps its random initial values
    def always_bias(lora):
        lin = nn.Linear(lora.in_features, lora.out_features)
        with torch.no_grad():
            lin.weight.copy_(lora.base.weight + lora.delta_weight())
        return lin

    _fails_with(ch07.check_lora_merged(always_bias, quiet=True), "bias=False")

    def never_bias(lora):
        lin = nn.Linear(lora.in_features, lora.out_features, bias=False)
        with torch.no_grad():
            lin.weight.copy_(lora.base.weight + lora.delta_weight())
        return lin

    _fails_with(ch07.check_lora_merged(never_bias, quiet=True), "keep the bias")
    f = with_weight(lambda lora: lora.base.weight + lora.delta_weight(), copy_bias=False)
    _fails_with(ch07.check_lora_merged(f, quiet=True), "copy the base layer's bias")

    def shared_bias(lora):
        lin = merged_linear(lora)
        if lora.base.bias is not None:
            lin.bias = lora.base.bias
        return lin

    _fails_with(ch07.check_lora_merged(shared_bias, quiet=True), "shares a tensor")


def test_lora_merged_must_not_touch_the_lora_layer():
    def in_place(lora):
        with torch.no_grad():
            lora.base.weight += lora.scaling * lora.lora_B @ lora.lora_A
        return lora.base

    v = ch07.check_lora_merged(in_place, quiet=True)
    _fails_with(v, "in place")
    assert "twice" in v.message and "returned lora.base" in v.message

    def in_place_copy(lora):
        with torch.no_grad():
            lora.base.weight += lora.delta_weight()
        return copy.deepcopy(lora.base)

    v = ch07.check_lora_merged(in_place_copy, quiet=True)
    _fails_with(v, "twice")
    assert "returned lora.base" not in v.message

    def zero_b_afterwards(lora):
        lin = merged_linear(lora)
        with torch.no_grad():
            lora.lora_B.zero_()
        return lin

    _fails_with(ch07.check_lora_merged(zero_b_afterwards, quiet=True), "changed the LoRA layer it was given (lora_B)")

    def rescale(lora):
        lin = merged_linear(lora)
        lora.scaling = 0.0
        return lin

    _fails_with(ch07.check_lora_merged(rescale, quiet=True), "scaling")


def test_lora_merged_wrong_kind_of_answer():
    _fails_with(ch07.check_lora_merged(lambda lora: lora, quiet=True), "LoRA layer")
    _fails_with(ch07.check_lora_merged(lambda lora: lora.base, quiet=True), "lora.base itself")
    _fails_with(ch07.check_lora_merged(lambda lora: lora.base.weight + lora.delta_weight(), quiet=True),
                "bare tensor")
    _fails_with(ch07.check_lora_merged(lambda lora: "merged", quiet=True), "torch.nn.Linear")

    def swapped_features(lora):
        lin = nn.Linear(lora.out_features, lora.in_features, bias=lora.base.bias is not None)
        ref = merged_linear(lora)
        lin.weight, lin.bias = ref.weight, ref.bias
        return lin

    _fails_with(ch07.check_lora_merged(swapped_features, quiet=True), "in_features")


# ---------------------------------------------------------------------------------------------
# SFT labels
# ---------------------------------------------------------------------------------------------

def test_sft_labels():
    assert ch07.check_sft_labels(lambda p, r: sft_example(p, r, block_size=64), quiet=True)
    v = ch07.check_sft_labels(lambda p, r: ((p + r)[:-1], (p + r)[1:]), quiet=True)
    assert not v and "-100" in v.message
    v = ch07.check_sft_labels(lambda p, r: ((p + r)[:-1], [-100] * len(p) + r[1:]), quiet=True)
    assert not v and "off by one" in v.message


# ---------------------------------------------------------------------------------------------
# last-token pooling
# ---------------------------------------------------------------------------------------------

def last_token_pool(hidden, attention_mask):
    last = attention_mask.sum(1) - 1                                      # (B,)
    return hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])).squeeze(1)


def test_last_token_pool_accepts_right_answers():
    assert ch07.check_last_token_pool(last_token_pool, quiet=True)
    assert ch07.check_last_token_pool(lambda h, m: pool(h, m, "last"), quiet=True)


def test_last_token_pool_cases_cover_the_edge_rows():
    (B, T, C), lengths = ch07._POOL_CASES[0]
    assert T not in lengths  # so that an off-by-one shows as wrong values, not as an IndexError
    assert len({B, T, C}) == 3  # so that (B, T), (B, C) and (T, C) results can be told apart
    all_lengths = {n for (_, T, _), lens in ch07._POOL_CASES for n in lens}
    assert 1 in all_lengths and any(T in lens for (_, T, _), lens in ch07._POOL_CASES)
    assert all(len(set(lens)) > 1 for _, lens in ch07._POOL_CASES)
    # the reference, a loop, agrees with lmlib.classification.pool
    g = torch.Generator().manual_seed(1)
    for (B, T, C), lens in ch07._POOL_CASES:
        h = torch.randn(B, T, C, generator=g)
        m = ch07._right_padded(lens, T)
        assert torch.equal(ch07._last_real_token(h, m), pool(h, m, "last"))


def _rows(h, idx):
    return h[torch.arange(h.shape[0]), idx]


@pytest.mark.parametrize("fn, phrase", [
    (lambda h, m: h[:, -1], "last POSITION"),
    (lambda h, m: _rows(h, m.sum(1)), "off by one"),
    (lambda h, m: _rows(h, m.sum(1).clamp(max=h.shape[1] - 1)), "off by one"),
    (lambda h, m: pool(h, m, "mean"), "mean over the real tokens"),
    (lambda h, m: h.mean(1), "padding included"),
    (lambda h, m: h[:, 0], "position 0"),
    (lambda h, m: h[..., -1], "(B, T)"),
    (lambda h, m: h[:, -1:], "extra axis"),
    (lambda h, m: h.reshape(h.shape[0], -1), "shape (B, C)"),
    (lambda h, m: _rows(h, m.sum(1) - 1).long(), "float tensor"),
    (lambda h, m: torch.stack([h[b, m[b].tolist().index(0) - 1] for b in range(h.shape[0])]), "no 0 in its mask"),
    (lambda h, m: _rows(h, m.sum(1) - 2), "attention_mask[b].sum() - 1"),
], ids=["last_position", "off_by_one", "off_by_one_clamped", "masked_mean", "mean_with_padding", "first",
        "channel_axis", "keepdim", "flattened", "int_dtype", "index_of_first_zero", "other"])
def test_last_token_pool_wrong_answers(fn, phrase):
    _fails_with(ch07.check_last_token_pool(fn, quiet=True), phrase)


# ---------------------------------------------------------------------------------------------
# macro-F1
# ---------------------------------------------------------------------------------------------

def _per_class(cm, clamp=True):
    cm = cm.double()
    tp = cm.diag()
    p = tp / (cm.sum(0).clamp(min=1) if clamp else cm.sum(0))
    r = tp / cm.sum(1)
    f1 = torch.where(p + r > 0, 2 * p * r / (p + r), torch.zeros_like(tp))
    return p, r, f1, cm.sum(1)


def test_macro_f1_accepts_right_answers():
    def from_cm(cm):
        k = cm.shape[0]
        target = torch.repeat_interleave(torch.arange(k), cm.sum(1))
        pred = torch.cat([torch.repeat_interleave(torch.arange(k), cm[i]) for i in range(k)])
        assert torch.equal(confusion_matrix(pred, target, k), cm)
        return macro_f1(pred, target, k)

    assert ch07.check_macro_f1(from_cm, quiet=True)
    assert ch07.check_macro_f1(lambda cm: _per_class(cm)[2].mean().item(), quiet=True)
    # F1 = 2 TP / (row sum + column sum) never divides by zero
    assert ch07.check_macro_f1(lambda cm: (2 * cm.diag() / (cm.sum(0) + cm.sum(1))).double().mean().item(),
                               quiet=True)


@pytest.mark.parametrize("fn, phrase", [
    (lambda cm: (cm.diag().sum() / cm.sum()).item(), "accuracy"),
    (lambda cm: _per_class(cm)[0].mean().item(), "mean precision"),
    (lambda cm: _per_class(cm)[1].mean().item(), "balanced accuracy"),
    (lambda cm: (lambda p, r: (2 * p * r / (p + r)).item())(_per_class(cm)[0].mean(), _per_class(cm)[1].mean()),
     "F1 of the averaged precision and recall"),
    (lambda cm: ((_per_class(cm)[0] + _per_class(cm)[1]) / 2).mean().item(), "harmonic mean"),
    (lambda cm: ((_per_class(cm)[2] * _per_class(cm)[3]).sum() / _per_class(cm)[3].sum()).item(), "support-weighted"),
    (lambda cm: _per_class(cm)[2], "per-class F1 scores"),
    (lambda cm: (lambda p, r: (2 * p * r / (p + r)).mean().item())(*_per_class(cm, clamp=False)[:2]),
     "never predicted"),
    (lambda cm: _per_class(cm)[2].max().item(), "plain mean over classes"),
], ids=["accuracy", "macro_precision", "macro_recall", "f1_of_means", "arithmetic_mean", "weighted", "vector",
        "nan", "other"])
def test_macro_f1_wrong_answers(fn, phrase):
    _fails_with(ch07.check_macro_f1(fn, quiet=True), phrase)


# ---------------------------------------------------------------------------------------------
# the cluster (paired) bootstrap
# ---------------------------------------------------------------------------------------------

def bootstrap_with_lmlib(shift=0):
    def fn(correct_a, correct_b, groups, n_boot=2000, seed=0):
        iv = paired_bootstrap(correct_a, correct_b, groups=groups, n_boot=n_boot, seed=seed + shift)
        return iv.low, iv.high
    return fn


def _group_ids(groups):
    index = {}
    return np.array([index.setdefault(g, len(index)) for g in groups]), len(index)


def bootstrap_numpy(correct_a, correct_b, groups, n_boot=2000, seed=0, weighting="pooled", q=(2.5, 97.5)):
    """An implementation with another random number generator (numpy's) and np.percentile."""
    d = np.asarray(correct_a, dtype=float) - np.asarray(correct_b, dtype=float)
    gid, G = _group_ids(groups)
    sums, counts = np.bincount(gid, weights=d, minlength=G), np.bincount(gid, minlength=G)
    pick = np.random.default_rng(seed).integers(G, size=(n_boot, G))
    if weighting == "pooled":
        stats = sums[pick].sum(1) / counts[pick].sum(1)
    else:  # every play weighted equally: the mean of the per-play means
        stats = (sums / counts)[pick].mean(1)
    lo, hi = np.percentile(stats, q)
    return float(lo), float(hi)


def paired_bootstrap_solution(correct_a, correct_b, groups, n_boot=2000, seed=0):
    """The torch solution given in the notebook material."""
    d = correct_a.double() - correct_b.double()                            # (N,) per-example differences
    index = {}
    gid = torch.tensor([index.setdefault(g, len(index)) for g in groups])  # (N,) play number of each example
    G = len(index)
    sums = torch.zeros(G, dtype=torch.float64).index_add_(0, gid, d)       # (G,) per play
    counts = torch.zeros(G, dtype=torch.float64).index_add_(0, gid, torch.ones_like(d))
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(G, (n_boot, G), generator=gen)                    # G plays per resample, with replacement
    stats = sums[pick].sum(1) / counts[pick].sum(1)                        # (n_boot,) pooled mean differences
    low, high = torch.quantile(stats, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return low, high


def test_paired_bootstrap_accepts_right_answers():
    assert ch07.check_paired_bootstrap(bootstrap_with_lmlib(), quiet=True)
    assert ch07.check_paired_bootstrap(bootstrap_numpy, quiet=True)
    assert ch07.check_paired_bootstrap(paired_bootstrap_solution, quiet=True)
    # a tensor of two numbers, from torch.quantile, is a pair too
    assert ch07.check_paired_bootstrap(lambda *a: torch.tensor(paired_bootstrap_solution(*a)), quiet=True)


def test_paired_bootstrap_tolerance_is_loose_enough_for_other_random_draws():
    """With other seeds (another generator, as far as the checker can tell) the reference still
    lands inside the accepted bands on every case, and so does a numpy implementation."""
    for args, info in ch07._bootstrap_cases():
        a, b, groups = args
        for seed in range(1, 13):
            iv = paired_bootstrap(a, b, groups=list(groups), n_boot=ch07._N_BOOT, seed=seed)
            assert ch07._in_bands((iv.low, iv.high), info), (seed, iv, info["low_band"], info["high_band"])
            assert ch07._in_bands(bootstrap_numpy(a, b, groups, ch07._N_BOOT, seed), info), seed
    for shift in (1, 7, 1000):
        assert ch07.check_paired_bootstrap(bootstrap_with_lmlib(shift), quiet=True)


def test_paired_bootstrap_cases_tell_the_mistakes_apart():
    cases = ch07._bootstrap_cases()
    # case 0: resampling single passages gives a clearly narrower interval than resampling plays
    info = cases[0][1]
    ex_width = info["examples"].high - info["examples"].low
    assert ex_width < 0.7 * (info["ref"][1] - info["ref"][0])
    assert not ch07._in_bands((info["examples"].low, info["examples"].high), info)
    # case 1: plays of unequal sizes, where weighting every play equally moves the interval
    (a, b, groups), info = cases[1]
    assert max(groups.count(g) for g in groups) >= 10 * min(groups.count(g) for g in groups)
    assert not ch07._in_bands((info["equal_weight"].low, info["equal_weight"].high), info)
    # the plays are interleaved, not in contiguous blocks
    assert any(groups[i] != groups[i + 1] for i in range(len(groups) - 1))
    assert len({groups[i] for i in range(10)}) > 1
    for _, info in cases:
        assert info["ref"][0] < info["estimate"] < info["ref"][1]
        assert info["low_band"][0] < info["ref"][0] < info["low_band"][1]
        assert info["high_band"][0] < info["ref"][1] < info["high_band"][1]


def test_paired_bootstrap_wrong_answers():
    def per_example(correct_a, correct_b, groups, n_boot=2000, seed=0):
        iv = paired_bootstrap(correct_a, correct_b, n_boot=n_boot, seed=seed)
        return iv.low, iv.high

    _fails_with(ch07.check_paired_bootstrap(per_example, quiet=True), "you resampled examples, not groups")
    v = ch07.check_paired_bootstrap(lambda *a: bootstrap_numpy(*a, weighting="equal"), quiet=True)
    _fails_with(v, "averaging the per-play means")
    _fails_with(ch07.check_paired_bootstrap(lambda *a: bootstrap_numpy(*a)[::-1], quiet=True), "is above high")

    def b_minus_a(correct_a, correct_b, groups, n_boot=2000, seed=0):
        return bootstrap_with_lmlib()(correct_b, correct_a, groups, n_boot, seed)

    _fails_with(ch07.check_paired_bootstrap(b_minus_a, quiet=True), "A minus B")
    _fails_with(ch07.check_paired_bootstrap(lambda *a: bootstrap_numpy(*a, q=(5, 95)), quiet=True), "90 %")
    _fails_with(ch07.check_paired_bootstrap(lambda *a: bootstrap_numpy(*a, q=(0.025, 0.975)), quiet=True),
                "percents")

    def shifted(correct_a, correct_b, groups, n_boot=2000, seed=0):
        lo, hi = bootstrap_numpy(correct_a, correct_b, groups, n_boot, seed)
        return lo + 0.6, hi + 0.6

    _fails_with(ch07.check_paired_bootstrap(shifted, quiet=True), "does not contain the point estimate")

    def stretched(correct_a, correct_b, groups, n_boot=2000, seed=0):
        lo, hi = bootstrap_numpy(correct_a, correct_b, groups, n_boot, seed)
        return lo - 0.2, hi + 0.2

    _fails_with(ch07.check_paired_bootstrap(stretched, quiet=True), "expected about")


def test_paired_bootstrap_wrong_kind_of_answer():
    def point(correct_a, correct_b, groups, n_boot=2000, seed=0):
        return float(correct_a.mean() - correct_b.mean())

    _fails_with(ch07.check_paired_bootstrap(point, quiet=True), "single number")
    _fails_with(ch07.check_paired_bootstrap(lambda *a: torch.tensor(0.1), quiet=True), "single number")

    def with_estimate(correct_a, correct_b, groups, n_boot=2000, seed=0):
        return (float(correct_a.mean() - correct_b.mean()), *bootstrap_numpy(correct_a, correct_b, groups, n_boot, seed))

    _fails_with(ch07.check_paired_bootstrap(with_estimate, quiet=True), "exactly two numbers")

    def interval(correct_a, correct_b, groups, n_boot=2000, seed=0):
        return paired_bootstrap(correct_a, correct_b, groups=groups, n_boot=n_boot, seed=seed)

    _fails_with(ch07.check_paired_bootstrap(interval, quiet=True), "pair (low, high)")
    _fails_with(ch07.check_paired_bootstrap(lambda *a: (float("nan"), 0.1), quiet=True), "NaN")


def test_paired_bootstrap_must_use_its_seed():
    calls = []

    def ignores_seed(correct_a, correct_b, groups, n_boot=2000, seed=0):
        calls.append(1)
        return bootstrap_numpy(correct_a, correct_b, groups, n_boot, seed=len(calls))

    _fails_with(ch07.check_paired_bootstrap(ignores_seed, quiet=True), "same seed")

    def fails_the_second_time(correct_a, correct_b, groups, n_boot=2000, seed=0):
        calls.append(1)
        if len(calls) > 3:  # the three test cases work, the repeat call fails
            raise RuntimeError("out of memory")
        return bootstrap_numpy(correct_a, correct_b, groups, n_boot, seed)

    calls.clear()
    _fails_with(ch07.check_paired_bootstrap(fails_the_second_time, quiet=True), "second time raised RuntimeError")


def test_paired_bootstrap_wrong_signature_says_how_it_is_called():
    v = ch07.check_paired_bootstrap(lambda correct_a, correct_b: (0.0, 0.1), quiet=True)
    _fails_with(v, "TypeError")
    assert "fn(correct_a, correct_b, groups, n_boot, seed)" in v.message


def test_paired_bootstrap_does_not_share_its_data_with_the_learner():
    def clobbers(correct_a, correct_b, groups, n_boot=2000, seed=0):
        out = bootstrap_numpy(correct_a, correct_b, groups, n_boot, seed)
        correct_a.zero_()
        groups.clear()
        return out

    assert ch07.check_paired_bootstrap(clobbers, quiet=True)
    assert ch07.check_paired_bootstrap(bootstrap_numpy, quiet=True)


def test_placeholders_give_hints_not_errors():
    for check in (ch07.check_lora_forward, ch07.check_lora_merged, ch07.check_sft_labels,
                  ch07.check_last_token_pool, ch07.check_macro_f1, ch07.check_paired_bootstrap):
        v = check(lambda *a: None, quiet=True)
        assert not v and "None" in v.message


def test_lora_count_exercise_is_gone():
    assert not hasattr(ch07, "check_lora_count")
    assert set(ch07.__all__) == {"check_lora_forward", "check_lora_merged", "check_sft_labels",
                                 "check_last_token_pool", "check_macro_f1", "check_paired_bootstrap"}
