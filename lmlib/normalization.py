"""Normalization layers: LayerNorm (as in GPT-2 and BERT) and RMSNorm (as in LLaMA-style models).

Both act on the last dimension of ``x: (..., C)`` independently for every position, so a token's
features are rescaled without looking at any other token.

* LayerNorm: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` (biased variance, ``1/C``).
* RMSNorm:   ``y = x / sqrt(mean(x**2) + eps) * weight`` (no centring, no bias).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from lmlib.validation import check_bool, check_float, check_int, check_tensor

__all__ = ["LayerNorm", "RMSNorm", "layer_norm_reference", "rms_norm_reference"]


def _check_dim(dim: int, eps: float, who: str) -> None:
    check_int("dim", dim, min=1, who=who)
    check_float("eps", eps, min=0.0, min_open=True, who=who)


def _check_input(x: torch.Tensor, weight: torch.Tensor, who: str) -> None:
    """``x``: a floating-point ``(..., dim)`` tensor of the weight's dtype (any float dtype under autocast)."""
    if isinstance(x, torch.Tensor) and x.dtype == weight.dtype and x.dim() >= 1 and x.shape[-1] == weight.shape[0]:
        return  # the common case, decided without the general helper (called several times per layer)
    autocast = isinstance(x, torch.Tensor) and torch.is_autocast_enabled(x.device.type)
    check_tensor("x", x, dtype="float" if autocast else weight.dtype, sizes={-1: weight.shape[0]}, who=who)


def _check_reference(x, weight, bias, eps, who: str) -> None:
    check_tensor("x", x, dtype="float", who=who)
    if x.dim() == 0:
        raise ValueError(f"{who}: x must have shape (..., C), got a scalar")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            check_tensor(name, p, dims=1, dtype="float", sizes={0: x.shape[-1]}, who=who)
    check_float("eps", eps, min=0.0, min_open=True, who=who)


def layer_norm_reference(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                         eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm written out: x (..., C) -> (..., C). Slow but readable; used to check the fast path."""
    _check_reference(x, weight, bias, eps, "layer_norm_reference")
    mean = x.mean(dim=-1, keepdim=True)                      # (..., 1)
    var = (x - mean).pow(2).mean(dim=-1, keepdim=True)       # (..., 1), biased (divide by C)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def rms_norm_reference(x: torch.Tensor, weight: torch.Tensor | None, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm written out: x (..., C) -> (..., C)."""
    _check_reference(x, weight, None, eps, "rms_norm_reference")
    y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return y * weight if weight is not None else y


class LayerNorm(nn.Module):
    """Layer normalization over the last dimension, with an optional bias.

    ``forward(x: (..., dim)) -> (..., dim)``. Parameters ``weight`` (ones) and ``bias`` (zeros) are
    named as in ``torch.nn.LayerNorm`` so state dicts line up with PyTorch and Hugging Face.
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        _check_dim(dim, eps, "LayerNorm")
        check_bool("bias", bias, who="LayerNorm")
        self.dim, self.eps = dim, float(eps)
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.weight, "LayerNorm")
        return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}"


class RMSNorm(nn.Module):
    """Root-mean-square normalization (Zhang & Sennrich, 2019): no mean subtraction, no bias.

    ``forward(x: (..., dim)) -> (..., dim)``.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        _check_dim(dim, eps, "RMSNorm")
        self.dim, self.eps = dim, float(eps)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.weight, "RMSNorm")
        y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return y * self.weight

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"
