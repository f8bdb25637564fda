"""Bad-input cases of lmlib.tokenizers (character, byte and BPE tokenizers, their files)."""

import json
import tempfile
from pathlib import Path

import torch

from badinput import Bool, Case, Custom, Fn, Int, Str, make_test
from lmlib import tokenizers as K
from lmlib.tokenizers import ENDOFTEXT, GPT2_PATTERN, BPETokenizer, ByteTokenizer, CharTokenizer, Tokenizer, WordTokenizer

BPE = BPETokenizer([(104, 101), (108, 108)], [ENDOFTEXT])  # "he", "ll"
CHAR = CharTokenizer(list("abc "), [ENDOFTEXT])
WORD = WordTokenizer(["yin2", "hang2"], [ENDOFTEXT])


def _tmp(name="t.json") -> Path:
    return Path(tempfile.mkdtemp()) / name


def _saved(tok=BPE) -> Path:
    path = _tmp()
    tok.save(path)
    return path


def _file(obj) -> Path:
    path = _tmp()
    path.write_text(json.dumps(obj))
    return path


GOOD = {"format": "lmlib-tokenizer", "version": 1, "type": "bpe", "special_tokens": {ENDOFTEXT: 257},
        "pattern": GPT2_PATTERN, "merges": [[97, 98]]}
PATHS = Custom([("int", 3), ("none", None), ("empty", ""), ("list", ["t.json"])])
IDS = Custom([("str", "abc"), ("int", 3), ("none", None), ("float_ids", [1.5]), ("bool_ids", [True]),
              ("out_of_range", [BPE.vocab_size]), ("negative", [-1]), ("float_tensor", torch.tensor([1.0])),
              ("two_dims", torch.zeros(2, 2, dtype=torch.long)), ("nested", [[1, 2]])])
SPECIAL = Custom([("str", ENDOFTEXT), ("int", 3), ("none", None), ("empty_string", [""]), ("int_item", [3]),
                  ("duplicate", ["<a>", "<a>"]), ("dict_bad_id", {"<a>": "x"})])


def _load_cases(load):
    return [
        Case("missing", lambda: load(_tmp("none.json")), "no tokenizer file"),
        Case("random_bytes", lambda: load(_bytes(b"\x00\xff\xfe{{")), "not a valid tokenizer file"),
        Case("truncated", lambda: load(_bytes(json.dumps(GOOD)[:30].encode())), "not a valid tokenizer file"),
        Case("wrong_version", lambda: load(_file({**GOOD, "version": 3})), "version 3"),
        Case("wrong_format", lambda: load(_file({**GOOD, "format": "x"})), "not an lmlib tokenizer"),
        Case("missing_field", lambda: load(_file({k: v for k, v in GOOD.items() if k != "merges"})), "merges"),
        Case("unknown_field", lambda: load(_file({**GOOD, "extra": 1})), "unknown field(s) ['extra']"),
        Case("wrong_type", lambda: load(_file({**GOOD, "merges": "ab"})), "merges"),
    ]


def _bytes(data: bytes) -> Path:
    path = _tmp()
    path.write_bytes(data)
    return path


