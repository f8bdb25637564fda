"""The checkers of chapter 9's exercises: the right answer passes, each typical mistake gets its hint."""

import torch

from lmlib.exercises import ch09
from lmlib.translation import Example, build_vocabularies, encode_lm


def right(prompt, answer, eos):
    return prompt + answer, [-100] * (len(prompt) - 1) + answer + [eos]


def test_right_answer_passes_and_matches_lmlib():
    assert ch09.check_lm_targets(right, quiet=True)
    # the reference agrees with lmlib.translation.encode_lm on a real example
    ex = [Example("english", "银行", "bank", ("bank",))]
    vocab = build_vocabularies(ex)
    enc = encode_lm(vocab, ex)
    prompt = enc["idx"][0, :4].tolist()                       # <english> 银 行 <sep>
    answer = vocab.target.encode_ordinary("bank")
    idx, targets = right(prompt, answer, vocab.target.special_tokens["<eos>"])
    assert enc["idx"][0].tolist() == idx and enc["targets"][0].tolist() == targets


def test_tensors_are_accepted():
    assert ch09.check_lm_targets(lambda p, a, e: tuple(torch.tensor(x) for x in right(p, a, e)), quiet=True)


def _hint(fn):
    v = ch09.check_lm_targets(fn, quiet=True)
    assert not v
    return v.message


def test_typical_mistakes_get_their_hint():
    assert "never needs to read <eos>" in _hint(lambda p, a, e: (p + a + [e], [-100] * len(p) + a + [e]))
    assert "AFTER" in _hint(lambda p, a, e: (p + a, p + a))
    assert "not to model the source" in _hint(lambda p, a, e: (p + a, (p + a)[1:] + [e]))
    assert "first answer token" in _hint(lambda p, a, e: (p + a, [-100] * len(p) + a[1:] + [e]))
    assert "<eos>" in _hint(lambda p, a, e: (p + a, [-100] * (len(p) - 1) + a))
    assert "one entry per input position" in _hint(lambda p, a, e: (p + a, a + [e]))
    assert "the prompt followed by the answer" in _hint(lambda p, a, e: (a + p, right(p, a, e)[1]))


def test_junk_answers_get_hints():
    assert "returns None" in _hint(lambda p, a, e: None)
    assert "NotImplementedError" in _hint(lambda p, a, e: (_ for _ in ()).throw(NotImplementedError()))
    assert "pair" in _hint(lambda p, a, e: p)
    assert "pass your function" in ch09.check_lm_targets(42, quiet=True).message
