"""Counting parameters, memory and FLOPs of the three architectures, from their configs alone.

Parameter counts (C = d_model, F = d_ff, L = layers, V = vocabulary, P = positions; biases on):

* one attention module:      4C² + 4C            (Q, K, V, output projections)
* one FFN:                   2CF + F + C
* one LayerNorm:             2C
* GPT block:                 4C² + 4C + 2C·4C + 4C + C + 2·2C = 12C² + 13C      (F = 4C)
* GPT:                       VC + PC + L(12C² + 13C) + 2C       (lm_head tied: not counted again)
* BERT encoder:              (V + P + types)C + 2C + L(4C² + 2CF + F + 9C) + [pooler C² + C]
* encoder–decoder layer:     an encoder layer + one more attention and LayerNorm.

FLOPs: a matrix multiply of (m × k) by (k × n) costs 2mkn floating-point operations (one multiply
and one add per term). Per token, every weight matrix of the model is used once in a
multiply-add, so the forward pass costs about 2N FLOPs, N the number of matmul weights; attention
adds QKᵀ and AV: 2·2·T·C per layer for a context of T. The backward pass costs twice the forward
(a gradient for the input AND for the weight of each matmul), hence training ≈ 6N per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lmlib.validation import check_bool, check_choice, check_int

__all__ = [
    "attention_params", "ffn_params", "layer_norm_params", "gpt_block_params", "gpt_params", "bert_params",
    "encoder_layer_params", "decoder_layer_params", "transformer_params", "count_params",
    "gpt_matmul_params", "gpt_flops_per_token", "count_matmul_flops", "MemoryEstimate", "gpt_memory",
    "MIXED_PRECISION_TRAINING_BYTES",
]


def _check_model(model, who: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who}: model must be a torch.nn.Module, got {type(model).__name__}")


def _check_config(config, kind: str, who: str) -> None:
    """``config`` must be an instance of ``kind`` ("GPTConfig", "BertConfig" or "TransformerConfig")."""
    from lmlib.bert import BertConfig
    from lmlib.gpt import GPTConfig
    from lmlib.transformer import TransformerConfig

    cls = {"GPTConfig": GPTConfig, "BertConfig": BertConfig, "TransformerConfig": TransformerConfig}[kind]
    if not isinstance(config, cls):
        raise TypeError(f"{who}: config must be a {kind}, got {type(config).__name__}")


def _check_dims(who: str, bias, **sizes) -> None:
    for name, n in sizes.items():
        check_int(name, n, min=1, who=who)
    check_bool("bias", bias, who=who)


def count_params(model: nn.Module) -> int:
    """``sum(p.numel())`` over the model's parameters (a tied tensor counts once)."""
    _check_model(model, "count_params")
    return sum(p.numel() for p in model.parameters())


def attention_params(d_model: int, bias: bool = True) -> int:
    _check_dims("attention_params", bias, d_model=d_model)
    return 4 * d_model * d_model + (4 * d_model if bias else 0)


def ffn_params(d_model: int, d_ff: int, bias: bool = True) -> int:
    _check_dims("ffn_params", bias, d_model=d_model, d_ff=d_ff)
    return 2 * d_model * d_ff + ((d_ff + d_model) if bias else 0)


def layer_norm_params(d_model: int, bias: bool = True) -> int:
    _check_dims("layer_norm_params", bias, d_model=d_model)
    return 2 * d_model if bias else d_model


def gpt_block_params(n_embd: int, bias: bool = True) -> int:
    """12C² + 13C with biases (12C² + 2C without)."""
    check_int("n_embd", n_embd, min=1, who="gpt_block_params")
    check_bool("bias", bias, who="gpt_block_params")
    return attention_params(n_embd, bias) + ffn_params(n_embd, 4 * n_embd, bias) + 2 * layer_norm_params(n_embd, bias)


def gpt_params(config, *, non_embedding: bool = False) -> int:
    """Parameters of :class:`lmlib.gpt.GPT` for a :class:`~lmlib.gpt.GPTConfig` (tied lm_head counted once)."""
    _check_config(config, "GPTConfig", "gpt_params")
    check_bool("non_embedding", non_embedding, who="gpt_params")
    c = config
    n = c.n_layer * gpt_block_params(c.n_embd, c.bias) + layer_norm_params(c.n_embd, c.bias)
    if not non_embedding:
        n += c.vocab_size * c.n_embd + c.block_size * c.n_embd
    return n


def encoder_layer_params(d_model: int, d_ff: int, bias: bool = True) -> int:
    _check_dims("encoder_layer_params", bias, d_model=d_model, d_ff=d_ff)
    return attention_params(d_model, bias) + ffn_params(d_model, d_ff, bias) + 2 * layer_norm_params(d_model, bias)


def decoder_layer_params(d_model: int, d_ff: int, bias: bool = True) -> int:
    _check_dims("decoder_layer_params", bias, d_model=d_model, d_ff=d_ff)
    return 2 * attention_params(d_model, bias) + ffn_params(d_model, d_ff, bias) + 3 * layer_norm_params(d_model, bias)


def bert_params(config, *, pooler: bool = True, mlm_head: bool = False) -> int:
    """Parameters of :class:`lmlib.bert.BERT` (``mlm_head=True``: of :class:`~lmlib.bert.BertForMaskedLM`)."""
    _check_config(config, "BertConfig", "bert_params")
    check_bool("pooler", pooler, who="bert_params")
    check_bool("mlm_head", mlm_head, who="bert_params")
    c = config
    H = c.hidden_size
    n = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * H + layer_norm_params(H)
    n += c.num_hidden_layers * encoder_layer_params(H, c.intermediate_size)
    if pooler:
        n += H * H + H
    if mlm_head:  # transform (H×H + H), LayerNorm, output bias V; decoder matrix tied
        n += H * H + H + layer_norm_params(H) + c.vocab_size
    return n


