"""Bad-input cases of lmlib.data (the Shakespeare corpus, splits, character vocabulary, batches)."""

import torch

from badinput import Case, Custom, Device, Fn, Int, Str, Tensor, make_test
from lmlib import data as D

MARKDOWN = "# A Play\n\n## ACT I\n\n### SCENE I. A room.\n\n**HAMLET**\n\nTo be, or not to be.\n"
VOCAB = D.CharVocab.from_text("abc ")
GENRE = Str(choices=D.GENRES, nullable=True)

SPECS = [
    Fn("lmlib.data.play_names", valid=lambda: dict(genre="tragedies"), args={"genre": GENRE}),
    Fn("lmlib.data.load_play", valid=lambda: dict(name="macbeth"),
       args={"name": Custom([("int", 3), ("none", None), ("list", ["macbeth"]), ("unknown", "macbth"),
                             ("empty", "")])},
       aliases={"name": ["play"]}),
    Fn("lmlib.data.load_plays", valid=lambda: dict(names=["macbeth"], genre=None),
       args={"names": Custom([("str", "macbeth"), ("int", 3), ("empty", []), ("int_item", [3]),
                              ("unknown_item", ["macbth"])]),
             "genre": Custom([("int", 3), ("unknown", "sonnets")])},
       aliases={"names": ["play"], "genre": ["either"]},
       cases=[Case("names_and_genre", lambda: D.load_plays(["macbeth"], genre="tragedies"), "either")]),
    Fn("lmlib.data.parse_play", valid=lambda: dict(markdown=MARKDOWN, name="x", genre="tragedies"),
       args={"markdown": Str(), "name": Str(nonempty=True), "genre": Str(choices=D.GENRES)},
       cases=[Case("no_speech", lambda: D.parse_play("# T\n\nprose\n", name="x", genre="comedies"), "no speeches"),
              Case("empty", lambda: D.parse_play("", name="x", genre="comedies"), "empty")]),
    Fn("lmlib.data.corpus_text", valid=lambda: dict(plays=["macbeth"]),
       args={"plays": Custom([("str", "macbeth"), ("int", 3), ("empty", []), ("int_item", [3]),
                              ("unknown_item", ["macbth"])])},
       aliases={"plays": ["play"]}),
    Fn("lmlib.data.split_plays", valid=lambda: dict(seed=1, n_val_per_genre=1, n_test_per_genre=1),
       args={"seed": Int(), "n_val_per_genre": Int(min=0), "n_test_per_genre": Int(min=0)},
       cases=[Case("too_many_held_out", lambda: D.split_plays(n_val_per_genre=2, n_test_per_genre=2), "only 4 plays")]),
    Fn("lmlib.data.Split", valid=lambda: dict(train=("hamlet",), val=("macbeth",), test=()),
       args={"train": Custom([("str", "hamlet"), ("list", ["hamlet"]), ("int_item", (3,)), ("none", None)]),
             "val": Custom([("str", "macbeth"), ("overlap", ("hamlet",))]),
             "test": Custom([("none", None), ("int", 3)])},
       aliases={"val": ["both"]}),
    Fn("lmlib.data.Split.text", valid=lambda: dict(part="val"),
       call=lambda **kw: D.Split(("hamlet",), ("macbeth",), ()).text(**kw),
       args={"part": Str(choices=("train", "val", "test"))},
       cases=[Case("empty_part", lambda: D.Split(("hamlet",), (), ()).text("val"), "empty")]),
    Fn("lmlib.data.CharVocab", valid=lambda: dict(chars=list("abc")),
       args={"chars": Custom([("str", "abc"), ("int", 3), ("none", None), ("empty", []), ("long_item", ["ab"]),
                              ("duplicate", ["a", "a"])])},
       aliases={"chars": ["character", "vocabulary"]}),
    Fn("lmlib.data.CharVocab.from_text", valid=lambda: dict(text="hello"), call=lambda **kw: D.CharVocab.from_text(**kw),
       args={"text": Str(nonempty=True)}),
    Fn("lmlib.data.CharVocab.encode", valid=lambda: dict(text="cab"), call=lambda **kw: VOCAB.encode(**kw),
       args={"text": Str()}, cases=[Case("unknown_character", lambda: VOCAB.encode("abz"), "'z'")]),
    Fn("lmlib.data.CharVocab.decode", valid=lambda: dict(ids=[0, 1]), call=lambda **kw: VOCAB.decode(**kw),
       args={"ids": Custom([("str", "ab"), ("int", 3), ("none", None), ("float_ids", [1.5]), ("bool_ids", [True]),
                            ("out_of_range", [4]), ("negative", [-1]), ("two_dims", torch.zeros(2, 2, dtype=torch.long))])},
       aliases={"ids": ["token id", "decode"]}),
    Fn("lmlib.data.sample_batch",
       valid=lambda: dict(data=torch.arange(20), block_size=4, batch_size=2, generator=torch.Generator().manual_seed(0),
                          device="cpu"),
       args={"data": Tensor(dtype="int"), "block_size": Int(min=1), "batch_size": Int(min=1),
             "generator": Custom([("int", 0), ("str", "g")]), "device": Device()},
       cases=[Case("too_short", lambda: D.sample_batch(torch.arange(4), 4, 2), "needs at least 5 tokens")]),
]

EXEMPT = {
    "lmlib.data.Passage": "a record built only by parse_play, which checks the markdown it comes from",
    "lmlib.data.Play": "a record built only by parse_play, which checks the markdown it comes from",
}

test_bad_input = make_test(SPECS)
