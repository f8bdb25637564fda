"""The chapter 5 checkers accept right answers and give specific hints for typical wrong ones."""

import math

import torch

from lmlib.exercises import ch05


def good_lr(step, max_steps, warmup, lr, min_lr):
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, max_steps - 1 - warmup)
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def test_lr_schedule(capsys):
    assert ch05.check_lr_schedule(good_lr)
    assert not ch05.check_lr_schedule(None)
    assert "(step + 1)" in str(ch05.check_lr_schedule(
        lambda s, n, w, lr, m: lr * s / w if s < w else good_lr(s, n, w, lr, m)).message)
    assert "min_lr, not 0" in ch05.check_lr_schedule(
        lambda s, n, w, lr, m: good_lr(s, n, w, lr, 0.0) if s >= w else good_lr(s, n, w, lr, m)).message
    assert "END of the warmup" in ch05.check_lr_schedule(
        lambda s, n, w, lr, m: good_lr(s, n, w, lr, m) if s < w else
        m + (lr - m) * 0.5 * (1 + math.cos(math.pi * s / (n - 1)))).message
    assert "warmup is missing" in ch05.check_lr_schedule(
        lambda s, n, w, lr, m: lr if s < w else good_lr(s, n, w, lr, m)).message
    assert not ch05.check_lr_schedule(lambda *a: None)


def good_top_p(logits, p):
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs
    drop = before >= p
    drop[..., 0] = False
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def test_top_p():
    assert ch05.check_top_p(good_top_p)

    def strict(logits, p):  # drops the token that crosses p
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        drop = sorted_logits.softmax(-1).cumsum(-1) > p
        drop[..., 0] = False
        return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))

    assert "preceding mass" in ch05.check_top_p(strict).message

    def no_top(logits, p):
        out = good_top_p(logits, p)
        out[..., :] = float("-inf")
        return out

    assert "always keep the most probable" in ch05.check_top_p(no_top).message

    def unsorted(logits, p):  # forgets to map back to vocabulary order
        sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = (probs.cumsum(-1) - probs) >= p
        drop[..., 0] = False
        return logits.masked_fill(drop, float("-inf"))

    assert "original vocabulary order" in ch05.check_top_p(unsorted).message
    assert "LOGITS" in ch05.check_top_p(lambda x, p: good_top_p(x, p).softmax(-1)).message
    assert "None" in ch05.check_top_p(lambda x, p: None).message


def test_kv_cache_floats():
    c = ch05.KV_CONFIG
    expected = 2 * c["n_layer"] * c["tokens"] * c["n_embd"]  # independent: K and V of n_embd per token per layer
    assert ch05.check_kv_cache_floats(expected)
    assert "keys only" in ch05.check_kv_cache_floats(expected // 2).message
    assert "one layer" in ch05.check_kv_cache_floats(expected // 12).message
    assert "bytes" in ch05.check_kv_cache_floats(expected * 4).message
    assert "n_head" in ch05.check_kv_cache_floats(expected * 12).message
    assert not ch05.check_kv_cache_floats(None)


def test_bits_per_char():
    loss, cpt = ch05.BPC_LOSS_NATS_PER_TOKEN, ch05.BPC_CHARS_PER_TOKEN
    assert ch05.check_bits_per_char(loss / cpt / math.log(2))
    assert "ln 2" in ch05.check_bits_per_char(loss / cpt).message
    assert "bits per TOKEN" in ch05.check_bits_per_char(loss / math.log(2)).message
    assert "do not multiply" in ch05.check_bits_per_char(loss / math.log(2) * cpt).message
    assert not ch05.check_bits_per_char(1.0)
