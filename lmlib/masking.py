"""Masked-language-model (MLM) corruption and batching, as in BERT.

BERT learns by repairing text: a random 15 % of the tokens of every sequence are *selected*;
of the selected tokens 80 % are replaced by ``[MASK]``, 10 % by a random token and 10 % are left
unchanged. The model sees the corrupted sequence and is asked for the original token at the
selected positions only; every other position gets the label ``-100``, the value that
``torch.nn.functional.cross_entropy(..., ignore_index=-100)`` skips.

Why the 10 % / 10 %? If the model only ever had to predict at ``[MASK]`` positions it could
ignore every real token it sees; leaving some selected tokens unchanged (and swapping some for a
random token) forces it to build a useful representation of *every* position.

Functions
---------
``mask_tokens(input_ids, mask_id=..., vocab_size=..., ...) -> (corrupted, labels)``
    The corruption rule on a ``(B, T)`` (or any-shaped) tensor of ids.
``mlm_window_batches(ids, seq_len=..., batch_size=..., ...) -> get_batch(generator)``
    Random windows of a token stream, wrapped in ``[CLS] ... [SEP]`` and masked, for
    :func:`lmlib.training.train`.
``MaskedPositionsMLM(mlm_model)``
    The same loss as ``BertForMaskedLM``, computing the vocabulary projection only at the
    selected positions (about 15 % of the work of the output layer).
``evaluate_mlm(model, batches) -> {"loss", "accuracy"}``
    Held-out masked-token loss and accuracy (accuracy = top-1 prediction equals the original).
``collate_mlm(sequences, pad_id=..., mask_id=..., vocab_size=..., ...) -> MLMBatch``
    Lists of token ids -> a padded, masked batch with ``attention_mask`` and ``labels``.
``MLMBatch``
    ``input_ids, attention_mask, token_type_ids, labels`` (all ``(B, T)`` long tensors), with
    ``.as_kwargs()`` for ``BertForMaskedLM(**batch.as_kwargs())``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from lmlib.validation import check_device, check_float, check_ids, check_instance, check_int, check_sequence, check_str, check_tensor

__all__ = ["IGNORE_INDEX", "mask_tokens", "MLMBatch", "collate_mlm", "pad_sequences", "mlm_window_batches",
           "MaskedPositionsMLM", "evaluate_mlm"]

IGNORE_INDEX = -100  # the label cross_entropy skips


def _check_prob(name: str, p: float) -> float:
    check_float(name, p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return p


def _check_token_id(name: str, value: int | None, vocab_size: int, *, nullable: bool = False) -> int | None:
    """A single token id in ``0..vocab_size-1`` (an int, never a float such as ``1.5``)."""
    if value is None and nullable:
        return None
    check_int(name, value)
    if not 0 <= value < vocab_size:
        raise ValueError(f"{name} {value} is outside the vocabulary 0..{vocab_size - 1}")
    return value


def _check_probs(mask_prob: float, replace_with_mask: float, replace_with_random: float) -> None:
    _check_prob("mask_prob", mask_prob)
    _check_prob("replace_with_mask", replace_with_mask)
    _check_prob("replace_with_random", replace_with_random)
    if replace_with_mask + replace_with_random > 1.0 + 1e-12:
        raise ValueError("replace_with_mask + replace_with_random must be at most 1 "
                         f"(got {replace_with_mask} + {replace_with_random})")


def _check_input_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
    if input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"input_ids must hold integer token ids (int64), got dtype {input_ids.dtype}")
    if input_ids.numel() == 0:
        raise ValueError("mask_tokens got an empty tensor of input_ids")
    lo, hi = (int(t) for t in torch.aminmax(input_ids))  # one reduction for both ends
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"input_ids: token id {lo if lo < 0 else hi} is outside the vocabulary 0..{vocab_size - 1}")


def _check_special_ids(special_ids: Sequence[int], vocab_size: int) -> list[int]:
    ids = check_sequence("special_ids", special_ids, of=int)
    for i, s in enumerate(ids):
        _check_token_id(f"special_ids[{i}]", s, vocab_size)
    return ids


def _check_id_lists(sequences: Sequence[Sequence[int]], what: str) -> list[list[int]]:
    """Lists (or 1-D integer tensors) of non-negative int ids; a float id is an error, not cast."""
    seqs = check_sequence("sequences", sequences)
    if not seqs:
        raise ValueError(f"cannot make a batch from an empty list of {what}s")
    out = []
    for i, s in enumerate(seqs):
        if isinstance(s, torch.Tensor):
            s = check_tensor(f"sequences[{i}]", s, dims=1, dtype="int").tolist()
        s = check_sequence(f"sequences[{i}] ({what} {i})", s, of=int)
        if s and min(s) < 0:
            raise ValueError(f"sequences[{i}] ({what} {i}) holds the negative token id {min(s)}")
        out.append(s)
    return out


def _check_mask_tokens_args(input_ids, mask_id, vocab_size, mask_prob, replace_with_mask, replace_with_random,
                            special_ids, generator) -> None:
    """Every argument check of :func:`mask_tokens`, in the order they are made."""
    check_int("vocab_size", vocab_size, min=2)
    _check_input_ids(input_ids, vocab_size)
    _check_token_id("mask_id", mask_id, vocab_size)
    _check_probs(mask_prob, replace_with_mask, replace_with_random)
    _check_special_ids(special_ids, vocab_size)
    check_instance("generator", generator, torch.Generator, "a torch.Generator", nullable=True)


def _check_random_candidates(candidates: torch.Tensor, to_random: torch.Tensor) -> None:
    """A position drawn for a random replacement needs an ordinary token to be replaced by."""
    if candidates.numel() == 0 and to_random.any():
        raise ValueError("no ordinary token is left to use as a random replacement")


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    mask_prob: float = 0.15,
    replace_with_mask: float = 0.8,
    replace_with_random: float = 0.1,
    special_ids: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt token ids the BERT way; return ``(corrupted_ids, labels)``, both shaped like
    ``input_ids``.

    - Each position whose id is not in ``special_ids`` (padding, ``[CLS]``, ``[SEP]``...) is
      *selected* independently with probability ``mask_prob``.
    - A selected position becomes ``mask_id`` with probability ``replace_with_mask``, a random
      token with probability ``replace_with_random`` (drawn uniformly from the ids
      ``0..vocab_size-1`` that are not special and not ``mask_id``), and stays unchanged otherwise.
    - ``labels`` holds the original id at selected positions and ``-100`` everywhere else, so the
      loss is computed on selected positions only.

    All randomness comes from ``generator`` (pass a seeded one for reproducible batches).
    """
    _check_mask_tokens_args(input_ids, mask_id, vocab_size, mask_prob, replace_with_mask, replace_with_random,
                            special_ids, generator)
    ids = input_ids.long()
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in special_ids:
        special |= ids == int(s)

    selected = (torch.rand(ids.shape, generator=generator) < mask_prob) & ~special
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))

    # One uniform number per position decides what a selected token becomes.
    u = torch.rand(ids.shape, generator=generator)
    to_mask = selected & (u < replace_with_mask)
    to_random = selected & (u >= replace_with_mask) & (u < replace_with_mask + replace_with_random)

    excluded = torch.tensor(sorted({mask_id, *(int(s) for s in special_ids)}), dtype=torch.long)
    candidates = torch.arange(vocab_size)[~torch.isin(torch.arange(vocab_size), excluded)]
    _check_random_candidates(candidates, to_random)
    pick = torch.randint(max(candidates.numel(), 1), ids.shape, generator=generator)
    random_ids = candidates[pick] if candidates.numel() else ids

    corrupted = ids.clone()
    corrupted[to_mask] = mask_id
    corrupted[to_random] = random_ids[to_random]
    return corrupted, labels


