"""Optimiser-state memory per process: DDP with AdamW against ZeRO stage 1 (ZeroRedundancyOptimizer).

Run on 2 (or more) processes:

    torchrun --standalone --nproc_per_node 2 scripts/zero_memory.py --out runs/zero.json

With plain DDP every rank keeps AdamW's two moments for every parameter: 8 bytes per parameter
on every rank. ``torch.distributed.optim.ZeroRedundancyOptimizer`` (ZeRO stage 1, Rajbhandari et
al., 2020) gives each rank the moments of its own share of the parameters only; after its step
each rank broadcasts the parameters it updated. The script trains the zoo's GPT shape for a few
steps both ways from the same initial weights on the same global batches, and rank 0 writes
the optimiser-state bytes of every rank and the largest weight difference between the two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.distributed.optim import ZeroRedundancyOptimizer  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from lmlib import distributed  # noqa: E402
from lmlib.data import sample_batch  # noqa: E402
from lmlib.gpt import GPT, GPTConfig  # noqa: E402
from lmlib.pretrained import course_data  # noqa: E402
from lmlib.training import param_groups  # noqa: E402


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the tensors an optimiser keeps for this rank (AdamW: exp_avg, exp_avg_sq, step)."""
    inner = optimizer.optim if isinstance(optimizer, ZeroRedundancyOptimizer) else optimizer
    return sum(t.numel() * t.element_size() for s in inner.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


def run(make_optimizer, steps: int, batch: int, block: int, rank: int, world: int):
    torch.manual_seed(0)
    model = GPT(CONFIG)
    ddp = DDP(model)
    opt = make_optimizer(model)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x, y = distributed.shard(sample_batch(DATA, block, batch, generator=g), rank, world)
        _, loss = ddp(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model, state_bytes(opt)


def main() -> int:
    global CONFIG, DATA
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results (written by rank 0)")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank, world = distributed.init_from_env("cpu")
    if world < 2:
        parser.error("run under torchrun with 2 or more processes")
    data = course_data(0)
    DATA = data.train
    CONFIG = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=128, n_layer=4, n_head=4, n_embd=128)
    batch, block = 4 * world, 64
    hyper = dict(lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)

    plain, plain_bytes = run(lambda m: torch.optim.AdamW(param_groups(m, 0.1), **hyper), args.steps, batch, block,
                             rank, world)
    zero, zero_bytes = run(lambda m: ZeroRedundancyOptimizer(param_groups(m, 0.1), optimizer_class=torch.optim.AdamW,
                                                             **hyper), args.steps, batch, block, rank, world)
    diff = max(float((a - b).detach().abs().max()) for a, b in zip(plain.parameters(), zero.parameters()))
    per_rank = [torch.zeros(2, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(per_rank, torch.tensor([plain_bytes, zero_bytes], dtype=torch.float64))
    diffs = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(diffs, torch.tensor([diff], dtype=torch.float64))
    if rank == 0:
        n = sum(p.numel() for p in plain.parameters())
        result = {"world_size": world, "params": n, "steps": args.steps,
                  "ddp_state_bytes": [int(t[0]) for t in per_rank],
                  "zero_state_bytes": [int(t[1]) for t in per_rank],
                  "max_weight_diff": max(float(d) for d in diffs)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(json.dumps(result))
    distributed.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
