"""What training costs on one process: memory, FLOP/s, and time.

Memory has two parts that behave differently.

*State* that exists for the whole run and grows with the number of parameters ``N``: the weights,
their gradients, and the optimiser's buffers. AdamW keeps two moments per parameter, so float32
training holds ``4 + 4 + 8 = 16`` bytes per parameter (:func:`training_bytes_per_param`;
:func:`measured_state_bytes` counts what a real model and optimiser hold).

*Activations*: tensors the forward pass saves because the backward pass needs them (the input of
every matmul, for the weight gradient ``dW = Xᵀ·dY``; the input of every LayerNorm and GELU; what
the attention kernel keeps). They grow with the batch ``B``, the context ``T`` and the depth
``L``: about ``c · B·T·L`` bytes for a per-token, per-layer constant ``c`` that depends on the
width. :func:`activation_bytes_formula` derives ``c`` for the course GPT by listing the saved
tensors; :func:`saved_activation_bytes` counts them in a real forward pass;
:func:`measure_activation_memory` measures the peak memory of forward + backward over a grid of
shapes and :func:`fit_activation_bytes` fits ``c`` to those measurements. Activation
checkpointing (:func:`checkpoint_blocks`) trades memory for time: only each block's input is
kept, and the block's forward pass is run again during the backward pass.

Time: a training step does about ``6·N`` FLOPs per token (:func:`lmlib.flops.training_flops`). The
*model FLOPs utilisation* (MFU, Chowdhery et al., 2022) is the fraction of the hardware's peak
that those useful FLOPs reach: :func:`mfu`, with the peak of this machine measured by
:func:`matmul_peak_flops`. :func:`training_time` turns ``N``, ``D``, a peak and an MFU into
seconds, and :func:`implied_mfu` does the reverse for the published runs of
:data:`PUBLISHED_RUNS` on the accelerators of :data:`ACCELERATORS`.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lmlib.benchmarking import peak_memory, track_large_allocations
from lmlib.flops import gpt_flops_breakdown, training_flops
from lmlib.validation import (check_choice, check_device, check_float, check_ids, check_instance, check_int,
                              check_module, check_sequence, check_tensor)

__all__ = [
    "ACCELERATORS", "PUBLISHED_RUNS",
    "training_bytes_per_param", "measured_state_bytes",
    "activation_bytes_formula", "saved_activation_bytes", "measure_activation_memory", "fit_activation_bytes",
    "matmul_peak_flops", "model_flops_per_token", "mfu",
    "checkpoint_blocks",
    "training_time", "implied_mfu", "published_run_mfu",
]

# ---------------------------------------------------------------------------------------------
# Published figures
# ---------------------------------------------------------------------------------------------

#: Peak dense bfloat16 matmul throughput (FLOP/s) and memory of two data-centre GPUs, from the
#: vendor's data sheets. The data sheets also print twice these numbers "with sparsity" (2:4
#: structured sparsity, which dense training does not use); those figures are NOT used here.
ACCELERATORS = {
    "A100-SXM": {"bf16_dense_flops": 312e12, "memory_bytes": 80e9,     # nvidia2020a100 (80 GB model)
                 "source": "nvidia2020a100"},
    "H100-SXM": {"bf16_dense_flops": 989e12, "memory_bytes": 80e9,     # nvidia2022h100
                 "source": "nvidia2022h100"},
}

#: Sizes of a few published training runs. ``None`` where the figure was not published.
#: ``device_hours`` are GPU-hours as reported (they may include restarts and other overheads).
PUBLISHED_RUNS = {
    # brown2020language, Table D.1: 175B parameters, 300B training tokens, 3.14e23 FLOPs
    "gpt3-175b": {"params": 175e9, "tokens": 300e9, "reported_flops": 3.14e23,
                  "device_hours": None, "accelerator": None, "source": "brown2020language"},
    # meta2024llama3card: "over 15T" tokens; 1.3M (8B) and 6.4M (70B) GPU-hours on H100-80GB (700 W: SXM)
    "llama3-8b": {"params": 8e9, "tokens": 15e12, "reported_flops": None,
                  "device_hours": 1.3e6, "accelerator": "H100-SXM", "source": "meta2024llama3card"},
    "llama3-70b": {"params": 70e9, "tokens": 15e12, "reported_flops": None,
                   "device_hours": 6.4e6, "accelerator": "H100-SXM", "source": "meta2024llama3card"},
    # radford2019language: 124M parameters (the smallest GPT-2); its number of training tokens
    # was not published
    "gpt2-small": {"params": 124e6, "tokens": None, "reported_flops": None,
                   "device_hours": None, "accelerator": None, "source": "radford2019language"},
}


# ---------------------------------------------------------------------------------------------
# Small validation helpers
# ---------------------------------------------------------------------------------------------

def _positive(name: str, value, who: str) -> float:
    return check_float(name, value, min=0.0, min_open=True, who=who)


def _check_optimizer(optimizer, who: str) -> torch.optim.Optimizer:
    return check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer", who=who)


def _check_gpt_config(config, who: str):
    from lmlib.gpt import GPTConfig

    return check_instance("config", config, GPTConfig, "a GPTConfig", who=who)


def _check_blocks(model, who: str) -> nn.ModuleList:
    """The ``blocks`` of a model that has them (GPT, Llama), none of them already checkpointed."""
    check_module("model", model, who=who)
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise TypeError(f"{who}: model must have a non-empty nn.ModuleList `blocks` (a GPT or a Llama), "
                        f"got {type(model).__name__}")
    if any("forward" in vars(b) for b in blocks):
        raise ValueError(f"{who}: model's blocks are already checkpointed (or have a replaced forward); "
                         "call .remove() on the handle first")
    return blocks


def _check_grid(who: str, **sequences) -> dict[str, list[int]]:
    out = {}
    for name, values in sequences.items():
        items = check_sequence(name, values, nonempty=True, who=who)
        out[name] = [check_int(f"{name}[{i}]", v, min=1, who=who) for i, v in enumerate(items)]
    return out


def _check_run(name, who: str) -> dict:
    check_choice("name", name, sorted(PUBLISHED_RUNS), who=who)
    run = PUBLISHED_RUNS[name]
    missing = [k for k in ("tokens", "device_hours", "accelerator") if run[k] is None]
    if missing:
        raise ValueError(f"{who}: name {name!r} has no published {' / '.join(missing)}, so no MFU can be implied")
    return run


# ---------------------------------------------------------------------------------------------
# Memory of the training state
# ---------------------------------------------------------------------------------------------

_STATE_BYTES = {  # precision -> (weights, grads, master weights) in bytes per parameter
    "fp32": (4, 4, 0),
    "bf16-mixed": (2, 2, 4),
    "bf16-mixed-fp32-grads": (2, 4, 4),
}
_OPTIMIZER_BYTES = {"adamw": 8, "sgd": 0}  # float32 moments per parameter (m and v; plain SGD: none)


def training_bytes_per_param(precision: str = "fp32", optimizer: str = "adamw") -> dict[str, int]:
    """Bytes of training state per parameter: ``{weights, grads, master_weights, optimizer_state,
    total}``.

    - ``"fp32"``: float32 weights (4) and gradients (4). AdamW adds two float32 moments (8):
      16 bytes in all; plain SGD (no momentum) keeps nothing else: 8.
    - ``"bf16-mixed"``: the matmuls use bfloat16 weights (2) and produce bfloat16 gradients (2),
      but the optimiser updates a float32 *master* copy of the weights (4) with float32 moments
      (8): 16 bytes, exactly as many as float32 training (Micikevicius et al., 2018). The master
      copy is needed because a 16-bit weight cannot absorb an update much smaller than itself:
      bfloat16 has 8 significant bits, so ``1 + 1e-3`` rounds back to ``1``. Mixed precision saves
      memory on the *activations* (16-bit tensors saved for the backward pass) and memory
      bandwidth, and runs the matmuls on faster 16-bit units, but not on the weight-side state.
    - ``"bf16-mixed-fp32-grads"``: the common variant that accumulates gradients in float32
      (more accurate over many micro-batches): 2 + 4 + 4 + 8 = 18 bytes.

    ``torch.autocast`` (what :class:`lmlib.training.TrainConfig` uses) is a fourth arrangement:
    the weights, gradients and moments all stay float32 (16 bytes, the ``"fp32"`` row), and each
    weight is cast to 16 bits when a matmul uses it; those 16-bit copies live until the backward
    pass has used them, 2 more bytes per parameter at the peak.
    """
    who = "training_bytes_per_param"
    check_choice("precision", precision, tuple(_STATE_BYTES), who=who)
    check_choice("optimizer", optimizer, tuple(_OPTIMIZER_BYTES), who=who)
    weights, grads, master = _STATE_BYTES[precision]
    out = {"weights": weights, "grads": grads, "master_weights": master,
           "optimizer_state": _OPTIMIZER_BYTES[optimizer]}
    out["total"] = sum(out.values())
    return out


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


def measured_state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes actually held by a model's parameters, their gradients and an optimiser's state.

    Returns ``{weights, grads, master_weights, optimizer_state, step_counters, total}``. Every
    storage is counted once (a tied weight, or two views of one buffer, is one allocation):

    - ``weights``: the model's parameters; ``grads``: every ``.grad`` of them, and of the
      optimiser's own parameters;
    - ``master_weights``: parameters the optimiser updates that are not the model's (a float32
      master copy in mixed precision);
    - ``optimizer_state``: the tensors of ``optimizer.state`` (AdamW's ``exp_avg`` and
      ``exp_avg_sq``), except ``step``;
    - ``step_counters``: AdamW's ``step``, one scalar float32 tensor (4 bytes) *per parameter
      tensor*: the few bytes by which a real run exceeds ``16 · N``.

    State appears lazily: gradients after the first ``backward``, AdamW's buffers after the
    first ``optimizer.step()``.
    """
    who = "measured_state_bytes"
    check_module("model", model, who=who)
    _check_optimizer(optimizer, who)
    seen: set = set()

    def held(tensors) -> int:
        total = 0
        for t in tensors:
            key = _storage_key(t)
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
        return total

    params = list(model.parameters())
    opt_params = [p for group in optimizer.param_groups for p in group["params"]]
    out = {"weights": held(params)}
    out["master_weights"] = held(opt_params)          # only those not already seen as model weights
    out["grads"] = held(p.grad for p in params + opt_params if p.grad is not None)
    state = [(k, v) for s in optimizer.state.values() for k, v in s.items() if isinstance(v, torch.Tensor)]
    out["optimizer_state"] = held(v for k, v in state if k != "step")
    out["step_counters"] = held(v for k, v in state if k == "step")
    out["total"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------------------------
# Activation memory
# ---------------------------------------------------------------------------------------------

def activation_bytes_formula(config, batch_size: int, seq_len: int | None = None) -> dict[str, int]:
    """Bytes of the tensors one float32 forward pass of :class:`lmlib.gpt.GPT` saves for the
    backward pass, from the config alone (``dropout=0``, the fused attention kernel).

    Per block, for ``B·T`` tokens of width ``C`` with ``H`` heads, the saved tensors are (in
    units of ``B·T`` float32 numbers)::

        block input x            C     read by LayerNorm 1
        LayerNorm 1 mean, 1/std  2
        LayerNorm 1 output       C     the input of the Q, K and V projections (one tensor)
        q, k, v                  3C    kept by the attention kernel
        attention output         C     also the input of the output projection
        log-sum-exp of scores    H     one number per head and query: the kernel's softmax summary
        x after attention        C     read by LayerNorm 2
        LayerNorm 2 mean, 1/std  2
        LayerNorm 2 output       C     the input of fc_in
        fc_in output             4C    the input of GELU
        GELU output              4C    the input of fc_out
                                 -----------
                                 16C + 4 + H

    so ``4 · (16C + 4 + H)`` bytes per token per layer. The ``T × T`` attention matrix is not
    stored: the fused kernel recomputes it in the backward pass from q, k and the log-sum-exp.
    The explicit (math) path stores several ``B·H·T²`` tensors instead, and PyTorch's CPU kernel
    falls back to that path when attention dropout is on, which is why this formula requires
    ``dropout=0``. Outside the blocks: the input of the final LayerNorm (``C``, + 2), its output
    (``C``, the input of the head), the log-probabilities (``V``; the logits themselves are not
    kept), the token ids and targets (int64, 8 bytes each), the positions (8·T bytes) and one
    float32 scalar of the loss.

    Returns ``{"per_token_per_layer", "per_layer", "outside_layers", "total"}`` in bytes.
    """
    who = "activation_bytes_formula"
    _check_gpt_config(config, who)
    B = check_int("batch_size", batch_size, min=1, who=who)
    T = config.block_size if seq_len is None else check_int("seq_len", seq_len, min=1, max=config.block_size,
                                                              who=who)
    if config.dropout != 0.0:
        raise ValueError(f"{who}: config.dropout must be 0 for this formula (with dropout the CPU attention "
                         f"kernel stores the T x T weights), got {config.dropout}")
    C, H, V, L = config.n_embd, config.n_head, config.vocab_size, config.n_layer
    per_token_per_layer = 4 * (16 * C + 4 + H)
    outside = 4 * B * T * (2 * C + 2 + V) + 8 * B * T * 2 + 8 * T + 4
    return {"per_token_per_layer": per_token_per_layer, "per_layer": per_token_per_layer * B * T,
            "outside_layers": outside, "total": per_token_per_layer * B * T * L + outside}


def saved_activation_bytes(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor | None = None) -> int:
    """Bytes of the tensors that one forward pass ``model(idx, targets)`` of a language model
    (:class:`~lmlib.gpt.GPT`, :class:`~lmlib.llama.Llama`) saves for backward.

    Counted exactly, with ``torch.autograd.graph.saved_tensors_hooks``: each saved tensor's
    storage once, the model's parameters excluded (they are state, not activations). A 16-bit
    copy of a weight made by ``torch.autocast`` *is* counted: it lives until the backward pass.
    This is what stays in memory between forward and backward; the peak of a training step is
    higher by whatever the backward pass allocates while it runs.
    """
    who = "saved_activation_bytes"
    check_module("model", model, who=who)
    check_tensor("idx", idx, dims=2, dtype="int", nonempty=True, who=who)
    if targets is not None:
        check_tensor("targets", targets, dims=2, dtype="int", who=who)
    if targets is not None and targets.shape != idx.shape:
        raise ValueError(f"{who}: targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None:
        check_ids("idx", idx, vocab, who=who)
        if targets is not None:
            check_ids("targets", targets, vocab, allow=(-100,), who=who)
    params = {_storage_key(p) for p in model.parameters()}
    sizes: dict = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in params:
            sizes[key] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(idx, targets)
    del out                                              # frees the graph and what it saved
    return sum(sizes.values())


def measure_activation_memory(config, batch_sizes, seq_lens, n_layers, *, repeats: int = 3,
                              device="cpu", seed: int = 0) -> list[dict]:
    """Peak memory of one forward + backward of a GPT, for every ``(B, T, L)`` of a grid.

    For each shape a ``GPT(config)`` with ``n_layer = L`` is built and trained for one step (so that
    its gradients exist); then the extra peak memory of forward + backward is measured with
    :func:`lmlib.benchmarking.peak_memory` (the median of ``repeats``). The gradients are already
    allocated and are accumulated in place, so what the peak shows is activations and the
    backward pass's temporary buffers. Each row also has ``saved_bytes`` from
    :func:`saved_activation_bytes`.

    Returns rows ``{"batch_size", "seq_len", "n_layer", "peak_bytes", "saved_bytes"}``.
    """
    from lmlib.gpt import GPT

    who = "measure_activation_memory"
    _check_gpt_config(config, who)
    grid = _check_grid(who, batch_sizes=batch_sizes, seq_lens=seq_lens, n_layers=n_layers)
    for i, T in enumerate(grid["seq_lens"]):
        if T > config.block_size:
            raise ValueError(f"{who}: seq_lens[{i}] = {T} is longer than config.block_size = {config.block_size}")
    check_int("repeats", repeats, min=1, who=who)
    device = check_device("device", device, who=who)
    check_int("seed", seed, min=0, who=who)

    track_large_allocations()
    rows = []
    for L, B, T in itertools.product(grid["n_layers"], grid["batch_sizes"], grid["seq_lens"]):
        torch.manual_seed(seed)
        model = GPT(dataclasses.replace(config, n_layer=L)).to(device).train()
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, config.vocab_size, (B, T), generator=g).to(device)
        targets = torch.randint(0, config.vocab_size, (B, T), generator=g).to(device)

        def forward_backward():
            _, loss = model(idx, targets)
            loss.backward()

        forward_backward()                                # allocates the gradients
        peaks = [peak_memory(forward_backward, device) for _ in range(repeats)]
        rows.append({"batch_size": B, "seq_len": T, "n_layer": L, "peak_bytes": statistics.median(peaks),
                     "saved_bytes": saved_activation_bytes(model, idx, targets)})
        del model
    return rows


def fit_activation_bytes(batch_sizes, seq_lens, n_layers, measured_bytes) -> dict[str, float]:
    """Least-squares fit of ``bytes ≈ c·B·T·L + a·B·T + d`` to measurements of activation memory.

    ``c`` is the activation memory per token per layer, ``a`` per token outside the blocks
    (embeddings, final LayerNorm, head and loss), ``d`` a constant (allocator overhead). The
    shapes must vary enough to tell the three apart (at least two depths and two values of
    ``B·T``). Returns ``{"bytes_per_token_per_layer": c, "bytes_per_token_outside_layers": a,
    "constant": d, "relative_residual": |y - fit| / |y|}``.
    """
    who = "fit_activation_bytes"
    grid = _check_grid(who, batch_sizes=batch_sizes, seq_lens=seq_lens, n_layers=n_layers)
    ys = check_sequence("measured_bytes", measured_bytes, nonempty=True, who=who)
    ys = [check_float(f"measured_bytes[{i}]", y, min=0.0, who=who) for i, y in enumerate(ys)]
    n = len(ys)
    for name, values in grid.items():
        if len(values) != n:
            raise ValueError(f"{who}: {name} has {len(values)} entries but measured_bytes has {n}")
    B, T, L = (torch.tensor(grid[k], dtype=torch.float64) for k in ("batch_sizes", "seq_lens", "n_layers"))
    X = torch.stack([B * T * L, B * T, torch.ones(n, dtype=torch.float64)], dim=1)      # (n, 3)
    if n < 3 or int(torch.linalg.matrix_rank(X)) < 3:
        raise ValueError(f"{who}: n_layers and batch_sizes * seq_lens must each take at least two values "
                         "(in a pattern that separates B*T*L from B*T), got too few distinct shapes")
    y = torch.tensor(ys, dtype=torch.float64)
    coef = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    norm_y = float(y.norm())
    residual = float((y - X @ coef).norm()) / norm_y if norm_y > 0 else 0.0
    c, a, d = (float(v) for v in coef)
    return {"bytes_per_token_per_layer": c, "bytes_per_token_outside_layers": a, "constant": d,
            "relative_residual": residual}


# ---------------------------------------------------------------------------------------------
# FLOP/s and MFU
# ---------------------------------------------------------------------------------------------

def matmul_peak_flops(n: int = 1024, *, dtype: torch.dtype = torch.float32, repeats: int = 10,
                      threads: int | None = None, device="cpu") -> float:
    """Achieved FLOP/s of an ``n × n`` by ``n × n`` matmul (``2n³`` FLOPs): the median of
    ``repeats`` timed calls after two warm-up calls.

    This is the practical peak of this machine for this dtype: the best a large, well-shaped
    matmul reaches, which is what a training step's matmuls can hope for. ``threads`` sets
    ``torch.set_num_threads`` for the measurement only (CPU).
    """
    who = "matmul_peak_flops"
    n = check_int("n", n, min=1, who=who)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{who}: dtype must be a floating-point torch.dtype, got {dtype!r}")
    repeats = check_int("repeats", repeats, min=1, who=who)
    if threads is not None:
        check_int("threads", threads, min=1, who=who)
    device = check_device("device", device, who=who)

    old_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        for _ in range(2):                                  # warm-up
            a @ b
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            a @ b
            sync()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old_threads)
    return 2 * n**3 / statistics.median(times)


