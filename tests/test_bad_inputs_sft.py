"""Bad-input cases of lmlib.sft (see tests/badinput.py)."""

import torch

from badinput import Case, Custom, Fn, Int, Seq, Str, make_test
from lmlib.gpt import GPT, GPTConfig
from lmlib.sft import collate_sft, exact_match, greedy_complete, sft_example

V = 12
IDS = [("str", "abc"), ("int", 3), ("floats", [1.5, 2.0]), ("bools", [True, False]), ("negative", [1, -2]),
       ("float_tensor", torch.tensor([1.0, 2.0])), ("two_dim", torch.tensor([[1, 2]])), ("none", None)]


def _model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()


def _encode(text):
    return [ord(c) % V for c in text]


def _decode(ids):
    return "".join(chr(97 + i) for i in ids)


PAIRS = [("pair_not_tuple", [[1, 2]]), ("pair_of_three", [([1], [2], [3])]), ("str", "abc"), ("int", 3),
         ("bad_ids", [([1, "x"], [2])]), ("none", None)]

SPECS = [
    Fn("lmlib.sft.sft_example", valid=lambda: dict(prompt_ids=[1, 2, 3], response_ids=[4, 5], block_size=8),
       args={"prompt_ids": Custom(IDS), "response_ids": Custom(IDS), "block_size": Int(min=1)},
       cases=[Case("empty_prompt", lambda: sft_example([], [1], block_size=4), "prompt is empty"),
              Case("empty_response", lambda: sft_example([1], [], block_size=4), "response is empty"),
              Case("prompt_fills_window", lambda: sft_example([1, 2, 3, 4], [5], block_size=4), "context window"),
              Case("too_long", lambda: sft_example([1, 2], [3, 4, 5, 6], block_size=4), "block_size")]),
    Fn("lmlib.sft.collate_sft", valid=lambda: dict(pairs=[([1, 2], [3]), ([4], [5, 6])], pad_id=0, block_size=8),
       args={"pairs": Custom(PAIRS), "pad_id": Int(min=0), "block_size": Int(min=1)},
       cases=[Case("empty", lambda: collate_sft([], pad_id=0, block_size=4), "empty list"),
              Case("second_pair_too_long", lambda: collate_sft([([1], [2]), ([1] * 5, [2])], pad_id=0,
                                                               block_size=4), "pair 1")]),
    Fn("lmlib.sft.sft_batches", valid=lambda: dict(pairs=[([1, 2], [3]), ([4], [5, 6])], batch_size=2, pad_id=0,
                                                    block_size=8),
       args={"pairs": Custom(PAIRS + [("empty", [])]), "batch_size": Int(min=1), "pad_id": Int(min=0),
             "block_size": Int(min=1)}, aliases={"pairs": ["no SFT pairs"]}),
    Fn("lmlib.sft.greedy_complete",
       valid=lambda: dict(model=_model(), prompt_ids=[1, 2], max_new_tokens=3, stop_ids=[0]),
       args={"model": Custom([("module_without_config", torch.nn.Linear(2, 2)), ("str", "gpt"), ("none", None)]),
             "prompt_ids": Custom(IDS + [("out_of_vocab", [1, V])]), "max_new_tokens": Int(min=0),
             "stop_ids": Seq()},
       aliases={"prompt_ids": ["prompt"]},
       cases=[Case("empty_prompt", lambda: greedy_complete(_model(), [], max_new_tokens=1), "prompt is empty"),
              Case("prompt_too_long", lambda: greedy_complete(_model(), list(range(8)), max_new_tokens=1),
                   "context window")]),
    Fn("lmlib.sft.exact_match",
       valid=lambda: dict(model=_model(), encode=_encode, decode=_decode, pairs=[("ab", "c")], stop="\n",
                          max_new_tokens=2),
       args={"model": Custom([("module_without_config", torch.nn.Linear(2, 2)), ("none", None)]),
             "encode": Custom([("str", "enc"), ("none", None)]), "decode": Custom([("int", 3), ("none", None)]),
             "pairs": Custom([("str", "ab"), ("pair_of_ints", [(1, 2)]), ("triple", [("a", "b", "c")]),
                              ("none", None)]),
             "stop": Str(), "max_new_tokens": Int(min=0)},
       cases=[Case("empty", lambda: exact_match(_model(), _encode, _decode, []), "at least one pair")]),
]


