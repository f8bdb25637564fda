"""Bad-input cases of lmlib.finetune (see tests/badinput.py). A tiny zoo-style model (built from a
config, no files) stands in for the zoo's; finetune runs one step."""

import json
import math
import tempfile
from pathlib import Path

import torch

from badinput import Bool, Case, Custom, Float, Fn, Int, Str, Tensor, make_test
from lmlib import finetune as F
from lmlib import zoo
from lmlib.classification import GPTClassifier
from lmlib.gpt import GPT, GPTConfig
from lmlib.tokenizers import CharTokenizer

TOK = CharTokenizer(list("abcdefghij"))
CONFIG = {"name": "tiny", "kind": "gpt", "recipe": {"model": {"n_layer": 1, "n_embd": 8, "n_head": 2, "block_size": 8},
                                                    "train": {"max_steps": 1, "eval_interval": 1, "warmup_steps": 0}}}
TOKENS = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [1, 1]]
LABELS = [0, 1, 0, 1]
BAD_TOKENS = [("str", "abc"), ("int", 3), ("list_of_str", ["ab", "c"]), ("floats", [[1.5, 2.0], [3.0]]),
              ("negative", [[1, -2], [3]]), ("empty_example", [[1, 2], []]), ("empty", []), ("none", None),
              ("too_long", [[1] * 9])]
BAD_LABELS = [("str", "0101"), ("int", 3), ("none", None), ("floats", [0.5, 1.0, 0.0, 1.0]),
              ("out_of_range", [0, 1, 9, 1]), ("negative", [0, -1, 0, 1]), ("wrong_count", [0, 1]),
              ("two_dim", torch.tensor([[0, 1, 0, 1]]))]
CLASSIFIERS = Custom([("str", "clf"), ("none", None), ("linear", torch.nn.Linear(2, 2)),
                      ("gpt_without_head", GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)))])
ZMS = Custom([("str", "gpt-char"), ("none", None), ("dict", {"kind": "gpt"}),
              ("gpt", GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)))])
TOKEN_WORDS = {"token_lists": ["example", "maximum"]}


def _zm():
    torch.manual_seed(0)
    return zoo.ZooModel("tiny", zoo.build(CONFIG, TOK).eval(), TOK, {"config": CONFIG}, Path("."))


def _clf(k=2):
    torch.manual_seed(0)
    return GPTClassifier(GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)), k)


def _state(kw):
    m = kw.get("classifier")
    if not isinstance(m, torch.nn.Module):
        return None
    return ({k: v.clone() for k, v in m.state_dict().items()}, [(n, p.requires_grad) for n, p in m.named_parameters()],
            m.training)


def _probe():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(8, 8, generator=g)
    y = torch.tensor([0, 1] * 4)
    return F.fit_probe(f, y, f[:4], y[:4], 2, weight_decays=(1e-2,))


def _results_dir():
    d = Path(tempfile.mkdtemp())
    (d / "ch07-genre.json").write_text(json.dumps({"command": "python scripts/finetune_experiments.py genre"}))
    (d / "ch07-sft.json").write_text(json.dumps(["not", "a", "dict"]))
    return d


def _lora_twice():
    clf = _clf()
    F.set_trainable(clf, "lora", rank=2)
    return clf


_TWICE = _lora_twice()
_FRESH = _clf()

