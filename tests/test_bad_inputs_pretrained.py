"""Bad-input cases of lmlib.pretrained (the cache of trained models and the course GPT). Calls
that would train the course model are checked for their bad arguments only (check_valid=False)."""

import tempfile
from pathlib import Path

import torch
from torch import nn

from badinput import Bool, Case, Custom, Device, Fn, Int, make_test
from lmlib import pretrained as P
from lmlib.training import History


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp())


def _state(kw):
    m = kw.get("model")
    return {k: v.clone() for k, v in m.state_dict().items()} if isinstance(m, nn.Module) else None


RECIPES = Custom([("str", "recipe"), ("list", [("a", 1)]), ("none", None), ("not_json", {"a": object()})])
PATHS = Custom([("int", 3), ("empty", ""), ("list", ["c"])])
MODELS = Custom([("str", "model"), ("none", None), ("tensor", torch.zeros(2))])
FUNCS = Custom([("int", 3), ("str", "f"), ("none", None)])
TINY = {"model": {"block_size": 8, "n_layer": 1, "n_head": 1, "n_embd": 8},
        "train": {"max_steps": 1, "warmup_steps": 0, "eval_interval": 1},
        "data": {"batch_size": 2, "eval_batches": 1}}
GPT_RECIPES = Custom([("str", "recipe"), ("list", [1]), ("typo_section", {"trian": {}}),
                      ("typo_setting", {"train": {"lrr": 1.0}}), ("run_setting", {"train": {"progress": False}}),
                      ("bad_value", {"train": {"lr": "fast"}}), ("bad_data", {"data": {"batch_size": 0}}),
                      ("other_tokenizer", {"data": {"tokenizer": "word"}}), ("bpe_without_vocab", {"data": {"tokenizer": "bpe"}}), ("section_not_object", {"model": 3})])


def _course_data():
    from lmlib.tokenizers import CharTokenizer

    ids = (torch.arange(60) % 10).to(torch.int16)
    return P.CourseData(CharTokenizer(list("abcdefghij")), None, ids, ids.clone(), ids.clone())


def _train_valid():
    from lmlib.gpt import GPT, GPTConfig

    recipe = P.merge_recipe(P.COURSE_GPT_RECIPE, TINY)
    torch.manual_seed(0)
    return dict(model=GPT(GPTConfig(vocab_size=10, **recipe["model"])), recipe=recipe, data=_course_data(),
                progress=False, checkpoint_path=None, checkpoint_interval=None, resume_from=None, device="cpu")


SPECS = [
    Fn("lmlib.pretrained.cache_dir", valid=dict),
    Fn("lmlib.pretrained.recipe_hash", valid=lambda: dict(recipe={"a": 1}), args={"recipe": RECIPES},
       aliases={"recipe": ["JSON"]}),
    Fn("lmlib.pretrained.merge_recipe", valid=lambda: dict(base={"a": {"b": 1}}, overrides={"a": {"b": 2}}),
       args={"base": RECIPES, "overrides": RECIPES}),
    Fn("lmlib.pretrained.cached_model",
       valid=lambda: dict(name="tiny", recipe={"a": 1}, build=Tiny, fit=lambda m: None, seed=0, retrain=False,
                          verbose=False, cache=_tmp()),
       args={"name": Custom([("int", 3), ("none", None), ("empty", ""), ("slash", "a/b")]), "recipe": RECIPES,
             "build": FUNCS, "fit": FUNCS, "seed": Int(), "retrain": Bool(), "verbose": Bool(), "cache": PATHS},
       cases=[Case("build_returns_no_module", lambda: P.cached_model("t", {}, build=lambda: 3, fit=lambda m: None,
                                                                     cache=_tmp(), verbose=False), "build()"),
              Case("fit_returns_garbage", lambda: P.cached_model("t", {}, build=Tiny, fit=lambda m: 3,
                                                                 cache=_tmp(), verbose=False), "fit()")]),
    Fn("lmlib.pretrained.store",
       valid=lambda: dict(name="tiny", recipe={"a": 1}, model=Tiny(), history=History(), results={"x": 1.0},
                          cache=_tmp()),
       args={"name": Custom([("int", 3), ("none", None), ("empty", ""), ("slash", "a/b")]), "recipe": RECIPES,
             "model": MODELS, "history": Custom([("dict", {"steps": []}), ("str", "h")]),
             "results": Custom([("list", [1]), ("str", "r"), ("not_json", {"x": object()})]), "cache": PATHS}),
    Fn("lmlib.pretrained.course_data", valid=lambda: dict(split_seed=0), args={"split_seed": Int()},
       check_valid=False),
    Fn("lmlib.pretrained.train_course_gpt", valid=_train_valid, snapshot=_state,
       args={"model": MODELS, "recipe": Custom([("str", "recipe"), ("none", None), ("list", [1]),
                                                ("typo_section", {**P.COURSE_GPT_RECIPE, "trian": {}}),
                                                ("missing_section", {"data": P.COURSE_GPT_RECIPE["data"]})]),
             "data": Custom([("str", "data"), ("none", None), ("tensor", torch.zeros(3))]), "progress": Bool(),
             "checkpoint_path": PATHS, "checkpoint_interval": Int(min=1, nullable=True), "resume_from": PATHS,
             "device": Device()},
       aliases={"recipe": ["trian", "section"]}),
    Fn("lmlib.pretrained.course_gpt", valid=lambda: dict(recipe=None, progress=False, retrain=False, verbose=False,
                                                         cache=_tmp()),
       args={"recipe": GPT_RECIPES, "progress": Bool(), "retrain": Bool(), "verbose": Bool(), "cache": PATHS},
       aliases={"recipe": ["trian", "lrr", "progress", "lr", "batch_size", "tokenizer", "vocab_size", "model"]},
       check_valid=False),
]

EXEMPT = {
    "lmlib.pretrained.Cached": "a result record built only by cached_model from checked values",
    "lmlib.pretrained.CourseGPT": "a result record built only by course_gpt from checked values",
}

test_bad_input = make_test(SPECS)