def transformer_params(config) -> int:
    """Parameters of :class:`lmlib.transformer.Transformer` for a ``TransformerConfig``."""
    _check_config(config, "TransformerConfig", "transformer_params")
    c = config
    d = c.d_model
    n = c.src_vocab_size * d + (0 if c.share_embeddings else c.tgt_vocab_size * d)
    n += c.n_encoder_layers * encoder_layer_params(d, c.d_ff) + c.n_decoder_layers * decoder_layer_params(d, c.d_ff)
    if c.norm_first:  # final LayerNorm after each pre-norm stack
        n += 2 * layer_norm_params(d)
    if not c.tie_output:
        n += c.tgt_vocab_size * d
    return n


def gpt_matmul_params(config) -> int:
    """Weights that take part in a matrix multiply for every token: 12·L·C² + V·C (blocks + lm_head)."""
    _check_config(config, "GPTConfig", "gpt_matmul_params")
    return 12 * config.n_layer * config.n_embd ** 2 + config.vocab_size * config.n_embd


def gpt_flops_per_token(config, seq_len: int | None = None, *, training: bool = False) -> int:
    """Matmul FLOPs per token of a GPT on sequences of ``seq_len`` (default ``block_size``).

    forward = 2·(12LC² + VC) + 4·L·T·C   (weights, then QKᵀ and AV over T keys, no causal saving);
    training (forward + backward) = 3 × forward.
    """
    _check_config(config, "GPTConfig", "gpt_flops_per_token")
    if seq_len is not None:
        check_int("seq_len", seq_len, min=1, who="gpt_flops_per_token")
    check_bool("training", training, who="gpt_flops_per_token")
    T = config.block_size if seq_len is None else seq_len
    fwd = 2 * gpt_matmul_params(config) + 4 * config.n_layer * T * config.n_embd
    return 3 * fwd if training else fwd


def count_matmul_flops(model: nn.Module, *args, backward: bool = False, **kwargs) -> int:
    """FLOPs of the matrix multiplies run by ``model(*args, **kwargs)`` (and ``.backward()`` of the
    loss, the second output, when ``backward``), counted by ``torch.utils.flop_counter``.

    Attention is switched to its explicit path during the count (PyTorch's fused CPU kernel is not
    counted by the flop counter), then restored.
    """
    from torch.utils.flop_counter import FlopCounterMode
    from lmlib.attention import MultiHeadAttention

    _check_model(model, "count_matmul_flops")
    check_bool("backward", backward, who="count_matmul_flops")
    mhas = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    saved = [m.use_fused for m in mhas]
    try:
        for m in mhas:
            m.use_fused = False
        with FlopCounterMode(display=False) as counter:
            out = model(*args, **kwargs)
            if backward:
                loss = out[1] if isinstance(out, tuple) else out
                if loss is None:
                    raise ValueError("count_matmul_flops(backward=True) needs the model to return a loss")
                loss.backward()
        return int(counter.get_total_flops())
    finally:
        for m, s in zip(mhas, saved):
            m.use_fused = s


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed for the weights alone (``bytes_per_param`` each), and for AdamW training state."""

    n_params: int
    bytes_per_param: int
    weights_bytes: int
    training_bytes: int

    def gib(self, what: str = "weights") -> float:
        """``weights_bytes`` or ``training_bytes`` in GiB."""
        check_choice("what", what, ("weights", "training"), who="MemoryEstimate.gib")
        return getattr(self, f"{what}_bytes") / 2**30


#: bytes per parameter of AdamW training in mixed precision: 16-bit weights and gradients (2 + 2)
#: for the matmuls, float32 master weights and two float32 moments (4 + 4 + 4)
MIXED_PRECISION_TRAINING_BYTES = 16


def gpt_memory(config, *, dtype: torch.dtype = torch.float32, mixed_precision: bool = False) -> MemoryEstimate:
    """Memory of a GPT's parameters in ``dtype``, and of its AdamW training state. Activations are
    not included.

    - ``mixed_precision=False``: everything in ``dtype`` (weights + gradients + two moment
      buffers = 4 copies), e.g. 16 bytes per parameter in float32.
    - ``mixed_precision=True`` (``dtype`` a 16-bit type): mixed-precision training as it is
      done in practice (Micikevicius et al., 2018): the matmuls use 16-bit weights and
      gradients, but the optimiser updates float32 *master* weights with float32 moments,
      because a 16-bit weight cannot absorb an update much smaller than itself. That is
      2 + 2 + 4 + 4 + 4 = 16 bytes per parameter, no less than float32 training
      (``torch.autocast`` keeps float32 weights and gradients and casts on the fly: 16 bytes too).
      ``weights_bytes`` is then the 16-bit copy (what inference needs).
    """
    _check_config(config, "GPTConfig", "gpt_memory")
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"gpt_memory: dtype must be a torch.dtype, got {type(dtype).__name__} {dtype!r}")
    check_bool("mixed_precision", mixed_precision, who="gpt_memory")
    b = torch.empty((), dtype=dtype).element_size()
    if mixed_precision and (b != 2 or not dtype.is_floating_point):
        raise ValueError(f"gpt_memory: mixed_precision=True needs a 16-bit dtype (torch.bfloat16 or "
                         f"torch.float16), got dtype={dtype}")
    n = gpt_params(config)
    training = MIXED_PRECISION_TRAINING_BYTES * n if mixed_precision else 4 * n * b
    return MemoryEstimate(n, b, n * b, training)
