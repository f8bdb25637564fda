"""Trained models that are trained once and then loaded from a cache.

Later chapters need "the pretrained course model" without spending minutes retraining it every
time a notebook runs. :func:`cached_model` is the generic mechanism; :func:`course_gpt` uses it
for the character-level GPT of chapter 5 (chapter 7 fine-tunes that model).

How the cache works
-------------------
A model is described by a JSON-serialisable *recipe* (architecture, data, optimisation: every
setting that changes the trained weights). The SHA-256 of the recipe's canonical JSON names a
folder ``<cache>/<name>-<hash16>/`` holding

* ``model.safetensors``: the weights as an :mod:`lmlib.checkpoint` file (no optimiser state),
  with the training :class:`~lmlib.training.History` and any extra results in its metadata;
* ``recipe.json``: the recipe, for people browsing the cache.

If the folder exists and its file loads (the recipe hash matches and the tensors fit the model),
the model is loaded in about a second. Otherwise it is trained deterministically (seeded) and
saved atomically, so an interrupted run never leaves a broken entry; a corrupt entry is
reported and retrained. Changing any recipe setting gives a new hash, hence a new entry.

The cache folder is ``$LMLIB_CACHE`` when that environment variable is set, else
``~/.cache/lmlib``. Delete the folder (or pass ``retrain=True``) to force retraining.

Generic use (e.g. chapter 6's BERT)::

    result = cached_model("tiny-bert", recipe, build=lambda: BertForMaskedLM(cfg),
                          fit=lambda model: train(model, get_batch, TrainConfig(**recipe["train"])))
    result.model, result.history, result.from_cache
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from lmlib import checkpoint as ckpt
from lmlib.training import History, TrainConfig, seed_everything
from lmlib.validation import check_bool, check_instance, check_int, check_str
from lmlib.validation import check_module, check_path

__all__ = [
    "cache_dir",
    "recipe_hash",
    "Cached",
    "cached_model",
    "store",
    "COURSE_GPT_RECIPE",
    "CourseGPT",
    "course_gpt",
    "train_course_gpt",
    "course_data",
    "merge_recipe",
    "load",
]

RECIPE_VERSION = 1


def cache_dir() -> Path:
    """``$LMLIB_CACHE`` if set, else ``~/.cache/lmlib`` (created when needed)."""
    env = os.environ.get("LMLIB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lmlib"


def display_path(path: str | os.PathLike) -> str:
    """A path for messages: ``<course cache>/...`` inside the cache (the same text wherever
    ``LMLIB_CACHE`` points), otherwise with the home folder written as ``~``."""
    path = Path(path)
    try:
        return "<course cache>/" + path.resolve().relative_to(cache_dir().resolve()).as_posix()
    except ValueError:
        pass
    home = Path.home()
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def recipe_hash(recipe: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the recipe's canonical JSON (sorted keys)."""
    check_instance("recipe", recipe, Mapping, "a dict", who="recipe_hash")
    try:
        text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a recipe must be JSON-serialisable: {exc}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Cached:
    """A model from :func:`cached_model`: ``history`` and ``results`` are what ``fit`` returned."""

    model: nn.Module
    history: History | None
    results: dict[str, Any]
    recipe: dict[str, Any]
    path: Path
    from_cache: bool


