"""Bad-input cases of lmlib.cost (see tests/badinput.py)."""

import math

import torch

from badinput import Bool, Case, Custom, Device, Float, Fn, Ids, Int, Seq, Str, make_test
from lmlib import cost
from lmlib.bert import BertConfig
from lmlib.gpt import GPT, GPTConfig

V = 11


def _cfg(**kw):
    return GPTConfig(**{**dict(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8), **kw})


def _ids(seed=0):
    return torch.randint(0, V, (2, 5), generator=torch.Generator().manual_seed(seed))


def _model_and_opt():
    model = GPT(_cfg())
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


WRONG_CONFIG = Custom([("dict", {"n_layer": 1}), ("none", None), ("str", "gpt2"),
                       ("module", torch.nn.Linear(2, 2)),
                       ("bert", BertConfig(vocab_size=V, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                           intermediate_size=16))])
NOT_A_MODULE = Custom([("none", None), ("str", "gpt"), ("dict", {})])
POSITIVE = Float(min=0.0, min_open=True)


def _grid_spec(**extra):
    """batch_sizes / seq_lens / n_layers: non-empty lists of ints >= 1."""
    bad_items = [("zero_entry", [0]), ("float_entry", [1.5]), ("bool_entry", [True])]
    return {name: Custom([*bad_items, ("str_for_list", "12"), ("int", 3), ("empty", []), ("none", None)])
            for name in ("batch_sizes", "seq_lens", "n_layers")} | extra


def _fit_valid():
    return dict(batch_sizes=[1, 2, 1, 2], seq_lens=[4, 4, 8, 8], n_layers=[1, 1, 2, 2],
                measured_bytes=[10.0, 20.0, 60.0, 120.0])


def _checkpointed_twice():
    model = GPT(_cfg())
    cost.checkpoint_blocks(model)
    return cost.checkpoint_blocks(model)


SPECS = [
    Fn("lmlib.cost.training_bytes_per_param", valid=lambda: dict(precision="bf16-mixed", optimizer="sgd"),
       args={"precision": Str(choices=("fp32",)), "optimizer": Str(choices=("adamw",))}),
    Fn("lmlib.cost.measured_state_bytes",
       valid=lambda: dict(zip(("model", "optimizer"), _model_and_opt())),
       args={"model": NOT_A_MODULE,
             "optimizer": Custom([("none", None), ("list", []), ("module", torch.nn.Linear(2, 2))])}),
    Fn("lmlib.cost.activation_bytes_formula", valid=lambda: dict(config=_cfg(), batch_size=2, seq_len=4),
       args={"config": WRONG_CONFIG, "batch_size": Int(min=1), "seq_len": Int(min=1, max=8, nullable=True)},
       cases=[Case("dropout", lambda: cost.activation_bytes_formula(_cfg(dropout=0.1), 2), "dropout")]),
    Fn("lmlib.cost.saved_activation_bytes", valid=lambda: dict(model=GPT(_cfg()), idx=_ids(), targets=_ids(1)),
       args={"model": NOT_A_MODULE, "idx": Ids(vocab_size=V), "targets": Ids(vocab_size=V, nullable=True)},
       cases=[Case("targets_shape", lambda: cost.saved_activation_bytes(GPT(_cfg()), _ids(), _ids()[:, :3]),
                   "targets"),
              Case("empty_idx", lambda: cost.saved_activation_bytes(GPT(_cfg()), _ids()[:, :0]), "idx")]),
    Fn("lmlib.cost.measure_activation_memory",
       valid=lambda: dict(config=_cfg(), batch_sizes=[1], seq_lens=[4], n_layers=[1], repeats=1, device="cpu",
                          seed=0),
       args=_grid_spec(config=WRONG_CONFIG, repeats=Int(min=1), device=Device(),
                       seed=Int(min=0)),
       cases=[Case("seq_len_above_block", lambda: cost.measure_activation_memory(_cfg(), [1], [9], [1]),
                   "seq_lens")]),
    Fn("lmlib.cost.fit_activation_bytes", valid=_fit_valid,
       args=_grid_spec(measured_bytes=Seq(nonempty=True)),
       cases=[Case("nan_measurement", lambda: cost.fit_activation_bytes(
                  **{**_fit_valid(), "measured_bytes": [10.0, math.nan, 60.0, 120.0]}), "measured_bytes"),
              Case("negative_measurement", lambda: cost.fit_activation_bytes(
                  **{**_fit_valid(), "measured_bytes": [10.0, -1.0, 60.0, 120.0]}), "measured_bytes"),
              Case("str_measurement", lambda: cost.fit_activation_bytes(
                  **{**_fit_valid(), "measured_bytes": [10.0, "20", 60.0, 120.0]}), "measured_bytes"),
              Case("length_mismatch", lambda: cost.fit_activation_bytes(
                  **{**_fit_valid(), "seq_lens": [4, 4, 8]}), "seq_lens"),
              Case("one_depth_only", lambda: cost.fit_activation_bytes(
                  **{**_fit_valid(), "n_layers": [1, 1, 1, 1]}), "n_layers")]),
    Fn("lmlib.cost.matmul_peak_flops",
       valid=lambda: dict(n=16, dtype=torch.float32, repeats=2, threads=1, device="cpu"),
       args={"n": Int(min=1), "dtype": Custom([("int_dtype", torch.int64), ("str", "float32"), ("none", None)]),
             "repeats": Int(min=1), "threads": Int(min=1, nullable=True), "device": Device()}),
    Fn("lmlib.cost.model_flops_per_token", valid=lambda: dict(config=_cfg(), seq_len=4, causal=True),
       args={"config": WRONG_CONFIG, "seq_len": Int(min=1, max=8, nullable=True), "causal": Bool()}),
    Fn("lmlib.cost.mfu", valid=lambda: dict(flops_per_step=1e12, seconds_per_step=2.0, peak_flops=1e13),
       args={"flops_per_step": POSITIVE, "seconds_per_step": POSITIVE, "peak_flops": POSITIVE}),
    Fn("lmlib.cost.checkpoint_blocks", valid=lambda: dict(model=GPT(_cfg())),
       args={"model": Custom([("none", None), ("str", "gpt"), ("no_blocks", torch.nn.Linear(2, 2)),
                              ("empty_blocks", torch.nn.Module())])},
       cases=[Case("already_checkpointed", _checkpointed_twice, "already checkpointed")]),
    Fn("lmlib.cost.training_time",
       valid=lambda: dict(n_params=1e9, n_tokens=2e10, peak_flops=1e14, mfu=0.4, n_devices=8),
       args={"n_params": POSITIVE, "n_tokens": POSITIVE, "peak_flops": POSITIVE,
             "mfu": Float(min=0.0, max=1.0, min_open=True), "n_devices": Int(min=1)}),
    Fn("lmlib.cost.implied_mfu", valid=lambda: dict(n_params=1e9, n_tokens=2e10, device_hours=1e3, peak_flops=1e14),
       args={"n_params": POSITIVE, "n_tokens": POSITIVE, "device_hours": POSITIVE, "peak_flops": POSITIVE}),
    Fn("lmlib.cost.published_run_mfu", valid=lambda: dict(name="llama3-8b"),
       args={"name": Str(choices=("llama3-8b",))},
       cases=[Case("no_device_hours", lambda: cost.published_run_mfu("gpt3-175b"), "device_hours"),
              Case("no_tokens", lambda: cost.published_run_mfu("gpt2-small"), "tokens")]),
]

test_bad_input = make_test(SPECS)
