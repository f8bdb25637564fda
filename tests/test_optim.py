"""lmlib.optim.AdamW against the independent reference torch.optim.AdamW."""

import copy
import io

import pytest
import torch
from torch import nn

from lmlib.gpt import GPT, GPTConfig
from lmlib.optim import AdamW

V, T = 23, 8


def _gpt(bias: bool = True) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=16, bias=bias))


def _groups(model: nn.Module) -> list[dict]:
    """Matrices decayed; vectors not decayed and with their own betas and eps."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": 0.1},
            {"params": other, "weight_decay": 0.0, "betas": (0.8, 0.95), "eps": 1e-6}]


def _batches(n: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, V, (4, T), generator=g), torch.randint(0, V, (4, T), generator=g)) for _ in range(n)]


def _lr(step: int) -> float:
    """A schedule that changes the learning rate at every step (set on the groups, as lr_at is)."""
    return 1e-2 * (0.3 + 0.7 * ((step * 5) % 9) / 9)


def _run(model, opt, batches, first_step: int = 0) -> list[list[torch.Tensor]]:
    """Train on ``batches``; the parameters after every step."""
    after = []
    for i, (x, y) in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = _lr(first_step + i)
        model(x, y)[1].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        after.append([p.detach().clone() for p in model.parameters()])
    return after


def _max_diff(run_a, run_b) -> float:
    return max(float((a - b).abs().max()) for pa, pb in zip(run_a, run_b) for a, b in zip(pa, pb))


def test_same_steps_as_torch_adamw_single_tensor():
    """50 steps of a GPT with two parameter groups and a changing learning rate: bitwise the same
    as torch.optim.AdamW(foreach=False), which runs the same elementwise operations in the same
    order (measured max difference: 0.0)."""
    ours, ref = _gpt(), _gpt()
    batches = _batches(50)
    a = _run(ours, AdamW(_groups(ours), lr=1e-2, betas=(0.9, 0.99)), batches)
    b = _run(ref, torch.optim.AdamW(_groups(ref), lr=1e-2, betas=(0.9, 0.99), foreach=False), batches)
    assert _max_diff(a, b) == 0.0


@pytest.mark.parametrize("impl", [{"foreach": True}, {}])
def test_same_steps_as_torch_adamw_multi_tensor(impl):
    """Against torch's default (multi-tensor) kernels, equal up to rounding. The GPT has no biases
    here: the key projection's bias has a gradient that is exactly zero in exact arithmetic (a
    constant added to every score of a query does not change its softmax), so its computed
    gradient is rounding noise, which Adam's normalisation turns into steps of size lr; any
    difference in rounding would then show up as a difference of order lr in that bias."""
    ours, ref = _gpt(bias=False), _gpt(bias=False)
    batches = _batches(50)
    a = _run(ours, AdamW(_groups(ours), lr=1e-2, betas=(0.9, 0.99)), batches)
    b = _run(ref, torch.optim.AdamW(_groups(ref), lr=1e-2, betas=(0.9, 0.99), **impl), batches)
    assert _max_diff(a, b) <= 1e-6


def test_defaults_are_torchs():
    p = [nn.Parameter(torch.zeros(2))]
    ours, ref = AdamW(p).defaults, torch.optim.AdamW(p).defaults
    assert {k: ours[k] for k in ours} == {k: ref[k] for k in ours}


def test_weight_decay_is_decoupled_from_the_gradient():
    """With a zero gradient both moments stay zero, so the step is the decay alone:
    θ ← θ (1 − lr λ), whatever the Adam normalisation would have done to λθ."""
    w = nn.Parameter(torch.randn(3, 4))
    before = w.detach().clone()
    opt = AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = torch.zeros_like(w)
    opt.step()
    assert torch.equal(w.detach(), before * (1 - 0.1 * 0.5))


def test_first_step_has_size_lr():
    """Bias correction: m̂ = g and v̂ = g² at step 1, so every weight moves by lr·sign(g)."""
    w = nn.Parameter(torch.zeros(5))
    opt = AdamW([w], lr=0.01, weight_decay=0.0, eps=1e-12)
    w.grad = torch.tensor([3.0, -0.001, 1e4, -2.0, 0.5])
    opt.step()
    torch.testing.assert_close(w.detach(), -0.01 * torch.sign(w.grad), rtol=1e-6, atol=0)


def test_parameters_without_gradient_are_untouched():
    a, b = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = AdamW([a, b], lr=0.1)
    a.grad = torch.ones(2)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and b not in opt.state


def test_closure_returns_the_loss():
    w = nn.Parameter(torch.tensor([1.0]))
    opt = AdamW([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure).detach()) == 1.0 and float(w.detach()) < 1.0


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf)


def test_state_dict_round_trip_continues_identically():
    """Stop after 10 steps, save model and optimiser, load both into fresh objects: the next 10
    steps are bitwise those of the run that went on."""
    batches = _batches(20)
    model = _gpt()
    opt = AdamW(_groups(model), lr=1e-2)
    _run(model, opt, batches[:10])
    saved_model, saved_opt = _roundtrip(model.state_dict()), _roundtrip(opt.state_dict())
    assert set(saved_opt["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert float(saved_opt["state"][0]["step"]) == 10
    went_on = _run(model, opt, batches[10:], first_step=10)

    fresh = _gpt()
    fresh.load_state_dict(saved_model)
    fresh_opt = AdamW(_groups(fresh), lr=1e-2)
    fresh_opt.load_state_dict(saved_opt)
    assert fresh_opt.param_groups[1]["betas"] == (0.8, 0.95)
    resumed = _run(fresh, fresh_opt, batches[10:], first_step=10)
    assert _max_diff(went_on, resumed) == 0.0


def test_checkpoint_file_round_trip(tmp_path):
    """The same through lmlib.checkpoint (one safetensors file)."""
    from lmlib.checkpoint import load_checkpoint, save_checkpoint

    batches = _batches(12)
    model = _gpt()
    opt = AdamW(_groups(model), lr=1e-2)
    _run(model, opt, batches[:6])
    save_checkpoint(tmp_path / "c.safetensors", model, opt, step=6)
    went_on = _run(model, opt, batches[6:], first_step=6)
    fresh = _gpt()
    fresh_opt = AdamW(_groups(fresh), lr=1e-2)
    assert load_checkpoint(tmp_path / "c.safetensors", fresh, fresh_opt).step == 6
    assert _max_diff(went_on, _run(fresh, fresh_opt, batches[6:], first_step=6)) == 0.0


def test_hyper_parameters_of_a_group_are_checked_and_named():
    p = [nn.Parameter(torch.zeros(2))]
    q = [nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="lr of parameter group 1"):
        AdamW([{"params": p}, {"params": q, "lr": -1.0}])
    with pytest.raises(ValueError, match=r"betas of parameter group 0\[1\]"):
        AdamW([{"params": p, "betas": (0.9, 1.0)}])
    opt = AdamW([{"params": p}])
    with pytest.raises(ValueError, match="weight_decay of parameter group 1"):
        opt.add_param_group({"params": q, "weight_decay": float("nan")})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": (t for t in q)})  # a generator is read once, not lost
    assert opt.param_groups[1]["params"] == q