def cached_model(
    name: str,
    recipe: Mapping[str, Any],
    build: Callable[[], nn.Module],
    fit: Callable[[nn.Module], History | tuple[History, dict] | None],
    *,
    seed: int = 0,
    retrain: bool = False,
    verbose: bool = True,
    cache: str | os.PathLike | None = None,
) -> Cached:
    """Load the model trained from ``recipe`` from the cache, or build, train and cache it.

    ``build()`` makes the untrained model (called after seeding everything with ``seed``, so its
    initialisation is reproducible). ``fit(model)`` trains it in place and returns a
    :class:`History`, or ``(History, results)`` where ``results`` is a JSON-serialisable dict of
    extra figures to keep with the weights, or ``None``. ``cache`` overrides :func:`cache_dir`.
    """
    _check_cache_args(name, recipe, cache, who="cached_model")
    for arg, fn in (("build", build), ("fit", fit)):
        if not callable(fn):
            raise TypeError(f"cached_model: {arg} must be a function, got {type(fn).__name__}")
    check_int("seed", seed, min=-2**63, max=2**64 - 1, who="cached_model")
    check_bool("retrain", retrain, who="cached_model"), check_bool("verbose", verbose, who="cached_model")
    recipe = json.loads(json.dumps(dict(recipe)))  # canonical, detached copy
    h = recipe_hash(recipe)
    folder = Path(cache) if cache is not None else cache_dir()
    folder = folder / f"{name}-{h}"
    path = folder / "model.safetensors"

    seed_everything(seed)
    model = build()
    if not isinstance(model, nn.Module):
        raise TypeError(f"build() must return an nn.Module, got {type(model).__name__}")
    if path.exists() and not retrain:
        try:
            history = []
            state = ckpt.load_checkpoint(path, model, restore_rng=False,
                                         check_extra=lambda extra: history.append(_check_cached_extra(extra, h)))
            if verbose:
                print(f"Loaded {name!r} from the cache: {display_path(path)}")
            return Cached(model, history[0], state.extra.get("results", {}), recipe, path, True)
        except ValueError as exc:
            warnings.warn(f"ignoring the unusable cache entry {path} ({exc}); training again")
            seed_everything(seed)
            model = build()

    if verbose:
        print(f"Training {name!r} (not in the cache yet; it will be saved to {display_path(path)})")
    out = fit(model)
    results: dict[str, Any] = {}
    history = out
    if isinstance(out, tuple):
        history, results = out
    if history is not None and not isinstance(history, History):
        raise TypeError(f"fit() must return a History, (History, dict) or None, got {type(out).__name__}")
    store(name, recipe, model, history, results, cache=cache)
    return Cached(model, history, results, recipe, path, False)


def _check_course_model_args(recipe: Any, progress: Any, retrain: Any, verbose: Any, cache: Any, *,
                            who: str) -> None:
    """The arguments shared by :func:`course_gpt` and :func:`lmlib.mlm.course_bert`."""
    check_instance("recipe", recipe, Mapping, "a dict", nullable=True, who=who)
    for arg, value in (("progress", progress), ("retrain", retrain), ("verbose", verbose)):
        check_bool(arg, value, who=who)
    if cache is not None:
        check_path("cache", cache, who=who)


def _check_cache_args(name: str, recipe: Any, cache: Any, *, who: str) -> None:
    check_str("name", name, nonempty=True, who=who)
    if "/" in name:
        raise ValueError(f"{who}: name must be a non-empty string without '/', got {name!r}")
    check_instance("recipe", recipe, Mapping, "a dict", who=who)
    _check_json("recipe", recipe, who=who)
    if cache is not None:
        check_path("cache", cache, who=who)


def _check_json(name: str, value: Any, *, who: str) -> None:
    try:
        json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{who}: {name} must be JSON-serialisable: {exc}") from None


def _check_cached_extra(extra: dict[str, Any], h: str) -> History | None:
    """The history of a cache entry, after checking that the entry was trained from this recipe."""
    if extra.get("recipe_hash") != h:
        raise ValueError(f"recipe hash {extra.get('recipe_hash')} != {h}")
    if not isinstance(extra.get("results", {}), dict):
        raise ValueError(f"the cache entry's 'results' must be an object, got {extra.get('results')!r:.60}")
    hist = extra.get("history")
    if hist is not None and not isinstance(hist, dict):
        raise ValueError(f"the cache entry's 'history' must be an object, got {hist!r:.60}")
    return History.from_dict(hist) if hist else None


