"""Tests of lmlib.beam: greedy and beam search against independent references.

References: the fixed-length ``seq2seq.greedy_decode`` and ``generation.generate`` for greedy search;
an exhaustive enumeration of every output, each scored by one teacher-forced forward pass, for
beam search.
"""

import itertools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmlib import beam
from lmlib.generation import generate
from lmlib.gpt import GPT, GPTConfig
from lmlib.seq2seq import greedy_decode
from lmlib.transformer import Transformer, TransformerConfig

BOS, EOS, PAD = 0, 1, 0
SRC_V = 7


def _transformer(seed: int, tgt_vocab: int = 6, sharpen: float = 1.0, max_len: int = 10) -> Transformer:
    """A small random pre-norm encoder-decoder (whose outputs vary more than post-norm ones);
    ``sharpen`` scales the output layer for peakier distributions."""
    torch.manual_seed(seed)
    m = Transformer(TransformerConfig(SRC_V, tgt_vocab, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                                      d_ff=32, dropout=0.1, max_len=max_len, tie_output=False,
                                      norm_first=True))
    with torch.no_grad():
        m.out_proj.weight.mul_(sharpen)
    return m.eval()


def _gpt(seed: int, vocab: int = 6, sharpen: float = 40.0, block: int = 16) -> GPT:
    torch.manual_seed(seed)
    g = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=2, n_embd=16, dropout=0.1))
    with torch.no_grad():
        g.ln_f.weight.mul_(sharpen)
    return g.eval()


def _src(seed: int, batch: int = 4, length: int = 5) -> torch.Tensor:
    return torch.randint(1, SRC_V, (batch, length), generator=torch.Generator().manual_seed(seed))


def _lp(n: int, alpha: float, form: str) -> float:
    return (n ** alpha) if form == "average" else ((5 + n) / 6) ** alpha


# ---------------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------------

def _all_outputs(vocab: int, max_len: int) -> list[list[int]]:
    """Every output of at most max_len tokens: content tokens then EOS, or max_len content tokens."""
    content = [t for t in range(vocab) if t != EOS]
    outs = [list(c) + [EOS] for n in range(max_len) for c in itertools.product(content, repeat=n)]
    return outs + [list(c) for c in itertools.product(content, repeat=max_len)]


@torch.no_grad()
def _seq2seq_log_probs(model, src_row: torch.Tensor, ys: list[list[int]]) -> list[float]:
    """log p(y | src) of each y, from teacher-forced forward passes (one per output length)."""
    out = {}
    for n in sorted({len(y) for y in ys}):
        group = [y for y in ys if len(y) == n]
        tgt = torch.tensor(group)
        tgt_in = torch.cat([torch.full((len(group), 1), BOS), tgt[:, :-1]], dim=1)
        logits, _ = model(src_row.expand(len(group), -1), tgt_in)
        logp = F.log_softmax(logits.float(), -1).gather(2, tgt[:, :, None]).sum((1, 2))
        out.update({tuple(y): v for y, v in zip(group, logp.tolist())})
    return [out[tuple(y)] for y in ys]


@torch.no_grad()
def _lm_log_probs(model, prompt: list[int], ys: list[list[int]]) -> list[float]:
    out = {}
    for n in sorted({len(y) for y in ys}):
        group = [y for y in ys if len(y) == n]
        idx = torch.tensor([prompt + y for y in group])
        logits, _ = model(idx)
        logp = F.log_softmax(logits[:, len(prompt) - 1:-1].float(), -1)
        out.update({tuple(y): v for y, v in zip(group, logp.gather(2, idx[:, len(prompt):, None]).sum((1, 2)).tolist())})
    return [out[tuple(y)] for y in ys]


def _brute_force(ys: list[list[int]], log_probs: list[float], alpha: float, form: str):
    """(best tokens without EOS, best normalised score) over every output ys."""
    score, y = max(((lp / _lp(len(y), alpha, form), y) for y, lp in zip(ys, log_probs)), key=lambda t: t[0])
    return (y[:-1] if y[-1] == EOS else y), score


# ---------------------------------------------------------------------------------------------
# Greedy search
# ---------------------------------------------------------------------------------------------

def _cut(row: list[int]) -> list[int]:
    return row[:row.index(EOS)] if EOS in row else row


