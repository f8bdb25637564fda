"""Tests of lmlib.cost: training memory, activation memory, FLOP/s, checkpointing, training time."""

import copy
import dataclasses
import math

import pytest
import torch

from lmlib import cost
from lmlib.gpt import GPT, GPTConfig
from lmlib.llama import Llama, LlamaConfig

torch.set_num_threads(1)


def _cfg(**kw):
    base = dict(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=16)
    base.update(kw)
    return GPTConfig(**base)


def _batch(cfg, B=3, T=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, cfg.vocab_size, (B, T), generator=g),
            torch.randint(0, cfg.vocab_size, (B, T), generator=g))


def _nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


# --- training state ----------------------------------------------------------------------------

def test_bytes_per_param_table():
    t = cost.training_bytes_per_param
    assert t("fp32", "adamw") == {"weights": 4, "grads": 4, "master_weights": 0, "optimizer_state": 8, "total": 16}
    assert t("bf16-mixed", "adamw") == {"weights": 2, "grads": 2, "master_weights": 4, "optimizer_state": 8,
                                        "total": 16}
    assert t("bf16-mixed-fp32-grads", "adamw")["total"] == 18
    assert t("fp32", "sgd")["total"] == 8
    assert t()["total"] == 16


def test_measured_state_fp32_adamw_is_16_bytes_per_param_after_a_step():
    torch.manual_seed(0)
    model = GPT(_cfg())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)
    params = list(model.parameters())                      # the tied head weight appears once
    n = sum(p.numel() for p in params)
    before = cost.measured_state_bytes(model, opt)
    assert before["weights"] == 4 * n and before["grads"] == 0 and before["optimizer_state"] == 0

    _, loss = model(*_batch(model.config))
    loss.backward()
    opt.step()
    got = cost.measured_state_bytes(model, opt)
    # independent reference: numel * element_size of every tensor, gathered another way
    state = [opt.state[p] for p in params]
    assert got["weights"] == _nbytes(params)
    assert got["grads"] == _nbytes(p.grad for p in params)
    assert got["optimizer_state"] == _nbytes(s[k] for s in state for k in ("exp_avg", "exp_avg_sq"))
    assert got["step_counters"] == _nbytes(s["step"] for s in state) == 4 * len(params)  # one float32 per tensor
    per_param = cost.training_bytes_per_param("fp32", "adamw")
    assert got["weights"] + got["grads"] + got["master_weights"] + got["optimizer_state"] == per_param["total"] * n
    assert got["total"] == 16 * n + 4 * len(params)


def test_measured_state_counts_a_shared_storage_once():
    lin = torch.nn.Linear(4, 4, bias=False)
    model = torch.nn.Sequential(lin, lin)                   # the same weight twice
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert cost.measured_state_bytes(model, opt)["weights"] == 4 * 16


def test_bf16_mixed_state_built_by_hand_is_16_bytes_per_param():
    torch.manual_seed(0)
    model = GPT(_cfg())
    half = copy.deepcopy(model).to(torch.bfloat16)         # what the matmuls use
    master = [p.detach().float().clone().requires_grad_(True) for p in half.parameters()]
    opt = torch.optim.AdamW(master, lr=1e-3, foreach=True)
    n = sum(p.numel() for p in master)

    _, loss = half(*_batch(model.config))
    loss.backward()                                        # bfloat16 gradients
    for m, p in zip(master, half.parameters()):
        m.grad = p.grad.float()                            # float32 copies for the update
    opt.step()
    bf16_grads = [p.grad for p in half.parameters()]
    half.zero_grad(set_to_none=True)                       # float32 gradients only: the 18-byte variant
    kept = cost.measured_state_bytes(half, opt)
    want18 = cost.training_bytes_per_param("bf16-mixed-fp32-grads")
    assert kept["weights"] == want18["weights"] * n and kept["master_weights"] == want18["master_weights"] * n
    assert kept["grads"] == want18["grads"] * n
    assert kept["total"] - kept["step_counters"] == want18["total"] * n

    for m, p, g in zip(master, half.parameters(), bf16_grads):
        m.grad = None                                      # bfloat16 gradients only: 16 bytes
        p.grad = g
    got = cost.measured_state_bytes(half, opt)
    want = cost.training_bytes_per_param("bf16-mixed")
    for k in ("weights", "grads", "master_weights", "optimizer_state"):
        assert got[k] == want[k] * n, k
    assert got["total"] - got["step_counters"] == 16 * n


# --- activation memory ------------------------------------------------------------------------

