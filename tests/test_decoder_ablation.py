"""The ablation's variants and their training (lmlib.decoder_ablation)."""

import json
from pathlib import Path

import pytest
import torch

from lmlib import decoder_ablation as A
from lmlib.gpt import GPT, GPTConfig
from lmlib.llama import LlamaConfig
from lmlib.pretrained import course_data

ROOT = Path(__file__).resolve().parents[1]
SPEC = json.loads((ROOT / "configs" / "experiments" / "decoder-ablation.json").read_text())
TINY = {**SPEC, "model": {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
        "train": {**SPEC["train"], "steps": 6, "batch_size": 4, "warmup_steps": 2}}


@pytest.fixture(scope="module")
def data():
    return course_data(SPEC["split_seed"])


def test_the_gpt2_variant_is_the_course_gpt():
    cfg = A.variant_config(SPEC, SPEC["variants"]["GPT-2"], 65)
    m = SPEC["model"]
    assert cfg == LlamaConfig.gpt2_like(vocab_size=65, **m)
    gpt = GPT(GPTConfig(vocab_size=65, **m))
    from lmlib.llama import Llama
    assert Llama(cfg).num_params() == gpt.num_params()


def test_each_one_change_variant_differs_from_gpt2_in_exactly_its_switches():
    base = A.variant_config(SPEC, {}, 65).to_dict()
    for label, changes in SPEC["variants"].items():
        cfg = A.variant_config(SPEC, changes, 65).to_dict()
        differ = {k for k in cfg if cfg[k] != base[k]} - {"ffn_hidden"}
        assert differ == set(changes), label


def test_variants_have_the_weights_of_the_gpt2_block():
    from lmlib.llama import Llama
    n = {label: Llama(A.variant_config(SPEC, ch, 65)).num_params(non_embedding=True)
         for label, ch in SPEC["variants"].items()}
    d = SPEC["model"]["n_embd"]
    for label, count in n.items():   # biases and norms aside, every block has 12 d² weights
        assert abs(count - n["GPT-2"]) / n["GPT-2"] < 0.03, (label, count, n["GPT-2"])
    assert d > 0


def test_train_variant_is_reproducible_and_stop_after_is_a_prefix(data):
    _, h1 = A.train_variant(TINY, {"norm": "rms", "ffn": "swiglu"}, seed=3, lr=3e-3, data=data)
    _, h2 = A.train_variant(TINY, {"norm": "rms", "ffn": "swiglu"}, seed=3, lr=3e-3, data=data)
    _, h3 = A.train_variant(TINY, {"norm": "rms", "ffn": "swiglu"}, seed=3, lr=3e-3, data=data, stop_after=3)
    _, h4 = A.train_variant(TINY, {"norm": "rms", "ffn": "swiglu"}, seed=4, lr=3e-3, data=data)
    assert h1.train_loss == h2.train_loss
    assert h3.train_loss == h1.train_loss[:3]
    assert h4.train_loss != h1.train_loss
    assert len(h1.train_loss) == TINY["train"]["steps"]


def test_validation_batches_come_from_the_validation_plays(data):
    batches = A.validation_batches(TINY, data)
    assert len(batches) == TINY["eval_batches"]
    x, y = batches[0]
    assert x.shape == (32, TINY["model"]["block_size"])
    val = data.val.long()
    # every window is a slice of the validation ids, and y is x shifted by one
    row = x[0].tolist()
    s = val.unfold(0, len(row), 1)
    assert bool((s == x[0]).all(dim=1).any())
    assert torch.equal(x[:, 1:], y[:, :-1])
