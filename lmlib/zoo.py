"""The model zoo: pretrained course models shipped with lmlib, loaded strictly.

Each zoo model ``NAME`` is three kinds of file in ``lmlib/models/``:

* ``NAME.safetensors``: the weights (an :mod:`lmlib.checkpoint` file without optimiser state;
  safetensors holds raw tensors and JSON, so loading never runs code from the file);
* ``NAME.json``: its *card*: the recipe (tokenizer, model shape, data, optimisation), the command
  that made it, the training history, held-out metrics, parameter and token counts, training
  time and hardware, and the SHA-256 of the weights file;
* the tokenizer it was trained with (``tokenizer-char.json`` or ``tokenizer-bpe-<V>.json``,
  JSON; shared by the models that use it).

A zoo model is made by one command, from a config file in ``configs/``::

    python -m lmlib.train --config configs/gpt-char.json      # or: make models

which trains it (deterministically, seeded), evaluates it on the held-out plays and writes the
three files. :func:`load` rebuilds the model from the card's recipe and loads the weights
*strictly*: the file's checksum, and every tensor's name, shape and dtype, must match; otherwise
it raises an error that names the file and the command that rebuilds it.

The kinds of model:

* ``"gpt"``: :class:`lmlib.gpt.GPT` on the character tokenizer of :func:`lmlib.pretrained.course_data`
  or on the course BPE tokenizer (the one of :func:`lmlib.mlm.bert_tokenizer`);
* ``"llama"``: :class:`lmlib.llama.Llama` (the modern decoder of chapter 8), trained and evaluated
  exactly as a ``"gpt"`` (the recipe's ``model`` section holds :class:`~lmlib.llama.LlamaConfig` fields);
* ``"bert"``: :class:`lmlib.bert.BertForMaskedLM` trained with masked-language modelling
  (:func:`lmlib.mlm.train_mlm`);
* ``"translator"``: the encoder–decoder :class:`lmlib.transformer.Transformer` of chapter 9,
  trained on CC-CEDICT (:func:`lmlib.translation.train_translator`: 汉字 -> pinyin and
  Chinese -> English); its two character vocabularies are ``tokenizer-cedict-source.json`` and
  ``tokenizer-cedict-target.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from lmlib.validation import check_bool, check_choice, check_instance, check_int, check_module, check_path, check_str

__all__ = ["MODELS_DIR", "ZOO_NAMES", "ZooModel", "ZooData", "load", "read_card", "load_config", "build",
           "zoo_data", "fit", "evaluate", "make", "rebuild_command", "hardware"]

MODELS_DIR = Path(__file__).resolve().parent / "models"
#: The zoo's models, in the order ``make models`` builds them.
ZOO_NAMES = ("gpt-char", "gpt-bpe", "bert-mlm", "llama-char", "cedict-translator")
CARD_VERSION = 1
KINDS = ("gpt", "llama", "bert", "translator")
#: The recipe of a ``"translator"``: data (:data:`lmlib.translation.DATA_RECIPE`), the shape of
#: :func:`lmlib.translation.encoder_decoder`, the arguments of :func:`lmlib.translation.train_translator`.
TRANSLATOR_RECIPE = {
    "data": {"max_chars": 4, "n_val": 2000, "n_test": 2000, "split_seed": 0, "max_target_chars": 32},
    "model": {"d_model": 128, "n_layers": 2, "n_heads": 4, "dropout": 0.1, "max_len": 48},
    "train": {"steps": 2500, "batch_size": 64, "lr": 0.002, "min_lr": 0.0002, "warmup_steps": 100,
              "weight_decay": 0.01, "grad_clip": 1.0, "seed": 0, "bucket": 1},
}
TRANSLATOR_FILES = ("tokenizer-cedict-source.json", "tokenizer-cedict-target.json")
_DECODERS = ("gpt", "llama")   # kinds trained and evaluated as next-token predictors
CONFIG_KEYS = {"name", "kind", "recipe", "eval", "version"}


def rebuild_command(name: str) -> str:
    """The command that (re)makes zoo model ``name`` from the repository's root."""
    check_str("name", name, nonempty=True, who="rebuild_command")
    return f"`python -m lmlib.train --config configs/{name}.json` (or `make models`)"


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------

