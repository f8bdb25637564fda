"""Scores and baselines for chapter 9's two CC-CEDICT tasks (see :mod:`lmlib.translation`).

Transliteration (汉字 -> pinyin) is scored syllable by syllable; a word's answer is right if it
equals *any* of its readings (a headword with two readings, such as 行, has two right answers):

* :func:`exact_match`: the fraction of words whose whole answer is a reading;
* :func:`syllable_error_rate`: edit distance between the answer's and the reading's syllables
  (the closest reading), summed over words, divided by the readings' syllable count;
* :func:`tone_accuracy`: the fraction of reference syllables whose tone digit the answer's
  syllable *at the same position* has (a transliteration is monotonic, one syllable per
  character, so position is the alignment);
* :func:`heteronym_accuracy`: position by position, only at the characters that have more than
  one reading in the training words: the syllables where context must decide.

Translation (Chinese -> English) is scored with sacrebleu's chrF and BLEU against every English
sense of the word (:func:`chrf`, :func:`bleu`; corpus-level, as those metrics are defined) and,
for paired comparisons over words, with sentence-level chrF (:func:`sentence_chrf`).

Baselines that read the training words only: :class:`MostFrequentReading` (each character's
commonest syllable), :class:`NearestHeadword` (the English of the training headword that shares
the most characters) and :class:`CharacterGlosses` (the first English sense of each character,
joined).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

from lmlib.cedict import Word
from lmlib.validation import check_sequence, check_str

__all__ = ["edit_distance", "exact_match", "syllable_error_rate", "tone_accuracy", "heteronym_hits", "heteronym_accuracy",
           "heteronyms", "chrf", "bleu", "sentence_chrf", "MostFrequentReading", "NearestHeadword",
           "CharacterGlosses"]


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions that turn ``a`` into ``b``."""
    check_sequence("a", a, who="edit_distance")
    check_sequence("b", b, who="edit_distance")
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def _check_pairs(preds, refs, who: str) -> None:
    check_sequence("preds", preds, of=str, who=who)
    check_sequence("refs", refs, who=who)
    if len(preds) != len(refs) or not preds:
        raise ValueError(f"{who}: preds and refs must have one non-zero length, got {len(preds)} and {len(refs)}")
    for i, r in enumerate(refs):
        if isinstance(r, str) or not r or not all(isinstance(x, str) for x in r):
            raise TypeError(f"{who}: refs[{i}] must be a non-empty sequence of reference strings, got {r!r:.60}")


def _check_readings(preds, refs, who: str) -> None:
    """:func:`_check_pairs`, and every reference (a reading) has at least one syllable."""
    _check_pairs(preds, refs, who)
    for i, r in enumerate(refs):
        if any(not x.split() for x in r):
            raise ValueError(f"{who}: refs[{i}] has a reading with no syllable: {list(r)!r:.60}")


