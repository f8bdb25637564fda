"""lmlib.model_choice measures bits per character the same way for every tokenizer and format."""

import math

import pytest
import torch

from lmlib import hf, model_choice as mc, zoo


@pytest.fixture(scope="module")
def text():
    return mc.held_out_text(max_chars=3_000)


def test_held_out_text_is_from_the_validation_plays():
    from lmlib.data import corpus_text, split_plays

    t = mc.held_out_text(max_chars=500)
    assert len(t) == 500 and corpus_text(split_plays(0).val).startswith(t)
    assert mc.held_out_text(part="test", max_chars=500) != t


def test_char_model_bits_equal_its_own_loss(text):
    m = zoo.load("gpt-char")
    r = mc.measure_lm("gpt-char", m.model, m.tokenizer.encode, m.tokenizer.decode, text, block_size=128)
    ids = torch.tensor(m.tokenizer.encode(text))
    n = (len(ids) - 1) // 128
    x, y = ids[: n * 128].view(n, 128), ids[1: n * 128 + 1].view(n, 128)
    with torch.no_grad():
        _, loss = m.model(x, y)
    assert r.chars == r.tokens == n * 128  # one character per token
    assert r.bits_per_char == pytest.approx(loss.item() / math.log(2), rel=1e-5)
    assert r.params == m.card["params"] and r.weight_mb == pytest.approx(4 * r.params / 1e6)


def test_transformers_format_gives_the_same_number(text, tmp_path):
    from transformers import AutoModelForCausalLM

    m = zoo.load("gpt-char")
    hf.gpt_to_hf(m.model).save_pretrained(tmp_path)
    other = AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    a = mc.measure_lm("ours", m.model, m.tokenizer.encode, m.tokenizer.decode, text, block_size=64)
    b = mc.measure_lm("hf", other, m.tokenizer.encode, m.tokenizer.decode, text, block_size=64)
    assert b.bits_per_char == pytest.approx(a.bits_per_char, rel=1e-5) and b.params == a.params


def test_bpe_model_counts_characters_not_tokens(text):
    m = zoo.load("gpt-bpe")
    r = mc.measure_lm("gpt-bpe", m.model, m.tokenizer.encode, m.tokenizer.decode, text, block_size=64)
    assert r.chars > 2 * r.tokens  # a BPE token spells more than two characters of English
    assert 1.5 < r.bits_per_char < 3.5
    assert m.model.training is False