def pad_sequences(sequences: Sequence[Sequence[int]], *, pad_id: int, max_len: int | None = None,
                  what: str = "sequence") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad lists of ids to the longest one: ``(ids (B, T), attention_mask (B, T))`` with
    ``attention_mask`` 1 on real tokens and 0 on padding. A sequence longer than ``max_len``
    raises ``ValueError`` (nothing is silently cut); so does a float id (nothing is silently
    rounded)."""
    check_str("what", what, nonempty=True)
    sequences = _check_id_lists(sequences, what)
    check_int("pad_id", pad_id, min=0)
    if max_len is not None:
        check_int("max_len", max_len, min=1)
    lengths = [len(s) for s in sequences]
    if min(lengths) == 0:
        raise ValueError(f"{what} {lengths.index(0)} of the batch is empty")
    if max_len is not None and max(lengths) > max_len:
        i = max(range(len(lengths)), key=lengths.__getitem__)
        raise ValueError(f"{what} {i} has {lengths[i]} tokens, more than the maximum of {max_len}; "
                         "shorten it before batching")
    T = max(lengths)
    ids = torch.full((len(sequences), T), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(sequences), T), dtype=torch.long)         # (B, T)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def _check_collate_args(sequences, pad_id, mask_id, vocab_size, cls_id, sep_id, special_ids) -> list[list[int]]:
    """The checks of :func:`collate_mlm` (ids and probabilities are checked again by the helpers it
    calls); returns the sequences as lists of ints."""
    sequences = _check_id_lists(sequences, "sequence")
    for i, s in enumerate(sequences):
        if len(s) == 0:
            raise ValueError(f"sequence {i} of the batch is empty")
    check_int("vocab_size", vocab_size, min=2)
    for name, value in (("pad_id", pad_id), ("mask_id", mask_id), ("cls_id", cls_id), ("sep_id", sep_id)):
        _check_token_id(name, value, vocab_size, nullable=name in ("cls_id", "sep_id"))
    _check_special_ids(special_ids, vocab_size)
    return sequences


@dataclass
class MLMBatch:
    """A masked-LM batch; every field is a ``(B, T)`` long tensor."""

    input_ids: torch.Tensor       # corrupted ids (with [MASK], random and kept tokens)
    attention_mask: torch.Tensor  # 1 = real token, 0 = padding
    token_type_ids: torch.Tensor  # segment ids (all 0 for single sentences)
    labels: torch.Tensor          # original id at selected positions, -100 elsewhere
    original_ids: torch.Tensor    # the uncorrupted ids (handy for inspection)

    def as_kwargs(self) -> dict[str, torch.Tensor]:
        """The arguments of ``BertForMaskedLM.forward``."""
        return {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids,
                "attention_mask": self.attention_mask, "labels": self.labels}

    def to(self, device) -> "MLMBatch":
        check_device("device", device, who="MLMBatch.to")
        return MLMBatch(*(t.to(device) for t in (self.input_ids, self.attention_mask,
                                                  self.token_type_ids, self.labels, self.original_ids)))


def collate_mlm(
    sequences: Sequence[Sequence[int]],
    *,
    pad_id: int,
    mask_id: int,
    vocab_size: int,
    cls_id: int | None = None,
    sep_id: int | None = None,
    max_len: int | None = None,
    special_ids: Sequence[int] = (),
    mask_prob: float = 0.15,
    replace_with_mask: float = 0.8,
    replace_with_random: float = 0.1,
    generator: torch.Generator | None = None,
) -> MLMBatch:
    """Turn lists of token ids into one masked-LM batch.

    Each sequence becomes ``[CLS] ids [SEP]`` (when ``cls_id``/``sep_id`` are given), the batch
    is right-padded with ``pad_id`` to its longest sequence, and :func:`mask_tokens` corrupts
    it; padding, ``[CLS]``, ``[SEP]``, ``[MASK]`` and ``special_ids`` are never selected.
    ``max_len`` bounds the length *including* ``[CLS]``/``[SEP]``; longer input raises.
    """
    sequences = _check_collate_args(sequences, pad_id, mask_id, vocab_size, cls_id, sep_id, special_ids)
    wrapped = [([cls_id] if cls_id is not None else []) + list(s) + ([sep_id] if sep_id is not None else [])
               for s in sequences]
    ids, attn = pad_sequences(wrapped, pad_id=pad_id, max_len=max_len)
    never = {pad_id, mask_id} | {int(s) for s in special_ids}
    never |= {x for x in (cls_id, sep_id) if x is not None}
    corrupted, labels = mask_tokens(ids, mask_id=mask_id, vocab_size=vocab_size, mask_prob=mask_prob,
                                    replace_with_mask=replace_with_mask,
                                    replace_with_random=replace_with_random,
                                    special_ids=sorted(never), generator=generator)
    # pad_id may also be an ordinary id in a tiny vocabulary: padding is defined by the mask.
    labels = labels.masked_fill(attn == 0, IGNORE_INDEX)
    corrupted = torch.where(attn == 0, ids, corrupted)
    return MLMBatch(corrupted, attn, torch.zeros_like(ids), labels, ids)


def mlm_window_batches(
    ids: torch.Tensor,
    *,
    seq_len: int,
    batch_size: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int] = (),
    mask_prob: float = 0.15,
):
    """``get_batch(generator) -> dict`` of masked windows for :func:`lmlib.training.train`.

    ``ids`` is a 1-D tensor of token ids (a tokenized corpus). Each example is a random window
    of ``seq_len - 2`` consecutive tokens wrapped as ``[CLS] window [SEP]`` (``seq_len`` tokens
    in all), then corrupted by :func:`collate_mlm`. The returned dict has the keyword names of
    ``BertForMaskedLM.forward``.
    """
    check_int("vocab_size", vocab_size, min=2)
    check_ids("ids", ids, vocab_size, dims=1)
    check_int("seq_len", seq_len, min=3)  # [CLS], one token, [SEP]
    width = seq_len - 2
    if len(ids) < width:
        raise ValueError(f"the token stream ids has {len(ids)} tokens, fewer than one window of {width}")
    check_int("batch_size", batch_size, min=1)
    for name, value in (("cls_id", cls_id), ("sep_id", sep_id), ("pad_id", pad_id), ("mask_id", mask_id)):
        _check_token_id(name, value, vocab_size)
    _check_special_ids(special_ids, vocab_size)
    _check_prob("mask_prob", mask_prob)
    offsets = torch.arange(width)

    def get_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
        starts = torch.randint(len(ids) - width + 1, (batch_size,), generator=generator)
        windows = ids[starts[:, None] + offsets[None, :]].tolist()  # (B, width)
        batch = collate_mlm(windows, pad_id=pad_id, mask_id=mask_id, vocab_size=vocab_size, cls_id=cls_id,
                            sep_id=sep_id, max_len=seq_len, special_ids=special_ids, mask_prob=mask_prob,
                            generator=generator)
        return batch.as_kwargs()

    return get_batch


class MaskedPositionsMLM(torch.nn.Module):
    """Wrap a ``BertForMaskedLM`` (``.bert`` encoder, ``.mlm_head``) so that the output layer runs
    only where the loss is computed.

    ``forward(input_ids, token_type_ids=None, attention_mask=None, labels)`` returns
    ``(logits (N, V), loss)`` where ``N`` is the number of labelled (selected) positions, in
    row-major order; ``loss`` equals the wrapped model's loss on the same batch. The wrapped
    model's parameters are shared, so training this trains it.
    """

    def __init__(self, mlm_model: torch.nn.Module) -> None:
        _check_mlm_model("mlm_model", mlm_model)
        super().__init__()
        self.model = mlm_model

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        if labels is None:
            raise ValueError("MaskedPositionsMLM needs labels: they say where to compute the output")
        check_tensor("input_ids", input_ids, dims=2, dtype="int")
        check_ids("labels", labels, self.model.config.vocab_size, dims=2, allow=(IGNORE_INDEX,))
        if labels.shape != input_ids.shape:
            raise ValueError(f"labels must have shape {tuple(input_ids.shape)}, got {tuple(labels.shape)}")
        selected = labels != IGNORE_INDEX                              # (B, T)
        if not selected.any():
            raise ValueError("no position of the batch is selected for prediction (all labels are -100)")
        hidden, _ = self.model.bert(input_ids, token_type_ids, attention_mask)  # (B, T, H)
        logits = self.model.mlm_head(hidden[selected])                 # (N, V)
        loss = torch.nn.functional.cross_entropy(logits, labels[selected])
        return logits, loss


def _check_mlm_model(name: str, model) -> torch.nn.Module:
    if not isinstance(model, torch.nn.Module) or not all(hasattr(model, a) for a in ("bert", "mlm_head", "config")):
        raise TypeError(f"{name} must be a BertForMaskedLM (with .bert, .mlm_head and .config), "
                        f"got {type(model).__name__}")
    return model


def _check_mlm_batches(batches, vocab_size: int) -> list:
    batches = check_sequence("batches", batches)
    for i, b in enumerate(batches):
        if not isinstance(b, dict) or "input_ids" not in b or "labels" not in b:
            raise TypeError(f"batches[{i}] must be a dict with input_ids and labels (as made by "
                            f"mlm_window_batches), got {type(b).__name__}")
        check_tensor(f"batches[{i}]['input_ids']", b["input_ids"], dims=2, dtype="int")
        check_ids(f"batches[{i}]['labels']", b["labels"], vocab_size, dims=2, allow=(IGNORE_INDEX,))
    return batches


@torch.no_grad()
def evaluate_mlm(model: torch.nn.Module, batches) -> dict[str, float]:
    """Masked-token cross-entropy and top-1 accuracy of a masked-LM over a list of batch dicts
    (as made by :func:`mlm_window_batches` with a fixed generator), averaged over all selected
    positions. ``model`` is a ``BertForMaskedLM`` or a :class:`MaskedPositionsMLM`."""
    inner = model.model if isinstance(model, MaskedPositionsMLM) else _check_mlm_model("model", model)
    batches = _check_mlm_batches(batches, inner.config.vocab_size)
    was = inner.training
    inner.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        for b in batches:
            sel = b["labels"] != IGNORE_INDEX
            hidden, _ = inner.bert(b["input_ids"], b.get("token_type_ids"), b.get("attention_mask"))
            logits = inner.mlm_head(hidden[sel])                           # (N, V)
            target = b["labels"][sel]
            total_loss += torch.nn.functional.cross_entropy(logits, target, reduction="sum").item()
            correct += int((logits.argmax(-1) == target).sum())
            count += int(sel.sum())
    finally:
        inner.train(was)
    if count == 0:
        raise ValueError("evaluate_mlm got no selected positions")
    return {"loss": total_loss / count, "accuracy": correct / count}
