"""Bad-input cases of lmlib.exercises (see tests/badinput.py).

The checkers themselves never raise on a learner's answer (tests/test_checkers_never_crash.py feeds
them junk); what they validate is the ``quiet`` keyword. The shared helpers validate the arguments a
course author passes them.
"""

import importlib
import inspect
import pkgutil

from badinput import Bool, Case, Custom, Float, Fn, Int, Seq, Str, make_test
import lmlib.exercises as E


def _chapter_specs():
    specs = []
    for info in pkgutil.iter_modules(E.__path__):
        module = importlib.import_module(f"lmlib.exercises.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (callable(obj) and name.startswith("check_")):
                continue
            answers = [p.name for p in inspect.signature(obj).parameters.values()
                       if p.kind is p.POSITIONAL_OR_KEYWORD]
            specs.append(Fn(f"{module.__name__}.{name}",
                            valid=lambda answers=answers: {**{a: None for a in answers}, "quiet": True},
                            args={"quiet": Bool()}))
    return specs


def _cases():
    return [((2,), 4), ((3,), 9)]


SPECS = [
    Fn("lmlib.exercises.Verdict", valid=lambda: dict(ok=True, message="fine"), args={"ok": Bool(), "message": Str()}),
    Fn("lmlib.exercises.verdict", valid=lambda: dict(ok=False, message="m", quiet=True),
       args={"ok": Bool(), "message": Str(), "quiet": Bool()}),
    Fn("lmlib.exercises.correct", valid=lambda: dict(message="m", quiet=True), args={"message": Str(), "quiet": Bool()}),
    Fn("lmlib.exercises.hint", valid=lambda: dict(message="m", quiet=True), args={"message": Str(), "quiet": Bool()}),
    Fn("lmlib.exercises.describe", valid=lambda: dict(value=[1, 2], limit=20), args={"limit": Int(min=4)}),
    Fn("lmlib.exercises.check_close",
       valid=lambda: dict(answer=0.5, expected=0.5, what="p", rel_tol=1e-3, abs_tol=1e-6, hints=[(0.25, "half")],
                          default_hint="again", quiet=True),
       args={"expected": Custom([("nan", float("nan")), ("str", "0.5"), ("none", None)]), "what": Str(nonempty=True),
             "rel_tol": Float(min=0.0), "abs_tol": Float(min=0.0),
             "hints": Custom([("dict", {0.25: "half"}), ("not_pairs", [0.25]), ("str_value", [("x", "m")]),
                              ("str", "abc")]),
             "default_hint": Str(), "quiet": Bool()}),
    Fn("lmlib.exercises.check_equal",
       valid=lambda: dict(answer=3, expected=3, what="n", hints={4: "off by one"}, default_hint="again", quiet=True),
       args={"what": Str(nonempty=True), "hints": Custom([("list", [(4, "x")]), ("str", "abc")]),
             "default_hint": Str(), "quiet": Bool()}),
    Fn("lmlib.exercises.check_function",
       valid=lambda: dict(fn=lambda x: x * x, cases=_cases(), what="square", compare=lambda a, b: a == b,
                          diagnose=None, quiet=True),
       args={"cases": Custom([("str", "abc"), ("empty", []), ("not_pairs", [(2, 4, 6)]), ("args_not_tuple", [(2, 4)]),
                              ("none", None)]),
             "what": Str(nonempty=True), "compare": Custom([("int", 3), ("none", None)]),
             "diagnose": Custom([("str", "x")]), "quiet": Bool()}),
    Fn("lmlib.exercises.never_raises", valid=lambda: dict(expects="a number"), args={"expects": Str(nonempty=True)},
       cases=[Case("decorate_non_function", lambda: E.never_raises("a number")(3), "checker")]),
    *_chapter_specs(),
]

test_bad_input = make_test(SPECS)