def test_greedy_seq2seq_matches_fixed_length_greedy_decode_cut_at_eos():
    lengths = []
    for seed in range(4):
        model, src = _transformer(seed), _src(seed, batch=6)
        ref = [_cut(row) for row in greedy_decode(model, src, 8, bos_id=BOS).tolist()]
        assert beam.greedy_search_seq2seq(model, src, max_len=8, bos_id=BOS, eos_id=EOS, pad_id=PAD) == ref
        lengths += [len(r) for r in ref]
    assert 0 in lengths and 8 in lengths and set(lengths) - {0, 8}, "the seeds should exercise EOS and max_len"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_lm_matches_generate(seed):
    model = _gpt(seed)
    prompt = [2, 3, 4]
    ref = generate(model, torch.tensor([prompt]), 10, do_sample=False, eos_id=EOS, use_cache=False)[0, 3:].tolist()
    got = beam.greedy_search_lm(model, prompt, max_new_tokens=10, eos_id=EOS)
    assert got == _cut(ref)
    assert beam.greedy_search_lm(model, torch.tensor(prompt), max_new_tokens=10) == \
        generate(model, torch.tensor([prompt]), 10, do_sample=False, use_cache=False)[0, 3:].tolist()


# ---------------------------------------------------------------------------------------------
# beam_size = 1 is greedy; batching and padding change nothing
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_beam_size_one_is_greedy_seq2seq(seed):
    model, src = _transformer(seed), _src(seed, batch=6)
    greedy = beam.greedy_search_seq2seq(model, src, max_len=7, bos_id=BOS, eos_id=EOS)
    for alpha in (0.0, 1.0):
        assert beam.beam_search_seq2seq(model, src, beam_size=1, max_len=7, bos_id=BOS, eos_id=EOS,
                                        length_penalty=alpha) == greedy


@pytest.mark.parametrize("seed", range(4))
def test_beam_size_one_is_greedy_lm(seed):
    model = _gpt(seed)
    for eos in (EOS, None):
        assert beam.beam_search_lm(model, [2, 5], beam_size=1, max_new_tokens=9, eos_id=eos) == \
            beam.greedy_search_lm(model, [2, 5], max_new_tokens=9, eos_id=eos)


def _padded(rows: list[torch.Tensor]):
    S = max(len(r) for r in rows)
    src = torch.full((len(rows), S), PAD, dtype=torch.long)
    mask = torch.ones(len(rows), S, dtype=torch.bool)
    for i, r in enumerate(rows):
        src[i, :len(r)], mask[i, :len(r)] = r, False
    return src, mask


@pytest.mark.parametrize("seed", [0, 3])
def test_batched_and_padded_equal_per_row(seed):
    model = _transformer(seed)
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(1, SRC_V, (n,), generator=g) for n in (5, 2, 4, 3)]
    src, mask = _padded(rows)
    kw = dict(max_len=7, bos_id=BOS, eos_id=EOS)
    seqs, scores = beam.beam_search_seq2seq(model, src, beam_size=3, src_key_padding_mask=mask,
                                            return_scores=True, **kw)
    greedy = beam.greedy_search_seq2seq(model, src, src_key_padding_mask=mask, **kw)
    for i, r in enumerate(rows):
        one, one_score = beam.beam_search_seq2seq(model, r[None], beam_size=3, return_scores=True, **kw)
        assert seqs[i] == one[0]
        assert math.isclose(scores[i], one_score[0], rel_tol=1e-5, abs_tol=1e-6)
        assert greedy[i] == beam.greedy_search_seq2seq(model, r[None], **kw)[0]
    # without the mask, the padding is read as tokens and changes the result of some row
    unmasked = beam.beam_search_seq2seq(model, src, beam_size=3, return_scores=True, **kw)[1]
    assert any(abs(a - b) > 1e-4 for a, b in zip(unmasked, scores))


# ---------------------------------------------------------------------------------------------
# Exhaustive reference: a beam that holds every prefix finds the exact optimum and its score
# ---------------------------------------------------------------------------------------------