# --- chat template, growing the vocabulary, ranking answers ---------------------------------

from lmlib import sft as S  # noqa: E402
from lmlib.tokenizers import CharTokenizer  # noqa: E402

TOK = CharTokenizer(list("abcdefghij"))       # 10 ids


class _NoVocab:
    def encode(self, text):
        return [ord(c) % 7 for c in text]


def _chat():
    return S.ChatTemplate(TOK, 10)


def _state(kw):
    m = kw.get("gpt", kw.get("model"))
    return {k: v.clone() for k, v in m.state_dict().items()} if isinstance(m, torch.nn.Module) else None


def _gpt10():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8))


GPTS = Custom([("str", "gpt"), ("none", None), ("linear", torch.nn.Linear(2, 2)), ("int", 3)])
ID_LISTS = [("str", "abc"), ("int", 3), ("empty", []), ("none", None), ("flat_ids", [1, 2]),
            ("float_ids", [[1.5, 2.0]]), ("negative", [[1, -1]]), ("out_of_vocab", [[1, V]]), ("empty_item", [[1], []]),
            ("strs", ["ab"])]

SPECS += [
    Fn("lmlib.sft.ChatTemplate", valid=lambda: dict(tokenizer=TOK, first_id=10),
       args={"tokenizer": Custom([("str", "tok"), ("none", None), ("int", 3)]), "first_id": Int(min=0)},
       cases=[Case("collides_with_text", lambda: S.ChatTemplate(TOK, 8), "first_id")]),
    Fn("lmlib.sft.ChatTemplate.prompt", valid=lambda: dict(text="abc"), call=lambda text: _chat().prompt(text),
       args={"text": Str()}),
    Fn("lmlib.sft.ChatTemplate.response", valid=lambda: dict(text="abc"), call=lambda text: _chat().response(text),
       args={"text": Str(nonempty=True)}),
    Fn("lmlib.sft.ChatTemplate.pair", valid=lambda: dict(prompt="ab", response="c"),
       call=lambda prompt, response: _chat().pair(prompt, response),
       args={"prompt": Str(), "response": Str(nonempty=True)}, aliases={"prompt": ["text"], "response": ["text"]}),
    Fn("lmlib.sft.grow_vocabulary", valid=lambda: dict(gpt=_gpt10(), n_new=3),
       args={"gpt": GPTS, "n_new": Int(min=1)}, snapshot=_state),
    Fn("lmlib.sft.add_chat_tokens", valid=lambda: dict(gpt=_gpt10(), tokenizer=TOK),
       args={"gpt": GPTS, "tokenizer": Custom([("str", "tok"), ("none", None), ("no_vocab_size", _NoVocab())])},
       snapshot=_state,
       cases=[Case("vocab_mismatch", lambda: S.add_chat_tokens(_model(), TOK), "tokenizer")]),
    Fn("lmlib.sft.rank_responses",
       valid=lambda: dict(model=_model(), prompt_ids=[[1, 2], [3]], candidates=[[4], [5, 6]], batch_size=2),
       args={"model": Custom([("module_without_config", torch.nn.Linear(2, 2)), ("str", "gpt"), ("none", None)]),
             "prompt_ids": Custom(ID_LISTS), "candidates": Custom(ID_LISTS), "batch_size": Int(min=1)},
       aliases={"prompt_ids": ["prompts"], "candidates": ["candidates"]}, snapshot=_state,
       cases=[Case("too_long", lambda: S.rank_responses(_model(), [[1] * 6], [[2] * 4]), "context window")]),
]

test_bad_input = make_test(SPECS)
