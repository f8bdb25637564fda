"""The encoder-decoder Transformer: its state_dict names and its input layer."""

import math

import torch
import torch.nn.functional as F

from lmlib.embeddings import SinusoidalPositionalEncoding, TokenEmbedding, sinusoidal_encoding
from lmlib.transformer import Transformer, TransformerConfig


def _small(**kw):
    torch.manual_seed(0)
    cfg = dict(src_vocab_size=7, tgt_vocab_size=9, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
               d_ff=16, max_len=10, dropout=0.0)
    return Transformer(TransformerConfig(**{**cfg, **kw}))


def _layer_keys(prefix, parts):
    return [f"{prefix}.{m}.{p}" for m in parts for p in ("weight", "bias")]


ATTN = ("q_proj", "k_proj", "v_proj", "out_proj")
TRANSFORMER_KEYS_ONE_LAYER = (
    ["src_embed.weight", "tgt_embed.weight"]
    + _layer_keys("encoder.layers.0", [f"self_attn.{p}" for p in ATTN] + ["norm1", "ffn.fc_in", "ffn.fc_out", "norm2"])
    + _layer_keys("decoder.layers.0", [f"self_attn.{p}" for p in ATTN] + ["norm1"] + [f"cross_attn.{p}" for p in ATTN]
                  + ["norm_cross", "ffn.fc_in", "ffn.fc_out", "norm2"])
    + ["out_proj.weight"])


def test_state_dict_keys_are_pinned():
    m = _small()
    sd = m.state_dict()
    assert list(sd) == TRANSFORMER_KEYS_ONE_LAYER
    assert sd["src_embed.weight"].shape == (7, 8) and sd["tgt_embed.weight"].shape == (9, 8)
    assert isinstance(m.src_embed, TokenEmbedding) and m.src_embed.scale
    assert m.out_proj.weight is m.tgt_embed.weight                 # tie_output=True by default
    shared = _small(share_embeddings=True, tgt_vocab_size=7)
    assert shared.src_embed is shared.tgt_embed
    assert list(shared.state_dict())[:2] == ["src_embed.weight", "tgt_embed.weight"]


def test_input_layer_is_scaled_embedding_plus_sinusoids():
    m = _small()
    assert isinstance(m.pos, SinusoidalPositionalEncoding)
    src = torch.randint(0, 7, (2, 5))
    ref = F.embedding(src, m.src_embed.weight) * math.sqrt(8) + sinusoidal_encoding(5, 8)
    torch.testing.assert_close(m._embed(m.src_embed, src), ref, rtol=0, atol=0)
