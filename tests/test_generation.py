"""Tests for lmlib.generation: filters vs transformers' logits processors, KV cache equivalence,
greedy decoding vs transformers' generate on the same weights, stopping, the context window."""

import pytest
import torch

from lmlib import generation as gen
from lmlib.gpt import GPT, GPTConfig


def tiny_gpt(block_size=24, vocab_size=29, seed=0):
    torch.manual_seed(seed)
    m = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32))
    with torch.no_grad():  # larger weights than GPT-2's init so that the distributions are peaked
        for p in m.parameters():
            if p.dim() >= 2:
                p.mul_(8)
    return m.eval()


def test_top_k_and_top_p_match_transformers_processors():
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 50, generator=g) * 3
    for k in (1, 5, 49, 50):
        ref = TopKLogitsWarper(top_k=k)(None, logits.clone())
        assert torch.equal(gen.top_k_filter(logits, k), ref)
    for p in (0.05, 0.3, 0.9, 0.999):
        ref = TopPLogitsWarper(top_p=p)(None, logits.clone())
        assert torch.equal(torch.isinf(gen.top_p_filter(logits, p)), torch.isinf(ref)), p


def test_top_p_keeps_smallest_set_reaching_p_by_hand():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = ~torch.isinf(gen.top_p_filter(probs.log(), 0.75))
    assert kept.tolist() == [True, True, False, False]  # 0.5 < 0.75 <= 0.8
    kept = ~torch.isinf(gen.top_p_filter(probs.log(), 0.5))
    assert kept.tolist() == [True, False, False, False]
    kept = ~torch.isinf(gen.top_p_filter(probs.log(), 0.01))
    assert kept.tolist() == [True, False, False, False]  # the top token always survives


def test_temperature_and_filters_give_a_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    probs = gen.next_token_logits_to_probs(logits, temperature=0.5)
    torch.testing.assert_close(probs, torch.softmax(logits / 0.5, -1))
    probs = gen.next_token_logits_to_probs(logits, top_k=2)
    torch.testing.assert_close(probs, torch.tensor([[torch.e / (torch.e + 1), 1 / (torch.e + 1), 0, 0]]))


def test_bad_arguments_raise():
    m = tiny_gpt()
    idx = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature"):
        gen.generate(m, idx, 2, temperature=-1.0)
    with pytest.raises(ValueError, match="top_p"):
        gen.generate(m, idx, 2, top_p=1.5)
    with pytest.raises(ValueError, match="top_k"):
        gen.generate(m, idx, 2, top_k=0)
    with pytest.raises(ValueError, match="empty"):
        gen.generate(m, idx[:, :0], 2)
    with pytest.raises(ValueError, match=r"\[0, 29\)"):
        gen.generate(m, torch.tensor([[3, 40]]), 2)
    with pytest.raises(ValueError, match="context window"):
        gen.generate(m, idx, 30, context="error")


@pytest.mark.parametrize("n_new", [10, 40])  # 40 runs past block_size=24: the window slides
def test_cached_equals_uncached_greedy_and_sampling(n_new):
    m = tiny_gpt()
    idx = torch.randint(0, 29, (3, 5), generator=torch.Generator().manual_seed(1))
    a = gen.generate(m, idx, n_new, do_sample=False, use_cache=True)
    b = gen.generate(m, idx, n_new, do_sample=False, use_cache=False)
    assert a.shape == (3, 5 + n_new) and torch.equal(a, b)
    for kw in (dict(), dict(temperature=0.8, top_k=10), dict(top_p=0.9)):
        a = gen.generate(m, idx, n_new, use_cache=True, generator=torch.Generator().manual_seed(7), **kw)
        b = gen.generate(m, idx, n_new, use_cache=False, generator=torch.Generator().manual_seed(7), **kw)
        assert torch.equal(a, b), kw


@pytest.mark.parametrize("n_new", [10, 40])
def test_cached_equals_uncached_with_eos_and_left_over_rows(n_new):
    """The KV cache (filled in place, its buffer growing as the sequence does, rebuilt when the
    window slides) gives the same tokens as re-running the model, also when rows stop at eos_id."""
    m = tiny_gpt()
    idx = torch.randint(0, 29, (4, 3), generator=torch.Generator().manual_seed(2))
    for kw in (dict(do_sample=False), dict(temperature=1.3, generator_seed=5), dict(top_k=5, generator_seed=6)):
        kw = dict(kw)
        seed = kw.pop("generator_seed", None)
        runs = [gen.generate(m, idx, n_new, use_cache=use_cache, eos_id=4, pad_id=0,
                             generator=None if seed is None else torch.Generator().manual_seed(seed), **kw)
                for use_cache in (True, False)]
        assert torch.equal(runs[0], runs[1]), kw


def test_uncached_step_matches_an_independent_loop():
    """Greedy generate == a hand-written loop over the full forward pass."""
    m = tiny_gpt()
    idx = torch.tensor([[1, 2, 3]])
    out = idx
    for _ in range(30):
        logits, _ = m(out[:, -24:])
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(gen.generate(m, idx, 30, do_sample=False), out)


def test_greedy_equals_transformers_generate_on_converted_weights():
    from lmlib.hf import gpt_to_hf

    m = tiny_gpt(block_size=64)
    hf = gpt_to_hf(m).eval()
    idx = torch.tensor([[5, 1, 7, 3], [2, 2, 9, 0]])
    ours = gen.generate(m, idx, 40, do_sample=False)
    ref = hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=40, do_sample=False,
                      pad_token_id=0, eos_token_id=None)
    assert torch.equal(ours, ref)


