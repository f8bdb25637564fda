"""Tests for lmlib.mlm: the cached course BERT (trained for a few steps in a temporary cache)."""

import pytest
import torch

from lmlib.mlm import SPECIAL_TOKENS, bert_tokenizer, course_bert

TINY = {"tokenizer": {"vocab_size": 300},
        "model": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32},
        "data": {"seq_len": 16, "batch_size": 4, "eval_batches": 1, "eval_batch_size": 4},
        "train": {"max_steps": 3, "eval_interval": 3, "warmup_steps": 1}}


@pytest.fixture(scope="module")
def tmp_path(tmp_path_factory):  # one cache for the module: the tokenizer is learned once
    return tmp_path_factory.mktemp("lmlib-cache")


def test_tokenizer_is_cached_and_has_the_special_tokens(tmp_path):
    tok = bert_tokenizer(300, cache=tmp_path)
    assert tuple(tok.special_tokens) == SPECIAL_TOKENS and tok.vocab_size == 300
    assert (tmp_path / "bert-bpe-v300-s0.json").exists()
    again = bert_tokenizer(300, cache=tmp_path)
    text = "Now is the winter of our discontent"
    assert again.encode(text) == tok.encode(text)


def test_course_bert_trains_once_then_loads_identical_weights(tmp_path):
    first = course_bert(TINY, cache=tmp_path, progress=False, verbose=False)
    assert not first.from_cache
    assert set(first.results) == {"val_loss", "val_accuracy"}
    second = course_bert(TINY, cache=tmp_path, progress=False, verbose=False)
    assert second.from_cache
    for (n1, p1), (n2, p2) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert second.results == first.results
