"""Labelled tasks made from the corpus itself, for fine-tuning (chapter 7).

Genre classification
--------------------
An example is a short stretch of spoken text (a few consecutive lines of dialogue, speaker names
and stage directions removed) labelled with the genre of its play. Train, validation and test
examples come from different plays (:func:`lmlib.data.split_plays`), so a test passage is always
from a play the model has never seen: it must recognise the *kind* of play, not the play.

The corpus has six genre folders, but with one test play per genre, a six-way test would measure
six single plays. The default merges them into the three kinds of the First Folio (1623):

- ``comedy``  = comedies + problem plays + romances (the Folio printed *Measure for Measure*,
  *All's Well*, *The Tempest* and *The Winter's Tale* among the comedies),
- ``history`` = histories,
- ``tragedy`` = tragedies + Roman plays (*Julius Caesar*, *Coriolanus*... are Folio tragedies).

Two plays do not fit perfectly (the Folio placed *Cymbeline* with the tragedies, and
*Troilus and Cressida* between the groups); folders are kept whole for simplicity. Pass
``merge=False`` for the six folder genres.

Real or shuffled?
-----------------
:func:`shuffled_lines_dataset` labels single lines of speech: ``1`` ("real") for a line as the
play has it, ``0`` ("shuffled") for a line whose words (split at spaces, punctuation staying
with its word) were put in a random order. Both classes are made of the same words, so any
model that only counts words is at chance by construction; what separates the classes is
knowledge of the language (word order, which words go together).

Instruction pairs
-----------------
:func:`speaker_pairs` builds ``("Who speaks: <line>\\nSpeaker:", " NAME\\n")`` pairs from one play's
main characters, split at random into training and held-out prompts.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch

from lmlib.data import GENRES, Split, load_play, split_plays
from lmlib.validation import check_bool, check_choice, check_float, check_int, check_sequence, check_str

__all__ = ["GENRE_GROUPS", "Example", "LabelledDataset", "genre_of", "play_chunks", "genre_dataset",
           "shuffle_words", "shuffled_lines_dataset", "shuffled_pairs", "speaker_pairs"]

GENRE_GROUPS: dict[str, tuple[str, ...]] = {
    "comedy": ("comedies", "problems", "romances"),
    "history": ("histories",),
    "tragedy": ("tragedies", "roman"),
}


def genre_of(folder_genre: str, merge: bool = True) -> str:
    """The class name of a folder genre (``"roman" -> "tragedy"`` when merged)."""
    check_str("folder_genre", folder_genre, who="genre_of")
    check_bool("merge", merge, who="genre_of")
    if folder_genre not in GENRES:
        raise ValueError(f"unknown genre {folder_genre!r}; the genres are {', '.join(GENRES)}")
    if not merge:
        return folder_genre
    return next(k for k, v in GENRE_GROUPS.items() if folder_genre in v)


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    play: str

    def __post_init__(self) -> None:
        check_str("text", self.text, who="Example")
        check_int("label", self.label, min=0, who="Example")
        check_str("play", self.play, who="Example")


@dataclass
class LabelledDataset:
    """Texts with integer labels; ``class_names[label]`` names a label."""

    examples: list[Example]
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        self.examples = check_sequence("examples", self.examples, of=Example, who="LabelledDataset")
        names = check_sequence("class_names", self.class_names, of=str, nonempty=True, who="LabelledDataset")
        self.class_names = tuple(names)
        bad = [e.label for e in self.examples if e.label >= len(names)]
        if bad:
            raise ValueError(f"LabelledDataset: examples hold label {bad[0]}, but class_names has only "
                             f"{len(names)} names")

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Example:
        return self.examples[i]

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([e.label for e in self.examples], dtype=torch.long)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> dict[str, int]:
        c = Counter(e.label for e in self.examples)
        return {name: c.get(i, 0) for i, name in enumerate(self.class_names)}

    def subset(self, indices: Sequence[int]) -> "LabelledDataset":
        indices = check_sequence("indices", indices, of=int, who="LabelledDataset.subset")
        bad = [i for i in indices if not -len(self.examples) <= i < len(self.examples)]
        if bad:
            raise ValueError(f"LabelledDataset.subset: indices holds {bad[0]}, outside 0..{len(self.examples) - 1}")
        return LabelledDataset([self.examples[i] for i in indices], self.class_names)

    def balanced_sample(self, n: int, seed: int = 0) -> "LabelledDataset":
        """``n`` examples, as equal per class as possible (the first ``n % K`` classes get one
        more), drawn without replacement with ``random.Random(seed)``; nested: the sample of
        a smaller ``n`` is contained in the sample of a larger one with the same seed."""
        k = self.num_classes
        check_int("n", n, who="LabelledDataset.balanced_sample")
        check_int("seed", seed, who="LabelledDataset.balanced_sample")
        if n < k:
            raise ValueError(f"a balanced sample needs n >= number of classes ({k}), got {n!r}")
        rng = random.Random(seed)
        by_class = [[i for i, e in enumerate(self.examples) if e.label == c] for c in range(k)]
        for idx in by_class:
            rng.shuffle(idx)
        want = [n // k + (1 if c < n % k else 0) for c in range(k)]
        for c in range(k):
            if want[c] > len(by_class[c]):
                raise ValueError(f"class {self.class_names[c]!r} has only {len(by_class[c])} examples; "
                                 f"cannot draw {want[c]}")
        chosen = sorted(i for c in range(k) for i in by_class[c][: want[c]])
        return self.subset(chosen)


def _spoken_lines(play_name: str) -> list[str]:
    """All spoken lines of a play in order (no speaker names, no bracketed stage directions)."""
    lines = []
    for p in load_play(play_name).speeches():
        for line in p.body.split("\n"):
            line = line.strip()
            if line and not (line.startswith("[") and line.endswith("]")):
                lines.append(line)
    return lines


def _split_long(line: str, max_chars: int) -> list[str]:
    """Cut a line longer than ``max_chars`` at word boundaries (prose speeches have long lines)."""
    if len(line) <= max_chars:
        return [line]
    pieces, cur = [], ""
    for word in line.split(" "):
        if len(word) > max_chars:
            word = word[:max_chars]  # a single "word" this long does not occur in the plays
        if cur and len(cur) + 1 + len(word) > max_chars:
            pieces.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        pieces.append(cur)
    return pieces


def play_chunks(play_name: str, *, min_chars: int = 60, max_chars: int = 160) -> list[str]:
    """A play's dialogue cut into consecutive chunks of whole lines, each of ``min_chars`` to
    ``max_chars`` characters (lines joined with newlines). Lines longer than ``max_chars`` are
    first cut at spaces; a last chunk shorter than ``min_chars`` is dropped."""
    check_str("play_name", play_name, nonempty=True, who="play_chunks")
    check_int("min_chars", min_chars, min=1, who="play_chunks")
    check_int("max_chars", max_chars, min=1, who="play_chunks")
    if not min_chars <= max_chars:
        raise ValueError(f"need 0 < min_chars <= max_chars, got {min_chars}, {max_chars}")
    pieces = [p for line in _spoken_lines(play_name) for p in _split_long(line, max_chars)]
    chunks, cur = [], []
    size = 0
    for piece in pieces:
        extra = len(piece) + (1 if cur else 0)
        if cur and size + extra > max_chars:
            if size >= min_chars:
                chunks.append("\n".join(cur))
            cur, size = [], 0
            extra = len(piece)
        cur.append(piece)
        size += extra
    if cur and size >= min_chars:
        chunks.append("\n".join(cur))
    return chunks


def _check_part_args(part, split, who: str) -> None:
    check_choice("part", part, ("train", "val", "test"), who=who)
    if split is not None and not isinstance(split, Split):
        raise TypeError(f"{who}: split must be an lmlib.data.Split (from split_plays) or None, "
                        f"got {type(split).__name__}")


def genre_dataset(part: str, *, split: Split | None = None, merge: bool = True, min_chars: int = 60,
                  max_chars: int = 160, max_per_play: int | None = None, seed: int = 0) -> LabelledDataset:
    """Genre-labelled chunks of dialogue from the plays of one part of a split by play.

    ``part``: ``"train"``, ``"val"`` or ``"test"`` of ``split`` (default ``split_plays(0)``).
    ``max_per_play`` keeps a random subset of each play's chunks (``random.Random(seed)``), so
    long plays do not dominate; ``None`` keeps all of them.
    """
    _check_part_args(part, split, "genre_dataset")
    check_bool("merge", merge, who="genre_dataset")
    check_int("min_chars", min_chars, min=1, who="genre_dataset")
    check_int("max_chars", max_chars, min=min_chars, who="genre_dataset")
    if max_per_play is not None:
        check_int("max_per_play", max_per_play, min=1, who="genre_dataset")
    check_int("seed", seed, who="genre_dataset")
    split = split if split is not None else split_plays(0)
    plays = split[part]
    if not plays:
        raise ValueError(f"the {part!r} split has no plays")
    class_names = tuple(GENRE_GROUPS) if merge else GENRES
    rng = random.Random(seed)
    examples = []
    for name in plays:
        label = class_names.index(genre_of(load_play(name).genre, merge))
        chunks = play_chunks(name, min_chars=min_chars, max_chars=max_chars)
        if max_per_play is not None and len(chunks) > max_per_play:
            keep = sorted(rng.sample(range(len(chunks)), max_per_play))
            chunks = [chunks[i] for i in keep]
        examples += [Example(c, label, name) for c in chunks]
    return LabelledDataset(examples, class_names)


def shuffle_words(line: str, rng: random.Random, *, keep_ends: bool = False) -> str:
    """The words of ``line`` (split at white space) in a random order that differs from the
    original one. With ``keep_ends`` the first and the last word stay in place and only the
    interior words move, so the capital letter at the start and the punctuation at the end are
    those of the real line. Raises ``ValueError`` when no different order exists (fewer than
    two distinct words that may move)."""
    check_str("line", line, who="shuffle_words")
    if not isinstance(rng, random.Random):
        raise TypeError(f"shuffle_words: rng must be a random.Random, got {type(rng).__name__}")
    check_bool("keep_ends", keep_ends, who="shuffle_words")
    words = line.split()
    head, mid, tail = ([words[0]], words[1:-1], [words[-1]]) if keep_ends and len(words) >= 2 else ([], words, [])
    if len(set(mid)) < 2:
        raise ValueError(f"cannot shuffle {line!r}: it needs at least two different words"
                         f"{' between its first and last word' if keep_ends else ''}")
    while True:
        perm = mid[:]
        rng.shuffle(perm)
        if perm != mid:
            return " ".join(head + perm + tail)


def _usable_lines(name: str, min_words: int, max_chars: int, keep_ends: bool) -> list[str]:
    def movable(ln: str) -> list[str]:
        w = ln.split()
        return w[1:-1] if keep_ends else w
    return [ln for ln in _spoken_lines(name)
            if len(ln.split()) >= min_words and len(ln) <= max_chars and len(set(movable(ln))) >= 2]


def shuffled_lines_dataset(part: str, *, split: Split | None = None, min_words: int = 6, max_chars: int = 100,
                           max_per_play: int | None = None, seed: int = 0, keep_ends: bool = False
                           ) -> LabelledDataset:
    """Lines of speech labelled ``1`` (real) or ``0`` (the same words shuffled), from the plays
    of one part (``"train"``, ``"val"``, ``"test"``) of ``split`` (default ``split_plays(0)``).

    A line is used when it has at least ``min_words`` words, at most ``max_chars`` characters
    and two different words (longer lines are skipped, not cut). Within each play, the usable
    lines (at most ``max_per_play`` of them, drawn at random) are put in a random order and
    alternately kept as they are and shuffled (:func:`shuffle_words`), so each line appears
    once, in one of the two forms, and the labels are balanced within one example per play.
    Everything is drawn from ``random.Random(seed)``; the examples keep the play's line order.
    ``keep_ends`` shuffles only the interior words (:func:`shuffle_words`), which removes the
    cues of a capital first letter and final punctuation.
    """
    if isinstance(min_words, bool) or not isinstance(min_words, int) or min_words < 2:
        raise ValueError(f"min_words must be an int >= 2 (a shuffle needs two words), got {min_words!r}")
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive int, got {max_chars!r}")
    if max_per_play is not None and (isinstance(max_per_play, bool) or not isinstance(max_per_play, int)
                                     or max_per_play < 2):
        raise ValueError(f"max_per_play must be None or an int >= 2, got {max_per_play!r}")
    check_int("seed", seed, who="shuffled_lines_dataset")
    check_bool("keep_ends", keep_ends, who="shuffled_lines_dataset")
    _check_part_args(part, split, "shuffled_lines_dataset")
    split = split if split is not None else split_plays(0)
    plays = split[part]
    if not plays:
        raise ValueError(f"the {part!r} split has no plays")
    rng = random.Random(seed)
    examples = []
    for name in plays:
        lines = _usable_lines(name, min_words, max_chars, keep_ends)
        keep = list(range(len(lines)))
        if max_per_play is not None and len(keep) > max_per_play:
            keep = rng.sample(keep, max_per_play)
        rng.shuffle(keep)
        real = {i for j, i in enumerate(keep) if j % 2 == 0}
        for i in sorted(keep):
            text = lines[i] if i in real else shuffle_words(lines[i], rng, keep_ends=keep_ends)
            examples.append(Example(text, int(i in real), name))
    if not examples:
        raise ValueError(f"no line of the {part!r} plays has >= {min_words} words and <= {max_chars} characters")
    return LabelledDataset(examples, ("shuffled", "real"))


def shuffled_pairs(part: str, *, split: Split | None = None, min_words: int = 6, max_chars: int = 100,
                   max_per_play: int | None = None, seed: int = 0, keep_ends: bool = True
                   ) -> list[tuple[str, str, str]]:
    """``(real_line, its_shuffle, play)`` triples from the plays of one part of ``split``: the
    same usable lines as :func:`shuffled_lines_dataset`, each with one shuffle of its own words
    (interior words only with ``keep_ends``). For the paired test "is the real line more likely
    than its shuffle?", which needs neither labels nor a threshold."""
    if isinstance(min_words, bool) or not isinstance(min_words, int) or min_words < 2:
        raise ValueError(f"min_words must be an int >= 2 (a shuffle needs two words), got {min_words!r}")
    check_int("max_chars", max_chars, min=1, who="shuffled_pairs")
    if max_per_play is not None:
        check_int("max_per_play", max_per_play, min=1, who="shuffled_pairs")
    check_int("seed", seed, who="shuffled_pairs")
    check_bool("keep_ends", keep_ends, who="shuffled_pairs")
    _check_part_args(part, split, "shuffled_pairs")
    split = split if split is not None else split_plays(0)
    rng = random.Random(seed)
    out = []
    for name in split[part]:
        lines = _usable_lines(name, min_words, max_chars, keep_ends)
        keep = list(range(len(lines)))
        if max_per_play is not None and len(keep) > max_per_play:
            keep = sorted(rng.sample(keep, max_per_play))
        out += [(lines[i], shuffle_words(lines[i], rng, keep_ends=keep_ends), name) for i in keep]
    if not out:
        raise ValueError(f"no line of the {part!r} plays has >= {min_words} words and <= {max_chars} characters")
    return out


