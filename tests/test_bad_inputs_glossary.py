"""Bad-input cases of lmlib.glossary (see tests/badinput.py)."""

from pathlib import Path

from badinput import Case, Custom, Fn, make_test
from lmlib import glossary as G

ROOT = Path(__file__).resolve().parents[1]
TEXT = "# A\n\nA **KV cache** (KV 缓存)."
STR = Custom([("none", None), ("number", 3), ("bytes", b"x"), ("list", ["x"])])


def _entries():
    return G.build(G.annotations_in(TEXT, "notebooks/01_x.ipynb")[0])


SPECS = [
    Fn("lmlib.glossary.term_key", valid=lambda: dict(english="KV cache"),
       args={"english": Custom([("none", None), ("empty", ""), ("blank", "  "), ("number", 3)])}),
    Fn("lmlib.glossary.section_id", valid=lambda: dict(title="A title"), args={"title": STR}),
    Fn("lmlib.glossary.annotations_in", valid=lambda: dict(text=TEXT, page="p.md"),
       args={"text": STR, "page": STR}),
    Fn("lmlib.glossary.toc_pages", valid=lambda: dict(root=ROOT),
       args={"root": Custom([("none", None), ("number", 3), ("no_toc", str(ROOT / "lmlib"))])}),
    Fn("lmlib.glossary.collect", valid=lambda: dict(root=ROOT, exclude=("book/glossary.md",)),
       args={"root": Custom([("none", None), ("no_toc", str(ROOT / "tests"))]),
             "exclude": Custom([("str", "book/glossary.md"), ("list_of_int", (1,)), ("none", None)])}),
    Fn("lmlib.glossary.build", valid=lambda: dict(annotations=G.annotations_in(TEXT, "p.md")[0]),
       args={"annotations": Custom([("none", None), ("str", "x"), ("list_of_str", ["x"])])},
       cases=[Case("conflict", lambda: G.build(G.annotations_in(TEXT + " *KV cache* (键值缓存)", "p.md")[0]),
                   "KV cache")]),
    Fn("lmlib.glossary.render", valid=lambda: dict(entries=_entries(), titles=None),
       args={"entries": Custom([("none", None), ("str", "x"), ("list_of_int", [1])]),
             "titles": Custom([("list", ["x"]), ("int_values", {"p.md": 1})])}),
]

EXEMPT = {
    "lmlib.glossary.Annotation": "a frozen record made by annotations_in, never by a reader",
    "lmlib.glossary.Entry": "a record made by build, never by a reader",
    "lmlib.glossary.GlossaryError": "an exception class",
}

test_bad_input = make_test(SPECS)