NORMS = [(0.0, "average"), (0.5, "average"), (1.0, "average"), (2.0, "average"), (0.6, "gnmt"), (1.0, "gnmt")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_beam_seq2seq_equals_brute_force(seed):
    V, L = 5, 4
    model = _transformer(seed, tgt_vocab=V)
    src = _src(seed, batch=2)
    K = V ** L                                        # holds every candidate of every step
    ys = _all_outputs(V, L)
    log_probs = [_seq2seq_log_probs(model, src[b], ys) for b in range(src.shape[0])]
    winners = set()
    for alpha, form in NORMS:
        seqs, scores = beam.beam_search_seq2seq(model, src, beam_size=K, max_len=L, bos_id=BOS, eos_id=EOS,
                                                length_penalty=alpha, length_norm=form, return_scores=True)
        for b in range(src.shape[0]):
            ref, ref_score = _brute_force(ys, log_probs[b], alpha, form)
            assert seqs[b] == ref, (alpha, form, b)
            assert math.isclose(scores[b], ref_score, rel_tol=1e-4, abs_tol=1e-5)
            winners.add((b, tuple(ref)))
    assert len(winners) > src.shape[0], "the normalisations should not all pick the same output"


@pytest.mark.parametrize("seed", [0, 1])
def test_wide_beam_lm_equals_brute_force(seed):
    V, L = 4, 4
    model = _gpt(seed, vocab=V, sharpen=20.0)
    prompt = [2, 3]
    ys = _all_outputs(V, L)
    log_probs = _lm_log_probs(model, prompt, ys)
    for alpha, form in NORMS:
        seq, score = beam.beam_search_lm(model, prompt, beam_size=V ** L, max_new_tokens=L, eos_id=EOS,
                                         length_penalty=alpha, length_norm=form, return_scores=True)
        ref, ref_score = _brute_force(ys, log_probs, alpha, form)
        assert seq == ref
        assert math.isclose(score, ref_score, rel_tol=1e-4, abs_tol=1e-5)


def test_returned_score_is_the_teacher_forced_score():
    model, src = _transformer(5), _src(5, batch=3)
    for alpha, form in NORMS:
        seqs, scores = beam.beam_search_seq2seq(model, src, beam_size=4, max_len=6, bos_id=BOS, eos_id=EOS,
                                                length_penalty=alpha, length_norm=form, return_scores=True)
        for b, (y, s) in enumerate(zip(seqs, scores)):
            full = y + [EOS] if len(y) < 6 else y
            ref = _seq2seq_log_probs(model, src[b], [full])[0] / _lp(len(full), alpha, form)
            assert math.isclose(s, ref, rel_tol=1e-4, abs_tol=1e-5)


# ---------------------------------------------------------------------------------------------
# Beam search beats greedy; length normalisation changes the winner
# ---------------------------------------------------------------------------------------------

def test_beam_finds_a_higher_scoring_output_than_greedy():
    gains = []
    for seed in range(4):
        model, src = _transformer(seed), _src(seed, batch=4)
        kw = dict(max_len=6, bos_id=BOS, eos_id=EOS)
        greedy = beam.greedy_search_seq2seq(model, src, **kw)
        seqs, scores = beam.beam_search_seq2seq(model, src, beam_size=4, length_penalty=0.0, return_scores=True, **kw)
        for b in range(src.shape[0]):
            y = greedy[b] + [EOS] if len(greedy[b]) < 6 else greedy[b]
            gains.append(scores[b] - _seq2seq_log_probs(model, src[b], [y])[0])
    assert max(gains) > 0.05, "beam search should beat greedy search on some source"
    assert sum(g > 1e-4 for g in gains) >= 3


class TableLM(nn.Module):
    """A toy LM whose next-token distribution depends only on the last token (a bigram table)."""

    def __init__(self, probs: list[list[float]]):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(probs).log())
        self.config = SimpleNamespace(vocab_size=len(probs), block_size=32)

    def forward(self, idx):
        return self.logits[idx], None


# tokens: 0 = start (the prompt), 1 = EOS, 2 = "a", 3 = "b"
#   start: EOS 0.5, a 0.3, b 0.2;   a: EOS 0.1, a 0.9;   b: EOS 0.6, b 0.4
SHORT_VS_LONG = [[0.0, 0.5, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25], [0.0, 0.1, 0.9, 0.0], [0.0, 0.6, 0.0, 0.4]]


