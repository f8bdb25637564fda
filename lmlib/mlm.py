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
from lmlib.validation import check_int, check_path, check_sequence

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

    check_int("vocab_size", vocab_size, min=256 + len(SPECIAL_TOKENS), who="bert_tokenizer")
    check_int("split_seed", split_seed, who="bert_tokenizer")
    folder = check_path("cache", cache, who="bert_tokenizer") if cache is not None else cache_dir()
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
    """The ``BertConfig`` of a full recipe's ``"model"`` section, sized for ``tokenizer``."""
    from lmlib.bert import BertConfig
    from lmlib.tokenizers import Tokenizer

    _check_bert_recipe(recipe, where="bert_config: recipe")
    if not isinstance(tokenizer, Tokenizer) or "[PAD]" not in tokenizer.special_tokens:
        raise TypeError(f"bert_config: tokenizer must be an lmlib tokenizer with a [PAD] token, got {tokenizer!r:.80}")

    return BertConfig(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.special_tokens["[PAD]"],
                      **recipe["model"])


def encode_plays(tokenizer, plays) -> torch.Tensor:
    """The token ids of some plays' text as one 1-D long tensor."""
    from lmlib.data import corpus_text
    from lmlib.tokenizers import Tokenizer

    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"encode_plays: tokenizer must be an lmlib tokenizer, got {type(tokenizer).__name__}")
    check_sequence("plays", plays)
    return torch.tensor(tokenizer.encode(corpus_text(list(plays)), allowed_special="none"), dtype=torch.long)


def _check_bert_recipe(recipe: Mapping[str, Any], *, where: str) -> None:
    """A full course-BERT recipe: known sections and settings, and a valid training section."""
    import dataclasses

    from lmlib.bert import BertConfig
    from lmlib.pretrained import _RUN_FIELDS, _check_recipe
    from lmlib.training import TrainConfig

    if not isinstance(recipe, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(recipe).__name__}")
    allowed = {"tokenizer": set(COURSE_BERT_RECIPE["tokenizer"]), "data": set(COURSE_BERT_RECIPE["data"]),
               "model": {f.name for f in dataclasses.fields(BertConfig)} - {"vocab_size", "pad_token_id"},
               "train": {f.name for f in dataclasses.fields(TrainConfig)} - _RUN_FIELDS}
    _check_recipe(recipe, allowed, where=where)
    for k in ("vocab_size", "split_seed"):
        check_int(f"tokenizer.{k}", recipe["tokenizer"].get(k), min=256 + len(SPECIAL_TOKENS) if k == "vocab_size" else None,
                  who=where)
    for k in ("seq_len", "batch_size", "eval_batches", "eval_batch_size"):
        check_int(f"data.{k}", recipe["data"].get(k), min=3 if k == "seq_len" else 1, who=where)
    try:
        TrainConfig(**recipe["train"])
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: section 'train': {exc}") from None


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
    from lmlib.pretrained import cached_model
    from lmlib.training import TrainConfig, train

    full = _full_recipe(recipe, progress, retrain, verbose, cache)  # COURSE_BERT_RECIPE + overrides, checked
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


def _full_recipe(recipe, progress, retrain, verbose, cache) -> dict[str, Any]:
    """The arguments of :func:`course_bert` checked, and :data:`COURSE_BERT_RECIPE` with the
    ``recipe`` overrides (unknown sections or settings are refused, naming the known ones)."""
    from lmlib.pretrained import _check_course_model_args, merge_recipe

    _check_course_model_args(recipe, progress, retrain, verbose, cache, who="course_bert")
    full = merge_recipe(COURSE_BERT_RECIPE, recipe or {})
    _check_bert_recipe(full, where="course_bert: recipe")
    return full