def speaker_pairs(play_name: str = "hamlet", *, top_k: int = 4, max_line_chars: int = 60, test_fraction: float = 0.25,
                  seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """Instruction pairs "who speaks this line?" for the ``top_k`` most talkative characters of a play.

    Each speech of those characters gives one pair from its first spoken line (speeches whose
    first line is longer than ``max_line_chars`` or shorter than 10 characters are skipped):
    prompt ``"Who speaks: <line>\\nSpeaker:"``, response ``" <NAME>\\n"``. Returns
    ``(train_pairs, test_pairs, speakers)``, split at random (``random.Random(seed)``).
    """
    check_str("play_name", play_name, nonempty=True, who="speaker_pairs")
    check_int("top_k", top_k, min=1, who="speaker_pairs")
    check_int("max_line_chars", max_line_chars, min=10, who="speaker_pairs")
    check_float("test_fraction", test_fraction, min=0.0, max=1.0, min_open=True, max_open=True, who="speaker_pairs")
    check_int("seed", seed, who="speaker_pairs")
    speeches = load_play(play_name).speeches()
    counts = Counter(s.speaker for s in speeches)
    speakers = [name for name, _ in counts.most_common(top_k)]
    pairs = []
    for s in speeches:
        if s.speaker not in speakers:
            continue
        lines = [ln.strip() for ln in s.body.split("\n") if ln.strip() and not ln.strip().startswith("[")]
        if not lines or not 10 <= len(lines[0]) <= max_line_chars:
            continue
        pairs.append((f"Who speaks: {lines[0]}\nSpeaker:", f" {s.speaker}\n"))
    rng = random.Random(seed)
    rng.shuffle(pairs)
    n_test = max(1, int(round(test_fraction * len(pairs))))
    return pairs[n_test:], pairs[:n_test], speakers