def _check_recipe(recipe: Mapping[str, Any], allowed: Mapping[str, set[str]], *, where: str,
                  run_keys: tuple[str, ...] = ()) -> None:
    """Every section of ``recipe`` is known (besides ``"version"``), a JSON object, and holds only
    known settings; errors name the unknown ones and list the known ones."""
    unknown = sorted(set(recipe) - set(allowed) - {"version"})
    if unknown:
        extra = f" and optionally {list(run_keys)}" if run_keys else ""
        raise ValueError(f"{where}: unknown section(s) {unknown}; expected {sorted({*allowed, 'version'})}{extra}")
    for section, names in allowed.items():
        if not isinstance(recipe.get(section), dict):
            raise ValueError(f"{where}: section {section!r} must be a JSON object, got {recipe.get(section)!r:.60}")
        bad = sorted(set(recipe[section]) - set(names))
        if bad:
            raise ValueError(f"{where}: unknown setting(s) {bad} in section {section!r}; "
                             f"the settings are {sorted(names)}")


#: TrainConfig fields that a recipe may not set (they control the run, not the trained weights).
_RUN_FIELDS = {"progress", "desc", "checkpoint_path", "checkpoint_interval"}


def _check_gpt_recipe(recipe: Mapping[str, Any], *, where: str, run_keys: tuple[str, ...] = (),
                      model: str = "gpt") -> None:
    """A full course-GPT recipe: known sections and settings, and values that build a config.
    ``model="llama"``: the model section holds :class:`lmlib.llama.LlamaConfig` fields instead."""
    from lmlib.gpt import GPTConfig
    from lmlib.llama import LlamaConfig

    config_cls = LlamaConfig if model == "llama" else GPTConfig
    allowed = {"data": set(COURSE_GPT_RECIPE["data"]) | {"vocab_size"},
               "model": {f.name for f in dataclasses.fields(config_cls)} - {"vocab_size"},
               "train": {f.name for f in dataclasses.fields(TrainConfig)} - _RUN_FIELDS}
    _check_recipe(recipe, allowed, where=where, run_keys=run_keys)
    d = recipe["data"]
    if d.get("tokenizer") not in ("char", "bpe"):
        raise ValueError(f"{where}: data.tokenizer must be 'char' or 'bpe', got {d.get('tokenizer')!r}")
    if d["tokenizer"] == "bpe":
        from lmlib.mlm import SPECIAL_TOKENS

        check_int("data.vocab_size", d.get("vocab_size"), min=256 + len(SPECIAL_TOKENS), who=where)
    elif "vocab_size" in d:
        raise ValueError(f"{where}: data.vocab_size is for data.tokenizer 'bpe' (the character tokenizer's "
                         f"vocabulary is the corpus's characters)")
    check_int("data.split_seed", d.get("split_seed"), who=where)
    check_int("data.batch_size", d.get("batch_size"), min=1, who=where)
    check_int("data.eval_batches", d.get("eval_batches"), min=1, who=where)
    try:
        TrainConfig(**recipe["train"])
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: section 'train': {exc}") from None


def store(name: str, recipe: Mapping[str, Any], model: nn.Module, history: History | None,
          results: Mapping[str, Any] | None = None, *, cache: str | os.PathLike | None = None) -> Path:
    """Put a trained model into the cache under ``recipe`` (what :func:`cached_model` does after
    training; also used by ``python -m lmlib.train --cache``). Returns the weights' path."""
    _check_cache_args(name, recipe, cache, who="store")
    check_module("model", model, who="store")
    if history is not None and not isinstance(history, History):
        raise TypeError(f"store: history must be a History or None, got {type(history).__name__}")
    check_instance("results", results, Mapping, "a dict", nullable=True, who="store")
    _check_json("results", results, who="store")
    recipe = json.loads(json.dumps(dict(recipe)))
    h = recipe_hash(recipe)
    folder = (Path(cache) if cache is not None else cache_dir()) / f"{name}-{h}"
    folder.mkdir(parents=True, exist_ok=True)
    extra = {"recipe_hash": h, "recipe": recipe, "history": history.to_dict() if history else None,
             "results": dict(results or {})}
    path = folder / "model.safetensors"
    ckpt.save_checkpoint(path, model, step=len(history.steps) if history else 0, extra=extra)
    tmp = folder / "recipe.json.tmp"
    tmp.write_text(json.dumps(recipe, indent=2, sort_keys=True))
    os.replace(tmp, folder / "recipe.json")
    return path


