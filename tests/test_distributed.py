"""Data parallelism (lmlib.distributed and lmlib.training.train under torchrun), checked end to end.

The command line ``python -m lmlib.train`` runs under ``torchrun`` with 2 gloo processes and in
1 process; their final weights are compared:

- 2 processes x 8 rows == 1 process x 16 rows (the same global batch);
- 1 process, 2 accumulated micro-batches of 8 rows == the same;
- a checkpoint written by the 2-process run after 5 steps, resumed in 1 process, ends there too;
- the control: 1 process with 8 rows (half the batch) ends far away, so the tolerance separates.

The tolerance: the runs sum the same numbers in different orders (DDP averages two half-batch
gradients, one process takes the mean of 16 rows), so weights agree to float32 rounding,
amplified by 10 AdamW steps. Measured with AVX2 kernels: at most 1.8e-6, with the scalar ones
(``ATEN_CPU_CAPABILITY=default``) 2.6e-6; the half-batch control differs by 0.027.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lmlib import distributed

ROOT = Path(__file__).resolve().parents[1]
TOL = 2e-5   # ten times the largest difference measured between the equivalent runs

RECIPE = {
    "data": {"tokenizer": "char", "split_seed": 0, "batch_size": 16, "eval_batches": 4},
    "model": {"block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0, "bias": True},
    "train": {"max_steps": 10, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "weight_decay": 0.1,
              "betas": [0.9, 0.99], "grad_clip": 1.0, "eval_interval": 5, "seed": 0},
    "checkpoint_interval": 5,
}


def _cli(tmp: Path, name: str, *flags: str, procs: int = 1, batch: int = 16, accum: int = 1) -> Path:
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"]["batch_size"] = batch
    recipe["train"]["grad_accum_steps"] = accum
    cfg = tmp / f"{name}.json"
    cfg.write_text(json.dumps(recipe))
    out = tmp / name
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] \
        if procs > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    cmd = launch + ["-m", "lmlib.train", "--config", str(cfg), "--out", str(out), "--no-progress", *flags]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return out


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(out / "checkpoint.safetensors")).items() if k.startswith("model.")}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    r = {"one": _cli(tmp, "one"), "two": _cli(tmp, "two", procs=2), "accum": _cli(tmp, "accum", batch=8, accum=2),
         "half": _cli(tmp, "half", batch=8)}
    stopped = _cli(tmp, "stopped", "--stop-after", "5", procs=2)
    resumed = tmp / "resumed"
    shutil.copytree(stopped, resumed)                 # the same checkpoint, resumed in 1 process
    r["stopped"] = stopped
    r["resumed"] = _cli(tmp, "resumed", "--resume")
    return r


def test_two_processes_take_the_steps_of_one_with_the_whole_batch(runs):
    one, two = _weights(runs["one"]), _weights(runs["two"])
    assert _max_diff(one, two) < TOL
    h1 = json.loads((runs["one"] / "history.json").read_text())
    h2 = json.loads((runs["two"] / "history.json").read_text())
    assert h1["tokens"] == h2["tokens"] == 10 * 16 * 32        # tokens count the global batch
    assert h1["steps"] == h2["steps"]
    # the logged loss is all-reduced: the loss of the whole batch, not of rank 0's half
    assert torch.allclose(torch.tensor(h1["train_loss"]), torch.tensor(h2["train_loss"]), atol=1e-5, rtol=0)
    # the evaluation is split between the ranks and all-reduced
    assert torch.allclose(torch.tensor(h1["evals"]["val loss"]), torch.tensor(h2["evals"]["val loss"]),
                          atol=1e-5, rtol=0)
    m1 = json.loads((runs["one"] / "metrics.json").read_text())
    m2 = json.loads((runs["two"] / "metrics.json").read_text())
    assert abs(m1["loss"] - m2["loss"]) < 1e-4


def test_gradient_accumulation_takes_the_same_steps(runs):
    assert _max_diff(_weights(runs["one"]), _weights(runs["accum"])) < TOL


def test_a_two_process_checkpoint_resumes_in_one_process(runs):
    state = load_file(str(runs["stopped"] / "checkpoint.safetensors"))
    assert not any(k.startswith("model.module.") for k in state)   # the model, not its DDP wrapper
    assert not (runs["stopped"] / "metrics.json").exists()          # stopped runs are not evaluated
    assert _max_diff(_weights(runs["one"]), _weights(runs["resumed"])) < TOL


def test_the_tolerance_separates_a_different_run(runs):
    # half the batch is a different optimisation: the comparison above can fail
    assert _max_diff(_weights(runs["one"]), _weights(runs["half"])) > 100 * TOL


def test_without_a_process_group_every_helper_is_the_identity():
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    batch = (torch.arange(12).view(6, 2), torch.arange(6))
    assert distributed.shard(batch, 0, 1) is batch
    assert distributed.all_reduce_sum([1.5, 2]) == [1.5, 2.0]
    distributed.barrier()    # returns at once


def test_shard_cuts_every_tensor_into_equal_consecutive_rows():
    x, y = torch.arange(24).view(6, 4), torch.arange(6)
    parts = [distributed.shard({"input_ids": x, "labels": y, "note": "kept"}, r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p["input_ids"] for p in parts]), x)
    assert torch.equal(torch.cat([p["labels"] for p in parts]), y)
    assert all(p["note"] == "kept" and p["input_ids"].shape == (2, 4) for p in parts)
    with pytest.raises(ValueError, match="multiple of world_size"):
        distributed.shard((x, y), 0, 4)


def test_init_from_env_without_torchrun_starts_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env("cpu") == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.init_from_env("cpu") == (0, 1)
    assert not torch.distributed.is_initialized()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (never required by the course)")
def test_the_same_command_trains_on_cuda(tmp_path):
    out = _cli(tmp_path, "cuda", "--device", "cuda")
    assert _max_diff(_weights(out), _weights(_cli(tmp_path, "cpu"))) < 1e-2   # other kernels, same run


def test_zero_halves_the_optimiser_state_per_rank_and_takes_the_same_steps(tmp_path):
    out = tmp_path / "zero.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "scripts" / "zero_memory.py"), "--out", str(out), "--steps", "2"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    r = json.loads(out.read_text())
    adam = 8 * r["params"]                          # two float32 moments per parameter
    assert all(adam <= b < adam + 4 * 100 for b in r["ddp_state_bytes"])          # plus a step counter per tensor
    assert abs(sum(r["zero_state_bytes"]) - r["ddp_state_bytes"][0]) < 4 * 100    # the moments are partitioned
    assert max(r["zero_state_bytes"]) < 0.55 * r["ddp_state_bytes"][0]            # about half each
    assert r["max_weight_diff"] < TOL
