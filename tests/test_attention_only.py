"""The attention-only language model: an independent forward pass, causality, RoPE, and learning."""

import math

import torch
import torch.nn.functional as F

from lmlib import attention, data
from lmlib.attention_only import AttentionOnlyLM


def _reference_forward(model, idx):
    """The same model written out with explicit softmax attention (no lmlib attention code)."""
    x = model.tok_emb.weight[idx]
    if model.pos_emb is not None:
        x = x + model.pos_emb.weight[: idx.shape[1]]
    B, T, d = x.shape
    for norm, mha in zip(model.norms, model.layers):
        h = F.layer_norm(x, (d,), norm.weight, norm.bias, norm.eps)
        nh, hs = mha.n_heads, mha.d_head
        q, k, v = (F.linear(h, p.weight, p.bias).view(B, T, nh, hs).transpose(1, 2)
                   for p in (mha.q_proj, mha.k_proj, mha.v_proj))
        if mha.rotary is not None:       # rotate-half RoPE, written out
            pos = torch.arange(T, dtype=torch.float64)[:, None]
            theta = mha.rotary.base ** (-2 * torch.arange(hs // 2, dtype=torch.float64) / hs)
            ang = (pos * theta).to(x.dtype)
            rot = lambda t: torch.cat([t[..., :hs // 2] * ang.cos() - t[..., hs // 2:] * ang.sin(),
                                       t[..., hs // 2:] * ang.cos() + t[..., :hs // 2] * ang.sin()], -1)
            q, k = rot(q), rot(k)
        s = q @ k.transpose(-2, -1) / math.sqrt(hs)
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)
        y = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, d)
        x = x + F.linear(y, mha.out_proj.weight, mha.out_proj.bias)
    x = F.layer_norm(x, (d,), model.norm_f.weight, model.norm_f.bias, model.norm_f.eps)
    return F.linear(x, model.unembed.weight, model.unembed.bias)


def test_forward_matches_a_reference_with_and_without_rope():
    for rope in (None, 100.0):
        torch.manual_seed(0)
        m = AttentionOnlyLM(13, d_model=16, n_heads=4, n_layers=2, block_size=9, rope_base=rope).double().eval()
        idx = torch.randint(0, 13, (3, 9))
        logits, loss = m(idx, idx)
        assert logits.shape == (3, 9, 13)
        assert torch.allclose(logits, _reference_forward(m, idx), atol=1e-5)   # RoPE rotates in float32
        assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 13), idx.reshape(-1)))
        assert m(idx)[1] is None


def test_causal_a_change_in_the_future_changes_nothing_before():
    torch.manual_seed(0)
    m = AttentionOnlyLM(10, d_model=8, n_heads=2, block_size=8, rope_base=1e4).eval()
    a = torch.randint(0, 10, (1, 8))
    b = a.clone()
    b[0, 5] = (a[0, 5] + 1) % 10
    la, lb = m(a)[0], m(b)[0]
    assert torch.allclose(la[:, :5], lb[:, :5], atol=1e-6)
    assert not torch.allclose(la[:, 5:], lb[:, 5:], atol=1e-4)


def test_attention_maps_are_the_layers_weights():
    torch.manual_seed(0)
    m = AttentionOnlyLM(10, d_model=8, n_heads=2, n_layers=2, block_size=6).eval()
    idx = torch.randint(0, 10, (2, 6))
    maps = m.attention_maps(idx)
    assert maps.shape == (2, 2, 2, 6, 6)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 2, 2, 6))
    assert (maps.triu(diagonal=1) == 0).all()
    # the first layer's maps from its own input
    x = m.tok_emb(idx) + m.pos_emb(torch.arange(6))
    _, w = m.layers[0](m.norms[0](x), is_causal=True, need_weights=True)
    assert torch.allclose(maps[0], w, atol=1e-6)


def test_attention_learns_to_copy_the_previous_token():
    # a task only attention can solve: the target is the PREVIOUS token (random sequences)
    torch.manual_seed(0)
    V, T = 8, 12
    m = AttentionOnlyLM(V, d_model=32, n_heads=2, block_size=T, rope_base=100.0)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        x = torch.randint(0, V, (32, T), generator=g)
        y = torch.cat([torch.full((32, 1), -100), x[:, :-1]], dim=1)     # predict the previous token
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.randint(0, V, (64, T), generator=g)
    y = torch.cat([torch.full((64, 1), -100), x[:, :-1]], dim=1)
    with torch.no_grad():
        assert float(m(x, y)[1]) < 0.2 * math.log(V)                      # chance: log V
    maps = m.attention_maps(x)[0]                                          # (B, heads, T, T)
    prev = torch.diagonal(maps, offset=-1, dim1=-2, dim2=-1).mean((0, 2))
    assert prev.max() > 0.8                                                # a head looks one back


def test_bad_input_leaves_the_model_unchanged():
    torch.manual_seed(0)
    m = AttentionOnlyLM(5, d_model=8, n_heads=2, block_size=4)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    for bad in (torch.full((1, 3), 5), torch.zeros(1, 5, dtype=torch.long), torch.zeros(3, dtype=torch.long)):
        try:
            m(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
