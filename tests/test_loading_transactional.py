"""Every loader of lmlib is transactional: it reads and checks everything first, and a failed load
leaves the model, the optimiser and the random-number generators exactly as they were.

Covered: checkpoints (:mod:`lmlib.checkpoint`), model weights (:mod:`lmlib.weights`), tokenizer
files (:mod:`lmlib.tokenizers`), training resumes (:func:`lmlib.training.train`), config files
(:func:`lmlib.train.load_config`) and the model cache (:func:`lmlib.pretrained.cached_model`). Each
bad file is checked for the error type, a message that names the problem, and unchanged state.
"""

import copy
import json
import random
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from lmlib import checkpoint as ckpt
from lmlib.tokenizers import ENDOFTEXT, GPT2_PATTERN, BPETokenizer, Tokenizer
from lmlib.training import History, TrainConfig, train
from lmlib.weights import load_weights, save_weights


class Tiny(nn.Module):
    """A two-layer model whose forward returns ``(logits, loss)`` like the course models."""

    def __init__(self, vocab: int = 7, dim: int = 4, extra: bool = False):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, vocab)
        if extra:
            self.more = nn.Linear(dim, dim)

    def forward(self, x, y=None):
        logits = self.out(self.emb(x))
        loss = None if y is None else nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        return logits, loss


def _trained(seed: int, **kw):
    """A model, its AdamW after one step (so the optimiser has state) and a used generator."""
    torch.manual_seed(seed)
    model = Tiny(**kw)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(7, (2, 3))
    model(x, x)[1].backward()
    opt.step()
    opt.zero_grad()
    g = torch.Generator().manual_seed(seed)
    torch.rand(5, generator=g)
    return model, opt, g


def _snapshot(model, opt, g):
    return {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optim": copy.deepcopy(opt.state_dict()) if opt is not None else None,
        "generator": g.get_state().clone() if g is not None else None,
        "torch_rng": torch.get_rng_state().clone(),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state()[1].copy(),
    }


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and (
            a.numel() == 0 or torch.equal(a.contiguous().view(-1).view(torch.uint8),
                                          b.contiguous().view(-1).view(torch.uint8)))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _assert_unchanged(before, model, opt, g):
    after = _snapshot(model, opt, g)
    for part in before:
        assert _same(before[part], after[part]), f"{part} changed although the load failed"


def _rewrite(src, dst, *, meta=None, tensors=None):
    """Copy a checkpoint, editing its 'lmlib' metadata (``meta(dict) -> dict``) and/or tensors."""
    with safe_open(str(src), framework="pt") as f:
        header = dict(f.metadata())
        ts = {k: f.get_tensor(k) for k in f.keys()}
    if meta is not None:
        header["lmlib"] = json.dumps(meta(json.loads(header["lmlib"])))
    if tensors is not None:
        ts = tensors(ts)
    save_file(ts, str(dst), metadata=header)
    return dst


@pytest.fixture()
def good(tmp_path):
    model, opt, g = _trained(0)
    return ckpt.save_checkpoint(tmp_path / "good.safetensors", model, opt, step=3, generator=g,
                                extra={"note": "x"})


@pytest.fixture()
def target():
    """Another model (other weights), optimiser and generator that a failed load must not touch."""
    random.seed(5)
    np.random.seed(5)
    return _trained(1)


def _drop(key):
    def edit(m):
        del m[key]
        return m
    return edit


def _set(key, value):
    def edit(m):
        m[key] = value
        return m
    return edit


def _set_optim(edit_group):
    def edit(m):
        edit_group(m["optimizer"]["param_groups"][0])
        return m
    return edit


