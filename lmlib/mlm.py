"""The course's small BERT, pretrained with the masked-language-model objective (chapter 6).

:func:`course_bert` returns the encoder and its tokenizer, trained once from
:data:`COURSE_BERT_RECIPE` and afterwards loaded from the cache of :mod:`lmlib.pretrained`
(keyed by the recipe's hash, like the chapter-5 GPT).

The tokenizer is a byte-level BPE (:class:`lmlib.tokenizers.BPETokenizer`) learned from the
training plays, with four special tokens ``[PAD] [MASK] [CLS] [SEP]``: sub-word tokens make the
fill-in-the-blank demonstration meaningful (one token is often a whole word) and keep sequences
short. It is cached next to the weights.

Data: random windows of ``seq_len - 2`` tokens of the training plays' token stream, wrapped in
``[CLS] ... [SEP]`` and masked with the BERT rule (:func:`lmlib.masking.mlm_window_batches`);
the loss is computed at the selected positions only (:class:`lmlib.masking.MaskedPositionsMLM`).
Evaluation: masked-token loss and accuracy on fixed batches of the validation plays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from lmlib.training import History

__all__ = ["SPECIAL_TOKENS", "COURSE_BERT_RECIPE", "CourseBERT", "bert_tokenizer", "bert_config",
           "course_bert", "encode_plays"]

SPECIAL_TOKENS = ("[PAD]", "[MASK]", "[CLS]", "[SEP]")

#: Sized to train in about a minute on two CPU cores; see ``FULL_RUN`` in chapter 6.
COURSE_BERT_RECIPE: dict[str, Any] = {
    "version": 1,
    "tokenizer": {"vocab_size": 1024, "split_seed": 0},
    "model": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 512,
              "max_position_embeddings": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "data": {"seq_len": 64, "batch_size": 16, "mask_prob": 0.15, "eval_batches": 4, "eval_batch_size": 64},
    "train": {"max_steps": 1500, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 25, "weight_decay": 0.01,
              "betas": [0.9, 0.98], "grad_clip": 1.0, "eval_interval": 250, "seed": 0},
}


def bert_tokenizer(vocab_size: int = 1024, split_seed: int = 0, *, cache: str | Path | None = None):
    """The BPE tokenizer of the course BERT, learned from the training plays (cached as JSON)."""
    from lmlib.data import split_plays
    from lmlib.pretrained import cache_dir
    from lmlib.tokenizers import BPETokenizer

    folder = Path(cache) if cache is not None else cache_dir()
    path = folder / f"bert-bpe-v{vocab_size}-s{split_seed}.json"
    if path.exists():
        try:
            tok = BPETokenizer.load(path)
            if tuple(tok.special_tokens) == SPECIAL_TOKENS and tok.vocab_size == vocab_size:
                return tok
        except ValueError:
            pass  # a corrupt file: learn it again
    tok = BPETokenizer.train(split_plays(split_seed).text("train"), vocab_size, special_tokens=SPECIAL_TOKENS)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tok.save(tmp)
    tmp.replace(path)
    return tok


def bert_config(recipe: Mapping[str, Any], tokenizer):
    from lmlib.bert import BertConfig

    return BertConfig(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.special_tokens["[PAD]"],
                      **recipe["model"])


def encode_plays(tokenizer, plays) -> torch.Tensor:
    """The token ids of some plays' text as one 1-D long tensor."""
    from lmlib.data import corpus_text

    return torch.tensor(tokenizer.encode(corpus_text(list(plays)), allowed_special="none"), dtype=torch.long)


@dataclass
class CourseBERT:
    model: nn.Module            # BertForMaskedLM (``.bert`` is the encoder)
    tokenizer: Any
    history: History | None
    results: dict
    recipe: dict
    path: Path
    from_cache: bool
    batch_kwargs: dict = field(repr=False, default_factory=dict)  # ids for mlm_window_batches


def course_bert(recipe: Mapping[str, Any] | None = None, *, progress: bool = True, retrain: bool = False,
                verbose: bool = True, cache: str | Path | None = None) -> CourseBERT:
    """The chapter-6 BERT (``BertForMaskedLM``) and its tokenizer; trained and cached on first use.

    ``recipe`` overrides parts of :data:`COURSE_BERT_RECIPE` (e.g. ``{"train": {"max_steps": 3000}}``).
    ``results`` holds the final held-out masked-token loss and accuracy.
    """
    from lmlib.bert import BertForMaskedLM
    from lmlib.data import split_plays
    from lmlib.masking import MaskedPositionsMLM, evaluate_mlm, mlm_window_batches
    from lmlib.pretrained import cached_model, merge_recipe
    from lmlib.training import TrainConfig, train

    full = merge_recipe(COURSE_BERT_RECIPE, recipe or {})
    tok = bert_tokenizer(full["tokenizer"]["vocab_size"], full["tokenizer"]["split_seed"], cache=cache)
    sp = tok.special_tokens
    d = full["data"]
    kw = dict(seq_len=d["seq_len"], cls_id=sp["[CLS]"], sep_id=sp["[SEP]"], pad_id=sp["[PAD]"],
              mask_id=sp["[MASK]"], vocab_size=tok.vocab_size, mask_prob=d["mask_prob"])
    cfg = bert_config(full, tok)

    def fit(model: nn.Module):
        split = split_plays(full["tokenizer"]["split_seed"])
        train_ids, val_ids = encode_plays(tok, split.train), encode_plays(tok, split.val)
        get_batch = mlm_window_batches(train_ids, batch_size=d["batch_size"], **kw)
        g = torch.Generator().manual_seed(1234)
        val_get = mlm_window_batches(val_ids, batch_size=d["eval_batch_size"], **kw)
        val_batches = [val_get(g) for _ in range(d["eval_batches"])]
        eval_fn = lambda m: {f"val {k}": v for k, v in evaluate_mlm(m, val_batches).items()}  # noqa: E731
        history = train(MaskedPositionsMLM(model), get_batch,
                        TrainConfig(**full["train"], progress=progress, desc="MLM pretraining"), eval_fn=eval_fn)
        return history, {"val_loss": history.last("val loss"), "val_accuracy": history.last("val accuracy")}

    res = cached_model("course-bert", full, build=lambda: BertForMaskedLM(cfg), fit=fit,
                       seed=full["train"].get("seed", 0), retrain=retrain, verbose=verbose, cache=cache)
    res.model.eval()
    return CourseBERT(res.model, tok, res.history, res.results, full, res.path, res.from_cache, kw)
