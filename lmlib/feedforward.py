"""The position-wise feed-forward network (FFN) of a Transformer block, and its activations.

``FFN(x) = W2 · act(W1 · x + b1) + b2`` applied to every position separately; ``x: (B, T, d_model)``,
hidden width ``d_ff`` (4 · d_model in GPT-2 and BERT).

Two GELUs are in use and they are NOT the same function:

* ``gelu_erf``  -- the exact ``x · Φ(x) = x/2 · (1 + erf(x/√2))`` (BERT, ``torch.nn.GELU()``).
* ``gelu_tanh`` -- the tanh approximation ``x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`` used by
  GPT-2 (``torch.nn.GELU(approximate="tanh")``, Hugging Face ``"gelu_new"``).
They differ by at most about 5e-4 (near |x| ≈ 2.7), which is why converted GPT-2 weights must use the tanh form.

:class:`SwiGLU` is the gated FFN of Llama-style models (Shazeer, 2020)::

    SwiGLU(x) = W_down · (silu(W_gate · x) ⊙ (W_up · x))

Three matrices instead of two, so at the same parameter count its hidden width is 2/3 of the
GELU FFN's: ``3 · d · h = 2 · d · d_ff`` gives ``h = 2/3 · d_ff`` (``8/3 · d`` for ``d_ff = 4d``),
see :func:`swiglu_hidden`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from lmlib.attention import _check_features
from lmlib.validation import check_bool, check_choice, check_float, check_int, check_str, check_tensor

__all__ = ["gelu_erf", "gelu_tanh", "ACTIVATIONS", "get_activation", "FeedForward", "SwiGLU", "swiglu_hidden"]


def gelu_erf(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU: x · Φ(x), Φ the standard normal CDF."""
    check_tensor("x", x, dtype="float", who="gelu_erf")
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's tanh approximation of GELU."""
    check_tensor("x", x, dtype="float", who="gelu_tanh")
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


# Names -> fast (fused) torch implementations of the formulas above (tests check they agree).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": lambda x: F.gelu(x),                       # erf form
    "gelu_erf": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation called ``name`` (one of ``ACTIVATIONS``); ValueError for an unknown name."""
    check_str("activation", name, who="get_activation")
    check_choice("activation", name, sorted(ACTIVATIONS), who="get_activation")
    return ACTIVATIONS[name]


class FeedForward(nn.Module):
    """Position-wise FFN: Linear(d_model, d_ff) -> activation -> Linear(d_ff, d_model) -> dropout.

    ``forward(x: (..., d_model)) -> (..., d_model)``. Submodules are ``fc_in`` and ``fc_out``.
    """

    def __init__(self, d_model: int, d_ff: int, *, activation: str = "gelu_tanh", dropout: float = 0.0,
                 bias: bool = True) -> None:
        super().__init__()
        check_int("d_model", d_model, min=1, who="FeedForward")
        check_int("d_ff", d_ff, min=1, who="FeedForward")
        check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who="FeedForward")
        check_bool("bias", bias, who="FeedForward")
        self.activation_name = activation
        self.act = get_activation(activation)
        self.fc_in = nn.Linear(d_model, d_ff, bias=bias)
        self.fc_out = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features("x", x, self.fc_in.in_features, self.fc_in.weight, who="FeedForward")
        return self.dropout(self.fc_out(self.act(self.fc_in(x))))  # (..., d_model)

    def extra_repr(self) -> str:
        return f"activation={self.activation_name!r}"


def swiglu_hidden(d_model: int, d_ff: int | None = None, *, multiple_of: int = 1) -> int:
    """The SwiGLU hidden width with the parameters of a two-matrix FFN of width ``d_ff`` (default
    ``4 * d_model``): ``round(2/3 · d_ff)``, then rounded up to a multiple of ``multiple_of``
    (Llama uses 256, which adds a few parameters for faster matrix shapes)."""
    check_int("d_model", d_model, min=1, who="swiglu_hidden")
    d_ff = 4 * d_model if d_ff is None else d_ff
    check_int("d_ff", d_ff, min=1, who="swiglu_hidden")
    check_int("multiple_of", multiple_of, min=1, who="swiglu_hidden")
    h = max(1, round(2 * d_ff / 3))
    return multiple_of * math.ceil(h / multiple_of)


class SwiGLU(nn.Module):
    """Gated feed-forward: ``down_proj(silu(gate_proj(x)) * up_proj(x))`` (Shazeer, 2020).

    ``forward(x: (..., d_model)) -> (..., d_model)``; submodules ``gate_proj``, ``up_proj``
    (``d_model -> hidden``) and ``down_proj`` (``hidden -> d_model``), named as in Hugging Face
    Llama. The gate decides, per hidden unit, how much of ``up_proj(x)`` passes.
    """

    def __init__(self, d_model: int, hidden: int, *, dropout: float = 0.0, bias: bool = False) -> None:
        super().__init__()
        check_int("d_model", d_model, min=1, who="SwiGLU")
        check_int("hidden", hidden, min=1, who="SwiGLU")
        check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who="SwiGLU")
        check_bool("bias", bias, who="SwiGLU")
        self.gate_proj = nn.Linear(d_model, hidden, bias=bias)
        self.up_proj = nn.Linear(d_model, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features("x", x, self.gate_proj.in_features, self.gate_proj.weight, who="SwiGLU")
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))  # (..., d_model)
