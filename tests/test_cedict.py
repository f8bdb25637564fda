"""lmlib.cedict: parsing CC-CEDICT lines, merging entries into words, the split by headword."""

import gzip
import re

import pytest

from lmlib import cedict as C
from lmlib.cedict import Entry, Word


# --- parse_line on lines in the dictionary's own format --------------------------------------

def test_parse_line_sorts_glosses_into_senses_classifiers_references():
    e = C.parse_line("銀行 银行 [yin2 hang2] /bank/CL:家[jia1],個|个[ge4]/\n")
    assert e == Entry("銀行", "银行", ("yin2", "hang2"), ("bank",), ("家", "个"), ())


def test_parse_line_keeps_sense_order_and_sends_pointers_to_references():
    line = ("行 行 [xing2] /to walk/to go/OK!/behavior/Taiwan pr. [xing4] for the behavior-conduct sense/"
            "see 行人[xing2 ren2]/")
    e = C.parse_line(line)
    assert e.senses == ("to walk", "to go", "OK!", "behavior")
    assert e.references == ("Taiwan pr. [xing4] for the behavior-conduct sense", "see 行人[xing2 ren2]")
    assert e.classifiers == ()
    e = C.parse_line("瞭 了 [liao4] /unofficial variant of 瞭[liao4]/")
    assert e.senses == () and e.references == ("unofficial variant of 瞭[liao4]",)
    e = C.parse_line("北大 北大 [Bei3 da4] /abbr. for 北京大學|北京大学[Bei3 jing1 Da4 xue2]/Peking University/")
    assert e.pinyin == ("Bei3", "da4")                       # syllables as written
    assert e.senses == ("Peking University",)
    assert e.references == ("abbr. for 北京大學|北京大学[Bei3 jing1 Da4 xue2]",)


def test_parse_line_classifiers_take_the_simplified_form():
    e = C.parse_line("書 书 [shu1] /book/letter/CL:本[ben3],冊|册[ce4],部[bu4]/")
    assert e.classifiers == ("本", "册", "部")
    assert e.senses == ("book", "letter")
    # two CL: glosses on one line: both kept, in order
    e = C.parse_line("車 车 [che1] /car/CL:輛|辆[liang4]/vehicle/CL:部[bu4]/")
    assert e.classifiers == ("辆", "部") and e.senses == ("car", "vehicle")


@pytest.mark.parametrize(("line", "reason"), [
    ("銀行 银行 yin2 hang2 /bank/", "not of the form"),               # no brackets
    ("銀行 银行 [yin2 hang2] bank", "not of the form"),                # no slashes
    ("銀行 银行 [yin2 hang2]", "not of the form"),
    ("銀 银行 [yin2 hang2] /bank/", "differ in length"),
    ("銀行 银行 [  ] /bank/", "empty pinyin"),
    ("銀行 银行 [yin2 hang2] //", "no gloss"),
    ("銀行 银行 [yin2 hang2] / / /", "no gloss"),
    ("", "not of the form"),
])
def test_parse_line_rejects_malformed_lines_with_the_reason(line, reason):
    with pytest.raises(ValueError, match=reason):
        C.parse_line(line)


def test_parse_cedict_skips_comments_blanks_and_reports_malformed_line_numbers():
    lines = ["# CC-CEDICT\n", "#! entries=3\n", "\n",
             "銀行 银行 [yin2 hang2] /bank/CL:家[jia1]/\n",     # line 4
             "broken line\n",                                     # line 5
             "   \n",
             "行 行 [hang2] /row/line/\n",                        # line 7
             "銀 银行 [yin2 hang2] /bank/\n",                      # line 8
             "行 行 [xing2] /to walk/\n"]                          # line 9
    entries, skipped = C.parse_cedict(iter(lines))           # any iterable of lines (a file)
    assert [e.pinyin for e in entries] == [("yin2", "hang2"), ("hang2",), ("xing2",)]
    assert [s.line_no for s in skipped] == [5, 8]
    assert skipped[0].line == "broken line" and "not of the form" in skipped[0].reason
    assert "differ in length" in skipped[1].reason and not skipped[1].reason.startswith("parse_line")


# --- normalise_syllable ------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "norm"), [
    ("Bei3", "bei3"), ("hang2", "hang2"), ("nu:3", "nü3"), ("Lu:4", "lü4"), ("lu:e4", "lüe4"),
    ("de5", "de5"), ("r5", "r5"), ("ZHONG1", "zhong1"),
    ("xx5", None), ("XX5", None), ("C", None), ("·", None), ("bei", None), ("bei6", None), ("3", None),
    ("bei33", None), ("", None), ("A4", "a4"),
])
def test_normalise_syllable(raw, norm):
    assert C.normalise_syllable(raw) == norm


# --- words_from_entries on a handwritten set ----------------------------------------------------

def _e(simp, pinyin, senses=(), trad=None, classifiers=(), references=()):
    return Entry(trad or simp, simp, tuple(pinyin.split()), tuple(senses), tuple(classifiers), tuple(references))


