"""Converting the course's Llama-style decoder to and from Hugging Face ``transformers`` models.

:class:`lmlib.llama.Llama` and ``LlamaForCausalLM`` (also ``Qwen2ForCausalLM`` and
``MistralForCausalLM``, the same block with other switches) compute the same function with the same
tensors: only the names differ. As in :mod:`lmlib.hf`, each conversion is an explicit key table
applied with strict loading on both sides, and a setting one side cannot express is a ValueError
naming the field, never a silent drop. Nothing here downloads anything.

The config fields
-----------------

=========================  ===========================  ==========================================
:class:`LlamaConfig`       ``transformers`` config       note
=========================  ===========================  ==========================================
``vocab_size``             ``vocab_size``
``block_size``             ``max_position_embeddings``
``n_layer``                ``num_hidden_layers``
``n_head``                 ``num_attention_heads``
``n_kv_head``              ``num_key_value_heads``
``n_embd``                 ``hidden_size``
``head_dim``               ``head_dim``                  LlamaConfig still needs ``hidden_size % heads == 0``
``ffn_hidden``             ``intermediate_size``         ``hidden_act`` must be ``"silu"`` (SwiGLU)
``rope_base``              ``rope_parameters``           ``{"rope_type": "default", "rope_theta": base}``
``norm_eps``               ``rms_norm_eps``
``tie_embeddings``         ``tie_word_embeddings``
``bias``                   ``attention_bias`` and        Llama only: biases on q, k, v, o and on the
                           ``mlp_bias``                  three FFN matrices (RMSNorm has no bias)
``qkv_bias``               (Qwen2 always)                biases on q, k, v only: Qwen2's attention
``sliding_window``         ``sliding_window``            Mistral; Qwen2 with ``use_sliding_window``
                                                         and ``max_window_layers=0`` (every layer)
=========================  ===========================  ==========================================

In ``transformers`` 5 the RoPE base is no longer an attribute ``rope_theta``: a ``rope_theta=``
argument is moved into the dict ``config.rope_parameters`` (which also holds the old
``rope_scaling``: ``rope_type`` is ``"default"`` for plain RoPE, and ``"linear"``, ``"dynamic"``,
``"yarn"``, ``"llama3"``... for the context-extension schemes, which we refuse). Both ``eager`` and
``sdpa`` attention of transformers 5 honour a sliding window (the window is built into the mask
they are given); a model built from a config on the CPU uses ``sdpa``. Llama's ``pretraining_tp``
is not read by the transformers 5 model code, so it is ignored.

The state dict (layer ``i``; ``.weight``, and ``.bias`` where the config has biases)::

    wte.weight                      model.embed_tokens.weight
    blocks.i.norm1                  model.layers.i.input_layernorm
    blocks.i.self_attn.q_proj       model.layers.i.self_attn.q_proj      (also k_proj, v_proj)
    blocks.i.self_attn.out_proj     model.layers.i.self_attn.o_proj
    blocks.i.norm2                  model.layers.i.post_attention_layernorm
    blocks.i.ffn.gate_proj          model.layers.i.mlp.gate_proj         (also up_proj, down_proj)
    norm_f.weight                   model.norm.weight
    lm_head.weight                  lm_head.weight                       (= the embedding when tied)

Two RoPE layouts
----------------

RoPE rotates pairs of coordinates of each query and key head (size ``hs``) by the angle
``p * base^(-2j/hs)`` at position ``p``. *Which* coordinates form pair ``j`` is a convention:

* **rotate-half** (GPT-NeoX, Hugging Face Llama, :class:`lmlib.embeddings.RotaryEmbedding`): pair
  ``j`` is ``(j, j + hs/2)``: the first half of the head is rotated against the second half;
* **interleaved** (the RoFormer paper, Meta's original Llama code and checkpoints): pair ``j`` is
  ``(2j, 2j + 1)``: neighbours, as in a complex number ``x[2j] + i x[2j+1]`` (:func:`rope_interleaved`).

The two differ only by the order of the coordinates inside each head, and the order of a head's
coordinates is the order of the output rows of ``q_proj`` and ``k_proj``. So a checkpoint trained
with the interleaved layout works in a rotate-half model once the rows of each head of ``W_q`` and
``W_k`` are reordered ``[0, 2, 4, ..., hs-2, 1, 3, ..., hs-1]`` (:func:`rope_interleaved_to_half`;
:func:`rope_half_to_interleaved` is its inverse). The attention scores ``q . k`` are unchanged,
because both q and k are permuted the same way and a dot product does not care about the order of
the coordinates. Values and ``o_proj`` are not rotated and stay as they are. (This is what
``transformers``' script for converting Meta's Llama weights does.)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lmlib.hf import _check_state, _embedding_size, _need, _strict_load
from lmlib.validation import check_choice, check_finite, check_float, check_int, check_tensor

__all__ = [
    "llama_config_to_hf", "llama_config_from_hf", "llama_state_to_hf", "llama_state_from_hf",
    "llama_to_hf", "llama_from_hf",
    "rope_interleaved_to_half", "rope_half_to_interleaved", "rope_interleaved",
]

ARCHS = ("llama", "qwen2", "mistral")

# (ours, theirs) inside one block; each name is an nn.Linear or RMSNorm on both sides
_LAYER_KEYS = [
    ("norm1", "input_layernorm"),
    ("self_attn.q_proj", "self_attn.q_proj"),
    ("self_attn.k_proj", "self_attn.k_proj"),
    ("self_attn.v_proj", "self_attn.v_proj"),
    ("self_attn.out_proj", "self_attn.o_proj"),
    ("norm2", "post_attention_layernorm"),
    ("ffn.gate_proj", "mlp.gate_proj"),
    ("ffn.up_proj", "mlp.up_proj"),
    ("ffn.down_proj", "mlp.down_proj"),
]
_TOP_KEYS = [
    ("wte.weight", "model.embed_tokens.weight"),
    ("norm_f.weight", "model.norm.weight"),
    ("lm_head.weight", "lm_head.weight"),
]
# the config fields that llama_config_to_hf sets itself (``extra`` may not override them)
_MAPPED_HF_FIELDS = (
    "vocab_size", "max_position_embeddings", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "hidden_size", "head_dim", "intermediate_size", "hidden_act", "rope_parameters", "rope_theta", "rope_scaling",
    "rms_norm_eps", "tie_word_embeddings", "attention_bias", "mlp_bias", "attention_dropout", "sliding_window",
    "use_sliding_window", "max_window_layers", "layer_types",
)


def _hf_classes():
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM)
    return {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
            "mistral": (MistralConfig, MistralForCausalLM)}


# -------------------------------------------------------------------------------------------------
# Configs
# -------------------------------------------------------------------------------------------------

def llama_config_to_hf(config, arch: str = "llama", **extra):
    """The ``transformers`` config (``LlamaConfig``, ``Qwen2Config`` or ``MistralConfig``, by
    ``arch``) of a :class:`lmlib.llama.LlamaConfig`; see the table in the module docstring.

    ``extra`` sets fields that do not change the function (e.g. ``eos_token_id``, ``pad_token_id``).
    ValueError, naming the field, for a setting the chosen architecture cannot express: LayerNorm,
    learned positions, a GELU FFN, QK-norm, dropout; for Llama ``qkv_bias`` without ``bias`` and a
    sliding window; for Qwen2 ``bias`` and ``qkv_bias=False``; for Mistral any bias.
    """
    from lmlib.llama import LlamaConfig

    who = "llama_config_to_hf"
    if not isinstance(config, LlamaConfig):
        raise TypeError(f"{who}: config must be an lmlib.llama.LlamaConfig, got {type(config).__name__}")
    check_choice("arch", arch, ARCHS, who=who)
    for k in extra:
        if k in _MAPPED_HF_FIELDS:
            raise ValueError(f"{who}: extra field {k!r} is set from the config; change the LlamaConfig instead")
    c = config
    problems = []
    if c.norm != "rms":
        problems.append(f"norm={c.norm!r} ({arch} uses RMSNorm: norm='rms')")
    if c.position != "rope":
        problems.append(f"position={c.position!r} ({arch} uses RoPE: position='rope')")
    if c.ffn != "swiglu":
        problems.append(f"ffn={c.ffn!r} ({arch} uses SwiGLU: ffn='swiglu')")
    if c.qk_norm:
        problems.append(f"qk_norm=True ({arch} has no QK-norm)")
    if c.dropout != 0:
        problems.append(f"dropout={c.dropout} ({arch} has attention dropout only; set dropout=0.0 to export, "
                        "it does not change the function in eval mode)")
    if arch == "llama":
        if c.qkv_bias and not c.bias:
            problems.append("qkv_bias=True without bias (Llama's attention_bias also puts a bias on o_proj; "
                            "use arch='qwen2')")
        if c.sliding_window is not None:
            problems.append(f"sliding_window={c.sliding_window} (Llama has none; use arch='mistral' or 'qwen2')")
        if c.n_embd % c.n_head:
            problems.append(f"head_dim={c.head_dim} with n_embd={c.n_embd} not divisible by n_head={c.n_head} "
                            "(transformers' LlamaConfig refuses it; use arch='mistral')")
    elif arch == "qwen2":
        if c.bias:
            problems.append("bias=True (Qwen2 has biases on q, k, v only: use qkv_bias=True)")
        if not c.qkv_bias:
            problems.append("qkv_bias=False (Qwen2 always has biases on q, k, v)")
    else:
        if c.bias or c.qkv_bias:
            problems.append(f"{'bias' if c.bias else 'qkv_bias'}=True (Mistral has no biases)")
    if problems:
        raise ValueError(f"{who}: cannot express as {arch}: " + "; ".join(problems))

    kw = dict(vocab_size=c.vocab_size, max_position_embeddings=c.block_size, num_hidden_layers=c.n_layer,
              num_attention_heads=c.n_head, num_key_value_heads=c.n_kv_head, hidden_size=c.n_embd,
              head_dim=c.head_dim, intermediate_size=c.ffn_hidden, hidden_act="silu",
              rope_parameters={"rope_type": "default", "rope_theta": float(c.rope_base)},
              rms_norm_eps=float(c.norm_eps), tie_word_embeddings=c.tie_embeddings, attention_dropout=0.0,
              bos_token_id=None, eos_token_id=None, pad_token_id=None)
    if arch == "llama":
        kw.update(attention_bias=c.bias, mlp_bias=c.bias)
    elif arch == "qwen2":
        window = c.sliding_window is not None
        # layers i >= max_window_layers slide: 0 makes every layer slide, as in our model
        kw.update(use_sliding_window=window, sliding_window=c.sliding_window,
                  max_window_layers=0 if window else c.n_layer)
    else:
        kw.update(sliding_window=c.sliding_window)
    kw.update(extra)
    config_cls, _ = _hf_classes()[arch]
    return config_cls(**kw)


def _rope_base_from_hf(c, who: str) -> float:
    """The RoPE base of a transformers config: ``rope_parameters["rope_theta"]`` (transformers 5),
    or the attribute ``rope_theta`` (older versions); anything but plain RoPE is refused."""
    rp = getattr(c, "rope_parameters", None)
    if rp is None:   # transformers < 5 kept rope_theta and rope_scaling as attributes
        scaling = getattr(c, "rope_scaling", None)
        rp = {"rope_theta": getattr(c, "rope_theta", 10000.0), **(dict(scaling) if scaling else {})}
    if not isinstance(rp, Mapping):
        raise ValueError(f"{who}: rope_parameters must be a dict, got {type(rp).__name__}")
    if any(isinstance(v, Mapping) for v in rp.values()):
        raise ValueError(f"{who}: rope_parameters per layer type ({sorted(rp)}) are not supported")
    kind = rp.get("rope_type", rp.get("type", "default"))
    if kind != "default":
        raise ValueError(f"{who}: rope_parameters has rope_type={kind!r}; only plain RoPE ('default') is supported")
    unknown = sorted(set(rp) - {"rope_type", "type", "rope_theta"})
    if unknown:
        raise ValueError(f"{who}: rope_parameters has {unknown}, which plain RoPE does not use")
    if "rope_theta" not in rp:
        raise ValueError(f"{who}: rope_parameters has no rope_theta")
    return float(check_float("rope_parameters['rope_theta']", rp["rope_theta"], min=0.0, min_open=True, who=who))


def llama_config_from_hf(hf_config):
    """The :class:`lmlib.llama.LlamaConfig` of a ``transformers`` ``LlamaConfig``, ``Qwen2Config``
    or ``MistralConfig``; ValueError, naming the field, for a setting our model cannot express
    (``hidden_act`` other than silu, RoPE scaling, attention dropout, Llama's ``mlp_bias`` or
    ``attention_bias`` alone, Qwen2 with sliding and full layers mixed)."""
    from lmlib.llama import LlamaConfig

    who = "llama_config_from_hf"
    classes = _hf_classes()
    arch = next((a for a, (cfg, _) in classes.items() if isinstance(hf_config, cfg)), None)
    if arch is None:
        raise TypeError(f"{who}: hf_config must be a transformers LlamaConfig, Qwen2Config or MistralConfig, got "
                        f"{type(hf_config).__name__}")
    c = hf_config
    for f in ("vocab_size", "max_position_embeddings", "num_hidden_layers", "num_attention_heads", "hidden_size",
              "num_key_value_heads", "intermediate_size"):
        check_int(f"hf_config.{f}", getattr(c, f, None), min=1, who=who)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    check_int("hf_config.head_dim", head_dim, min=1, who=who)
    problems = []
    if c.hidden_act != "silu":
        problems.append(f"hidden_act={c.hidden_act!r} (our SwiGLU uses silu)")
    if c.attention_dropout:
        problems.append(f"attention_dropout={c.attention_dropout} (not supported)")
    bias = qkv_bias = False
    sliding_window = None
    if arch == "llama":
        if c.attention_bias and c.mlp_bias:
            bias = True
        elif c.attention_bias:
            problems.append("attention_bias=True without mlp_bias (a bias on o_proj alone is not supported; "
                            "our bias=True puts biases on attention and FFN)")
        elif c.mlp_bias:
            problems.append("mlp_bias=True without attention_bias (not supported)")
    elif arch == "qwen2":
        qkv_bias = True
        kinds = set(c.layer_types)
        if len(c.layer_types) != c.num_hidden_layers:
            problems.append(f"layer_types has {len(c.layer_types)} entries for {c.num_hidden_layers} layers")
        if kinds == {"sliding_attention"}:
            if c.sliding_window is None:
                problems.append("layer_types are sliding_attention but sliding_window is None")
            sliding_window = c.sliding_window
        elif kinds - {"full_attention"}:
            problems.append(f"layer_types={sorted(kinds)} (max_window_layers={c.max_window_layers}): our model "
                            "slides in every layer or in none")
    else:
        sliding_window = c.sliding_window
    if problems:
        raise ValueError(f"{who}: cannot convert this {type(c).__name__}: " + "; ".join(problems))
    rope_base = _rope_base_from_hf(c, who)
    return LlamaConfig(vocab_size=c.vocab_size, block_size=c.max_position_embeddings, n_layer=c.num_hidden_layers,
                       n_head=c.num_attention_heads, n_embd=c.hidden_size, n_kv_head=c.num_key_value_heads,
                       head_dim=head_dim, ffn_hidden=c.intermediate_size, rope_base=rope_base,
                       norm_eps=float(c.rms_norm_eps), tie_embeddings=bool(c.tie_word_embeddings), bias=bias,
                       qkv_bias=qkv_bias, sliding_window=sliding_window)


# -------------------------------------------------------------------------------------------------
# State dicts
# -------------------------------------------------------------------------------------------------

def _llama_shapes(sd, n_layer: int, *, hf: bool, who: str) -> dict[str, tuple]:
    """The expected shape of every tensor, with the sizes read off the embedding and layer 0
    (and the biases expected where layer 0 has them); ``_check_state`` then checks every key."""
    n_layer = check_int("n_layer", n_layer, min=1, who=who)
    emb, norm_f = ("model.embed_tokens.weight", "model.norm.weight") if hf else ("wte.weight", "norm_f.weight")
    V, C = _embedding_size(sd, emb, who)
    pre = "model.layers.0." if hf else "blocks.0."
    names = [t if hf else o for o, t in _LAYER_KEYS]

    def rows(name: str) -> int | None:
        t = sd.get(pre + name + ".weight")
        return t.shape[0] if isinstance(t, torch.Tensor) and t.dim() == 2 else None

    q, kv, ffn = rows(names[1]), rows(names[2]), rows(names[6])
    shape = {names[0]: (C,), names[1]: (q, C), names[2]: (kv, C), names[3]: (kv, C), names[4]: (C, q),
             names[5]: (C,), names[6]: (ffn, C), names[7]: (ffn, C), names[8]: (C, ffn)}
    bias = {names[1]: (q,), names[2]: (kv,), names[3]: (kv,), names[4]: (C,), names[6]: (ffn,),
            names[7]: (ffn,), names[8]: (C,)}
    shapes = {emb: (V, C), norm_f: (C,), "lm_head.weight": (V, C)}
    for i in range(n_layer):
        p = f"model.layers.{i}." if hf else f"blocks.{i}."
        for n, s in shape.items():
            shapes[p + n + ".weight"] = s
        for n, s in bias.items():
            if pre + n + ".bias" in sd:
                shapes[p + n + ".bias"] = s
    return shapes


def llama_state_to_hf(sd: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """Map a :class:`~lmlib.llama.Llama` state dict to ``LlamaForCausalLM`` (Qwen2, Mistral) keys.

    Only names change (every matrix is an ``nn.Linear`` on both sides); biases are mapped where the
    state dict has them; ``lm_head.weight`` is passed on (the embedding itself when tied)."""
    who = "llama_state_to_hf"
    shapes = _llama_shapes(sd, n_layer, hf=False, who=who)
    _check_state(sd, shapes, who)
    out = {t: _need(sd, o, who) for o, t in _TOP_KEYS}
    for i in range(n_layer):
        p, h = f"blocks.{i}.", f"model.layers.{i}."
        for ours, theirs in _LAYER_KEYS:
            for kind in ("weight", "bias"):
                if f"{p}{ours}.{kind}" in sd:
                    out[f"{h}{theirs}.{kind}"] = sd[f"{p}{ours}.{kind}"]
    return out


def llama_state_from_hf(sd: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """Map a ``LlamaForCausalLM`` (Qwen2, Mistral) state dict to :class:`~lmlib.llama.Llama` keys.

    A state dict without ``lm_head.weight`` (a tied checkpoint often stores the matrix once) gets
    the embedding as its ``lm_head.weight``."""
    who = "llama_state_from_hf"
    shapes = _llama_shapes(sd, n_layer, hf=True, who=who)
    _check_state(sd, shapes, who, optional=("lm_head.weight",))
    out = {o: _need(sd, t, who) for o, t in _TOP_KEYS if t in sd}
    out.setdefault("lm_head.weight", out["wte.weight"])
    for i in range(n_layer):
        p, h = f"blocks.{i}.", f"model.layers.{i}."
        for ours, theirs in _LAYER_KEYS:
            for kind in ("weight", "bias"):
                if f"{h}{theirs}.{kind}" in sd:
                    out[f"{p}{ours}.{kind}"] = sd[f"{h}{theirs}.{kind}"]
    return out


# -------------------------------------------------------------------------------------------------
# Models
# -------------------------------------------------------------------------------------------------

def llama_to_hf(model, arch: str = "llama", **config_extra):
    """A ``LlamaForCausalLM`` / ``Qwen2ForCausalLM`` / ``MistralForCausalLM`` (by ``arch``) computing
    the same function as ``model`` (a :class:`lmlib.llama.Llama`), float32, in eval mode.

    ``config_extra`` goes to the config (e.g. ``eos_token_id``); ``attn_implementation`` (e.g.
    ``"eager"``, ``"sdpa"``) chooses transformers' attention kernel."""
    from lmlib.llama import Llama

    who = "llama_to_hf"
    if not isinstance(model, Llama):
        raise TypeError(f"{who}: model must be an lmlib.llama.Llama, got {type(model).__name__}")
    attn = config_extra.pop("attn_implementation", None)
    hf_config = llama_config_to_hf(model.config, arch, **config_extra)
    _, model_cls = _hf_classes()[arch]
    hf = model_cls(hf_config)
    if attn is not None:
        hf.set_attn_implementation(attn)
    sd = {k: v.detach().clone().float() for k, v in llama_state_to_hf(model.state_dict(), model.config.n_layer).items()}
    _strict_load(hf, sd, who)
    if model.config.tie_embeddings and hf.lm_head.weight is not hf.model.embed_tokens.weight:
        hf.lm_head.weight = hf.model.embed_tokens.weight
    hf.float().eval()
    return hf.to(next(model.parameters()).device)


