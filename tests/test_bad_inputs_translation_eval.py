"""Bad-input cases of lmlib.translation_eval (see tests/badinput.py)."""

from badinput import Case, Custom, Fn, Seq, Str, make_test
from lmlib import translation_eval as E
from lmlib.cedict import Word

TRAIN = [Word("行", (("xing2",), ("hang2",)), ("to walk",)), Word("银行", (("yin2", "hang2"),), ("bank",)),
         Word("人", (("ren2",),), ("person",))]
PREDS = ["yin2 hang2", "xing2"]
REFS = [["yin2 hang2"], ["hang2", "xing2"]]

BAD_PREDS = Custom([("str_for_list", "yin2 hang2"), ("int", 3), ("none", None), ("empty", []),
                    ("int_item", ["yin2 hang2", 4]), ("fewer", ["yin2 hang2"])])
BAD_REFS = Custom([("str_for_list", "abc"), ("int", 3), ("none", None), ("empty", []),
                   ("str_item", [["yin2 hang2"], "xing2"]), ("empty_item", [["yin2 hang2"], []]),
                   ("int_ref", [["yin2 hang2"], [3]]), ("fewer", [["yin2 hang2"]])])
# a reading must have at least one syllable for the syllable metrics
NO_SYLLABLE = [("blank_reading", [["yin2 hang2"], [" "]])]
BAD_WORDS = Custom([("str_for_list", "abc"), ("int", 3), ("none", None), ("empty", []), ("str_item", ["行"])])


def _pair_fn(name, refs=BAD_REFS):
    return Fn(f"lmlib.translation_eval.{name}", valid=lambda: dict(preds=list(PREDS), refs=[list(r) for r in REFS]),
              args={"preds": BAD_PREDS, "refs": refs}, aliases={"preds": ["refs"], "refs": ["preds"]})


SYLLABLE_REFS = Custom(BAD_REFS.values + NO_SYLLABLE)


def _method(cls, method):
    return lambda **kw: getattr(cls(TRAIN), method)(**kw)


SPECS = [
    Fn("lmlib.translation_eval.edit_distance", valid=lambda: dict(a=["yin2", "hang2"], b=["xing2"]),
       args={"a": Custom([("str", "yin2"), ("int", 3), ("none", None)]),
             "b": Custom([("str", "yin2"), ("int", 3), ("none", None)])}),
    _pair_fn("exact_match"),
    _pair_fn("syllable_error_rate", SYLLABLE_REFS),
    _pair_fn("tone_accuracy", SYLLABLE_REFS),
    _pair_fn("chrf"),
    _pair_fn("bleu"),
    _pair_fn("sentence_chrf"),
    Fn("lmlib.translation_eval.heteronyms", valid=lambda: dict(train_words=list(TRAIN)),
       args={"train_words": Custom([("str_for_list", "abc"), ("int", 3), ("none", None), ("str_item", ["行"])])}),
    Fn("lmlib.translation_eval.heteronym_accuracy",
       valid=lambda: dict(sources=["银行", "行"], preds=list(PREDS), refs=[list(r) for r in REFS], chars={"行"}),
       args={"sources": Custom([("str_for_list", "银行"), ("int", 3), ("none", None), ("int_item", ["银行", 1]),
                                ("fewer", ["银行"])]),
             "preds": BAD_PREDS, "refs": SYLLABLE_REFS,
             "chars": Custom([("list", ["行"]), ("str", "行"), ("none", None), ("int_item", {1}),
                              ("word_item", {"银行"})])},
       aliases={"preds": ["refs", "sources"], "refs": ["preds"], "sources": ["preds"]}),
    Fn("lmlib.translation_eval.heteronym_hits",
       valid=lambda: dict(sources=["银行", "行"], preds=list(PREDS), refs=[list(r) for r in REFS], chars={"行"}),
       args={"sources": Custom([("str_for_list", "银行"), ("int", 3), ("none", None), ("int_item", ["银行", 1]),
                                ("fewer", ["银行"])]),
             "preds": BAD_PREDS, "refs": SYLLABLE_REFS,
             "chars": Custom([("list", ["行"]), ("str", "行"), ("none", None), ("int_item", {1}),
                              ("word_item", {"银行"})])},
       aliases={"preds": ["refs", "sources"], "refs": ["preds"], "sources": ["preds"]}),
]
for cls in ("MostFrequentReading", "NearestHeadword", "CharacterGlosses"):
    klass = getattr(E, cls)
    SPECS.append(Fn(f"lmlib.translation_eval.{cls}", valid=lambda: dict(train_words=list(TRAIN)),
                    args={"train_words": BAD_WORDS}))
    SPECS.append(Fn(f"lmlib.translation_eval.{cls}.__call__", valid=lambda: dict(headword="银行"),
                    call=_method(klass, "__call__"), args={"headword": Str(nonempty=True)}))
SPECS.append(Fn("lmlib.translation_eval.NearestHeadword.nearest", valid=lambda: dict(headword="银行"),
                call=_method(E.NearestHeadword, "nearest"), args={"headword": Str(nonempty=True)}))

test_bad_input = make_test(SPECS)
