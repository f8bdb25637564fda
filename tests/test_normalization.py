import pytest
import torch
from torch import nn

from lmlib.feedforward import FeedForward, gelu_erf, gelu_tanh, get_activation
from lmlib.normalization import LayerNorm, RMSNorm, layer_norm_reference, rms_norm_reference


def test_layer_norm_matches_torch_and_reference():
    torch.manual_seed(0)
    x = torch.randn(4, 7, 12) * 3 + 1
    ours = LayerNorm(12, eps=1e-5)
    ref = nn.LayerNorm(12, eps=1e-5)
    with torch.no_grad():
        for p in (ours.weight, ours.bias):
            p.normal_()
        ref.weight.copy_(ours.weight)
        ref.bias.copy_(ours.bias)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert torch.allclose(layer_norm_reference(x, ours.weight, ours.bias), ref(x), atol=1e-5)
    y = LayerNorm(12)(x)
    assert torch.allclose(y.mean(-1), torch.zeros(4, 7), atol=1e-5)
    assert torch.allclose(y.var(-1, unbiased=False), torch.ones(4, 7), atol=1e-3)


def test_layer_norm_without_bias():
    ln = LayerNorm(6, bias=False)
    assert ln.bias is None and sum(p.numel() for p in ln.parameters()) == 6
    x = torch.randn(2, 6)
    assert torch.allclose(ln(x), nn.functional.layer_norm(x, (6,)), atol=1e-6)


def test_rms_norm_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8)
    ours = RMSNorm(8, eps=1e-6)
    ref = nn.RMSNorm(8, eps=1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        ref.weight.copy_(ours.weight)
    assert torch.allclose(ours(x), ref(x), atol=1e-6)
    # no centring: RMSNorm of a shifted input is not the same as of the input
    assert not torch.allclose(rms_norm_reference(x + 5, None), rms_norm_reference(x, None), atol=1e-2)


def test_norm_errors():
    with pytest.raises(ValueError):
        LayerNorm(0)
    with pytest.raises(ValueError):
        RMSNorm(4, eps=0)
    with pytest.raises(ValueError, match="x must have size 4 in dimension -1"):
        LayerNorm(4)(torch.randn(2, 5))
    with pytest.raises(TypeError, match="x must be torch.float32"):
        RMSNorm(4)(torch.ones(2, 4, dtype=torch.long))


def test_gelu_forms():
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    assert torch.allclose(gelu_erf(x), nn.functional.gelu(x), atol=1e-12)
    assert torch.allclose(gelu_tanh(x), nn.functional.gelu(x, approximate="tanh"), atol=1e-12)
    diff = (gelu_erf(x) - gelu_tanh(x)).abs().max().item()
    assert 1e-5 < diff < 1e-3  # close, but not the same function
    assert torch.allclose(get_activation("gelu_tanh")(x), gelu_tanh(x), atol=1e-12)
    with pytest.raises(ValueError, match="activation must be one of"):
        get_activation("gelu_fast")


def test_feedforward_is_position_wise():
    torch.manual_seed(0)
    ffn = FeedForward(8, 32, activation="gelu_erf")
    x = torch.randn(2, 5, 8)
    y = ffn(x)
    manual = ffn.fc_out(gelu_erf(ffn.fc_in(x)))
    assert torch.allclose(y, manual, atol=1e-6)
    # each position independently: permuting positions permutes outputs
    perm = torch.randperm(5)
    assert torch.allclose(ffn(x[:, perm]), y[:, perm], atol=1e-6)
    with pytest.raises(ValueError):
        FeedForward(8, 0)
