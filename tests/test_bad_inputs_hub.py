"""Bad-input cases of lmlib.hub (offline detection and the course-model fallback). The loaders
themselves are exercised in tests/test_hub.py; here every argument is checked before any network
access or download."""

import tempfile
from pathlib import Path

from badinput import Bool, Custom, Float, Fn, Str, make_test


def _complete_folder() -> Path:
    folder = Path(tempfile.mkdtemp()) / "hf"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (folder / name).write_text("{}")
    return folder


PATHS = Custom([("int", 3), ("empty", ""), ("list", ["f"])])

SPECS = [
    Fn("lmlib.hub.offline_by_env", valid=dict),
    Fn("lmlib.hub.hub_reachable", valid=lambda: dict(timeout=0.01),
       args={"timeout": Float(min=0.0, min_open=True)}),
    Fn("lmlib.hub.export_course_model", valid=lambda: dict(folder=_complete_folder(), verbose=False),
       args={"folder": PATHS, "verbose": Bool()}),
    Fn("lmlib.hub.load_causal_lm", valid=lambda: dict(name="gpt2", timeout=0.01, fallback_dir=None, verbose=False),
       args={"name": Str(nonempty=True), "timeout": Float(min=0.0, min_open=True), "fallback_dir": PATHS,
             "verbose": Bool()},
       check_valid=False),  # loads a model with transformers (tests/test_hub.py does)
]

EXEMPT = {
    "lmlib.hub.LoadedLM": "a result record built only by load_causal_lm from the model it loaded",
}

test_bad_input = make_test(SPECS)
