"""Tests of lmlib.scaling: the fit against data made from known parameters, the closed-form
compute-optimal split against a brute-force search, one sweep point, and the stored sweep."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lmlib import scaling as S
from lmlib.flops import non_embedding_params
from lmlib.gpt import GPTConfig

TRUE = {"E": 1.4, "A": 60.0, "alpha": 0.38, "B": 900.0, "beta": 0.45}
RESULTS = Path(__file__).resolve().parents[1] / "lmlib" / "models" / "experiments" / "ch10-scaling.json"


def synthetic_runs(params, noise, seed=0):
    """A 5 x 5 grid of sizes and token counts like the CPU sweep's, with multiplicative noise."""
    sizes, tokens = np.geomspace(1e4, 1e6, 5), np.geomspace(2e5, 4e6, 5)
    N = [float(n) for n in sizes for _ in tokens]
    D = [float(d) for _ in sizes for d in tokens]
    clean = S.chinchilla_loss(N, D, params)
    L = clean * np.exp(np.random.default_rng(seed).normal(0.0, noise, len(N)))
    return N, D, [float(v) for v in L]


@pytest.fixture(scope="module")
def data():
    from lmlib.pretrained import course_data

    torch.set_num_threads(1)
    return course_data(0)


# ------------------------------------------------------------------------------------------
# The law and its fit
# ------------------------------------------------------------------------------------------

def test_chinchilla_loss_is_the_formula():
    N, D = [1e4, 2e5], [3e6, 7e7]
    expected = [TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"] for n, d in zip(N, D)]
    np.testing.assert_allclose(S.chinchilla_loss(N, D, TRUE), expected, rtol=1e-12)
    assert isinstance(S.chinchilla_loss(1e4, 3e6, TRUE), float)


def test_fit_recovers_the_parameters_of_noise_free_data():
    fit = S.fit_scaling_law(*synthetic_runs(TRUE, noise=0.0))
    for k in S.PARAM_NAMES:
        assert fit[k] == pytest.approx(TRUE[k], rel=2e-3), k


def test_fit_recovers_the_parameters_under_small_noise():
    fit = S.fit_scaling_law(*synthetic_runs(TRUE, noise=0.003, seed=1))
    assert fit["alpha"] == pytest.approx(TRUE["alpha"], abs=0.04)
    assert fit["beta"] == pytest.approx(TRUE["beta"], abs=0.04)
    assert fit["E"] == pytest.approx(TRUE["E"], rel=0.1)
    # between and beyond the grid, the fitted law predicts the true loss closely
    N, D = [3e4, 3e5, 2e6], [5e5, 3e6, 1e7]
    np.testing.assert_allclose(S.chinchilla_loss(N, D, fit), S.chinchilla_loss(N, D, TRUE), rtol=0.01)


def test_a_fit_with_E_held_fixed_recovers_the_other_parameters_and_fits_worse_elsewhere():
    runs = synthetic_runs(TRUE, noise=0.0)
    at_truth = S.fit_scaling_law(*runs, fixed_E=TRUE["E"])
    assert at_truth["E"] == TRUE["E"]
    for k in ("A", "alpha", "B", "beta"):
        assert at_truth[k] == pytest.approx(TRUE[k], rel=2e-3), k

    def rms(p):
        N, D, L = runs
        return float(np.sqrt(np.mean((np.log(S.chinchilla_loss(N, D, p)) - np.log(L)) ** 2)))

    # the profile has its minimum at the true E: a wrong E leaves a visible misfit
    assert rms(at_truth) < 1e-4 < rms(S.fit_scaling_law(*runs, fixed_E=0.7)) < rms(S.fit_scaling_law(*runs, fixed_E=0.2))


def test_fit_is_deterministic_and_ignores_the_order_of_the_runs():
    N, D, L = synthetic_runs(TRUE, noise=0.003, seed=2)
    a = S.fit_scaling_law(N, D, L, n_starts=2)
    assert a == S.fit_scaling_law(N, D, L, n_starts=2)
    b = S.fit_scaling_law(N[::-1], D[::-1], L[::-1], n_starts=2)
    for k in S.PARAM_NAMES:
        assert b[k] == pytest.approx(a[k], rel=1e-4), k


def test_huber_loss_resists_one_bad_run():
    N, D, L = synthetic_runs(TRUE, noise=0.0)
    L[7] *= 1.3                      # one run 30% off (a diverged run, a logging mistake)
    fit = S.fit_scaling_law(N, D, L)
    assert fit["alpha"] == pytest.approx(TRUE["alpha"], abs=0.02)
    assert fit["beta"] == pytest.approx(TRUE["beta"], abs=0.02)


# ------------------------------------------------------------------------------------------
# The compute-optimal split
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [TRUE, {"E": 1.7, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28},
                                    {"E": 0.0, "A": 5.0, "alpha": 0.7, "B": 50.0, "beta": 0.3}])
