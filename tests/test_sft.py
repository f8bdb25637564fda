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


# --- greedy_complete through lmlib.generation.generate ------------------------------------

def _manual_greedy(model, prompt, max_new, stop_ids=()):
    """Argmax one token at a time, the whole sequence re-read every step (no KV cache)."""
    seq, out = list(prompt), []
    with torch.no_grad():
        while len(out) < max_new and len(seq) < model.config.block_size:
            nxt = int(model(torch.tensor([seq]))[0][0, -1].argmax())
            out.append(nxt)
            seq.append(nxt)
            if nxt in stop_ids:
                break
    return out


def _tiny(vocab=11, block=16, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=2, n_embd=8, dropout=dropout))


def test_greedy_complete_stops_at_stop_ids_and_at_the_context_window():
    model = _tiny(seed=3)
    free = _manual_greedy(model, [1, 2], 12)
    assert greedy_complete(model, [1, 2], max_new_tokens=12) == free
    for stop in ([free[2]], [free[4], 99], [free[1], free[3]]):   # one stop id, or several
        want = _manual_greedy(model, [1, 2], 12, stop)
        assert greedy_complete(model, [1, 2], max_new_tokens=12, stop_ids=stop) == want
        assert want[-1] in stop and not set(want[:-1]) & set(stop)
    # the window: 16 - 13 = 3 new tokens at most, however many are asked for
    assert greedy_complete(model, list(range(10)) + [1, 2, 3], max_new_tokens=50) == \
        _manual_greedy(model, list(range(10)) + [1, 2, 3], 50)
    assert len(greedy_complete(model, list(range(10)) + [1, 2, 3], max_new_tokens=50)) == 3
    assert greedy_complete(model, [1, 2], max_new_tokens=0) == []


def test_greedy_complete_restores_train_mode_and_ignores_dropout():
    model = _tiny(seed=4, dropout=0.5).train()
    out = greedy_complete(model, [1, 2, 3], max_new_tokens=6)
    assert model.training
    model.eval()
    assert out == _manual_greedy(model, [1, 2, 3], 6)


class _NoCache(torch.nn.Module):
    """A causal LM with a config but without new_kv_caches (the KV cache is optional)."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt, self.config = gpt, gpt.config

    def forward(self, idx):
        return self.gpt(idx)


def test_greedy_complete_works_without_a_kv_cache_and_with_an_unused_stop_id():
    model = _tiny(seed=5)
    want = _manual_greedy(model, [4, 5], 5)
    assert greedy_complete(_NoCache(model), [4, 5], max_new_tokens=5) == want
    assert greedy_complete(model, [4, 5], max_new_tokens=5, stop_ids=[11]) == want   # id 11 never occurs


# --- chat template, growing the vocabulary, ranking answers --------------------------------

from lmlib.evaluation import sequence_log_likelihood  # noqa: E402
from lmlib.sft import CHAT_TOKENS, ChatTemplate, add_chat_tokens, grow_vocabulary, rank_responses  # noqa: E402
from lmlib.tokenizers import CharTokenizer  # noqa: E402

TOK = CharTokenizer(list("abcdefghij"))       # ids 0..9


def test_chat_template_ids():
    chat = ChatTemplate(TOK, 10)
    assert (chat.user_id, chat.assistant_id, chat.end_id) == (10, 11, 12)
    assert chat.prompt("abc") == [10, 0, 1, 2, 11]
    assert chat.prompt("") == [10, 11]
    assert chat.response("ja") == [9, 0, 12]
    assert chat.pair("b", "c") == ([10, 1, 11], [2, 12])
    with pytest.raises(ValueError, match="first_id"):
        ChatTemplate(TOK, 9)                   # <|user|> would be the id of "j"
    with pytest.raises(ValueError, match="text"):
        chat.response("")
    assert len(CHAT_TOKENS) == 3


def test_grow_vocabulary_keeps_old_logits_and_starts_new_rows_at_the_mean():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=10, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()
    before = {k: v.clone() for k, v in gpt.state_dict().items()}
    big = grow_vocabulary(gpt, 3).eval()
    assert big is not gpt and big.config.vocab_size == 13 and gpt.config.vocab_size == 10
    assert big.lm_head.weight is big.wte.weight                      # tying kept
    assert torch.equal(big.wte.weight[:10], gpt.wte.weight)
    for r in range(10, 13):
        assert torch.allclose(big.wte.weight[r], gpt.wte.weight.mean(0), atol=1e-7)
    for k, v in gpt.state_dict().items():                            # every other tensor copied
        if k not in ("wte.weight", "lm_head.weight"):
            assert torch.equal(big.state_dict()[k], v), k
    x = torch.tensor([[1, 2, 3, 9, 0]])
    with torch.no_grad():
        old, new = gpt(x)[0], big(x)[0]
    assert torch.allclose(new[..., :10], old, atol=1e-6)             # old ids: same logits
    assert torch.allclose(new[..., 10], new[..., 11]) and torch.allclose(new[..., 10], new[..., 12])
    assert all(torch.equal(v, gpt.state_dict()[k]) for k, v in before.items())   # the original is untouched
    with torch.no_grad():                                             # not shared with the original
        big.wte.weight[0].add_(1.0)
    assert torch.equal(gpt.wte.weight, before["wte.weight"])


def test_add_chat_tokens():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=8))
    big, chat = add_chat_tokens(gpt, TOK)
    assert big.config.vocab_size == TOK.vocab_size + 3
    assert (chat.user_id, chat.end_id) == (TOK.vocab_size, TOK.vocab_size + 2)
    with pytest.raises(ValueError, match="tokenizer"):
        add_chat_tokens(big, TOK)                                     # 13 model ids for a 10-id tokenizer


def test_rank_responses_is_the_log_likelihood_of_each_candidate_after_its_prompt():
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()
    prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
    cands = [[10], [2, 3, 10], [0, 0]]
    s = rank_responses(model, prompts, cands, batch_size=2)
    assert s.shape == (3, 3) and s.dtype == torch.float64
    for n, p in enumerate(prompts):
        for k, c in enumerate(cands):
            one = sequence_log_likelihood(model, [p + c], starts=[len(p)])[0]
            assert float(s[n, k]) == pytest.approx(float(one), abs=1e-5)
            ref = 0.0                                                 # brute force, token by token
            with torch.no_grad():
                for t in range(len(c)):
                    logits = model(torch.tensor([p + c[:t]]))[0][0, -1].double()
                    ref += float(torch.log_softmax(logits, -1)[c[t]])
            assert float(s[n, k]) == pytest.approx(ref, abs=1e-4)


def test_rank_responses_checks():
    model = _tiny()
    with pytest.raises(ValueError, match="candidates"):
        rank_responses(model, [[1]], [[11]])
    with pytest.raises(ValueError, match="context window"):
        rank_responses(model, [list(range(10))], [[1] * 8])           # 18 tokens > 16 + 1
    assert rank_responses(model, [list(range(10))], [[1] * 7]).shape == (1, 1)
