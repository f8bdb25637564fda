"""Two translation tasks on CC-CEDICT, and one model trained on both (chapter 9).

* ``"pinyin"`` (transliteration, 汉字 -> pinyin): ``银行 -> "yin2 hang2"``, the word's first
  reading. Monotonic, one syllable per character, but context decides a heteronym's reading
  (行 is ``hang2`` in 银行 and ``xing2`` in 行人).
* ``"english"`` (translation, Chinese headword -> English): ``银行 -> "bank"``, the word's first
  English sense, kept only when it has at most ``max_target_chars`` characters (a stated filter:
  the dictionary's longest senses are explanations, not translations). Every sense of the word
  is a reference when scoring.

Two character vocabularies (:func:`build_vocabularies`) hold the source side (the Chinese
characters seen in training, a task token, ``<pad>``; other characters become ``<unk>``) and the
target side (the characters of pinyin and English glosses, with ``<bos>``, ``<eos>``, ``<sep>``).
A pinyin-only model may instead write **one token per syllable** (``target_units="syllable"``:
a :class:`~lmlib.tokenizers.WordTokenizer` over the training readings' syllables), which makes a
character's reading a single choice and a target, ``<eos>`` included, under a third as long.
The same examples train an encoder–decoder (:func:`encode_seq2seq`: the encoder reads
``<task> 汉 字``, the decoder reads ``<bos> target`` and predicts ``target <eos>``) and a
decoder-only model (:func:`encode_lm`: one sequence ``<task> 汉 字 <sep> target <eos>`` in a
joint id space, target ids first and source ids after them, with the loss on ``target <eos>``
only). Both predict over the target vocabulary alone: for the decoder-only model
(:func:`lm_target_logits`) that is its softmax restricted to the first ``target.vocab_size``
ids, the same output space and the same cost per predicted token as the encoder–decoder's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from lmlib.cedict import Word
from lmlib.progress import trange
from lmlib.tokenizers import CharTokenizer, WordTokenizer
from lmlib.validation import check_bool, check_choice, check_float, check_int, check_sequence, check_str

__all__ = ["TASKS", "Example", "Vocabularies", "make_examples", "build_vocabularies", "source_ids", "lm_prompt",
           "encode_seq2seq", "encode_lm", "lm_target_logits", "batch_loss", "train_translator", "heldout_loss",
           "encoder_decoder", "decoder_only", "DATA_RECIPE", "TranslationData", "cedict_data",
           "TargetLM", "translate", "cross_attention"]

TASKS = ("pinyin", "english")
PAD, BOS, EOS, SEP, UNK = "<pad>", "<bos>", "<eos>", "<sep>", "<unk>"
TASK_TOKENS = {"pinyin": "<pinyin>", "english": "<english>"}
SOURCE_SPECIALS = (PAD, UNK, *TASK_TOKENS.values())
TARGET_SPECIALS = (PAD, BOS, EOS, SEP, UNK)
TARGET_UNITS = ("char", "syllable")


@dataclass(frozen=True)
class Example:
    """One training or test pair: ``task``, ``source`` (the headword), ``target`` (what the model
    is trained to produce) and ``references`` (every acceptable answer, the target first)."""

    task: str
    source: str
    target: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class Vocabularies:
    """The source (character) and target (character or syllable) tokenizers of :func:`build_vocabularies`."""

    source: CharTokenizer
    target: CharTokenizer | WordTokenizer

    @property
    def joint_size(self) -> int:
        """The decoder-only model's vocabulary: target ids, then source ids offset by target.vocab_size."""
        return self.target.vocab_size + self.source.vocab_size


def make_examples(words: Sequence[Word], task: str, *, max_target_chars: int = 32) -> list[Example]:
    """The examples of ``task`` for ``words`` (see the module docstring). A word whose target (first
    reading or first sense) is longer than ``max_target_chars`` characters is left out."""
    who = "make_examples"
    check_sequence("words", words, of=Word, who=who)
    check_choice("task", task, TASKS, who=who)
    check_int("max_target_chars", max_target_chars, min=1, who=who)
    out = []
    for w in words:
        refs = tuple(" ".join(r) for r in w.readings) if task == "pinyin" else w.senses
        if len(refs[0]) <= max_target_chars:
            out.append(Example(task, w.headword, refs[0], refs))
    return out