def load_config(config: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """A zoo config (a path to its JSON file, or the dict itself), completed and checked.

    A config is ``{"name", "kind": "gpt"|"llama"|"bert", "recipe": {...}, "eval": {...}}``. The recipe has
    the format of :data:`lmlib.pretrained.COURSE_GPT_RECIPE` (``kind="gpt"``; ``data.tokenizer``
    is ``"char"`` or ``"bpe"``, the latter with ``data.vocab_size``) or of
    :data:`lmlib.mlm.COURSE_BERT_RECIPE` (``kind="bert"``); settings left out take those defaults.
    ``eval`` holds the held-out evaluation settings (``stride`` for a GPT's strided loss,
    ``batches`` and ``batch_size`` for a BERT's masked-token accuracy).
    """
    if isinstance(config, Mapping):
        try:
            raw, where = json.loads(json.dumps(dict(config))), "config"
        except (TypeError, ValueError) as exc:
            raise TypeError(f"load_config: config must be JSON-serialisable: {exc}") from None
    else:
        path = check_path("config", config, who="load_config")
        if not path.is_file():
            raise FileNotFoundError(f"load_config: no config file at {path}")
        try:
            raw = json.loads(path.read_bytes().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        where = str(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a zoo config must be a JSON object")
    unknown = sorted(set(raw) - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; a zoo config has {sorted(CONFIG_KEYS)}")
    check_str("name", raw.get("name"), nonempty=True, who=where)
    check_choice("kind", raw.get("kind"), KINDS, who=where)
    for key in ("recipe", "eval"):
        if not isinstance(raw.get(key, {}), dict):
            raise ValueError(f"{where}: {key!r} must be a JSON object, got {raw.get(key)!r:.60}")
    from lmlib.pretrained import merge_recipe

    if raw["kind"] == "translator":
        recipe = merge_recipe(TRANSLATOR_RECIPE, raw.get("recipe", {}))
        _check_translator_recipe(recipe, where=f"{where}: recipe")
        ev = {"batch_size": 256, "check_examples": 256}
    elif raw["kind"] in _DECODERS:
        from lmlib.pretrained import COURSE_GPT_RECIPE, _check_gpt_recipe

        recipe = merge_recipe(COURSE_GPT_RECIPE, raw.get("recipe", {}))
        _check_gpt_recipe(recipe, where=f"{where}: recipe", model=raw["kind"])
        ev = {"stride": recipe["model"]["block_size"] // 2, "batch_size": 32, "check_windows": 64}
    else:
        from lmlib.mlm import COURSE_BERT_RECIPE, _check_bert_recipe

        recipe = merge_recipe(COURSE_BERT_RECIPE, raw.get("recipe", {}))
        _check_bert_recipe(recipe, where=f"{where}: recipe")
        ev = {"batches": 64, "batch_size": 64, "check_batches": 4}
    bad = sorted(set(raw.get("eval", {})) - set(ev))
    if bad:
        raise ValueError(f"{where}: unknown eval setting(s) {bad}; the settings are {sorted(ev)}")
    ev.update(raw.get("eval", {}))
    for k, v in ev.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{where}: eval.{k} must be a positive integer, got {v!r}")
    return {"version": raw.get("version", 1), "name": raw["name"], "kind": raw["kind"],
            "recipe": recipe, "eval": ev}


def _check_translator_recipe(recipe: dict, *, where: str) -> None:
    """Every section's keys are those of :data:`TRANSLATOR_RECIPE`, each value of the default's type."""
    for section, defaults in TRANSLATOR_RECIPE.items():
        if set(recipe) != set(TRANSLATOR_RECIPE) or set(recipe[section]) != set(defaults):
            raise ValueError(f"{where}: a translator recipe has sections {sorted(TRANSLATOR_RECIPE)} with the keys "
                             f"of TRANSLATOR_RECIPE; got {json.dumps(recipe)[:200]}")
        for key, default in defaults.items():
            value = recipe[section][key]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 \
                if isinstance(default, float) else isinstance(value, int) and not isinstance(value, bool) and value >= 0
            if not ok or (value != value):
                raise ValueError(f"{where}: {section}.{key} must be a non-negative "
                                 f"{type(default).__name__}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Building, data, training, evaluation
# --------------------------------------------------------------------------------------------

@dataclass
class ZooData:
    """Tokenizer and token ids of the three play splits (and the test text's length in chars)."""

    tokenizer: Any
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    test_chars: int
    val_chars: int


def zoo_data(config: Mapping[str, Any], tokenizer=None) -> ZooData:
    """The tokenizer and the encoded splits that the config's model is trained and evaluated on.

    ``tokenizer`` (optional) is used instead of learning the recipe's tokenizer again (e.g. the
    one shipped with a zoo model). BPE encodings of the plays are cached (see
    :func:`lmlib.pretrained.cache_dir`), since encoding the training plays takes a while.
    """
    config = load_config(config)
    _check_tokenizer(tokenizer, nullable=True, who="zoo_data", kind=config["kind"])
    recipe = config["recipe"]
    if config["kind"] == "translator":
        from lmlib.translation import cedict_data

        d = cedict_data(recipe["data"], tokenizer)
        return ZooData(d.vocab, d.train, d.val, d.test, len(d.test), len(d.val))
    from lmlib.data import split_plays

    if config["kind"] in _DECODERS and recipe["data"]["tokenizer"] == "char":
        from lmlib.pretrained import course_data

        d = course_data(recipe["data"]["split_seed"])
        if tokenizer is not None and tokenizer.encode(d.split.text("val")[:5000]) != d.val[:5000].tolist():
            raise ValueError("zoo_data: tokenizer is not the character tokenizer of this recipe")
        return ZooData(d.tokenizer, d.train, d.val, d.test, len(d.split.text("test")), len(d.split.text("val")))
    from lmlib.mlm import bert_tokenizer

    if config["kind"] in _DECODERS:
        vocab, seed = recipe["data"]["vocab_size"], recipe["data"]["split_seed"]
    else:
        vocab, seed = recipe["tokenizer"]["vocab_size"], recipe["tokenizer"]["split_seed"]
    tok = tokenizer if tokenizer is not None else bert_tokenizer(vocab, seed)
    if tok.vocab_size != vocab:
        raise ValueError(f"zoo_data: tokenizer has {tok.vocab_size} tokens, the recipe {vocab}")
    split = split_plays(seed)
    ids = [_encoded(tok, split, part) for part in ("train", "val", "test")]
    return ZooData(tok, *ids, len(split.text("test")), len(split.text("val")))


def _encoded(tokenizer, split, part: str) -> torch.Tensor:
    """``encode_plays(tokenizer, split.<part>)``, cached as safetensors keyed by the tokenizer's
    content and the plays."""
    from safetensors.torch import load_file, save_file

    from lmlib.mlm import encode_plays
    from lmlib.pretrained import cache_dir

    plays = list(getattr(split, part))
    key = json.dumps([tokenizer.kind, tokenizer.special_tokens, tokenizer._state(), plays], sort_keys=True)
    path = cache_dir() / "encoded" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.safetensors"
    if path.is_file():
        try:
            return load_file(path)["ids"]
        except Exception:  # noqa: BLE001 - a corrupt cache entry: encode again
            pass
    ids = encode_plays(tokenizer, plays)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"ids": ids}, str(tmp))
    os.replace(tmp, path)
    return ids


def build(config: Mapping[str, Any], tokenizer) -> nn.Module:
    """The untrained model of a config, sized for ``tokenizer``."""
    config = load_config(config)
    _check_tokenizer(tokenizer, who="build", kind=config["kind"])
    if config["kind"] == "translator":
        from lmlib.translation import encoder_decoder

        return encoder_decoder(tokenizer, **config["recipe"]["model"])
    if config["kind"] == "gpt":
        from lmlib.gpt import GPT, GPTConfig

        return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **config["recipe"]["model"]))
    if config["kind"] == "llama":
        from lmlib.llama import Llama, LlamaConfig

        return Llama(LlamaConfig(vocab_size=tokenizer.vocab_size, **config["recipe"]["model"]))
    from lmlib.bert import BertForMaskedLM
    from lmlib.mlm import bert_config

    return BertForMaskedLM(bert_config(config["recipe"], tokenizer))


def fit(model: nn.Module, config: Mapping[str, Any], data: ZooData, *, progress: bool = True,
        stop_after: int | None = None):
    """Train ``model`` as the config's recipe says; returns the :class:`~lmlib.training.History`.
    ``stop_after=n`` stops after ``n`` steps of the same schedule (for the provenance tests)."""
    config = load_config(config)
    _check_model_and_data(model, data, config, who="fit")
    check_bool("progress", progress, who="fit")
    if stop_after is not None:
        check_int("stop_after", stop_after, min=1, who="fit")
    if config["kind"] == "translator":
        from lmlib.translation import train_translator

        return train_translator(model, data.tokenizer, data.train, progress=progress, stop_after=stop_after,
                                **config["recipe"]["train"])
    if config["kind"] in _DECODERS:
        from lmlib.pretrained import CourseData, train_course_gpt

        cd = CourseData(data.tokenizer, None, data.train, data.val, data.test)
        return train_course_gpt(model, config["recipe"], cd, progress=progress, stop_after=stop_after)
    from lmlib.mlm import train_mlm

    return train_mlm(model, data.tokenizer, config["recipe"], data.train, data.val, progress=progress,
                     stop_after=stop_after)


def evaluate(model: nn.Module, config: Mapping[str, Any], data: ZooData, split: str = "test", *,
             quick: bool = False) -> dict[str, float]:
    """Held-out metrics of a zoo model on the ``"test"`` (default) or ``"val"`` plays.

    GPT: loss over the whole text in non-overlapping windows and with the config's stride, in
    nats per token and bits per character. BERT: masked-token loss and accuracy (all selected
    positions, and the ``[MASK]`` positions alone) on ``eval.batches`` fixed batches.
    ``quick=True`` computes only the first ``check_windows`` windows / ``check_batches``
    batches: the figure the provenance tests reproduce.
    """
    config = load_config(config)
    _check_model_and_data(model, data, config, who="evaluate")
    check_choice("split", split, ("test", "val"), who="evaluate")
    check_bool("quick", quick, who="evaluate")
    ids = getattr(data, split)
    chars = data.test_chars if split == "test" else data.val_chars
    ev = config["eval"]
    if config["kind"] == "translator":
        from lmlib.translation import TASKS, heldout_loss

        if quick:
            return {"loss": heldout_loss(model, data.tokenizer, ids[:ev["check_examples"]], batch_size=ev["batch_size"])}
        out = {"loss": heldout_loss(model, data.tokenizer, ids, batch_size=ev["batch_size"]), "examples": len(ids)}
        for task in TASKS:
            out[f"loss_{task}"] = heldout_loss(model, data.tokenizer, [e for e in ids if e.task == task],
                                               batch_size=ev["batch_size"])
        from lmlib import translation_eval as te
        from lmlib.translation import translate

        for task in TASKS:                       # greedy decoding, scored as chapter 9 scores it
            ex = [e for e in ids if e.task == task]
            preds, refs = translate(model, data.tokenizer, ex, batch_size=ev["batch_size"]), [e.references for e in ex]
            if task == "pinyin":
                out["pinyin_exact_match"] = te.exact_match(preds, refs)
                out["pinyin_syllable_error_rate"] = te.syllable_error_rate(preds, refs)
            else:
                out["english_chrf"], out["english_bleu"] = te.chrf(preds, refs), te.bleu(preds, refs)
        return out
    if config["kind"] in _DECODERS:
        from lmlib.evaluation import bits_per_char, heldout_loss

        block = config["recipe"]["model"]["block_size"]
        if quick:
            return {"loss": heldout_loss(model, ids, block, batch_size=ev["batch_size"],
                                         max_windows=ev["check_windows"])["loss"]}
        out = {}
        for key, stride in (("", None), ("strided_", ev["stride"])):
            r = heldout_loss(model, ids, block, stride=stride, batch_size=ev["batch_size"])
            out[key + "loss"] = r["loss"]
            out[key + "bits_per_char"] = bits_per_char(r["loss"], r["tokens"], chars)
            out[key + "tokens"] = r["tokens"]
        out["stride"], out["chars"] = ev["stride"], chars
        return out
    from lmlib.mlm import heldout_mlm

    n = ev["check_batches"] if quick else ev["batches"]
    return heldout_mlm(model, data.tokenizer, config["recipe"], ids, n_batches=n, batch_size=ev["batch_size"])


# --------------------------------------------------------------------------------------------
# Making and loading zoo files
# --------------------------------------------------------------------------------------------

def _check_tokenizer(tokenizer: Any, *, who: str, nullable: bool = False, kind: str = "gpt") -> None:
    if kind == "translator":
        from lmlib.translation import Vocabularies

        check_instance("tokenizer", tokenizer, Vocabularies, "the Vocabularies of lmlib.translation",
                       nullable=nullable, who=who)
        return
    from lmlib.tokenizers import Tokenizer

    check_instance("tokenizer", tokenizer, Tokenizer, "an lmlib tokenizer", nullable=nullable, who=who)


def _check_model_and_data(model: Any, data: Any, config: Mapping[str, Any], *, who: str) -> None:
    check_module("model", model, who=who)
    check_instance("data", data, ZooData, "a ZooData (from zoo_data)", who=who)
    from lmlib.bert import BertForMaskedLM
    from lmlib.gpt import GPT
    from lmlib.llama import Llama
    from lmlib.transformer import Transformer

    kind = {"gpt": GPT, "llama": Llama, "bert": BertForMaskedLM, "translator": Transformer}[config["kind"]]
    check_instance("model", model, kind, f"a {kind.__name__} (the config's kind is {config['kind']!r})", who=who)
    if config["kind"] == "translator":
        c, v = model.config, data.tokenizer
        if (c.src_vocab_size, c.tgt_vocab_size) != (v.source.vocab_size, v.target.vocab_size):
            raise ValueError(f"{who}: model has vocabularies of {c.src_vocab_size} and {c.tgt_vocab_size} tokens, "
                             f"data's {v.source.vocab_size} and {v.target.vocab_size}")
        return
    if model.config.vocab_size != data.tokenizer.vocab_size:
        raise ValueError(f"{who}: model has a vocabulary of {model.config.vocab_size} tokens, "
                         f"data's tokenizer {data.tokenizer.vocab_size}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tokenizer_file(config: Mapping[str, Any]) -> str:
    r = config["recipe"]
    if config["kind"] == "translator":
        return TRANSLATOR_FILES[0]
    if config["kind"] in _DECODERS and r["data"]["tokenizer"] == "char":
        return "tokenizer-char.json"
    v = r["data"]["vocab_size"] if config["kind"] in _DECODERS else r["tokenizer"]["vocab_size"]
    return f"tokenizer-bpe-{v}.json"


def hardware() -> dict[str, Any]:
    """What the training ran on (for the card)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"cpu": cpu, "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "torch": torch.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def make(config: str | os.PathLike | Mapping[str, Any], *, out_dir: str | os.PathLike | None = None,
         progress: bool = True, command: str | None = None) -> dict[str, Any]:
    """Train the config's model, evaluate it, and write its weights, card and tokenizer to
    ``out_dir`` (default :data:`MODELS_DIR`). Returns the card."""
    from lmlib import checkpoint as ckpt
    from lmlib.training import seed_everything

    config = load_config(config)
    out = check_path("out_dir", out_dir, who="make") if out_dir is not None else MODELS_DIR
    check_bool("progress", progress, who="make")
    if command is not None:
        check_str("command", command, nonempty=True, who="make")
    name = config["name"]
    data = zoo_data(config)
    seed_everything(config["recipe"]["train"].get("seed", 0))
    model = build(config, data.tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    t0 = time.time()
    history = fit(model, config, data, progress=progress)
    train_seconds = time.time() - t0
    model.eval()
    t1 = time.time()
    metrics = {"test": evaluate(model, config, data, "test"), "val": evaluate(model, config, data, "val"),
               "check": evaluate(model, config, data, "test", quick=True)}
    metrics["eval_seconds"] = time.time() - t1
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.safetensors"
    ckpt.save_checkpoint(weights, model, step=len(history.steps), extra={"zoo": name})
    os.chmod(weights, 0o644)                 # a shipped file, readable by everyone
    tok_file = _tokenizer_file(config)
    tokenizers = ((TRANSLATOR_FILES[0], data.tokenizer.source), (TRANSLATOR_FILES[1], data.tokenizer.target)) \
        if config["kind"] == "translator" else ((tok_file, data.tokenizer),)
    for file, tok in tokenizers:
        tmp = out / (file + ".tmp")
        tok.save(tmp)
        os.replace(tmp, out / file)
    card = {"card_version": CARD_VERSION, "name": name, "kind": config["kind"], "config": config,
            "command": command or f"python -m lmlib.train --config configs/{name}.json",
            "tokenizer_file": tok_file, "weights_sha256": _sha256(weights),
            "params": n_params, "tokens_seen": history.tokens, "steps": len(history.steps),
            "train_seconds": train_seconds, "hardware": hardware(), "metrics": metrics,
            "history": history.to_dict(),
            "made": time.strftime("%Y-%m-%d", time.gmtime())}
    tmp = out / f"{name}.json.tmp"
    tmp.write_text(json.dumps(card, indent=1))
    os.replace(tmp, out / f"{name}.json")
    return card


def read_card(name: str, *, models_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The card of zoo model ``name`` (its recipe, history, metrics...), checked."""
    check_str("name", name, nonempty=True, who="read_card")
    folder = check_path("models_dir", models_dir, who="read_card") if models_dir is not None else MODELS_DIR
    path = folder / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []
        hint = f"the zoo has {known}" if known else "the zoo is empty"
        raise FileNotFoundError(f"read_card: no zoo model named {name!r} ({path} is missing; {hint}); "
                                f"build it with {rebuild_command(name)}")
    try:
        card = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"the card {path} is corrupt ({exc}); rebuild it with {rebuild_command(name)}") from None
    missing = [k for k in ("card_version", "name", "kind", "config", "tokenizer_file", "weights_sha256",
                           "metrics", "history") if not isinstance(card, dict) or k not in card]
    if missing:
        raise ValueError(f"the card {path} lacks {missing}; rebuild it with {rebuild_command(name)}")
    if card["card_version"] != CARD_VERSION or card["name"] != name:
        raise ValueError(f"the card {path} is for {card['name']!r}, version {card['card_version']} "
                         f"(expected {name!r}, version {CARD_VERSION}); rebuild it with {rebuild_command(name)}")
    return card


@dataclass
class ZooModel:
    """A loaded zoo model: ``model`` (in eval mode), its ``tokenizer`` and its ``card``."""

    name: str
    model: nn.Module
    tokenizer: Any
    card: dict = field(repr=False)
    path: Path

    @property
    def config(self) -> dict:
        return self.card["config"]

    @property
    def recipe(self) -> dict:
        return self.card["config"]["recipe"]

    @property
    def metrics(self) -> dict:
        return self.card["metrics"]

    @property
    def history(self):
        from lmlib.training import History

        return History.from_dict(self.card["history"])


def _load_tokenizers(config: dict, folder: Path, tok_path: Path):
    from lmlib.tokenizers import CharTokenizer, load_tokenizer

    if config["kind"] != "translator":
        return load_tokenizer(tok_path)
    from lmlib.translation import Vocabularies

    return Vocabularies(CharTokenizer.load(tok_path), CharTokenizer.load(folder / TRANSLATOR_FILES[1]))


def load(name: str, *, device: str | torch.device = "cpu", models_dir: str | os.PathLike | None = None) -> ZooModel:
    """Load zoo model ``name`` (see :data:`ZOO_NAMES`) strictly; it comes back in eval mode.

    Checked before anything is loaded: the card, the weights file's SHA-256 against the card, and
    every tensor's name, shape and dtype against the model the card's recipe builds. Only JSON
    and safetensors are read (no pickle). Any mismatch raises an error naming the file and the
    command that rebuilds it.
    """
    from lmlib import checkpoint as ckpt
    from lmlib.tokenizers import load_tokenizer
    from lmlib.validation import check_device

    check_str("name", name, nonempty=True, who="load")
    device = check_device("device", device, who="load")
    card = read_card(name, models_dir=models_dir)
    folder = Path(models_dir) if models_dir is not None else MODELS_DIR
    weights, tok_path = folder / f"{name}.safetensors", folder / card["tokenizer_file"]
    extra = [folder / TRANSLATOR_FILES[1]] if card.get("kind") == "translator" else []
    for path in (weights, tok_path, *extra):
        if not path.is_file():
            raise FileNotFoundError(f"load: {path} is missing; rebuild zoo model {name!r} with {rebuild_command(name)}")
    if _sha256(weights) != card["weights_sha256"]:
        raise ValueError(f"load: {weights} does not match its card (SHA-256 differs: the file is corrupt or "
                         f"from another run); rebuild it with {rebuild_command(name)}")
    try:
        config = load_config(card["config"])
        tokenizer = _load_tokenizers(config, folder, tok_path)
        model = build(config, tokenizer)
        ckpt.load_checkpoint(weights, model, restore_rng=False)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"load: zoo model {name!r} does not load ({exc}); rebuild it with "
                         f"{rebuild_command(name)}") from None
    model.to(device).eval()
    return ZooModel(name, model, tokenizer, card, weights)

