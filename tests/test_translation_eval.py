"""lmlib.translation_eval: syllable metrics against hand-computed cases and an independent edit
distance, chrF/BLEU against sacrebleu called directly, and the three baselines."""

import functools
import math
import random

import pytest
import sacrebleu

from lmlib import translation_eval as E
from lmlib.cedict import Word


def _levenshtein(a, b):
    """Independent reference: the recursive definition, memoised."""
    a, b = tuple(a), tuple(b)

    @functools.lru_cache(maxsize=None)
    def d(i, j):
        if i == 0:
            return j
        if j == 0:
            return i
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return d(len(a), len(b))


def test_edit_distance_against_the_recursive_definition():
    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 6))]
        b = [rng.choice("abc") for _ in range(rng.randint(0, 6))]
        assert E.edit_distance(a, b) == _levenshtein(a, b) == E.edit_distance(b, a)
    assert E.edit_distance(["yin2", "hang2"], ("yin2", "xing2")) == 1
    assert E.edit_distance([], ["a", "b"]) == 2
    assert E.edit_distance(["ab", "c"], ["a", "bc"]) == 2           # syllables, not characters


def test_exact_match_any_reading():
    refs = [["hang2", "xing2"], ["yin2 hang2"], ["ren2"]]
    assert E.exact_match(["xing2", "yin2 hang2", "ren"], refs) == pytest.approx(2 / 3)
    assert E.exact_match(["hang2", "yin2  hang2 ", "ren2"], refs) == pytest.approx(2 / 3)   # whole string


def test_syllable_error_rate_hand_computed():
    # a word with two readings: distance to the closer one (0), its 1 syllable
    assert E.syllable_error_rate(["xing2"], [["hang2", "xing2"]]) == 0.0
    # a missing syllable: 1 error over 2; a wrong tone only: 1 substitution over 2
    assert E.syllable_error_rate(["yin2"], [["yin2 hang2"]]) == 0.5
    assert E.syllable_error_rate(["yin2 hang4"], [["yin2 hang2"]]) == 0.5
    # corpus-level: total errors (0 + 1 + 2) over total reference syllables (1 + 2 + 3)
    preds = ["xing2", "yin2", "zhong1 guo2 xx"]
    refs = [["hang2", "xing2"], ["yin2 hang2"], ["zhong1 hua2 ren2"]]
    assert E.syllable_error_rate(preds, refs) == pytest.approx(3 / 6)
    # the closest reading counts its own length: 长城 vs "chang2" / "chang2 cheng2"
    assert E.syllable_error_rate(["chang2 cheng2 x"], [["chang2", "chang2 cheng2"]]) == pytest.approx(1 / 2)


def test_tone_accuracy_hand_computed():
    assert E.tone_accuracy(["yin2 hang4"], [["yin2 hang2"]]) == 0.5          # wrong tone only
    assert E.tone_accuracy(["yin2 xang2"], [["yin2 hang2"]]) == 1.0          # wrong syllable, right tone
    assert E.tone_accuracy(["yin2"], [["yin2 hang2"]]) == 0.5                # missing syllable: wrong
    # scored against the closest reading (the second here), not the first
    assert E.tone_accuracy(["xing2 ren4"], [["hang4 ren2", "xing2 ren2"]]) == 0.5
    preds, refs = ["yin2 hang4", "ren2"], [["yin2 hang2"], ["ren2"]]
    assert E.tone_accuracy(preds, refs) == pytest.approx(2 / 3)             # over syllables, not words


TRAIN = [
    Word("行", (("xing2",), ("hang2",)), ("to walk", "row")),
    Word("银行", (("yin2", "hang2"),), ("bank",)),
    Word("行人", (("xing2", "ren2"),), ("pedestrian",)),
    Word("人", (("ren2",),), ("person",)),
    Word("长", (("chang2",), ("zhang3",)), ("long",)),
    Word("银", (("yin2",),), ("silver",)),
]


def test_heteronyms_and_heteronym_accuracy_count_only_heteronym_positions():
    chars = E.heteronyms(TRAIN)
    assert chars == {"行", "长"}
    sources = ["银行", "行人", "人", "长大"]
    refs = [["yin2 hang2"], ["xing2 ren2"], ["ren2"], ["zhang3 da4"]]
    preds = ["yin3 hang2", "hang2 ren3", "ren4", "zhang3"]
    # heteronym positions: 行 in 银行 (right), 行 in 行人 (wrong), 长 in 长大 (right); the other
    # syllables' errors (yin3, ren3, ren4, the missing da4) do not count
    acc, n = E.heteronym_accuracy(sources, preds, refs, chars)
    assert (acc, n) == (pytest.approx(2 / 3), 3)
    acc, n = E.heteronym_accuracy(["人"], ["ren4"], [["ren2"]], chars)
    assert n == 0 and math.isnan(acc)
    # a missing syllable at a heteronym position is wrong
    assert E.heteronym_accuracy(["银行"], ["yin2"], [["yin2 hang2"]], chars) == (0.0, 1)
    # the hits behind the accuracy: one per heteronym position, with its example's index
    assert E.heteronym_hits(sources, preds, refs, chars) == [(0, True), (1, False), (3, True)]


REFS = [["the bank", "a bank"], ["to walk"], ["row", "line", "a row of things"], ["pedestrian"]]
PREDS = ["bank", "to walk", "a line", "walker"]


