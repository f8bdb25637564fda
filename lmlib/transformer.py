"""The encoder–decoder Transformer of "Attention Is All You Need" (Vaswani et al., 2017).

    src (B, S) -> embed · sqrt(d_model) + sinusoidal positions -> Encoder (n x EncoderLayer)  -> memory (B, S, d)
    tgt (B, T) -> embed · sqrt(d_model) + sinusoidal positions -> Decoder (n x DecoderLayer, each
                  attending causally to tgt and fully to memory) -> Linear -> logits (B, T, tgt_vocab)

The paper uses post-norm layers and ReLU; both are the defaults here and can be changed in the
config. ``share_embeddings`` uses one embedding table for source and target (needs one shared
vocabulary); ``tie_output`` makes the output projection the target embedding matrix.
Padding masks are bool, True = padding (as in ``torch.nn.Transformer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from lmlib.blocks import Decoder, Encoder
from lmlib.embeddings import SinusoidalPositionalEncoding, TokenEmbedding
from lmlib.feedforward import ACTIVATIONS
from lmlib.validation import check_bool, check_choice, check_float, check_ids, check_int, check_tensor

__all__ = ["TransformerConfig", "Transformer"]


@dataclass
class TransformerConfig:
    """Hyper-parameters of the encoder–decoder model (defaults: the paper's base model, 65M)."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 512
    n_heads: int = 8
    n_encoder_layers: int = 6
    n_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    max_len: int = 512
    activation: str = "relu"
    norm_first: bool = False
    share_embeddings: bool = False
    tie_output: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        who = "TransformerConfig"
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "n_heads", "n_encoder_layers",
                     "n_decoder_layers", "d_ff", "max_len"):
            check_int(name, getattr(self, name), min=1, who=who)
        if self.d_model % self.n_heads:
            raise ValueError(f"TransformerConfig: d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.d_model % 2:
            raise ValueError(f"TransformerConfig: sinusoidal positions need an even d_model, got {self.d_model}")
        check_float("dropout", self.dropout, min=0.0, max=1.0, max_open=True, who=who)
        check_choice("activation", self.activation, sorted(ACTIVATIONS), who=who)
        for name in ("norm_first", "share_embeddings", "tie_output"):
            check_bool(name, getattr(self, name), who=who)
        check_float("layer_norm_eps", self.layer_norm_eps, min=0.0, min_open=True, who=who)
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError("TransformerConfig: share_embeddings needs src_vocab_size == tgt_vocab_size "
                             f"(got {self.src_vocab_size} and {self.tgt_vocab_size})")


class Transformer(nn.Module):
    """Encoder–decoder Transformer.

    ``forward(src (B, S), tgt (B, T), *, src_key_padding_mask (B, S) | None, tgt_key_padding_mask
    (B, T) | None, targets (B, T) | None) -> (logits (B, T, tgt_vocab), loss or None)``; ``tgt`` is
    the decoder input (the target shifted right), ``targets`` the ids to predict (-100 = ignore).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"Transformer: config must be a TransformerConfig, got {type(config).__name__}")
        self.config = c = config
        self.src_embed = TokenEmbedding(c.src_vocab_size, c.d_model, scale=True)    # rows times sqrt(d_model)
        self.tgt_embed = self.src_embed if c.share_embeddings else TokenEmbedding(c.tgt_vocab_size, c.d_model, scale=True)
        self.pos = SinusoidalPositionalEncoding(c.d_model, c.max_len, dropout=c.dropout)
        kw = dict(dropout=c.dropout, activation=c.activation, norm_first=c.norm_first, layer_norm_eps=c.layer_norm_eps)
        self.encoder = Encoder(c.n_encoder_layers, c.d_model, c.n_heads, c.d_ff, **kw)
        self.decoder = Decoder(c.n_decoder_layers, c.d_model, c.n_heads, c.d_ff, **kw)
        self.out_proj = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        self._init()
        if c.tie_output:
            self.out_proj.weight = self.tgt_embed.weight

    @torch.no_grad()
    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=self.config.d_model ** -0.5)

    def _check_ids(self, name: str, ids, vocab_size: int, padding_mask_name: str, padding_mask, who: str) -> None:
        """(B, L) token ids in range (L <= max_len) and their bool padding mask (B, L) or None."""
        check_tensor(name, ids, dims=2, dtype="int", who=who)
        if ids.shape[1] == 0:
            raise ValueError(f"{who}: {name} has no tokens (length 0)")
        if ids.shape[1] > self.config.max_len:
            raise ValueError(f"{who}: {name} has {ids.shape[1]} positions, more than max_len={self.config.max_len}")
        check_ids(name, ids, vocab_size, who=who)
        if padding_mask is not None:
            check_tensor(padding_mask_name, padding_mask, dtype=torch.bool, who=who)
            if padding_mask.shape != ids.shape:
                raise ValueError(f"{who}: {padding_mask_name} must have the shape of {name} {tuple(ids.shape)} "
                                 f"(True = padding), got {tuple(padding_mask.shape)}")

    def _embed(self, emb: TokenEmbedding, ids: torch.Tensor) -> torch.Tensor:
        return self.pos(emb(ids))                                           # (B, L, d)

    def encode(self, src: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) -> memory (B, S, d_model)."""
        self._check_ids("src", src, self.config.src_vocab_size, "src_key_padding_mask", src_key_padding_mask,
                        "Transformer.encode")
        return self.encoder(self._embed(self.src_embed, src), key_padding_mask=src_key_padding_mask)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, *, src_key_padding_mask: torch.Tensor | None = None,
               tgt_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """tgt (B, T), memory (B, S, d_model) -> logits (B, T, tgt_vocab_size)."""
        self._check_decode(tgt, memory, src_key_padding_mask, tgt_key_padding_mask)
        y = self.decoder(self._embed(self.tgt_embed, tgt), memory, key_padding_mask=tgt_key_padding_mask,
                         memory_key_padding_mask=src_key_padding_mask)
        return self.out_proj(y)

    def _check_decode(self, tgt, memory, src_key_padding_mask, tgt_key_padding_mask) -> None:
        who = "Transformer.decode"
        self._check_ids("tgt", tgt, self.config.tgt_vocab_size, "tgt_key_padding_mask", tgt_key_padding_mask, who)
        check_tensor("memory", memory, dims=3, dtype="float", sizes={-1: self.config.d_model}, who=who)
        if memory.shape[0] != tgt.shape[0]:
            raise ValueError(f"{who}: memory batch {memory.shape[0]} != tgt batch {tgt.shape[0]}")
        if src_key_padding_mask is not None:
            check_tensor("src_key_padding_mask", src_key_padding_mask, dtype=torch.bool, who=who)
            if src_key_padding_mask.shape != memory.shape[:2]:
                raise ValueError(f"{who}: src_key_padding_mask must have shape (B, S) = {tuple(memory.shape[:2])}, "
                                 f"got {tuple(src_key_padding_mask.shape)}")

    def _check_forward(self, src, tgt, targets) -> None:
        who = "Transformer"
        check_tensor("src", src, dims=2, dtype="int", who=who)
        check_tensor("tgt", tgt, dims=2, dtype="int", who=who)
        if src.shape[0] != tgt.shape[0]:
            raise ValueError(f"{who}: src and tgt must have the same batch size, got {src.shape[0]} and {tgt.shape[0]}")
        if targets is not None:
            check_tensor("targets", targets, dtype=torch.long, who=who)
            if targets.shape != tgt.shape:
                raise ValueError(f"{who}: targets must have the shape of tgt {tuple(tgt.shape)}, "
                                 f"got {tuple(targets.shape)}")
            check_ids("targets", targets, self.config.tgt_vocab_size, allow=(-100,), who=who)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, *, src_key_padding_mask: torch.Tensor | None = None,
                tgt_key_padding_mask: torch.Tensor | None = None,
                targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check_forward(src, tgt, targets)
        memory = self.encode(src, src_key_padding_mask)
        logits = self.decode(tgt, memory, src_key_padding_mask=src_key_padding_mask,
                             tgt_key_padding_mask=tgt_key_padding_mask)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss
