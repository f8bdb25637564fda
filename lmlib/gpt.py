"""A decoder-only Transformer language model with the GPT-2 layout.

GPT-2 (Radford et al., 2019) is a stack of pre-norm decoder blocks without cross-attention:

    idx (B, T) -> token embedding + learned position embedding -> dropout
               -> n_layer x [x + attn(LN(x)) ; x + FFN(LN(x))]          (causal self-attention)
               -> final LayerNorm -> lm_head (weights tied to the token embedding) -> logits (B, T, V)

The FFN uses the tanh approximation of GELU, as GPT-2 does. Weights are initialised as in GPT-2:
N(0, 0.02) for every matrix and embedding, with the two projections that write into the residual
stream (attention output and FFN output) scaled by 1/sqrt(2 · n_layer).

Generation with a KV cache: ``caches = model.new_kv_caches()``, then call ``model(idx, kv_caches=caches)``
with the prompt and afterwards one token at a time; positions continue from ``caches[0].length``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F

from lmlib.attention import KVCache
from lmlib.blocks import DecoderLayer
from lmlib.embeddings import LearnedPositionalEmbedding, TokenEmbedding
from lmlib.normalization import LayerNorm
from lmlib.validation import check_bool, check_choice, check_float, check_ids, check_int, check_tensor

__all__ = ["GPTConfig", "GPT"]


@dataclass
class GPTConfig:
    """Hyper-parameters of a GPT. Validated on construction (ValueError naming the bad field)."""

    vocab_size: int
    block_size: int      # maximum context length (number of learned positions)
    n_layer: int
    n_head: int
    n_embd: int          # d_model; the FFN width is 4 * n_embd as in GPT-2
    dropout: float = 0.0
    bias: bool = True    # biases in Linear layers and LayerNorms
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        who = "GPTConfig"
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_int(name, getattr(self, name), min=1, who=who)
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        check_float("dropout", self.dropout, min=0.0, max=1.0, max_open=True, who=who)
        check_bool("bias", self.bias, who=who)
        check_float("layer_norm_eps", self.layer_norm_eps, min=0.0, min_open=True, who=who)

    @classmethod
    def gpt2(cls, size: str = "small", **overrides) -> "GPTConfig":
        """The published GPT-2 shapes: "small" (124M), "medium" (350M), "large" (774M), "xl" (1558M)."""
        shapes = {"small": (12, 12, 768), "medium": (24, 16, 1024), "large": (36, 20, 1280), "xl": (48, 25, 1600)}
        check_choice("size", size, shapes, who="GPTConfig.gpt2")
        n_layer, n_head, n_embd = shapes[size]
        kw = dict(vocab_size=50257, block_size=1024, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict:
        return asdict(self)


def check_lm_inputs(who: str, c, idx, targets, kv_caches) -> None:
    """The checks of a language model's ``forward(idx, targets, kv_caches=...)`` (``c`` has
    ``vocab_size``, ``block_size`` and ``n_layer``), made before anything (a KV cache) changes."""
    check_tensor("idx", idx, dims=2, dtype=(torch.long, torch.int32), who=who)
    if idx.shape[1] == 0:
        raise ValueError(f"{who}: idx has no tokens (T = 0)")
    offset = 0
    if kv_caches is not None:
        if not isinstance(kv_caches, (list, tuple)) or not all(isinstance(k, KVCache) for k in kv_caches):
            raise TypeError(f"{who}: kv_caches must be a list of KVCache (see new_kv_caches()), "
                            f"got {type(kv_caches).__name__}")
        if len(kv_caches) != c.n_layer:
            raise ValueError(f"{who}: expected {c.n_layer} KV caches (one per layer) in kv_caches, "
                             f"got {len(kv_caches)}")
        offset = kv_caches[0].length
        if any(k.length != offset for k in kv_caches):
            raise ValueError(f"{who}: kv_caches hold different lengths {[k.length for k in kv_caches]}")
    if offset + idx.shape[1] > c.block_size:
        raise ValueError(f"{who}: sequence of {offset + idx.shape[1]} tokens ({offset} cached + {idx.shape[1]} "
                         f"new) is longer than block_size={c.block_size}")
    if targets is not None:
        check_tensor("targets", targets, dtype=torch.long, who=who)
        if targets.shape != idx.shape:
            raise ValueError(f"{who}: targets must have the shape of idx {tuple(idx.shape)}, "
                             f"got {tuple(targets.shape)}")
    if idx.numel():
        lo, hi = torch.aminmax(idx)                                        # the cheapest range check
        if lo.item() < 0 or hi.item() >= c.vocab_size:
            check_ids("idx", idx, c.vocab_size, who=who)                   # raises, naming the bad id
    if targets is not None:
        check_ids("targets", targets, c.vocab_size, allow=(-100,), who=who)


class GPT(nn.Module):
    """GPT-2-layout language model. ``forward(idx, targets=None, *, kv_caches=None) -> (logits, loss)``.

    Submodules: ``wte`` (:class:`~lmlib.embeddings.TokenEmbedding`), ``wpe``
    (:class:`~lmlib.embeddings.LearnedPositionalEmbedding`), ``drop``, ``blocks``
    (``n_layer`` pre-norm :class:`~lmlib.blocks.DecoderLayer` without cross-attention), ``ln_f``,
    ``lm_head`` (its weight *is* ``wte.weight``).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT: config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        c = config
        self.wte = TokenEmbedding(c.vocab_size, c.n_embd)              # the input layer of Chapter 2
        self.wpe = LearnedPositionalEmbedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            DecoderLayer(c.n_embd, c.n_head, 4 * c.n_embd, cross_attention=False, dropout=c.dropout,
                         activation="gelu_tanh", norm_first=True, layer_norm_eps=c.layer_norm_eps, bias=c.bias)
            for _ in range(c.n_layer))
        self.ln_f = LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one (V, C) matrix used twice
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2 initialisation (see the module docstring)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            elif isinstance(m, LayerNorm):
                nn.init.ones_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        scaled_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.self_attn.out_proj.weight, mean=0.0, std=scaled_std)
            nn.init.normal_(block.ffn.fc_out.weight, mean=0.0, std=scaled_std)

    def new_kv_caches(self) -> list[KVCache]:
        """One empty :class:`~lmlib.attention.KVCache` per layer, for incremental decoding."""
        return [KVCache() for _ in range(self.config.n_layer)]

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied matrix counted once); ``non_embedding`` drops wte and wpe."""
        check_bool("non_embedding", non_embedding, who="GPT.num_params")
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + self.wpe.weight.numel()
        return n

    def _check_inputs(self, idx, targets, kv_caches) -> None:
        """Every check of :meth:`forward`, before anything (a KV cache) changes."""
        check_lm_inputs("GPT", self.config, idx, targets, kv_caches)

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """The final hidden states ``(B, T, n_embd)``, after ``ln_f`` and before ``lm_head``: what
        a classification head reads. They are taken from :meth:`forward` itself (the output of
        ``ln_f`` is captured on the way), so a head reads exactly what the LM head reads, and
        ``lm_head(hidden_states(idx))`` are the logits."""
        captured = []
        hook = self.ln_f.register_forward_hook(lambda module, args, out: captured.append(out))
        try:
            self(idx)
        finally:
            hook.remove()
        return captured[0]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                kv_caches: list[KVCache] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) long token ids; targets: (B, T) long (-100 = ignore) or None.

        Returns ``(logits (B, T, vocab_size), loss)`` where loss is the mean cross-entropy over the
        non-ignored targets (None without targets).
        """
        self._check_inputs(idx, targets, kv_caches)
        B, T = idx.shape
        offset = 0 if kv_caches is None else kv_caches[0].length              # positions already cached
        x = self.drop(self.wpe(self.wte(idx), offset=offset))                # (B, T, C): tokens + positions
        for i, block in enumerate(self.blocks):
            x = block(x, is_causal=True, kv_cache=None if kv_caches is None else kv_caches[i])
        x = self.ln_f(x)
        logits = self.lm_head(x)                                              # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-100)
        return logits, loss