@pytest.mark.parametrize("kw, B, T", [({}, 3, 10), (dict(n_layer=3, n_head=4, n_embd=32, bias=False), 2, 16),
                                      (dict(n_layer=1, vocab_size=7), 1, 1)])
def test_formula_equals_the_saved_tensors(kw, B, T):
    cfg = _cfg(**kw)
    model = GPT(cfg).train()
    f = cost.activation_bytes_formula(cfg, B, T)
    assert cost.saved_activation_bytes(model, *_batch(cfg, B, T)) == f["total"]
    C, H = cfg.n_embd, cfg.n_head
    assert f["per_token_per_layer"] == 4 * (16 * C + 4 + H)
    assert f["total"] == f["per_layer"] * cfg.n_layer + f["outside_layers"]


def test_saved_bytes_grow_by_the_formula_per_layer():
    B, T = 2, 12
    saved = [cost.saved_activation_bytes(GPT(_cfg(n_layer=L)), *_batch(_cfg(), B, T)) for L in (1, 2, 3)]
    per_layer = cost.activation_bytes_formula(_cfg(), B, T)["per_layer"]
    assert saved[1] - saved[0] == saved[2] - saved[1] == per_layer


def test_checkpointing_keeps_only_the_block_inputs():
    cfg = _cfg(n_layer=3)
    B, T = 2, 12
    model = GPT(cfg).train()
    outside = cost.activation_bytes_formula(cfg, B, T)["outside_layers"]
    with cost.checkpoint_blocks(model):
        saved = cost.saved_activation_bytes(model, *_batch(cfg, B, T))
    assert saved == outside + cfg.n_layer * 4 * B * T * cfg.n_embd
    assert cost.saved_activation_bytes(model, *_batch(cfg, B, T)) == cost.activation_bytes_formula(cfg, B, T)["total"]


def test_fit_recovers_the_coefficients_of_synthetic_data():
    Bs, Ts, Ls = [], [], []
    for B in (2, 8):
        for T in (16, 64):
            for L in (1, 2, 4):
                Bs.append(B), Ts.append(T), Ls.append(L)
    y = [8224 * B * T * L + 1320 * B * T + 3e6 for B, T, L in zip(Bs, Ts, Ls)]
    f = cost.fit_activation_bytes(Bs, Ts, Ls, y)
    assert f["bytes_per_token_per_layer"] == pytest.approx(8224, rel=1e-9)
    assert f["bytes_per_token_outside_layers"] == pytest.approx(1320, rel=1e-7)
    assert f["constant"] == pytest.approx(3e6, rel=1e-6)
    assert f["relative_residual"] < 1e-12
    noisy = [v * (1.1 if i % 2 else 0.9) for i, v in enumerate(y)]
    assert cost.fit_activation_bytes(Bs, Ts, Ls, noisy)["relative_residual"] > 0.01


def test_fit_rejects_shapes_that_cannot_separate_the_terms():
    with pytest.raises(ValueError, match="n_layers"):
        cost.fit_activation_bytes([1, 2, 4], [8, 8, 8], [2, 2, 2], [1.0, 2.0, 4.0])


def test_measure_activation_memory_rows():
    cfg = _cfg()
    rows = cost.measure_activation_memory(cfg, [2], [4, 8], [1, 2], repeats=1)
    assert [(r["seq_len"], r["n_layer"]) for r in rows] == [(4, 1), (8, 1), (4, 2), (8, 2)]
    for r in rows:
        c = dataclasses.replace(cfg, n_layer=r["n_layer"])
        assert r["saved_bytes"] == cost.activation_bytes_formula(c, r["batch_size"], r["seq_len"])["total"]
        assert math.isnan(r["peak_bytes"]) or r["peak_bytes"] >= 0


# --- checkpointing ------------------------------------------------------------------------------

