"""Scaling laws on a CPU: how the loss falls with model size and with training tokens.

Train a family of small models, each of a different size ``N`` (parameters) for a different
number of training tokens ``D``, and write down the final held-out loss ``L`` of every run. The
losses are not random: they follow, to a good approximation, one smooth formula (Hoffmann et al.,
2022, :cite:`hoffmann2022training`, building on Kaplan et al., 2020, :cite:`kaplan2020scaling`)::

    L(N, D) = E + A / N**alpha + B / D**beta

- ``E`` is the loss no model can beat: the entropy of the text itself (for a fixed tokenizer).
- ``A / N**alpha`` is what a finite model costs: even with infinite data, a model of ``N``
  parameters cannot represent everything. It shrinks as the model grows.
- ``B / D**beta`` is what finite data costs: even an infinite model, trained on ``D`` tokens,
  has not seen enough. It shrinks as training goes on.

Why it matters: training costs about ``C = 6 N D`` floating-point operations
(:func:`lmlib.flops.training_flops`). For a fixed budget ``C`` one can buy a big model trained
briefly or a small model trained long; the formula says which split gives the lowest loss
(:func:`compute_optimal`), and the answer has a closed form.

What this module provides
-------------------------
``chinchilla_loss(N, D, params)``
    The formula itself, for numbers or arrays.
``fit_scaling_law(N, D, L)``
    The five parameters from a set of runs, fitted the way Hoffmann et al. did: in log space,
    with a robust (Huber) loss, by L-BFGS from several starting points.
``bootstrap_fit(N, D, L, compute=[...])``
    How sure the fit is: the runs are resampled with replacement and refitted many times; the
    spread of the refits gives percentile intervals for every parameter and for the
    compute-optimal tokens per parameter.
``compute_optimal(C, params)``
    The ``N`` and ``D`` that minimise the loss at fixed compute ``C = 6 N D``.
``run_point(n_layer, n_embd, n_head, tokens)``
    One training run of the sweep: a course GPT of the given shape trained on the character-level
    Shakespeare corpus for exactly ``tokens`` tokens, scored on the validation plays.

How the fit works
-----------------
With ``a = log A``, ``b = log B`` and ``e = log E``, the log of the predicted loss is a
log-sum-exp of three terms, each linear in the unknowns::

    log L = LSE(a - alpha log N,  b - beta log D,  e)

which is smooth and numerically safe (no huge powers are ever formed). The objective is the sum,
over runs, of the Huber loss (``delta = 1e-3``) of ``log L_predicted - log L_observed``:
quadratic for small residuals, linear for large ones, so one bad run cannot drag the fit. The
objective has several local minima, so the fit is started from a grid of points
(Hoffmann et al.'s grid: ``alpha, beta`` in ``0, 0.5, ..., 2``; ``e`` in ``-1, -0.5, ..., 1``;
``a, b`` in ``0, 5, ..., 25``). Hoffmann et al. ran L-BFGS from every grid point; here the
objective is evaluated on the whole grid at once and L-BFGS is run from ``n_starts`` grid points
only, which keeps a fit under a second so that it can be bootstrapped. The starts are the best
grid point of each guess ``e`` in turn, then the second best of each, and so on: the best points
overall tend to share one basin, and a start with a small ``e`` can slide to ``E = 0`` when the
data say otherwise. The best result wins.

What a CPU-scale fit can and cannot say
---------------------------------------
The models here have ``10^4`` to ``10^6`` non-embedding parameters and see ``10^5`` to ``10^6``
characters: a few orders of magnitude below the smallest runs of the papers. ``N`` counts the
parameters without the token and position embeddings (the output head is tied to the token
embedding, so it is not counted either; see :func:`lmlib.flops.non_embedding_params`), as Kaplan
et al. did; with an 80-character vocabulary the embeddings are small anyway. The exponents fitted
here describe this corpus, this tokenizer and this range of sizes, and nothing beyond it: an
extrapolation far outside the measured ``N`` and ``D`` is a guess.

Two limits show on the course sweep (``lmlib/models/experiments/ch10-scaling.json``). Its losses
(about 1.75 to 2.95 nats per character) are still far above any floor, so the data cannot tell an
irreducible loss ``E`` from a slower power law: the fit puts ``E`` at zero and the exponents
absorb the floor. And its runs see between 0.26 and 160 tokens per parameter, all of them short of
the fitted optimum, so the compute-optimal split is an extrapolation with a wide interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from lmlib.validation import check_float, check_instance, check_int, check_sequence

__all__ = ["PARAM_NAMES", "chinchilla_loss", "fit_scaling_law", "bootstrap_fit", "compute_optimal", "run_point"]

PARAM_NAMES = ("E", "A", "alpha", "B", "beta")

# Hoffmann et al.'s grid of starting points, in the log parametrisation (alpha, beta, e, a, b).
_GRID = torch.tensor(list(itertools.product(np.arange(0.0, 2.01, 0.5), np.arange(0.0, 2.01, 0.5),
                                             np.arange(-1.0, 1.01, 0.5), np.arange(0.0, 25.01, 5.0),
                                             np.arange(0.0, 25.01, 5.0))), dtype=torch.float64)  # (4500, 5)


# --------------------------------------------------------------------------------------------
# Argument checks (kept apart so that the functions below read as the algorithm)
# --------------------------------------------------------------------------------------------

def _positive(name: str, x: Any, who: str) -> tuple[np.ndarray, bool]:
    """``x`` (a number, or a list/tuple/1-D array of numbers), all finite and > 0, as a float64
    array; and whether it was a single number."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if not isinstance(x, (Sequence, np.ndarray)) or isinstance(x, (str, bytes)):
        return np.array([check_float(name, x, min=0.0, min_open=True, who=who)]), True
    items = check_sequence(name, x, nonempty=True, who=who)
    return np.array([check_float(f"{name}[{i}]", v, min=0.0, min_open=True, who=who)
                     for i, v in enumerate(items)]), False


