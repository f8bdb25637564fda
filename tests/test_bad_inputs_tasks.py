"""Bad-input cases of lmlib.tasks (see tests/badinput.py). Uses one short play of the bundled corpus."""

import random

from badinput import Bool, Case, Custom, Float, Fn, Int, Seq, Str, make_test
from lmlib import tasks as T
from lmlib.data import Split

PLAY = "hamlet"


def _split():
    return Split(train=(PLAY,), val=(), test=())


def _ds():
    return T.LabelledDataset([T.Example("a b", 0, "p"), T.Example("c d", 1, "p"), T.Example("e f", 1, "p")],
                             ("x", "y"))


SPECS = [
    Fn("lmlib.tasks.genre_of", valid=lambda: dict(folder_genre="roman", merge=True),
       args={"folder_genre": Str(choices=("roman",)), "merge": Bool()}, aliases={"folder_genre": ["genre"]}),
    Fn("lmlib.tasks.Example", valid=lambda: dict(text="a b", label=1, play="p"),
       args={"text": Str(), "label": Int(min=0), "play": Str()}),
    Fn("lmlib.tasks.LabelledDataset", valid=lambda: dict(examples=[T.Example("a", 0, "p")], class_names=("x", "y")),
       args={"examples": Custom([("str", "abc"), ("tuples", [("a", 0, "p")]), ("none", None)]),
             "class_names": Seq(nonempty=True)},
       cases=[Case("label_beyond_names", lambda: T.LabelledDataset([T.Example("a", 2, "p")], ("x", "y")), "label")]),
    Fn("lmlib.tasks.LabelledDataset.subset", valid=lambda: dict(indices=[0, 2]),
       call=lambda indices: _ds().subset(indices),
       args={"indices": Custom([("str", "02"), ("floats", [0.0]), ("out_of_range", [0, 9]), ("int", 1),
                                ("none", None)])}),
    Fn("lmlib.tasks.LabelledDataset.balanced_sample", valid=lambda: dict(n=2, seed=0),
       call=lambda n, seed: _ds().balanced_sample(n, seed),
       args={"n": Int(min=2), "seed": Int()},
       cases=[Case("too_many", lambda: _ds().balanced_sample(3), "only 1 examples")]),
    Fn("lmlib.tasks.play_chunks", valid=lambda: dict(play_name=PLAY, min_chars=60, max_chars=160),
       args={"play_name": Str(nonempty=True), "min_chars": Int(min=1), "max_chars": Int(min=1)},
       cases=[Case("min_above_max", lambda: T.play_chunks(PLAY, min_chars=100, max_chars=50), "min_chars")]),
    Fn("lmlib.tasks.genre_dataset",
       valid=lambda: dict(part="train", split=_split(), merge=True, min_chars=60, max_chars=160, max_per_play=5,
                          seed=0),
       args={"part": Str(choices=("train", "val", "test")), "split": Custom([("dict", {"train": [PLAY]}),
                                                                            ("str", "split")]),
             "merge": Bool(), "min_chars": Int(min=1), "max_chars": Int(min=60), "max_per_play": Int(min=1, nullable=True),
             "seed": Int()},
       cases=[Case("empty_part", lambda: T.genre_dataset("val", split=_split()), "no plays")]),
    Fn("lmlib.tasks.shuffle_words", valid=lambda: dict(line="to be or not", rng=random.Random(0), keep_ends=True),
       args={"line": Str(), "rng": Custom([("int_seed", 0), ("str", "rng"), ("none", None)]), "keep_ends": Bool()},
       cases=[Case("one_word", lambda: T.shuffle_words("be be", random.Random(0)), "two different words"),
              Case("interior_one_word", lambda: T.shuffle_words("to be be not", random.Random(0), keep_ends=True),
                   "between its first and last word"),
              Case("two_words_keep_ends", lambda: T.shuffle_words("to be", random.Random(0), keep_ends=True),
                   "two different words")]),
    Fn("lmlib.tasks.shuffled_lines_dataset",
       valid=lambda: dict(part="train", split=_split(), min_words=6, max_chars=100, max_per_play=4, seed=0,
                          keep_ends=False),
       args={"part": Str(choices=("train", "val", "test")), "split": Custom([("dict", {"train": [PLAY]})]),
             "min_words": Int(min=2), "max_chars": Int(min=1), "max_per_play": Int(min=2, nullable=True),
             "seed": Int(), "keep_ends": Bool()},
       cases=[Case("nothing_fits", lambda: T.shuffled_lines_dataset("train", split=_split(), max_chars=5), "no line")]),
    Fn("lmlib.tasks.shuffled_pairs",
       valid=lambda: dict(part="train", split=_split(), min_words=6, max_chars=100, max_per_play=4, seed=0,
                          keep_ends=True),
       args={"part": Str(choices=("train", "val", "test")),
             "split": Custom([("dict", {"train": [PLAY]}), ("str", "split"), ("tuple", ((PLAY,), (), ()))]),
             "min_words": Int(min=2), "max_chars": Int(min=1), "max_per_play": Int(min=1, nullable=True),
             "seed": Int(), "keep_ends": Bool()},
       cases=[Case("nothing_fits", lambda: T.shuffled_pairs("train", split=_split(), max_chars=5), "no line"),
              Case("empty_part", lambda: T.shuffled_pairs("val", split=_split()), "no line")]),
    Fn("lmlib.tasks.speaker_pairs",
       valid=lambda: dict(play_name=PLAY, top_k=2, max_line_chars=60, test_fraction=0.25, seed=0),
       args={"play_name": Str(nonempty=True), "top_k": Int(min=1), "max_line_chars": Int(min=10),
             "test_fraction": Float(min=0.0, max=1.0, min_open=True, max_open=True), "seed": Int()}),
]

test_bad_input = make_test(SPECS)
