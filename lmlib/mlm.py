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
from lmlib.validation import check_bool, check_float, check_int, check_path, check_sequence

__all__ = ["SPECIAL_TOKENS", "COURSE_BERT_RECIPE", "CourseBERT", "bert_tokenizer", "bert_config",
           "course_bert", "encode_plays", "batch_kwargs", "train_mlm", "heldout_mlm"]

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
    from lmlib.pretrained import cached_model

    full = _full_recipe(recipe, progress, retrain, verbose, cache)  # COURSE_BERT_RECIPE + overrides, checked
    tok = bert_tokenizer(full["tokenizer"]["vocab_size"], full["tokenizer"]["split_seed"], cache=cache)
    kw = batch_kwargs(tok, full)
    cfg = bert_config(full, tok)

    def fit(model: nn.Module):
        split = split_plays(full["tokenizer"]["split_seed"])
        history = train_mlm(model, tok, full, encode_plays(tok, split.train), encode_plays(tok, split.val),
                            progress=progress)
        return history, {"val_loss": history.last("val loss"), "val_accuracy": history.last("val accuracy")}

    res = cached_model("course-bert", full, build=lambda: BertForMaskedLM(cfg), fit=fit,
                       seed=full["train"].get("seed", 0), retrain=retrain, verbose=verbose, cache=cache)
    res.model.eval()
    return CourseBERT(res.model, tok, res.history, res.results, full, res.path, res.from_cache, kw)


