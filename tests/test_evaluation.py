"""Tests for lmlib.evaluation.sequence_log_likelihood against a brute-force reference: one
forward pass per prefix of one sequence, no batching and no padding."""

import math

import pytest
import torch
import torch.nn as nn

from lmlib.evaluation import sequence_log_likelihood
from lmlib.gpt import GPT, GPTConfig

V = 11


def _gpt(dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=1, n_head=2, n_embd=8, dropout=dropout)).eval()


def _reference(model, x, start=1):
    """sum_{t >= start} log p(x_t | x_<t), each term from its own forward pass over x[:t]."""
    total = 0.0
    with torch.no_grad():
        for t in range(start, len(x)):
            logits = model(torch.tensor([x[:t]]))[0][0, -1].double()
            total += float(torch.log_softmax(logits, -1)[x[t]])
    return total


SEQS = [[1, 2, 3, 4, 5], [6, 7], [0, 0, 0, 10, 9, 8, 7, 6, 5], [3, 3], list(range(11)) + [1, 2, 3, 4, 5, 6]]


def test_matches_brute_force_per_sequence_loop():
    model = _gpt()
    got = sequence_log_likelihood(model, SEQS)
    assert got.shape == (len(SEQS),) and got.dtype == torch.float64
    ref = torch.tensor([_reference(model, x) for x in SEQS], dtype=torch.float64)
    assert torch.allclose(got, ref, atol=1e-4, rtol=0)
    assert len(SEQS[-1]) == 17                         # block_size + 1 tokens: 16 read, 16 predicted


def test_padding_and_batching_do_not_change_a_score():
    model = _gpt(seed=1)
    batched = sequence_log_likelihood(model, SEQS, batch_size=64)
    for i, x in enumerate(SEQS):
        alone = sequence_log_likelihood(model, [x])
        assert torch.allclose(alone, batched[i:i + 1], atol=1e-5, rtol=0)
    assert torch.allclose(sequence_log_likelihood(model, SEQS, batch_size=2), batched, atol=1e-5, rtol=0)


def test_starts_score_only_the_suffix():
    model = _gpt(seed=2)
    starts = [3, 1, 5, 1, 16]
    got = sequence_log_likelihood(model, SEQS, starts=starts)
    ref = torch.tensor([_reference(model, x, s) for x, s in zip(SEQS, starts)], dtype=torch.float64)
    assert torch.allclose(got, ref, atol=1e-4, rtol=0)
    # the default start is 1, the first token that has a prediction
    assert torch.equal(sequence_log_likelihood(model, SEQS, starts=[1] * len(SEQS)),
                       sequence_log_likelihood(model, SEQS))
    # scores add up: start 1 = the first two terms + start 3
    full, tail = sequence_log_likelihood(model, [SEQS[0]]), sequence_log_likelihood(model, [SEQS[0]], starts=[3])
    assert float(full - tail) == pytest.approx(_reference(model, SEQS[0][:3]), abs=1e-4)


class _Uniform(nn.Module):
    """Returns zero logits (a uniform distribution) as a plain tensor, not a tuple."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        return torch.zeros(*idx.shape, V) * self.w


def test_a_uniform_model_scores_minus_length_times_log_vocab():
    got = sequence_log_likelihood(_Uniform(), SEQS, starts=[2, 1, 1, 1, 4])
    want = [-(len(x) - s) * math.log(V) for x, s in zip(SEQS, [2, 1, 1, 1, 4])]
    assert got.tolist() == pytest.approx(want, abs=1e-12)


def test_eval_mode_is_used_and_restored():
    model = _gpt(dropout=0.5).train()
    a = sequence_log_likelihood(model, SEQS)
    b = sequence_log_likelihood(model, SEQS)
    assert model.training
    assert torch.equal(a, b)                           # no dropout: eval mode inside
    model.eval()
    assert torch.allclose(a, torch.tensor([_reference(model, x) for x in SEQS], dtype=torch.float64), atol=1e-4)


def test_tensor_token_lists_and_starts_are_accepted():
    model = _gpt()
    want = sequence_log_likelihood(model, SEQS[:2], starts=[2, 1])
    got = sequence_log_likelihood(model, [torch.tensor(x) for x in SEQS[:2]], starts=torch.tensor([2, 1]))
    assert torch.equal(got, want)


@pytest.mark.parametrize("lists, starts, match", [
    ([[1]], None, "starts"),                           # one token: nothing is predicted
    ([[1, 2, 3]], [3], "starts"),
    ([[1, 2, 3]], [0], "starts"),
    ([[1, 2], [1, 2]], [1], "starts"),
    ([[1, 2.5, 3]], None, "token_lists"),              # floats must not be cut to ints
    ([[1, V]], None, "token_lists"),
    ([[1, -1]], None, "token_lists"),
    ([list(range(8)) * 3], None, "token_lists"),       # 24 tokens > block_size + 1
    (["abc"], None, "token_lists"),
    ("abc", None, "token_lists"),
    ([], None, "token_lists"),
    ([[1, 2, 3]], [1.7], "starts"),
    ([[1, 2, 3]], "1", "starts"),
])
def test_bad_inputs_name_the_argument(lists, starts, match):
    with pytest.raises((TypeError, ValueError), match=match):
        sequence_log_likelihood(_gpt(), lists, starts=starts)