def llama_from_hf(hf_model):
    """A :class:`lmlib.llama.Llama` (float32, eval mode) with the weights of a ``LlamaForCausalLM``,
    ``Qwen2ForCausalLM`` or ``MistralForCausalLM``."""
    from lmlib.llama import Llama

    who = "llama_from_hf"
    classes = tuple(m for _, m in _hf_classes().values())
    if not isinstance(hf_model, classes):
        raise TypeError(f"{who}: hf_model must be a transformers LlamaForCausalLM, Qwen2ForCausalLM or "
                        f"MistralForCausalLM, got {type(hf_model).__name__}")
    config = llama_config_from_hf(hf_model.config)
    hf_sd = hf_model.state_dict()
    if config.tie_embeddings and "lm_head.weight" in hf_sd and \
            not torch.equal(hf_sd["lm_head.weight"], hf_sd["model.embed_tokens.weight"]):
        raise ValueError(f"{who}: tie_word_embeddings is set but lm_head.weight differs from "
                         "model.embed_tokens.weight")
    sd = llama_state_from_hf(hf_sd, config.n_layer)
    model = Llama(config)
    _strict_load(model, {k: v.detach().clone().float() for k, v in sd.items()}, who)
    if config.tie_embeddings:
        model.lm_head.weight = model.wte.weight  # keep the tie (load_state_dict copies into the shared tensor)
    model.eval()
    return model.to(next(hf_model.parameters()).device)


