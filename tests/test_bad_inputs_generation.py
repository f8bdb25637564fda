"""Bad-input cases of lmlib.generation (see tests/badinput.py)."""

import torch
from torch import nn

from badinput import Bool, Case, Custom, Float, Fn, Int, Str, Tensor, make_test
from lmlib import generation as G
from lmlib.gpt import GPT, GPTConfig

NAN, INF = float("nan"), float("inf")
V = 11


def _logits():
    return torch.randn(2, V, generator=torch.Generator().manual_seed(0))


def _with(value, where=(0, 3)):
    x = _logits()
    x[where] = value
    return x


def _all_neg_inf_row():
    x = _logits()
    x[1] = -INF
    return x


BAD_LOGITS = [("nan_entry", _with(NAN)), ("posinf_entry", _with(INF)), ("all_neg_inf_row", _all_neg_inf_row()),
              ("int", torch.ones(2, V, dtype=torch.long)), ("list", [[0.0] * V]), ("scalar", torch.tensor(1.0)),
              ("no_vocab", torch.zeros(2, 0)), ("none", None)]


class _NaNModel(nn.Module):
    """A model whose logits are NaN (as after a diverged training run)."""

    def __init__(self):
        super().__init__()
        self.config = GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=1, n_embd=4)
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, idx, targets=None, kv_caches=None):
        return torch.full((*idx.shape, V), NAN) + self.w, None


class _Tok:
    def encode(self, s):
        return [ord(c) % V for c in s]

    def decode(self, ids):
        return "".join(chr(97 + i) for i in ids)


_MODEL = None


def _model():
    global _MODEL
    if _MODEL is None:
        torch.manual_seed(0)
        _MODEL = GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
    return _MODEL


def _gen_valid():
    return dict(model=_model(), idx=torch.tensor([[1, 2, 3]]), max_new_tokens=2, temperature=1.0, top_k=None,
                top_p=None, do_sample=True, eos_id=None, pad_id=None, use_cache=True,
                generator=torch.Generator().manual_seed(0), context="slide",
                repetition_penalty=1.2)


def _greedy(**kw):
    return lambda: G.generate(_model(), torch.tensor([[1, 2]]), 2, do_sample=False, **kw)