SPECS = [
    Fn("lmlib.finetune.finetune_split", valid=lambda: dict(seed=0), args={"seed": Int()}),
    Fn("lmlib.finetune.TextEncoder",
       valid=lambda: dict(kind="bert", tokenizer=TOK, pad_id=0, max_len=8, cls_id=1, sep_id=2),
       args={"kind": Str(choices=("gpt", "bert")), "tokenizer": Custom([("str", "abc"), ("none", None), ("int", 3),
                                                                        ("list", [1])]),
             "pad_id": Int(min=0), "max_len": Int(min=1), "cls_id": Int(min=0), "sep_id": Int(min=0)},
       cases=[Case("gpt_with_bad_cls", lambda: F.TextEncoder("gpt", TOK, 0, 8, cls_id=-1), "cls_id"),
              Case("bert_without_room", lambda: F.TextEncoder("bert", TOK, 0, 2, 1, 2), "max_len")]),
    Fn("lmlib.finetune.TextEncoder.encode", valid=lambda: dict(texts=["abc", "de"], truncate=False),
       call=lambda texts, truncate: F.TextEncoder("bert", TOK, 0, 8, 1, 2).encode(texts, truncate=truncate),
       args={"texts": Custom([("str", "abc"), ("ints", [1, 2]), ("empty", []), ("none", None), ("mixed", ["a", 3])]),
             "truncate": Bool()},
       cases=[Case("too_long", lambda: F.TextEncoder("bert", TOK, 0, 8, 1, 2).encode(["abcdefg"]), "texts[0]"),
              Case("empty_gpt_text", lambda: F.TextEncoder("gpt", TOK, 0, 8).encode(["ab", ""]), "texts[1]")]),
    Fn("lmlib.finetune.text_encoder", valid=lambda: dict(zm=_zm()), args={"zm": ZMS}),
    Fn("lmlib.finetune.classifier_for",
       valid=lambda: dict(zm=_zm(), num_classes=2, init="random", seed=0, pooling="mean"),
       args={"zm": ZMS, "num_classes": Int(min=2), "init": Str(choices=("pretrained", "random")), "seed": Int(),
             "pooling": Str(choices=("last", "mean", "lm-score"))}),
    Fn("lmlib.finetune.features",
       valid=lambda: dict(classifier=_clf(), token_lists=[list(t) for t in TOKENS], pad_id=0, max_len=8, batch_size=2),
       args={"classifier": CLASSIFIERS, "token_lists": Custom(BAD_TOKENS + [("out_of_vocab", [[1, 10]])]),
             "pad_id": Int(min=0), "max_len": Int(min=1), "batch_size": Int(min=1)},
       aliases={**TOKEN_WORDS, "token_lists": ["example", "maximum", "input_ids"]}, snapshot=_state),
    Fn("lmlib.finetune.Probe.logits", valid=lambda: dict(feats=torch.randn(3, 8)),
       call=lambda feats: _probe().logits(feats), args={"feats": Tensor()},
       cases=[Case("wrong_width", lambda: _probe().logits(torch.randn(3, 7)), "feats")]),
    Fn("lmlib.finetune.Probe.predict", valid=lambda: dict(feats=torch.randn(3, 8)),
       call=lambda feats: _probe().predict(feats), args={"feats": Tensor()}),
    Fn("lmlib.finetune.fit_probe",
       valid=lambda: dict(f_train=torch.randn(8, 4), y_train=[0, 1] * 4, f_val=torch.randn(4, 4), y_val=[0, 1, 0, 1],
                          num_classes=2, weight_decays=(1e-2, 1e-1)),
       args={"f_train": Tensor(), "y_train": Custom(BAD_LABELS),
             "f_val": Tensor(), "y_val": Custom(BAD_LABELS), "num_classes": Int(min=2),
             "weight_decays": Custom([("str", "0.1"), ("empty", []), ("negative", (1e-2, -1.0)), ("nan", (math.nan,)),
                                      ("float", 0.1), ("none", None)])},
       cases=[Case("f_val_wrong_width", lambda: F.fit_probe(torch.randn(8, 4), [0, 1] * 4, torch.randn(4, 3),
                                                            [0, 1, 0, 1], 2), "f_val"),
              Case("one_training_example", lambda: F.fit_probe(torch.randn(1, 4), [0], torch.randn(4, 4),
                                                               [0, 1, 0, 1], 2), "f_train"),
              Case("empty_f_val", lambda: F.fit_probe(torch.randn(8, 4), [0, 1] * 4, torch.randn(0, 4), [], 2),
                   "f_val")]),
    Fn("lmlib.finetune.init_head_from_probe", valid=lambda: dict(classifier=_clf(), probe=_probe()),
       args={"classifier": Custom([("str", "clf"), ("none", None), ("linear", torch.nn.Linear(2, 2))]),
             "probe": Custom([("str", "probe"), ("none", None), ("dict", {"mean": 0})])},
       snapshot=_state,
       cases=[Case("wrong_number_of_classes", lambda: F.init_head_from_probe(_clf(k=3), _probe()), "shape")]),
    Fn("lmlib.finetune.set_trainable", valid=lambda: dict(classifier=_clf(), strategy="lora", rank=2),
       args={"classifier": CLASSIFIERS, "strategy": Str(choices=F.STRATEGIES), "rank": Int(min=1)},
       snapshot=_state,
       cases=[Case("rank_above_width", lambda: F.set_trainable(_FRESH, "lora", rank=9), "rank",
                   snapshot=lambda: _state({"classifier": _FRESH})),
              Case("lora_twice", lambda: F.set_trainable(_TWICE, "lora", rank=2), "LoRA",
                   snapshot=lambda: _state({"classifier": _TWICE}))]),
    Fn("lmlib.finetune.finetune",
       valid=lambda: dict(classifier=_clf(), token_lists=[list(t) for t in TOKENS], labels=list(LABELS), pad_id=0,
                          max_len=8, lr=1e-3, steps=1, seed=0, batch_size=2, eval_every=None, eval_fn=None,
                          weight_decay=0.01),
       args={"classifier": CLASSIFIERS, "token_lists": Custom(BAD_TOKENS), "labels": Custom(BAD_LABELS),
             "pad_id": Int(min=0), "max_len": Int(min=1), "lr": Float(min=0.0, min_open=True), "steps": Int(min=1),
             "seed": Int(), "batch_size": Int(min=1), "eval_every": Int(min=1, nullable=True),
             "eval_fn": Custom([("str", "acc"), ("int", 3)]), "weight_decay": Float(min=0.0)},
       aliases={**TOKEN_WORDS, "token_lists": ["example", "maximum", "no training examples"]}, snapshot=_state),
    Fn("lmlib.finetune.evaluate",
       valid=lambda: dict(classifier=_clf(), token_lists=[list(t) for t in TOKENS], labels=list(LABELS), pad_id=0,
                          max_len=8),
       args={"classifier": CLASSIFIERS, "token_lists": Custom(BAD_TOKENS), "labels": Custom(BAD_LABELS),
             "pad_id": Int(min=0), "max_len": Int(min=1)},
       aliases=TOKEN_WORDS, snapshot=_state),
    Fn("lmlib.finetune.stored_results", valid=lambda: dict(name="genre", directory=_results_dir()),
       args={"name": Str(choices=("shuffle", "lmscore", "genre", "strategies", "sft", "sft-all")),
             "directory": Custom([("int", 3), ("empty", ""), ("list", ["x"]), ("bool", True)])},
       cases=[Case("missing", lambda: F.stored_results("shuffle", directory=_results_dir()), "finetune_experiments",
                   error=FileNotFoundError),
              Case("not_a_results_file", lambda: F.stored_results("sft", directory=_results_dir()), "results file")]),
    Fn("lmlib.finetune.correctness", valid=lambda: dict(runs=[{"test": "0110"}, {"test": "1110"}], key="test"),
       args={"runs": Custom([("str", "0110"), ("empty", []), ("strs", ["0110"]), ("none", None),
                             ("bad_chars", [{"test": "01x"}]), ("missing_key", [{"val": "01"}]),
                             ("empty_string", [{"test": ""}]), ("not_a_string", [{"test": [0, 1]}]),
                             ("different_sizes", [{"test": "01"}, {"test": "011"}])]),
             "key": Str(nonempty=True)},
       aliases={"runs": ["test sets"]}),
]

test_bad_input = make_test(SPECS)