CORRUPT_FILES = {
    # name: (how to make the file from the good one, expected message fragment)
    "random_bytes": (lambda good, p: p.write_bytes(bytes(np.random.RandomState(0).randint(0, 256, 4000, dtype=np.uint8))),
                     "truncated or corrupt"),
    "truncated": (lambda good, p: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]), "truncated or corrupt"),
    "empty": (lambda good, p: p.write_bytes(b""), "truncated or corrupt"),
    "wrong_version": (lambda good, p: _rewrite(good, p, meta=_set("version", 2)), "version 2"),
    "version_true": (lambda good, p: _rewrite(good, p, meta=_set("version", True)), "version True"),
    "wrong_format": (lambda good, p: _rewrite(good, p, meta=_set("format", "other-format")), "'other-format'"),
    "metadata_not_object": (lambda good, p: _rewrite(good, p, meta=lambda m: [1, 2]), "JSON object"),
    **{f"missing_{k}": (lambda good, p, k=k: _rewrite(good, p, meta=_drop(k)), f"lacks the field(s) ['{k}']")
       for k in ("step", "aliases", "optimizer", "rng_python", "rng_numpy", "extra", "model_class")},
    "step_is_str": (lambda good, p: _rewrite(good, p, meta=_set("step", "3")), "'step' must be int"),
    "step_negative": (lambda good, p: _rewrite(good, p, meta=_set("step", -1)), "'step' must be >= 0"),
    "step_float": (lambda good, p: _rewrite(good, p, meta=_set("step", 2.5)), "'step' must be int"),
    "aliases_is_list": (lambda good, p: _rewrite(good, p, meta=_set("aliases", [])), "'aliases' must be dict"),
    "aliases_bad_target": (lambda good, p: _rewrite(good, p, meta=_set("aliases", {"a": 3})), "'aliases'"),
    "alias_to_missing": (lambda good, p: _rewrite(good, p, meta=_set("aliases", {"out.bias": "nope"})),
                         "missing tensor 'nope'"),
    "extra_is_list": (lambda good, p: _rewrite(good, p, meta=_set("extra", [1])), "'extra' must be dict"),
    "optimizer_is_str": (lambda good, p: _rewrite(good, p, meta=_set("optimizer", "adam")), "'optimizer'"),
    "rng_python_is_str": (lambda good, p: _rewrite(good, p, meta=_set("rng_python", "x")), "'rng_python'"),
    "rng_python_garbage": (lambda good, p: _rewrite(good, p, meta=_set("rng_python", [3, [1, 2], None])),
                           "random-number-generator state"),
    "rng_numpy_garbage": (lambda good, p: _rewrite(good, p, meta=_set("rng_numpy", ["MT19937", [1], 0, 0, 0.0])),
                          "random-number-generator state"),
    "rng_torch_missing": (lambda good, p: _rewrite(good, p, tensors=lambda t: {k: v for k, v in t.items()
                                                                                if k != "rng.torch"}), "'rng.torch'"),
    "rng_torch_wrong_size": (lambda good, p: _rewrite(good, p, tensors=lambda t: {**t, "rng.torch": t["rng.torch"][:10]}),
                             "'rng.torch'"),
    "generator_state_float": (lambda good, p: _rewrite(good, p, tensors=lambda t: {
        **t, "rng.generator": t["rng.generator"].float()}), "'rng.generator'"),
    "other_shapes": (lambda good, p: _rewrite(good, p, tensors=lambda t: {
        **t, "model.emb.weight": torch.zeros(9, 4)}), "wrong shapes"),
    "other_keys": (lambda good, p: _rewrite(good, p, tensors=lambda t: {
        ("model.renamed.weight" if k == "model.out.weight" else k): v for k, v in t.items()}), "missing keys"),
    "wrong_dtype": (lambda good, p: _rewrite(good, p, tensors=lambda t: {
        k: (v.double() if k.startswith("model.") else v) for k, v in t.items()}), "wrong dtypes"),
    "optim_state_wrong_shape": (lambda good, p: _rewrite(good, p, tensors=lambda t: {
        **t, "optim.0.exp_avg": torch.zeros(3)}), "exp_avg"),
    "optim_state_int_dtype": (lambda good, p: _rewrite(good, p, tensors=lambda t: {
        **t, "optim.0.exp_avg": t["optim.0.exp_avg"].long()}), "exp_avg"),
    "optim_unknown_param": (lambda good, p: _rewrite(good, p, tensors=lambda t: {
        **t, "optim.9.exp_avg": torch.zeros(3)}), "unknown parameter index 9"),
    "optim_lr_is_str": (lambda good, p: _rewrite(good, p, meta=_set_optim(lambda g: g.update(lr="fast"))), "'lr'"),
    "optim_betas_short": (lambda good, p: _rewrite(good, p, meta=_set_optim(lambda g: g.update(betas=[0.9]))),
                          "'betas'"),
    "optim_setting_missing": (lambda good, p: _rewrite(good, p, meta=_set_optim(lambda g: g.pop("eps"))), "eps"),
    "optim_other_class": (lambda good, p: _rewrite(good, p, meta=lambda m: {
        **m, "optimizer": {**m["optimizer"], "class": "SGD"}}), "holds SGD state"),
    "optim_groups_garbage": (lambda good, p: _rewrite(good, p, meta=lambda m: {
        **m, "optimizer": {**m["optimizer"], "param_groups": "x"}}), "optimiser metadata"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_FILES))