def _loss_and_grads(model, batch, seed):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    _, loss = model(*batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("make", [lambda d: GPT(_cfg(n_layer=3, dropout=d)),
                                  lambda d: Llama(LlamaConfig(vocab_size=23, block_size=16, n_layer=3, n_head=2,
                                                              n_embd=16, dropout=d))])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_checkpointing_gives_bitwise_equal_loss_and_gradients(make, dropout):
    torch.manual_seed(0)
    model = make(dropout).train()
    batch = _batch(_cfg())
    loss, grads = _loss_and_grads(model, batch, seed=1)
    with cost.checkpoint_blocks(model):
        loss_ck, grads_ck = _loss_and_grads(model, batch, seed=1)
    assert torch.equal(loss, loss_ck)
    assert grads.keys() == grads_ck.keys()
    for n in grads:
        assert torch.equal(grads[n], grads_ck[n]), n
    if dropout:                                            # dropout really is on: another seed differs
        assert not torch.equal(loss, _loss_and_grads(model, batch, seed=2)[0])


def test_checkpointing_recomputes_and_can_be_removed():
    model = GPT(_cfg(n_layer=2)).train()
    calls = []
    model.blocks[0].ffn.register_forward_pre_hook(lambda *a: calls.append(1))  # recomputation stops early,
    # before the last module returns: a post-hook would not see it

    def ffn_calls():
        calls.clear()
        _, loss = model(*_batch(model.config))
        loss.backward()
        return len(calls)

    assert ffn_calls() == 1
    handle = cost.checkpoint_blocks(model)
    assert ffn_calls() == 2                                # forward, then again inside backward
    with torch.no_grad():                                  # nothing to save: no checkpointing
        calls.clear()
        model(*_batch(model.config))
        assert len(calls) == 1
    with pytest.raises(ValueError, match="already checkpointed"):
        cost.checkpoint_blocks(model)
    handle.remove()
    assert all("forward" not in vars(b) for b in model.blocks)
    assert ffn_calls() == 1


def test_checkpointed_model_still_decodes_with_a_kv_cache():
    model = GPT(_cfg()).eval()
    idx = _batch(model.config, B=1, T=6)[0]
    with torch.no_grad():
        full = model(idx)[0]
    with cost.checkpoint_blocks(model), torch.no_grad():
        caches = model.new_kv_caches()
        model(idx[:, :5], kv_caches=caches)
        last = model(idx[:, 5:], kv_caches=caches)[0]
    assert torch.allclose(last[:, -1], full[:, -1], atol=1e-5)


# --- FLOP/s, MFU and time -----------------------------------------------------------------------

def test_matmul_peak_flops_is_positive_and_restores_threads():
    before = torch.get_num_threads()
    flops = cost.matmul_peak_flops(64, repeats=3, threads=1)
    assert math.isfinite(flops) and flops > 0
    assert torch.get_num_threads() == before


def test_model_flops_per_token_is_palm_6n_plus_12lct():
    cfg = _cfg(n_layer=3, n_embd=32, n_head=4)
    L, C, V, T = cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.block_size
    n_matmul = L * 12 * C * C + V * C                      # blocks' matrices and the tied head
    assert cost.model_flops_per_token(cfg) == 6 * n_matmul + 12 * L * C * T
    assert cost.model_flops_per_token(cfg, 4) == 6 * n_matmul + 12 * L * C * 4


def test_mfu_arithmetic():
    assert cost.mfu(3e12, 2.0, 6e12) == pytest.approx(0.25)
    f, s, p = 7.3e14, 0.37, 2.1e14
    assert cost.mfu(f, s, p) * s * p == pytest.approx(f, rel=1e-12)


def test_training_time_and_implied_mfu_are_inverse():
    N, D, peak = 7e9, 2e12, 989e12
    for m, k in ((0.4, 1), (0.35, 64), (0.05, 3)):
        seconds = cost.training_time(N, D, peak, m, n_devices=k)
        assert seconds == pytest.approx(6 * N * D / (k * peak * m), rel=1e-12)
        assert cost.implied_mfu(N, D, seconds * k / 3600, peak) == pytest.approx(m, rel=1e-12)
    hours = 1.0e5
    m = cost.implied_mfu(N, D, hours, peak)
    assert cost.training_time(N, D, peak, m) == pytest.approx(hours * 3600, rel=1e-12)


def test_published_runs():
    gpt3 = cost.PUBLISHED_RUNS["gpt3-175b"]
    assert 6 * gpt3["params"] * gpt3["tokens"] == pytest.approx(gpt3["reported_flops"], rel=0.01)
    assert cost.ACCELERATORS["H100-SXM"]["bf16_dense_flops"] == 989e12
    assert cost.ACCELERATORS["A100-SXM"]["bf16_dense_flops"] == 312e12
    for name, n, hours in (("llama3-8b", 8e9, 1.3e6), ("llama3-70b", 70e9, 6.4e6)):
        by_hand = 6 * n * 15e12 / (hours * 3600 * 989e12)
        assert cost.published_run_mfu(name) == pytest.approx(by_hand, rel=1e-12)
        assert 0 < cost.published_run_mfu(name) < 1
    assert cost.PUBLISHED_RUNS["gpt2-small"]["tokens"] is None
    for name in ("gpt3-175b", "gpt2-small"):
        with pytest.raises(ValueError, match="no published"):
            cost.published_run_mfu(name)
