"""Bad-input cases of lmlib.training (configuration, schedule, optimiser, loop, evaluation)."""

import random

import torch
from torch import nn
from torch.nn import functional as F

from badinput import Bool, Case, Custom, Device, Float, Fn, Int, Str, Tensor, make_test
from lmlib import training as T
from lmlib.training import History, TrainConfig


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(11, 4)
        self.out = nn.Linear(4, 11)

    def forward(self, x, y=None):
        logits = self.out(self.emb(x))
        return logits, None if y is None else F.cross_entropy(logits.flatten(0, 1), y.flatten())


DATA = torch.arange(60) % 11


def _batch():
    return DATA[:8].view(2, 4), DATA[1:9].view(2, 4)


def _cfg(**kw):
    return TrainConfig(**{**dict(max_steps=1, warmup_steps=0, eval_interval=5, progress=False), **kw})


def _state(kw):
    m = kw.get("model")
    return {k: v.clone() for k, v in m.state_dict().items()} if isinstance(m, nn.Module) else None


def _rng(_kw=None):
    return torch.get_rng_state(), random.getstate()


CONFIGS = Custom([("dict", {"lr": 1e-3}), ("none", None), ("str", "cfg")])
MODELS = Custom([("str", "model"), ("none", None), ("tensor", torch.zeros(2))])
FUNCS = Custom([("int", 3), ("str", "f")])

CONFIG_FIELDS = dict(
    max_steps=Int(min=1), lr=Float(min=0.0, min_open=True), min_lr=Float(min=0.0, nullable=True),
    warmup_steps=Int(min=0), schedule=Str(choices=("cosine", "linear", "constant")), weight_decay=Float(min=0.0),
    betas=Custom([("one", (0.9,)), ("three", (0.9, 0.9, 0.9)), ("str", "ab"), ("above_one", (0.9, 1.0)),
                  ("nan", (float("nan"), 0.9)), ("none", None), ("int", 3)]),
    eps=Float(min=0.0, min_open=True), grad_clip=Float(min=0.0, min_open=True, nullable=True),
    grad_accum_steps=Int(min=1), eval_interval=Int(min=1), log_interval=Int(min=1), seed=Int(),
    device=Device(), autocast_dtype=Str(choices=("bfloat16", "float16"), nullable=True), compile=Bool(),
    checkpoint_path=Custom([("int", 3), ("empty", ""), ("list", ["c"])]),
    checkpoint_interval=Int(min=1, nullable=True), progress=Bool(), desc=Str(),
)


def _config_valid():
    return dict(max_steps=10, lr=1e-3, min_lr=1e-4, warmup_steps=2, schedule="cosine", weight_decay=0.1,
                betas=(0.9, 0.99), eps=1e-8, grad_clip=1.0, grad_accum_steps=1, eval_interval=5, log_interval=1,
                seed=0, device="cpu", autocast_dtype=None, compile=False, checkpoint_path=None,
                checkpoint_interval=None, progress=False, desc="x")


def _history():
    return History(steps=[1, 2], train_loss=[2.0, 1.5], lr=[0.1, 0.1], eval_steps=[2], evals={"val_loss": [1.7]})


_HIST = _history()


