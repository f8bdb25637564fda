"""The modern decoder: GPT-2 with the changes that Llama-style models made, each one a switch.

Llama (Touvron et al., 2023), Mistral, Qwen and Gemma are GPT-2 (:mod:`lmlib.gpt`) with a handful
of changes to the block::

    idx -> token embedding (no position embedding) -> n_layer x
             [x + attn(RMSNorm(x)) ; x + SwiGLU(RMSNorm(x))]     attn: causal GQA with RoPE, no biases
        -> final RMSNorm -> lm_head (tied to the embedding, or not) -> logits

=========================  =====================  ====================================  =================
component                  GPT-2                  Llama                                 config switch
=========================  =====================  ====================================  =================
normalisation              LayerNorm              RMSNorm (Zhang & Sennrich, 2019)      ``norm``
positions                  learned, added         RoPE on q and k (Su et al., 2021)     ``position``
feed-forward               GELU, 2 matrices       SwiGLU, 3 matrices (Shazeer, 2020)    ``ffn``
key/value heads            one per query head     shared by groups (Ainslie et al.)     ``n_kv_head``
biases                     everywhere             none (Qwen2: on q, k, v)              ``bias``, ``qkv_bias``
=========================  =====================  ====================================  =================

Every switch can be set on its own, so one model class spans GPT-2 (:meth:`LlamaConfig.gpt2_like`,
which computes exactly what :class:`lmlib.gpt.GPT` computes) and Llama, and every step between:
the ablation of the chapter changes one component at a time. Optional extras: QK-norm
(``qk_norm``) and sliding-window attention (``sliding_window``).

The feed-forward width. ``ffn_hidden=None`` picks the width that gives each block the parameters
of a GPT-2 block without biases (attention ``4 d²``, FFN ``8 d²``): a GELU FFN has ``2 d h``
parameters and SwiGLU ``3 d h``, and the parameters that GQA saves in the key and value
projections go to the FFN (:func:`matched_ffn_hidden`). Models converted from elsewhere give
``ffn_hidden`` explicitly (Llama rounds ``8d/3`` up to a multiple of 256).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lmlib.attention import KVCache
from lmlib.embeddings import LearnedPositionalEmbedding, TokenEmbedding
from lmlib.feedforward import FeedForward, SwiGLU
from lmlib.gpt import check_lm_inputs
from lmlib.gqa import GroupedQueryAttention
from lmlib.normalization import LayerNorm, RMSNorm
from lmlib.validation import check_bool, check_choice, check_float, check_int

__all__ = ["LlamaConfig", "LlamaBlock", "Llama", "matched_ffn_hidden"]


def matched_ffn_hidden(n_embd: int, n_head: int, n_kv_head: int, ffn: str = "swiglu",
                       head_dim: int | None = None) -> int:
    """The FFN width that gives a block the weights of a GPT-2 block without biases, ``12 d²``.

    Attention has ``d · hs · (2 n_head + 2 n_kv_head)`` weights (q and out, k and v); the FFN gets
    the rest: ``h = rest / (2d)`` for GELU (two matrices), ``rest / (3d)`` for SwiGLU (three),
    rounded to the nearest integer. With MHA and ``hs = d / n_head`` that is ``4d`` and ``8d/3``.
    """
    who = "matched_ffn_hidden"
    check_int("n_embd", n_embd, min=1, who=who)
    check_int("n_head", n_head, min=1, who=who)
    check_int("n_kv_head", n_kv_head, min=1, max=n_head, who=who)
    check_choice("ffn", ffn, ("swiglu", "gelu"), who=who)
    if n_head % n_kv_head:
        raise ValueError(f"{who}: n_kv_head ({n_kv_head}) must divide n_head ({n_head})")
    if head_dim is None and n_embd % n_head:
        raise ValueError(f"{who}: n_embd ({n_embd}) must be divisible by n_head ({n_head}), or give head_dim")
    hs = n_embd // n_head if head_dim is None else check_int("head_dim", head_dim, min=1, who=who)
    rest = 12 * n_embd * n_embd - n_embd * hs * (2 * n_head + 2 * n_kv_head)
    if rest <= 0:
        raise ValueError(f"{who}: attention alone has more than 12 d² weights (head_dim={hs} too large)")
    return max(1, round(rest / ((3 if ffn == "swiglu" else 2) * n_embd)))


@dataclass
class LlamaConfig:
    """Hyper-parameters of a :class:`Llama`. Validated on construction (ValueError naming the field);
    ``n_kv_head``, ``head_dim`` and ``ffn_hidden`` given as None are filled in."""

    vocab_size: int
    block_size: int                 # longest context (RoPE has no table: it only bounds the input)
    n_layer: int
    n_head: int
    n_embd: int
    n_kv_head: int | None = None    # None: n_head (MHA); 1: multi-query attention
    head_dim: int | None = None     # None: n_embd // n_head
    ffn_hidden: int | None = None   # None: matched_ffn_hidden(...)
    norm: str = "rms"               # "rms" | "layer"
    position: str = "rope"          # "rope" | "learned"
    ffn: str = "swiglu"             # "swiglu" | "gelu" (GPT-2's tanh GELU)
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    bias: bool = False              # GPT-2's biases in every Linear (not lm_head) and LayerNorm
    qkv_bias: bool = False          # biases on the q, k, v projections only (Qwen2)
    qk_norm: bool = False
    sliding_window: int | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        who = "LlamaConfig"
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_int(name, getattr(self, name), min=1, who=who)
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        check_int("n_kv_head", self.n_kv_head, min=1, max=self.n_head, who=who)
        if self.n_head % self.n_kv_head:
            raise ValueError(f"{who}: n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head})")
        if self.head_dim is None:
            if self.n_embd % self.n_head:
                raise ValueError(f"{who}: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}), "
                                 "or give head_dim")
            self.head_dim = self.n_embd // self.n_head
        check_int("head_dim", self.head_dim, min=1, who=who)
        for name, choices in (("norm", ("rms", "layer")), ("position", ("rope", "learned")),
                              ("ffn", ("swiglu", "gelu"))):
            check_choice(name, getattr(self, name), choices, who=who)
        if self.ffn_hidden is None:
            self.ffn_hidden = matched_ffn_hidden(self.n_embd, self.n_head, self.n_kv_head, self.ffn, self.head_dim)
        check_int("ffn_hidden", self.ffn_hidden, min=1, who=who)
        check_float("rope_base", self.rope_base, min=0.0, min_open=True, who=who)
        if self.position == "rope" and self.head_dim % 2:
            raise ValueError(f"{who}: RoPE needs an even head_dim, got {self.head_dim}")
        check_float("norm_eps", self.norm_eps, min=0.0, min_open=True, who=who)
        for name in ("tie_embeddings", "bias", "qkv_bias", "qk_norm"):
            check_bool(name, getattr(self, name), who=who)
        if self.sliding_window is not None:
            check_int("sliding_window", self.sliding_window, min=1, who=who)
        check_float("dropout", self.dropout, min=0.0, max=1.0, max_open=True, who=who)

    @classmethod
    def gpt2_like(cls, **kwargs) -> "LlamaConfig":
        """Every switch at GPT-2's setting: LayerNorm, learned positions, GELU FFN of width 4d,
        MHA, biases, tied embeddings (:class:`lmlib.gpt.GPT` with the same weights gives the same logits)."""
        base = dict(norm="layer", position="learned", ffn="gelu", bias=True, tie_embeddings=True)
        if "ffn_hidden" not in kwargs:
            base["ffn_hidden"] = 4 * check_int("n_embd", kwargs.get("n_embd"), min=1, who="LlamaConfig.gpt2_like")
        return cls(**{**base, **kwargs})

    @classmethod
    def llama3_8b(cls, **overrides) -> "LlamaConfig":
        """The published shape of Llama 3 8B (8.0B parameters; use it on the ``meta`` device)."""
        kw = dict(vocab_size=128256, block_size=8192, n_layer=32, n_head=32, n_kv_head=8, n_embd=4096,
                  ffn_hidden=14336, rope_base=500000.0, tie_embeddings=False)
        return cls(**{**kw, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


class LlamaBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + ffn(norm2(x))`` (pre-norm), with the config's components.
    ``forward(x: (B, T, n_embd), *, kv_cache=None) -> (B, T, n_embd)``."""

    def __init__(self, c: LlamaConfig) -> None:
        super().__init__()
        if not isinstance(c, LlamaConfig):
            raise TypeError(f"LlamaBlock: config must be a LlamaConfig, got {type(c).__name__}")
        d = c.n_embd

        def norm() -> nn.Module:
            return RMSNorm(d, eps=c.norm_eps) if c.norm == "rms" else LayerNorm(d, eps=c.norm_eps, bias=c.bias)

        self.norm1 = norm()
        self.self_attn = GroupedQueryAttention(
            d, c.n_head, c.n_kv_head, head_dim=c.head_dim, rope_base=c.rope_base if c.position == "rope" else None,
            qkv_bias=c.bias or c.qkv_bias, out_bias=c.bias, qk_norm=c.qk_norm, norm_eps=c.norm_eps,
            sliding_window=c.sliding_window, dropout=c.dropout)
        self.norm2 = norm()
        if c.ffn == "swiglu":
            self.ffn = SwiGLU(d, c.ffn_hidden, dropout=c.dropout, bias=c.bias)
        else:
            self.ffn = FeedForward(d, c.ffn_hidden, activation="gelu_tanh", dropout=c.dropout, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, *, kv_cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.dropout(self.self_attn(self.norm1(x), kv_cache=kv_cache))
        return x + self.ffn(self.norm2(x))


class Llama(nn.Module):
    """A Llama-style decoder. ``forward(idx, targets=None, *, kv_caches=None) -> (logits, loss)``,
    the interface of :class:`lmlib.gpt.GPT` (so training, evaluation and generation work unchanged).

    Submodules: ``wte``, ``wpe`` (only with ``position="learned"``), ``drop``, ``blocks`` (``n_layer``
    :class:`LlamaBlock`), ``norm_f``, ``lm_head`` (its weight *is* ``wte.weight`` when
    ``tie_embeddings``). Initialised as GPT-2 (N(0, 0.02); the two projections into the residual
    stream scaled by ``1/sqrt(2 n_layer)``).
    """

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise TypeError(f"Llama: config must be a LlamaConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = TokenEmbedding(c.vocab_size, c.n_embd)
        self.wpe = LearnedPositionalEmbedding(c.block_size, c.n_embd) if c.position == "learned" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(LlamaBlock(c) for _ in range(c.n_layer))
        self.norm_f = (RMSNorm(c.n_embd, eps=c.norm_eps) if c.norm == "rms"
                       else LayerNorm(c.n_embd, eps=c.norm_eps, bias=c.bias))
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2 initialisation (see the class docstring); norms start at weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (LayerNorm, RMSNorm)):
                nn.init.ones_(m.weight)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        scaled_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.self_attn.out_proj.weight, mean=0.0, std=scaled_std)
            out = block.ffn.down_proj if isinstance(block.ffn, SwiGLU) else block.ffn.fc_out
            nn.init.normal_(out.weight, mean=0.0, std=scaled_std)

    def new_kv_caches(self) -> list[KVCache]:
        """One empty :class:`~lmlib.attention.KVCache` per layer, for incremental decoding."""
        return [KVCache() for _ in range(self.config.n_layer)]

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (a tied matrix counted once); ``non_embedding`` drops ``wte``, ``wpe``
        and an untied ``lm_head``."""
        check_bool("non_embedding", non_embedding, who="Llama.num_params")
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel() + (0 if self.wpe is None else self.wpe.weight.numel())
            if not self.config.tie_embeddings:
                n -= self.lm_head.weight.numel()
        return n

    def hidden_states(self, idx: torch.Tensor) -> torch.Tensor:
        """The final hidden states ``(B, T, n_embd)`` after ``norm_f``, taken from :meth:`forward`."""
        captured = []
        hook = self.norm_f.register_forward_hook(lambda module, args, out: captured.append(out))
        try:
            self(idx)
        finally:
            hook.remove()
        return captured[0]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                kv_caches: list[KVCache] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids; targets: (B, T) (-100 = ignore) or None -> (logits (B, T, V), loss)."""
        check_lm_inputs("Llama", self.config, idx, targets, kv_caches)
        B, T = idx.shape
        offset = 0 if kv_caches is None else kv_caches[0].length
        x = self.wte(idx)                                          # (B, T, C)
        if self.wpe is not None:                                   # GPT-2: add learned positions
            x = self.wpe(x, offset=offset)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):                    # RoPE (if any) acts inside attention
            x = block(x, kv_cache=None if kv_caches is None else kv_caches[i])
        logits = self.lm_head(self.norm_f(x))                      # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-100)
        return logits, loss
