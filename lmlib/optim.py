"""AdamW written out: Adam with bias correction and decoupled weight decay.

Adam (Kingma & Ba, 2015) keeps two running averages per parameter, of the gradient ``m`` (its
direction) and of the squared gradient ``v`` (its scale), and moves every weight by
``lr · m̂ / (√v̂ + ε)``: a step whose size is about ``lr`` whatever the gradient's scale. AdamW
(Loshchilov & Hutter, 2019) *decouples* weight decay from that step: instead of adding ``λθ`` to
the gradient (where Adam would rescale it like any other gradient, so that rarely-updated weights
are barely decayed), every weight shrinks by the factor ``1 - lr·λ`` before the Adam step.

One step for a parameter ``θ`` with gradient ``g`` (step number ``t``, from 1)::

    θ ← θ · (1 − lr·λ)                      decoupled weight decay
    m ← β1·m + (1 − β1)·g                   first moment (running mean of g)
    v ← β2·v + (1 − β2)·g²                  second moment (running mean of g²)
    m̂ = m / (1 − β1ᵗ),  v̂ = v / (1 − β2ᵗ)   bias correction (m and v start at zero)
    θ ← θ − lr · m̂ / (√v̂ + ε)

:class:`AdamW` is a ``torch.optim.Optimizer``: it takes parameter groups (each with its own
``lr``, ``betas``, ``eps``, ``weight_decay``), a learning-rate schedule may set ``group["lr"]``
between steps, and ``state_dict``/``load_state_dict`` save and restore the moments (stored under
the names ``torch.optim.AdamW`` uses: ``step``, ``exp_avg``, ``exp_avg_sq``). It computes what
``torch.optim.AdamW`` computes, up to rounding (``tests/test_optim.py`` compares the two over
many steps); PyTorch's version adds AMSGrad, ``maximize``, complex and sparse parameters, and
fused multi-tensor kernels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable, Iterable

import torch

from lmlib.validation import check_float, check_sequence

__all__ = ["AdamW"]


def _check_params(name: str, params: Any) -> list:
    """``params`` as a non-empty list of leaf tensors or (at the top level) parameter groups."""
    who = "AdamW"
    if isinstance(params, torch.Tensor) and name != "params":
        params = [params]                                    # a group may hold a single tensor
    if isinstance(params, (torch.Tensor, str, bytes, Mapping)) or not hasattr(params, "__iter__"):
        raise TypeError(f"{who}: {name} must be an iterable of tensors or of parameter groups (dicts), "
                        f"got {type(params).__name__}")
    items = list(params)
    if not items:
        raise ValueError(f"{who}: {name} is empty: there is nothing to optimise")
    for i, p in enumerate(items):
        if isinstance(p, dict) and name == "params":
            continue  # a parameter group, checked by add_param_group
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{who}: {name}[{i}] must be a tensor, got {type(p).__name__}")
        if not p.is_leaf:
            raise ValueError(f"{who}: {name}[{i}] is not a leaf tensor (it is computed from others), "
                             "so it cannot be optimised")
    return items


def _check_hyper(lr: Any, betas: Any, eps: Any, weight_decay: Any, *, where: str = "") -> dict[str, Any]:
    """The four hyper-parameters, validated (``where`` names a parameter group in messages)."""
    who = "AdamW"
    lr = check_float(f"lr{where}", lr, min=0.0, who=who)
    pair = check_sequence(f"betas{where}", betas, who=who)
    if len(pair) != 2:
        raise ValueError(f"{who}: betas{where} must be two numbers (beta1, beta2) in [0, 1), got {betas!r}")
    betas = tuple(check_float(f"betas{where}[{i}]", b, min=0.0, max=1.0, max_open=True, who=who)
                  for i, b in enumerate(pair))
    eps = check_float(f"eps{where}", eps, min=0.0, min_open=True, who=who)
    weight_decay = check_float(f"weight_decay{where}", weight_decay, min=0.0, who=who)
    return {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}


class AdamW(torch.optim.Optimizer):
    """Adam with bias correction and decoupled weight decay (see the module docstring).

    ``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)``, the defaults of
    ``torch.optim.AdamW``. ``params`` is an iterable of tensors or of parameter groups (dicts
    with ``"params"`` and any of the hyper-parameters, which override the defaults). The
    parameters must be real, with dense gradients.
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        defaults = _check_hyper(lr, betas, eps, weight_decay)
        super().__init__(_check_params("params", params), defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (also called for every group given to the constructor); its own
        hyper-parameters are validated like the defaults."""
        if isinstance(param_group, dict):
            where = f" of parameter group {len(self.param_groups)}"
            if "params" not in param_group:
                raise ValueError(f"AdamW: parameter group {len(self.param_groups)} has no 'params'")
            params = _check_params(f"params{where}", param_group["params"])
            given = {k: param_group.get(k, self.defaults[k]) for k in ("lr", "betas", "eps", "weight_decay")}
            param_group = {**param_group, "params": params, **_check_hyper(**given, where=where)}
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a gradient. ``closure`` (optional) recomputes
        and returns the loss, as for any ``torch.optim`` optimiser."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:                                        # first step: both moments are zero
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"].item()

                p.mul_(1 - lr * wd)                                  # decoupled weight decay
                m.lerp_(g, 1 - beta1)                                # m = β1·m + (1 − β1)·g
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)        # v = β2·v + (1 − β2)·g²
                step_size = lr / (1 - beta1 ** t)                    # lr·m̂ = lr·m / (1 − β1ᵗ)
                denom = v.sqrt() / math.sqrt(1 - beta2 ** t) + eps   # √v̂ + ε = √v / √(1 − β2ᵗ) + ε
                p.addcdiv_(m, denom, value=-step_size)               # θ = θ − lr·m̂ / (√v̂ + ε)
        return loss
