"""Tests for lmlib.tokenizers: hand computations, a slow reference trainer, tiktoken and the
Hugging Face ``tokenizers`` library as independent references, and hypothesis round-trips."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import regex
import tiktoken
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmlib.data import CharVocab, corpus_text, load_play
from lmlib.tokenizers import (
    ENDOFTEXT,
    GPT2_PATTERN,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    bytes_to_unicode,
    load_tokenizer,
)

ADVERSARIAL = [
    "",
    "大语言模型",
    "我们训练一个大语言模型。它很大！",
    "😀👍🏽 family: 👨‍👩‍👧‍👦 flags 🇨🇳🇬🇧",
    "e\u0301 cafe\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0352\u0353",  # combining characters
    " " * 97 + "x" + "\t" * 13 + "\n" * 9 + "   y  \n \r\n\r\n",
    "0 1 12 123 1234 12345678901234567890 3.14159 1,000,000 ٣٤٥ 二〇二四",
    "Hello世界мирΓειάשלום123abc مرحبا नमस्ते",
    "don't WE'LL they're I'M you've she'd 'tis",
    "\x00\x01\x7f\u200b\ufeff\U0010ffff",
    "a" * 3000,
    "<|endoftext|>",
    "HAMLET:\nTo be, or not to be<|endoftext|>ACT I<|endoftext|><|endoftext|>",
    "<|endoftext",
]


@pytest.fixture(scope="module")
def corpus() -> str:
    return corpus_text()


@pytest.fixture(scope="module")
def bpe(corpus) -> BPETokenizer:
    """The course configuration: the whole corpus (5 MB) to 4,096 ids, trained once."""
    return BPETokenizer.train(corpus, 4096)


@pytest.fixture(scope="module")
def tik(bpe) -> tiktoken.Encoding:
    # Built here from the raw ingredients, not with BPETokenizer.to_tiktoken.
    return tiktoken.Encoding(name="test-bpe", pat_str=GPT2_PATTERN, mergeable_ranks=bpe.mergeable_ranks,
                             special_tokens=bpe.special_tokens)


@pytest.fixture(scope="module")
def hf_bpe(bpe):
    return bpe.to_hf()


# --------------------------------------------------------------------------------------------------
# A slow, obviously correct reference trainer: recount all pairs after every merge.
# --------------------------------------------------------------------------------------------------

def naive_train(text: str, n_merges: int, min_frequency: int = 2) -> list[tuple[int, int]]:
    words = Counter(regex.findall(GPT2_PATTERN, text))
    seqs = {w: list(w.encode()) for w in words}
    vocab = {b: bytes([b]) for b in range(256)}
    merges: list[tuple[int, int]] = []
    banned: set[tuple[int, int]] = set()
    while len(merges) < n_merges:
        counts: Counter = Counter()
        for w, f in words.items():
            s = seqs[w]
            for p in zip(s, s[1:]):
                counts[p] += f
        candidates = [(-c, p) for p, c in counts.items() if p not in banned]
        if not candidates:
            break
        neg, (a, b) = min(candidates)
        if -neg < min_frequency:
            break
        if vocab[a] + vocab[b] in vocab.values():
            banned.add((a, b))
            continue
        new = 256 + len(merges)
        vocab[new] = vocab[a] + vocab[b]
        merges.append((a, b))
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


# --------------------------------------------------------------------------------------------------
# Characters and bytes
# --------------------------------------------------------------------------------------------------

def test_char_tokenizer_matches_charvocab_and_round_trips():
    text = load_play("hamlet").text[:20000]
    tok = CharTokenizer.from_text(text)
    vocab = CharVocab.from_text(text)
    assert tok.vocab_size == vocab.vocab_size
    assert tok.encode(text) == vocab.encode(text)
    assert tok.decode(tok.encode(text)) == text
    assert tok.eot_id is None and tok.special_tokens == {}


def test_char_tokenizer_unknown_and_special_tokens():
    tok = CharTokenizer.from_text("abc ", special_tokens=[ENDOFTEXT])
    assert tok.vocab_size == 5 and tok.eot_id == 4
    assert tok.encode("ab<|endoftext|>c") == [1, 2, 4, 3]
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("abz")
    tok_unk = CharTokenizer.from_text("abc", unk_token="<unk>")
    assert tok_unk.encode("azb") == [0, 3, 1]
    assert tok_unk.decode([0, 3]) == "a<unk>"


def test_byte_tokenizer():
    tok = ByteTokenizer([ENDOFTEXT])
    s = "héllo 大 😀"
    assert tok.encode(s) == list(s.encode("utf-8"))
    assert tok.vocab_size == 257 and tok.eot_id == 256
    assert tok.decode(tok.encode(s + ENDOFTEXT)) == s + ENDOFTEXT
    # A lone piece of a character: replacement character by default, an error when strict.
    first = tok.encode("😀")[:2]
    assert tok.decode(first) == b"\xf0\x9f".decode("utf-8", errors="replace")
    with pytest.raises(ValueError, match="UTF-8"):
        tok.decode(first, errors="strict")
    assert tok.decode_bytes(first) == b"\xf0\x9f"


@pytest.mark.parametrize("bad, exc", [([300], ValueError), ([-1], ValueError), ([1.0], TypeError),
                                       ([True], TypeError), ("abc", TypeError),
                                       (torch.zeros(2, 2, dtype=torch.long), ValueError)])
def test_decode_rejects_bad_ids(bad, exc):
    with pytest.raises(exc):
        ByteTokenizer().decode(bad)


def test_decode_accepts_tensors():
    tok = ByteTokenizer()
    assert tok.decode(torch.tensor(list(b"hi"))) == "hi"


# --------------------------------------------------------------------------------------------------
# BPE training
# --------------------------------------------------------------------------------------------------

def test_bpe_training_by_hand():
    # "aaabdaaabac" is one pre-token. Pairs: aa x4, ab x2, ... -> merge (a, a) = 256.
    # Then aa|a|b|d|aa|a|b|a|c: (256, a) x2 and (a, b) x2 tie -> smaller ids win: (97, 98) = 257.
    # Then aa|ab|d|aa|ab|a|c: (256, 257) x2 -> 258 = "aaab"; every other pair occurs once.
    tok = BPETokenizer.train("aaabdaaabac", 256 + 10, special_tokens=())
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]
    # min_frequency=1 keeps merging singletons until the word is one token.
    tok1 = BPETokenizer.train("aaabdaaabac", 256 + 10, special_tokens=(), min_frequency=1)
    assert tok1.encode("aaabdaaabac") == [tok1.vocab_size - 1]


def test_incremental_training_equals_naive_recount():
    text = load_play("macbeth").text[:30000] + " 大语言模型 大语言 模型 😀😀 aaaa aaaa aaa"
    fast = BPETokenizer.train(text, 256 + 200, special_tokens=())
    assert fast.merges == naive_train(text, 200)


def test_training_is_deterministic_and_skips_special_tokens():
    text = ("the cat sat on the mat" + ENDOFTEXT) * 50 + "the end"
    a = BPETokenizer.train(text, 300)
    b = BPETokenizer.train(text, 300)
    assert a.merges == b.merges
    assert all(b"<|" not in v and b"|>" not in v for v in a.vocab)
    # The last id is the special token; nothing else decodes to it.
    assert a.eot_id == a.vocab_size - 1
    ids = a.encode("the mat" + ENDOFTEXT + "the cat")
    assert ids.count(a.eot_id) == 1
    assert a.encode(ENDOFTEXT, allowed_special="none") == a.encode_ordinary(ENDOFTEXT) != [a.eot_id]


def test_training_input_errors():
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("abc", 200)
    with pytest.raises(TypeError):
        BPETokenizer.train(b"abc", 300)
    with pytest.raises(ValueError, match="pattern"):
        BPETokenizer.train("abc", 300, pattern="(")
    with pytest.raises(TypeError):
        BPETokenizer.train("abc", 300, special_tokens=ENDOFTEXT)


def test_bpe_course_tokenizer_size_and_compression(bpe, corpus):
    assert bpe.vocab_size == 4096 and len(bpe.merges) == 4096 - 256 - 1
    assert bpe.special_tokens == {ENDOFTEXT: 4095}
    n_tokens = len(bpe.encode(corpus))
    assert n_tokens < len(corpus.encode("utf-8")) / 2.5  # byte-level BPE compresses English well


# --------------------------------------------------------------------------------------------------
# Equality with tiktoken and with Hugging Face tokenizers
# --------------------------------------------------------------------------------------------------

def test_encode_equals_tiktoken_on_whole_corpus(bpe, tik, corpus):
    ids = bpe.encode(corpus)
    assert ids == tik.encode(corpus, allowed_special="all")
    assert bpe.decode(ids) == corpus


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_encode_equals_tiktoken_on_adversarial_text(bpe, tik, text):
    assert bpe.encode(text) == tik.encode(text, allowed_special="all")
    assert bpe.encode_ordinary(text) == tik.encode_ordinary(text)
    assert bpe.decode(bpe.encode(text)) == text


def test_to_tiktoken_helper(bpe):
    enc = bpe.to_tiktoken()
    assert enc.n_vocab == bpe.vocab_size
    assert enc.encode(ADVERSARIAL[2]) == bpe.encode(ADVERSARIAL[2])


def test_pre_tokenization_matches_tiktoken_regex(bpe):
    text = "  Hello,   world!! It's 2024.\n\n  x"
    pieces = bpe.pre_tokenize(text)
    assert "".join(pieces) == text
    assert pieces == [" ", " Hello", ",", "  ", " world", "!!", " It", "'s", " 2024", ".", "\n\n ", " x"]


def test_hf_export_encodes_identically(bpe, hf_bpe, corpus):
    passages = corpus[:400_000].split("\n\n")
    hf_ids = [e.ids for e in hf_bpe.backend_tokenizer.encode_batch(passages)]
    assert hf_ids == [bpe.encode(p) for p in passages]
    for text in ADVERSARIAL:
        ids = bpe.encode(text)
        assert hf_bpe(text)["input_ids"] == ids, text
        assert hf_bpe.decode(ids) == text
    assert hf_bpe.eos_token == ENDOFTEXT and hf_bpe.eos_token_id == bpe.eot_id
    assert len(hf_bpe) == bpe.vocab_size


def test_hf_export_folder_reloads(bpe, tmp_path):
    from transformers import AutoTokenizer

    bpe.to_hf(tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(tmp_path / "tok")
    text = "KING LEAR:\nBlow, winds, and crack your cheeks! 大语言模型 😀" + ENDOFTEXT
    assert again(text)["input_ids"] == bpe.encode(text)
    assert again.decode(bpe.encode(text)) == text


def test_char_tokenizer_hf_export(tmp_path):
    from transformers import AutoTokenizer

    text = load_play("hamlet").text[:30000]
    tok = CharTokenizer.from_text(text, special_tokens=[ENDOFTEXT])
    tok.to_hf(tmp_path / "char")
    hf = AutoTokenizer.from_pretrained(tmp_path / "char")
    sample = text[5000:7000] + ENDOFTEXT + "\n\n  x"
    assert hf(sample)["input_ids"] == tok.encode(sample)
    assert hf.decode(tok.encode(sample)) == sample
    assert hf.eos_token_id == tok.eot_id == len(tok.chars)
    assert len(hf) == tok.vocab_size


def test_word_tokenizer_encodes_words_and_round_trips(tmp_path):
    from transformers import AutoTokenizer

    tok = WordTokenizer(["yin2", "hang2", "xing2"], ["<pad>", "<eos>"], unk_token="<unk>")
    assert tok.vocab_size == 6 and tok.special_tokens == {"<pad>": 3, "<eos>": 4, "<unk>": 5}
    assert tok.encode("yin2 hang2") == [0, 1] and tok.decode([0, 1]) == "yin2 hang2"
    assert tok.encode("  yin2\nxing2 ") == [0, 2]                      # any whitespace separates words
    assert tok.encode("yin2 ma1<eos>") == [0, 5, 4]
    assert tok.decode([0, 4, 2]) == "yin2 <eos> xing2"                   # special tokens are words too
    with pytest.raises(ValueError, match="'ma1' .word 1 of the text"):
        WordTokenizer(["yin2"]).encode("yin2 ma1")
    tok.save(tmp_path / "w.json")
    again = Tokenizer.load(tmp_path / "w.json")
    assert type(again) is WordTokenizer and again.words == tok.words and again.encode("xing2 ma1") == [2, 5]
    tok.to_hf(tmp_path / "hf")
    hf = AutoTokenizer.from_pretrained(tmp_path / "hf")
    for text in ("yin2 hang2 xing2", "ma1 yin2", "xing2<eos>"):
        assert hf(text)["input_ids"] == tok.encode(text)
    assert hf.decode([0, 4, 2, 5]) == tok.decode([0, 4, 2, 5])


def test_bytes_to_unicode_is_a_printable_bijection():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord(" ")] == "Ġ" and table[ord("A")] == "A"


# --------------------------------------------------------------------------------------------------
# Properties on arbitrary Unicode
# --------------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_round_trip_and_tiktoken_property(bpe, tik, s):
    ids = bpe.encode(s)
    assert bpe.decode(ids) == s
    assert ids == tik.encode(s, allowed_special="all")
    assert all(0 <= i < bpe.vocab_size for i in ids)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_hf_export_property(bpe, hf_bpe, s):
    ids = bpe.encode(s)
    assert hf_bpe(s)["input_ids"] == ids
    assert hf_bpe.decode(ids) == s


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_byte_round_trip_property(s):
    tok = ByteTokenizer([ENDOFTEXT])
    assert tok.decode(tok.encode(s)) == s


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
def test_char_round_trip_property(s):
    tok = CharTokenizer.from_text(s)
    assert tok.decode(tok.encode(s)) == s


# --------------------------------------------------------------------------------------------------
# Save and load
# --------------------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, bpe):
    toks = [bpe, ByteTokenizer([ENDOFTEXT]), CharTokenizer.from_text("hello world", [ENDOFTEXT], unk_token="<unk>")]
    text = "hello world 大 " + ENDOFTEXT
    for k, tok in enumerate(toks):
        path = tmp_path / f"t{k}.json"
        tok.save(path)
        for again in (type(tok).load(path), Tokenizer.load(path), load_tokenizer(path)):
            assert type(again) is type(tok)
            assert again.vocab_size == tok.vocab_size and again.special_tokens == tok.special_tokens
            assert again.encode(text) == tok.encode(text)
    obj = json.loads((tmp_path / "t0.json").read_text(encoding="utf-8"))
    assert obj["format"] == "lmlib-tokenizer" and obj["version"] == 1 and obj["type"] == "bpe"
    assert obj["pattern"] == GPT2_PATTERN and len(obj["merges"]) == len(bpe.merges)


def _write(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_load_errors(tmp_path):
    good = {"format": "lmlib-tokenizer", "version": 1, "type": "bpe", "special_tokens": {ENDOFTEXT: 257},
            "pattern": GPT2_PATTERN, "merges": [[97, 98]]}
    assert BPETokenizer.load(_write(tmp_path / "good.json", good)).vocab_size == 258
    with pytest.raises(ValueError, match="no tokenizer file"):
        Tokenizer.load(tmp_path / "missing.json")
    (tmp_path / "garbage.json").write_bytes(b"\x00\xff{not json")
    with pytest.raises(ValueError, match="not a valid tokenizer file"):
        Tokenizer.load(tmp_path / "garbage.json")
    (tmp_path / "truncated.json").write_text(json.dumps(good)[:40], encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid tokenizer file"):
        Tokenizer.load(tmp_path / "truncated.json")
    cases = [
        ({**good, "format": "other"}, "not an lmlib tokenizer"),
        ({**good, "version": 2}, "version 2"),
        ({k: v for k, v in good.items() if k != "version"}, "version None"),
        ({**good, "type": "wordpiece"}, "unknown tokenizer type"),
        ({**good, "merges": [[97, 300]]}, "does not exist yet"),
        ({**good, "merges": [[97]]}, "pair of integer ids"),
        ({**good, "merges": "ab"}, "merges"),
        ({k: v for k, v in good.items() if k != "merges"}, "corrupt"),
        ({**good, "special_tokens": {ENDOFTEXT: 5}}, "special token ids"),
        ({**good, "special_tokens": [ENDOFTEXT]}, "special_tokens"),
        ({**good, "merges": [[97, 98], [97, 98]]}, "already have id"),
    ]
    for k, (obj, msg) in enumerate(cases):
        with pytest.raises(ValueError, match=msg):
            Tokenizer.load(_write(tmp_path / f"bad{k}.json", obj))
    with pytest.raises(ValueError, match="not a 'char'"):
        CharTokenizer.load(tmp_path / "good.json")


def test_smaller_vocabulary_is_a_prefix_of_a_larger_one():
    # Training is greedy and deterministic, so stopping earlier gives the first merges of a
    # longer run (the notebook uses this to measure many vocabulary sizes from one training).
    text = load_play("othello").text[:60000]
    small = BPETokenizer.train(text, 400)
    large = BPETokenizer.train(text, 700)
    assert small.merges == large.merges[: len(small.merges)]
