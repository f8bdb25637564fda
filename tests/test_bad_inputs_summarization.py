"""Bad-input cases of lmlib.summarization (see tests/badinput.py)."""

import functools

import torch

from badinput import Bool, Case, Custom, Fn, Int, Seq, Str, make_test
from lmlib import summarization as S
from lmlib.data import load_play
from lmlib.transformer import Transformer, TransformerConfig


class WordTok:
    """Words w0..w9 and three specials (10, 11, 12)."""
    vocab_size = 13

    def encode(self, text):
        return [int(w[1:]) for w in text.split()]

    def decode(self, ids):
        return " ".join(f"w{i}" for i in ids)


def _codec():
    return S.TextCodec(WordTok(), pad_id=10, bos_id=11, eos_id=12)


def _model(max_len=8):
    torch.manual_seed(0)
    return Transformer(TransformerConfig(13, 13, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                                         d_ff=16, dropout=0.0, max_len=max_len))


@functools.lru_cache(maxsize=1)
def _bert():
    from lmlib import zoo
    return zoo.load("bert-mlm")


def _state(kwargs):
    model = kwargs.get("model")
    return {k: v.clone() for k, v in model.state_dict().items()} if isinstance(model, torch.nn.Module) else None


PAIR = S.EntrancePair("hamlet", "I", "I", "Enter A", ("A:\nhello", "B:\nthere"), ("A", "B"))
UNITS = ["A:\nhello", "B:\nthere"]
BAD_UNITS = Custom([("str_for_list", "A:\nhello"), ("int", 3), ("empty", []), ("int_item", ["A:\nx", 3]),
                    ("none", None)])
BAD_MODEL = Custom([("config", TransformerConfig(13, 13, d_model=8, n_heads=2)), ("str", "model"), ("none", None)])
BAD_CODEC = Custom([("tokenizer", WordTok()), ("str", "bpe"), ("none", None)])
SRC = ["w1 w2 w3", "w4 w5"]


def _train_valid():
    return dict(model=_model(), codec=_codec(), sources=list(SRC), targets=["w1", "w4"], steps=2, batch_size=2,
                lr=1e-3, warmup_steps=1, seed=0, progress=False)


