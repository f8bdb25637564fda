"""Tests for lmlib.tasks: genre datasets split by play, chunking, balanced samples, speaker pairs."""

import pytest

from lmlib import data
from lmlib.tasks import GENRE_GROUPS, genre_dataset, genre_of, play_chunks, speaker_pairs


def test_genre_groups_cover_every_folder_once():
    folders = [g for gs in GENRE_GROUPS.values() for g in gs]
    assert sorted(folders) == sorted(data.GENRES)
    assert genre_of("roman") == "tragedy" and genre_of("romances") == "comedy"
    assert genre_of("roman", merge=False) == "roman"
    with pytest.raises(ValueError):
        genre_of("farce")


def test_chunks_are_whole_lines_within_bounds():
    play = data.load_play("the-comedy-of-errors")
    chunks = play_chunks("the-comedy-of-errors", min_chars=60, max_chars=160)
    assert chunks and all(60 <= len(c) <= 160 for c in chunks)
    spoken = "\n".join(p.body for p in play.speeches())
    # no speaker names, no stage directions; lines appear in the play in order
    assert not any(c.startswith("[") or "ANTIPHOLUS OF SYRACUSE:" in c for c in chunks)
    pos = 0
    for c in chunks[:50]:
        first = c.split("\n")[0]
        if len(first) < 160:  # a whole (uncut) line
            found = spoken.find(first, pos)
            assert found >= 0
            pos = found


def test_labels_and_split_by_play():
    split = data.split_plays(0)
    train, test = genre_dataset("train", split=split), genre_dataset("test", split=split)
    assert {e.play for e in train.examples} == set(split.train)
    assert {e.play for e in test.examples} == set(split.test)
    assert not {e.play for e in train.examples} & {e.play for e in test.examples}
    for e in test.examples[::200]:
        assert train.class_names[e.label] == genre_of(data.load_play(e.play).genre)
    six = genre_dataset("test", split=split, merge=False)
    assert six.num_classes == 6 and len(six) == len(test)


def test_balanced_sample_is_balanced_and_nested():
    ds = genre_dataset("val", max_per_play=200)
    small, big = ds.balanced_sample(30, seed=1), ds.balanced_sample(90, seed=1)
    assert list(small.class_counts().values()) == [10, 10, 10]
    assert set(small.texts) <= set(big.texts)
    with pytest.raises(ValueError):
        ds.balanced_sample(2)


def test_speaker_pairs_format_and_disjoint_split():
    train, test, speakers = speaker_pairs("hamlet", top_k=3)
    assert len(speakers) == 3 and speakers[0] == "HAMLET"
    assert all(p.startswith("Who speaks: ") and p.endswith("\nSpeaker:") for p, _ in train + test)
    assert all(r.strip() in speakers and r.endswith("\n") for _, r in train + test)
    assert not set(train) & set(test) or len(set(train) & set(test)) < 3  # duplicate lines are rare
