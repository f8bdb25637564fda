"""Bad-input cases of lmlib.beam (see tests/badinput.py)."""

import torch

from badinput import Bool, Case, Custom, Float, Fn, Ids, Int, Str, make_test
from lmlib import beam
from lmlib.gpt import GPT, GPTConfig
from lmlib.transformer import Transformer, TransformerConfig

V, MAX = 6, 6          # target vocabulary, the Transformer's max_len
BLOCK = 8              # the GPT's block_size


def _model():
    torch.manual_seed(0)
    return Transformer(TransformerConfig(V, V, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=16,
                                         dropout=0.1, max_len=MAX))


def _gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=1, n_head=2, n_embd=8, dropout=0.1))


def _src():
    return torch.tensor([[2, 3, 4, 5], [3, 3, 0, 0]])


def _mask():
    return torch.tensor([[False] * 4, [False, False, True, True]])


def _state(kwargs):
    model = kwargs.get("model")
    if not isinstance(model, torch.nn.Module):
        return None
    return {"weights": {k: v.clone() for k, v in model.state_dict().items()}, "training": model.training}


BAD_MODEL = Custom([("gpt", _gpt()), ("config", TransformerConfig(V, V, d_model=8, n_heads=2)), ("none", None)])
BAD_LM = Custom([("transformer", _model()), ("no_module", object()), ("none", None),
                 ("config_only", GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=1, n_head=2, n_embd=8))])
BAD_SRC = Custom(list(Ids(vocab_size=V).bad(_src())) + [
    ("one_dim", torch.tensor([2, 3, 4])), ("too_long", torch.ones(2, MAX + 1, dtype=torch.long)),
    ("empty_batch", torch.ones(0, 3, dtype=torch.long)), ("empty_seq", torch.ones(2, 0, dtype=torch.long)),
    ("none", None)])
BAD_MASK = Custom([("int_mask", _mask().long()), ("wrong_shape", torch.zeros(2, 3, dtype=torch.bool)),
                   ("float_mask", _mask().float()), ("list", _mask().tolist()),
                   ("all_padding_row", torch.tensor([[False] * 4, [True] * 4]))])
BAD_PROMPT = Custom([("float", torch.tensor([2.0, 3.0])), ("two_dims", torch.tensor([[2, 3]])),
                     ("empty", torch.tensor([], dtype=torch.long)), ("empty_list", []),
                     ("id_out_of_range", torch.tensor([2, V])), ("negative_id", [2, -1]), ("str", "ab"),
                     ("float_list", [2.0, 3.0]), ("bool_list", [True, False]), ("none", None)])


def _seq2seq_common():
    return {"model": BAD_MODEL, "src": BAD_SRC, "src_key_padding_mask": BAD_MASK,
            "max_len": Int(min=1, max=MAX), "bos_id": Int(min=0, max=V - 1), "eos_id": Int(min=0, max=V - 1)}


def _beam_args():
    return {"beam_size": Int(min=1), "length_penalty": Float(min=0.0), "length_norm": Str(choices=beam.LENGTH_NORMS),
            "return_scores": Bool()}


def _greedy_valid():
    return dict(model=_model(), src=_src(), src_key_padding_mask=_mask(), max_len=4, bos_id=0, eos_id=1, pad_id=0)


def _beam_valid():
    return dict(model=_model(), src=_src(), src_key_padding_mask=_mask(), beam_size=2, max_len=4, bos_id=0, eos_id=1,
                length_penalty=1.0, length_norm="gnmt", return_scores=True)


def _lm_valid():
    return dict(model=_gpt(), prompt=[2, 3], max_new_tokens=4, eos_id=1)


def _beam_lm_valid():
    return dict(model=_gpt(), prompt=torch.tensor([2, 3]), beam_size=2, max_new_tokens=4, eos_id=1,
                length_penalty=0.6, length_norm="average", return_scores=False)


_frozen = _model()
_frozen_gpt = _gpt()


def _frozen_state():
    return _state({"model": _frozen}), _state({"model": _frozen_gpt})


SPECS = [
    Fn("lmlib.beam.length_normalizer", valid=lambda: dict(n=3, length_penalty=0.6, length_norm="gnmt"),
       args={"n": Int(min=1), "length_penalty": Float(min=0.0), "length_norm": Str(choices=beam.LENGTH_NORMS)}),
    Fn("lmlib.beam.greedy_search_seq2seq", valid=_greedy_valid, snapshot=_state,
       args={**_seq2seq_common(), "pad_id": Int(min=0, max=V - 1)},
       aliases={"src": ["src_key_padding_mask"]},
       cases=[Case("mask_of_other_batch", lambda: beam.greedy_search_seq2seq(
           _frozen.train(), _src(), src_key_padding_mask=_mask()[:1], max_len=4, bos_id=0, eos_id=1),
           "src_key_padding_mask", snapshot=_frozen_state)]),
    Fn("lmlib.beam.beam_search_seq2seq", valid=_beam_valid, snapshot=_state,
       args={**_seq2seq_common(), **_beam_args()},
       aliases={"src": ["src_key_padding_mask"]},
       cases=[Case("max_len_over_model_limit", lambda: beam.beam_search_seq2seq(
           _frozen.train(), _src(), beam_size=2, max_len=MAX + 1, bos_id=0, eos_id=1), "max_len",
           snapshot=_frozen_state),
              Case("beam_size_zero", lambda: beam.beam_search_seq2seq(
                  _frozen, _src(), beam_size=0, max_len=3, bos_id=0, eos_id=1), "beam_size", snapshot=_frozen_state),
              Case("eos_out_of_vocab", lambda: beam.beam_search_seq2seq(
                  _frozen, _src(), beam_size=2, max_len=3, bos_id=0, eos_id=V), "eos_id", snapshot=_frozen_state)]),
    Fn("lmlib.beam.greedy_search_lm", valid=_lm_valid, snapshot=_state,
       args={"model": BAD_LM, "prompt": BAD_PROMPT, "max_new_tokens": Int(min=1, max=BLOCK - 2),
             "eos_id": Int(min=0, max=V - 1, nullable=True)},
       cases=[Case("prompt_plus_new_tokens_over_block_size", lambda: beam.greedy_search_lm(
           _frozen_gpt.train(), [2, 3, 4], max_new_tokens=BLOCK - 2), "max_new_tokens", snapshot=_frozen_state)]),
    Fn("lmlib.beam.beam_search_lm", valid=_beam_lm_valid, snapshot=_state,
       args={"model": BAD_LM, "prompt": BAD_PROMPT, "max_new_tokens": Int(min=1, max=BLOCK - 2),
             "eos_id": Int(min=0, max=V - 1, nullable=True), **_beam_args()},
       cases=[Case("prompt_plus_new_tokens_over_block_size", lambda: beam.beam_search_lm(
           _frozen_gpt.train(), torch.tensor([2, 3, 4]), beam_size=2, max_new_tokens=BLOCK - 2), "max_new_tokens",
           snapshot=_frozen_state)]),
]

test_bad_input = make_test(SPECS)