def build_vocabularies(examples: Sequence[Example], *, target_units: str = "char") -> Vocabularies:
    """Tokenizers over the sources and over the targets of ``examples`` (the training set):
    characters, or with ``target_units="syllable"`` (pinyin examples only) the syllables of the
    targets. A character or syllable not seen there maps to ``<unk>``."""
    who = "build_vocabularies"
    check_sequence("examples", examples, of=Example, nonempty=True, who=who)
    check_choice("target_units", target_units, TARGET_UNITS, who=who)
    src = sorted({c for e in examples for c in e.source})
    if target_units == "char":
        target = CharTokenizer(sorted({c for e in examples for c in e.target}), list(TARGET_SPECIALS), unk_token=UNK)
    else:
        other = next((i for i, e in enumerate(examples) if e.task != "pinyin"), None)
        if other is not None:
            raise ValueError(f"{who}: target_units='syllable' is for pinyin examples only; examples[{other}] "
                             f"is a {examples[other].task!r} example")
        target = WordTokenizer(sorted({s for e in examples for s in e.target.split()}), list(TARGET_SPECIALS),
                               unk_token=UNK)
    return Vocabularies(CharTokenizer(src, list(SOURCE_SPECIALS), unk_token=UNK), target)


def _pad(rows: list[list[int]], fill: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [fill] * (width - len(r)) for r in rows], dtype=torch.long)


def _check_batch(vocab, examples, who: str) -> None:
    if not isinstance(vocab, Vocabularies):
        raise TypeError(f"{who}: vocab must be the Vocabularies of build_vocabularies, got {type(vocab).__name__}")
    check_sequence("examples", examples, of=Example, nonempty=True, who=who)
    for i, e in enumerate(examples):
        check_choice(f"examples[{i}].task", e.task, TASKS, who=who)


def source_ids(vocab: Vocabularies, example: Example) -> list[int]:
    """``<task> source`` as source ids."""
    _check_vocab(vocab, "source_ids")
    if not isinstance(example, Example):
        raise TypeError(f"source_ids: example must be an Example, got {type(example).__name__}")
    check_choice("example.task", example.task, TASKS, who="source_ids")
    return [vocab.source.special_tokens[TASK_TOKENS[example.task]]] + vocab.source.encode_ordinary(example.source)


