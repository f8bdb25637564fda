"""Bad-input cases of lmlib.checkpoint (training checkpoints). Corrupt and mismatched files are
covered in depth by tests/test_loading_transactional.py; here every argument gets its cases."""

import json
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from badinput import Bool, Case, Custom, Fn, Int, make_test
from lmlib import checkpoint as C


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5))


def _opt(model):
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    model[1].weight.grad = torch.ones_like(model[1].weight)
    opt.step()
    opt.zero_grad()
    return opt


def _tmp(name="c.safetensors") -> Path:
    return Path(tempfile.mkdtemp()) / name


def _file(**kw) -> Path:
    m = _model(1)
    return C.save_checkpoint(_tmp(), m, _opt(m), step=2, generator=torch.Generator().manual_seed(1), **kw)


def _edited(edit) -> Path:
    src = _file()
    with safe_open(str(src), framework="pt") as f:
        meta, ts = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    meta["lmlib"] = json.dumps(edit(json.loads(meta["lmlib"])))
    save_file(ts, str(src), metadata=meta)
    return src


def _snap(kw):
    out = {"rng": torch.get_rng_state()}
    if isinstance(kw.get("model"), nn.Module):
        out["model"] = {k: v.clone() for k, v in kw["model"].state_dict().items()}
    if isinstance(kw.get("generator"), torch.Generator):
        out["generator"] = kw["generator"].get_state()
    return out


PATHS = Custom([("int", 3), ("none", None), ("empty", ""), ("list", ["c.safetensors"])])
MODELS = Custom([("str", "model"), ("none", None), ("tensor", torch.zeros(2))])
OPTIMIZERS = Custom([("str", "adamw"), ("module", nn.Linear(1, 1))])
GENERATORS = Custom([("int", 0), ("str", "g")])


def _load_valid():
    m = _model()
    return dict(path=_file(), model=m, optimizer=_opt(m), generator=torch.Generator().manual_seed(7),
                restore_rng=True)


SPECS = [
    Fn("lmlib.checkpoint.save_checkpoint",
       valid=lambda: dict(path=_tmp(), model=_model(), optimizer=None, step=3, generator=None, extra={"a": 1}),
       args={"path": PATHS, "model": MODELS, "optimizer": OPTIMIZERS, "step": Int(min=0),
             "generator": GENERATORS,
             "extra": Custom([("list", [1]), ("str", "x"), ("not_json", {"a": object()}), ("nan_key", {1j: 2})])}),
    Fn("lmlib.checkpoint.load_checkpoint", valid=_load_valid,
       args={"path": PATHS, "model": MODELS, "optimizer": OPTIMIZERS, "generator": GENERATORS,
             "restore_rng": Bool()},
       snapshot=_snap,
       cases=[
           Case("missing_step", lambda: C.load_checkpoint(_edited(lambda m: {k: v for k, v in m.items() if k != "step"}),
                                                          _model()), "lacks the field(s) ['step']"),
           Case("step_is_str", lambda: C.load_checkpoint(_edited(lambda m: {**m, "step": "2"}), _model()),
                "'step' must be int"),
           Case("other_model", lambda: C.load_checkpoint(_file(), nn.Linear(3, 5)), "missing keys"),
           Case("no_optimiser_state", lambda: C.load_checkpoint(C.save_checkpoint(_tmp(), _model()), _model(),
                                                                _opt(_model())), "no optimiser state"),
           Case("check_extra_not_callable", lambda: C.load_checkpoint(_file(), _model(), check_extra=3),
                "check_extra"),
       ]),
    Fn("lmlib.checkpoint.read_checkpoint", valid=lambda: dict(path=_file()), args={"path": PATHS},
       cases=[
           Case("corrupt", lambda: C.read_checkpoint(_garbage()), "truncated or corrupt"),
           Case("foreign_safetensors", lambda: C.read_checkpoint(_foreign()), "not an lmlib checkpoint"),
           Case("wrong_version", lambda: C.read_checkpoint(_edited(lambda m: {**m, "version": 9})), "version 9"),
           Case("missing", lambda: C.read_checkpoint(_tmp("none.safetensors")), "no checkpoint",
                error=FileNotFoundError),
       ]),
    Fn("lmlib.checkpoint.state_dict_for_saving", valid=lambda: dict(module=_model()), args={"module": MODELS}),
    Fn("lmlib.checkpoint.atomic_save_tensors",
       valid=lambda: dict(path=_tmp(), tensors={"a": torch.zeros(2)}, metadata={"k": "v"}),
       args={"path": PATHS,
             "tensors": Custom([("list", [torch.zeros(1)]), ("none", None), ("str_value", {"a": "x"})]),
             "metadata": Custom([("int_value", {"k": 1}), ("list", ["k"])])}),
]

EXEMPT = {
    "lmlib.checkpoint.CheckpointState": "a result record built only by load_checkpoint from a validated file; "
                                        "its fields are checked where they are read",
}


def _garbage() -> Path:
    p = _tmp()
    p.write_bytes(b"\x00" * 3 + b"garbage" * 20)
    return p


def _foreign() -> Path:
    p = _tmp()
    save_file({"a": torch.zeros(1)}, str(p))
    return p


test_bad_input = make_test(SPECS)
