"""Bad-input cases of lmlib.textgen (see tests/badinput.py)."""

import torch

from badinput import Case, Custom, Float, Fn, Int, Str, make_test
from lmlib import textgen as T
from lmlib.gpt import GPT, GPTConfig
from lmlib.tokenizers import CharTokenizer

NAN = float("nan")
_M = None


def _model():
    global _M
    if _M is None:
        torch.manual_seed(0)
        _M = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    return _M


def _tok():
    return CharTokenizer(list("abcdef "))


_DET = None


def _det():
    global _DET
    if _DET is None:
        _DET = T.fit_detector(["abab abab", "abba baba", "aabb abab"], ["xyxy zzyx", "yyxz xzzy", "zxzx yzyx"])
    return _DET


BAD_TEXTS = [("single_str", "to be or not"), ("bytes", b"ab"), ("empty", []), ("int", 3), ("none", None),
             ("float_tokens", [[1.5, 2.0]]), ("nested_list_token", [[[1], [2]]]), ("bool_token", [[True, False]]),
             ("float_tensor", [torch.tensor([1.0, 2.0])])]

BAD_LISTS = [("str", "abc"), ("empty", []), ("int", 3), ("none", None), ("str_item", ["abc"]),
             ("float_ids", [[0.5, 1.0]]), ("id_out_of_vocab", [[1, 7]]), ("negative_id", [[1, -1]]),
             ("bool_ids", [[True, False]]), ("float_tensor", [torch.tensor([1.0, 2.0])])]

SPECS = [
    Fn("lmlib.textgen.words", valid=lambda: dict(text="To be, or not."), args={"text": Str()}),
    Fn("lmlib.textgen.ngrams", valid=lambda: dict(tokens="to be or not", n=2),
       args={"tokens": Custom([("int", 3), ("none", None), ("float_tokens", [1.5]), ("dict_item", [{}]),
                               ("float_tensor", torch.tensor([1.0]))]), "n": Int(min=1)}),
    Fn("lmlib.textgen.distinct_n", valid=lambda: dict(texts=["a b c", [1, 2, 3]], n=2),
       args={"texts": Custom(BAD_TEXTS), "n": Int(min=1)},
       cases=[Case("no_ngram", lambda: T.distinct_n(["a", "b"], 2), "texts")]),
    Fn("lmlib.textgen.repetition_rate", valid=lambda: dict(text="a b a b a", n=2),
       args={"text": Custom([("int", 3), ("none", None), ("float_tokens", [1.5, 2.5]), ("bytes", b"ab")]),
             "n": Int(min=1)},
       cases=[Case("too_short", lambda: T.repetition_rate("a b", 4), "text")]),
    Fn("lmlib.textgen.continuation_nll",
       valid=lambda: dict(model=_model(), token_lists=[[1, 2, 3, 4], [0, 5]], starts=[2, 1], stride=4, batch_size=2),
       args={"model": Custom([("not_a_module", lambda x: x), ("none", None)]),
             "token_lists": Custom(BAD_LISTS), "starts": Custom([("str", "12"), ("none", None), ("float", [1.5, 1]),
                                                                  ("too_few", [1])]),
             "stride": Int(min=1, max=8, nullable=True), "batch_size": Int(min=1)},
       cases=[Case("start_zero", lambda: T.continuation_nll(_model(), [[1, 2]], [0]), "starts[0]"),
              Case("start_at_end", lambda: T.continuation_nll(_model(), [[1, 2]], [2]), "starts[0]"),
              Case("no_block_size", lambda: T.continuation_nll(torch.nn.Linear(2, 2), [[1, 2]], [1]), "block_size")]),
    Fn("lmlib.textgen.continuation_bits_per_char",
       valid=lambda: dict(model=_model(), tokenizer=_tok(), prompts=["ab", "c"], continuations=["cd e", "f"],
                          stride=None, batch_size=8),
       args={"model": Custom([("not_a_module", lambda x: x), ("none", None)]),
             "tokenizer": Custom([("no_encode", object()), ("none", None)]),
             "prompts": Custom([("str", "ab"), ("empty", []), ("int_item", [1, 2]), ("empty_item", ["", "c"]),
                                ("none", None), ("too_few", ["ab"])]),
             "continuations": Custom([("str", "cd"), ("empty", []), ("empty_item", ["cd", ""]), ("none", None),
                                      ("unencodable", ["cd", "xyz"])]),
             "stride": Int(min=1, max=8, nullable=True), "batch_size": Int(min=1)},
       aliases={"prompts": ["continuations"], "continuations": ["prompts"]}),
    Fn("lmlib.textgen.fit_detector",
       valid=lambda: dict(real=["abab abab", "abba baba"], generated=["xyxy zzyx", "yyxz xzzy"], n_range=(1, 2),
                          weight_decays=(1e-3,), max_features=100),
       args={"real": Custom([("str", "abab"), ("empty", []), ("one_text", ["abab"]), ("int_item", ["ab", 3]),
                             ("none", None)]),
             "generated": Custom([("str", "xyxy"), ("one_text", ["xy"]), ("none", None)]),
             "n_range": Custom([("str", "12"), ("reversed", (3, 1)), ("zero", (0, 2)), ("triple", (1, 2, 3)),
                                ("float", (1.0, 2))]),
             "weight_decays": Custom([("str", "0.1"), ("empty", []), ("negative", [-1.0]), ("nan", [NAN])]),
             "max_features": Int(min=1)}),
    Fn("lmlib.textgen.Detector.is_real", valid=lambda: dict(texts=["abab", "xyzx"]),
       call=lambda texts: _det().is_real(texts),
       args={"texts": Custom([("str", "abab"), ("empty", []), ("int_item", [1]), ("none", None)])}),
    Fn("lmlib.textgen.fraction_judged_real", valid=lambda: dict(detector=_det(), texts=["abab", "xyzx"], n_boot=200,
                                                                 seed=0, level=0.95),
       args={"detector": Custom([("none", None), ("str", "det")]),
             "texts": Custom([("str", "abab"), ("empty", []), ("none", None)]),
             "n_boot": Int(min=100), "seed": Int(), "level": Float(min=0.0, max=1.0, min_open=True, max_open=True)},
       cases=[Case("groups_wrong_length", lambda: T.fraction_judged_real(_det(), ["ab", "xy"], groups=[0]),
                   "groups")]),
]

test_bad_input = make_test(SPECS)
