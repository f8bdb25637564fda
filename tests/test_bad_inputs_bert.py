"""Bad-input cases of lmlib.bert (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Str, Tensor, make_test
from lmlib import bert as B

V, H = 20, 8


def _cfg_kw(**kw):
    return {**dict(vocab_size=V, hidden_size=H, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                   hidden_act="gelu_erf", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                   max_position_embeddings=6, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0), **kw}


def _cfg(**kw):
    return B.BertConfig(**_cfg_kw(**kw))


def _ids():
    return torch.tensor([[1, 5, 7, 2], [1, 9, 2, 0]])


def _types():
    return torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0]])


def _mask():
    return torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])


def _bert(input_ids, token_type_ids=None, attention_mask=None):
    torch.manual_seed(0)
    return B.BERT(_cfg()).eval()(input_ids, token_type_ids, attention_mask)


def _mlm(input_ids, token_type_ids=None, attention_mask=None, labels=None):
    torch.manual_seed(0)
    return B.BertForMaskedLM(_cfg()).eval()(input_ids, token_type_ids, attention_mask, labels)


def _emb(input_ids, token_type_ids):
    torch.manual_seed(0)
    return B.BertEmbeddings(_cfg())(input_ids, token_type_ids)


def _pool(hidden):
    torch.manual_seed(0)
    return B.BertPooler(H)(hidden)


def _head(hidden):
    torch.manual_seed(0)
    return B.MaskedLMHead(_cfg())(hidden)


BAD_MASK = [("values_2", torch.full((2, 4), 2)), ("wrong_shape", torch.ones(2, 3, dtype=torch.long)),
            ("list", [[1] * 4] * 2), ("half_values", torch.full((2, 4), 0.5))]
BAD_TYPES = [("out_of_range", torch.full((2, 4), 2)), ("negative", torch.full((2, 4), -1)),
             ("float", torch.zeros(2, 4)), ("wrong_shape", torch.zeros(2, 3, dtype=torch.long)), ("list", [[0] * 4] * 2)]
BAD_HIDDEN = Tensor(finite=False)  # activations are not scanned for NaN
CONFIGS = Custom([("dict", _cfg_kw()), ("none", None)])

SPECS = [
    Fn("lmlib.bert.BertConfig", valid=_cfg_kw,
       args={"vocab_size": Int(min=1), "hidden_size": Int(min=1), "num_hidden_layers": Int(min=1),
             "num_attention_heads": Int(min=1), "intermediate_size": Int(min=1),
             "hidden_act": Str(choices=("gelu_erf",)),
             "hidden_dropout_prob": Float(min=0.0, max=1.0, max_open=True),
             "attention_probs_dropout_prob": Float(min=0.0, max=1.0, max_open=True),
             "max_position_embeddings": Int(min=1), "type_vocab_size": Int(min=1),
             "layer_norm_eps": Float(min=0.0, min_open=True), "pad_token_id": Int(min=0, max=V - 1)},
       cases=[Case("not_divisible", lambda: _cfg(hidden_size=9), "divisible")]),
    Fn("lmlib.bert.BertConfig.to_dict", valid=dict, call=lambda: _cfg().to_dict()),
    Fn("lmlib.bert.BertEmbeddings", valid=lambda: dict(config=_cfg()), args={"config": CONFIGS}),
    Fn("lmlib.bert.BertEmbeddings.forward", valid=lambda: dict(input_ids=_ids(), token_type_ids=_types()), call=_emb,
       args={"input_ids": Ids(vocab_size=V), "token_type_ids": Custom(BAD_TYPES + [("none", None)])},
       cases=[Case("too_long", lambda: _emb(torch.ones(1, 7, dtype=torch.long), torch.zeros(1, 7, dtype=torch.long)),
                   "max_position_embeddings")]),
    Fn("lmlib.bert.BertPooler", valid=lambda: dict(hidden_size=H), args={"hidden_size": Int(min=1)}),
    Fn("lmlib.bert.BertPooler.forward", valid=lambda: dict(hidden=torch.randn(2, 4, H)), call=_pool,
       args={"hidden": BAD_HIDDEN},
       cases=[Case("wrong_width", lambda: _pool(torch.randn(2, 4, H + 1)), "hidden"),
              Case("float64", lambda: _pool(torch.randn(2, 4, H).double()), "hidden"),
              Case("no_positions", lambda: _pool(torch.randn(2, 0, H)), "hidden")]),
    Fn("lmlib.bert.BERT", valid=lambda: dict(config=_cfg(), add_pooler=True),
       args={"config": CONFIGS, "add_pooler": Bool()}),
    Fn("lmlib.bert.BERT.forward", valid=lambda: dict(input_ids=_ids(), token_type_ids=_types(), attention_mask=_mask()),
       call=_bert,
       args={"input_ids": Ids(vocab_size=V), "token_type_ids": Custom(BAD_TYPES), "attention_mask": Custom(BAD_MASK)},
       cases=[Case("too_long", lambda: _bert(torch.ones(1, 7, dtype=torch.long)), "max_position_embeddings"),
              Case("empty", lambda: _bert(torch.ones(1, 0, dtype=torch.long)), "input_ids")]),
    Fn("lmlib.bert.MaskedLMHead", valid=lambda: dict(config=_cfg()), args={"config": CONFIGS}),
    Fn("lmlib.bert.MaskedLMHead.forward", valid=lambda: dict(hidden=torch.randn(2, 4, H)), call=_head,
       args={"hidden": Tensor(finite=False, skip=("extra_dim",))},  # (..., H): also the (N, H) masked positions
       cases=[Case("wrong_width", lambda: _head(torch.randn(2, 4, H + 1)), "hidden"),
              Case("int", lambda: _head(torch.ones(2, 4, H, dtype=torch.long)), "hidden"),
              Case("float64", lambda: _head(torch.randn(2, 4, H).double()), "hidden")]),
    Fn("lmlib.bert.BertForMaskedLM", valid=lambda: dict(config=_cfg()), args={"config": CONFIGS}),
    Fn("lmlib.bert.BertForMaskedLM.forward",
       valid=lambda: dict(input_ids=_ids(), token_type_ids=_types(), attention_mask=_mask(),
                          labels=torch.tensor([[-100, 5, -100, -100], [-100, -100, 2, -100]])),
       call=_mlm,
       args={"input_ids": Ids(vocab_size=V), "token_type_ids": Custom(BAD_TYPES), "attention_mask": Custom(BAD_MASK),
             "labels": Custom([("out_of_range", torch.full((2, 4), V)), ("negative", torch.full((2, 4), -1)),
                               ("float", torch.zeros(2, 4)), ("wrong_shape", torch.zeros(2, 3, dtype=torch.long)),
                               ("list", [[0] * 4] * 2)])}),
]

test_bad_input = make_test(SPECS)