def test_a_bad_checkpoint_changes_nothing(case, good, target, tmp_path):
    make, message = CORRUPT_FILES[case]
    bad = tmp_path / f"{case}.safetensors"
    make(good, bad)
    model, opt, g = target
    before = _snapshot(model, opt, g)
    with pytest.raises(ValueError) as info:
        ckpt.load_checkpoint(bad, model, opt, generator=g)
    assert message in str(info.value), str(info.value)
    assert str(bad) in str(info.value) or case in ("empty",), "the message names the file"
    _assert_unchanged(before, model, opt, g)


def test_a_good_checkpoint_loads_everything(good, target):
    """The control: the same call on the intact file restores model, optimiser and generator."""
    model, opt, g = target
    ref_model, ref_opt, ref_g = _trained(0)
    state = ckpt.load_checkpoint(good, model, opt, generator=g)
    assert state.step == 3 and state.extra == {"note": "x"}
    assert _same(_snapshot(model, opt, g)["model"], _snapshot(ref_model, ref_opt, ref_g)["model"])
    assert torch.equal(g.get_state(), ref_g.get_state())


def test_other_architecture_and_missing_optimiser_state(tmp_path, target):
    model, opt, g = target
    other, _, _ = _trained(2, extra=True)
    path = ckpt.save_checkpoint(tmp_path / "other.safetensors", other)  # no optimiser, no generator
    same_arch = ckpt.save_checkpoint(tmp_path / "plain.safetensors", _trained(3)[0])
    before = _snapshot(model, opt, g)
    with pytest.raises(ValueError, match="unexpected keys: .*more.weight"):
        ckpt.load_checkpoint(path, model)
    with pytest.raises(ValueError, match="no optimiser state"):
        ckpt.load_checkpoint(same_arch, model, opt)
    with pytest.raises(ValueError, match="rng.generator"):
        ckpt.load_checkpoint(same_arch, model, generator=g)
    _assert_unchanged(before, model, opt, g)


def test_check_extra_refuses_before_anything_changes(good, target):
    model, opt, g = target
    before = _snapshot(model, opt, g)

    def refuse(extra):
        assert extra == {"note": "x"}
        raise ValueError("refused: trained with another recipe")

    with pytest.raises(ValueError, match="another recipe"):
        ckpt.load_checkpoint(good, model, opt, generator=g, check_extra=refuse)
    _assert_unchanged(before, model, opt, g)


def test_bad_arguments_change_nothing(good, target):
    model, opt, g = target
    before = _snapshot(model, opt, g)
    for kwargs, error, word in [
        (dict(optimizer="adam"), TypeError, "optimizer"),
        (dict(generator=0), TypeError, "generator"),
        (dict(restore_rng=1), TypeError, "restore_rng"),
        (dict(check_extra="no"), TypeError, "check_extra"),
    ]:
        with pytest.raises(error, match=word):
            ckpt.load_checkpoint(good, model, **kwargs)
    with pytest.raises(TypeError, match="model"):
        ckpt.load_checkpoint(good, "model")
    with pytest.raises(TypeError, match="path"):
        ckpt.load_checkpoint(None, model)
    _assert_unchanged(before, model, opt, g)


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------

