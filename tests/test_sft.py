"""Tests for lmlib.sft: loss masking of prompt tokens (-100), collation and greedy evaluation."""

import pytest
import torch
import torch.nn.functional as F

from lmlib.gpt import GPT, GPTConfig
from lmlib.sft import collate_sft, exact_match, greedy_complete, sft_batches, sft_example


def test_example_labels_mask_the_prompt():
    x, y = sft_example([10, 11, 12], [20, 21], block_size=8)
    # s = 10 11 12 20 21; inputs s[:-1]; targets s[1:] with prompt targets (11, 12) masked
    assert x == [10, 11, 12, 20]
    assert y == [-100, -100, 20, 21]


def test_collated_batch_masks_prompt_and_padding():
    pairs = [([1, 2, 3], [7, 8, 9]), ([4], [5])]
    b = collate_sft(pairs, pad_id=0, block_size=10)
    assert b["idx"].tolist() == [[1, 2, 3, 7, 8], [4, 0, 0, 0, 0]]
    assert b["targets"].tolist() == [[-100, -100, 7, 8, 9], [5, -100, -100, -100, -100]]
    # every non-ignored target is a response token, and every response token is a target once
    for (p, r), t in zip(pairs, b["targets"]):
        assert t[t != -100].tolist() == r


def test_loss_counts_only_response_tokens():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=16, block_size=12, n_layer=1, n_head=2, n_embd=16))
    b = collate_sft([([1, 2, 3, 4], [5, 6]), ([7, 8], [9, 10, 11])], pad_id=0, block_size=12)
    logits, loss = model(**b)
    logp = torch.log_softmax(logits, -1)
    keep = b["targets"] != -100
    ref = -logp[keep].gather(-1, b["targets"][keep][:, None]).mean()
    assert torch.allclose(loss, ref, atol=1e-6)
    assert int(keep.sum()) == 2 + 3


def test_errors():
    with pytest.raises(ValueError, match="context window"):
        sft_example(list(range(8)), [1], block_size=8)
    with pytest.raises(ValueError, match="shorten"):
        sft_example([1, 2], [3] * 8, block_size=8)
    with pytest.raises(ValueError, match="prompt is empty"):
        sft_example([], [1], block_size=8)
    with pytest.raises(ValueError, match="response is empty"):
        sft_example([1], [], block_size=8)
    with pytest.raises(ValueError, match="empty list"):
        collate_sft([], pad_id=0, block_size=8)
    with pytest.raises(ValueError, match="pair 1"):
        collate_sft([([1], [2]), (list(range(9)), [1])], pad_id=0, block_size=8)
    with pytest.raises(TypeError):
        sft_example([1.0], [2], block_size=8)


def test_sft_training_reaches_exact_match():
    """A tiny model fine-tuned on two prompt->response pairs answers both exactly."""
    from lmlib.training import TrainConfig, train
    torch.manual_seed(0)
    chars = sorted(set("ab?xy\n"))
    enc = lambda s: [chars.index(c) for c in s]
    dec = lambda ids: "".join(chars[i] for i in ids)
    pairs = [("ab?", "xx\n"), ("ba?", "yy\n")]
    model = GPT(GPTConfig(vocab_size=len(chars), block_size=8, n_layer=1, n_head=2, n_embd=32))
    before, _ = exact_match(model, enc, dec, pairs)
    get = sft_batches([(enc(p), enc(r)) for p, r in pairs], batch_size=2, pad_id=0, block_size=8)
    train(model, get, TrainConfig(max_steps=150, lr=3e-3, warmup_steps=5, progress=False, weight_decay=0.0))
    after, outs = exact_match(model, enc, dec, pairs)
    assert after == 1.0 and outs == ["xx", "yy"]
    assert before < 1.0


def test_greedy_complete_matches_argmax_loop():
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=10, block_size=12, n_layer=1, n_head=1, n_embd=8))
    out = greedy_complete(model, [1, 2, 3], max_new_tokens=4)
    seq = [1, 2, 3]
    for _ in range(4):
        logits, _ = model(torch.tensor([seq]))
        seq.append(int(logits[0, -1].argmax()))
    assert out == seq[3:]
    with pytest.raises(ValueError, match="context window"):
        greedy_complete(model, list(range(12)), max_new_tokens=1)
