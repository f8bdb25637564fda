"""Every public name of every ``lmlib`` module has bad-input cases, or a documented exemption.

The specs live in ``tests/test_bad_inputs_<module>.py`` (see ``tests/badinput.py``). A name in a
module's ``__all__`` is covered when a spec's target is that name, or a method or attribute of it
(``lmlib.attention.MultiHeadAttention.forward`` covers ``MultiHeadAttention``). Plain data (a
constant, a tuple of names) needs no cases; anything callable without a spec must be listed in a
file's ``EXEMPT`` with the reason.
"""

import importlib
import inspect
import pkgutil
from pathlib import Path

import lmlib


def _public_names() -> dict[str, object]:
    names = {}
    for info in pkgutil.walk_packages(lmlib.__path__, prefix="lmlib."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if callable(obj) or inspect.isclass(obj):
                names[f"{info.name}.{name}"] = obj
    return names


def _specs_and_exemptions():
    targets, exempt = set(), {}
    for path in sorted(Path(__file__).parent.glob("test_bad_inputs_*.py")):
        if path.stem == "test_bad_inputs_coverage":
            continue
        module = importlib.import_module(path.stem)
        targets |= {spec.target for spec in getattr(module, "SPECS", [])}
        exempt.update(getattr(module, "EXEMPT", {}))
    return targets, exempt


def test_every_public_callable_has_bad_input_cases():
    targets, exempt = _specs_and_exemptions()
    missing = []
    for full in _public_names():
        covered = any(t == full or t.startswith(full + ".") for t in targets)
        if not covered and full not in exempt:
            missing.append(full)
    assert not missing, ("public callables with no bad-input spec (add an Fn to "
                         f"tests/test_bad_inputs_<module>.py, or an EXEMPT entry with the reason): {missing}")


def test_exemptions_give_reasons_and_name_real_callables():
    _, exempt = _specs_and_exemptions()
    public = _public_names()
    for name, reason in exempt.items():
        assert name in public, f"EXEMPT names {name}, which is not a public callable of lmlib"
        assert isinstance(reason, str) and len(reason) > 15, f"EXEMPT[{name!r}] needs a reason"


def test_specs_name_real_targets():
    from badinput import resolve

    targets, _ = _specs_and_exemptions()
    for t in targets:
        resolve(t)  # raises if the spec names something that does not exist
