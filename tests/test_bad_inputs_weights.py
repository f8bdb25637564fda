"""Bad-input cases of lmlib.weights (safetensors save/load of model weights)."""

import tempfile
from pathlib import Path

import torch
from torch import nn

from badinput import Case, Custom, Device, Fn, Str, make_test
from lmlib import weights as W


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5))


def _file(model=None) -> Path:
    path = Path(tempfile.mkdtemp()) / "w.safetensors"
    return W.save_weights(model if model is not None else _model(1), path)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


PATHS = Custom([("int", 3), ("none", None), ("empty", ""), ("list", ["w.safetensors"])])
MODELS = Custom([("str", "model"), ("none", None), ("dict", {"a": torch.zeros(1)})])

SPECS = [
    Fn("lmlib.weights.save_weights",
       valid=lambda: dict(model=_model(), path=Path(tempfile.mkdtemp()) / "w.safetensors", metadata={"note": "x"}),
       args={"model": MODELS, "path": PATHS,
             "metadata": Custom([("int_values", {"a": 1}), ("list", ["a"]), ("reserved_format", {"format": "x"}),
                                 ("reserved_aliases", {"lmlib.aliases": "{}"})])}),
    Fn("lmlib.weights.load_weights", valid=lambda: dict(model=_model(), path=_file(), device="cpu"),
       args={"model": MODELS, "path": PATHS, "device": Device(nullable=True)},
       snapshot=lambda kw: _state(kw["model"]) if isinstance(kw["model"], nn.Module) else None,
       cases=[
           Case("other_architecture", lambda: W.load_weights(nn.Linear(3, 5), _file()), "missing keys"),
           Case("corrupt", lambda: W.load_weights(_model(), _corrupt()), "not a valid safetensors"),
           Case("missing_file", lambda: W.load_weights(_model(), "/nonexistent/w.safetensors"), "no weights file",
                error=FileNotFoundError),
           Case("int_file_for_float_model", lambda: W.load_weights(nn.Linear(2, 2), _int_file()), "wrong dtypes"),
       ]),
    Fn("lmlib.weights.tied_aliases", valid=lambda: dict(state_dict=_model().state_dict()),
       args={"state_dict": Custom([("list", [torch.zeros(1)]), ("none", None), ("str_values", {"a": "x"}),
                                   ("int_keys", {1: torch.zeros(1)})])}),
    Fn("lmlib.weights.check_state_dict",
       valid=lambda: dict(expected={"a": (2,)}, got={"a": (2,)}, where="here"),
       args={"expected": Custom([("list", [(2,)]), ("none", None), ("str_shape", {"a": "2"})]),
             "got": Custom([("list", [(2,)]), ("none", None), ("str_shape", {"a": "2"})]),
             "where": Str()},
       cases=[Case("mismatch", lambda: W.check_state_dict({"a": (2,)}, {"a": (3,), "b": (1,)}, where="w"),
                   ["wrong shapes", "unexpected keys"])]),
]


def _corrupt() -> Path:
    path = Path(tempfile.mkdtemp()) / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    return path


def _int_file() -> Path:
    from safetensors.torch import save_file

    path = Path(tempfile.mkdtemp()) / "int.safetensors"
    save_file({"weight": torch.zeros(2, 2, dtype=torch.long), "bias": torch.zeros(2, dtype=torch.long)}, str(path))
    return path


test_bad_input = make_test(SPECS)