def encode_seq2seq(vocab: Vocabularies, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    """Padded encoder–decoder tensors: ``src`` ``(B, S)`` = ``<task> source``, ``src_mask``
    (True = padding), ``tgt_in`` ``(B, T)`` = ``<bos> target``, ``targets`` = ``target <eos>``
    with ``-100`` at padding."""
    _check_batch(vocab, examples, "encode_seq2seq")
    t = vocab.target.special_tokens
    src = _pad([source_ids(vocab, e) for e in examples], vocab.source.special_tokens[PAD])
    tgt = [vocab.target.encode_ordinary(e.target) for e in examples]
    return {"src": src, "src_mask": src == vocab.source.special_tokens[PAD],
            "tgt_in": _pad([[t[BOS]] + y for y in tgt], t[PAD]),
            "targets": _pad([y + [t[EOS]] for y in tgt], -100)}


def lm_prompt(vocab: Vocabularies, example: Example) -> list[int]:
    """``<task> source <sep>`` in the decoder-only model's joint ids (source ids shifted by the
    target vocabulary's size)."""
    _check_vocab(vocab, "lm_prompt")
    shift = vocab.target.vocab_size
    return [shift + i for i in source_ids(vocab, example)] + [vocab.target.special_tokens[SEP]]


def encode_lm(vocab: Vocabularies, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    """Padded decoder-only tensors: ``idx`` ``(B, L)`` = ``<task> source <sep> target`` (right-padded)
    and ``targets`` ``(B, L)``: ``-100`` while the next token is still the prompt, then
    ``target <eos>``: the model is trained to translate, not to model the source."""
    _check_batch(vocab, examples, "encode_lm")
    t = vocab.target.special_tokens
    idx, targets = [], []
    for e in examples:
        prompt, answer = lm_prompt(vocab, e), vocab.target.encode_ordinary(e.target) + [t[EOS]]
        idx.append(prompt + answer[:-1])
        targets.append([-100] * (len(prompt) - 1) + answer)
    return {"idx": _pad(idx, t[PAD]), "targets": _pad(targets, -100)}


def lm_target_logits(model: nn.Module, idx: torch.Tensor, n_out: int) -> torch.Tensor:
    """A GPT's logits over its first ``n_out`` ids (the target vocabulary) only: its forward pass
    with the output layer cut to those rows, ``(B, T, n_out)``. Equal to ``model(idx)[0][..., :n_out]``
    without computing the logits of the source ids."""
    from lmlib.validation import check_ids

    who = "lm_target_logits"
    if _arch(model, who) != "lm":
        raise TypeError(f"{who}: model must be an lmlib GPT, got {type(model).__name__}")
    check_ids("idx", idx, model.config.vocab_size, dims=2, who=who)
    if idx.shape[1] > model.config.block_size:
        raise ValueError(f"{who}: idx has {idx.shape[1]} positions, more than block_size={model.config.block_size}")
    check_int("n_out", n_out, min=1, max=model.config.vocab_size, who=who)
    x = model.drop(model.wpe(model.wte(idx)))
    for block in model.blocks:
        x = block(x, is_causal=True)
    return F.linear(model.ln_f(x), model.lm_head.weight[:n_out])


def _arch(model: nn.Module, who: str) -> str:
    from lmlib.gpt import GPT
    from lmlib.transformer import Transformer

    if isinstance(model, Transformer):
        return "seq2seq"
    if isinstance(model, GPT):
        return "lm"
    raise TypeError(f"{who}: model must be an lmlib Transformer (encoder–decoder) or GPT, got {type(model).__name__}")


def _check_sizes(model: nn.Module, arch: str, vocab: Vocabularies, who: str, examples=None) -> None:
    c = model.config
    want = ((c.src_vocab_size, vocab.source.vocab_size), (c.tgt_vocab_size, vocab.target.vocab_size)) \
        if arch == "seq2seq" else ((c.vocab_size, vocab.joint_size),)
    for have, need in want:
        if have != need:
            raise ValueError(f"{who}: the model's vocabulary sizes {[h for h, _ in want]} do not match vocab's "
                             f"{[n for _, n in want]}")
    if examples is not None:  # every example must fit the model's positions
        n = _target_length(vocab)
        if arch == "seq2seq":   # <task> source, and <bos> target / target <eos>
            need, room, what = max(max(len(e.source), n(e.target)) + 1 for e in examples), c.max_len, "max_len"
        else:                   # <task> source <sep> target
            need, room, what = max(len(e.source) + 2 + n(e.target) for e in examples), c.block_size, "block_size"
        if need > room:
            raise ValueError(f"{who}: the longest of examples needs {need} positions, more than the model's "
                             f"{what}={room}")


def _target_length(vocab: Vocabularies):
    """The number of target tokens of a target string: characters, or syllables."""
    return len if isinstance(vocab.target, CharTokenizer) else (lambda text: len(text.split()))


def _loss(model: nn.Module, arch: str, vocab: Vocabularies, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if arch == "seq2seq":
        return model(batch["src"], batch["tgt_in"], src_key_padding_mask=batch["src_mask"],
                     targets=batch["targets"])[1]
    logits = lm_target_logits(model, batch["idx"], vocab.target.vocab_size)
    return F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(), ignore_index=-100)


def _encode(arch: str, vocab: Vocabularies, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    return encode_seq2seq(vocab, examples) if arch == "seq2seq" else encode_lm(vocab, examples)


def batch_loss(model: nn.Module, vocab: Vocabularies, examples: Sequence[Example]) -> torch.Tensor:
    """The loss :func:`train_translator` minimises on one batch of ``examples``: the mean
    cross-entropy of their target tokens and ``<eos>`` (a scalar tensor with its graph)."""
    who = "batch_loss"
    arch = _arch(model, who)
    _check_batch(vocab, examples, who)
    _check_sizes(model, arch, vocab, who, examples)
    return _loss(model, arch, vocab, _encode(arch, vocab, examples))


def train_translator(model: nn.Module, vocab: Vocabularies, examples: Sequence[Example], *, steps: int,
                     batch_size: int = 128, lr: float = 2e-3, min_lr: float = 2e-4, warmup_steps: int = 100,
                     weight_decay: float = 0.01, grad_clip: float = 1.0, seed: int = 0, bucket: int = 1,
                     progress: bool = True, stop_after: int | None = None):
    """Train an encoder–decoder or a decoder-only model on ``examples``; returns the
    :class:`~lmlib.training.History` (loss, learning rate and gradient norm of every step; its
    ``tokens`` counts the target tokens trained on).

    Each AdamW step draws ``batch_size`` examples (a generator seeded with ``seed``), encodes them
    with :func:`encode_seq2seq` or :func:`encode_lm` (chosen by the model's class), and minimises
    the mean cross-entropy of the target tokens and ``<eos>``, the gradient's norm clipped to
    ``grad_clip``; the learning rate warms up linearly over ``warmup_steps`` and then follows a
    half cosine from ``lr`` to ``min_lr``. ``stop_after=n`` stops after ``n`` steps of that same
    schedule (the zoo's provenance test replays the start of a run).

    ``bucket=k > 1`` batches by length: ``k * batch_size`` examples are drawn at once, sorted by
    length (source + target) and cut into ``k`` batches, which are then used in a random order.
    Every example is still drawn uniformly, but a batch pads its rows to a similar length, so far
    fewer positions are padding (a random batch of 64 pads to its longest English gloss).
    """
    who = "train_translator"
    arch = _arch(model, who)
    _check_batch(vocab, examples, who)
    _check_sizes(model, arch, vocab, who, examples)
    check_int("steps", steps, min=1, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    check_float("lr", lr, min=0.0, min_open=True, who=who)
    check_float("min_lr", min_lr, min=0.0, max=lr, who=who)
    check_int("warmup_steps", warmup_steps, min=0, who=who)
    check_float("weight_decay", weight_decay, min=0.0, who=who)
    check_float("grad_clip", grad_clip, min=0.0, min_open=True, who=who)
    check_int("seed", seed, min=0, who=who)
    check_int("bucket", bucket, min=1, who=who)
    check_bool("progress", progress, who=who)
    if stop_after is not None:
        check_int("stop_after", stop_after, min=1, who=who)
    from lmlib.training import History

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    model.train()
    history, t0 = History(), time.perf_counter()
    pool: list[list[Example]] = []
    for step in trange(steps if stop_after is None else min(steps, stop_after), desc=f"train {arch}",
                       disable=not progress):
        if step < warmup_steps:
            rate = lr * (step + 1) / warmup_steps
        else:
            t = (step - warmup_steps) / max(1, steps - 1 - warmup_steps)
            rate = min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        for group in opt.param_groups:
            group["lr"] = rate
        if bucket == 1:
            batch = [examples[i] for i in torch.randint(0, len(examples), (batch_size,), generator=g).tolist()]
        else:
            if not pool:
                drawn = torch.randint(0, len(examples), (bucket * batch_size,), generator=g).tolist()
                ordered = sorted((examples[i] for i in drawn), key=lambda e: len(e.source) + len(e.target))
                pool = [ordered[k * batch_size:(k + 1) * batch_size]
                        for k in torch.randperm(bucket, generator=g).tolist()]
            batch = pool.pop()
        enc = _encode(arch, vocab, batch)
        loss = _loss(model, arch, vocab, enc)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        history.steps.append(step + 1)
        history.train_loss.append(loss.item())
        history.lr.append(rate)
        history.grad_norm.append(norm.item())
        history.tokens += int((enc["targets"] != -100).sum())
    history.seconds = time.perf_counter() - t0
    model.eval()
    return history


@torch.no_grad()
def heldout_loss(model: nn.Module, vocab: Vocabularies, examples: Sequence[Example], *,
                 batch_size: int = 256) -> float:
    """Mean cross-entropy per target token (``<eos>`` included) over ``examples``, in eval mode."""
    who = "heldout_loss"
    arch = _arch(model, who)
    _check_batch(vocab, examples, who)
    _check_sizes(model, arch, vocab, who, examples)
    check_int("batch_size", batch_size, min=1, who=who)
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        chunk = list(examples[i:i + batch_size])
        enc = _encode(arch, vocab, chunk)
        n = int((enc["targets"] != -100).sum())
        total += _loss(model, arch, vocab, enc).item() * n
        count += n
    model.train(was)
    return total / count


def encoder_decoder(vocab: Vocabularies, *, d_model: int = 128, n_layers: int = 2, n_heads: int = 4,
                    dropout: float = 0.1, max_len: int = 48) -> nn.Module:
    """The chapter's encoder–decoder: pre-norm, GELU, ``n_layers`` encoder and decoder layers,
    separate source and target embeddings, the output layer tied to the target embedding."""
    from lmlib.transformer import Transformer, TransformerConfig

    _check_vocab(vocab, "encoder_decoder")
    check_int("d_model", d_model, min=1, who="encoder_decoder")   # before d_ff = 4 * d_model is formed
    check_int("n_layers", n_layers, min=1, who="encoder_decoder")
    return Transformer(TransformerConfig(vocab.source.vocab_size, vocab.target.vocab_size, d_model=d_model,
                                         n_heads=n_heads, n_encoder_layers=n_layers, n_decoder_layers=n_layers,
                                         d_ff=4 * d_model, dropout=dropout, max_len=max_len, activation="gelu",
                                         norm_first=True))


def decoder_only(vocab: Vocabularies, *, n_embd: int = 128, n_layer: int = 5, n_head: int = 4,
                 dropout: float = 0.1, block_size: int = 48) -> nn.Module:
    """The chapter's decoder-only translator: a :class:`lmlib.gpt.GPT` over the joint ids."""
    from lmlib.gpt import GPT, GPTConfig

    _check_vocab(vocab, "decoder_only")
    return GPT(GPTConfig(vocab_size=vocab.joint_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                         n_embd=n_embd, dropout=dropout))


def _check_vocab(vocab, who: str) -> None:
    if not isinstance(vocab, Vocabularies):
        raise TypeError(f"{who}: vocab must be the Vocabularies of build_vocabularies, got {type(vocab).__name__}")


#: The data settings of chapter 9's experiments and zoo model (see :func:`cedict_data`).
DATA_RECIPE = {"max_chars": 4, "n_val": 2000, "n_test": 2000, "split_seed": 0, "max_target_chars": 32}


@dataclass(frozen=True)
class TranslationData:
    """The words of each split, the examples of both tasks per split, and the vocabularies."""

    split: object
    train: tuple[Example, ...]
    val: tuple[Example, ...]
    test: tuple[Example, ...]
    vocab: Vocabularies


def cedict_data(recipe: dict | None = None, vocab: Vocabularies | None = None) -> TranslationData:
    """CC-CEDICT split by headword (:func:`lmlib.cedict.split_words`) into the examples of both
    tasks; settings from ``recipe`` (default :data:`DATA_RECIPE`). ``vocab`` (optional) is used
    instead of building the vocabularies from the training examples (a shipped model's)."""
    from lmlib import cedict

    r = dict(DATA_RECIPE)
    if recipe is not None:
        if not isinstance(recipe, dict) or set(recipe) - set(DATA_RECIPE):
            raise ValueError(f"cedict_data: recipe must be a dict with keys among {sorted(DATA_RECIPE)}, "
                             f"got {recipe!r:.80}")
        r.update(recipe)
    for k, v in r.items():
        check_int(k, v, min=1 if k != "split_seed" else 0, who="cedict_data")
    if vocab is not None:
        _check_vocab(vocab, "cedict_data")
    split = cedict.split_words(cedict.load_words(r["max_chars"]), n_val=r["n_val"], n_test=r["n_test"],
                               seed=r["split_seed"])
    parts = {p: tuple(e for task in TASKS for e in make_examples(getattr(split, p), task,
                                                                max_target_chars=r["max_target_chars"]))
             for p in ("train", "val", "test")}
    return TranslationData(split, parts["train"], parts["val"], parts["test"],
                           vocab if vocab is not None else build_vocabularies(parts["train"]))


class TargetLM(nn.Module):
    """A decoder-only translator seen as a language model over the target ids only:
    ``forward(idx) -> (lm_target_logits(model, idx, n_out), None)``, so that the generic decoders of
    :mod:`lmlib.beam` search the same output space the model was trained on."""

    def __init__(self, model: nn.Module, n_out: int) -> None:
        super().__init__()
        if _arch(model, "TargetLM") != "lm":
            raise TypeError(f"TargetLM: model must be an lmlib GPT, got {type(model).__name__}")
        check_int("n_out", n_out, min=1, max=model.config.vocab_size, who="TargetLM")
        self.model, self.n_out = model, n_out
        self.config = model.config

    def forward(self, idx: torch.Tensor, targets=None):
        return lm_target_logits(self.model, idx, self.n_out), None


def _decode_text(vocab: Vocabularies, ids: list[int]) -> str:
    eos = vocab.target.special_tokens[EOS]
    if eos in ids:
        ids = ids[:ids.index(eos)]
    return vocab.target.decode(ids)


def _lm_search(model: nn.Module, vocab: Vocabularies, prompts: torch.Tensor, beam_size: int, max_new: int,
               length_penalty: float) -> list[list[int]]:
    """Greedy or beam search of a decoder-only translator from prompts (G, P) of one length,
    over the target ids only (:func:`lm_target_logits`)."""
    from lmlib import beam

    n_out, eos = vocab.target.vocab_size, vocab.target.special_tokens[EOS]
    rows = prompts.repeat_interleave(beam_size, dim=0)

    def next_log_probs(tokens):
        idx = torch.cat([rows, tokens], dim=1)                  # (G*K, P + t)
        return F.log_softmax(lm_target_logits(model, idx, n_out)[:, -1].float(), dim=-1)

    if beam_size == 1:
        return beam._greedy_search(next_log_probs, len(prompts), max_new, eos, vocab.target.special_tokens[PAD],
                                   prompts.device)
    best = beam._beam_search(next_log_probs, len(prompts), beam_size, max_new, eos,
                             lambda n: beam._lp(n, length_penalty, "average"), prompts.device)
    return [tokens for _, tokens in best]


@torch.no_grad()
def translate(model: nn.Module, vocab: Vocabularies, examples: Sequence[Example], *, beam_size: int = 1,
              max_len: int = 40, length_penalty: float = 1.0, batch_size: int = 256) -> list[str]:
    """The model's output for each example's source and task: greedy (``beam_size=1``) or beam
    search (:mod:`lmlib.beam`, finished hypotheses scored by log-probability over
    ``length**length_penalty``), at most ``max_len`` target tokens, cut at ``<eos>``."""
    from lmlib import beam

    who = "translate"
    arch = _arch(model, who)
    _check_batch(vocab, examples, who)
    _check_sizes(model, arch, vocab, who)
    longest = max(len(e.source) for e in examples)       # the source (and <task>, <sep>) must fit
    room = model.config.max_len - 1 if arch == "seq2seq" else model.config.block_size - 3
    if longest > room:
        raise ValueError(f"{who}: a source of {longest} characters in examples does not fit the model "
                         f"(at most {room})")
    check_int("beam_size", beam_size, min=1, who=who)
    check_int("max_len", max_len, min=1, who=who)
    check_float("length_penalty", length_penalty, min=0.0, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    t = vocab.target.special_tokens
    was = model.training
    model.eval()
    out: list[str | None] = [None] * len(examples)
    try:
        if arch == "seq2seq":
            max_len = min(max_len, model.config.max_len)
            for i in range(0, len(examples), batch_size):
                chunk = list(examples[i:i + batch_size])
                src = _pad([source_ids(vocab, e) for e in chunk], vocab.source.special_tokens[PAD])
                mask = src == vocab.source.special_tokens[PAD]
                if beam_size == 1:
                    ids = beam.greedy_search_seq2seq(model, src, max_len=max_len, bos_id=t[BOS], eos_id=t[EOS],
                                                     pad_id=t[PAD], src_key_padding_mask=mask)
                else:
                    ids = beam.beam_search_seq2seq(model, src, beam_size=beam_size, max_len=max_len, bos_id=t[BOS],
                                                   eos_id=t[EOS], src_key_padding_mask=mask,
                                                   length_penalty=length_penalty)
                for j, row in enumerate(ids):
                    out[i + j] = _decode_text(vocab, list(row))
        else:
            # prompts of one length are decoded together (a GPT has no padding mask), K beams each
            by_len: dict[int, list[int]] = {}
            for k, e in enumerate(examples):
                by_len.setdefault(len(lm_prompt(vocab, e)), []).append(k)
            for n, ks in sorted(by_len.items()):
                room = min(max_len, model.config.block_size - n)          # >= 1, checked above
                for i in range(0, len(ks), batch_size):
                    chunk = ks[i:i + batch_size]
                    prompts = torch.tensor([lm_prompt(vocab, examples[k]) for k in chunk])
                    for k, ids in zip(chunk, _lm_search(model, vocab, prompts, beam_size, room, length_penalty)):
                        out[k] = _decode_text(vocab, ids)
    finally:
        model.train(was)
    return out


@torch.no_grad()
def cross_attention(model: nn.Module, vocab: Vocabularies, example: Example, output: str) -> torch.Tensor:
    """Where an encoder–decoder looks while it writes ``output`` for ``example``'s source.

    Returns the cross-attention weights ``(n_decoder_layers, n_heads, n + 1, len(source) + 1)``
    of the teacher-forced pass ``<bos> output``, where ``n`` counts the target tokens of
    ``output`` (its characters, or its syllables for a syllable vocabulary): row ``i`` is the step
    that predicts output token ``i`` (the last row predicts ``<eos>``), column 0 is the task token
    and column ``j`` the source's character ``j``. Every row sums to 1. Tokens of ``output``
    outside the target vocabulary are read as ``<unk>``.
    """
    who = "cross_attention"
    if _arch(model, who) != "seq2seq":
        raise TypeError(f"{who}: model must be an encoder–decoder (lmlib Transformer), got {type(model).__name__}")
    if not isinstance(example, Example):
        raise TypeError(f"{who}: example must be an Example, got {type(example).__name__}")
    _check_batch(vocab, [example], who)
    _check_sizes(model, "seq2seq", vocab, who, [example])
    check_str("output", output, who=who)
    src = torch.tensor([source_ids(vocab, example)])
    tgt = torch.tensor([[vocab.target.special_tokens[BOS]] + vocab.target.encode_ordinary(output)])
    for name, ids in (("example.source", src), ("output", tgt)):
        if ids.shape[1] > model.config.max_len:
            raise ValueError(f"{who}: {name} needs {ids.shape[1]} positions, the model has {model.config.max_len}")
    weights: list[torch.Tensor] = []

    def keep(module, args, kwargs, out):          # the same call again, on the path that returns weights
        q, k, v = (list(args) + [kwargs.get("key"), kwargs.get("value")])[:3]
        weights.append(module.forward(q, k, v, key_padding_mask=kwargs.get("key_padding_mask"),
                                      need_weights=True)[1][0])

    was = model.training
    model.eval()
    hooks = [layer.cross_attn.register_forward_hook(keep, with_kwargs=True) for layer in model.decoder.layers]
    try:
        model.decode(tgt, model.encode(src))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return torch.stack(weights)
