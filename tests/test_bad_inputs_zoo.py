"""Bad-input cases of lmlib.zoo and lmlib.evaluation (the model zoo and held-out evaluation).
Calls that would train or evaluate a whole model are checked for their bad arguments only."""

import tempfile
from pathlib import Path

import torch

from badinput import Bool, Case, Custom, Device, Fn, Ids, Int, Str, make_test
from lmlib import zoo
from lmlib.gpt import GPT, GPTConfig
from lmlib.tokenizers import CharTokenizer

TOK = CharTokenizer(list("abcdefghij"))
CONFIG = {"name": "tiny", "kind": "gpt", "recipe": {"model": {"n_layer": 1, "n_embd": 8, "n_head": 1, "block_size": 8},
                                                    "train": {"max_steps": 1, "eval_interval": 1, "warmup_steps": 0}}}
CONFIGS = Custom([("int", 3), ("list", [1]), ("none", None), ("unknown_key", {**CONFIG, "typo": 1}),
                  ("bad_kind", {**CONFIG, "kind": "rnn"}), ("no_name", {"kind": "gpt"}),
                  ("bad_eval", {**CONFIG, "eval": {"stride": 0}})])
PATHS = Custom([("int", 3), ("empty", ""), ("list", ["c"])])


def _model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8))


def _data():
    ids = (torch.arange(200) % 10).to(torch.int16)
    return zoo.ZooData(TOK, ids, ids.clone(), ids.clone(), 200, 200)


def _state(kw):
    m = kw.get("model")
    return {k: v.clone() for k, v in m.state_dict().items()} if isinstance(m, torch.nn.Module) else None


MODELS = Custom([("str", "m"), ("none", None), ("tensor", torch.zeros(2)), ("linear", torch.nn.Linear(2, 2))])
DATA = Custom([("str", "d"), ("none", None), ("tuple", (torch.zeros(3),))])
WORDS = {"config": ["config", "kind", "name", "unknown key", "eval", "no config file"]}