def test_seeded_sampling_is_a_distribution_sample():
    """With top_k=1 sampling is greedy; the empirical first-token frequencies follow the probs."""
    m = tiny_gpt()
    idx = torch.tensor([[4, 5]])
    assert torch.equal(gen.generate(m, idx, 8, top_k=1, generator=torch.Generator().manual_seed(0)),
                       gen.generate(m, idx, 8, do_sample=False))
    probs = torch.softmax(m(idx)[0][0, -1], -1)
    g = torch.Generator().manual_seed(0)
    draws = gen.generate(m, idx.repeat(4000, 1), 1, generator=g)[:, -1]
    freq = torch.bincount(draws, minlength=29).float() / 4000
    assert (freq - probs).abs().max() < 0.04


def test_eos_stops_and_pads():
    m = tiny_gpt()
    idx = torch.tensor([[1, 2], [3, 4]])
    free = gen.generate(m, idx, 20, do_sample=False)
    eos = int(free[0, 4])  # the third generated token of row 0
    out = gen.generate(m, idx, 20, do_sample=False, eos_id=eos, pad_id=28)
    assert torch.equal(out[0, :5], free[0, :5])
    first_eos = {r: next((i for i in range(2, out.shape[1]) if out[r, i] == eos), None) for r in range(2)}
    for r, i in first_eos.items():
        if i is not None:
            assert (out[r, i + 1:] == 28).all()
    assert out.shape[1] <= free.shape[1]
    if all(i is not None for i in first_eos.values()):
        assert out.shape[1] == 2 + max(first_eos.values()) - 1


def test_generate_text_round_trip_and_restores_training_mode():
    from lmlib.tokenizers import CharTokenizer
    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz .!"))
    m = tiny_gpt()
    m.train()
    text = gen.generate_text(m, tok, "to be", 10, do_sample=False)
    assert text.startswith("to be") and len(text) == 15
    assert m.training


# ----------------------------------------------------------------------------------------------
# Repetition penalty (CTRL, Keskar et al. 2019)
# ----------------------------------------------------------------------------------------------

def test_repetition_penalty_against_a_hand_computed_reference():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0, 0.0], [1.0, 1.0, -2.0, 4.0, -0.5]])
    prev = torch.tensor([[0, 1, 1, 4], [3, 2, 3, 3]])           # repeats count once
    out = gen.apply_repetition_penalty(logits, prev, 2.0)
    ref = torch.tensor([[1.0, -2.0, 0.5, -3.0, 0.0], [1.0, 1.0, -4.0, 2.0, -0.5]])
    assert torch.equal(out, ref)
    assert torch.equal(logits[0], torch.tensor([2.0, -1.0, 0.5, -3.0, 0.0]))  # not modified in place
    assert torch.equal(gen.apply_repetition_penalty(logits, prev, 1.0), logits)
    # -inf (a filtered token) stays -inf
    x = torch.tensor([[float("-inf"), 1.0]])
    assert torch.equal(gen.apply_repetition_penalty(x, torch.tensor([[0, 1]]), 1.5), torch.tensor([[float("-inf"), 1 / 1.5]]))


def test_repetition_penalty_one_is_bit_for_bit_the_default():
    m = tiny_gpt()
    idx = torch.randint(0, 29, (3, 4), generator=torch.Generator().manual_seed(3))
    assert torch.equal(gen.generate(m, idx, 30, do_sample=False),
                       gen.generate(m, idx, 30, do_sample=False, repetition_penalty=1.0))
    for kw in (dict(), dict(temperature=0.7, top_k=5), dict(top_p=0.8)):
        a = gen.generate(m, idx, 30, generator=torch.Generator().manual_seed(4), **kw)
        b = gen.generate(m, idx, 30, generator=torch.Generator().manual_seed(4), repetition_penalty=1.0, **kw)
        assert torch.equal(a, b), kw


def test_repetition_penalty_matches_an_independent_loop_and_transformers():
    from lmlib.hf import gpt_to_hf

    m = tiny_gpt(block_size=64)
    idx = torch.tensor([[5, 1, 7, 3], [2, 2, 9, 0]])
    ours = gen.generate(m, idx, 40, do_sample=False, repetition_penalty=1.3)
    out = idx
    for _ in range(40):                      # hand-written loop: penalise every id of the row so far
        last = m(out[:, -64:])[0][:, -1].clone()
        for r in range(out.shape[0]):
            for t in set(out[r].tolist()):
                last[r, t] = last[r, t] / 1.3 if last[r, t] > 0 else last[r, t] * 1.3
        out = torch.cat([out, last.argmax(-1, keepdim=True)], 1)
    assert torch.equal(ours, out)
    hf = gpt_to_hf(m).eval()
    ref = hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=40, do_sample=False,
                      repetition_penalty=1.3, pad_token_id=0, eos_token_id=None)
    assert torch.equal(ours, ref)
    plain = gen.generate(m, idx, 40, do_sample=False)
    assert not torch.equal(ours, plain)      # the penalty did change the greedy path
    n_distinct = lambda x: sum(len(set(r[4:].tolist())) for r in x)
    assert n_distinct(ours) > n_distinct(plain)


def test_repetition_penalty_cached_equals_uncached():
    m = tiny_gpt()
    idx = torch.randint(0, 29, (3, 5), generator=torch.Generator().manual_seed(1))
    for kw in (dict(do_sample=False), dict(top_p=0.9)):
        a = gen.generate(m, idx, 40, use_cache=True, repetition_penalty=1.4, generator=torch.Generator().manual_seed(2), **kw)
        b = gen.generate(m, idx, 40, use_cache=False, repetition_penalty=1.4, generator=torch.Generator().manual_seed(2), **kw)
        assert torch.equal(a, b), kw
