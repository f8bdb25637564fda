"""Bad-input cases of lmlib.translation (see tests/badinput.py)."""

import inspect

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Seq, Str, make_test
from lmlib import translation as T
from lmlib.cedict import Word
from lmlib.gpt import GPT, GPTConfig

WORDS = [Word("银行", (("yin2", "hang2"),), ("bank",)), Word("行", (("xing2",), ("hang2",)), ("to walk",)),
         Word("人", (("ren2",),), ("person",))]


def _ex():
    return T.make_examples(WORDS, "pinyin")


def _vocab():
    return T.build_vocabularies(_ex() + T.make_examples(WORDS, "english"))


def _ed(v=None):
    torch.manual_seed(0)
    return T.encoder_decoder(v or _vocab(), d_model=8, n_layers=1, n_heads=2, dropout=0.0, max_len=16)


def _lm(v=None):
    torch.manual_seed(0)
    return T.decoder_only(v or _vocab(), n_embd=8, n_layer=1, n_head=2, dropout=0.0, block_size=16)


def _state(kwargs):
    model = kwargs.get("model")
    if not isinstance(model, torch.nn.Module):
        return None
    return {"training": model.training, **{k: v.clone() for k, v in model.state_dict().items()}}


BAD_TASK = T.Example("summary", "银行", "yin2 hang2", ("yin2 hang2",))
BAD_VOCAB = Custom([("none", None), ("str", "vocab"), ("tokenizer", _vocab().source)])
BAD_EXAMPLES = Custom([("str_for_list", "abc"), ("int", 3), ("none", None), ("empty", []),
                       ("word_for_example", WORDS), ("unknown_task", [BAD_TASK])])
BAD_EXAMPLE = Custom([("none", None), ("list", _ex()), ("word", WORDS[0]), ("unknown_task", BAD_TASK)])
WRONG_SIZE = GPT(GPTConfig(vocab_size=7, block_size=16, n_layer=1, n_head=2, n_embd=8))
# a long example (12 source characters: 14 joint tokens before its target) that only some batches draw
LONG = T.Example("pinyin", "银行人" * 4, " ".join(["yin2", "hang2", "ren2"] * 4), ("x",))


def _train_valid(build=_ed):
    v = _vocab()
    return dict(model=build(v), vocab=v, examples=_ex(), steps=2, batch_size=2, lr=1e-3, min_lr=1e-4,
                warmup_steps=1, weight_decay=0.01, grad_clip=1.0, seed=0, bucket=2, progress=False, stop_after=None)


def _long_case(build, call):
    kw = _train_valid(build)
    kw["examples"] = kw["examples"] * 4 + [LONG]
    return Case(f"example_too_long_for_{'seq2seq' if build is _ed else 'lm'}_{call.__name__}",
                lambda: call(**{k: v for k, v in kw.items() if k in inspect.signature(call).parameters}),
                ["examples", "long"], snapshot=lambda: _state(kw))


def _model_cases(build):
    v = _vocab()
    kw = _train_valid(build)
    return [Case(f"{build.__name__}_for_other_vocab", lambda: T.train_translator(**{**kw, "vocab": T.build_vocabularies(
                 T.make_examples(WORDS[:1], "pinyin"))}), "vocab", snapshot=lambda: _state(kw)),
            _long_case(build, T.train_translator), _long_case(build, T.heldout_loss)]


