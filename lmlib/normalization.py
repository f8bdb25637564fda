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

__all__ = ["LayerNorm", "RMSNorm", "layer_norm_reference", "rms_norm_reference"]


def _check_dim(dim: int, eps: float) -> None:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        raise ValueError(f"normalized dimension must be a positive int, got {dim!r}")
    if not (eps > 0):
        raise ValueError(f"eps must be positive, got {eps!r}")


def _check_input(x: torch.Tensor, dim: int, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} expects a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point tensor, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != dim:
        raise ValueError(f"{name}: last dimension of input must be {dim}, got shape {tuple(x.shape)}")


def layer_norm_reference(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                         eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm written out: x (..., C) -> (..., C). Slow but readable; used to check the fast path."""
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
    y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return y * weight if weight is not None else y


class LayerNorm(nn.Module):
    """Layer normalization over the last dimension, with an optional bias.

    ``forward(x: (..., dim)) -> (..., dim)``. Parameters ``weight`` (ones) and ``bias`` (zeros) are
    named as in ``torch.nn.LayerNorm`` so state dicts line up with PyTorch and Hugging Face.
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        _check_dim(dim, eps)
        self.dim, self.eps = dim, float(eps)
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim or not x.is_floating_point():
            _check_input(x, self.dim, "LayerNorm")
        return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}"


class RMSNorm(nn.Module):
    """Root-mean-square normalization (Zhang & Sennrich, 2019): no mean subtraction, no bias.

    ``forward(x: (..., dim)) -> (..., dim)``.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        _check_dim(dim, eps)
        self.dim, self.eps = dim, float(eps)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim or not x.is_floating_point():
            _check_input(x, self.dim, "RMSNorm")
        return rms_norm_reference(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"
