"""Tests for lmlib.bigram: the loss against per-position cross-entropy, and convergence to the
counting model (an independent reference: normalised counts)."""

from __future__ import annotations

import math
from collections import Counter

import torch
import torch.nn.functional as F

from lmlib.bigram import NeuralBigram, bigram_nll, train_bigram
from lmlib.data import CharVocab

TEXT = "the cat sat on the mat. the dog ate the hat!\nand then the cat ran."
VOCAB = CharVocab.from_text(TEXT + "xyz")  # three characters never seen in training
V = VOCAB.vocab_size


def counts_of(text: str) -> torch.Tensor:
    table = torch.zeros(V, V)
    for (a, b), c in Counter(zip(text, text[1:])).items():
        table[VOCAB.stoi[a], VOCAB.stoi[b]] = c
    return table


def test_loss_from_counts_equals_cross_entropy_over_positions():
    torch.manual_seed(0)
    model = NeuralBigram(V)
    with torch.no_grad():
        model.logits.normal_()
    ids = torch.tensor(VOCAB.encode(TEXT))
    per_position = F.cross_entropy(model(ids[:-1]), ids[1:])
    assert math.isclose(bigram_nll(model, counts_of(TEXT)).item(), per_position.item(), rel_tol=1e-5)
    assert model(ids[:-1]).shape == (len(ids) - 1, V)


def test_training_converges_to_the_counting_model():
    counts = counts_of(TEXT)
    model = NeuralBigram(V)
    losses = train_bigram(model, counts, steps=600, lr=0.3)
    assert len(losses) == 600 and losses[-1] < losses[0]
    seen = counts.sum(1) > 0
    p_count = counts[seen] / counts[seen].sum(1, keepdim=True)  # maximum likelihood
    P = model.prob_table()
    assert (P[seen].float() - p_count).abs().max() < 0.01
    # rows of characters never seen get no gradient: they stay uniform, as NGramModel's rule
    torch.testing.assert_close(P[~seen], torch.full_like(P[~seen], 1 / V))
    # the minimum of the loss is the entropy of the counts (the NLL of the counting model)
    nll_ml = -(counts[seen] * p_count.clamp(min=1e-30).log()).sum() / counts.sum()
    assert abs(losses[-1] - float(nll_ml)) < 2e-3


def test_weight_decay_smooths():
    counts = counts_of(TEXT)
    plain, decayed = NeuralBigram(V), NeuralBigram(V)
    train_bigram(plain, counts, steps=400, lr=0.3)
    train_bigram(decayed, counts, steps=400, lr=0.3, weight_decay=1e-2)
    unseen = counts == 0
    seen_rows = counts.sum(1, keepdim=True) > 0
    mask = unseen & seen_rows
    # decay gives the pairs never seen much more probability, and keeps the logits bounded
    assert decayed.prob_table()[mask].min() > 10 * plain.prob_table()[mask].max()
    assert decayed.logits.abs().max() < plain.logits.abs().max()
    # at the optimum the gradient vanishes: (N_a / N)(q_a - p_a) + lambda * W_a = 0 (checked independently)
    train_bigram(decayed, counts, steps=1500, lr=0.05, weight_decay=1e-2)
    q = decayed.prob_table().float()
    grad = (counts - counts.sum(1, keepdim=True) * q) / counts.sum()  # = -(N_a/N)(q_a - p_a) * ...
    residual = -grad + 1e-2 * decayed.logits.detach()
    assert residual.abs().max() < 1e-3
    # a huge decay leaves every row (almost) uniform
    flat = NeuralBigram(V)
    train_bigram(flat, counts, steps=200, lr=0.1, weight_decay=1e3)
    torch.testing.assert_close(flat.prob_table(), torch.full((V, V), 1 / V, dtype=torch.float64),
                               rtol=0, atol=1e-4)
