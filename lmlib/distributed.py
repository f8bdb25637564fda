"""Data parallelism: one model trained by several processes at once, with ``torch.distributed``.

Every process (a *rank*, numbered ``0 .. world_size - 1``) holds a full copy of the model and the
optimiser. Each optimiser step:

1. every rank draws the same *global* batch (the batch generator has the same seed everywhere)
   and keeps its own slice of it, ``batch_size / world_size`` rows (:func:`shard`);
2. each rank runs forward and backward on its slice;
3. ``DistributedDataParallel`` averages the gradients over the ranks (an *all-reduce*, 全归约)
   while the backward pass is still running, bucket by bucket;
4. every rank applies the same averaged gradient with the same optimiser, so the copies stay
   identical without ever sending weights.

The mean of the ranks' mean losses over equal slices is the mean loss of the whole batch, so the
averaged gradient is the gradient one process would compute on the whole batch: 2 processes with
``b`` rows each take the step 1 process takes with ``2b`` rows, up to the order in which floats
are summed. Drawing the global batch on every rank costs a few random numbers and buys two
things: the result does not depend on the number of processes, and a checkpoint written by a
2-process run resumes in 1 process (or 4) with the same data stream.

:func:`lmlib.training.train` does all of this when it runs inside a process group (started by
:func:`init_from_env` under ``torchrun``); the helpers here are the pieces it uses. Without a
process group every helper is the identity (rank 0 of a world of 1), so the same code runs in a
notebook, on one CPU, or on 8 GPUs::

    torchrun --standalone --nproc_per_node 2 -m lmlib.train --config configs/ddp-demo.json

The backend is ``gloo`` for CPU tensors and ``nccl`` for CUDA ones; :func:`init_from_env` picks
it from the device.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch
import torch.distributed as dist

from lmlib.validation import check_choice, check_device, check_float, check_int, check_sequence

__all__ = ["init_from_env", "rank", "world_size", "local_rank", "shard", "all_reduce_sum", "barrier", "destroy"]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be an integer, got {raw!r}") from None


def init_from_env(device: str = "cpu", *, backend: str | None = None) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment and return
    ``(rank, world_size)``.

    ``torchrun`` starts one process per rank and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
    (the rank within this machine) and ``MASTER_ADDR``/``MASTER_PORT`` (where rank 0 listens).
    Without ``WORLD_SIZE`` (a plain ``python`` run), or with a world of 1, nothing is started and
    ``(0, 1)`` comes back. ``backend`` defaults to ``"nccl"`` for a CUDA ``device`` and ``"gloo"``
    otherwise; on CUDA each process uses the GPU ``cuda:LOCAL_RANK``.
    """
    dev = check_device("device", device, who="init_from_env")
    if backend is not None:
        check_choice("backend", backend, ("gloo", "nccl"), who="init_from_env")
    size = _env_int("WORLD_SIZE", 1)
    if size <= 1:
        return 0, 1
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """The number of processes training together (1 without a process group)."""
    return dist.get_world_size() if _active() else 1


def local_rank() -> int:
    """The rank within this machine (``LOCAL_RANK``, set by ``torchrun``; 0 otherwise): the GPU
    index a process uses."""
    return _env_int("LOCAL_RANK", 0)


def shard(batch: Any, rank: int, world_size: int) -> Any:
    """Rank ``rank``'s slice of a global batch: rows ``[rank·b, (rank+1)·b)`` of every tensor,
    ``b = rows / world_size``. ``batch`` is a tuple/list or a dict of tensors with the same
    number of rows; other values are passed through. With ``world_size=1`` the batch itself."""
    check_int("world_size", world_size, min=1, who="shard")
    check_int("rank", rank, min=0, max=world_size - 1, who="shard")
    items = _batch_items(batch)
    rows = {t.shape[0] for t in items if isinstance(t, torch.Tensor) and t.dim() > 0}
    if len(rows) > 1:
        raise ValueError(f"shard: the tensors of batch must have the same number of rows, got {sorted(rows)}")
    if not rows:
        raise ValueError("shard: batch holds no tensor with a batch dimension")
    n = rows.pop()
    if n % world_size:
        raise ValueError(f"shard: the batch has {n} rows, which {world_size} processes cannot share equally; "
                         f"make batch_size a multiple of world_size ({world_size})")
    if world_size == 1:
        return batch
    b = n // world_size
    cut = lambda t: t[rank * b:(rank + 1) * b] if isinstance(t, torch.Tensor) and t.dim() > 0 else t  # noqa: E731
    if isinstance(batch, Mapping):
        return {k: cut(v) for k, v in batch.items()}
    return type(batch)(cut(v) for v in batch)


def _batch_items(batch: Any) -> list:
    if isinstance(batch, Mapping):
        return list(batch.values())
    if isinstance(batch, (tuple, list)):
        return list(batch)
    raise TypeError(f"shard: batch must be a tuple/list or a dict of tensors, got {type(batch).__name__}")


def all_reduce_sum(values: Any) -> list[float]:
    """The sums over all ranks of a list of numbers (float64), the same list on every rank. Used
    for what is logged: each rank's share of the loss, or an evaluation's total and count."""
    values = check_sequence("values", values, who="all_reduce_sum")
    for i, v in enumerate(values):
        check_float(f"values[{i}]", v, finite=False, who="all_reduce_sum")
    if not _active() or dist.get_world_size() == 1:
        return [float(v) for v in values]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier() -> None:
    """Wait until every rank gets here (after rank 0 writes a checkpoint, before others read it)."""
    if _active():
        dist.barrier()


def destroy() -> None:
    """Leave the process group (at the end of a ``torchrun`` script); nothing without one."""
    if _active():
        dist.destroy_process_group()
