"""Summarization on the plays: dialogue -> the entrance direction that opens it.

The task
--------
In the printed plays an entrance direction, ``[Enter HAMLET and HORATIO]``, is followed by the
speeches of the people now on stage. :func:`entrance_pairs` turns every such place into one
example: the *source* is the run of speeches that follows the direction (up to the next
direction or heading, at most ``max_speeches`` of them, as printed: ``"NAME:\\n"`` then the
lines), the *reference* is the direction itself (without brackets). The reference is the
editors' own record of who comes on stage, written independently of any summarizer: an
*indicative* summary of who takes part, not a summary of what is said.

Cuts are explicit: :func:`source_units` keeps whole speeches while they fit in ``max_chars``
characters and cuts the first one that does not (it says how many characters it dropped).

Methods
-------
* :func:`lead_summary`: the first speech of the source (the "lead" baseline of news
  summarization);
* :func:`cue_summary`: ``"Enter "`` and the speakers of the source in order of first appearance,
  a rule built on the surface of the text (the speaker labels);
* :func:`centroid_extract`: an extractive (抽取式) method: the speech whose embedding is closest to
  the mean embedding of all speeches (embeddings from a zoo BERT, :func:`bert_embeddings`);
* :func:`oracle_extract`: the speech with the best ROUGE against the reference, the ceiling of any
  method that copies one speech;
* an abstractive (生成式) encoder–decoder on the course BPE tokens (:class:`TextCodec`,
  :func:`train_summarizer`, :func:`summarize`) trained from scratch on the training plays.

Scores are ROUGE-1/2/L F-measures (Lin, 2004) from Google's ``rouge-score`` package
(:func:`rouge_scores`), without stemming.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lmlib.data import Play, load_play
from lmlib.progress import trange
from lmlib.validation import check_bool, check_float, check_instance, check_int, check_sequence, check_str

__all__ = ["ENTRANCE_PREFIXES", "EntrancePair", "entrance_pairs", "source_units", "lead_summary", "cue_summary",
           "rouge_tokens", "rouge_scores", "oracle_extract", "bert_embeddings", "centroid_extract", "TextCodec",
           "train_summarizer", "summarize"]

#: a direction is an entrance when its text starts with one of these words
ENTRANCE_PREFIXES = ("Enter", "Re-enter")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@dataclass(frozen=True)
class EntrancePair:
    """One example: the entrance ``direction`` (the reference) and the ``speeches`` after it."""

    play: str
    act: str | None
    scene: str | None
    direction: str
    speeches: tuple[str, ...]
    speakers: tuple[str, ...]


def _is_entrance(body: str) -> bool:
    word = body.split(maxsplit=1)[0].rstrip(",.:;") if body.split() else ""
    return word in ENTRANCE_PREFIXES


def entrance_pairs(play: Play | str, *, max_speeches: int) -> list[EntrancePair]:
    """Every entrance direction of ``play`` that is followed directly by at least one speech,
    with the first ``max_speeches`` speeches of the run that follows it (a run ends at the next
    direction or heading)."""
    check_instance("play", play, (Play, str), "a Play or a play slug", who="entrance_pairs")
    check_int("max_speeches", max_speeches, min=1, who="entrance_pairs")
    pl = load_play(play) if isinstance(play, str) else play
    ps = pl.passages
    pairs = []
    for i, p in enumerate(ps):
        if p.kind != "direction" or not _is_entrance(p.body):
            continue
        run = []
        for q in ps[i + 1:]:
            if q.kind != "speech" or len(run) == max_speeches:
                break
            run.append(q)
        if run:
            pairs.append(EntrancePair(pl.name, p.act, p.scene, p.body, tuple(q.text for q in run),
                                      tuple(q.speaker for q in run)))
    return pairs


def _check_pair(pair, who: str) -> EntrancePair:
    return check_instance("pair", pair, EntrancePair, "an EntrancePair", who=who)


def source_units(pair: EntrancePair, *, max_chars: int) -> tuple[list[str], int]:
    """The speeches of ``pair`` that fit in ``max_chars`` characters (counting the ``"\\n\\n"``
    that joins them), the last one cut to fit; returns ``(speeches, chars_dropped)``. The
    source a model reads is ``"\\n\\n".join(speeches)``."""
    _check_pair(pair, "source_units")
    check_int("max_chars", max_chars, min=1, who="source_units")
    units, used, dropped = [], 0, 0
    for s in pair.speeches:
        room = max_chars - used - (2 if units else 0)
        if room <= 0:
            dropped += len(s)
            continue
        units.append(s[:room])
        dropped += max(0, len(s) - room)
        used += len(units[-1]) + (2 if len(units) > 1 else 0)
    return units, dropped


def lead_summary(units: Sequence[str]) -> str:
    """The lead baseline: the first speech of the source."""
    units = check_sequence("units", units, of=str, nonempty=True, who="lead_summary")
    return units[0]


def _speaker_of(unit: str) -> str:
    head = unit.split("\n", 1)[0]
    return head[:-1] if head.endswith(":") else head


def cue_summary(units: Sequence[str], *, max_names: int | None = None) -> str:
    """``"Enter "`` + the speakers of ``units`` in order of first appearance (at most
    ``max_names``; all when None), joined as the editions do: ``A``, ``A and B``, ``A, B, and C``."""
    units = check_sequence("units", units, of=str, nonempty=True, who="cue_summary")
    if max_names is not None:
        check_int("max_names", max_names, min=1, who="cue_summary")
    names = list(dict.fromkeys(_speaker_of(u) for u in units))[:max_names]
    if len(names) <= 2:
        return "Enter " + " and ".join(names)
    return "Enter " + ", ".join(names[:-1]) + ", and " + names[-1]


def rouge_tokens(text: str) -> list[str]:
    """The tokens ROUGE counts (rouge-score's tokenizer without stemming): lower case, every run
    of characters other than a-z and 0-9 is a separator."""
    check_str("text", text, who="rouge_tokens")
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def rouge_scores(candidates: Sequence[str], references: Sequence[str]) -> dict[str, list[float]]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of each candidate against its reference, from
    ``rouge_score.rouge_scorer.RougeScorer`` (no stemming): ``{"rouge1": [...], ...}``."""
    from rouge_score import rouge_scorer

    candidates = check_sequence("candidates", candidates, of=str, nonempty=True, who="rouge_scores")
    references = check_sequence("references", references, of=str, nonempty=True, who="rouge_scores")
    if len(candidates) != len(references):
        raise ValueError(f"rouge_scores: {len(candidates)} candidates for {len(references)} references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    out: dict[str, list[float]] = {k: [] for k in ROUGE_TYPES}
    for c, r in zip(candidates, references):
        s = scorer.score(r, c)                      # score(target, prediction)
        for k in ROUGE_TYPES:
            out[k].append(s[k].fmeasure)
    return out


def oracle_extract(units: Sequence[str], reference: str, *, metric: str = "rouge1") -> int:
    """Index of the speech with the highest ROUGE F-measure against ``reference`` (the first on ties)."""
    units = check_sequence("units", units, of=str, nonempty=True, who="oracle_extract")
    check_str("reference", reference, who="oracle_extract")
    if metric not in ROUGE_TYPES:
        raise ValueError(f"oracle_extract: metric must be one of {ROUGE_TYPES}, got {metric!r}")
    scores = rouge_scores(units, [reference] * len(units))[metric]
    return max(range(len(units)), key=lambda i: (scores[i], -i))


@torch.no_grad()
def bert_embeddings(zm, texts: Sequence[str], *, batch_size: int = 64) -> tuple[torch.Tensor, int]:
    """Mean of the last hidden states over the tokens of each text, for a zoo BERT ``zm``.

    A text longer than the BERT's window keeps its first tokens (``[CLS] ... [SEP]``); returns
    ``(embeddings (N, H), number of texts cut)``.
    """
    from lmlib.finetune import text_encoder
    from lmlib.zoo import ZooModel

    check_instance("zm", zm, ZooModel, "a zoo model (lmlib.zoo.load('bert-mlm'))", who="bert_embeddings")
    if zm.config["kind"] != "bert":
        raise ValueError(f"bert_embeddings: zm must be a BERT zoo model, got kind {zm.config['kind']!r}")
    texts = check_sequence("texts", texts, of=str, nonempty=True, who="bert_embeddings")
    check_int("batch_size", batch_size, min=1, who="bert_embeddings")
    enc = text_encoder(zm)
    ids = enc.encode(texts, truncate=True)
    bert = zm.model.bert
    was = bert.training
    bert.eval()
    out = []
    for i in range(0, len(ids), batch_size):
        chunk = ids[i:i + batch_size]
        width = max(map(len, chunk))
        x = torch.full((len(chunk), width), enc.pad_id, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for j, row in enumerate(chunk):
            x[j, :len(row)] = torch.tensor(row)
            mask[j, :len(row)] = 1
        hidden, _ = bert(x, attention_mask=mask)                        # (b, T, H)
        m = mask.unsqueeze(-1).float()
        out.append((hidden * m).sum(1) / m.sum(1))
    bert.train(was)
    return torch.cat(out), enc.truncated


def centroid_extract(embeddings: torch.Tensor) -> int:
    """Index of the row closest (cosine) to the mean of all rows: the most central speech."""
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2 or embeddings.shape[0] == 0 \
            or not embeddings.is_floating_point():
        raise ValueError("centroid_extract: embeddings must be a non-empty (N, H) float tensor")
    if not torch.isfinite(embeddings).all():
        raise ValueError("centroid_extract: embeddings hold NaN or inf")
    centre = embeddings.mean(0, keepdim=True)
    return int(F.cosine_similarity(embeddings, centre, dim=1).argmax())


# --------------------------------------------------------------------------------------------
# The abstractive model: an encoder-decoder on BPE tokens
# --------------------------------------------------------------------------------------------

class TextCodec:
    """Texts <-> padded id tensors for the encoder–decoder, with a tokenizer that has
    ``encode(text) -> ids`` and ``decode(ids) -> text`` (the course BPE tokenizer) and the ids
    of its padding, beginning-of-sequence and end-of-sequence tokens."""

    def __init__(self, tokenizer, *, pad_id: int, bos_id: int, eos_id: int):
        if isinstance(tokenizer, (str, bytes)) or not callable(getattr(tokenizer, "encode", None)) \
                or not callable(getattr(tokenizer, "decode", None)):
            raise TypeError(f"TextCodec: tokenizer must have encode and decode, got {type(tokenizer).__name__}")
        for name, v in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            check_int(name, v, min=0, who="TextCodec")
        if len({pad_id, bos_id, eos_id}) != 3:
            raise ValueError("TextCodec: pad_id, bos_id and eos_id must be three different ids")
        self.tokenizer, self.pad_id, self.bos_id, self.eos_id = tokenizer, pad_id, bos_id, eos_id
        self.specials = {pad_id, bos_id, eos_id}

    @classmethod
    def from_zoo(cls, zm) -> "TextCodec":
        """The codec of a zoo BERT's BPE tokenizer: ``[PAD]``, ``[CLS]`` (as BOS), ``[SEP]`` (as EOS)."""
        from lmlib.zoo import ZooModel

        check_instance("zm", zm, ZooModel, "a zoo model (lmlib.zoo.load('bert-mlm'))", who="TextCodec.from_zoo")
        sp = getattr(zm.tokenizer, "special_tokens", None) or {}
        if not {"[PAD]", "[CLS]", "[SEP]"} <= set(sp):
            raise ValueError("TextCodec.from_zoo: zm's tokenizer has no [PAD]/[CLS]/[SEP] tokens (use bert-mlm)")
        return cls(zm.tokenizer, pad_id=sp["[PAD]"], bos_id=sp["[CLS]"], eos_id=sp["[SEP]"])

    @property
    def vocab_size(self) -> int:
        return max(int(self.tokenizer.vocab_size), max(self.specials) + 1)

    def encode(self, text: str) -> list[int]:
        check_str("text", text, who="TextCodec.encode")
        return list(self.tokenizer.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of the ids before the first ``eos_id``, special ids left out."""
        ids = check_sequence("ids", ids, of=int, who="TextCodec.decode")
        kept = []
        for i in ids:
            if i == self.eos_id:
                break
            if i not in self.specials:
                kept.append(i)
        return self.tokenizer.decode(kept)

    def batch(self, texts: Sequence[str], *, add_eos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids (B, L), padding_mask (B, L))`` right-padded with ``pad_id``; True marks padding."""
        texts = check_sequence("texts", texts, of=str, nonempty=True, who="TextCodec.batch")
        check_bool("add_eos", add_eos, who="TextCodec.batch")
        rows = [self.encode(t) + ([self.eos_id] if add_eos else []) for t in texts]
        width = max(1, max(map(len, rows)))
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.ones(len(rows), width, dtype=torch.bool)
        for j, r in enumerate(rows):
            ids[j, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[j, :len(r)] = False
        return ids, mask


def _check_model(model, who):
    from lmlib.transformer import Transformer

    return check_instance("model", model, Transformer, "an lmlib.transformer.Transformer", who=who)


def _check_texts_for(model, codec, src, who, name="sources", extra=0):
    check_instance("codec", codec, TextCodec, "a summarization.TextCodec", who=who)
    src = check_sequence(name, src, of=str, nonempty=True, who=who)
    if any(not s for s in src):
        raise ValueError(f"{who}: {name} holds an empty text")
    longest = max(len(codec.encode(s)) for s in src) + extra
    if longest > model.config.max_len:
        raise ValueError(f"{who}: {name} holds a text of {longest} ids, more than the model's "
                         f"max_len={model.config.max_len}; cut it explicitly first (source_units)")
    if codec.vocab_size > min(model.config.src_vocab_size, model.config.tgt_vocab_size):
        raise ValueError(f"{who}: the codec has {codec.vocab_size} ids, more than the model's vocabulary")
    return src


def train_summarizer(model: nn.Module, codec: TextCodec, sources: Sequence[str], targets: Sequence[str], *,
                     steps: int, batch_size: int = 32, lr: float = 1e-3, warmup_steps: int = 50, seed: int = 0,
                     progress: bool = True) -> list[float]:
    """Teacher-forced AdamW training of ``model`` on ``(source, target)`` texts; returns the losses.

    Each step draws ``batch_size`` pairs (a generator seeded with ``seed``); sources and targets
    are padded with masks, the decoder reads ``BOS + target`` and predicts ``target + EOS``
    (padding positions are ignored by the loss). The learning rate warms up linearly over
    ``warmup_steps`` and then decays linearly to 0.
    """
    who = "train_summarizer"
    _check_model(model, who)
    sources = _check_texts_for(model, codec, sources, who)
    targets = _check_texts_for(model, codec, targets, who, "targets", extra=1)
    if len(sources) != len(targets):
        raise ValueError(f"{who}: {len(sources)} sources for {len(targets)} targets")
    check_int("steps", steps, min=1, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    check_float("lr", lr, min=0.0, min_open=True, who=who)
    check_int("warmup_steps", warmup_steps, min=0, who=who)
    check_int("seed", seed, min=0, who=who)
    check_bool("progress", progress, who=who)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    losses = []
    for step in trange(steps, desc="summarizer", disable=not progress):
        factor = (step + 1) / warmup_steps if step < warmup_steps else (steps - step) / max(1, steps - warmup_steps)
        for group in opt.param_groups:
            group["lr"] = lr * factor
        idx = torch.randint(0, len(sources), (batch_size,), generator=g).tolist()
        src, src_pad = codec.batch([sources[i] for i in idx])
        out, out_pad = codec.batch([targets[i] for i in idx], add_eos=True)      # target + EOS
        dec_in = torch.cat([torch.full_like(out[:, :1], codec.bos_id), out[:, :-1]], 1)
        dec_pad = torch.cat([torch.zeros_like(out_pad[:, :1]), out_pad[:, :-1]], 1)
        labels = out.masked_fill(out_pad, -100)
        _, loss = model(src, dec_in, src_key_padding_mask=src_pad, tgt_key_padding_mask=dec_pad, targets=labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def summarize(model: nn.Module, codec: TextCodec, sources: Sequence[str], *, max_new_tokens: int,
              batch_size: int = 64) -> list[str]:
    """Greedy decoding: for each source, the most likely next token until ``EOS`` or
    ``max_new_tokens`` tokens."""
    who = "summarize"
    _check_model(model, who)
    sources = _check_texts_for(model, codec, sources, who)
    check_int("max_new_tokens", max_new_tokens, min=1, max=model.config.max_len - 1, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    was = model.training
    model.eval()
    texts = []
    for i in range(0, len(sources), batch_size):
        src, src_pad = codec.batch(sources[i:i + batch_size])
        memory = model.encode(src, src_pad)
        out = torch.full((src.shape[0], 1), codec.bos_id, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        for _ in range(max_new_tokens):
            logits = model.decode(out, memory, src_key_padding_mask=src_pad)
            nxt = logits[:, -1].argmax(-1)
            nxt = nxt.masked_fill(done, codec.pad_id)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == codec.eos_id
            if done.all():
                break
        texts += [codec.decode(row[1:].tolist()) for row in out]
    model.train(was)
    return texts