SPECS = [
    Fn("lmlib.generation.apply_temperature", valid=lambda: dict(logits=_logits(), temperature=0.7),
       args={"logits": Custom(BAD_LOGITS), "temperature": Float(min=0.0, min_open=True)}),
    Fn("lmlib.generation.apply_repetition_penalty",
       valid=lambda: dict(logits=_logits(), previous_ids=torch.tensor([[1, 2, 2], [0, 10, 3]]), penalty=1.3),
       args={"logits": Custom(BAD_LOGITS + [("one_dim", _logits()[0])]),
             "previous_ids": Tensor(dtype="int", skip=("too_few_dims",)),
             "penalty": Float(min=0.0, min_open=True)},
       cases=[Case("id_out_of_vocab", lambda: G.apply_repetition_penalty(_logits(), torch.tensor([[1], [V]]), 1.3),
                   "previous_ids"),
              Case("negative_id", lambda: G.apply_repetition_penalty(_logits(), torch.tensor([[1], [-1]]), 1.3),
                   "previous_ids"),
              Case("rows_disagree", lambda: G.apply_repetition_penalty(_logits(), torch.tensor([[1, 2]]), 1.3),
                   "previous_ids"),
              Case("one_dim_ids", lambda: G.apply_repetition_penalty(_logits(), torch.tensor([1, 2]), 1.3),
                   "previous_ids")]),
    Fn("lmlib.generation.top_k_filter", valid=lambda: dict(logits=_logits(), k=3),
       args={"logits": Custom(BAD_LOGITS), "k": Int(min=1)}),
    Fn("lmlib.generation.top_p_filter", valid=lambda: dict(logits=_logits(), p=0.9),
       args={"logits": Custom(BAD_LOGITS), "p": Float(min=0.0, max=1.0, min_open=True)}),
    Fn("lmlib.generation.next_token_logits_to_probs",
       valid=lambda: dict(logits=_logits(), temperature=0.8, top_k=4, top_p=0.9),
       args={"logits": Custom(BAD_LOGITS), "temperature": Float(min=0.0, min_open=True),
             "top_k": Int(min=1, nullable=True), "top_p": Float(min=0.0, max=1.0, min_open=True, nullable=True)}),
    Fn("lmlib.generation.sample_next",
       valid=lambda: dict(logits=_logits(), do_sample=True, temperature=0.8, top_k=4, top_p=0.9,
                          generator=torch.Generator().manual_seed(0)),
       args={"logits": Custom(BAD_LOGITS + [("one_dim", _logits()[0]), ("three_dims", _logits()[None])]),
             "do_sample": Bool(), "temperature": Float(min=0.0),
             "top_k": Int(min=1, nullable=True), "top_p": Float(min=0.0, max=1.0, min_open=True, nullable=True),
             "generator": Custom([("int_seed", 0), ("str", "cpu")])},
       cases=[Case("greedy_nan", lambda: G.sample_next(_with(NAN, (0, 0)), do_sample=False), "NaN"),
              Case("greedy_bad_top_k", lambda: G.sample_next(_logits(), do_sample=False, top_k=0), "top_k")]),
    Fn("lmlib.generation.generate", valid=_gen_valid,
       args={"model": Custom([("not_a_module", lambda idx: idx), ("none", None)]),
             "idx": Tensor(dtype="int", skip=("too_few_dims",)),
             "max_new_tokens": Int(min=0),
             "temperature": Float(min=0.0), "top_k": Int(min=1, nullable=True),
             "top_p": Float(min=0.0, max=1.0, min_open=True, nullable=True),
             "do_sample": Bool(), "eos_id": Int(min=0, max=V - 1, nullable=True),
             "pad_id": Int(min=0, max=V - 1, nullable=True), "use_cache": Bool(),
             "generator": Custom([("int_seed", 0)]), "context": Str(choices=("slide", "error")),
             "repetition_penalty": Float(min=0.0, min_open=True)},
       cases=[
           Case("empty_prompt", lambda: G.generate(_model(), torch.zeros(1, 0, dtype=torch.long), 2), "empty"),
           Case("one_dim_prompt", lambda: G.generate(_model(), torch.tensor([1, 2]), 2), "idx"),
           Case("id_out_of_vocab", lambda: G.generate(_model(), torch.tensor([[1, V]]), 2), "idx"),
           Case("negative_id", lambda: G.generate(_model(), torch.tensor([[-1, 2]]), 2), "idx"),
           Case("greedy_top_k_0", _greedy(top_k=0), "top_k"),
           Case("greedy_top_p_1.5", _greedy(top_p=1.5), "top_p"),
           Case("greedy_nan_temperature", _greedy(temperature=NAN), "temperature"),
           Case("greedy_zero_repetition_penalty", _greedy(repetition_penalty=0.0), "repetition_penalty"),
           Case("greedy_inf_repetition_penalty", _greedy(repetition_penalty=INF), "repetition_penalty"),
           Case("eos_out_of_vocab", _greedy(eos_id=V), "eos_id"),
           Case("pad_out_of_vocab", _greedy(eos_id=0, pad_id=V + 3), "pad_id"),
           Case("context_error", lambda: G.generate(_model(), torch.tensor([[1, 2]]), 7, context="error"),
                "context window"),
           Case("nan_model_greedy", lambda: G.generate(_NaNModel(), torch.tensor([[1]]), 3, do_sample=False,
                                                       use_cache=False), "the model produced NaN"),
           Case("nan_model_sampling", lambda: G.generate(_NaNModel(), torch.tensor([[1]]), 3, use_cache=False),
                "the model produced NaN"),
           Case("no_cache_support", lambda: G.generate(_NaNModel(), torch.tensor([[1]]), 3), "new_kv_caches"),
       ]),
    Fn("lmlib.generation.generate_text",
       valid=lambda: dict(model=_model(), tokenizer=_Tok(), prompt="ab", max_new_tokens=2),
       args={"model": Custom([("not_a_module", lambda idx: idx), ("none", None)]),
             "tokenizer": Custom([("no_encode", object()), ("none", None)]),
             "prompt": Str(nonempty=True), "max_new_tokens": Int(min=0)},
       cases=[Case("bad_option", lambda: G.generate_text(_model(), _Tok(), "ab", 2, top_k=0), "top_k"),
              Case("bad_penalty", lambda: G.generate_text(_model(), _Tok(), "ab", 2, repetition_penalty=-1.0),
                   "repetition_penalty")]),
]

test_bad_input = make_test(SPECS)


def test_greedy_and_sampled_tokens_unchanged_by_the_checks():
    """generate's tokens equal an independent loop over model + argmax / multinomial."""
    m, idx = _model(), torch.tensor([[1, 2, 3]])
    out = G.generate(m, idx, 3, do_sample=False, use_cache=False)
    ref = idx
    for _ in range(3):
        ref = torch.cat([ref, m(ref)[0][:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, ref)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    out = G.generate(m, idx, 3, temperature=0.7, top_k=5, generator=g1, use_cache=False)
    ref = idx
    for _ in range(3):
        logits = m(ref)[0][:, -1].float() / 0.7
        logits = logits.masked_fill(logits < torch.topk(logits, 5).values[..., -1:], -INF)
        ref = torch.cat([ref, torch.multinomial(torch.softmax(logits, -1), 1, generator=g2)], 1)
    assert torch.equal(out, ref)
