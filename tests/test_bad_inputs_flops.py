"""Bad-input cases of lmlib.flops (see tests/badinput.py)."""

import torch

from badinput import Bool, Custom, Float, Fn, Int, make_test
from lmlib.bert import BertConfig
from lmlib.gpt import GPTConfig


def _cfg():
    return GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)


WRONG = Custom([("dict", {"n_layer": 1}), ("none", None), ("str", "gpt2"), ("module", torch.nn.Linear(2, 2)),
                ("bert", BertConfig(vocab_size=11, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=16))])

SPECS = [
    Fn("lmlib.flops.gpt_flops_breakdown", valid=lambda: dict(config=_cfg(), seq_len=4, causal=False),
       args={"config": WRONG, "seq_len": Int(min=1, max=8, nullable=True), "causal": Bool()}),
    Fn("lmlib.flops.non_embedding_params", valid=lambda: dict(model_or_config=_cfg()),
       args={"model_or_config": WRONG}),
    Fn("lmlib.flops.training_flops", valid=lambda: dict(n_params=1000, n_tokens=3e9),
       args={"n_params": Float(min=0.0), "n_tokens": Float(min=0.0)}),
]

test_bad_input = make_test(SPECS)
