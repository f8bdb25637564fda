"""lmlib layers vs torch.nn.TransformerEncoderLayer / TransformerDecoderLayer, weights copied across."""

import pytest
import torch
from torch import nn

from lmlib.blocks import Decoder, DecoderLayer, Encoder, EncoderLayer
from lmlib.counting import count_params, transformer_params
from lmlib.transformer import Transformer, TransformerConfig

D, H, FF = 24, 3, 40


@torch.no_grad()
def copy_mha(ours, theirs: nn.MultiheadAttention):
    """torch packs Q, K, V into one in_proj (3D, D) matrix; ours are three nn.Linear."""
    for i, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        proj.weight.copy_(theirs.in_proj_weight[i * D:(i + 1) * D])
        proj.bias.copy_(theirs.in_proj_bias[i * D:(i + 1) * D])
    ours.out_proj.weight.copy_(theirs.out_proj.weight)
    ours.out_proj.bias.copy_(theirs.out_proj.bias)


@torch.no_grad()
def copy_common(ours, theirs, norms):
    ours.ffn.fc_in.load_state_dict(theirs.linear1.state_dict())
    ours.ffn.fc_out.load_state_dict(theirs.linear2.state_dict())
    for a, b in norms:
        getattr(ours, a).load_state_dict(getattr(theirs, b).state_dict())


@torch.no_grad()
def jitter(module, seed):
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(torch.randn(p.shape, generator=g) * 0.2)


def padding_mask():
    m = torch.zeros(3, 9, dtype=torch.bool)
    m[1, 6:] = True
    m[2, 2:] = True
    return m


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, act):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=act, batch_first=True,
                                     norm_first=norm_first, layer_norm_eps=1e-5)
    jitter(ref, 1)
    ours = EncoderLayer(D, H, FF, activation="relu" if act == "relu" else "gelu_erf", norm_first=norm_first)
    copy_mha(ours.self_attn, ref.self_attn)
    copy_common(ours, ref, [("norm1", "norm1"), ("norm2", "norm2")])
    ref.eval(), ours.eval()
    x = torch.randn(3, 9, D)
    pad = padding_mask()
    # grad mode on: keeps torch off its "fast path" (which zeroes padded positions)
    diff = (ours(x, key_padding_mask=pad) - ref(x, src_key_padding_mask=pad)).abs().max().item()
    diff0 = (ours(x) - ref(x)).abs().max().item()
    print(f"EncoderLayer(norm_first={norm_first}, {act}) vs torch: max|d| = {max(diff, diff0):.2e}")
    assert diff < 1e-5 and diff0 < 1e-5


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=norm_first)
    jitter(ref, 2)
    ours = DecoderLayer(D, H, FF, activation="gelu_erf", norm_first=norm_first)
    copy_mha(ours.self_attn, ref.self_attn)
    copy_mha(ours.cross_attn, ref.multihead_attn)
    copy_common(ours, ref, [("norm1", "norm1"), ("norm_cross", "norm2"), ("norm2", "norm3")])
    ref.eval(), ours.eval()
    x, mem = torch.randn(3, 7, D), torch.randn(3, 9, D)
    pad = padding_mask()
    causal = nn.Transformer.generate_square_subsequent_mask(7)
    expected = ref(x, mem, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=pad)
    diff = (ours(x, mem, memory_key_padding_mask=pad) - expected).abs().max().item()
    print(f"DecoderLayer(norm_first={norm_first}) vs torch: max|d| = {diff:.2e}")
    assert diff < 1e-5


def test_encoder_stack_matches_torch_pre_norm():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
    ref = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(D), enable_nested_tensor=False)
    jitter(ref, 3)
    ours = Encoder(3, D, H, FF, activation="gelu_erf", norm_first=True)
    for lo, lr in zip(ours.layers, ref.layers):
        copy_mha(lo.self_attn, lr.self_attn)
        copy_common(lo, lr, [("norm1", "norm1"), ("norm2", "norm2")])
    ours.final_norm.load_state_dict(ref.norm.state_dict())
    x = torch.randn(2, 9, D)
    assert (ours(x) - ref(x)).abs().max() < 1e-5


def test_decoder_layer_without_cross_attention_is_causal():
    torch.manual_seed(0)
    layer = DecoderLayer(D, H, FF, cross_attention=False).eval()
    x = torch.randn(1, 6, D)
    y = layer(x)
    x2 = x.clone()
    x2[:, 4:] += 1
    assert torch.allclose(layer(x2)[:, :4], y[:, :4], atol=1e-6)
    with pytest.raises(ValueError, match="memory"):
        layer(x, torch.randn(1, 3, D))


def test_layer_validation():
    with pytest.raises(ValueError, match="divisible"):
        EncoderLayer(10, 3)
    with pytest.raises(ValueError, match="dropout"):
        DecoderLayer(8, 2, dropout=1.0)
    with pytest.raises(ValueError, match="n_layers"):
        Decoder(0, 8, 2)


@pytest.mark.parametrize("kw", [dict(), dict(share_embeddings=True), dict(norm_first=True, tie_output=False)])
def test_encoder_decoder_transformer(kw):
    torch.manual_seed(0)
    cfg = TransformerConfig(src_vocab_size=20, tgt_vocab_size=20, d_model=16, n_heads=2, n_encoder_layers=2,
                            n_decoder_layers=2, d_ff=32, dropout=0.0, max_len=16, **kw)
    m = Transformer(cfg).eval()
    assert count_params(m) == transformer_params(cfg)
    src, tgt = torch.randint(0, 20, (2, 9)), torch.randint(0, 20, (2, 6))
    logits, loss = m(src, tgt, targets=tgt)
    assert logits.shape == (2, 6, 20) and loss.item() > 0
    # the decoder is causal in tgt, but sees all of src
    tgt2 = tgt.clone()
    tgt2[:, 4] = (tgt2[:, 4] + 1) % 20
    src2 = src.clone()
    src2[:, -1] = (src2[:, -1] + 1) % 20
    with torch.no_grad():
        assert torch.allclose(m(src, tgt2)[0][:, :4], logits[:, :4], atol=1e-5)
        assert not torch.allclose(m(src2, tgt)[0][:, 0], logits[:, 0])
    # padding the source: ids under padding do not matter
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[:, 7:] = True
    src3 = src.clone()
    src3[:, 7:] = 0
    with torch.no_grad():
        a = m(src, tgt, src_key_padding_mask=pad)[0]
        b = m(src3, tgt, src_key_padding_mask=pad)[0]
    assert torch.allclose(a, b, atol=1e-5)


def test_transformer_config_validation():
    with pytest.raises(ValueError, match="share_embeddings"):
        TransformerConfig(10, 12, share_embeddings=True)
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(10, 10, d_model=30, n_heads=4)
