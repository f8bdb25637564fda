"""Bad-input cases of lmlib.bigram (the neural bigram model)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Tensor, make_test
from lmlib.bigram import NeuralBigram, bigram_nll, train_bigram

V = 5


def _counts():
    return torch.arange(V * V, dtype=torch.float32).reshape(V, V) % 3


MODEL = NeuralBigram(V)
BAD_COUNTS = Tensor(dtype="float", skip=("int_dtype",))  # integer counts are fine
BAD_MODEL = Custom([("none", None), ("module", torch.nn.Linear(2, 2)), ("str", "model")])


def _params():
    return MODEL.logits.detach().clone()


SPECS = [
    Fn("lmlib.bigram.NeuralBigram", valid=lambda: dict(vocab_size=V), args={"vocab_size": Int(min=1)}),
    Fn("lmlib.bigram.NeuralBigram.forward", valid=lambda: dict(prev_ids=torch.tensor([0, 3, 4])),
       call=lambda **kw: MODEL(**kw), args={"prev_ids": Ids(vocab_size=V, skip=("extra_dim",))}),
    Fn("lmlib.bigram.NeuralBigram.prob_table", call=lambda: MODEL.prob_table()),
    Fn("lmlib.bigram.bigram_nll", valid=lambda: dict(model=MODEL, counts=_counts()),
       args={"model": BAD_MODEL, "counts": BAD_COUNTS},
       cases=[Case("wrong_shape", lambda: bigram_nll(MODEL, torch.ones(V, V + 1)), "counts"),
              Case("negative", lambda: bigram_nll(MODEL, -_counts()), "counts"),
              Case("all_zero", lambda: bigram_nll(MODEL, torch.zeros(V, V)), "counts"),
              Case("bool", lambda: bigram_nll(MODEL, torch.ones(V, V, dtype=torch.bool)), "counts")]),
    Fn("lmlib.bigram.train_bigram",
       valid=lambda: dict(model=NeuralBigram(V), counts=_counts(), steps=2, lr=0.1, weight_decay=0.01,
                          progress=False),
       call=lambda **kw: train_bigram(kw.pop("model"), kw.pop("counts"), **kw),
       args={"model": BAD_MODEL, "counts": BAD_COUNTS, "steps": Int(min=1), "lr": Float(min=0.0),
             "weight_decay": Float(min=0.0), "progress": Bool()},
       cases=[Case("bad_lr_leaves_model", lambda: train_bigram(MODEL, _counts(), steps=3, lr=-1.0), "lr",
                   snapshot=_params),
              Case("bad_counts_leave_model", lambda: train_bigram(MODEL, torch.ones(V, 2), steps=3), "counts",
                   snapshot=_params)]),
]

test_bad_input = make_test(SPECS)
