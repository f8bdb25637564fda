"""Bad-input cases of lmlib.seq2seq (see tests/badinput.py)."""

import torch

from badinput import Bool, Custom, Float, Fn, Ids, Int, Str, Tensor, make_test
from lmlib import seq2seq as S
from lmlib.gpt import GPT, GPTConfig
from lmlib.transformer import Transformer, TransformerConfig

K, L = 5, 4                      # symbols 1..K, sequences of L


def _model():
    torch.manual_seed(0)
    return Transformer(TransformerConfig(K + 1, K + 1, d_model=8, n_heads=2, n_encoder_layers=1,
                                         n_decoder_layers=1, d_ff=16, dropout=0.0, max_len=6))


def _pairs():
    return S.make_pairs(6, L, K, generator=torch.Generator().manual_seed(0))


def _state(kwargs):
    model = kwargs.get("model")
    return {k: v.clone() for k, v in model.state_dict().items()} if isinstance(model, torch.nn.Module) else None


BAD_MODEL = Custom([("gpt", GPT(GPTConfig(vocab_size=K + 1, block_size=8, n_layer=1, n_head=2, n_embd=8))),
                    ("config", TransformerConfig(K + 1, K + 1, d_model=8, n_heads=2)), ("none", None)])
BAD_LEN = [("too_long", torch.ones(2, 7, dtype=torch.long)), ("empty_batch", torch.ones(0, L, dtype=torch.long)),
           ("empty_seq", torch.ones(2, 0, dtype=torch.long))]


def _train_valid():
    src, tgt = _pairs()
    return dict(model=_model(), src=src, tgt=tgt, steps=2, batch_size=3, lr=1e-3, warmup_steps=1, decay=True, seed=0,
                progress=False)


SPECS = [
    Fn("lmlib.seq2seq.make_pairs",
       valid=lambda: dict(n=3, length=L, n_symbols=K, task="copy", generator=torch.Generator().manual_seed(0)),
       args={"n": Int(min=1), "length": Int(min=1), "n_symbols": Int(min=1), "task": Str(choices=S.TASKS),
             "generator": Custom([("seed_int", 0), ("str", "gen")])}),
    Fn("lmlib.seq2seq.shift_right", valid=lambda: dict(tgt=torch.tensor([[1, 2, 3]]), bos_id=0),
       args={"tgt": Custom([("float", torch.ones(1, 3)), ("one_dim", torch.ones(3, dtype=torch.long)),
                            ("empty", torch.ones(1, 0, dtype=torch.long)), ("list", [[1, 2, 3]]), ("none", None)]),
             "bos_id": Int(min=0)}),
    Fn("lmlib.seq2seq.train_seq2seq", valid=_train_valid, snapshot=_state,
       args={"model": BAD_MODEL, "src": Custom(list(Ids(vocab_size=K + 1).bad(_pairs()[0])) + BAD_LEN),
             "tgt": Custom(list(Ids(vocab_size=K + 1).bad(_pairs()[1])) + BAD_LEN[:1]
                           + [("fewer_rows", torch.ones(5, L, dtype=torch.long))]),
             "steps": Int(min=1), "batch_size": Int(min=1), "lr": Float(min=0.0, min_open=True),
             "warmup_steps": Int(min=0), "decay": Bool(), "seed": Int(min=0), "progress": Bool()}),
    Fn("lmlib.seq2seq.greedy_decode", valid=lambda: dict(model=_model(), src=_pairs()[0], length=L, bos_id=0),
       snapshot=_state,
       args={"model": BAD_MODEL, "src": Custom(list(Ids(vocab_size=K + 1).bad(_pairs()[0])) + BAD_LEN),
             "length": Int(min=1, max=6), "bos_id": Int(min=0, max=K)}),
    Fn("lmlib.seq2seq.exact_match", valid=lambda: dict(pred=torch.ones(2, 3, dtype=torch.long),
                                                       target=torch.ones(2, 3, dtype=torch.long)),
       args={"pred": Custom([("float", torch.ones(2, 3)), ("wrong_shape", torch.ones(2, 4, dtype=torch.long)),
                             ("one_dim", torch.ones(3, dtype=torch.long)), ("list", [[1, 1, 1]] * 2),
                             ("none", None)]),
             "target": Custom([("float", torch.ones(2, 3)), ("wrong_shape", torch.ones(3, 3, dtype=torch.long)),
                               ("none", None)])},
       aliases={"pred": ["target"], "target": ["pred"]}),
    Fn("lmlib.seq2seq.cross_attention_weights",
       valid=lambda: dict(model=_model(), src=_pairs()[0], tgt_in=S.shift_right(_pairs()[1])), snapshot=_state,
       args={"model": BAD_MODEL, "src": Custom(list(Ids(vocab_size=K + 1).bad(_pairs()[0])) + BAD_LEN),
             "tgt_in": Custom(list(Ids(vocab_size=K + 1).bad(_pairs()[1])) + BAD_LEN[:1])},
       aliases={"src": ["tgt_in"]}),
]

test_bad_input = make_test(SPECS)