def exact_match(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """The fraction of ``preds`` equal to one of their references (``refs[i]``: a list of strings)."""
    _check_pairs(preds, refs, "exact_match")
    return sum(p in r for p, r in zip(preds, refs)) / len(preds)


def syllable_error_rate(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Total syllable edit distance to the closest reading, over the total syllables of those readings."""
    _check_readings(preds, refs, "syllable_error_rate")
    errors = length = 0
    for p, rs in zip(preds, refs):
        d, n = min((edit_distance(p.split(), r.split()), len(r.split())) for r in rs)
        errors, length = errors + d, length + n
    return errors / length


def _best_reading(p: list[str], rs: Sequence[str]) -> list[str]:
    return min((r.split() for r in rs), key=lambda r: edit_distance(p, r))


def tone_accuracy(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """The fraction of reference syllables (of the closest reading) whose tone digit the predicted
    syllable at the same position carries; a missing syllable counts as wrong."""
    _check_readings(preds, refs, "tone_accuracy")
    right = total = 0
    for p, rs in zip(preds, refs):
        ps = p.split()
        r = _best_reading(ps, rs)
        right += sum(i < len(ps) and ps[i][-1:] == s[-1] for i, s in enumerate(r))
        total += len(r)
    return right / total


def heteronyms(train_words: Sequence[Word]) -> set[str]:
    """The characters with more than one syllable over the readings of ``train_words``."""
    check_sequence("train_words", train_words, of=Word, who="heteronyms")
    seen: dict[str, set[str]] = defaultdict(set)
    for w in train_words:
        for reading in w.readings:
            for c, s in zip(w.headword, reading):
                seen[c].add(s)
    return {c for c, s in seen.items() if len(s) > 1}


def _check_chars(chars, who: str) -> None:
    if not isinstance(chars, (set, frozenset)):
        raise TypeError(f"{who}: chars must be a set of characters (from heteronyms), got {type(chars).__name__}")
    for c in chars:
        if not isinstance(c, str) or len(c) != 1:
            raise TypeError(f"{who}: chars must hold single characters, got {c!r}")


def heteronym_hits(sources: Sequence[str], preds: Sequence[str], refs: Sequence[Sequence[str]],
                   chars: set[str]) -> list[tuple[int, bool]]:
    """``(example index, right)`` for every position whose character is in ``chars`` (the
    heteronyms): a position is right when the predicted syllable there equals the closest
    reading's. The pairs of two systems on the same examples line up, for paired comparisons."""
    who = "heteronym_hits"
    _check_readings(preds, refs, who)
    check_sequence("sources", sources, of=str, who=who)
    if len(sources) != len(preds):
        raise ValueError(f"{who}: sources and preds must have one length, got {len(sources)} and {len(preds)}")
    _check_chars(chars, who)
    hits = []
    for k, (src, p, rs) in enumerate(zip(sources, preds, refs)):
        ps = p.split()
        r = _best_reading(ps, rs)
        hits += [(k, i < len(ps) and ps[i] == r[i]) for i, c in enumerate(src) if c in chars and i < len(r)]
    return hits


def heteronym_accuracy(sources: Sequence[str], preds: Sequence[str], refs: Sequence[Sequence[str]],
                       chars: set[str]) -> tuple[float, int]:
    """``(accuracy, count)`` over the heteronym positions of :func:`heteronym_hits`
    (``nan`` when there are none)."""
    hits = heteronym_hits(sources, preds, refs, chars)
    return (sum(right for _, right in hits) / len(hits) if hits else float("nan")), len(hits)


def _streams(refs: Sequence[Sequence[str]]) -> list[list[str]]:
    """sacrebleu's reference layout: stream k holds every sentence's k-th reference, ``None`` where a
    sentence has fewer (sacrebleu's way of giving sentences different numbers of references)."""
    k = max(len(r) for r in refs)
    return [[r[j] if j < len(r) else None for r in refs] for j in range(k)]


def chrf(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2), 0..100, against every reference."""
    import sacrebleu

    _check_pairs(preds, refs, "chrf")
    return sacrebleu.corpus_chrf(list(preds), _streams(refs)).score


def bleu(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenisation, up to 4-grams), 0..100."""
    import sacrebleu

    _check_pairs(preds, refs, "bleu")
    return sacrebleu.corpus_bleu(list(preds), _streams(refs)).score


def sentence_chrf(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
    """chrF of each prediction against its own references (for paired comparisons over words)."""
    import sacrebleu

    _check_pairs(preds, refs, "sentence_chrf")
    return [sacrebleu.sentence_chrf(p, list(r)).score for p, r in zip(preds, refs)]


def _check_words(words, who: str) -> None:
    check_sequence("train_words", words, of=Word, nonempty=True, who=who)


class MostFrequentReading:
    """Transliteration without context: each character gets the syllable it has most often in the
    training words' readings (ties: the syllable seen first); an unseen character gets the
    commonest syllable overall."""

    def __init__(self, train_words: Sequence[Word]) -> None:
        _check_words(train_words, "MostFrequentReading")
        counts: dict[str, Counter] = defaultdict(Counter)
        overall: Counter = Counter()
        for w in train_words:
            for reading in w.readings:
                for c, s in zip(w.headword, reading):
                    counts[c][s] += 1
                    overall[s] += 1
        self.reading = {c: n.most_common(1)[0][0] for c, n in counts.items()}
        self.fallback = overall.most_common(1)[0][0]

    def __call__(self, headword: str) -> str:
        check_str("headword", headword, nonempty=True, who="MostFrequentReading")
        return " ".join(self.reading.get(c, self.fallback) for c in headword)


class NearestHeadword:
    """Translation by retrieval: the first English sense of the training headword with the largest
    character overlap (Jaccard index of the two character multisets; ties: the closer length, then
    dictionary order). A word that shares no character with any training word gets ``""``."""

    def __init__(self, train_words: Sequence[Word]) -> None:
        _check_words(train_words, "NearestHeadword")
        self.words = list(train_words)
        self.index: dict[str, list[int]] = defaultdict(list)
        for i, w in enumerate(self.words):
            for c in set(w.headword):
                self.index[c].append(i)

    def nearest(self, headword: str) -> Word | None:
        check_str("headword", headword, nonempty=True, who="NearestHeadword.nearest")
        q = Counter(headword)
        best, best_key = None, None
        for i in sorted({i for c in q for i in self.index.get(c, ())}):
            h = Counter(self.words[i].headword)
            jaccard = sum((q & h).values()) / sum((q | h).values())
            key = (-jaccard, abs(len(self.words[i].headword) - len(headword)), i)
            if best_key is None or key < best_key:
                best, best_key = self.words[i], key
        return best

    def __call__(self, headword: str) -> str:
        w = self.nearest(headword)
        return "" if w is None else w.senses[0]


class CharacterGlosses:
    """Translation by composition: the first English sense of each character that is a training
    headword by itself, joined with spaces (characters without one are skipped)."""

    def __init__(self, train_words: Sequence[Word]) -> None:
        _check_words(train_words, "CharacterGlosses")
        self.gloss = {w.headword: w.senses[0] for w in train_words if len(w.headword) == 1}

    def __call__(self, headword: str) -> str:
        check_str("headword", headword, nonempty=True, who="CharacterGlosses")
        return " ".join(self.gloss[c] for c in headword if c in self.gloss)
