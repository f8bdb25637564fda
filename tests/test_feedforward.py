"""Tests of the gated feed-forward network of lmlib.feedforward (SwiGLU, swiglu_hidden)."""

import pytest
import torch

from lmlib.feedforward import SwiGLU, swiglu_hidden


def _swiglu_ref(x, m):
    """W_down (silu(W_gate x) * (W_up x)), silu(z) = z * sigmoid(z), written out."""
    def lin(layer, t):
        return t @ layer.weight.T + (0 if layer.bias is None else layer.bias)
    g = lin(m.gate_proj, x)
    return lin(m.down_proj, g * torch.sigmoid(g) * lin(m.up_proj, x))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 8), (1, 2, 3, 8)])
def test_swiglu_matches_formula(bias, shape):
    torch.manual_seed(0)
    m = SwiGLU(8, 12, bias=bias).double()
    if bias:
        with torch.no_grad():
            for layer in (m.gate_proj, m.up_proj, m.down_proj):
                layer.bias.normal_()
    x = torch.randn(*shape, dtype=torch.float64)
    out = m(x)
    assert out.shape == shape
    torch.testing.assert_close(out, _swiglu_ref(x, m), rtol=1e-12, atol=1e-12)


def test_swiglu_gate_matters():
    # gate and up are not interchangeable: silu acts on the gate only
    torch.manual_seed(1)
    m = SwiGLU(8, 12).double()
    x = torch.randn(4, 8, dtype=torch.float64)
    out = m(x)
    with torch.no_grad():
        g, u = m.gate_proj.weight.clone(), m.up_proj.weight.clone()
        m.gate_proj.weight.copy_(u)
        m.up_proj.weight.copy_(g)
    assert not torch.allclose(m(x), out)
    # a gate of zero closes every unit: silu(0) = 0
    with torch.no_grad():
        m.gate_proj.weight.zero_()
    assert torch.equal(m(x), torch.zeros_like(x))


def test_swiglu_names_and_parameter_count():
    m = SwiGLU(16, 40)
    assert [n for n, _ in m.named_parameters()] == ["gate_proj.weight", "up_proj.weight", "down_proj.weight"]
    assert m.gate_proj.weight.shape == m.up_proj.weight.shape == (40, 16) and m.down_proj.weight.shape == (16, 40)
    assert sum(p.numel() for p in m.parameters()) == 3 * 16 * 40
    assert sum(p.numel() for p in SwiGLU(16, 40, bias=True).parameters()) == 3 * 16 * 40 + 2 * 40 + 16


def test_swiglu_dropout_in_training_only():
    torch.manual_seed(0)
    m = SwiGLU(8, 16, dropout=0.5)
    x = torch.randn(4, 8)
    m.train()
    assert not torch.allclose(m(x), m(x))
    m.eval()
    assert torch.equal(m(x), m(x))


def test_swiglu_hidden_published_and_hand_values():
    # Llama 1/2 7B: 2/3 * 4 * 4096 = 10922.67, rounded up to a multiple of 256 = 11008
    assert swiglu_hidden(4096, multiple_of=256) == 11008
    # Llama 1 13B (d = 5120): 2/3 * 4 * 5120 = 13653.3 -> 13824 (54 * 256)
    assert swiglu_hidden(5120, multiple_of=256) == 13824
    assert swiglu_hidden(768) == 2048                   # 2/3 * 3072 exactly
    assert swiglu_hidden(16) == 43                      # round(42.67)
    assert swiglu_hidden(16, d_ff=30) == 20
    assert swiglu_hidden(16, multiple_of=8) == 48       # 43 rounded up
    assert swiglu_hidden(1, d_ff=1) == 1                # never zero


@pytest.mark.parametrize("d", [8, 48, 100, 768])
def test_swiglu_hidden_matches_gelu_ffn_parameters(d):
    # three d x h matrices against two d x 4d: equal within one column of rounding
    h = swiglu_hidden(d)
    assert abs(3 * d * h - 2 * d * 4 * d) <= 1.5 * d