# -------------------------------------------------------------------------------------------------
# RoPE layouts
# -------------------------------------------------------------------------------------------------

def _check_rope_weight(w, n_heads, who: str) -> int:
    check_tensor("w", w, dims=(1, 2), dtype="float", who=who)
    check_int("n_heads", n_heads, min=1, who=who)
    if w.shape[0] % n_heads or (w.shape[0] // n_heads) % 2:
        raise ValueError(f"{who}: w has {w.shape[0]} rows, which must be n_heads ({n_heads}) heads of an even size")
    return w.shape[0] // n_heads


def _permute_heads(w: torch.Tensor, n_heads: int, order: torch.Tensor) -> torch.Tensor:
    hs = w.shape[0] // n_heads
    per_head = w.reshape(n_heads, hs, *w.shape[1:])       # (n_heads, hs, d) or (n_heads, hs)
    return per_head[:, order].reshape(w.shape).contiguous()


def rope_interleaved_to_half(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the output rows of a q or k projection, ``w: (n_heads * hs, d)`` (or its bias
    ``(n_heads * hs,)``), from the interleaved RoPE layout to rotate-half: within each head the new
    rows are the old rows ``[0, 2, 4, ..., hs-2, 1, 3, ..., hs-1]``, so the old pair
    ``(2j, 2j+1)`` becomes the pair ``(j, j + hs/2)``."""
    hs = _check_rope_weight(w, n_heads, "rope_interleaved_to_half")
    order = torch.cat([torch.arange(0, hs, 2), torch.arange(1, hs, 2)])   # evens, then odds
    return _permute_heads(w, n_heads, order)


def rope_half_to_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of :func:`rope_interleaved_to_half`: within each head the new rows are the old
    rows ``[0, hs/2, 1, hs/2 + 1, ...]``, so the pair ``(j, j + hs/2)`` becomes ``(2j, 2j+1)``."""
    hs = _check_rope_weight(w, n_heads, "rope_half_to_interleaved")
    half = hs // 2
    order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)  # 0, h, 1, h+1, ...
    return _permute_heads(w, n_heads, order)


def rope_interleaved(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """RoPE in the interleaved layout: ``x: (..., T, hs)``, ``positions: (T,)`` integers. The pair
    ``(x[2j], x[2j+1])`` at position ``p`` is rotated by the angle ``p * base^(-2j/hs)``."""
    who = "rope_interleaved"
    check_tensor("x", x, dtype="float", who=who)
    check_finite("x", x, who=who)
    if x.dim() < 2 or x.shape[-1] % 2:
        raise ValueError(f"{who}: x must have shape (..., T, hs) with an even hs, got {tuple(x.shape)}")
    check_tensor("positions", positions, dims=1, dtype="int", sizes={0: x.shape[-2]}, who=who)
    base = check_float("base", base, min=0.0, min_open=True, who=who)
    hs = x.shape[-1]
    inv_freq = base ** (-torch.arange(0, hs, 2, dtype=torch.float32, device=x.device) / hs)    # (hs/2,)
    angle = positions.to(x.device, torch.float32)[:, None] * inv_freq[None, :]                # (T, hs/2)
    cos, sin = angle.cos(), angle.sin()
    x_even, x_odd = x.float()[..., 0::2], x.float()[..., 1::2]                                # (..., T, hs/2)
    out_even = x_even * cos - x_odd * sin
    out_odd = x_even * sin + x_odd * cos
    return torch.stack([out_even, out_odd], dim=-1).flatten(-2).to(x.dtype)                   # (..., T, hs)