def _runs(N: Any, D: Any, L: Any, who: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three per-run lists of a fit: equally long, at least 5 runs (one per parameter)."""
    arrays = []
    for name, x in (("N", N), ("D", D), ("L", L)):
        items = check_sequence(name, x, who=who)
        if len(items) < 5:
            raise ValueError(f"{who}: {name} must hold at least 5 runs (the law has 5 parameters), got {len(items)}")
        arrays.append(_positive(name, items, who)[0])
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
        raise ValueError(f"{who}: N, D and L must have one entry per run, got lengths "
                         f"{len(arrays[0])}, {len(arrays[1])} and {len(arrays[2])}")
    return arrays[0], arrays[1], arrays[2]


def _params(params: Any, who: str) -> dict[str, float]:
    """A dict with exactly the keys E, A, alpha, B, beta: E >= 0, the others > 0, all finite."""
    check_instance("params", params, Mapping, "a dict with keys E, A, alpha, B, beta", who=who)
    if set(params) != set(PARAM_NAMES):
        raise ValueError(f"{who}: params must have exactly the keys {list(PARAM_NAMES)}, "
                         f"got {sorted(map(str, params))}")
    return {k: check_float(f"params[{k!r}]", params[k], min=0.0, min_open=(k != "E"), who=who) for k in PARAM_NAMES}


def _compute_budgets(compute: Any, who: str) -> list[float]:
    items = check_sequence("compute", compute, nonempty=True, who=who)
    return [check_float(f"compute[{i}]", c, min=0.0, min_open=True, who=who) for i, c in enumerate(items)]


# --------------------------------------------------------------------------------------------
# The law, its fit, and the compute-optimal split
# --------------------------------------------------------------------------------------------

def chinchilla_loss(N, D, params: Mapping[str, float]):
    """``L = E + A / N**alpha + B / D**beta``: a float for numbers ``N``, ``D``; a NumPy array when
    either is a list or array (the two are broadcast against each other)."""
    who = "chinchilla_loss"
    n, n_scalar = _positive("N", N, who)
    d, d_scalar = _positive("D", D, who)
    p = _params(params, who)
    if not (n_scalar or d_scalar or len(n) == len(d)):
        raise ValueError(f"chinchilla_loss: N and D must have the same length, got {len(n)} and {len(d)}")
    loss = p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
    return float(loss[0]) if n_scalar and d_scalar else loss


def _log_loss(theta: torch.Tensor, log_n: torch.Tensor, log_d: torch.Tensor) -> torch.Tensor:
    """Predicted log loss, ``(..., runs)``, for parameters ``theta = (alpha, beta, e, a, b)``
    of shape ``(..., 5)``."""
    alpha, beta, e, a, b = (theta[..., i, None] for i in range(5))
    model_term = a - alpha * log_n
    data_term = b - beta * log_d
    return torch.logsumexp(torch.stack([model_term, data_term, e.expand_as(model_term)]), dim=0)


def _huber(r: torch.Tensor, delta: float) -> torch.Tensor:
    return torch.where(r.abs() <= delta, 0.5 * r ** 2, delta * (r.abs() - 0.5 * delta))


def _objective(theta, log_n, log_d, log_l, delta):
    """Sum over runs of the Huber loss of the log residuals (one value per row of ``theta``)."""
    return _huber(_log_loss(theta, log_n, log_d) - log_l, delta).sum(-1)


def _objective_and_gradient(theta, log_n, log_d, log_l, delta):
    """The objective of one ``theta`` and its gradient, worked out by hand (the chain rule through
    the log-sum-exp: its derivative with respect to each term is that term's softmax weight; the
    Huber loss's derivative is the residual clipped to ``[-delta, delta]``). The same numbers as
    autograd, several times faster for a fit that is repeated a thousand times."""
    alpha, beta, e, a, b = theta.tolist()
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    top = terms.max(axis=0)
    weights = np.exp(terms - top)
    total = weights.sum(axis=0)
    r = top + np.log(total) - log_l
    weights /= total
    value = np.where(np.abs(r) <= delta, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta)).sum()
    g = np.clip(r, -delta, delta)
    grad = [-(g * weights[0] * log_n).sum(), -(g * weights[1] * log_d).sum(), (g * weights[2]).sum(),
            (g * weights[0]).sum(), (g * weights[1]).sum()]
    return value, grad


def _fit(log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray, delta: float,
         n_starts: int, fixed_e: float | None = None) -> tuple[dict[str, float], float]:
    """The fit proper, on checked float64 arrays of logs: the best of ``n_starts`` L-BFGS runs,
    and its objective. With ``fixed_e`` (a log E) the irreducible loss is held there."""
    grid = _GRID if fixed_e is None else _GRID[_GRID[:, 2] == _GRID[0, 2]].clone()
    if fixed_e is not None:
        grid[:, 2] = fixed_e
    start_values = _objective(grid, *(torch.from_numpy(x) for x in (log_n, log_d, log_l)), delta)
    # the grid points of each starting guess e of the irreducible loss, best first; the starts take
    # the best point of every e in turn, then the second best, ... so that they do not all sit in
    # one basin (a start with a small e tends to end at E = 0 even when the data say otherwise)
    order = torch.argsort(start_values, stable=True)
    by_e = [order[grid[order, 2] == e] for e in torch.unique(grid[:, 2])]
    by_e.sort(key=lambda points: float(start_values[points[0]]))
    starts = grid[torch.stack(by_e, dim=1).reshape(-1)[:n_starts]]
    best, best_value = None, math.inf
    for start in starts:
        theta = start.clone()
        opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=300, tolerance_grad=1e-10, tolerance_change=1e-13,
                                history_size=10, line_search_fn="strong_wolfe")

        def closure():
            value, grad = _objective_and_gradient(theta, log_n, log_d, log_l, delta)
            if fixed_e is not None:
                grad[2] = 0.0            # e never moves: every L-BFGS direction has no e component
            theta.grad = torch.tensor(grad, dtype=torch.float64)
            return torch.tensor(value, dtype=torch.float64)

        opt.step(closure)
        value = _objective_and_gradient(theta, log_n, log_d, log_l, delta)[0]
        if math.isfinite(value) and value < best_value:
            best, best_value = theta.clone(), value
    if best is None:
        raise ValueError("fit_scaling_law: the fit diverged from every starting point (N, D and L give no finite fit)")
    alpha, beta, e, a, b = best.tolist()
    # a negative exponent can be a minimum of the objective, but it is not a scaling law: it is
    # returned as it is (compute_optimal refuses it)
    return {"E": math.exp(e), "A": math.exp(a), "alpha": alpha, "B": math.exp(b), "beta": beta}, best_value


def fit_scaling_law(N, D, L, *, delta: float = 1e-3, n_starts: int = 8,
                    fixed_E: float | None = None) -> dict[str, float]:
    """Fit ``L = E + A/N^alpha + B/D^beta`` to runs of ``N`` parameters, ``D`` tokens and final
    loss ``L`` (three equally long lists, at least 5 runs). Returns ``{"E", "A", "alpha", "B",
    "beta"}``, ready for :func:`chinchilla_loss` and :func:`compute_optimal`.

    Minimises the Huber loss (``delta``) between the predicted and the observed *log* loss, in
    the log-sum-exp parametrisation, with L-BFGS from ``n_starts`` points of Hoffmann et al.'s
    grid, spread over its guesses of ``E`` (see the module docstring). Deterministic: the same
    runs give the same fit.

    ``fixed_E`` holds the irreducible loss at that value (> 0, below every observed loss) and
    fits the other four parameters: a *profile* of the fit, which shows how much the data
    constrain ``E`` (compare the residuals of fits at several ``fixed_E``).
    """
    who = "fit_scaling_law"
    n, d, l = _runs(N, D, L, who)
    delta = check_float("delta", delta, min=0.0, min_open=True, who=who)
    n_starts = check_int("n_starts", n_starts, min=1, max=len(_GRID), who=who)
    fixed_e = None
    if fixed_E is not None:
        fixed_E = check_float("fixed_E", fixed_E, min=0.0, min_open=True, max=float(l.min()), max_open=True,
                              who=who)
        fixed_e = math.log(fixed_E)
    return _fit(np.log(n), np.log(d), np.log(l), delta, n_starts, fixed_e)[0]


def compute_optimal(C: float, params: Mapping[str, float]) -> dict[str, float]:
    """The model size and token count that minimise the loss for ``C = 6 N D`` FLOPs.

    Setting the derivative of ``A/N^alpha + B/D^beta`` along ``D = C / (6N)`` to zero gives::

        N_opt = G * (C/6)**(beta/(alpha+beta))
        D_opt = (C/6)**(alpha/(alpha+beta)) / G,      G = (alpha A / (beta B))**(1/(alpha+beta))

    Returns ``{"N", "D", "tokens_per_param", "loss"}`` (``tokens_per_param = D_opt / N_opt``;
    it depends on ``C`` unless ``alpha == beta``).
    """
    who = "compute_optimal"
    C = check_float("C", C, min=0.0, min_open=True, who=who)
    p = _params(params, who)
    alpha, beta, A, B = (np.float64(p[k]) for k in ("alpha", "beta", "A", "B"))
    with np.errstate(all="ignore"):  # an overflow becomes inf (and is refused below), not an exception
        G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
        n_opt = G * (C / 6) ** (beta / (alpha + beta))
        d_opt = (C / 6) ** (alpha / (alpha + beta)) / G
        out = {"N": n_opt, "D": d_opt, "tokens_per_param": d_opt / n_opt,
               "loss": p["E"] + A / n_opt ** alpha + B / d_opt ** beta}
    out = {k: float(v) for k, v in out.items()}
    if not all(math.isfinite(v) and v > 0 for v in out.values()):
        raise ValueError(f"compute_optimal: C={C:g} with these params overflows a float (got {out})")
    return out


def bootstrap_fit(N, D, L, *, compute: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.9,
                  delta: float = 1e-3, n_starts: int = 8) -> dict[str, Any]:
    """The point fit of :func:`fit_scaling_law` and percentile bootstrap intervals.

    Each of ``n_boot`` resamples draws as many runs as there are, with replacement (a run may
    appear twice or not at all), and is refitted. The ``level`` interval of a quantity is the
    range between the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of its ``n_boot`` refits
    (``level=0.9``: the 5th and 95th percentiles). Intervals are given for the five parameters
    and for the compute-optimal tokens per parameter at every budget of ``compute`` (FLOPs).

    Returns ``{"fit", "intervals", "tokens_per_param", "level", "n_boot", "seed"}``:
    ``intervals[name] = [low, high]``; ``tokens_per_param`` is a list with one
    ``{"compute", "point", "low", "high"}`` per budget. A resample whose fit has a non-positive
    exponent has no compute-optimal split; the number of such refits is reported as
    ``"n_without_optimum"`` and they are left out of the tokens-per-parameter intervals only.
    """
    who = "bootstrap_fit"
    n, d, l = _runs(N, D, L, who)
    budgets = _compute_budgets(compute, who)
    n_boot = check_int("n_boot", n_boot, min=10, who=who)
    seed = check_int("seed", seed, min=0, max=2**63 - 1, who=who)
    level = check_float("level", level, min=0.0, max=1.0, min_open=True, max_open=True, who=who)
    delta = check_float("delta", delta, min=0.0, min_open=True, who=who)
    n_starts = check_int("n_starts", n_starts, min=1, max=len(_GRID), who=who)

    logs = [np.log(x) for x in (n, d, l)]
    point = _fit(*logs, delta, n_starts)[0]
    if not (point["alpha"] > 0 and point["beta"] > 0):
        raise ValueError("bootstrap_fit: the fit of N, D and L has a non-positive exponent, so there is no "
                         f"compute-optimal split to give intervals for (fit: {point})")
    rng = np.random.default_rng(seed)
    refits, ratios = [], []
    for _ in range(n_boot):
        pick = rng.integers(0, len(n), len(n))
        fit = _fit(*(x[pick] for x in logs), delta, n_starts)[0]
        refits.append([fit[k] for k in PARAM_NAMES])
        if fit["alpha"] > 0 and fit["beta"] > 0:
            ratios.append([compute_optimal(c, fit)["tokens_per_param"] for c in budgets])
    q = [(1 - level) / 2, (1 + level) / 2]
    lows_highs = np.quantile(np.array(refits), q, axis=0)
    intervals = {k: [float(lows_highs[0, i]), float(lows_highs[1, i])] for i, k in enumerate(PARAM_NAMES)}
    if not ratios:
        raise ValueError("bootstrap_fit: no refit of the resampled N, D and L has positive exponents, so the "
                         "tokens per parameter have no interval")
    ratio_q = np.quantile(np.array(ratios), q, axis=0)
    per_budget = [{"compute": c, "point": compute_optimal(c, point)["tokens_per_param"],
                   "low": float(ratio_q[0, j]), "high": float(ratio_q[1, j])} for j, c in enumerate(budgets)]
    return {"fit": point, "intervals": intervals, "tokens_per_param": per_budget, "level": level,
            "n_boot": n_boot, "seed": seed, "n_without_optimum": n_boot - len(ratios)}


# --------------------------------------------------------------------------------------------
# One sweep point
# --------------------------------------------------------------------------------------------

def run_point(n_layer: int, n_embd: int, n_head: int, tokens: int, *, lr: float = 3e-3, seed: int = 0,
              block_size: int = 64, batch_size: int = 16, warmup_frac: float = 0.1, eval_batches: int = 64,
              data=None) -> dict[str, Any]:
    """Train one point of a scaling sweep and score it.

    A course GPT (:class:`lmlib.gpt.GPT`) with ``n_layer`` blocks of width ``n_embd`` and
    ``n_head`` heads, context ``block_size``, is trained on random windows of the training plays
    (``batch_size`` windows per step) for exactly ``tokens`` tokens, so ``tokens`` must be a
    multiple of ``batch_size * block_size``. The learning rate warms up linearly over the first
    ``warmup_frac`` of the steps, then follows a cosine down to ``lr / 10`` *at the last step of
    this budget*: every point is a finished run, not a snapshot of a longer one. AdamW with the
    :class:`lmlib.training.TrainConfig` defaults otherwise (weight decay 0.1, clipping at 1).
    ``seed`` fixes the initial weights and the training batches. The loss is measured once, at the
    end, on ``eval_batches`` fixed batches of the validation plays (the same text for every run).

    ``data`` is a :class:`lmlib.pretrained.CourseData`; by default ``course_data(0)`` (the
    character tokenizer). Call ``torch.set_num_threads(1)`` first for results that match a
    one-thread sweep bit for bit. Returns ``{"n_layer", "n_embd", "n_head", "N", "D", "steps",
    "val_loss", "seconds"}``: ``N`` non-embedding parameters, ``D`` training tokens, ``seconds``
    of training (the evaluation excluded).
    """
    data = _check_point_args(n_layer, n_embd, n_head, tokens, lr, seed, block_size, batch_size,
                             warmup_frac, eval_batches, data)
    from lmlib.data import sample_batch
    from lmlib.flops import non_embedding_params
    from lmlib.gpt import GPT, GPTConfig
    from lmlib.training import TrainConfig, make_lm_eval_fn, seed_everything, train

    config = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=block_size, n_layer=n_layer,
                       n_head=n_head, n_embd=n_embd)
    steps = tokens // (batch_size * block_size)
    seed_everything(seed)
    model = GPT(config)
    train_config = TrainConfig(max_steps=steps, lr=lr, warmup_steps=round(warmup_frac * steps),
                               eval_interval=steps, seed=seed, progress=False, desc="scaling point")
    history = train(model, lambda g: sample_batch(data.train, block_size, batch_size, generator=g), train_config)
    val_loss = make_lm_eval_fn(data.val, block_size, batch_size, n_batches=eval_batches)(model)["val_loss"]
    return {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "N": non_embedding_params(model),
            "D": history.tokens, "steps": steps, "val_loss": val_loss, "seconds": history.seconds}


def _check_point_args(n_layer, n_embd, n_head, tokens, lr, seed, block_size, batch_size, warmup_frac,
                      eval_batches, data):
    """Every check of :func:`run_point`, before anything is built; returns the data to use."""
    who = "run_point"
    check_int("n_layer", n_layer, min=1, who=who)
    check_int("n_embd", n_embd, min=1, who=who)
    check_int("n_head", n_head, min=1, who=who)
    if n_embd % n_head:
        raise ValueError(f"{who}: n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    check_int("block_size", block_size, min=1, who=who)
    check_int("batch_size", batch_size, min=1, who=who)
    check_int("tokens", tokens, min=batch_size * block_size, who=who)
    if tokens % (batch_size * block_size):
        raise ValueError(f"{who}: tokens ({tokens}) must be a multiple of batch_size * block_size "
                         f"({batch_size * block_size}), so that every step sees a full batch")
    check_float("lr", lr, min=0.0, min_open=True, who=who)
    check_int("seed", seed, min=0, max=2**63 - 1, who=who)
    check_float("warmup_frac", warmup_frac, min=0.0, max=1.0, max_open=True, who=who)
    check_int("eval_batches", eval_batches, min=1, who=who)
    from lmlib.pretrained import CourseData, course_data

    check_instance("data", data, CourseData, "a CourseData (from lmlib.pretrained.course_data)", nullable=True,
                   who=who)
    data = course_data(0) if data is None else data
    if data.tokenizer.vocab_size < 2 or len(data.train) <= block_size or len(data.val) <= block_size:
        raise ValueError(f"{who}: data must hold more than block_size ({block_size}) tokens in train and val")
    return data