@pytest.mark.parametrize("C", [1e12, 1e18, 1e23])
def test_compute_optimal_matches_a_brute_force_search_along_C_equal_6ND(params, C):
    opt = S.compute_optimal(C, params)
    n = np.geomspace(1.0, C / 6, 100_001)          # every split of C, D = C / (6N)
    best = n[np.argmin(S.chinchilla_loss(n, C / (6 * n), params))]
    assert opt["N"] == pytest.approx(best, rel=2e-3)
    assert 6 * opt["N"] * opt["D"] == pytest.approx(C, rel=1e-9)
    assert opt["tokens_per_param"] == pytest.approx(opt["D"] / opt["N"], rel=1e-12)
    assert opt["loss"] == pytest.approx(S.chinchilla_loss(opt["N"], opt["D"], params), rel=1e-12)


def test_equal_exponents_give_a_constant_tokens_per_parameter():
    params = dict(TRUE, beta=TRUE["alpha"])
    ratios = [S.compute_optimal(C, params)["tokens_per_param"] for C in (1e10, 1e15, 1e20, 1e25)]
    # with alpha = beta the optimum balances A/N^a = B/D^a, so D/N = (B/A)^(1/a) at every C
    np.testing.assert_allclose(ratios, (params["B"] / params["A"]) ** (1 / params["alpha"]), rtol=1e-9)
    # otherwise D/N goes as (C/6)^((alpha - beta)/(alpha + beta)): with alpha < beta it falls with C
    falling = [S.compute_optimal(C, TRUE)["tokens_per_param"] for C in (1e10, 1e15, 1e20)]
    assert falling[0] > falling[1] > falling[2]
    rising = [S.compute_optimal(C, dict(TRUE, alpha=0.5))["tokens_per_param"] for C in (1e10, 1e15, 1e20)]
    assert rising[0] < rising[1] < rising[2]


# ------------------------------------------------------------------------------------------
# The bootstrap
# ------------------------------------------------------------------------------------------

def test_bootstrap_intervals_contain_the_truth_and_shrink_with_less_noise():
    budgets = [1e13, 1e16]
    wide = S.bootstrap_fit(*synthetic_runs(TRUE, noise=0.004, seed=3), compute=budgets, n_boot=20, seed=0,
                           level=0.9, n_starts=2)
    for k in S.PARAM_NAMES:
        low, high = wide["intervals"][k]
        assert low <= TRUE[k] <= high, (k, low, high)
    for entry, C in zip(wide["tokens_per_param"], budgets):
        assert entry["compute"] == C
        assert entry["low"] <= S.compute_optimal(C, TRUE)["tokens_per_param"] <= entry["high"]
    narrow = S.bootstrap_fit(*synthetic_runs(TRUE, noise=0.0005, seed=3), compute=budgets, n_boot=20, seed=0,
                             level=0.9, n_starts=2)
    for k in ("alpha", "beta"):
        assert np.diff(narrow["intervals"][k]) < np.diff(wide["intervals"][k]) / 2, k
    assert wide["fit"] == S.fit_scaling_law(*synthetic_runs(TRUE, noise=0.004, seed=3), n_starts=2)


# ------------------------------------------------------------------------------------------
# One sweep point
# ------------------------------------------------------------------------------------------

