"""Tests for lmlib.checkpoint: round trip, tied weights, atomicity, clear errors."""

import json
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from lmlib import checkpoint as ckpt
from lmlib.training import TrainConfig, make_optimizer


class Tied(nn.Module):
    def __init__(self, v=7, d=5):
        super().__init__()
        self.emb = nn.Embedding(v, d)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, v, bias=False)
        self.head.weight = self.emb.weight


def stepped(model):
    opt = make_optimizer(model, TrainConfig(lr=0.1))
    loss = model.head(model.ln(model.emb(torch.arange(7)))).pow(2).mean()
    loss.backward()
    opt.step()
    return opt


def test_round_trip_restores_model_optimizer_and_rngs(tmp_path):
    torch.manual_seed(0)
    m = Tied()
    opt = stepped(m)
    g = torch.Generator().manual_seed(42)
    torch.rand(3, generator=g)
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", m, opt, step=7, generator=g, extra={"note": "hi"})
    expected_torch, expected_gen = torch.rand(4), torch.rand(4, generator=g)
    expected_py, expected_np = random.random(), np.random.rand()

    m2 = Tied()
    opt2 = make_optimizer(m2, TrainConfig(lr=0.1))
    g2 = torch.Generator()
    random.seed(123), np.random.seed(123), torch.manual_seed(123)
    state = ckpt.load_checkpoint(path, m2, opt2, generator=g2)
    assert state.step == 7 and state.extra == {"note": "hi"}
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    assert m2.head.weight is m2.emb.weight  # still tied after loading
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for i in s1["state"]:
        for name in s1["state"][i]:
            assert torch.equal(s1["state"][i][name], s2["state"][i][name])
    assert s1["param_groups"] == [dict(g, betas=tuple(g["betas"])) for g in s2["param_groups"]]
    assert torch.equal(torch.rand(4), expected_torch)
    assert torch.equal(torch.rand(4, generator=g2), expected_gen)
    assert random.random() == expected_py and np.random.rand() == expected_np


def test_tied_tensor_stored_once(tmp_path):
    from safetensors import safe_open
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", Tied())
    with safe_open(str(path), "pt") as f:
        keys = set(f.keys())
        meta = json.loads(f.metadata()["lmlib"])
    assert "model.emb.weight" in keys and "model.head.weight" not in keys
    assert meta["aliases"] == {"head.weight": "emb.weight"}


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", Tied(), step=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    m = Tied()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ckpt.load_checkpoint(path, m)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_mismatched_model_is_a_clear_error_and_loads_nothing(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", Tied(v=7, d=5))
    other = Tied(v=7, d=6)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="wrong shapes: .*emb.weight"):
        ckpt.load_checkpoint(path, other)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    with pytest.raises(ValueError, match="missing keys: .*0.weight.*unexpected keys"):
        ckpt.load_checkpoint(path, nn.Sequential(nn.Linear(2, 2)))


def test_missing_optimizer_state_and_foreign_files(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", Tied())
    m = Tied()
    with pytest.raises(ValueError, match="no optimiser state"):
        ckpt.load_checkpoint(path, m, make_optimizer(m, TrainConfig()))
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not an lmlib checkpoint"):
        ckpt.load_checkpoint(tmp_path / "plain.safetensors", m)
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(tmp_path / "nope.safetensors", m)


def test_write_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the previous checkpoint intact and no temporary file."""
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", Tied(), step=1)
    good = path.read_bytes()
    import safetensors.torch as st

    def boom(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(st, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, Tied(), step=2)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["c.safetensors"]