WEIGHT_FILES = {
    "random_bytes": (lambda good, p: p.write_bytes(bytes(range(256)) * 8), "not a valid safetensors"),
    "truncated": (lambda good, p: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]), "not a valid safetensors"),
    "other_shapes": (lambda good, p: save_file({"emb.weight": torch.zeros(9, 4), "out.weight": torch.zeros(7, 4),
                                                "out.bias": torch.zeros(7)}, str(p)), "wrong shapes"),
    "other_keys": (lambda good, p: save_file({"emb.weight": torch.zeros(7, 4), "lin.weight": torch.zeros(7, 4),
                                              "out.bias": torch.zeros(7)}, str(p)), "missing keys: ['out.weight']"),
    "int_dtype": (lambda good, p: save_file({"emb.weight": torch.zeros(7, 4, dtype=torch.long),
                                             "out.weight": torch.zeros(7, 4), "out.bias": torch.zeros(7)}, str(p)),
                  "wrong dtypes"),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_FILES))
def test_a_bad_weights_file_changes_nothing(case, tmp_path, target):
    good = save_weights(_trained(0)[0], tmp_path / "good.safetensors")
    make, message = WEIGHT_FILES[case]
    bad = tmp_path / f"{case}.safetensors"
    make(good, bad)
    model, opt, g = target
    before = _snapshot(model, opt, g)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_weights(model, bad)
    _assert_unchanged(before, model, opt, g)


def test_load_weights_checks_the_device_before_loading(tmp_path, target):
    good = save_weights(_trained(0)[0], tmp_path / "good.safetensors")
    model, opt, g = target
    before = _snapshot(model, opt, g)
    for device, error in (("gpu", ValueError), (3, TypeError), ("tpu:0", ValueError)):
        with pytest.raises(error, match="device"):
            load_weights(model, good, device=device)
    _assert_unchanged(before, model, opt, g)
    float64 = Tiny().double()
    load_weights(float64, good)  # another float precision is converted, as documented
    assert float64.emb.weight.dtype == torch.float64