SPECS = [
    Fn("lmlib.zoo.rebuild_command", valid=lambda: dict(name="gpt-char"), args={"name": Str(nonempty=True)}),
    Fn("lmlib.zoo.hardware", valid=dict),
    Fn("lmlib.zoo.load_config", valid=lambda: dict(config=CONFIG), args={"config": CONFIGS}, aliases=WORDS,
       cases=[Case("missing_file", lambda: zoo.load_config("/nonexistent/zoo.json"), "no config file",
                   error=FileNotFoundError)]),
    Fn("lmlib.zoo.build", valid=lambda: dict(config=CONFIG, tokenizer=TOK),
       args={"config": CONFIGS, "tokenizer": Custom([("str", "t"), ("none", None), ("int", 3)])}, aliases=WORDS),
    Fn("lmlib.zoo.zoo_data", valid=lambda: dict(config=CONFIG, tokenizer=None),
       args={"config": CONFIGS, "tokenizer": Custom([("str", "t"), ("int", 3)])}, aliases=WORDS, check_valid=False),
    Fn("lmlib.zoo.fit", valid=lambda: dict(model=_model(), config=CONFIG, data=_data(), progress=False, stop_after=None),
       args={"model": MODELS, "config": CONFIGS, "data": DATA, "progress": Bool(), "stop_after": Int(min=1, nullable=True)},
       aliases=WORDS, snapshot=_state),
    Fn("lmlib.zoo.evaluate", valid=lambda: dict(model=_model(), config=CONFIG, data=_data(), split="test", quick=True),
       args={"model": MODELS, "config": CONFIGS, "data": DATA, "split": Str(choices=("test", "val")), "quick": Bool()},
       aliases=WORDS, snapshot=_state,
       cases=[Case("vocab_mismatch", lambda: zoo.evaluate(GPT(GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=1,
                                                                         n_embd=8)), CONFIG, _data()), "vocabulary")]),
    Fn("lmlib.zoo.make", valid=lambda: dict(config=CONFIG, out_dir=Path(tempfile.mkdtemp()), progress=False, command=None),
       args={"config": CONFIGS, "out_dir": PATHS, "progress": Bool(), "command": Str(nonempty=True, nullable=True)},
       aliases=WORDS, check_valid=False),
    Fn("lmlib.zoo.read_card", valid=lambda: dict(name="gpt-char", models_dir=None),
       args={"name": Str(nonempty=True), "models_dir": PATHS},
       cases=[Case("unknown_model", lambda: zoo.read_card("gpt-nope"), "gpt-nope", error=FileNotFoundError)]),
    Fn("lmlib.zoo.load", valid=lambda: dict(name="gpt-char", device="cpu", models_dir=None),
       args={"name": Str(nonempty=True), "device": Device(), "models_dir": PATHS},
       cases=[Case("unknown_model", lambda: zoo.load("gpt-nope"), "gpt-nope", error=FileNotFoundError)]),
    Fn("lmlib.pretrained.load", valid=lambda: dict(name="gpt-char", device="cpu", models_dir=None),
       args={"name": Str(nonempty=True), "device": Device(), "models_dir": PATHS}),
    Fn("lmlib.evaluation.heldout_loss",
       valid=lambda: dict(model=_model(), ids=torch.arange(30) % 10, block_size=8, stride=4, batch_size=2, max_windows=None),
       args={"model": Custom([("str", "m"), ("none", None), ("tensor", torch.zeros(2))]), "ids": Ids(vocab_size=10), "block_size": Int(min=1), "stride": Int(min=1, nullable=True),
             "batch_size": Int(min=1), "max_windows": Int(min=1, nullable=True)},
       snapshot=_state,
       cases=[Case("stride_above_block", lambda: zoo_eval_stride(9), "stride"),
              Case("one_token", lambda: __import__("lmlib.evaluation").evaluation.heldout_loss(_model(), torch.tensor([1]), 8), "ids"),
              Case("negative_id", lambda: __import__("lmlib.evaluation").evaluation.heldout_loss(_model(), torch.tensor([1, -2]), 8), "ids")]),
    Fn("lmlib.evaluation.sequence_log_likelihood",
       valid=lambda: dict(model=_model(), token_lists=[[1, 2, 3], [4, 5]], starts=[2, 1], batch_size=2),
       args={"model": Custom([("str", "m"), ("none", None), ("tensor", torch.zeros(2))]),
             "token_lists": Custom([("str", "abc"), ("int", 3), ("none", None), ("empty", []), ("flat", [1, 2, 3]),
                                    ("strs", ["ab", "cd"]), ("floats", [[1.5, 2.0, 3.0], [4.0, 5.0]]),
                                    ("bools", [[True, False, True], [1, 2]]), ("negative", [[1, -2, 3], [4, 5]]),
                                    ("out_of_vocab", [[1, 2, 10], [4, 5]]), ("too_long", [[1] * 10, [4, 5]]),
                                    ("float_tensor", [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0])]),
                                    ("dict", {0: [1, 2]})]),
             "starts": Custom([("str", "21"), ("int", 2), ("floats", [2.0, 1.0]), ("fraction", [1.5, 1]),
                               ("zero", [0, 1]), ("past_the_end", [3, 1]), ("too_few", [1]), ("bools", [True, True]),
                               ("two_dim_tensor", torch.tensor([[2, 1]]))]),
             "batch_size": Int(min=1)},
       aliases={"token_lists": ["token lists"]},
       snapshot=lambda kw: (_state(kw), kw["model"].training if isinstance(kw["model"], torch.nn.Module) else None)),
    Fn("lmlib.evaluation.bits_per_char", valid=lambda: dict(loss_nats_per_token=1.0, tokens=3, chars=5),
       args={"loss_nats_per_token": Custom([("nan", float("nan")), ("inf", float("inf")), ("str", "1"), ("none", None)]),
             "tokens": Int(min=1), "chars": Int(min=1)}),
]


def zoo_eval_stride(stride):
    from lmlib.evaluation import heldout_loss

    return heldout_loss(_model(), torch.arange(30) % 10, 8, stride=stride)


EXEMPT = {
    "lmlib.zoo.ZooModel": "a result record built only by zoo.load from a checked card and strictly loaded weights",
    "lmlib.zoo.ZooData": "a plain record of a tokenizer and tensors; zoo.fit and zoo.evaluate check what they use",
}

test_bad_input = make_test(SPECS)