SPECS = [
    Fn("lmlib.translation.make_examples", valid=lambda: dict(words=WORDS, task="english", max_target_chars=8),
       args={"words": Custom([("str_for_list", "abc"), ("int", 3), ("none", None), ("example_for_word", _ex())]),
             "task": Str(choices=T.TASKS), "max_target_chars": Int(min=1)}),
    Fn("lmlib.translation.build_vocabularies", valid=lambda: dict(examples=_ex(), target_units="syllable"),
       args={"examples": Custom([v for v in BAD_EXAMPLES.values if v[0] != "unknown_task"]),
             "target_units": Str(choices=T.TARGET_UNITS)},
       cases=[Case("syllables_of_english", lambda: T.build_vocabularies(_ex() + T.make_examples(WORDS, "english"),
                                                                        target_units="syllable"), "pinyin examples only")]),
    Fn("lmlib.translation.source_ids", valid=lambda: dict(vocab=_vocab(), example=_ex()[0]),
       args={"vocab": BAD_VOCAB, "example": BAD_EXAMPLE}),
    Fn("lmlib.translation.lm_prompt", valid=lambda: dict(vocab=_vocab(), example=_ex()[0]),
       args={"vocab": BAD_VOCAB, "example": BAD_EXAMPLE}),
    Fn("lmlib.translation.encode_seq2seq", valid=lambda: dict(vocab=_vocab(), examples=_ex()),
       args={"vocab": BAD_VOCAB, "examples": BAD_EXAMPLES}),
    Fn("lmlib.translation.encode_lm", valid=lambda: dict(vocab=_vocab(), examples=_ex()),
       args={"vocab": BAD_VOCAB, "examples": BAD_EXAMPLES}),
    Fn("lmlib.translation.lm_target_logits",
       valid=lambda: dict(model=_lm(), idx=T.encode_lm(_vocab(), _ex())["idx"], n_out=_vocab().target.vocab_size),
       snapshot=_state,
       args={"model": Custom([("none", None), ("encoder_decoder", _ed()), ("linear", torch.nn.Linear(2, 2))]),
             "idx": Custom(list(Ids(vocab_size=_vocab().joint_size).bad(T.encode_lm(_vocab(), _ex())["idx"]))
                           + [("longer_than_block_size", torch.zeros(1, 17, dtype=torch.long)),
                              ("one_dim", torch.zeros(3, dtype=torch.long)), ("none", None)]),
             "n_out": Int(min=1, max=_vocab().joint_size)}),
    Fn("lmlib.translation.train_translator", valid=_train_valid, snapshot=_state,
       args={"model": Custom([("none", None), ("linear", torch.nn.Linear(2, 2)), ("wrong_size", WRONG_SIZE)]),
             "vocab": BAD_VOCAB, "examples": BAD_EXAMPLES,
             "steps": Int(min=1), "batch_size": Int(min=1), "lr": Float(min=0.0, min_open=True),
             "min_lr": Float(min=0.0, max=1e-3), "warmup_steps": Int(min=0), "weight_decay": Float(min=0.0),
             "grad_clip": Float(min=0.0, min_open=True), "seed": Int(min=0), "bucket": Int(min=1), "progress": Bool(),
             "stop_after": Int(min=1, nullable=True)},
       aliases={"model": ["vocab"], "min_lr": ["lr"]},
       cases=_model_cases(_ed) + _model_cases(_lm)),
    Fn("lmlib.translation.heldout_loss", valid=lambda: dict(model=_lm(), vocab=_vocab(), examples=_ex(), batch_size=2),
       snapshot=_state,
       args={"model": Custom([("none", None), ("linear", torch.nn.Linear(2, 2)), ("wrong_size", WRONG_SIZE)]),
             "vocab": BAD_VOCAB, "examples": BAD_EXAMPLES, "batch_size": Int(min=1)},
       aliases={"model": ["vocab"]}),
    Fn("lmlib.translation.encoder_decoder",
       valid=lambda: dict(vocab=_vocab(), d_model=8, n_layers=1, n_heads=2, dropout=0.0, max_len=16),
       args={"vocab": BAD_VOCAB, "d_model": Int(min=1), "n_layers": Int(min=1), "n_heads": Int(min=1),
             "dropout": Float(min=0.0, max=1.0, max_open=True), "max_len": Int(min=1)},
       cases=[Case("odd_d_model", lambda: T.encoder_decoder(_vocab(), d_model=9, n_heads=3), "d_model"),
              Case("heads_do_not_divide", lambda: T.encoder_decoder(_vocab(), d_model=8, n_heads=3), "n_heads")]),
    Fn("lmlib.translation.decoder_only",
       valid=lambda: dict(vocab=_vocab(), n_embd=8, n_layer=1, n_head=2, dropout=0.0, block_size=16),
       args={"vocab": BAD_VOCAB, "n_embd": Int(min=1), "n_layer": Int(min=1), "n_head": Int(min=1),
             "dropout": Float(min=0.0, max=1.0, max_open=True), "block_size": Int(min=1)},
       cases=[Case("heads_do_not_divide", lambda: T.decoder_only(_vocab(), n_embd=8, n_head=3), "n_head")]),
]


