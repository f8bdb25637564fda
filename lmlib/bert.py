"""An encoder-only Transformer with the BERT layout (Devlin et al., 2019).

    input_ids (B, T), token_type_ids (B, T) -> word + position + segment embeddings -> LayerNorm -> dropout
        -> n x post-norm EncoderLayer  [x = LN(x + attn(x)) ; x = LN(x + FFN(x))], attention in BOTH directions
        -> hidden (B, T, H)
        -> pooler: tanh(Linear(hidden[:, 0]))  -> pooled (B, H)        (the [CLS] summary)
        -> masked-LM head: Linear -> GELU -> LayerNorm -> (tied word embeddings)^T + bias -> logits (B, T, V)

Padding: ``attention_mask`` (B, T) holds 1 for real tokens and 0 for padding (the ``transformers``
convention); padding positions are never attended to as keys (their own outputs are computed but
meaningless). Unlike GPT, BERT uses the exact erf GELU and ``layer_norm_eps = 1e-12``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F

from lmlib.blocks import EncoderLayer
from lmlib.feedforward import ACTIVATIONS, get_activation
from lmlib.attention import _check_features
from lmlib.embeddings import LearnedPositionalEmbedding, TokenEmbedding
from lmlib.normalization import LayerNorm
from lmlib.validation import check_bool, check_choice, check_float, check_ids, check_int, check_tensor

__all__ = ["BertConfig", "BertEmbeddings", "BertPooler", "BERT", "MaskedLMHead", "BertForMaskedLM"]


@dataclass
class BertConfig:
    """Hyper-parameters of BERT (names as in ``transformers.BertConfig``; defaults = BERT-base)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu_erf"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    #: False: post-norm, as in BERT (``x = LN(x + sublayer(x))``). True: pre-norm
    #: (``x = x + sublayer(LN(x))``, with a final LayerNorm after the last layer), which trains
    #: stably at higher learning rates (Xiong et al. 2020); not a ``transformers`` BERT.
    norm_first: bool = False

    def __post_init__(self) -> None:
        who = "BertConfig"
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            check_int(name, getattr(self, name), min=1, who=who)
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(f"BertConfig: hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            check_float(name, getattr(self, name), min=0.0, max=1.0, max_open=True, who=who)
        check_choice("hidden_act", self.hidden_act, sorted(ACTIVATIONS), who=who)
        check_float("layer_norm_eps", self.layer_norm_eps, min=0.0, min_open=True, who=who)
        check_int("pad_token_id", self.pad_token_id, min=0, max=self.vocab_size - 1, who=who)
        check_bool("norm_first", self.norm_first, who=who)

    def to_dict(self) -> dict:
        return asdict(self)


class BertEmbeddings(nn.Module):
    """word + position + segment (token type) embeddings, then LayerNorm and dropout. -> (B, T, H)"""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        _check_config(config, "BertEmbeddings")
        c = config
        self.config = c
        self.word_embeddings = TokenEmbedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = LearnedPositionalEmbedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = TokenEmbedding(c.type_vocab_size, c.hidden_size)  # one row per segment
        self.norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        _check_ids(self.config, input_ids, token_type_ids, "BertEmbeddings", token_types_required=True)
        x = self.position_embeddings(self.word_embeddings(input_ids))       # tokens + positions (Chapter 2)
        x = x + self.token_type_embeddings(token_type_ids)                  # + segments
        return self.dropout(self.norm(x))                                   # (B, T, H)


class BertPooler(nn.Module):
    """pooled = tanh(W · hidden[:, 0] + b): a summary vector from the first ([CLS]) position. -> (B, H)"""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        check_int("hidden_size", hidden_size, min=1, who="BertPooler")
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        _check_hidden(hidden, self.dense, "BertPooler")
        return torch.tanh(self.dense(hidden[:, 0]))


def _check_config(config, who: str) -> None:
    if not isinstance(config, BertConfig):
        raise TypeError(f"{who}: config must be a BertConfig, got {type(config).__name__}")


def _check_hidden(hidden, layer: nn.Linear, who: str, dims=3) -> None:
    _check_features("hidden", hidden, layer.in_features, layer.weight, dims=dims, who=who)  # (B, T, H)
    if dims == 3 and hidden.shape[1] == 0:
        raise ValueError(f"{who}: hidden has no positions (T = 0)")


def _check_ids(config: BertConfig, input_ids, token_type_ids, who: str, *, token_types_required=False,
               labels=None) -> None:
    """input_ids, token_type_ids (and MLM labels): (B, T) integer tensors of ids in range; one host sync."""
    check_tensor("input_ids", input_ids, dims=2, dtype="int", who=who)
    B, T = input_ids.shape
    if T == 0:
        raise ValueError(f"{who}: input_ids has no tokens (T = 0)")
    if T > config.max_position_embeddings:
        raise ValueError(f"{who}: sequence length {T} exceeds max_position_embeddings={config.max_position_embeddings}")
    if token_type_ids is not None or token_types_required:
        check_tensor("token_type_ids", token_type_ids, dtype="int", who=who)
        if token_type_ids.shape != input_ids.shape:
            raise ValueError(f"{who}: token_type_ids must have shape {tuple(input_ids.shape)}, "
                             f"got {tuple(token_type_ids.shape)}")
    if labels is not None:
        check_tensor("labels", labels, dtype=torch.long, who=who)
        if labels.shape != input_ids.shape:
            raise ValueError(f"{who}: labels must have shape {tuple(input_ids.shape)}, got {tuple(labels.shape)}")
    ok = ((input_ids >= 0) & (input_ids < config.vocab_size)).all()
    if token_type_ids is not None:
        ok &= ((token_type_ids >= 0) & (token_type_ids < config.type_vocab_size)).all()
    if labels is not None:
        ok &= (((labels >= 0) & (labels < config.vocab_size)) | (labels == -100)).all()
    if not bool(ok):  # the precise message
        for name, t, n, allow in (("input_ids", input_ids, config.vocab_size, ()),
                                  ("token_type_ids", token_type_ids, config.type_vocab_size, ()),
                                  ("labels", labels, config.vocab_size, (-100,))):
            if t is not None:
                check_ids(name, t, n, allow=allow, who=who)


def _padding_mask(attention_mask, shape, who: str) -> torch.Tensor | None:
    """``attention_mask`` (B, T) of 1 = token, 0 = padding (bool, int or float) -> bool mask, True = padding."""
    if attention_mask is None:
        return None
    check_tensor("attention_mask", attention_mask, dtype=("bool", "int", "float"), who=who)
    if attention_mask.shape != shape:
        raise ValueError(f"{who}: attention_mask must have shape {tuple(shape)} (1 = token, 0 = padding), "
                         f"got {tuple(attention_mask.shape)}")
    key_padding_mask = attention_mask == 0                      # (B, T) True = padding
    if not bool((key_padding_mask | (attention_mask == 1)).all()):
        raise ValueError(f"{who}: attention_mask must contain only 1 (token) and 0 (padding)")
    return key_padding_mask


class BERT(nn.Module):
    """The BERT encoder. ``forward(input_ids, token_type_ids=None, attention_mask=None)
    -> (hidden (B, T, H), pooled (B, H))``."""

    def __init__(self, config: BertConfig, *, add_pooler: bool = True) -> None:
        super().__init__()
        _check_config(config, "BERT")
        check_bool("add_pooler", add_pooler, who="BERT")
        self.config = c = config
        self.embeddings = BertEmbeddings(c)
        self.layers = nn.ModuleList(
            EncoderLayer(c.hidden_size, c.num_attention_heads, c.intermediate_size, dropout=c.hidden_dropout_prob,
                         attn_dropout=c.attention_probs_dropout_prob, activation=c.hidden_act, norm_first=c.norm_first,
                         layer_norm_eps=c.layer_norm_eps)
            for _ in range(c.num_hidden_layers))
        # A pre-norm stack adds its sub-layers' outputs to an un-normalised residual stream.
        self.final_norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps) if c.norm_first else None
        self.pooler = BertPooler(c.hidden_size) if add_pooler else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """BERT initialisation: N(0, 0.02) weights and embeddings, zero biases, padding row zero."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
                if m.padding_idx is not None:
                    m.weight[m.padding_idx].zero_()
            elif isinstance(m, LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """input_ids, token_type_ids, attention_mask: (B, T). Returns (hidden (B, T, H), pooled (B, H))."""
        _check_ids(self.config, input_ids, token_type_ids, "BERT")
        key_padding_mask = _padding_mask(attention_mask, input_ids.shape, "BERT")  # (B, T) True = padding
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)                   # one segment
        x = self.embeddings(input_ids, token_type_ids)                     # (B, T, H)
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask)
        if self.final_norm is not None:
            x = self.final_norm(x)
        pooled = self.pooler(x) if self.pooler is not None else None
        return x, pooled


class MaskedLMHead(nn.Module):
    """Linear -> activation -> LayerNorm -> decoder (weights tied to the word embeddings) + bias.

    ``forward(hidden (B, T, H)) -> logits (B, T, V)`` (any leading shape: ``(..., H) -> (..., V)``).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        _check_config(config, "MaskedLMHead")
        H, V = config.hidden_size, config.vocab_size
        self.transform = nn.Linear(H, H)
        self.act = get_activation(config.hidden_act)
        self.norm = LayerNorm(H, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(H, V, bias=False)
        self.bias = nn.Parameter(torch.zeros(V))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        _check_hidden(hidden, self.transform, "MaskedLMHead", dims=None)  # (..., H)
        return self.decoder(self.norm(self.act(self.transform(hidden)))) + self.bias


class BertForMaskedLM(nn.Module):
    """BERT + masked-language-model head.

    ``forward(input_ids, token_type_ids=None, attention_mask=None, labels=None) -> (logits (B, T, V), loss)``;
    ``labels`` (B, T) hold the original ids at masked positions and -100 elsewhere; ``loss`` is the
    mean cross-entropy over the positions whose label is not -100 (None without labels).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        _check_config(config, "BertForMaskedLM")
        self.config = config
        self.bert = BERT(config)
        self.mlm_head = MaskedLMHead(config)
        with torch.no_grad():
            nn.init.normal_(self.mlm_head.transform.weight, std=0.02)
            nn.init.zeros_(self.mlm_head.transform.bias)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Make the output matrix the word-embedding matrix (one shared Parameter)."""
        self.mlm_head.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if labels is not None:  # checked before the encoder runs
            _check_ids(self.config, input_ids, token_type_ids, "BertForMaskedLM", labels=labels)
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.mlm_head(hidden)                                      # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return logits, loss