SPECS = [
    Fn("lmlib.tokenizers.Tokenizer.encode", valid=lambda: dict(text="hello" + ENDOFTEXT, allowed_special="all"),
       call=lambda **kw: BPE.encode(**kw),
       args={"text": Str(), "allowed_special": Custom([("unknown_word", "some"), ("int", 3), ("none", None),
                                                       ("int_items", [3]), ("not_special", ["<x>"])])},
       aliases={"allowed_special": ["special"]}),
    Fn("lmlib.tokenizers.Tokenizer.decode", valid=lambda: dict(ids=[104, 101, 257], errors="replace"),
       call=lambda **kw: BPE.decode(**kw), args={"ids": IDS, "errors": Str(choices=("replace", "strict"))},
       aliases={"ids": ["token id", "decode"]},
       cases=[Case("strict_partial_character", lambda: ByteTokenizer().decode([0xE5], errors="strict"), "UTF-8")]),
    Fn("lmlib.tokenizers.Tokenizer.decode_bytes", valid=lambda: dict(ids=[104, 101]),
       call=lambda **kw: BPE.decode_bytes(**kw), args={"ids": IDS}, aliases={"ids": ["token id", "decode"]}),
    Fn("lmlib.tokenizers.Tokenizer.token_strings", valid=lambda: dict(ids=[104, 101]),
       call=lambda **kw: BPE.token_strings(**kw), args={"ids": IDS}, aliases={"ids": ["token id", "decode"]}),
    Fn("lmlib.tokenizers.Tokenizer.save", valid=lambda: dict(path=_tmp()), call=lambda **kw: BPE.save(**kw),
       args={"path": PATHS}),
    Fn("lmlib.tokenizers.Tokenizer.load", valid=lambda: dict(path=_saved()), call=lambda **kw: Tokenizer.load(**kw),
       args={"path": PATHS},
       cases=_load_cases(Tokenizer.load) + [
           Case("other_kind", lambda: CharTokenizer.load(_saved(BPE)), "not a 'char'")]),
    Fn("lmlib.tokenizers.load_tokenizer", valid=lambda: dict(path=_saved(CHAR)), args={"path": PATHS},
       cases=_load_cases(K.load_tokenizer)),
    Fn("lmlib.tokenizers.CharTokenizer",
       valid=lambda: dict(chars=list("abc"), special_tokens=[ENDOFTEXT], unk_token=None),
       args={"chars": Custom([("str", "abc"), ("int", 3), ("none", None), ("empty", []), ("long_item", ["ab"]),
                              ("int_item", [1]), ("duplicate", ["a", "a"])]),
             "special_tokens": SPECIAL,
             "unk_token": Custom([("int", 3), ("empty", ""), ("list", ["<unk>"])])},
       aliases={"chars": ["character"], "special_tokens": ["special token"]}),
    Fn("lmlib.tokenizers.CharTokenizer.from_text",
       valid=lambda: dict(text="hello", special_tokens=(), unk_token="<unk>"),
       call=lambda **kw: CharTokenizer.from_text(**kw),
       args={"text": Str(nonempty=True), "special_tokens": SPECIAL,
             "unk_token": Custom([("int", 3), ("empty", ""), ("list", ["<unk>"])])},
       aliases={"special_tokens": ["special token"]}),
    Fn("lmlib.tokenizers.CharTokenizer.encode", valid=lambda: dict(text="abc"), call=lambda **kw: CHAR.encode(**kw),
       args={"text": Str()},
       cases=[Case("unknown_character", lambda: CHAR.encode("abz"), "'z'")]),
    Fn("lmlib.tokenizers.WordTokenizer",
       valid=lambda: dict(words=["yin2", "hang2"], special_tokens=[ENDOFTEXT], unk_token=None),
       args={"words": Custom([("str", "yin2 hang2"), ("int", 3), ("none", None), ("empty", []), ("empty_item", [""]),
                              ("with_space", ["yin2 hang2"]), ("int_item", [1]), ("duplicate", ["a", "a"])]),
             "special_tokens": SPECIAL,
             "unk_token": Custom([("int", 3), ("empty", ""), ("list", ["<unk>"])])},
       aliases={"words": ["word"], "special_tokens": ["special token"]}),
    Fn("lmlib.tokenizers.WordTokenizer.encode", valid=lambda: dict(text="yin2 hang2"),
       call=lambda **kw: WORD.encode(**kw), args={"text": Str()},
       cases=[Case("unknown_word", lambda: WORD.encode("yin2 ma1"), "'ma1'")]),
    Fn("lmlib.tokenizers.WordTokenizer.decode_bytes", valid=lambda: dict(ids=[0, 1, 2]),
       call=lambda **kw: WORD.decode_bytes(**kw), args={"ids": Custom([v for v in IDS.values if v[0] != "out_of_range"] + [("out_of_range", [3])])}),
    Fn("lmlib.tokenizers.ByteTokenizer", valid=lambda: dict(special_tokens=[ENDOFTEXT]),
       args={"special_tokens": SPECIAL}, aliases={"special_tokens": ["special token"]}),
    Fn("lmlib.tokenizers.BPETokenizer", valid=lambda: dict(merges=[(97, 98)], special_tokens=[ENDOFTEXT],
                                                           pattern=GPT2_PATTERN),
       args={"merges": Custom([("str", "ab"), ("int", 3), ("none", None), ("short_pair", [(97,)]),
                               ("float_ids", [(97.0, 98)]), ("future_id", [(97, 400)]), ("duplicate", [(97, 98)] * 2)]),
             "special_tokens": SPECIAL,
             "pattern": Custom([("int", 3), ("none", None), ("empty", ""), ("invalid", "("),
                                ("capturing_group", r"(\w+)|\s+")])},
       aliases={"merges": ["merge"], "special_tokens": ["special token"]}),
    Fn("lmlib.tokenizers.BPETokenizer.train",
       valid=lambda: dict(text="hello hello world", vocab_size=260, special_tokens=(ENDOFTEXT,), pattern=GPT2_PATTERN,
                          min_frequency=1, progress=False),
       call=lambda **kw: BPETokenizer.train(**kw),
       args={"text": Str(), "vocab_size": Int(min=257), "special_tokens": SPECIAL,
             "pattern": Custom([("int", 3), ("none", None), ("empty", ""), ("invalid", "("),
                                ("skips_spaces", r"\w+")]),
             "min_frequency": Int(min=1), "progress": Bool()},
       aliases={"special_tokens": ["special token"]}),
    Fn("lmlib.tokenizers.BPETokenizer.encode_ordinary", valid=lambda: dict(text="hello"),
       call=lambda **kw: BPE.encode_ordinary(**kw), args={"text": Str()}, aliases={"text": ["encode"]},
       cases=[Case("pattern_skips_characters", lambda: BPETokenizer([], (), r"\w+").encode("a b"), "skips")]),
    Fn("lmlib.tokenizers.BPETokenizer.pre_tokenize", valid=lambda: dict(text="hello world"),
       call=lambda **kw: BPE.pre_tokenize(**kw), args={"text": Str()}),
    Fn("lmlib.tokenizers.BPETokenizer.token_bytes", valid=lambda: dict(i=256),
       call=lambda **kw: BPE.token_bytes(**kw), args={"i": Int(min=0, max=BPE.vocab_size - 1)}),
    Fn("lmlib.tokenizers.BPETokenizer.to_tiktoken", valid=lambda: dict(name="x"),
       call=lambda **kw: BPE.to_tiktoken(**kw), args={"name": Str(nonempty=True)}, check_valid=False),
    Fn("lmlib.tokenizers.to_hf", valid=lambda: dict(tokenizer=CHAR, path=None),
       args={"tokenizer": Custom([("str", "gpt2"), ("none", None), ("base_class", Tokenizer({}))]),
             "path": Custom([("int", 3), ("empty", ""), ("list", ["p"])])}, check_valid=False),
    Fn("lmlib.tokenizers.bytes_to_unicode", valid=dict),
]

test_bad_input = make_test(SPECS)
