"""The Chapter 3 checkers accept right answers and give the specific hint for typical wrong ones."""

from __future__ import annotations

import math

import torch

from lmlib.attention import causal_mask, scaled_dot_product_attention
from lmlib.exercises import ch03

Q = torch.tensor(ch03.HAND_QUERY, dtype=torch.float64)
K = torch.tensor(ch03.HAND_KEYS, dtype=torch.float64)


def message(v) -> str:
    return v.message


# ---------------------------------------------------------------------------- weights by hand

def test_attention_weights_right_answer_from_torch():
    _, w = scaled_dot_product_attention(Q[None], K, torch.eye(3, dtype=torch.float64))
    assert ch03.check_attention_weights(w[0], quiet=True)
    assert ch03.check_attention_weights(w[0].tolist(), quiet=True)
    # the scores are [1, 1, 4]; by hand
    e = [math.exp(1 / math.sqrt(2)), math.exp(1 / math.sqrt(2)), math.exp(4 / math.sqrt(2))]
    assert ch03.check_attention_weights([x / sum(e) for x in e], quiet=True)


def test_attention_weights_wrong_answers_get_specific_hints():
    raw = torch.tensor([1.0, 1.0, 4.0])
    v = ch03.check_attention_weights(torch.softmax(raw, 0), quiet=True)
    assert not v and "sqrt(d_k)" in message(v)
    v = ch03.check_attention_weights(torch.softmax(raw / 2, 0), quiet=True)
    assert not v and "not by d_k" in message(v)
    v = ch03.check_attention_weights(raw / raw.sum(), quiet=True)
    assert not v and "softmax" in message(v)
    v = ch03.check_attention_weights(raw / math.sqrt(2), quiet=True)
    assert not v and "apply the softmax" in message(v)
    v = ch03.check_attention_weights([0.5, 0.5], quiet=True)
    assert not v and "3 weights" in message(v)
    v = ch03.check_attention_weights([0.5, 0.5, 0.5], quiet=True)
    assert not v and "sum to 1" in message(v)
    v = ch03.check_attention_weights(None, quiet=True)
    assert not v and "None" in message(v)


# ---------------------------------------------------------------------------- masked softmax

def right_masked_softmax(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    m = x.amax(-1, keepdim=True).clamp(min=torch.finfo(x.dtype).min)
    e = (x - m).exp()
    return e / e.sum(-1, keepdim=True).clamp(min=1e-300)


def test_masked_softmax_right_answers():
    assert ch03.check_masked_softmax(right_masked_softmax, quiet=True)
    from lmlib.attention import stable_softmax
    assert ch03.check_masked_softmax(lambda s, m: stable_softmax(s.masked_fill(~m, -math.inf)), quiet=True)


def test_masked_softmax_wrong_answers():
    def naive(scores, mask):  # overflows
        e = scores.exp() * mask
        return e / e.sum(-1, keepdim=True)

    def nan_on_empty_rows(scores, mask):
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)

    def inverted(scores, mask):
        return right_masked_softmax(scores, ~mask)

    def after(scores, mask):
        return torch.softmax(scores, -1).masked_fill(~mask, 0.0)

    def wrong_dim(scores, mask):
        return right_masked_softmax(scores.transpose(-1, -2), mask.transpose(-1, -2)).transpose(-1, -2)

    def not_masked(scores, mask):
        return torch.softmax(scores, -1)

    def crashes(scores, mask):
        raise RuntimeError("boom")

    expectations = [
        (naive, "maximum"),
        (nan_on_empty_rows, "every key is masked"),
        (inverted, "inverted"),
        (after, "AFTER the softmax"),
        (wrong_dim, "LAST dimension"),
        (not_masked, "weight exactly 0"),
        (crashes, "raised RuntimeError"),
        (lambda s, m: None, "returns None"),
        (lambda s, m: s.tolist(), "return a tensor"),
    ]
    for fn, text in expectations:
        v = ch03.check_masked_softmax(fn, quiet=True)
        assert not v, fn
        assert text in message(v), (fn, message(v))
    assert not ch03.check_masked_softmax(None, quiet=True)


# ---------------------------------------------------------------------------- causal mask

def test_causal_mask_right_answers():
    assert ch03.check_causal_mask(causal_mask, quiet=True)

    def by_positions(t_q, t_k):
        i = torch.arange(t_k - t_q, t_k)[:, None]
        return torch.arange(t_k)[None, :] <= i

    assert ch03.check_causal_mask(by_positions, quiet=True)


def test_causal_mask_wrong_answers():
    cases = [
        (lambda t_q, t_k: torch.ones(t_q, t_k, dtype=torch.bool).tril(), "LAST"),
        (lambda t_q, t_k: ~causal_mask(t_q, t_k), "inverted"),
        (lambda t_q, t_k: torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q - 1), "itself"),
        (lambda t_q, t_k: causal_mask(t_q, t_k).float(), "bool tensor"),
        (lambda t_q, t_k: torch.ones(t_q, t_q, dtype=torch.bool).tril(), "shape"),
        (lambda t_q, t_k: None, "returns None"),
    ]
    for fn, text in cases:
        v = ch03.check_causal_mask(fn, quiet=True)
        assert not v and text in message(v), message(v)


# ---------------------------------------------------------------------------- split heads

def test_split_heads():
    def right(x, h):
        B, T, C = x.shape
        return x.view(B, T, h, C // h).permute(0, 2, 1, 3)

    def scrambled(x, h):
        B, T, C = x.shape
        return x.reshape(B, h, T, C // h)

    def strided(x, h):
        B, T, C = x.shape
        return x.view(B, T, C // h, h).permute(0, 3, 1, 2)

    def no_transpose(x, h):
        B, T, C = x.shape
        return x.view(B, T, h, C // h)

    assert ch03.check_split_heads(right, quiet=True)
    v = ch03.check_split_heads(scrambled, quiet=True)
    assert not v and "scrambled" in message(v)
    v = ch03.check_split_heads(strided, quiet=True)
    assert not v and "CONTIGUOUS" in message(v)
    v = ch03.check_split_heads(no_transpose, quiet=True)
    assert not v and "(B, n_heads, T, d_head)" in message(v)


# ---------------------------------------------------------------------------- parameter count

def test_param_count():
    from lmlib.attention import MultiHeadAttention

    def from_module(d, h, bias):
        return sum(p.numel() for p in MultiHeadAttention(d, h, bias=bias).parameters())

    assert ch03.check_param_count(lambda d, h, b: 4 * d * d + 4 * d * b, quiet=True)
    assert ch03.check_param_count(from_module, quiet=True)
    cases = [
        (lambda d, h, b: 3 * d * d + 3 * d * b, "output projection"),
        (lambda d, h, b: 4 * d * d, "biases"),
        (lambda d, h, b: h * (4 * d * d + 4 * d * b), "does not multiply"),
        (lambda d, h, b: 4 * d * (d // h) + 4 * d * b, "d_model x d_model"),
        (lambda d, h, b: float(4 * d * d + 4 * d * b), "int"),
    ]
    for fn, text in cases:
        v = ch03.check_param_count(fn, quiet=True)
        assert not v and text in message(v), message(v)
