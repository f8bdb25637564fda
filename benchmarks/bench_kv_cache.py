"""Decoding speed with and without the KV cache (lmlib.generation.generate), 256 new tokens.

Greedy decoding of 256 new tokens after a 16-token prompt, batch 1, for two GPT shapes whose
context window holds the whole sequence (so the cache is never rebuilt):

* the chapter-5 "baby" shape (4 layers, 4 heads, 128 dims), with a 512-token window;
* the nanoGPT Shakespeare-character shape (6 layers, 6 heads, 384 dims, 512-token window).

Weights are random (speed does not depend on them), the tokens with and without the cache are
checked to be identical, and the two runs alternate for several rounds; the script prints the
median tokens/second of each and the speed-up, side by side, for PyTorch's default number of
threads and for one thread (models this small decode faster on one thread: a step is a few
hundred tiny operations, and waking a second thread for each costs more than it saves, most of
all on a machine busy with other work). The load average is printed with the results: on a
loaded machine the absolute numbers drop, the ratios less so.

    .venv/bin/python benchmarks/bench_kv_cache.py               # full run
    .venv/bin/python benchmarks/bench_kv_cache.py --quick       # smoke run
    .venv/bin/python benchmarks/bench_kv_cache.py --threads 2   # one thread setting only
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: fairer timings on a busy machine

import torch  # noqa: E402

from lmlib.generation import generate
from lmlib.gpt import GPT, GPTConfig

SHAPES = {
    "baby (4L, 4H, 128d)": dict(n_layer=4, n_head=4, n_embd=128),
    "nanoGPT char (6L, 6H, 384d)": dict(n_layer=6, n_head=6, n_embd=384),
}


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def _measure(model, prompt, n_new: int, rounds: int) -> dict:
    """Median tokens/s with and without the cache; the two runs alternate, and must agree."""
    generate(model, prompt, 4, do_sample=False, use_cache=True)  # warm-up
    generate(model, prompt, 4, do_sample=False, use_cache=False)
    t_cache, t_plain = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        a = generate(model, prompt, n_new, do_sample=False, use_cache=True)
        t_cache.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = generate(model, prompt, n_new, do_sample=False, use_cache=False)
        t_plain.append(time.perf_counter() - t)
        assert torch.equal(a, b), "the KV cache changed the generated tokens"
    c, p = statistics.median(t_cache), statistics.median(t_plain)
    return {"no_cache_tok_s": n_new / p, "cache_tok_s": n_new / c, "speedup": p / c}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 new tokens, one round")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts to measure (default: PyTorch's default, then 1)")
    args = parser.parse_args()
    threads = args.threads or sorted({torch.get_num_threads(), 1}, reverse=True)
    n_new = 32 if args.quick else args.new_tokens
    rounds = 1 if args.quick else 3
    results = {}
    print(f"greedy decoding of {n_new} new tokens after a 16-token prompt, batch 1, median of {rounds} rounds; "
          f"{_load()} at the start")
    print(f"{'model':<30}{'threads':>8}{'no cache tok/s':>16}{'cache tok/s':>14}{'speed-up':>10}")
    for name, shape in SHAPES.items():
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=65, block_size=512, **shape)).eval()
        prompt = torch.randint(0, 65, (1, 16), generator=torch.Generator().manual_seed(0))
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            r = _measure(model, prompt, n_new, rounds)
            results[f"{name}, {n_threads} threads"] = r
            print(f"{name:<30}{n_threads:>8}{r['no_cache_tok_s']:>16.1f}{r['cache_tok_s']:>14.1f}"
                  f"{r['speedup']:>9.1f}x", flush=True)
    print(f"{_load()} at the end")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
