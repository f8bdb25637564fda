"""LoRA: low-rank adapters for fine-tuning, from scratch.

A frozen linear layer ``y = x W^T + b`` (``W: (out, in)``) gets a trainable low-rank update

    y = x W^T + b + (alpha / r) * x A^T B^T,     A: (r, in), B: (out, r),

so the effective weight is ``W + (alpha / r) B A``, a matrix of rank at most ``r``. ``B`` starts
at zero, so at initialisation the adapted model computes exactly what the pretrained one did;
``A`` starts random so that gradients reach ``B``. Training ``r (in + out)`` numbers per layer
instead of ``in * out`` is what makes LoRA cheap (Hu et al., 2022).

After training, :func:`merge_lora` folds ``(alpha / r) B A`` into ``W`` and puts plain
``nn.Linear`` layers back: the merged model has the same outputs and no extra inference cost.

API
---
``LoRALinear(base: nn.Linear, r=4, alpha=8.0, dropout=0.0)``
``inject_lora(model, patterns, r=..., alpha=..., dropout=...) -> list[str]`` (names replaced)
``merge_lora(model) -> list[str]`` (names merged, in place)
``lora_parameters(model)``, ``mark_only_lora_trainable(model, extra=...)``,
``count_parameters(model, trainable_only=True)``
"""

from __future__ import annotations

import fnmatch
import math
from typing import Iterable, Sequence

import torch
import torch.nn as nn

__all__ = ["LoRALinear", "inject_lora", "merge_lora", "lora_parameters", "mark_only_lora_trainable",
           "count_parameters", "matching_linear_names"]


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update scaled by ``alpha / r``.

    ``x: (..., in_features) -> (..., out_features)``. The base layer's parameters get
    ``requires_grad = False``; ``lora_A: (r, in)``, ``lora_B: (out, r)`` (zeros) are trained.
    """

    def __init__(self, base: nn.Linear, r: int = 4, alpha: float = 8.0, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"LoRA rank r must be a positive int, got {r!r}")
        if r > min(base.in_features, base.out_features):
            raise ValueError(f"LoRA rank r={r} exceeds min(in, out) = "
                             f"{min(base.in_features, base.out_features)}; that is no longer low-rank")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r = r
        self.alpha = float(alpha)
        self.scaling = self.alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # same scheme as nn.Linear's weight
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The update ``(alpha / r) B A`` of shape ``(out, in)``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"LoRALinear expects (..., {self.in_features}), got {tuple(x.shape)}")
        update = (self.dropout(x) @ self.lora_A.T) @ self.lora_B.T  # (..., r) then (..., out)
        return self.base(x) + self.scaling * update

    def merged(self) -> nn.Linear:
        """A new plain ``nn.Linear`` with weight ``W + (alpha / r) B A`` (and the same bias)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                lin.bias.copy_(self.base.bias)
        return lin

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def matching_linear_names(model: nn.Module, patterns: Sequence[str] | str) -> list[str]:
    """Names of the ``nn.Linear`` submodules whose qualified name matches one of ``patterns``
    (shell-style globs such as ``"*.q_proj"`` or ``"blocks.3.*"``; a pattern without a wildcard
    matches a name that equals it or ends with ``"." + pattern``)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise ValueError("give at least one module-name pattern")

    def hit(name: str, pat: str) -> bool:
        if any(ch in pat for ch in "*?["):
            return fnmatch.fnmatchcase(name, pat)
        return name == pat or name.endswith("." + pat)

    return [n for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and not isinstance(m, LoRALinear)
            and any(hit(n, p) for p in patterns)]


def inject_lora(model: nn.Module, patterns: Sequence[str] | str = ("q_proj", "v_proj"), *, r: int = 4,
                alpha: float = 8.0, dropout: float = 0.0, freeze_base: bool = True) -> list[str]:
    """Replace every matching ``nn.Linear`` of ``model`` by a :class:`LoRALinear` (in place).

    With ``freeze_base`` (default) *every* other parameter of the model is frozen too, so only
    the adapters train; unfreeze a new head yourself (see :func:`mark_only_lora_trainable`).
    Returns the names replaced; raises ``ValueError`` when nothing matches.
    """
    names = matching_linear_names(model, patterns)
    if not names:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][:8]
        raise ValueError(f"no nn.Linear matches {list(patterns) if not isinstance(patterns, str) else patterns!r}; "
                         f"some linear layers of this model: {linear}")
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    for n in names:
        _set_submodule(model, n, LoRALinear(model.get_submodule(n), r=r, alpha=alpha, dropout=dropout))
    return names


def merge_lora(model: nn.Module) -> list[str]:
    """Fold every :class:`LoRALinear` into a plain ``nn.Linear`` (in place); returns their names.
    The merged layers' parameters keep ``requires_grad=False`` like the frozen base."""
    names = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not names:
        raise ValueError("the model has no LoRA layers to merge")
    for n in names:
        lin = model.get_submodule(n).merged()
        lin.requires_grad_(False)
        _set_submodule(model, n, lin)
    return names


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The ``lora_A`` / ``lora_B`` parameters of all adapters of ``model``."""
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_A, m.lora_B)]


def mark_only_lora_trainable(model: nn.Module, extra: Iterable[str] = ()) -> None:
    """Freeze everything except the LoRA matrices and the parameters whose names start with one
    of ``extra`` (e.g. ``("head.",)`` for a freshly initialised classification head)."""
    extra = tuple(extra)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(extra) if extra else False)
    for p in lora_parameters(model):
        p.requires_grad_(True)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; a tensor shared by two modules (tied weights) counts once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():  # .parameters() already de-duplicates shared tensors
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
