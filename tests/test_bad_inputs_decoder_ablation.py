"""Bad-input cases of lmlib.decoder_ablation (see tests/badinput.py)."""

from types import SimpleNamespace

import torch

from badinput import Bool, Case, Custom, Float, Fn, Int, make_test
from lmlib import decoder_ablation as A

SPEC = {"model": {"block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 8},
        "train": {"steps": 2, "batch_size": 2, "warmup_steps": 1, "weight_decay": 0.1, "betas": [0.9, 0.99],
                  "grad_clip": 1.0},
        "split_seed": 0, "eval_batches": 1}


def _data():
    ids = (torch.arange(200) % 11).to(torch.int16)
    return SimpleNamespace(train=ids, val=ids, tokenizer=SimpleNamespace(vocab_size=11))


BAD_SPECS = [("list", [1, 2]), ("no_model", {k: v for k, v in SPEC.items() if k != "model"}),
             ("model_missing_n_head", {**SPEC, "model": {"block_size": 8, "n_layer": 1, "n_embd": 8}}),
             ("train_missing_steps", {**SPEC, "train": {k: v for k, v in SPEC["train"].items() if k != "steps"}}),
             ("negative_split_seed", {**SPEC, "split_seed": -1}), ("zero_eval_batches", {**SPEC, "eval_batches": 0})]
BAD_CHANGES = [("list", ["norm"]), ("unknown_field", {"normalisation": "rms"}), ("shape_field", {"n_embd": 16})]

SPECS = [
    Fn("lmlib.decoder_ablation.variant_config", valid=lambda: dict(spec=SPEC, changes={"norm": "rms"}, vocab_size=11),
       args={"spec": Custom(BAD_SPECS, nullable=False), "changes": Custom(BAD_CHANGES, nullable=False),
             "vocab_size": Int(min=1)},
       cases=[Case("bad_switch_value", lambda: A.variant_config(SPEC, {"norm": "batch"}, 11), "norm")]),
    Fn("lmlib.decoder_ablation.validation_batches", valid=lambda: dict(spec=SPEC, data=_data()),
       args={"spec": Custom(BAD_SPECS, nullable=False)}),
    Fn("lmlib.decoder_ablation.train_variant",
       valid=lambda: dict(spec=SPEC, changes={}, seed=0, lr=1e-3, data=_data(), stop_after=1, progress=False),
       args={"spec": Custom(BAD_SPECS, nullable=False), "changes": Custom(BAD_CHANGES, nullable=False),
             "seed": Int(min=0), "lr": Float(min=0.0, min_open=True), "stop_after": Int(min=1, nullable=True),
             "progress": Bool(), "data": Custom([("a_tensor", torch.arange(10)), ("a_str", "plays")],
                                                nullable=False)}),
]

test_bad_input = make_test(SPECS)
