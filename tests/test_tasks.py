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


# --- real or shuffled? ---------------------------------------------------------------------

from collections import Counter as _Counter  # noqa: E402
import random as _random  # noqa: E402

from lmlib.tasks import shuffle_words, shuffled_lines_dataset  # noqa: E402


def _small_split():
    s = data.split_plays(0)
    return data.Split(train=s.train[:2], val=s.val[:1], test=s.test[:1])


def test_shuffled_lines_balanced_permutations_split_by_play():
    split = _small_split()
    ds = shuffled_lines_dataset("train", split=split, min_words=6, max_chars=100, max_per_play=60, seed=3)
    assert ds.class_names == ("shuffled", "real")
    counts = ds.class_counts()
    assert abs(counts["real"] - counts["shuffled"]) <= len(split.train)
    assert {e.play for e in ds.examples} == set(split.train)
    # every text is a line of its play (real) or a different order of the words of one (shuffled)
    for play in split.train:
        lines = [ln.strip() for ln in data.load_play(play).text.split("\n")]
        bags = _Counter(tuple(sorted(ln.split())) for ln in lines)
        for e in (e for e in ds.examples if e.play == play):
            assert len(e.text.split()) >= 6 and len(e.text) <= 100
            if e.label == 1:
                assert e.text in lines
            else:
                assert tuple(sorted(e.text.split())) in bags
                originals = [ln for ln in lines if sorted(ln.split()) == sorted(e.text.split())]
                assert any(o.split() != e.text.split() for o in originals)
                assert e.text not in originals
    test = shuffled_lines_dataset("test", split=split, max_per_play=40, seed=3)
    assert not {e.play for e in test.examples} & {e.play for e in ds.examples}


def test_shuffled_lines_deterministic_with_seed():
    split = _small_split()
    a = shuffled_lines_dataset("val", split=split, max_per_play=50, seed=1)
    b = shuffled_lines_dataset("val", split=split, max_per_play=50, seed=1)
    c = shuffled_lines_dataset("val", split=split, max_per_play=50, seed=2)
    assert a.examples == b.examples and a.examples != c.examples


def test_shuffle_words_differs_and_rejects_unshufflable():
    rng = _random.Random(0)
    line = "To be, or not to be"
    for _ in range(20):
        s = shuffle_words(line, rng)
        assert s != line and sorted(s.split()) == sorted(line.split())
    with pytest.raises(ValueError):
        shuffle_words("ha ha ha", rng)
    with pytest.raises(ValueError):
        shuffle_words("", rng)


def test_shuffled_lines_bad_input():
    split = _small_split()
    with pytest.raises(ValueError, match="min_words"):
        shuffled_lines_dataset("train", split=split, min_words=1)
    with pytest.raises(ValueError, match="max_chars"):
        shuffled_lines_dataset("train", split=split, max_chars=0)
    with pytest.raises(ValueError, match="max_per_play"):
        shuffled_lines_dataset("train", split=split, max_per_play=1)
    with pytest.raises(ValueError, match="part"):
        shuffled_lines_dataset("dev", split=split)
    with pytest.raises(ValueError, match="no line"):
        shuffled_lines_dataset("train", split=split, min_words=6, max_chars=5)
