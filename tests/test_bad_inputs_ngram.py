"""Bad-input cases of lmlib.ngram (character n-gram models)."""

import torch

from badinput import Case, Custom, Float, Fn, Int, make_test
from lmlib.data import CharVocab
from lmlib.ngram import NGramModel

VOCAB = CharVocab.from_text("the cat sat")
TEXT = "the cat sat the cat"
FITTED = NGramModel(3, VOCAB).fit(TEXT)


def _method(name, **valid):
    return Fn(f"lmlib.ngram.NGramModel.{name}", valid=lambda: dict(valid),
              call=lambda **kw: getattr(FITTED, name)(**kw),
              args={k: Custom([("int", 3), ("none", None), ("bytes", b"the"), ("list", list("the")),
                               ("unknown_char", "thQ"), ("surrogate", "th\ud800"), ("too_short", "t")])
                    for k in valid},
              aliases={k: ["text", "context", "ngram", "character"] for k in valid})


SPECS = [
    Fn("lmlib.ngram.NGramModel", valid=lambda: dict(n=2, vocab=VOCAB, smoothing=0.5),
       args={"n": Int(min=1), "vocab": Custom([("str", "abc"), ("none", None), ("list", ["a"])]),
             "smoothing": Float(min=0.0)},
       cases=[Case("too_large", lambda: NGramModel(30, VOCAB), "too large")]),
    Fn("lmlib.ngram.NGramModel.fit", valid=lambda: dict(text=TEXT), call=lambda **kw: NGramModel(3, VOCAB).fit(**kw),
       args={"text": Custom([("int", 3), ("none", None), ("list", list("the")), ("unknown_char", "the Q"),
                             ("too_short", "th"), ("surrogate", "the\ud800")])},
       aliases={"text": ["training text", "characters"]}),
    Fn("lmlib.ngram.NGramModel.with_smoothing", valid=lambda: dict(smoothing=0.1),
       call=lambda **kw: FITTED.with_smoothing(**kw), args={"smoothing": Float(min=0.0)}),
    _method("count", ngram="the"),
    _method("context_count", context="th"),
    _method("log_prob_next", context="th"),
    _method("log_probs", text=TEXT),
    _method("seen_context_fraction", text=TEXT),
    _method("nll", text=TEXT),
    _method("perplexity", text=TEXT),
    _method("bits_per_char", text=TEXT),
    Fn("lmlib.ngram.NGramModel.count_table", valid=dict, call=lambda: FITTED.count_table(),
       cases=[Case("not_fitted", lambda: NGramModel(2, VOCAB).count_table(), "fit", error=RuntimeError)]),
    Fn("lmlib.ngram.NGramModel.prob_table", valid=dict, call=lambda: FITTED.prob_table()),
    Fn("lmlib.ngram.NGramModel.sample",
       valid=lambda: dict(n_chars=5, generator=torch.Generator().manual_seed(0), prompt="th"),
       call=lambda **kw: FITTED.sample(**kw),
       args={"n_chars": Int(min=0), "generator": Custom([("int", 0), ("str", "g")]),
             "prompt": Custom([("int", 3), ("none", None), ("list", ["t", "h"]), ("too_short", "t"),
                               ("unknown_char", "tQ")])},
       aliases={"prompt": ["character"]}),
]

test_bad_input = make_test(SPECS)