SPECS = [
    Fn("lmlib.summarization.entrance_pairs", valid=lambda: dict(play="hamlet", max_speeches=2),
       args={"play": Custom([("int", 3), ("unknown", "no-such-play"), ("none", None)]),
             "max_speeches": Int(min=1)},
       aliases={"play": ["play", "unknown play"]}),
    Fn("lmlib.summarization.source_units", valid=lambda: dict(pair=PAIR, max_chars=10),
       args={"pair": Custom([("tuple", ("Enter A", ("A:\nx",))), ("play", load_play("hamlet")), ("none", None)]),
             "max_chars": Int(min=1)}),
    Fn("lmlib.summarization.lead_summary", valid=lambda: dict(units=list(UNITS)), args={"units": BAD_UNITS}),
    Fn("lmlib.summarization.cue_summary", valid=lambda: dict(units=list(UNITS), max_names=1),
       args={"units": BAD_UNITS, "max_names": Int(min=1, skip=("none",))}),
    Fn("lmlib.summarization.rouge_tokens", valid=lambda: dict(text="Enter HAMLET"),
       args={"text": Str()}),
    Fn("lmlib.summarization.rouge_scores", valid=lambda: dict(candidates=["Enter A"], references=["Enter A and B"]),
       args={"candidates": Seq(nonempty=True), "references": Seq(nonempty=True)},
       cases=[Case("different_lengths", lambda: S.rouge_scores(["a", "b"], ["a"]), "references"),
              Case("int_item", lambda: S.rouge_scores([1], ["a"]), "candidates")]),
    Fn("lmlib.summarization.oracle_extract", valid=lambda: dict(units=list(UNITS), reference="Enter A", metric="rouge1"),
       args={"units": BAD_UNITS, "reference": Str(), "metric": Str(choices=S.ROUGE_TYPES)}),
    Fn("lmlib.summarization.bert_embeddings", valid=lambda: dict(zm=_bert(), texts=["A:\nhello"], batch_size=2),
       args={"zm": Custom([("model_only", torch.nn.Linear(2, 2)), ("str", "bert-mlm"), ("none", None)]),
             "texts": Seq(nonempty=True), "batch_size": Int(min=1)},
       cases=[Case("gpt_zoo_model", lambda: S.bert_embeddings(__import__("lmlib.zoo").zoo.load("gpt-char"), ["x"]),
                   "zm")]),
    Fn("lmlib.summarization.centroid_extract", valid=lambda: dict(embeddings=torch.eye(3)),
       args={"embeddings": Custom([("list", [[1.0, 0.0]]), ("one_dim", torch.ones(3)), ("empty", torch.ones(0, 3)),
                                   ("int", torch.ones(2, 3, dtype=torch.long)),
                                   ("nan", torch.tensor([[1.0, float("nan")]])), ("none", None)])}),
    Fn("lmlib.summarization.TextCodec", valid=lambda: dict(tokenizer=WordTok(), pad_id=10, bos_id=11, eos_id=12),
       args={"tokenizer": Custom([("str", "bpe"), ("no_decode", type("T", (), {"encode": lambda self, t: []})()),
                                  ("none", None)]),
             "pad_id": Int(min=0), "bos_id": Int(min=0), "eos_id": Int(min=0)},
       cases=[Case("same_ids", lambda: S.TextCodec(WordTok(), pad_id=10, bos_id=10, eos_id=12), "pad_id")]),
    Fn("lmlib.summarization.TextCodec.from_zoo", call=lambda zm: S.TextCodec.from_zoo(zm),
       valid=lambda: dict(zm=_bert()),
       args={"zm": Custom([("str", "bert-mlm"), ("tokenizer", WordTok()), ("none", None)])},
       cases=[Case("char_zoo_model", lambda: S.TextCodec.from_zoo(__import__("lmlib.zoo").zoo.load("gpt-char")),
                   "zm")]),
    Fn("lmlib.summarization.TextCodec.encode", call=lambda text: _codec().encode(text), valid=lambda: dict(text="w1"),
       args={"text": Str()}),
    Fn("lmlib.summarization.TextCodec.decode", call=lambda ids: _codec().decode(ids), valid=lambda: dict(ids=[1, 12]),
       args={"ids": Custom([("str", "w1"), ("float_item", [1.5]), ("int", 3), ("none", None)])}),
    Fn("lmlib.summarization.TextCodec.batch", call=lambda texts, add_eos: _codec().batch(texts, add_eos=add_eos),
       valid=lambda: dict(texts=["w1"], add_eos=True), args={"texts": Seq(nonempty=True), "add_eos": Bool()}),
    Fn("lmlib.summarization.train_summarizer", valid=_train_valid, snapshot=_state,
       args={"model": BAD_MODEL, "codec": BAD_CODEC,
             "sources": Custom([("str_for_list", "w1"), ("empty", []), ("empty_text", ["w1", ""]),
                                ("too_long", ["w1 " * 9, "w2"]), ("none", None)]),
             "targets": Custom([("str_for_list", "w1"), ("fewer", ["w1"]), ("too_long", ["w1 " * 8, "w2"]),
                                ("none", None)]),
             "steps": Int(min=1), "batch_size": Int(min=1), "lr": Custom([("zero", 0.0), ("nan", float("nan")),
                                                                          ("str", "1e-3"), ("none", None)]),
             "warmup_steps": Int(min=0), "seed": Int(min=0), "progress": Bool()},
       aliases={"targets": ["targets", "sources"]}),
    Fn("lmlib.summarization.summarize", valid=lambda: dict(model=_model(), codec=_codec(), sources=list(SRC),
                                                           max_new_tokens=3, batch_size=1), snapshot=_state,
       args={"model": BAD_MODEL, "codec": BAD_CODEC,
             "sources": Custom([("str_for_list", "w1"), ("empty", []), ("too_long", ["w1 " * 9]), ("none", None)]),
             "max_new_tokens": Int(min=1, max=7), "batch_size": Int(min=1)}),
]

EXEMPT = {"lmlib.summarization.EntrancePair": "a frozen record built by entrance_pairs; it holds data, it checks nothing"}

test_bad_input = make_test(SPECS)
