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

from lmlib.validation import check_bool, check_float, check_int, check_sequence, check_str, check_tensor

__all__ = ["LoRALinear", "inject_lora", "merge_lora", "lora_parameters", "mark_only_lora_trainable",
           "count_parameters", "matching_linear_names"]


def _check_lora_args(base, r, alpha, dropout) -> None:
    """A plain ``nn.Linear`` (not already a LoRA layer), ``1 <= r <= min(in, out)``, a finite
    ``alpha`` and ``0 <= dropout < 1``."""
    if isinstance(base, LoRALinear):
        raise TypeError("LoRALinear: base is already a LoRALinear; a layer gets at most one adapter "
                        "(merge_lora first to stack a new one)")
    if not isinstance(base, nn.Linear):
        raise TypeError(f"LoRALinear: base must be an nn.Linear, got {type(base).__name__}")
    limit = min(base.in_features, base.out_features)
    if check_int("r", r, min=1, who="LoRALinear") > limit:
        raise ValueError(f"LoRALinear: LoRA rank r={r} exceeds min(in, out) = {limit}; that is no longer low-rank")
    check_float("alpha", alpha, who="LoRALinear")
    check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who="LoRALinear")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update scaled by ``alpha / r``.

    ``x: (..., in_features) -> (..., out_features)``. The base layer's parameters get
    ``requires_grad = False``; ``lora_A: (r, in)``, ``lora_B: (out, r)`` (zeros) are trained.
    """

    def __init__(self, base: nn.Linear, r: int = 4, alpha: float = 8.0, dropout: float = 0.0) -> None:
        super().__init__()
        _check_lora_args(base, r, alpha, dropout)
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

    @property
    def weight(self) -> torch.Tensor:
        """The frozen base weight ``W`` (without the update; see :meth:`delta_weight`), so that code
        reading a projection's ``.weight`` (its dtype, device, shape) works on an adapted layer."""
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def delta_weight(self) -> torch.Tensor:
        """The update ``(alpha / r) B A`` of shape ``(out, in)``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, dtype="float", sizes={-1: self.in_features}, who="LoRALinear")
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


def _check_model(name: str, model, who: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{who}: {name} must be an nn.Module, got {type(model).__name__}")


def _check_patterns(patterns, who: str) -> list[str]:
    """One pattern (a str) or a list of non-empty str patterns."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if isinstance(patterns, Sequence) and len(patterns) == 0:
        raise ValueError(f"{who}: patterns must hold at least one module-name pattern")
    patterns = check_sequence("patterns", patterns, of=str, nonempty=True, who=who)
    for i, p in enumerate(patterns):
        check_str(f"patterns[{i}]", p, nonempty=True, who=who)
    return patterns


def matching_linear_names(model: nn.Module, patterns: Sequence[str] | str) -> list[str]:
    """Names of the ``nn.Linear`` submodules whose qualified name matches one of ``patterns``
    (shell-style globs such as ``"*.q_proj"`` or ``"blocks.3.*"``; a pattern without a wildcard
    matches a name that equals it or ends with ``"." + pattern``)."""
    _check_model("model", model, "matching_linear_names")
    patterns = _check_patterns(patterns, "matching_linear_names")

    def hit(name: str, pat: str) -> bool:
        if any(ch in pat for ch in "*?["):
            return fnmatch.fnmatchcase(name, pat)
        return name == pat or name.endswith("." + pat)

    return [n for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and not isinstance(m, LoRALinear)
            and any(hit(n, p) for p in patterns)]


def _check_inject_args(model, patterns, r, alpha, dropout, freeze_base) -> None:
    _check_model("model", model, "inject_lora")
    _check_patterns(patterns, "inject_lora")
    check_int("r", r, min=1, who="inject_lora")
    check_float("alpha", alpha, who="inject_lora")
    check_float("dropout", dropout, min=0.0, max=1.0, max_open=True, who="inject_lora")
    check_bool("freeze_base", freeze_base, who="inject_lora")
    existing = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    if existing:
        raise ValueError(f"inject_lora: the model already has LoRA adapters ({', '.join(existing[:4])}"
                         f"{', ...' if len(existing) > 4 else ''}); inject once, or merge_lora(model) first")


def inject_lora(model: nn.Module, patterns: Sequence[str] | str = ("q_proj", "v_proj"), *, r: int = 4,
                alpha: float = 8.0, dropout: float = 0.0, freeze_base: bool = True) -> list[str]:
    """Replace every matching ``nn.Linear`` of ``model`` by a :class:`LoRALinear` (in place).

    With ``freeze_base`` (default) *every* other parameter of the model is frozen too, so only
    the adapters train; unfreeze a new head yourself (see :func:`mark_only_lora_trainable`).
    Returns the names replaced; raises ``ValueError`` when nothing matches, and when the model
    already has LoRA adapters (inject once; :func:`merge_lora` first to start a new round).
    """
    _check_inject_args(model, patterns, r, alpha, dropout, freeze_base)
    names = matching_linear_names(model, patterns)
    if not names:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][:8]
        raise ValueError(f"no nn.Linear matches {list(patterns) if not isinstance(patterns, str) else patterns!r}; "
                         f"some linear layers of this model: {linear}")
    for n in names:  # every layer must accept the rank before any layer is replaced
        _check_lora_args(model.get_submodule(n), r, alpha, dropout)
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    for n in names:
        _set_submodule(model, n, LoRALinear(model.get_submodule(n), r=r, alpha=alpha, dropout=dropout))
    return names


def merge_lora(model: nn.Module) -> list[str]:
    """Fold every :class:`LoRALinear` into a plain ``nn.Linear`` (in place); returns their names.
    The merged layers' parameters keep ``requires_grad=False`` like the frozen base."""
    _check_model("model", model, "merge_lora")
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
    _check_model("model", model, "lora_parameters")
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_A, m.lora_B)]


def mark_only_lora_trainable(model: nn.Module, extra: Iterable[str] = ()) -> None:
    """Freeze everything except the LoRA matrices and the parameters whose names start with one
    of ``extra`` (e.g. ``("head.",)`` for a freshly initialised classification head)."""
    _check_model("model", model, "mark_only_lora_trainable")
    extra = tuple(check_sequence("extra", extra, of=str, who="mark_only_lora_trainable"))
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(extra) if extra else False)
    for p in lora_parameters(model):
        p.requires_grad_(True)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; a tensor shared by two modules (tied weights) counts once."""
    _check_model("model", model, "count_parameters")
    check_bool("trainable_only", trainable_only, who="count_parameters")
    seen: set[int] = set()
    total = 0
    for p in model.parameters():  # .parameters() already de-duplicates shared tensors
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
