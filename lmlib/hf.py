"""Converting course models to and from Hugging Face ``transformers`` models.

Each conversion is an explicit key mapping (a table you can read), applied with strict loading on
both sides, so a missing, extra or wrongly shaped tensor is an error, never a silent skip.

GPT-2 (``GPT2LMHeadModel``) differs from :class:`lmlib.gpt.GPT` in three ways that matter:

* its attention projects queries, keys and values with ONE matrix ``c_attn`` (C -> 3C), we use three;
* its linear layers are ``Conv1D`` modules that store the weight as ``(in, out)`` and compute
  ``x @ W + b``, the transpose of ``nn.Linear``'s ``(out, in)`` with ``x @ W.T + b``;
* ``lm_head.weight`` is the same tensor as ``transformer.wte.weight`` (tied embeddings) in both.

BERT (``BertModel`` / ``BertForMaskedLM``) uses ``nn.Linear`` throughout, so only the names change.
``BertForMaskedLM`` in ``transformers`` has no pooler; converting it leaves our pooler as initialised
(``bert_from_hf``) or drops it (``bert_to_hf``).

Nothing here downloads anything: the functions take and return model objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

import torch
from torch import nn

from lmlib.validation import check_bool, check_int, check_str

__all__ = [
    "gpt_state_to_hf", "gpt_state_from_hf", "gpt_config_to_hf", "gpt_config_from_hf", "gpt_to_hf", "gpt_from_hf",
    "bert_state_to_hf", "bert_state_from_hf", "bert_config_to_hf", "bert_config_from_hf", "bert_to_hf",
    "bert_from_hf",
]


def _t(w: torch.Tensor) -> torch.Tensor:
    return w.t().contiguous()


def _need(sd: dict, key: str, where: str) -> torch.Tensor:
    if key not in sd:
        raise ValueError(f"{where}: missing tensor {key!r}")
    return sd[key]


def _check_state(sd, shapes: dict[str, tuple], who: str, *, optional: tuple[str, ...] = (),
                 ignored: tuple[str, ...] = ()) -> None:
    """``sd`` must be a mapping of tensors holding every key of ``shapes`` (except ``optional``
    ones), no key outside ``shapes`` (except keys ending with one of ``ignored``), and each with
    the expected shape (``None`` in a shape matches any size). Errors name the offending key."""
    if not isinstance(sd, Mapping):
        raise TypeError(f"{who}: sd must be a state dict (a mapping of names to tensors), got {type(sd).__name__}")
    missing = [k for k in shapes if k not in sd and k not in optional]
    if missing:
        raise ValueError(f"{who}: sd is missing tensor {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                                          if len(missing) > 1 else ""))
    extra = [k for k in sd if k not in shapes and not k.endswith(ignored)]
    if extra:
        raise ValueError(f"{who}: sd has unexpected tensor {extra[0]!r} (is n_layer right?)"
                         + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    for k, want in shapes.items():
        if k not in sd:
            continue
        t = sd[k]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{who}: sd[{k!r}] must be a tensor, got {type(t).__name__}")
        if t.dim() != len(want) or any(w is not None and w != n for w, n in zip(want, t.shape)):
            shown = tuple("*" if w is None else w for w in want)
            raise ValueError(f"{who}: sd[{k!r}] has shape {tuple(t.shape)}, expected {shown}")


def _embedding_size(sd, key: str, who: str) -> tuple[int, int]:
    if not isinstance(sd, Mapping):
        raise TypeError(f"{who}: sd must be a state dict (a mapping of names to tensors), got {type(sd).__name__}")
    t = _need(sd, key, who)
    if not isinstance(t, torch.Tensor) or t.dim() != 2:
        raise ValueError(f"{who}: sd[{key!r}] must be a 2-D embedding matrix, got "
                         f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    return t.shape[0], t.shape[1]


def _gpt_shapes(n_layer: int, C: int, F: int | None, *, hf: bool) -> dict[str, tuple]:
    """The expected shape of every tensor of a GPT (``hf=False``) or GPT2LMHeadModel state dict."""
    pre = "transformer." if hf else ""
    shapes = {pre + "wte.weight": (None, C), pre + "wpe.weight": (None, C), pre + "ln_f.weight": (C,),
              pre + "ln_f.bias": (C,), "lm_head.weight": (None, C)}
    for i in range(n_layer):
        if hf:
            h = f"transformer.h.{i}."
            layer = {"ln_1.weight": (C,), "ln_1.bias": (C,), "ln_2.weight": (C,), "ln_2.bias": (C,),
                     "attn.c_attn.weight": (C, 3 * C), "attn.c_attn.bias": (3 * C,),
                     "attn.c_proj.weight": (C, C), "attn.c_proj.bias": (C,),
                     "mlp.c_fc.weight": (C, F), "mlp.c_fc.bias": (F,),
                     "mlp.c_proj.weight": (F, C), "mlp.c_proj.bias": (C,)}
        else:
            h = f"blocks.{i}."
            layer = {"norm1.weight": (C,), "norm1.bias": (C,), "norm2.weight": (C,), "norm2.bias": (C,),
                     "ffn.fc_in.weight": (F, C), "ffn.fc_in.bias": (F,),
                     "ffn.fc_out.weight": (C, F), "ffn.fc_out.bias": (C,)}
            for n in ("q", "k", "v", "out"):
                layer[f"self_attn.{n}_proj.weight"], layer[f"self_attn.{n}_proj.bias"] = (C, C), (C,)
        shapes.update({h + k: v for k, v in layer.items()})
    return shapes


def _check_gpt_state(sd, n_layer, *, hf: bool, who: str) -> None:
    n_layer = check_int("n_layer", n_layer, min=1, who=who)
    V, C = _embedding_size(sd, "transformer.wte.weight" if hf else "wte.weight", who)
    inner = "transformer.h.0.mlp.c_fc.weight" if hf else "blocks.0.ffn.fc_in.weight"
    t = sd.get(inner)
    F = (t.shape[1] if hf else t.shape[0]) if isinstance(t, torch.Tensor) and t.dim() == 2 else None
    shapes = _gpt_shapes(n_layer, C, F, hf=hf)
    shapes["lm_head.weight"] = (V, C)
    # GPT2LMHeadModel may carry its causal-mask buffers; the lm_head of GPT2Model is absent
    _check_state(sd, shapes, who, optional=("lm_head.weight",) if hf else (),
                 ignored=(".attn.bias", ".attn.masked_bias") if hf else ())


def _check_config_sizes(config, fields: tuple[str, ...], who: str) -> None:
    """Every size field of a config is an int >= 1 (a model with 0 layers converts nothing)."""
    for f in fields:
        check_int(f"config.{f}", getattr(config, f, None), min=1, who=who)


# -------------------------------------------------------------------------------------------------
# GPT <-> GPT2LMHeadModel
# -------------------------------------------------------------------------------------------------

def gpt_config_to_hf(config, **extra):
    """A ``transformers.GPT2Config`` with the shapes of a :class:`lmlib.gpt.GPTConfig`.

    ``extra`` is passed on (e.g. ``eos_token_id=0``). GPT-2 always has biases, so a config with
    ``bias=False`` cannot be expressed and raises ValueError.
    """
    from transformers import GPT2Config
    from lmlib.gpt import GPTConfig

    if not isinstance(config, GPTConfig):
        raise TypeError(f"gpt_config_to_hf: config must be an lmlib.gpt.GPTConfig, got {type(config).__name__}")
    _check_config_sizes(config, ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"), "gpt_config_to_hf")
    if not config.bias:
        raise ValueError("GPT2LMHeadModel always has biases; a GPTConfig with bias=False cannot be converted")
    eos = extra.pop("eos_token_id", None)
    kw = dict(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
              n_layer=config.n_layer, n_head=config.n_head, n_inner=None, activation_function="gelu_new",
              resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout,
              layer_norm_epsilon=config.layer_norm_eps, tie_word_embeddings=True,
              bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    kw.update(extra)
    return GPT2Config(**kw)


def gpt_config_from_hf(hf_config):
    """The :class:`lmlib.gpt.GPTConfig` of a ``GPT2Config``; ValueError for features GPT lacks."""
    from transformers import GPT2Config
    from lmlib.gpt import GPTConfig

    if not isinstance(hf_config, GPT2Config):
        raise TypeError(f"gpt_config_from_hf: hf_config must be a transformers GPT2Config, got "
                        f"{type(hf_config).__name__}")
    _check_config_sizes(hf_config, ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd"), "gpt_config_from_hf")
    c = hf_config
    problems = []
    if c.n_inner not in (None, 4 * c.n_embd):
        problems.append(f"n_inner={c.n_inner} (GPT uses 4 * n_embd = {4 * c.n_embd})")
    if c.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
        problems.append(f"activation_function={c.activation_function!r} (GPT uses the tanh GELU)")
    if getattr(c, "scale_attn_by_inverse_layer_idx", False) or getattr(c, "reorder_and_upcast_attn", False):
        problems.append("scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported")
    if not getattr(c, "scale_attn_weights", True):
        problems.append("scale_attn_weights=False is not supported")
    if not getattr(c, "tie_word_embeddings", True):
        problems.append("tie_word_embeddings=False (GPT ties lm_head to wte)")
    if problems:
        raise ValueError("cannot convert this GPT2Config: " + "; ".join(problems))
    drops = {c.resid_pdrop, c.embd_pdrop, c.attn_pdrop}
    return GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                     n_embd=c.n_embd, dropout=float(max(drops)), bias=True, layer_norm_eps=c.layer_norm_epsilon)


def gpt_state_to_hf(sd: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """Map a :class:`~lmlib.gpt.GPT` state dict to ``GPT2LMHeadModel`` keys and layouts."""
    w = "gpt_state_to_hf"
    _check_gpt_state(sd, n_layer, hf=False, who=w)
    out = {
        "transformer.wte.weight": _need(sd, "wte.weight", w),
        "transformer.wpe.weight": _need(sd, "wpe.weight", w),
        "transformer.ln_f.weight": _need(sd, "ln_f.weight", w),
        "transformer.ln_f.bias": _need(sd, "ln_f.bias", w),
        "lm_head.weight": _need(sd, "wte.weight", w),  # tied
    }
    for i in range(n_layer):
        p, h = f"blocks.{i}.", f"transformer.h.{i}."
        g = lambda k: _need(sd, p + k, w)  # noqa: E731
        out[h + "ln_1.weight"], out[h + "ln_1.bias"] = g("norm1.weight"), g("norm1.bias")
        out[h + "ln_2.weight"], out[h + "ln_2.bias"] = g("norm2.weight"), g("norm2.bias")
        # three (C, C) nn.Linear weights (out, in) -> one Conv1D (in, 3C): concatenate, transpose
        out[h + "attn.c_attn.weight"] = _t(torch.cat([g(f"self_attn.{n}_proj.weight") for n in "qkv"], 0))
        out[h + "attn.c_attn.bias"] = torch.cat([g(f"self_attn.{n}_proj.bias") for n in "qkv"], 0)
        out[h + "attn.c_proj.weight"] = _t(g("self_attn.out_proj.weight"))
        out[h + "attn.c_proj.bias"] = g("self_attn.out_proj.bias")
        out[h + "mlp.c_fc.weight"] = _t(g("ffn.fc_in.weight"))
        out[h + "mlp.c_fc.bias"] = g("ffn.fc_in.bias")
        out[h + "mlp.c_proj.weight"] = _t(g("ffn.fc_out.weight"))
        out[h + "mlp.c_proj.bias"] = g("ffn.fc_out.bias")
    return out


def gpt_state_from_hf(sd: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """Map a ``GPT2LMHeadModel`` (or ``GPT2Model`` with ``transformer.`` prefix) state dict to GPT keys."""
    w = "gpt_state_from_hf"
    _check_gpt_state(sd, n_layer, hf=True, who=w)
    wte = _need(sd, "transformer.wte.weight", w)
    if "lm_head.weight" in sd and not torch.equal(sd["lm_head.weight"], wte):
        raise ValueError("gpt_state_from_hf: lm_head.weight differs from transformer.wte.weight; "
                         "GPT needs tied input/output embeddings")
    out = {
        "wte.weight": wte,
        "wpe.weight": _need(sd, "transformer.wpe.weight", w),
        "ln_f.weight": _need(sd, "transformer.ln_f.weight", w),
        "ln_f.bias": _need(sd, "transformer.ln_f.bias", w),
        "lm_head.weight": wte,
    }
    for i in range(n_layer):
        p, h = f"blocks.{i}.", f"transformer.h.{i}."
        g = lambda k: _need(sd, h + k, w)  # noqa: E731
        out[p + "norm1.weight"], out[p + "norm1.bias"] = g("ln_1.weight"), g("ln_1.bias")
        out[p + "norm2.weight"], out[p + "norm2.bias"] = g("ln_2.weight"), g("ln_2.bias")
        c_attn_w, c_attn_b = g("attn.c_attn.weight"), g("attn.c_attn.bias")   # (C, 3C), (3C,)
        C = c_attn_w.shape[0]
        if c_attn_w.shape != (C, 3 * C):
            raise ValueError(f"gpt_state_from_hf: {h}attn.c_attn.weight has shape {tuple(c_attn_w.shape)}, "
                             f"expected ({C}, {3 * C})")
        for j, n in enumerate("qkv"):
            out[p + f"self_attn.{n}_proj.weight"] = _t(c_attn_w[:, j * C:(j + 1) * C])
            out[p + f"self_attn.{n}_proj.bias"] = c_attn_b[j * C:(j + 1) * C].clone()
        out[p + "self_attn.out_proj.weight"] = _t(g("attn.c_proj.weight"))
        out[p + "self_attn.out_proj.bias"] = g("attn.c_proj.bias")
        out[p + "ffn.fc_in.weight"] = _t(g("mlp.c_fc.weight"))
        out[p + "ffn.fc_in.bias"] = g("mlp.c_fc.bias")
        out[p + "ffn.fc_out.weight"] = _t(g("mlp.c_proj.weight"))
        out[p + "ffn.fc_out.bias"] = g("mlp.c_proj.bias")
    return out


def _strict_load(model: nn.Module, sd: dict[str, torch.Tensor], who: str) -> None:
    """``load_state_dict(strict=True)`` with a shape check first and errors naming the keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    extra = sorted(set(sd) - set(own))
    bad = sorted(f"{k}: got {tuple(sd[k].shape)}, expected {tuple(own[k].shape)}"
                 for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or extra or bad:
        raise ValueError(f"{who}: state dict does not fit the model: missing={missing}, extra={extra}, "
                         f"mis-shaped={bad}")
    with torch.no_grad():
        model.load_state_dict(sd, strict=True)


def gpt_to_hf(model, **config_extra):
    """A ``transformers.GPT2LMHeadModel`` computing the same function as ``model`` (a GPT).

    The result is an ordinary HF model: ``save_pretrained`` / ``from_pretrained`` and ``generate``
    work. ``config_extra`` goes to the ``GPT2Config`` (e.g. ``eos_token_id``).
    """
    from transformers import GPT2LMHeadModel
    from lmlib.gpt import GPT

    if not isinstance(model, GPT):
        raise TypeError(f"gpt_to_hf: model must be an lmlib.gpt.GPT, got {type(model).__name__}")
    hf = GPT2LMHeadModel(gpt_config_to_hf(model.config, **config_extra))
    sd = {k: v.detach().clone() for k, v in gpt_state_to_hf(model.state_dict(), model.config.n_layer).items()}
    _strict_load(hf, sd, "gpt_to_hf")
    if hf.lm_head.weight.data_ptr() != hf.transformer.wte.weight.data_ptr():
        hf.tie_weights()
    hf.train(model.training)
    return hf.to(next(model.parameters()).device)


def gpt_from_hf(hf_model):
    """A :class:`lmlib.gpt.GPT` with the weights of a ``transformers.GPT2LMHeadModel``."""
    from transformers import GPT2LMHeadModel
    from lmlib.gpt import GPT

    if not isinstance(hf_model, GPT2LMHeadModel):
        raise TypeError(f"gpt_from_hf: hf_model must be a transformers GPT2LMHeadModel, got {type(hf_model).__name__}")
    config = gpt_config_from_hf(hf_model.config)
    model = GPT(config)
    sd = gpt_state_from_hf(hf_model.state_dict(), config.n_layer)
    _strict_load(model, {k: v.detach().clone().float() for k, v in sd.items()}, "gpt_from_hf")
    model.lm_head.weight = model.wte.weight  # keep the tie (load_state_dict copies into the shared tensor)
    model.train(hf_model.training)
    return model.to(next(hf_model.parameters()).device)


# -------------------------------------------------------------------------------------------------
# BERT <-> BertModel / BertForMaskedLM
# -------------------------------------------------------------------------------------------------

# (ours, theirs) names inside one encoder layer; all are nn.Linear/LayerNorm on both sides.
_BERT_LAYER_KEYS = [
    ("self_attn.q_proj", "attention.self.query"),
    ("self_attn.k_proj", "attention.self.key"),
    ("self_attn.v_proj", "attention.self.value"),
    ("self_attn.out_proj", "attention.output.dense"),
    ("norm1", "attention.output.LayerNorm"),
    ("ffn.fc_in", "intermediate.dense"),
    ("ffn.fc_out", "output.dense"),
    ("norm2", "output.LayerNorm"),
]
_BERT_EMB_KEYS = [
    ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
    ("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"),
    ("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight"),
    ("embeddings.norm.weight", "embeddings.LayerNorm.weight"),
    ("embeddings.norm.bias", "embeddings.LayerNorm.bias"),
]
_BERT_POOLER_KEYS = [("pooler.dense.weight", "pooler.dense.weight"), ("pooler.dense.bias", "pooler.dense.bias")]
_BERT_MLM_KEYS = [
    ("mlm_head.transform.weight", "cls.predictions.transform.dense.weight"),
    ("mlm_head.transform.bias", "cls.predictions.transform.dense.bias"),
    ("mlm_head.norm.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("mlm_head.norm.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("mlm_head.bias", "cls.predictions.bias"),
]


def _bert_shape(ours: str, H: int, I: int | None, V: int) -> tuple:
    """The shape of one tensor of our BERT, from its name (hidden size H, FFN size I, vocab V)."""
    if ours.endswith("embeddings.weight"):
        return (V, H) if ours.endswith("word_embeddings.weight") else (None, H)
    if ".fc_in." in ours:
        return (I, H) if ours.endswith("weight") else (I,)
    if ".fc_out." in ours:
        return (H, I) if ours.endswith("weight") else (H,)
    if ours.endswith("mlm_head.bias"):
        return (V,)
    if "norm" in ours.rsplit(".", 2)[-2] or ours.endswith("bias"):
        return (H,)
    return (H, H)


def _check_bert_state(sd, n_layer, pooler, mlm, our_prefix, hf_prefix, *, to_hf: bool, who: str):
    """The (ours, theirs) key pairs of a BERT state dict, after checking ``sd`` against them."""
    n_layer = check_int("n_layer", n_layer, min=1, who=who)
    check_bool("pooler", pooler, who=who)
    check_bool("mlm", mlm, who=who)
    check_str("our_prefix", our_prefix, who=who)
    check_str("hf_prefix", hf_prefix, who=who)
    pairs = _bert_pairs(n_layer, pooler=pooler, mlm=mlm, our_prefix=our_prefix, hf_prefix=hf_prefix)
    side = 0 if to_hf else 1
    V, H = _embedding_size(sd, pairs[0][side], who)
    t = sd.get(f"{our_prefix}layers.0.ffn.fc_in.weight" if to_hf else f"{hf_prefix}encoder.layer.0.intermediate.dense.weight")
    I = t.shape[0] if isinstance(t, torch.Tensor) and t.dim() == 2 else None
    shapes = {pair[side]: _bert_shape(pair[0], H, I, V) for pair in pairs}
    # tensors that are legitimately left behind: a tied decoder, a pooler not converted, buffers
    ignored = ["position_ids", "mlm_head.decoder.weight", "cls.predictions.decoder.weight",
               "cls.predictions.decoder.bias"]
    if not pooler:
        ignored += ["pooler.dense.weight", "pooler.dense.bias"]
    _check_state(sd, shapes, who, ignored=tuple(ignored))
    return pairs


def _bert_pairs(n_layer: int, *, pooler: bool, mlm: bool, our_prefix: str, hf_prefix: str):
    pairs = [(our_prefix + a, hf_prefix + b) for a, b in _BERT_EMB_KEYS]
    for i in range(n_layer):
        for a, b in _BERT_LAYER_KEYS:
            for s in ("weight", "bias"):
                pairs.append((f"{our_prefix}layers.{i}.{a}.{s}", f"{hf_prefix}encoder.layer.{i}.{b}.{s}"))
    if pooler:
        pairs += [(our_prefix + a, hf_prefix + b) for a, b in _BERT_POOLER_KEYS]
    if mlm:
        pairs += _BERT_MLM_KEYS
    return pairs


def bert_state_to_hf(sd: dict[str, torch.Tensor], n_layer: int, *, pooler: bool = True, mlm: bool = False,
                     our_prefix: str = "", hf_prefix: str = "") -> dict[str, torch.Tensor]:
    """Rename a BERT state dict to ``transformers`` keys (``hf_prefix="bert."`` inside BertForMaskedLM)."""
    pairs = _check_bert_state(sd, n_layer, pooler, mlm, our_prefix, hf_prefix, to_hf=True, who="bert_state_to_hf")
    out = {b: _need(sd, a, "bert_state_to_hf") for a, b in pairs}
    if mlm:  # the decoder is tied to the word embeddings; its bias is cls.predictions.bias
        out["cls.predictions.decoder.weight"] = out[hf_prefix + "embeddings.word_embeddings.weight"]
        out["cls.predictions.decoder.bias"] = out["cls.predictions.bias"]
    return out


def bert_state_from_hf(sd: dict[str, torch.Tensor], n_layer: int, *, pooler: bool = True, mlm: bool = False,
                       our_prefix: str = "", hf_prefix: str = "") -> dict[str, torch.Tensor]:
    """Rename a ``transformers`` BERT state dict to lmlib keys (inverse of :func:`bert_state_to_hf`)."""
    pairs = _check_bert_state(sd, n_layer, pooler, mlm, our_prefix, hf_prefix, to_hf=False, who="bert_state_from_hf")
    out = {a: _need(sd, b, "bert_state_from_hf") for a, b in pairs}
    if mlm:
        dec = sd.get("cls.predictions.decoder.weight")
        if dec is not None and not torch.equal(dec, out[our_prefix + "embeddings.word_embeddings.weight"]):
            raise ValueError("bert_state_from_hf: cls.predictions.decoder.weight is not tied to the word "
                             "embeddings; BertForMaskedLM here needs tied weights")
        out["mlm_head.decoder.weight"] = out[our_prefix + "embeddings.word_embeddings.weight"]
    return out


_BERT_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "type_vocab_size")


def bert_config_to_hf(config, **extra):
    """A ``transformers.BertConfig`` with the shapes of a :class:`lmlib.bert.BertConfig`."""
    from transformers import BertConfig as HFBertConfig
    from lmlib.bert import BertConfig

    if not isinstance(config, BertConfig):
        raise TypeError(f"bert_config_to_hf: config must be an lmlib.bert.BertConfig, got {type(config).__name__}")
    _check_config_sizes(config, _BERT_SIZES, "bert_config_to_hf")
    c = config
    if c.norm_first:
        raise ValueError("bert_config_to_hf: a pre-norm BERT (norm_first=True) has no transformers "
                         "equivalent: transformers' BERT is post-norm")
    act = {"gelu_erf": "gelu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}
    if c.hidden_act not in act:
        raise ValueError(f"bert_config_to_hf: activation {c.hidden_act!r} has no transformers equivalent")
    kw = dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
              num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
              hidden_act=act[c.hidden_act], hidden_dropout_prob=c.hidden_dropout_prob,
              attention_probs_dropout_prob=c.attention_probs_dropout_prob,
              max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
              layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_token_id, tie_word_embeddings=True)
    kw.update(extra)
    return HFBertConfig(**kw)


def bert_config_from_hf(hf_config):
    """The :class:`lmlib.bert.BertConfig` of a ``transformers.BertConfig``."""
    from transformers import BertConfig as HFBertConfig
    from lmlib.bert import BertConfig

    if not isinstance(hf_config, HFBertConfig):
        raise TypeError(f"bert_config_from_hf: hf_config must be a transformers BertConfig, got "
                        f"{type(hf_config).__name__}")
    _check_config_sizes(hf_config, _BERT_SIZES, "bert_config_from_hf")
    c = hf_config
    act = {"gelu": "gelu_erf", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh", "relu": "relu"}
    if c.hidden_act not in act:
        raise ValueError(f"bert_config_from_hf: unsupported hidden_act {c.hidden_act!r}")
    if getattr(c, "position_embedding_type", "absolute") != "absolute":
        raise ValueError("bert_config_from_hf: only absolute position embeddings are supported")
    return BertConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                      num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                      hidden_act=act[c.hidden_act], hidden_dropout_prob=c.hidden_dropout_prob,
                      attention_probs_dropout_prob=c.attention_probs_dropout_prob,
                      max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
                      layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_token_id if c.pad_token_id is not None else 0)


def bert_to_hf(model, **config_extra):
    """``BERT`` -> ``transformers.BertModel``; ``BertForMaskedLM`` -> ``transformers.BertForMaskedLM``."""
    from transformers import BertForMaskedLM as HFMLM, BertModel as HFBert
    from lmlib.bert import BERT, BertForMaskedLM

    if not isinstance(model, (BERT, BertForMaskedLM)):
        raise TypeError(f"bert_to_hf: model must be an lmlib BERT or BertForMaskedLM, got {type(model).__name__}")
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if isinstance(model, BertForMaskedLM):
        cfg = model.config
        hf = HFMLM(bert_config_to_hf(cfg, **config_extra))
        new = bert_state_to_hf(sd, cfg.num_hidden_layers, pooler=False, mlm=True, our_prefix="bert.",
                               hf_prefix="bert.")
    elif isinstance(model, BERT):
        cfg = model.config
        hf = HFBert(bert_config_to_hf(cfg, **config_extra))
        new = bert_state_to_hf(sd, cfg.num_hidden_layers, pooler=True)
    else:
        raise TypeError(f"bert_to_hf expects an lmlib BERT or BertForMaskedLM, got {type(model).__name__}")
    _strict_load(hf, new, "bert_to_hf")
    if isinstance(model, BertForMaskedLM):
        hf.tie_weights()
    hf.train(model.training)
    return hf.to(next(model.parameters()).device)


def bert_from_hf(hf_model):
    """``transformers.BertModel`` -> ``BERT``; ``transformers.BertForMaskedLM`` -> ``BertForMaskedLM``.

    HF's ``BertForMaskedLM`` has no pooler: ours keeps its initial pooler weights in that case.
    """
    from transformers import BertForMaskedLM as HFMLM, BertModel as HFBert
    from lmlib.bert import BERT, BertForMaskedLM

    if not isinstance(hf_model, (HFMLM, HFBert)):
        raise TypeError(f"bert_from_hf: hf_model must be a transformers BertModel or BertForMaskedLM, got "
                        f"{type(hf_model).__name__}")
    cfg = bert_config_from_hf(hf_model.config)
    sd = hf_model.state_dict()
    if isinstance(hf_model, HFMLM):
        model = BertForMaskedLM(cfg)
        new = bert_state_from_hf(sd, cfg.num_hidden_layers, pooler=False, mlm=True, our_prefix="bert.",
                                 hf_prefix="bert.")
        own = model.state_dict()
        for k in ("bert.pooler.dense.weight", "bert.pooler.dense.bias"):  # absent in HF's MLM model
            new[k] = own[k]
    elif isinstance(hf_model, HFBert):
        if hf_model.pooler is None:
            raise ValueError("bert_from_hf: this BertModel has no pooler (add_pooling_layer=False)")
        model = BERT(cfg)
        new = bert_state_from_hf(sd, cfg.num_hidden_layers, pooler=True)
    else:
        raise TypeError(f"bert_from_hf expects a transformers BertModel or BertForMaskedLM, got "
                        f"{type(hf_model).__name__}")
    _strict_load(model, {k: v.detach().clone().float() for k, v in new.items()}, "bert_from_hf")
    if isinstance(model, BertForMaskedLM):
        model.tie_weights()
    model.train(hf_model.training)
    return model.to(next(hf_model.parameters()).device)
