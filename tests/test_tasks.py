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


# --- keep_ends: only the interior words move -------------------------------------------------

from lmlib.tasks import shuffled_pairs  # noqa: E402


def _is_interior_shuffle(original: str, shuffled: str) -> bool:
    o, s = original.split(), shuffled.split()
    return (o[0] == s[0] and o[-1] == s[-1] and sorted(o[1:-1]) == sorted(s[1:-1]) and o[1:-1] != s[1:-1])


def test_shuffle_words_keep_ends_moves_only_the_interior():
    rng = _random.Random(0)
    line = "Now is the winter of our discontent,"
    seen = set()
    for _ in range(30):
        s = shuffle_words(line, rng, keep_ends=True)
        assert _is_interior_shuffle(line, s)
        seen.add(s)
    assert len(seen) > 5                                 # a random order, not one fixed permutation
    assert shuffle_words("A b c d.", _random.Random(1), keep_ends=True) == "A c b d."   # the only other order
    with pytest.raises(ValueError):
        shuffle_words("A b c.", _random.Random(1), keep_ends=True)                 # one interior word
    # keep_ends=False is the default and draws the same permutations as before
    assert [shuffle_words(line, _random.Random(7)) for _ in range(3)] == \
        [shuffle_words(line, _random.Random(7), keep_ends=False) for _ in range(3)]


@pytest.mark.parametrize("line", ["To be be, sir", "Ay me", "Alas", "O O O O", "Go go go now"])
def test_shuffle_words_keep_ends_needs_two_different_interior_words(line):
    words = line.split()
    if len(set(words[1:-1])) >= 2:
        assert _is_interior_shuffle(line, shuffle_words(line, _random.Random(0), keep_ends=True))
    else:
        with pytest.raises(ValueError, match="between its first and last word"):
            shuffle_words(line, _random.Random(0), keep_ends=True)


PLAY = "the-comedy-of-errors"


def _usable_reference(play, min_words, max_chars, keep_ends):
    """Spoken lines of a play (no speaker names, no bracketed stage directions) that a shuffle can
    change, written out from the play's speeches."""
    out = []
    for speech in data.load_play(play).speeches():
        for ln in speech.body.split("\n"):
            ln = ln.strip()
            if not ln or (ln.startswith("[") and ln.endswith("]")):
                continue
            w = ln.split()
            movable = w[1:-1] if keep_ends else w
            if len(w) >= min_words and len(ln) <= max_chars and len(set(movable)) >= 2:
                out.append(ln)
    return out


def test_shuffled_lines_keep_ends_keeps_the_surface_cues():
    from lmlib.baselines import surface_cues

    split = data.Split(train=(PLAY,), val=(), test=())
    ds = shuffled_lines_dataset("train", split=split, max_per_play=80, seed=2, keep_ends=True)
    lines = _usable_reference(PLAY, 6, 100, True)
    assert ds.class_counts()["real"] == ds.class_counts()["shuffled"] == 40
    by_ends = {}
    for ln in lines:
        by_ends.setdefault((ln.split()[0], ln.split()[-1]), []).append(ln)
    for e in ds.examples:
        if e.label == 1:
            assert e.text in lines
        else:
            w = e.text.split()
            assert any(_is_interior_shuffle(o, e.text) for o in by_ends[(w[0], w[-1])])
            assert surface_cues(e.text) in {surface_cues(o) for o in by_ends[(w[0], w[-1])]}
    again = shuffled_lines_dataset("train", split=split, max_per_play=80, seed=2, keep_ends=True)
    assert again.examples == ds.examples
    # the default is keep_ends=False
    assert shuffled_lines_dataset("train", split=split, max_per_play=20, seed=2).examples == \
        shuffled_lines_dataset("train", split=split, max_per_play=20, seed=2, keep_ends=False).examples


@pytest.mark.parametrize("keep_ends", [True, False])
def test_shuffled_pairs_shuffle_the_words_of_each_real_line(keep_ends):
    split = data.Split(train=(), val=(PLAY,), test=())
    pairs = shuffled_pairs("val", split=split, keep_ends=keep_ends, seed=0)
    assert [p[0] for p in pairs] == _usable_reference(PLAY, 6, 100, keep_ends)   # every usable line, in order
    for real, shuf, play in pairs:
        assert play == PLAY
        assert sorted(real.split()) == sorted(shuf.split()) and real.split() != shuf.split()
        if keep_ends:
            assert _is_interior_shuffle(real, shuf)
    assert shuffled_pairs("val", split=split, keep_ends=keep_ends, seed=0) == pairs
    assert shuffled_pairs("val", split=split, keep_ends=keep_ends, seed=1) != pairs


def test_shuffled_pairs_max_per_play_keeps_a_sample_in_play_order():
    s = data.split_plays(0)
    split = data.Split(train=(), val=(), test=s.test[:2])
    pairs = shuffled_pairs("test", split=split, max_per_play=15, seed=3, min_words=5, max_chars=80)
    assert len(pairs) == 30
    for play in s.test[:2]:
        reals = [p[0] for p in pairs if p[2] == play]
        usable = _usable_reference(play, 5, 80, True)
        assert len(reals) == 15
        it = iter(usable)
        assert all(r in it for r in reals)                           # a subsequence: the play's order
    with pytest.raises(ValueError, match="no line"):
        shuffled_pairs("test", split=split, max_chars=5)
    with pytest.raises(ValueError, match="part"):
        shuffled_pairs("dev", split=split)