def test_run_point_is_finite_and_deterministic(data):
    kw = dict(block_size=16, batch_size=4, tokens=16 * 4 * 25, eval_batches=2, data=data)
    a = S.run_point(1, 16, 2, **kw)
    b = S.run_point(1, 16, 2, **kw)
    assert math.isfinite(a["val_loss"]) and 0 < a["val_loss"] < math.log(data.tokenizer.vocab_size) + 1
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert a["N"] == non_embedding_params(GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=16,
                                                    n_layer=1, n_head=2, n_embd=16))
    assert a["D"] == 16 * 4 * 25 and a["steps"] == 25
    assert S.run_point(1, 16, 2, seed=1, **kw)["val_loss"] != a["val_loss"]


# ------------------------------------------------------------------------------------------
# The stored sweep
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stored():
    return json.loads(RESULTS.read_text())


def test_stored_runs_are_the_configured_grid(stored, data):
    s = stored["settings"]
    runs = stored["runs"]
    assert sorted((r["n_layer"], r["n_embd"], r["n_head"], r["D"]) for r in runs) == \
        sorted((*shape, t) for shape in map(tuple, s["shapes"]) for t in s["tokens"])
    for r in runs + stored["lr_check"]:
        config = GPTConfig(vocab_size=data.tokenizer.vocab_size, block_size=s["block_size"], n_layer=r["n_layer"],
                           n_head=r["n_head"], n_embd=r["n_embd"])
        assert r["N"] == non_embedding_params(config)
        assert r["D"] == r["steps"] * s["batch_size"] * s["block_size"]
        assert math.isfinite(r["val_loss"]) and r["seed"] == s["seed"]
    assert all(r["lr"] == stored["chosen_lr"] for r in runs)
    best = min(s["lr_grid"], key=lambda lr: np.mean([r["val_loss"] for r in stored["lr_check"] if r["lr"] == lr]))
    assert stored["chosen_lr"] == best


def test_stored_fit_reproduces_from_the_stored_runs(stored):
    runs, f = stored["runs"], stored["settings"]["fit"]
    N, D, L = ([r[k] for r in runs] for k in ("N", "D", "val_loss"))
    refit = S.fit_scaling_law(N, D, L, delta=f["delta"], n_starts=f["n_starts"])
    for k in ("A", "alpha", "B", "beta"):
        assert refit[k] == pytest.approx(stored["fit"][k], rel=1e-3), k
    assert refit["E"] == pytest.approx(stored["fit"]["E"], abs=1e-3)   # E may sit at 0 (see the docstring)
    np.testing.assert_allclose(S.chinchilla_loss(N, D, refit), S.chinchilla_loss(N, D, stored["fit"]), rtol=1e-6)
    # the stored law describes the stored runs to within the stated residual
    residuals = np.log(L) - np.log(S.chinchilla_loss(N, D, stored["fit"]))
    assert np.abs(residuals).max() == pytest.approx(stored["max_abs_log_residual"], rel=1e-9)
    for entry in stored["compute_optimal"]:
        opt = S.compute_optimal(entry["compute"], stored["fit"])
        assert opt["tokens_per_param"] == pytest.approx(entry["tokens_per_param"], rel=1e-9)
        low, high = entry["tokens_per_param_interval"]
        assert low < high
    boot = stored["bootstrap"]
    assert set(boot["intervals"]) == set(S.PARAM_NAMES) and boot["n_boot"] == stored["settings"]["bootstrap"]["n_boot"]
    np.testing.assert_allclose(S.chinchilla_loss(N, D, boot["fit"]), S.chinchilla_loss(N, D, stored["fit"]), rtol=1e-4)


def test_stored_noise_and_kernel_check_are_consistent(stored):
    for p in stored["seed_noise"]["points"]:
        assert p["range"] == pytest.approx(max(p["val_loss"]) - min(p["val_loss"]), abs=1e-12)
        assert len(set(p["seeds"])) == len(p["seeds"]) == 3
        # the first seed's run is the grid run (or the learning-rate check's) at that point
        same = [r for r in stored["runs"] + stored["lr_check"] if [r["n_layer"], r["n_embd"], r["n_head"]] == p["shape"]
                and r["D"] == p["tokens"] and r["lr"] == stored["chosen_lr"]]
        assert same and same[0]["val_loss"] == p["val_loss"][0]
    k = stored["kernel_check"]
    assert k["max_abs_diff"] == max(abs(p["val_loss"] - p["val_loss_other_kernels"]) for p in k["points"])
    assert all(p["other_cpu_capability"] == "DEFAULT" for p in k["points"])
