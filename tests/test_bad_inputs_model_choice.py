"""Bad-input cases of lmlib.model_choice (see tests/badinput.py)."""

import torch
from torch import nn

from badinput import Case, Custom, Fn, Int, make_test
from lmlib import model_choice as M

TEXT = "To be, or not to be: that is the question. " * 4
VOCAB = sorted(set(TEXT))


def _encode(s):
    return [VOCAB.index(c) for c in s]


def _decode(ids):
    return "".join(VOCAB[i] for i in ids)


class _Tiny(nn.Module):
    def __init__(self, vocab=len(VOCAB)):
        super().__init__()
        self.emb = nn.Embedding(len(VOCAB), vocab)

    def forward(self, idx):
        return self.emb(idx)


def _valid():
    torch.manual_seed(0)
    return dict(name="tiny", model=_Tiny(), encode=_encode, decode=_decode, text=TEXT, block_size=8,
                batch_size=4)


def _weights(kw):
    if not isinstance(kw["model"], nn.Module):
        return None
    return [p.detach().clone() for p in kw["model"].parameters()] + [kw["model"].training]


SPECS = [
    Fn("lmlib.model_choice.held_out_text", valid=lambda: dict(split_seed=0, part="val", max_chars=200),
       args={"split_seed": Int(min=0), "part": Custom([("other", "train"), ("none", None), ("number", 1)]),
             "max_chars": Int(min=100)}),
    Fn("lmlib.model_choice.measure_lm", valid=_valid, snapshot=_weights,
       args={"name": Custom([("empty", ""), ("none", None), ("number", 3)]),
             "model": Custom([("none", None), ("function", _encode), ("tensor", torch.zeros(3))]),
             "encode": Custom([("none", None), ("str", "abc")]),
             "decode": Custom([("none", None), ("str", "abc")]),
             "text": Custom([("empty", ""), ("none", None), ("bytes", b"abc")]),
             "block_size": Int(min=1), "batch_size": Int(min=1)},
       cases=[Case("text_too_short", lambda: M.measure_lm(**dict(_valid(), text="To be", block_size=8)), "text"),
              Case("too_few_logits", lambda: M.measure_lm(**dict(_valid(), model=_Tiny(vocab=3))), "logits")]),
]

EXEMPT = {"lmlib.model_choice.ModelReport": "a frozen record returned by measure_lm"}

test_bad_input = make_test(SPECS)
