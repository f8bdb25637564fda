"""Bad-input cases of lmlib.cedict (see tests/badinput.py)."""

from badinput import Case, Custom, Fn, Int, Seq, Str, make_test
from lmlib import cedict as C
from lmlib.cedict import Entry, Word

LINE = "銀行 银行 [yin2 hang2] /bank/CL:家[jia1],個|个[ge4]/"
ENTRIES = [Entry("銀行", "银行", ("yin2", "hang2"), ("bank",), ("家",), ()),
           Entry("行", "行", ("xing2",), ("to walk",), (), ())]


def _words(n=6):
    return [Word(chr(0x4E00 + i), (("a1",),), (f"sense {i}",)) for i in range(n)]


MALFORMED = [("no_brackets", "銀行 银行 yin2 hang2 /bank/"), ("no_slashes", "銀行 银行 [yin2 hang2] bank"),
             ("lengths_differ", "銀 银行 [yin2 hang2] /bank/"), ("empty_pinyin", "銀行 银行 [] /bank/"),
             ("no_gloss", "銀行 银行 [yin2 hang2] //"), ("empty", "")]

SPECS = [
    Fn("lmlib.cedict.parse_line", valid=lambda: dict(line=LINE), args={"line": Str()},
       cases=[Case(label, lambda bad=bad: C.parse_line(bad), "parse_line", error=ValueError)
              for label, bad in MALFORMED]),
    Fn("lmlib.cedict.parse_cedict", valid=lambda: dict(lines=["# comment", LINE, "bad"]),
       args={"lines": Custom([("str_for_list", LINE), ("bytes", LINE.encode()), ("int", 3), ("none", None),
                              ("bytes_line", [LINE.encode()]), ("int_line", [LINE, 7])])}),
    Fn("lmlib.cedict.normalise_syllable", valid=lambda: dict(syllable="Bei3"), args={"syllable": Str()}),
    Fn("lmlib.cedict.words_from_entries", valid=lambda: dict(entries=list(ENTRIES), max_chars=4),
       args={"entries": Custom([("str_for_list", "abc"), ("int", 3), ("none", None),
                                ("line_for_entry", [LINE]), ("word_for_entry", _words(1))]),
             "max_chars": Int(min=1)}),
    # the valid call loads the whole dictionary (covered by tests/test_cedict.py); the bad ones fail first
    Fn("lmlib.cedict.load_words", valid=lambda: dict(max_chars=4), args={"max_chars": Int(min=1)},
       check_valid=False),
    Fn("lmlib.cedict.split_words", valid=lambda: dict(words=_words(), n_val=2, n_test=2, seed=0),
       args={"words": Custom([("str_for_list", "abc"), ("int", 3), ("none", None), ("entry_for_word", ENTRIES),
                              ("duplicate_headwords", _words() + _words(1))]),
             "n_val": Int(min=1), "n_test": Int(min=1), "seed": Int(min=0)},
       cases=[Case("no_training_words", lambda: C.split_words(_words(), n_val=3, n_test=3), ["n_val", "n_test"],
                   error=ValueError),
              Case("empty_words", lambda: C.split_words([], n_val=1, n_test=1), ["n_val", "n_test", "words"])]),
]

EXEMPT = {
    "lmlib.cedict.Entry": "a record built by parse_line from a checked line; functions that take entries check their type",
    "lmlib.cedict.Word": "a record built by words_from_entries; functions that take words check their type",
    "lmlib.cedict.Skipped": "a result record built only by parse_cedict for a line it skipped",
    "lmlib.cedict.WordSplit": "a result record built only by split_words from checked words",
    "lmlib.cedict.cedict_path": "takes no arguments: there is nothing a caller can pass wrongly",
    "lmlib.cedict.load_entries": "takes no arguments: there is nothing a caller can pass wrongly",
}

test_bad_input = make_test(SPECS)