def _translate_valid(build=_lm):
    v = _vocab()
    return dict(model=build(v), vocab=v, examples=_ex(), beam_size=1, max_len=4, length_penalty=1.0, batch_size=2)


SPECS += [
    Fn("lmlib.translation.batch_loss", valid=lambda: dict(model=_ed(), vocab=_vocab(), examples=_ex()), snapshot=_state,
       args={"model": Custom([("none", None), ("linear", torch.nn.Linear(2, 2)), ("wrong_size", WRONG_SIZE)]),
             "vocab": BAD_VOCAB, "examples": BAD_EXAMPLES},
       aliases={"model": ["vocab"]}),
    Fn("lmlib.translation.TargetLM", valid=lambda: dict(model=_lm(), n_out=_vocab().target.vocab_size),
       args={"model": Custom([("none", None), ("encoder_decoder", _ed()), ("linear", torch.nn.Linear(2, 2))]),
             "n_out": Int(min=1, max=_vocab().joint_size)}),
    Fn("lmlib.translation.translate", valid=_translate_valid, snapshot=_state,
       args={"model": Custom([("none", None), ("linear", torch.nn.Linear(2, 2)), ("wrong_size", WRONG_SIZE)]),
             "vocab": BAD_VOCAB, "examples": BAD_EXAMPLES, "beam_size": Int(min=1), "max_len": Int(min=1),
             "length_penalty": Float(min=0.0), "batch_size": Int(min=1)},
       aliases={"model": ["vocab"]}),
    # the valid call loads the whole dictionary (tests/test_translation.py covers it); the bad ones fail first
    Fn("lmlib.translation.cedict_data", valid=lambda: dict(recipe=None, vocab=None), check_valid=False,
       args={"recipe": Custom([("str", "recipe"), ("unknown_key", {"seed": 1}), ("float_value", {"n_val": 1.5}),
                               ("zero_n_test", {"n_test": 0}), ("list", [("n_val", 10)])]),
             "vocab": Custom([("str", "vocab"), ("tokenizer", _vocab().source)])},
       aliases={"recipe": ["n_val", "n_test"]}),
    Fn("lmlib.translation.cross_attention", valid=lambda: dict(model=_ed(), vocab=_vocab(), example=_ex()[0],
                                                               output="yin2 hang2"),
       snapshot=_state,
       args={"model": Custom([("none", None), ("decoder_only", _lm()), ("linear", torch.nn.Linear(2, 2))]),
             "vocab": BAD_VOCAB, "example": BAD_EXAMPLE,
             "output": Custom([("none", None), ("int", 3), ("list", ["y"]), ("too_long", "y" * 16)])},
       aliases={"model": ["vocab"]}),
]

EXEMPT = {
    "lmlib.translation.Example": "a record built by make_examples; every function that takes examples checks "
                                 "their type and task",
    "lmlib.translation.Vocabularies": "a record built only by build_vocabularies; functions that take one check its type",
    "lmlib.translation.TranslationData": "a result record built only by cedict_data from checked settings",
}

test_bad_input = make_test(SPECS)