SPECS = [
    Fn("lmlib.training.TrainConfig", valid=_config_valid, args=CONFIG_FIELDS,
       cases=[Case("min_lr_above_lr", lambda: TrainConfig(lr=1e-3, min_lr=1e-2), "min_lr")]),
    Fn("lmlib.training.TrainConfig.from_dict", valid=lambda: dict(d={"max_steps": 5}),
       args={"d": Custom([("list", [("max_steps", 5)]), ("none", None), ("str", "max_steps=5"),
                          ("typo", {"max_step": 5}), ("bad_value", {"max_steps": "5"})])},
       aliases={"d": ["max_step", "max_steps"]}),
    Fn("lmlib.training.lr_at", valid=lambda: dict(step=3, config=_cfg(max_steps=10, warmup_steps=2)),
       args={"step": Int(min=0), "config": CONFIGS}),
    Fn("lmlib.training.param_groups", valid=lambda: dict(model=Toy(), weight_decay=0.1),
       args={"model": MODELS, "weight_decay": Float(min=0.0)}),
    Fn("lmlib.training.make_optimizer", valid=lambda: dict(model=Toy(), config=_cfg()),
       args={"model": MODELS, "config": CONFIGS},
       cases=[Case("no_trainable_parameters", lambda: T.make_optimizer(nn.ReLU(), _cfg()), "no trainable")]),
    Fn("lmlib.training.seed_everything", valid=lambda: dict(seed=3), args={"seed": Int(min=-2**63, max=2**64 - 1)},
       snapshot=_rng),
    Fn("lmlib.training.run_batch", valid=lambda: dict(model=Toy(), batch=_batch()),
       args={"model": MODELS, "batch": Custom([("tensor", DATA[:8].view(2, 4)), ("str", "ab"), ("none", None),
                                                ("int", 3)])},
       cases=[
           Case("no_targets", lambda: T.run_batch(Toy(), (DATA[:8].view(2, 4),)), "loss=None"),
           Case("loss_not_a_tensor", lambda: T.run_batch(lambda x: (x, 1.5), (DATA[:4],)), "loss"),
           Case("loss_not_scalar", lambda: T.run_batch(lambda x: (x, x.float()), (DATA[:4],)), "loss"),
           Case("not_logits_loss", lambda: T.run_batch(lambda x: x, (DATA[:4],)), "(logits, loss)"),
       ]),
    Fn("lmlib.training.evaluate_loss", valid=lambda: dict(model=Toy(), batches=[_batch()], weighted=True),
       args={"model": MODELS,
             "batches": Custom([("str", "ab"), ("int", 3), ("tensor", DATA), ("dict", {"x": DATA}),
                                ("list_of_ints", [3]), ("empty", []), ("none", None)]),
             "weighted": Bool()}),
    Fn("lmlib.training.fixed_lm_batches",
       valid=lambda: dict(data=DATA.clone(), block_size=4, batch_size=2, n_batches=2, seed=1),
       args={"data": Tensor(dtype="int"), "block_size": Int(min=1), "batch_size": Int(min=1),
             "n_batches": Int(min=1), "seed": Int()},
       cases=[Case("negative_id", lambda: T.fixed_lm_batches(DATA - 1, 4, 2, 2), "negative token id"),
              Case("too_short", lambda: T.fixed_lm_batches(DATA[:4], 4, 2, 2), "block_size")]),
    Fn("lmlib.training.sequential_lm_batches", valid=lambda: dict(data=DATA.clone(), block_size=4, batch_size=2),
       args={"data": Tensor(dtype="int"), "block_size": Int(min=1), "batch_size": Int(min=1)},
       cases=[Case("negative_id", lambda: T.sequential_lm_batches(DATA - 1, 4, 2), "negative token id"),
              Case("one_token", lambda: T.sequential_lm_batches(DATA[:1], 4, 2), "at least 2 tokens")]),
    Fn("lmlib.training.make_lm_eval_fn",
       valid=lambda: dict(data=DATA.clone(), block_size=4, batch_size=2, n_batches=2, seed=1, name="val"),
       args={"data": Tensor(dtype="int"), "block_size": Int(min=1), "batch_size": Int(min=1),
             "n_batches": Int(min=1, nullable=True), "seed": Int(), "name": Str(nonempty=True)}),
    Fn("lmlib.training.train",
       valid=lambda: dict(model=Toy(), data=lambda g: _batch(), config=_cfg(), eval_fn=None, history=None,
                          resume_from=None, stop_after=None, on_step=None),
       args={"model": MODELS, "data": Custom([("str", "abc"), ("int", 3), ("none", None), ("dict", {"x": 1})]),
             "config": CONFIGS, "eval_fn": FUNCS,
             "history": Custom([("dict", {"steps": []}), ("list", [])]),
             "resume_from": Custom([("int", 3), ("empty", ""), ("list", ["c"])]),
             "stop_after": Int(min=0, nullable=True), "on_step": FUNCS},
       snapshot=_state,
       cases=[
           Case("all_targets_ignored", lambda: T.train(Toy(), [(DATA[:8].view(2, 4), torch.full((2, 4), -100))],
                                                        _cfg()), "no targets to predict"),
           Case("batch_is_a_tensor", lambda: T.train(Toy(), lambda g: DATA[:8].view(2, 4), _cfg()), "batch"),
           Case("missing_checkpoint", lambda: T.train(Toy(), lambda g: _batch(), _cfg(),
                                                      resume_from="/nonexistent/c.safetensors"),
                "no checkpoint", error=FileNotFoundError),
       ]),
    Fn("lmlib.training.History.from_dict", valid=lambda: dict(d=_history().to_dict()),
       args={"d": Custom([("list", [1]), ("none", None), ("unknown_field", {"step": [1]}),
                          ("steps_str", {"steps": "12"}), ("loss_none", {"train_loss": [None]}),
                          ("evals_list", {"evals": [1.0]}), ("tokens_negative", {"tokens": -1}),
                          ("seconds_str", {"seconds": "1"}), ("grad_norm_str", {"grad_norm": ["1"]}),
                          ("grad_norm_not_list", {"grad_norm": 1.0})])},
       aliases={"d": ["step", "steps", "train_loss", "evals", "tokens", "seconds", "grad_norm"]}),
    Fn("lmlib.training.History.record_eval", valid=lambda: dict(step=3, metrics={"val_loss": 1.0}),
       call=lambda **kw: _HIST.record_eval(**kw), snapshot=lambda kw: _HIST.to_dict(),
       args={"step": Int(min=0),
             "metrics": Custom([("list", [1.0]), ("none", None), ("str_value", {"val_loss": "1"}),
                                ("int_key", {1: 1.0})])}),
    Fn("lmlib.training.History.smoothed_train_loss", valid=lambda: dict(window=2),
       call=lambda **kw: _history().smoothed_train_loss(**kw), args={"window": Int(min=1)}),
    Fn("lmlib.training.History.curves", valid=lambda: dict(smooth=2),
       call=lambda **kw: _history().curves(**kw), args={"smooth": Int(min=0)}),
    Fn("lmlib.training.History.last", valid=lambda: dict(name="val_loss"),
       call=lambda **kw: _history().last(**kw), args={"name": Str()},
       cases=[Case("unknown_metric", lambda: _history().last("val_acc"), "val_acc"),
              Case("nothing_recorded", lambda: History().last("train_loss"), "nothing recorded")]),
]

test_bad_input = make_test(SPECS)