def test_chrf_and_bleu_equal_sacrebleu_called_directly():
    # equal reference counts: no padding; sacrebleu's layout is one stream per reference index
    refs = [r[:1] for r in REFS]
    streams = [[r[0] for r in refs]]
    assert E.chrf(PREDS, refs) == pytest.approx(sacrebleu.corpus_chrf(PREDS, streams).score)
    assert E.bleu(PREDS, refs) == pytest.approx(sacrebleu.corpus_bleu(PREDS, streams).score)
    two = [["the bank", "a bank"], ["to walk", "walk"], ["row", "line"], ["pedestrian", "walker"]]
    streams2 = [[r[0] for r in two], [r[1] for r in two]]
    assert E.chrf(PREDS, two) == pytest.approx(sacrebleu.corpus_chrf(PREDS, streams2).score)
    assert E.bleu(PREDS, two) == pytest.approx(sacrebleu.corpus_bleu(PREDS, streams2).score)


def test_padding_with_a_duplicate_reference_does_not_change_the_scores():
    # pad every sentence to 3 references by repeating its *last* reference (not the first, as the
    # module does), and call sacrebleu on that equal-count layout
    k = max(len(r) for r in REFS)
    padded = [r + [r[-1]] * (k - len(r)) for r in REFS]
    streams = [[r[j] for r in padded] for j in range(k)]
    assert E.chrf(PREDS, REFS) == pytest.approx(sacrebleu.corpus_chrf(PREDS, streams).score, abs=1e-9)
    assert E.bleu(PREDS, REFS) == pytest.approx(sacrebleu.corpus_bleu(PREDS, streams).score, abs=1e-9)
    # and the extra references matter (the test would see a dropped reference)
    assert E.chrf(PREDS, REFS) != pytest.approx(E.chrf(PREDS, [r[:1] for r in REFS]))


def test_sentence_chrf_equals_sacrebleu_per_sentence():
    got = E.sentence_chrf(PREDS, REFS)
    assert got == pytest.approx([sacrebleu.sentence_chrf(p, r).score for p, r in zip(PREDS, REFS)])
    assert got[1] == pytest.approx(100.0)


# --- baselines -----------------------------------------------------------------------------------------

def test_most_frequent_reading_counts_ties_and_fallback():
    words = [
        Word("行", (("xing2",), ("hang2",)), ("to walk",)),       # 行: xing2 1, hang2 1 -> tie
        Word("银行", (("yin2", "hang2"),), ("bank",)),            # hang2 2
        Word("长", (("zhang3",), ("chang2",)), ("long",)),        # 长: zhang3 1, chang2 1 -> tie: seen first
        Word("人", (("ren2",),), ("person",)),
        Word("行人", (("xing2", "ren2"),), ("pedestrian",)),       # xing2 2, ren2 2
        Word("人行", (("ren2", "xing2"),), ("sidewalk",)),         # xing2 3, ren2 3
    ]
    m = E.MostFrequentReading(words)
    assert m.reading["行"] == "xing2"           # 3 against 2
    assert m.reading["长"] == "zhang3"          # a tie: the syllable seen first
    # overall: xing2 3, ren2 3, hang2 2, ...: a tie between xing2 and ren2, xing2 seen first
    assert m.fallback == "xing2"
    assert m("长行鬼") == "zhang3 xing2 xing2"  # 鬼 was never seen: the fallback
    assert m("人") == "ren2"


def test_nearest_headword_overlap_ties_and_no_overlap():
    words = [
        Word("银行", (("yin2", "hang2"),), ("bank", "banking")),
        Word("行人", (("xing2", "ren2"),), ("pedestrian",)),
        Word("人", (("ren2",),), ("person",)),
        Word("人民", (("ren2", "min2"),), ("the people",)),
        Word("银", (("yin2",),), ("silver",)),
    ]
    n = E.NearestHeadword(words)
    assert n("银行") == "bank"                                   # Jaccard 1
    assert n.nearest("银行家").headword == "银行"                # 2/3 beats 1/3 (银)
    # 人口: 人 = 1/2, 行人 = 1/3, 人民 = 1/3 -> 人
    assert n("人口") == "person"
    # 民行: 行人 and 人民 and 银行 all 1/3, same length -> dictionary order: 银行
    assert n.nearest("民行").headword == "银行"
    # 民: 人民 (1/2) only shares a character
    assert n("民") == "the people"
    assert n("鬼") == "" and n.nearest("鬼") is None


def _jaccard(a, b):
    from collections import Counter
    qa, qb = Counter(a), Counter(b)
    return sum((qa & qb).values()) / sum((qa | qb).values())


def test_nearest_headword_against_a_brute_force_search():
    rng = random.Random(1)
    chars = "一二三四五六"
    words, seen = [], set()
    while len(words) < 25:
        h = "".join(rng.choice(chars) for _ in range(rng.randint(1, 3)))
        if h not in seen:
            seen.add(h)
            words.append(Word(h, (tuple("a1" for _ in h),), (f"gloss of {h}",)))
    n = E.NearestHeadword(words)
    for _ in range(50):
        q = "".join(rng.choice(chars + "七") for _ in range(rng.randint(1, 4)))
        scored = [(-_jaccard(q, w.headword), abs(len(w.headword) - len(q)), i) for i, w in enumerate(words)
                  if _jaccard(q, w.headword) > 0]
        want = words[min(scored)[2]] if scored else None
        assert n.nearest(q) == want


def test_character_glosses():
    words = [
        Word("银", (("yin2",),), ("silver", "money")),
        Word("行", (("xing2",), ("hang2",)), ("to walk", "row")),
        Word("银行", (("yin2", "hang2"),), ("bank",)),
    ]
    g = E.CharacterGlosses(words)
    assert g("银行") == "silver to walk"                          # composed, not the headword's own sense
    assert g("银鬼行") == "silver to walk"                        # a character without a gloss is skipped
    assert g("鬼") == ""