def test_length_normalisation_changes_the_winner():
    lm = TableLM(SHORT_VS_LONG)
    kw = dict(beam_size=20, max_new_tokens=4, eos_id=EOS, return_scores=True)     # wide: exhaustive
    raw, raw_score = beam.beam_search_lm(lm, [0], length_penalty=0.0, **kw)
    assert raw == [] and math.isclose(raw_score, math.log(0.5), rel_tol=1e-6)      # EOS at once
    normed, normed_score = beam.beam_search_lm(lm, [0], length_penalty=1.0, **kw)
    # "a a a a", cut at max_new_tokens (a live beam is a candidate): log(0.3 * 0.9^3) / 4 > log(0.5) / 1
    assert normed == [2, 2, 2, 2]
    assert math.isclose(normed_score, math.log(0.3 * 0.9 ** 3) / 4, rel_tol=1e-6)
    assert normed_score > math.log(0.5)


def test_search_stops_when_k_hypotheses_are_finished():
    # K = 3: EOS (step 1), "b EOS" (step 2) and "b b EOS" (step 3) fill the pool, so the search stops
    # at step 3 and the normalised winner among those three is the bare EOS, although "a a a a a a"
    # (alive, pruned by the stop) would have scored higher: the documented price of the stopping rule
    lm = TableLM(SHORT_VS_LONG)
    best, score = beam.beam_search_lm(lm, [0], beam_size=3, max_new_tokens=6, eos_id=EOS, length_penalty=1.0,
                                      return_scores=True)
    assert best == [] and math.isclose(score, math.log(0.5), rel_tol=1e-6)
    assert math.log(0.3 * 0.9 ** 5) / 6 > score


def test_greedy_misses_what_beam_finds_in_a_constructed_case():
    # start: a 0.4, b 0.35, EOS 0.25;  a: EOS 0.3, a 0.36, b 0.34;  b: EOS 0.9, b 0.1
    lm = TableLM([[0.0, 0.25, 0.4, 0.35], [0.25] * 4, [0.0, 0.3, 0.36, 0.34], [0.0, 0.9, 0.0, 0.1]])
    greedy = beam.greedy_search_lm(lm, [0], max_new_tokens=2, eos_id=EOS)
    assert greedy == [2, 2]                                                  # a a: 0.4 * 0.36
    best, score = beam.beam_search_lm(lm, [0], beam_size=2, max_new_tokens=2, eos_id=EOS, length_penalty=0.0,
                                      return_scores=True)
    assert best == [3] and math.isclose(score, math.log(0.35 * 0.9), rel_tol=1e-6)   # b EOS


def test_without_eos_every_hypothesis_runs_to_max_new_tokens():
    model = _gpt(0)
    assert len(beam.beam_search_lm(model, [2], beam_size=3, max_new_tokens=7)) == 7


def test_length_normalizer_formulas():
    assert beam.length_normalizer(4, 1.0) == 4.0
    assert beam.length_normalizer(4, 0.0, "gnmt") == 1.0
    assert math.isclose(beam.length_normalizer(7, 0.6, "gnmt"), 2.0 ** 0.6)


# ---------------------------------------------------------------------------------------------
# The model is left as it was
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False])
def test_mode_rng_and_weights_unchanged(training):
    model, gpt = _transformer(0), _gpt(0)
    model.train(training), gpt.train(training)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (model, gpt)]
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    src = _src(0)
    outs = [beam.greedy_search_seq2seq(model, src, max_len=5, bos_id=BOS, eos_id=EOS),
            beam.beam_search_seq2seq(model, src, beam_size=3, max_len=5, bos_id=BOS, eos_id=EOS),
            beam.greedy_search_lm(gpt, [2], max_new_tokens=5, eos_id=EOS),
            beam.beam_search_lm(gpt, [2], beam_size=3, max_new_tokens=5, eos_id=EOS)]
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training is training and gpt.training is training
    for m, b in zip((model, gpt), before):
        assert all(torch.equal(v, b[k]) for k, v in m.state_dict().items())
    # dropout is off during the search: the same call gives the same result in train mode
    assert outs[1] == beam.beam_search_seq2seq(model, src, beam_size=3, max_len=5, bos_id=BOS, eos_id=EOS)