def model_flops_per_token(config, seq_len: int | None = None, *, causal: bool = False) -> int:
    """Training FLOPs per token of the course GPT: 3 × the forward matmul FLOPs of
    :func:`lmlib.flops.gpt_flops_breakdown` (forward + backward = 3 × forward).

    This is the "model FLOPs" of PaLM's MFU (Chowdhery et al., 2022): ``6·N + 12·L·C·T`` per token,
    where ``N`` counts the matmul weights of the blocks *and* the (tied) output head, but not the
    embedding lookups, biases or LayerNorms, and ``12·L·C·T`` is attention's ``q·k`` and weighted
    sum over all ``T`` keys (``causal=False``, PaLM's convention; ``causal=True`` counts only the
    visible half). Recomputation under activation checkpointing is *not* model FLOPs: it is work
    the hardware does, but the model does not need.
    """
    return 3 * gpt_flops_breakdown(config, seq_len, causal=causal)["total"]


def mfu(flops_per_step: float, seconds_per_step: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: ``flops_per_step / seconds_per_step / peak_flops``, the fraction
    of the hardware's peak FLOP/s that the model's useful FLOPs reach (1.0 = every cycle busy)."""
    who = "mfu"
    flops_per_step = _positive("flops_per_step", flops_per_step, who)
    seconds_per_step = _positive("seconds_per_step", seconds_per_step, who)
    peak_flops = _positive("peak_flops", peak_flops, who)
    return flops_per_step / seconds_per_step / peak_flops


# ---------------------------------------------------------------------------------------------
# Activation checkpointing
# ---------------------------------------------------------------------------------------------

def _recomputed(forward):
    """``forward`` run under ``torch.utils.checkpoint`` whenever autograd records (a KV cache
    would be updated twice by the recomputation, so cached decoding runs ``forward`` as is)."""

    def run(*args, **kwargs):
        if not torch.is_grad_enabled() or kwargs.get("kv_cache") is not None:
            return forward(*args, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, preserve_rng_state=True, **kwargs)

    return run


class _BlockCheckpointing:
    """Undo handle of :func:`checkpoint_blocks`: ``.remove()``, or use it as a context manager."""

    def __init__(self, blocks: nn.ModuleList) -> None:
        self.blocks = list(blocks)

    def remove(self) -> None:
        for block in self.blocks:
            vars(block).pop("forward", None)      # the class's forward is visible again

    def __enter__(self) -> "_BlockCheckpointing":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def checkpoint_blocks(model: nn.Module) -> _BlockCheckpointing:
    """Activation checkpointing for every block of a :class:`~lmlib.gpt.GPT` or
    :class:`~lmlib.llama.Llama` (any model with an ``nn.ModuleList`` called ``blocks``).

    While it is on, the forward pass keeps only each block's *input*; everything the block saved
    for backward is dropped, and the backward pass first runs the block's forward again to
    recreate it (``torch.utils.checkpoint.checkpoint`` with ``use_reentrant=False``; the
    recomputation stops as soon as it has recreated the last saved tensor). Activation memory
    falls from ``c·B·T·L`` to ``4·C·B·T·L`` bytes in float32 (the block inputs), plus one block's
    ``c·B·T`` while that block's backward runs, at the price of one more forward pass of the
    blocks: about 4/3 of the compute. ``preserve_rng_state=True`` replays the same random numbers, so dropout masks in
    the recomputation equal those of the first pass, and gradients are those of the plain model.

    Returns a handle: ``handle.remove()`` restores the model, and ``with checkpoint_blocks(model):``
    checkpoints only inside the ``with``. The model's code and parameters are not changed (each
    block gets an instance attribute ``forward`` that shadows its class's method).
    """
    blocks = _check_blocks(model, "checkpoint_blocks")
    for block in blocks:
        block.forward = _recomputed(block.forward)   # the bound method of the block's class
    return _BlockCheckpointing(blocks)


# ---------------------------------------------------------------------------------------------
# Training time
# ---------------------------------------------------------------------------------------------

def training_time(n_params: float, n_tokens: float, peak_flops: float, mfu: float, n_devices: int = 1) -> float:
    """Seconds of wall-clock time to train ``N = n_params`` parameters on ``D = n_tokens`` tokens:
    ``6·N·D / (n_devices · peak_flops · mfu)`` (:func:`lmlib.flops.training_flops`)."""
    who = "training_time"
    _positive("n_params", n_params, who)
    _positive("n_tokens", n_tokens, who)
    peak_flops = _positive("peak_flops", peak_flops, who)
    mfu = check_float("mfu", mfu, min=0.0, max=1.0, min_open=True, who=who)
    n_devices = check_int("n_devices", n_devices, min=1, who=who)
    return training_flops(n_params, n_tokens) / (n_devices * peak_flops * mfu)


def implied_mfu(n_params: float, n_tokens: float, device_hours: float, peak_flops: float) -> float:
    """The MFU that a reported run implies: ``6·N·D / (device_hours · 3600 · peak_flops)``.

    ``device_hours`` is the total over all devices (GPU-hours). It is the inverse of
    :func:`training_time`: ``training_time(N, D, peak, implied_mfu(N, D, h, peak), k) · k = 3600·h``.
    A reported total may include restarts, evaluation and idle time, so this is a lower bound on
    the MFU the training steps reached; ``6·N·D`` leaves attention out, a further underestimate.
    """
    who = "implied_mfu"
    _positive("n_params", n_params, who)
    _positive("n_tokens", n_tokens, who)
    device_hours = _positive("device_hours", device_hours, who)
    peak_flops = _positive("peak_flops", peak_flops, who)
    return training_flops(n_params, n_tokens) / (device_hours * 3600 * peak_flops)


def published_run_mfu(name: str) -> float:
    """:func:`implied_mfu` of a run of :data:`PUBLISHED_RUNS` on its accelerator's dense bf16 peak
    (:data:`ACCELERATORS`). Runs without published tokens or device-hours raise ``ValueError``."""
    run = _check_run(name, "published_run_mfu")
    peak = ACCELERATORS[run["accelerator"]]["bf16_dense_flops"]
    return implied_mfu(run["params"], run["tokens"], run["device_hours"], peak)
