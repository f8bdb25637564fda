"""Bad-input cases of lmlib.train (the command line that pretrains the course GPT)."""

import tempfile
from pathlib import Path

import torch

from badinput import Case, Custom, Fn, Int, Tensor, make_test
from lmlib import train as CLI

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "shakespeare_char.json"


def _config(text: str) -> Path:
    path = Path(tempfile.mkdtemp()) / "cfg.json"
    path.write_text(text)
    return path


def _model():
    from lmlib.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8))


PATHS = Custom([("int", 3), ("none", None), ("empty", ""), ("list", [str(CONFIG)])])

SPECS = [
    Fn("lmlib.train.load_config", valid=lambda: dict(path=CONFIG), args={"path": PATHS},
       cases=[
           Case("typo_section", lambda: CLI.load_config(_config('{"trian": {}}')), "unknown section(s) ['trian']"),
           Case("typo_setting", lambda: CLI.load_config(_config('{"train": {"lrr": 1}}')), "['lrr']"),
           Case("bad_value", lambda: CLI.load_config(_config('{"train": {"eps": -1}}')), "eps"),
           Case("not_json", lambda: CLI.load_config(_config("{")), "not valid JSON"),
           Case("not_utf8", lambda: CLI.load_config(_latin1()),
                "not valid JSON"),
           Case("missing", lambda: CLI.load_config("/nonexistent/cfg.json"), "no config file",
                error=FileNotFoundError),
       ]),
    Fn("lmlib.train.evaluate_heldout", valid=lambda: dict(model=_model(), ids=torch.arange(30) % 10, block_size=8,
                                                          batch_size=2),
       args={"model": Custom([("str", "m"), ("none", None)]), "ids": Tensor(dtype="int"), "block_size": Int(min=1),
             "batch_size": Int(min=1)},
       aliases={"ids": ["data"]}),
    Fn("lmlib.train.main", valid=lambda: dict(argv=["--config", str(CONFIG)]),
       args={"argv": Custom([("str", "--config x"), ("int", 3), ("int_items", [3])])},
       check_valid=False,  # would train the course model
       cases=[Case("missing_config", lambda: CLI.main(["--config", "/nonexistent.json"]), "2", error=SystemExit),
              Case("bad_config", lambda: CLI.main(["--config", str(_config('{"trian": {}}'))]), "2",
                   error=SystemExit)]),
]


def _latin1() -> Path:
    path = Path(tempfile.mkdtemp()) / "cfg.json"
    path.write_bytes(b'{"train": {"desc": "caf\xe9"}}')
    return path


test_bad_input = make_test(SPECS)