def test_save_weights_rejects_reserved_metadata_before_writing(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(ValueError, match="reserved"):
        save_weights(Tiny(), path, metadata={"lmlib.aliases": "{}"})
    with pytest.raises(TypeError, match="metadata"):
        save_weights(Tiny(), path, metadata={"a": 1})
    assert not path.exists()


# --------------------------------------------------------------------------------------------
# Tokenizer files
# --------------------------------------------------------------------------------------------

GOOD_TOKENIZER = {"format": "lmlib-tokenizer", "version": 1, "type": "bpe", "special_tokens": {ENDOFTEXT: 257},
                  "pattern": GPT2_PATTERN, "merges": [[97, 98]]}

TOKENIZER_FILES = {
    "random_bytes": (bytes(np.random.RandomState(1).randint(0, 256, 500, dtype=np.uint8)), "not a valid tokenizer file"),
    "latin1_bytes": ("{\"format\": \"caf\xe9\"}".encode("latin-1"), "not a valid tokenizer file"),
    "truncated": (json.dumps(GOOD_TOKENIZER)[:50].encode(), "not a valid tokenizer file"),
    "wrong_version": (json.dumps({**GOOD_TOKENIZER, "version": 2}).encode(), "version 2"),
    "version_true": (json.dumps({**GOOD_TOKENIZER, "version": True}).encode(), "version True"),
    "wrong_format": (json.dumps({**GOOD_TOKENIZER, "format": "hf"}).encode(), "not an lmlib tokenizer"),
    "missing_field": (json.dumps({k: v for k, v in GOOD_TOKENIZER.items() if k != "pattern"}).encode(),
                      "missing field(s) ['pattern']"),
    "unknown_field": (json.dumps({**GOOD_TOKENIZER, "merge": []}).encode(), "unknown field(s) ['merge']"),
    "wrong_type_merges": (json.dumps({**GOOD_TOKENIZER, "merges": {"a": 1}}).encode(), "merges"),
    "wrong_type_pattern": (json.dumps({**GOOD_TOKENIZER, "pattern": 5}).encode(), "pattern"),
    "pattern_with_groups": (json.dumps({**GOOD_TOKENIZER, "pattern": r"(\w+)|\s+"}).encode(), "capturing groups"),
    "special_not_object": (json.dumps({**GOOD_TOKENIZER, "special_tokens": [ENDOFTEXT]}).encode(), "special_tokens"),
    "json_list": (b"[1, 2, 3]", "not an lmlib tokenizer"),
}


@pytest.mark.parametrize("case", sorted(TOKENIZER_FILES))
def test_a_bad_tokenizer_file_raises_a_value_error_naming_the_file(case, tmp_path):
    content, message = TOKENIZER_FILES[case]
    path = tmp_path / f"{case}.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        Tokenizer.load(path)
    assert message in str(info.value) and str(path) in str(info.value), str(info.value)


def test_a_good_tokenizer_file_loads(tmp_path):
    path = tmp_path / "good.json"
    path.write_text(json.dumps(GOOD_TOKENIZER))
    tok = BPETokenizer.load(path)
    assert tok.vocab_size == 258 and tok.decode(tok.encode("abc" + ENDOFTEXT)) == "abc" + ENDOFTEXT


def test_a_pattern_that_skips_characters_is_an_error_not_silent_loss():
    tok = BPETokenizer([], (), pattern=r"\w+")  # skips spaces and punctuation
    with pytest.raises(ValueError, match="skips the character ' ' at position 2"):
        tok.encode("to be")
    with pytest.raises(ValueError, match="skips the character"):
        BPETokenizer.train("to be or not to be", 260, (), pattern=r"\w+")
    assert tok.encode("tobe") == list(b"tobe")


# --------------------------------------------------------------------------------------------
# Training resumes, config files and the model cache
# --------------------------------------------------------------------------------------------

DATA = torch.arange(40) % 7


def _get_batch(g):
    starts = torch.randint(len(DATA) - 5, (2,), generator=g)
    x = torch.stack([DATA[s:s + 4] for s in starts])
    return x, torch.stack([DATA[s + 1:s + 5] for s in starts])


def _config(**kw):
    return TrainConfig(**{**dict(max_steps=4, lr=1e-2, warmup_steps=1, eval_interval=100, progress=False), **kw})


def test_a_refused_resume_changes_nothing(tmp_path):
    path = tmp_path / "run.safetensors"
    train(Tiny(), _get_batch, _config(checkpoint_path=str(path)), stop_after=2)
    model, _, _ = _trained(4)
    history = History(steps=[99])
    before = _snapshot(model, None, None)
    with pytest.raises(ValueError, match="different TrainConfig.*lr"):
        train(model, _get_batch, _config(lr=0.5), resume_from=str(path), history=history)
    _assert_unchanged(before, model, None, None)
    assert history.steps == [99]
    bad = _rewrite(path, tmp_path / "bad.safetensors", meta=lambda m: {
        **m, "extra": {**m["extra"], "history": {**m["extra"]["history"], "steps": "1,2"}}})
    with pytest.raises(ValueError, match="'steps'"):
        train(model, _get_batch, _config(), resume_from=str(bad), history=history)
    _assert_unchanged(before, model, None, None)
    assert history.steps == [99]
    model.eval()                                   # the mode is state too
    with pytest.raises(ValueError, match="'steps'"):
        train(model, _get_batch, _config(), resume_from=str(bad), history=history)
    assert not model.training
    _assert_unchanged(before, model, None, None)


@pytest.mark.parametrize("text, message", [
    ('{"trian": {"max_steps": 3}}', "unknown section(s) ['trian']"),
    ('{"train": {"lrr": 0.1}}', "unknown setting(s) ['lrr'] in section 'train'"),
    ('{"train": {"progress": false}}', "unknown setting(s) ['progress']"),
    ('{"train": {"lr": "fast"}}', "lr"),
    ('{"train": {"weight_decay": NaN}}', "weight_decay"),
    ('{"data": {"batch_size": 0}}', "batch_size"),
    ('{"data": {"tokenizer": "word"}}', "tokenizer"),
    ('{"data": {"tokenizer": "bpe"}}', "data.vocab_size"),
    ('{"data": {"vocab_size": 512}}', "data.vocab_size is for data.tokenizer 'bpe'"),
    ('{"model": []}', "section 'model' must be a JSON object"),
    ('{"checkpoint_interval": 1.5}', "checkpoint_interval"),
    ('[1]', "must be a JSON object"),
])
def test_config_files_are_checked_when_loaded(tmp_path, text, message):
    from lmlib.train import load_config

    path = tmp_path / "cfg.json"
    path.write_text(text)
    with pytest.raises((TypeError, ValueError)) as info:
        load_config(path)
    assert message in str(info.value), str(info.value)


def test_config_file_that_is_not_utf8(tmp_path):
    from lmlib.train import load_config

    path = tmp_path / "cfg.json"
    path.write_bytes(b'{"train": {"desc": "caf\xe9"}}')
    with pytest.raises(ValueError, match="not valid JSON") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_an_unknown_recipe_key_is_refused_naming_the_known_ones():
    from lmlib.pretrained import course_gpt

    with pytest.raises(ValueError, match=r"unknown section\(s\) \['trian'\]; expected \['data', 'model'"):
        course_gpt({"trian": {"max_steps": 1}}, progress=False, verbose=False)
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['n_layers'\] in section 'model'"):
        course_gpt({"model": {"n_layers": 1}}, progress=False, verbose=False)


def test_the_model_cache_retrains_over_a_corrupt_entry(tmp_path):
    from lmlib.pretrained import cached_model, recipe_hash

    recipe = {"width": 4}
    fits = []

    def fit(model):
        fits.append(1)
        return History(steps=[1], train_loss=[1.0], lr=[0.1])

    first = cached_model("tiny", recipe, build=Tiny, fit=fit, cache=tmp_path, verbose=False)
    assert not first.from_cache and len(fits) == 1
    again = cached_model("tiny", recipe, build=Tiny, fit=fit, cache=tmp_path, verbose=False)
    assert again.from_cache and again.history.steps == [1] and len(fits) == 1
    entry = tmp_path / f"tiny-{recipe_hash(recipe)}" / "model.safetensors"
    for corrupt in (lambda: entry.write_bytes(entry.read_bytes()[:100]),
                    lambda: _rewrite(entry, entry, meta=lambda m: {**m, "extra": {**m["extra"], "recipe_hash": "0"}}),
                    lambda: _rewrite(entry, entry, meta=lambda m: {**m, "extra": {**m["extra"], "history": [1]}})):
        corrupt()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = cached_model("tiny", recipe, build=Tiny, fit=fit, cache=tmp_path, verbose=False)
        assert any("unusable cache entry" in str(w.message) for w in caught)
        assert not res.from_cache
    assert len(fits) == 4


def test_a_failed_cache_load_leaves_the_built_model_untouched(tmp_path):
    """The recipe hash is checked before the weights are copied into the model."""
    from lmlib.pretrained import store

    model, _, _ = _trained(0)
    path = store("tiny", {"a": 1}, model, None, cache=tmp_path)
    other, _, _ = _trained(1)
    before = _snapshot(other, None, None)
    from lmlib.pretrained import _check_cached_extra

    with pytest.raises(ValueError, match="recipe hash"):
        ckpt.load_checkpoint(path, other, restore_rng=False, check_extra=lambda e: _check_cached_extra(e, "0" * 16))
    _assert_unchanged(before, other, None, None)
