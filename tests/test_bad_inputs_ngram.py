"""Bad-input cases of lmlib.ngram (character n-gram models)."""

import torch

from badinput import Case, Custom, Float, Fn, Int, Tensor, make_test
from lmlib.data import CharVocab
from lmlib.ngram import InterpolatedNGramModel, MixtureNGramModel, NGramModel, apply_temperature

VOCAB = CharVocab.from_text("the cat sat")
TEXT = "the cat sat the cat"
FITTED = NGramModel(3, VOCAB).fit(TEXT)
INTERP = InterpolatedNGramModel(3, VOCAB, discount=0.5).fit(TEXT)
BAD_TEXT = Custom([("int", 3), ("none", None), ("bytes", b"the"), ("list", list("the")),
                   ("unknown_char", "thQ"), ("surrogate", "th\ud800"), ("too_short", "t")])
TEXT_WORDS = ["text", "context", "ngram", "character"]


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
    _method("context_counts", text=TEXT),
    _method("context_types", text=TEXT),
    _method("nll", text=TEXT),
    _method("perplexity", text=TEXT),
    _method("bits_per_char", text=TEXT),
    Fn("lmlib.ngram.NGramModel.prob_next", valid=lambda: dict(context="th", temperature=0.5),
       call=lambda **kw: FITTED.prob_next(**kw),
       args={"context": BAD_TEXT, "temperature": Float(min=0.0)}, aliases={"context": TEXT_WORDS}),
    Fn("lmlib.ngram.NGramModel.count_table", valid=dict, call=lambda: FITTED.count_table(),
       cases=[Case("not_fitted", lambda: NGramModel(2, VOCAB).count_table(), "fit", error=RuntimeError)]),
    Fn("lmlib.ngram.NGramModel.prob_table", valid=dict, call=lambda: FITTED.prob_table()),
    Fn("lmlib.ngram.NGramModel.sample",
       valid=lambda: dict(n_chars=5, generator=torch.Generator().manual_seed(0), prompt="th", temperature=0.5),
       call=lambda **kw: FITTED.sample(**kw),
       args={"n_chars": Int(min=0), "generator": Custom([("int", 0), ("str", "g")]),
             "prompt": Custom([("int", 3), ("none", None), ("list", ["t", "h"]), ("too_short", "t"),
                               ("unknown_char", "tQ")]), "temperature": Float(min=0.0)},
       aliases={"prompt": ["character"]}),
    # interpolated absolute discounting
    Fn("lmlib.ngram.InterpolatedNGramModel", valid=lambda: dict(n=3, vocab=VOCAB, discount=0.5),
       args={"n": Int(min=1), "vocab": Custom([("str", "abc"), ("none", None), ("list", ["a"])]),
             "discount": Float(min=0.0, max=1.0)},
       cases=[Case("too_large", lambda: InterpolatedNGramModel(30, VOCAB), "too large")]),
    Fn("lmlib.ngram.InterpolatedNGramModel.fit", valid=lambda: dict(text=TEXT),
       call=lambda **kw: InterpolatedNGramModel(3, VOCAB).fit(**kw),
       args={"text": Custom([("int", 3), ("none", None), ("list", list("the")), ("unknown_char", "the Q"),
                             ("too_short", "th"), ("surrogate", "the\ud800")])},
       aliases={"text": ["training text", "characters"]},
       cases=[Case("bad_text_keeps_counts", lambda: INTERP.fit("the Q"), "vocabulary",
                   snapshot=lambda: INTERP.log_prob_next("th"))]),
    Fn("lmlib.ngram.InterpolatedNGramModel.with_discount", valid=lambda: dict(discount=0.3, n=2),
       call=lambda **kw: INTERP.with_discount(**kw),
       args={"discount": Float(min=0.0, max=1.0), "n": Int(min=1, max=3, nullable=True)}),
    Fn("lmlib.ngram.InterpolatedNGramModel.log_prob_next", valid=lambda: dict(context="th"),
       call=lambda **kw: INTERP.log_prob_next(**kw), args={"context": BAD_TEXT}, aliases={"context": TEXT_WORDS},
       cases=[Case("not_fitted", lambda: InterpolatedNGramModel(2, VOCAB).log_prob_next("t"), "fit",
                   error=RuntimeError)]),
    *[Fn(f"lmlib.ngram.InterpolatedNGramModel.{name}", valid=lambda: dict(text=TEXT),
         call=lambda name=name, **kw: getattr(INTERP, name)(**kw), args={"text": BAD_TEXT},
         aliases={"text": TEXT_WORDS}) for name in ("log_probs", "nll", "perplexity", "bits_per_char")],
    Fn("lmlib.ngram.InterpolatedNGramModel.prob_next", valid=lambda: dict(context="th", temperature=2.0),
       call=lambda **kw: INTERP.prob_next(**kw),
       args={"context": BAD_TEXT, "temperature": Float(min=0.0)}, aliases={"context": TEXT_WORDS}),
    Fn("lmlib.ngram.InterpolatedNGramModel.sample",
       valid=lambda: dict(n_chars=5, generator=torch.Generator().manual_seed(0), prompt="th", temperature=0.7),
       call=lambda **kw: INTERP.sample(**kw),
       args={"n_chars": Int(min=0), "generator": Custom([("int", 0), ("str", "g")]),
             "prompt": Custom([("int", 3), ("none", None), ("list", ["t", "h"]), ("too_short", "t"),
                               ("unknown_char", "tQ")]), "temperature": Float(min=0.0)},
       aliases={"prompt": ["character"]}),
    # a fixed mixture (Jelinek-Mercer)
    Fn("lmlib.ngram.MixtureNGramModel", valid=lambda: dict(n=3, vocab=VOCAB, lam=0.5),
       args={"n": Int(min=1), "vocab": Custom([("str", "abc"), ("none", None), ("list", ["a"])]),
             "lam": Float(min=0.0, max=1.0, min_open=True)},
       cases=[Case("too_large", lambda: MixtureNGramModel(30, VOCAB), "too large")]),
    Fn("lmlib.ngram.MixtureNGramModel.with_lam", valid=lambda: dict(lam=0.3, n=2),
       call=lambda **kw: MixtureNGramModel.from_counts(INTERP, 0.5).with_lam(**kw),
       args={"lam": Float(min=0.0, max=1.0, min_open=True), "n": Int(min=1, max=3, nullable=True)}),
    Fn("lmlib.ngram.MixtureNGramModel.from_counts", valid=lambda: dict(model=INTERP, lam=0.3, n=2),
       call=lambda **kw: MixtureNGramModel.from_counts(**kw),
       args={"model": Custom([("add_k_model", FITTED), ("none", None), ("str", "model")]),
             "lam": Float(min=0.0, max=1.0, min_open=True), "n": Int(min=1, max=3, nullable=True)}),
    Fn("lmlib.ngram.apply_temperature",
       valid=lambda: dict(log_probs=torch.tensor([[-0.5, -1.0, -2.0]]).log_softmax(-1), temperature=0.5),
       args={"log_probs": Tensor(dtype="float", skip=("extra_dim",)), "temperature": Float(min=0.0)},
       cases=[Case("positive_log_prob", lambda: apply_temperature(torch.tensor([0.5, -1.0]), 1.0), "log_probs"),
              Case("all_minus_inf", lambda: apply_temperature(torch.full((2, 3), -float("inf")), 1.0), "log_probs"),
              Case("empty", lambda: apply_temperature(torch.zeros(2, 0), 1.0), "log_probs")]),
]

test_bad_input = make_test(SPECS)
