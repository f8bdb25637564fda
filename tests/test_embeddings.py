"""Tests for lmlib.embeddings against hand formulas, torch, and transformers' RoPE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lmlib.embeddings import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    rotate_half,
    sinusoidal_encoding,
)


def test_token_embedding_is_one_hot_times_matrix():
    torch.manual_seed(0)
    emb = TokenEmbedding(50, 16)
    idx = torch.randint(0, 50, (3, 7))
    out = emb(idx)
    assert out.shape == (3, 7, 16)
    one_hot = F.one_hot(idx, 50).double()  # (B, T, V)
    torch.testing.assert_close(out.double(), one_hot @ emb.weight.double())
    torch.testing.assert_close(out, F.embedding(idx, emb.weight))
    scaled = TokenEmbedding(50, 16, scale=True)
    scaled.load_state_dict(emb.state_dict())
    torch.testing.assert_close(scaled(idx), out * 4.0)


def test_token_embedding_errors():
    emb = TokenEmbedding(10, 4)
    with pytest.raises(ValueError, match="out of range"):
        emb(torch.tensor([[3, 10]]))
    with pytest.raises(ValueError, match="out of range"):
        emb(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer"):
        emb(torch.tensor([1.0]))
    with pytest.raises(ValueError):
        TokenEmbedding(0, 4)


def test_sinusoidal_table_matches_the_paper_formula():
    T, C = 12, 8
    pe = sinusoidal_encoding(T, C, dtype=torch.float64)
    for p in range(T):
        for i in range(C // 2):
            w = 10000 ** (-2 * i / C)
            assert pe[p, 2 * i].item() == pytest.approx(math.sin(p * w), abs=1e-12)
            assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(p * w), abs=1e-12)
    assert torch.equal(sinusoidal_encoding(5, C, offset=7, dtype=torch.float64), pe[7:12])


def test_sinusoidal_shift_is_a_linear_map():
    # PE[p + k] = M_k PE[p] for a fixed block-rotation M_k: the property the paper mentions.
    C, k = 16, 5
    pe = sinusoidal_encoding(40, C, dtype=torch.float64)
    w = 10000 ** (-torch.arange(0, C, 2, dtype=torch.float64) / C)
    M = torch.zeros(C, C, dtype=torch.float64)
    for i, wi in enumerate(w):
        c, s = math.cos(k * wi), math.sin(k * wi)
        # (sin(a + b), cos(a + b)) = (sin a cos b + cos a sin b, cos a cos b - sin a sin b)
        M[2 * i, 2 * i], M[2 * i, 2 * i + 1] = c, s
        M[2 * i + 1, 2 * i], M[2 * i + 1, 2 * i + 1] = -s, c
    torch.testing.assert_close(pe[k:] , pe[:-k] @ M.T)


def test_sinusoidal_module_adds_the_table():
    mod = SinusoidalPositionalEncoding(8, max_len=20)
    x = torch.randn(2, 6, 8)
    torch.testing.assert_close(mod(x), x + sinusoidal_encoding(6, 8))
    torch.testing.assert_close(mod(x, offset=3), x + sinusoidal_encoding(6, 8, offset=3))
    assert not list(mod.parameters())
    with pytest.raises(ValueError, match="max_len"):
        mod(x, offset=15)
    with pytest.raises(ValueError, match="x must have size 8 in dimension -1"):
        mod(torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match="even"):
        SinusoidalPositionalEncoding(7)


def test_learned_positions():
    torch.manual_seed(0)
    mod = LearnedPositionalEmbedding(10, 4)
    x = torch.randn(3, 5, 4)
    torch.testing.assert_close(mod(x), x + mod.weight[:5])
    torch.testing.assert_close(mod(x, offset=5), x + mod.weight[5:10])
    mod(x).sum().backward()
    assert mod.weight.grad[:5].abs().sum() > 0 and mod.weight.grad[5:].abs().sum() == 0
    with pytest.raises(ValueError, match="max_len"):
        mod(x, offset=6)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        mod(torch.randn(5, 4))


def _rope_complex(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Reference: pair dims (j, j + hs/2) as one complex number and multiply by e^{i p w_j}."""
    hs = x.shape[-1]
    w = base ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    z = torch.complex(x[..., : hs // 2].double(), x[..., hs // 2:].double())
    z = z * torch.polar(torch.ones_like(w), positions.double()[:, None] * w)
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


def test_rope_matches_complex_rotation_and_transformers():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    torch.manual_seed(0)
    B, H, T, hs = 2, 3, 9, 16
    q, k = torch.randn(B, H, T, hs), torch.randn(B, H, T, hs)
    rope = RotaryEmbedding(hs)
    pos = torch.arange(4, 4 + T)
    torch.testing.assert_close(rope(q, offset=4), _rope_complex(q, pos), atol=1e-5, rtol=1e-5)

    cfg = LlamaConfig(hidden_size=H * hs, num_attention_heads=H, num_key_value_heads=H, head_dim=hs,
                      rope_theta=10000.0, max_position_embeddings=64)
    hf_rope = LlamaRotaryEmbedding(cfg)
    cos, sin = hf_rope(q, pos[None, :])  # (1, T, hs)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos, sin)
    torch.testing.assert_close(rope(q, offset=4), q_hf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rope(k, offset=pos), k_hf, atol=1e-5, rtol=1e-5)


def test_rope_relative_position_property():
    torch.manual_seed(0)
    hs = 32
    rope = RotaryEmbedding(hs)
    q, k = torch.randn(hs, dtype=torch.float64), torch.randn(hs, dtype=torch.float64)

    def score(m: int, n: int) -> float:
        qm = rope(q[None].float(), offset=m).double()[0]
        kn = rope(k[None].float(), offset=n).double()[0]
        return float(qm @ kn)

    for delta in (0, 1, 5, 17):
        scores = [score(m, m - delta) for m in (delta, delta + 3, delta + 40, delta + 500)]
        assert max(scores) - min(scores) < 1e-3 * (1 + abs(scores[0]))
    assert abs(score(10, 0) - score(0, 10)) > 1e-3  # the sign of the offset matters
    x = torch.randn(4, 7, hs)
    torch.testing.assert_close(rope(x, offset=3).norm(dim=-1), x.norm(dim=-1))  # a rotation
    torch.testing.assert_close(rope(x, offset=0)[:, 0], x[:, 0])  # position 0 is not moved


def test_rope_errors_and_rotate_half():
    assert torch.equal(rotate_half(torch.tensor([1.0, 2.0, 3.0, 4.0])), torch.tensor([-3.0, -4.0, 1.0, 2.0]))
    rope = RotaryEmbedding(8)
    with pytest.raises(ValueError, match="x must have size 8 in dimension -1"):
        rope(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match="shape"):
        rope(torch.randn(2, 3, 8), offset=torch.arange(4))
    with pytest.raises(TypeError):
        rope(torch.ones(2, 3, 8, dtype=torch.long))


def test_token_embedding_is_an_nn_embedding_with_one_weight():
    torch.manual_seed(0)
    emb = TokenEmbedding(20, 6, padding_idx=3)
    assert isinstance(emb, torch.nn.Embedding) and list(emb.state_dict()) == ["weight"]
    assert torch.equal(emb.weight[3], torch.zeros(6))              # the padding row starts at zero
    assert 0.01 < emb.weight.std().item() < 0.03                   # N(0, 0.02)
    idx = torch.tensor([[3, 5, 3, 7]])
    emb(idx).sum().backward()
    assert torch.equal(emb.weight.grad[3], torch.zeros(6))          # and gets no gradient
    assert torch.equal(emb.weight.grad[5], torch.ones(6))


def test_token_embedding_draws_as_many_random_numbers_as_nn_embedding():
    # Models seeded before construction must initialise exactly as with a plain nn.Embedding.
    torch.manual_seed(0)
    TokenEmbedding(50, 16)
    after_ours = torch.rand(4)
    torch.manual_seed(0)
    torch.nn.Embedding(50, 16)
    assert torch.equal(after_ours, torch.rand(4))


def test_learned_positions_lookup_mode():
    torch.manual_seed(0)
    pos = LearnedPositionalEmbedding(10, 4)
    assert isinstance(pos, torch.nn.Embedding) and list(pos.state_dict()) == ["weight"]
    p = torch.tensor([0, 4, 9])
    assert torch.equal(pos(p), pos.weight[p])                        # integer positions: a lookup
    x = torch.randn(2, 3, 4)
    assert torch.equal(pos(x, offset=2), x + pos(torch.arange(2, 5)))  # float vectors: added
    with pytest.raises(ValueError, match="positions"):
        pos(torch.tensor([10]))