# --------------------------------------------------------------------------------------------
# The course's character-level GPT
# --------------------------------------------------------------------------------------------

#: The recipe of the chapter-5 model, sized to train in about a minute or two on two CPU cores.
COURSE_GPT_RECIPE: dict[str, Any] = {
    "version": RECIPE_VERSION,
    "data": {"tokenizer": "char", "split_seed": 0, "batch_size": 16, "eval_batches": 8},
    "model": {"block_size": 128, "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.0, "bias": True},
    "train": {"max_steps": 400, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 20, "weight_decay": 0.1,
              "betas": [0.9, 0.99], "grad_clip": 1.0, "eval_interval": 50, "seed": 0},
}


def merge_recipe(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``overrides`` applied, section by section (nested dicts are merged)."""
    check_instance("base", base, Mapping, "a dict", who="merge_recipe")
    check_instance("overrides", overrides, Mapping, "a dict", who="merge_recipe")
    _check_json("base", base, who="merge_recipe"), _check_json("overrides", overrides, who="merge_recipe")
    out = json.loads(json.dumps(dict(base)))
    for k, v in overrides.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge_recipe(out[k], v)
        else:
            out[k] = v
    return out


@dataclass
class CourseData:
    """The character data of the course model: tokenizer and the three splits as id tensors."""

    tokenizer: Any
    split: Any
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


def course_data(split_seed: int = 0, *, tokenizer: str = "char", vocab_size: int | None = None) -> CourseData:
    """The play split and its token ids. ``tokenizer="char"``: the characters of the whole corpus
    (so held-out plays never meet an unknown character; the same ids as
    :class:`lmlib.data.CharVocab`). ``tokenizer="bpe"``: the course BPE tokenizer with
    ``vocab_size`` tokens, learned from the training plays (:func:`lmlib.mlm.bert_tokenizer`)."""
    from lmlib.data import corpus_text, split_plays
    from lmlib.tokenizers import CharTokenizer

    check_int("split_seed", split_seed, who="course_data")
    check_str("tokenizer", tokenizer, who="course_data")
    if tokenizer not in ("char", "bpe"):
        raise ValueError(f"course_data: tokenizer must be 'char' or 'bpe', got {tokenizer!r}")
    if (vocab_size is None) != (tokenizer == "char"):
        raise ValueError("course_data: vocab_size is required with tokenizer='bpe' and refused with 'char'")
    if tokenizer == "char":
        tok = CharTokenizer.from_text(corpus_text())
    else:
        from lmlib.mlm import bert_tokenizer

        tok = bert_tokenizer(vocab_size, split_seed)
    split = split_plays(seed=split_seed)
    dtype = torch.int16 if tok.vocab_size < 2**15 else torch.int32

    def ids(part: str) -> torch.Tensor:
        return torch.tensor(tok.encode(split.text(part), allowed_special="none"), dtype=dtype)

    return CourseData(tok, split, ids("train"), ids("val"), ids("test"))


@dataclass
class CourseGPT:
    """The course model and everything that comes with it."""

    model: nn.Module
    tokenizer: Any
    history: History
    recipe: dict[str, Any]
    data: CourseData = field(repr=False)
    path: Path
    from_cache: bool


def _build_course_gpt(recipe: Mapping[str, Any], vocab_size: int) -> nn.Module:
    from lmlib.gpt import GPT, GPTConfig

    return GPT(GPTConfig(vocab_size=vocab_size, **recipe["model"]))


def train_course_gpt(model: nn.Module, recipe: Mapping[str, Any], data: CourseData, *,
                     progress: bool = True, checkpoint_path: str | None = None,
                     checkpoint_interval: int | None = None, resume_from: str | None = None,
                     stop_after: int | None = None, device: str = "cpu") -> History:
    """Train ``model`` on the training plays as the recipe says (used by :func:`course_gpt` and by
    the command line ``python -m lmlib.train``). Evaluates on fixed batches of the validation
    plays every ``eval_interval`` steps. ``stop_after=n`` stops after step ``n`` of the same
    schedule (see :func:`lmlib.training.train`). ``device``: where to train ("cpu", "cuda")."""
    from lmlib.data import sample_batch
    from lmlib.training import make_lm_eval_fn, train

    from lmlib.llama import Llama

    check_module("model", model, who="train_course_gpt")
    check_instance("recipe", recipe, Mapping, "a dict", who="train_course_gpt")
    _check_gpt_recipe(recipe, where="train_course_gpt: recipe", model="llama" if isinstance(model, Llama) else "gpt")
    if not isinstance(data, CourseData):
        raise TypeError(f"train_course_gpt: data must be a CourseData (from course_data), got {type(data).__name__}")
    d = recipe["data"]
    block = recipe["model"]["block_size"]
    cfg = TrainConfig(**recipe["train"], progress=progress, checkpoint_path=checkpoint_path,
                      checkpoint_interval=checkpoint_interval, desc="pretraining", device=device)
    train_ids = data.train

    def get_batch(g: torch.Generator):
        return sample_batch(train_ids, block, d["batch_size"], generator=g)

    eval_fn = make_lm_eval_fn(data.val, block, d["batch_size"], n_batches=d["eval_batches"], name="val loss")
    return train(model, get_batch, cfg, eval_fn=eval_fn, resume_from=resume_from, stop_after=stop_after)


def course_gpt(recipe: Mapping[str, Any] | None = None, *, progress: bool = True, retrain: bool = False,
               verbose: bool = True, cache: str | os.PathLike | None = None) -> CourseGPT:
    """The chapter-5 character-level GPT, trained on the training plays of ``split_plays(0)``.

    ``recipe`` (optional) overrides parts of :data:`COURSE_GPT_RECIPE`, e.g.
    ``{"train": {"max_steps": 5000}}`` for a longer run. Loaded from the cache when this exact
    recipe was trained before (see the module docstring), otherwise trained and cached.
    """
    _check_course_model_args(recipe, progress, retrain, verbose, cache, who="course_gpt")
    full = merge_recipe(COURSE_GPT_RECIPE, recipe or {})
    _check_gpt_recipe(full, where="course_gpt: recipe")
    d = full["data"]
    data = course_data(d["split_seed"], tokenizer=d["tokenizer"], vocab_size=d.get("vocab_size"))
    res = cached_model(
        "course-gpt", full,
        build=lambda: _build_course_gpt(full, data.tokenizer.vocab_size),
        fit=lambda m: train_course_gpt(m, full, data, progress=progress),
        seed=full["train"].get("seed", 0), retrain=retrain, verbose=verbose, cache=cache)
    res.model.eval()
    return CourseGPT(res.model, data.tokenizer, res.history, full, data, res.path, res.from_cache)


def load(name: str, *, device: str | torch.device = "cpu", models_dir: str | os.PathLike | None = None):
    """A pretrained model of the course zoo, e.g. ``load("gpt-char")``: see :func:`lmlib.zoo.load`
    (strict loading of shipped safetensors files, never pickles)."""
    from lmlib import zoo

    return zoo.load(name, device=device, models_dir=models_dir)
