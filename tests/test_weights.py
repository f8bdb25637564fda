import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lmlib.bert import BertConfig, BertForMaskedLM
from lmlib.gpt import GPT, GPTConfig
from lmlib.weights import load_weights, save_weights, tied_aliases


def gpt(**kw):
    base = dict(vocab_size=19, block_size=8, n_layer=2, n_head=2, n_embd=8)
    base.update(kw)
    return GPT(GPTConfig(**base))


def test_round_trip_keeps_values_and_tie(tmp_path):
    torch.manual_seed(0)
    a = gpt()
    path = save_weights(a, tmp_path / "w.safetensors")
    torch.manual_seed(1)
    b = load_weights(gpt(), path)
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert b.lm_head.weight is b.wte.weight
    idx = torch.randint(0, 19, (2, 8))
    assert torch.equal(a.eval()(idx)[0], b.eval()(idx)[0])


def test_tied_tensor_stored_once(tmp_path):
    m = gpt()
    assert tied_aliases(m.state_dict()) == {"lm_head.weight": "wte.weight"}
    path = save_weights(m, tmp_path / "w.safetensors")
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert "wte.weight" in keys and "lm_head.weight" not in keys
    assert json.loads(meta["lmlib.aliases"]) == {"lm_head.weight": "wte.weight"}
    # the file is plain safetensors: a JSON header, no pickle opcodes
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    assert header["wte.weight"]["shape"] == [19, 8]


def test_bert_round_trip(tmp_path):
    cfg = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=12,
                     max_position_embeddings=8)
    a = BertForMaskedLM(cfg)
    b = load_weights(BertForMaskedLM(cfg), save_weights(a, tmp_path / "b.safetensors"))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_errors_name_missing_extra_and_misshaped_keys(tmp_path):
    path = save_weights(gpt(), tmp_path / "w.safetensors")
    with pytest.raises(ValueError) as e:
        load_weights(gpt(n_layer=3, vocab_size=20), path)
    msg = str(e.value)
    assert "missing keys" in msg and "blocks.2.norm1.weight" in msg
    assert "wrong shapes" in msg and "wte.weight" in msg
    with pytest.raises(ValueError) as e:
        load_weights(gpt(n_layer=1), path)
    assert "unexpected keys" in str(e.value) and "blocks.1.ffn.fc_in.weight" in str(e.value)


def test_model_is_untouched_when_loading_fails(tmp_path):
    sd = {k: v.clone() for k, v in gpt().state_dict().items() if k != "lm_head.weight"}
    sd["blocks.0.norm1.weight"] = torch.ones(9)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    m = gpt()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match="blocks.0.norm1.weight"):
        load_weights(m, tmp_path / "bad.safetensors")
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_weights(gpt(), tmp_path / "nope.safetensors")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_weights(gpt(), bad)
    with pytest.raises(TypeError):
        save_weights("model", tmp_path / "x.safetensors")