def batch_kwargs(tokenizer, recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`lmlib.masking.mlm_window_batches` for a recipe: window
    length, special-token ids, vocabulary size and mask rate."""
    _check_bert_tokenizer(tokenizer, who="batch_kwargs")
    _check_bert_recipe(recipe, where="batch_kwargs: recipe")
    sp = tokenizer.special_tokens
    d = recipe["data"]
    return dict(seq_len=d["seq_len"], cls_id=sp["[CLS]"], sep_id=sp["[SEP]"], pad_id=sp["[PAD]"],
                mask_id=sp["[MASK]"], vocab_size=tokenizer.vocab_size, mask_prob=d["mask_prob"])


def train_mlm(model: nn.Module, tokenizer, recipe: Mapping[str, Any], train_ids: torch.Tensor,
              val_ids: torch.Tensor, *, progress: bool = True, stop_after: int | None = None) -> History:
    """Pretrain a ``BertForMaskedLM`` in place with masked-language modelling, as ``recipe`` says:
    random masked windows of ``train_ids``; masked-token loss and accuracy on ``eval_batches``
    fixed masked batches of ``val_ids`` every ``eval_interval`` steps."""
    from lmlib.masking import MaskedPositionsMLM, evaluate_mlm, mlm_window_batches
    from lmlib.training import TrainConfig, train

    _check_mlm_args(model, tokenizer, recipe, {"train_ids": train_ids, "val_ids": val_ids}, who="train_mlm")
    check_bool("progress", progress, who="train_mlm")
    if stop_after is not None:
        check_int("stop_after", stop_after, min=1, who="train_mlm")
    d, kw = recipe["data"], batch_kwargs(tokenizer, recipe)
    get_batch = mlm_window_batches(train_ids, batch_size=d["batch_size"], **kw)
    g = torch.Generator().manual_seed(1234)
    val_get = mlm_window_batches(val_ids, batch_size=d["eval_batch_size"], **kw)
    val_batches = [val_get(g) for _ in range(d["eval_batches"])]
    eval_fn = lambda m: {f"val {k}": v for k, v in evaluate_mlm(m, val_batches).items()}  # noqa: E731
    return train(MaskedPositionsMLM(model), get_batch,
                 TrainConfig(**recipe["train"], progress=progress, desc="MLM pretraining"), eval_fn=eval_fn,
                 stop_after=stop_after)


@torch.no_grad()
def heldout_mlm(model: nn.Module, tokenizer, recipe: Mapping[str, Any], ids: torch.Tensor, *,
                n_batches: int = 64, batch_size: int = 64, seed: int = 4321, mask_prob: float = 0.15
                ) -> dict[str, float]:
    """Masked-token metrics of a ``BertForMaskedLM`` on ``n_batches`` fixed masked batches of
    ``ids``: windows of the recipe's length, masked at rate ``mask_prob`` with the BERT 80/10/10
    rule. The rate is fixed (not the recipe's training rate) so that models trained with
    different rates are scored on the same task.

    Returns the loss and accuracy over all selected positions, and the accuracy at each kind of
    selected position: ``mask_accuracy`` (the input is ``[MASK]``), ``random_accuracy`` (a
    random token was put there), ``kept_accuracy`` (the input is the original token), and
    ``unigram_mask_accuracy``: how often the most frequent token of ``ids`` is right at the
    ``[MASK]`` positions, the baseline of a model that ignores the context."""
    from lmlib.masking import IGNORE_INDEX, mlm_window_batches

    _check_mlm_args(model, tokenizer, recipe, {"ids": ids}, who="heldout_mlm")
    check_int("n_batches", n_batches, min=1, who="heldout_mlm")
    check_int("batch_size", batch_size, min=1, who="heldout_mlm")
    check_int("seed", seed, min=0, max=2**63 - 1, who="heldout_mlm")
    check_float("mask_prob", mask_prob, min=0.0, max=1.0, min_open=True, who="heldout_mlm")
    kw = dict(batch_kwargs(tokenizer, recipe), mask_prob=mask_prob)
    get = mlm_window_batches(ids, batch_size=batch_size, **kw)
    g = torch.Generator().manual_seed(seed)
    most_frequent = int(torch.bincount(ids.long(), minlength=tokenizer.vocab_size).argmax())
    was = model.training
    model.eval()
    loss, n = 0.0, 0
    hits = {"mask": [0, 0], "random": [0, 0], "kept": [0, 0], "unigram_mask": [0, 0]}
    try:
        for _ in range(n_batches):
            b = get(g)
            sel = b["labels"] != IGNORE_INDEX
            hidden, _ = model.bert(b["input_ids"], b.get("token_type_ids"), b.get("attention_mask"))
            logits = model.mlm_head(hidden[sel])                            # (N, V)
            target, given = b["labels"][sel], b["input_ids"][sel]
            loss += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            n += len(target)
            right = logits.argmax(-1) == target
            kinds = {"mask": given == kw["mask_id"], "kept": given == target}
            kinds["random"] = ~kinds["mask"] & ~kinds["kept"]
            kinds["unigram_mask"] = kinds["mask"]
            for k, where in kinds.items():
                r = (target == most_frequent) if k == "unigram_mask" else right
                hits[k][0] += int(r[where].sum())
                hits[k][1] += int(where.sum())
    finally:
        model.train(was)
    out = {"loss": loss / n, "accuracy": sum(hits[k][0] for k in ("mask", "random", "kept")) / n, "positions": n}
    for k, (h, c) in hits.items():
        out[f"{k}_accuracy"] = h / max(c, 1)
    return out


def _check_bert_tokenizer(tokenizer: Any, *, who: str) -> None:
    from lmlib.tokenizers import Tokenizer

    if not isinstance(tokenizer, Tokenizer) or not set(SPECIAL_TOKENS) <= set(tokenizer.special_tokens):
        raise TypeError(f"{who}: tokenizer must be an lmlib tokenizer with the special tokens {list(SPECIAL_TOKENS)}, "
                        f"got {tokenizer!r:.80}")


def _check_mlm_args(model: Any, tokenizer: Any, recipe: Any, ids: dict[str, Any], *, who: str) -> None:
    from lmlib.bert import BertForMaskedLM
    from lmlib.validation import check_ids, check_instance

    check_instance("model", model, BertForMaskedLM, "a BertForMaskedLM", who=who)
    _check_bert_tokenizer(tokenizer, who=who)
    _check_bert_recipe(recipe, where=f"{who}: recipe")
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{who}: model has {model.config.vocab_size} tokens, tokenizer {tokenizer.vocab_size}")
    for name, value in ids.items():
        check_ids(name, value, tokenizer.vocab_size, dims=1, who=who)
        if len(value) < recipe["data"]["seq_len"]:
            raise ValueError(f"{who}: {name} has {len(value)} tokens, fewer than one window of "
                             f"{recipe['data']['seq_len']}")


def _full_recipe(recipe, progress, retrain, verbose, cache) -> dict[str, Any]:
    """The arguments of :func:`course_bert` checked, and :data:`COURSE_BERT_RECIPE` with the
    ``recipe`` overrides (unknown sections or settings are refused, naming the known ones)."""
    from lmlib.pretrained import _check_course_model_args, merge_recipe

    _check_course_model_args(recipe, progress, retrain, verbose, cache, who="course_bert")
    full = merge_recipe(COURSE_BERT_RECIPE, recipe or {})
    _check_bert_recipe(full, where="course_bert: recipe")
    return full
