"""Tests for lmlib.lora: the low-rank update, injection by name, freezing and merge equivalence."""

import pytest
import torch
import torch.nn as nn

from lmlib.gpt import GPT, GPTConfig
from lmlib.lora import (LoRALinear, count_parameters, inject_lora, lora_parameters, mark_only_lora_trainable,
                        matching_linear_names, merge_lora)


def _gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32))


def test_lora_linear_matches_explicit_formula():
    torch.manual_seed(0)
    base = nn.Linear(8, 6)
    lora = LoRALinear(base, r=2, alpha=6.0)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(5, 3, 8)
    W_eff = base.weight + (6.0 / 2) * lora.lora_B @ lora.lora_A   # (out, in)
    ref = torch.nn.functional.linear(x, W_eff, base.bias)
    assert torch.allclose(lora(x), ref, atol=1e-5)
    # rank of the update is at most r
    assert torch.linalg.matrix_rank(lora.delta_weight()).item() <= 2


def test_zero_init_is_identity_and_only_adapters_get_gradients():
    torch.manual_seed(0)
    base = nn.Linear(8, 6)
    lora = LoRALinear(base, r=4)
    x = torch.randn(3, 8)
    assert torch.equal(lora(x), base(x))
    lora(x).pow(2).sum().backward()
    assert base.weight.grad is None and base.bias.grad is None
    assert lora.lora_A.grad is not None and lora.lora_B.grad is not None
    # B = 0 at the start, so A's gradient is zero and B's is not
    assert torch.all(lora.lora_A.grad == 0) and lora.lora_B.grad.abs().sum() > 0


def test_inject_into_gpt_by_pattern_and_merge_gives_identical_outputs():
    model = _gpt()
    x = torch.randint(0, 40, (3, 16))
    before, _ = model(x)
    names = inject_lora(model, ("q_proj", "v_proj"), r=4, alpha=8)
    assert names == [f"blocks.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    # only the adapters are trainable: 4 layers x r (in + out) = 4 * 4 * (32 + 32)
    assert count_parameters(model) == 4 * 4 * 64
    after_inject, _ = model(x)
    assert torch.equal(before, after_inject)       # B = 0: nothing changed yet
    # train a few steps so the adapters are non-zero
    opt = torch.optim.SGD(lora_parameters(model), lr=0.5)
    for _ in range(3):
        _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad()
    adapted, _ = model(x)
    assert not torch.allclose(adapted, before)
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    merged, _ = model(x)
    assert torch.allclose(merged, adapted, atol=1e-5, rtol=1e-5)


def test_glob_patterns_and_errors():
    model = _gpt()
    names = matching_linear_names(model, "blocks.1.*")
    assert names and all(n.startswith("blocks.1.") for n in names)
    assert set(matching_linear_names(model, "*.q_proj")) == {"blocks.0.self_attn.q_proj", "blocks.1.self_attn.q_proj"}
    with pytest.raises(ValueError, match="no nn.Linear matches"):
        inject_lora(model, ("nonexistent",))
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(4, 4), r=5)
    with pytest.raises(TypeError):
        LoRALinear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="no LoRA layers"):
        merge_lora(nn.Sequential(nn.Linear(2, 2)))


def test_mark_only_lora_trainable_with_extra_head():
    model = nn.Sequential()
    model.add_module("body", nn.Linear(8, 8))
    model.add_module("head", nn.Linear(8, 2))
    inject_lora(model, ("body",), r=2)
    mark_only_lora_trainable(model, extra=("head.",))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"body.lora_A", "body.lora_B", "head.weight", "head.bias"}
    assert count_parameters(model) == 2 * 8 + 8 * 2 + 8 * 2 + 2
    assert count_parameters(model, trainable_only=False) == 8 * 8 + 8 + 32 + 18


def test_count_parameters_counts_tied_weights_once():
    model = _gpt()
    assert count_parameters(model, trainable_only=False) == model.num_params()