HANDWRITTEN = [
    _e("行", "hang2", ["row", "line"]),
    _e("银行", "yin2 hang2", ["bank"], trad="銀行", classifiers=["家", "个"]),
    _e("行", "xing2", ["to walk", "OK"], references=["Taiwan pr. [xing4]"]),
    _e("行", "Xing2", ["surname Xing"]),                        # same normalised reading: merged
    _e("行", "hang2", ["line", "firm"]),                        # repeated reading and sense: once
    _e("了", "le5", []),                                        # no sense: contributes no sense
    _e("了", "liao3", ["to finish"]),
    _e("卡拉OK", "ka3 la1 O K", ["karaoke"]),                   # not all Han: dropped
    _e("三K党", "San1 K dang3", ["Ku Klux Klan"]),
    _e("某", "xx5", ["some"]),                                  # placeholder syllable only: dropped
    _e("长城", "Chang2", ["Great Wall"]),                       # one syllable for two characters
    _e("长城", "Chang2 cheng2", ["the Great Wall"]),
    _e("中华人民", "zhong1 hua2 ren2 min2", ["the Chinese people"]),
    _e("中华人民共和国", "Zhong1 hua2 Ren2 min2 Gong4 he2 guo2", ["PRC"]),   # 7 characters > max_chars
    _e("只", "zhi3", [], references=["variant of 祇[zhi3]"]),    # reading but no sense: dropped
]


def test_words_from_entries_merges_readings_and_senses_by_simplified_headword():
    words = C.words_from_entries(HANDWRITTEN)
    by = {w.headword: w for w in words}
    assert [w.headword for w in words] == ["行", "银行", "了", "长城", "中华人民"]   # first-appearance order
    assert by["行"] == Word("行", (("hang2",), ("xing2",)), ("row", "line", "to walk", "OK", "surname Xing", "firm"))
    assert by["银行"] == Word("银行", (("yin2", "hang2"),), ("bank",))
    assert by["银行"].pinyin == "yin2 hang2"
    assert by["了"].readings == (("le5",), ("liao3",)) and by["了"].senses == ("to finish",)
    # the reading that does not match the characters is dropped, its sense is kept
    assert by["长城"].readings == (("chang2", "cheng2"),)
    assert by["长城"].senses == ("Great Wall", "the Great Wall")
    for w in words:
        assert all(len(r) == len(w.headword) for r in w.readings)
    short = C.words_from_entries(HANDWRITTEN, max_chars=1)
    assert [w.headword for w in short] == ["行", "了"]
    assert "中华人民共和国" in {w.headword for w in C.words_from_entries(HANDWRITTEN, max_chars=7)}


# --- the installed dictionary --------------------------------------------------------------------

def _header_entries() -> int:
    with gzip.open(C.cedict_path(), "rt", encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#! entries=(\d+)", line)
            if m:
                return int(m.group(1))
            if not line.startswith("#"):
                break
    raise AssertionError("the dictionary file has no '#! entries=' header")


def test_real_dictionary_parses_every_entry():
    entries, skipped = C.load_entries()
    assert skipped == []
    assert len(entries) == _header_entries()
    with gzip.open(C.cedict_path(), "rt", encoding="utf-8") as f:        # independently: non-comment lines
        assert len(entries) == sum(1 for line in f if line.strip() and not line.startswith("#"))
    assert "Creative Commons" in C.LICENSE


def test_real_dictionary_words():
    words = C.load_words()
    by = {w.headword: w for w in words}
    assert len(by) == len(words)                                       # one Word per headword
    assert {("hang2",), ("xing2",)} <= set(by["行"].readings)
    assert by["银行"].readings[0] == ("yin2", "hang2") and "bank" in by["银行"].senses
    assert not any("CL:" in s or "家" in s for s in by["银行"].senses)
    assert not any("Taiwan pr." in s for s in by["行"].senses)
    for w in words:
        assert 1 <= len(w.headword) <= 4 and w.readings and w.senses
        for r in w.readings:
            assert len(r) == len(w.headword)
            assert all(C.normalise_syllable(s) == s for s in r)
    assert {len(w.headword) for w in C.load_words(max_chars=2)} == {1, 2}
    assert C.load_words() == words                                     # cached, but a fresh list
    assert C.load_words() is not words


# --- split_words -------------------------------------------------------------------------------------

def _words(n):
    return [Word(chr(0x4E00 + i), ((f"s{i % 7}1",),), (f"sense {i}",)) for i in range(n)]


def test_split_words_is_deterministic_disjoint_and_sized():
    words = _words(60)
    s = C.split_words(words, n_val=7, n_test=11, seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (42, 7, 11)
    heads = [{w.headword for w in part} for part in (s.train, s.val, s.test)]
    assert not (heads[0] & heads[1] or heads[0] & heads[2] or heads[1] & heads[2])
    assert heads[0] | heads[1] | heads[2] == {w.headword for w in words}
    for part in (s.train, s.val, s.test):                         # dictionary order kept
        idx = [words.index(w) for w in part]
        assert idx == sorted(idx)
    assert C.split_words(list(words), n_val=7, n_test=11, seed=3) == s
    assert C.split_words(words[::-1], n_val=7, n_test=11, seed=3).test == s.test[::-1]  # by headword, not position
    assert C.split_words(words, n_val=7, n_test=11, seed=4).test != s.test


def test_split_words_errors():
    words = _words(10)
    with pytest.raises(ValueError, match="distinct headwords"):
        C.split_words(words + words[:1], n_val=2, n_test=2)
    with pytest.raises(ValueError, match="no training words"):
        C.split_words(words, n_val=5, n_test=5)
    assert len(C.split_words(words, n_val=5, n_test=4).train) == 1


def test_real_split_is_disjoint():
    s = C.split_words(C.load_words(), n_val=500, n_test=500, seed=0)
    assert len(s.val) == len(s.test) == 500
    assert not ({w.headword for w in s.train} & {w.headword for w in s.test})
