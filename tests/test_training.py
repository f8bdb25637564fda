"""Tests for lmlib.training: schedule, parameter groups, accumulation, determinism, resume."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lmlib import training
from lmlib.training import History, TrainConfig, lr_at, train


class ToyLM(nn.Module):
    """Embedding -> dropout -> LayerNorm -> tied output layer; forward returns (logits, loss)."""

    def __init__(self, vocab_size: int = 11, d: int = 16, dropout: float = 0.1):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, d)
        self.mix = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab_size, bias=False)
        self.head.weight = self.emb.weight  # tied, like GPT-2

    def forward(self, idx, targets=None):
        h = self.ln(self.drop(torch.tanh(self.mix(self.emb(idx)))))
        logits = self.head(h)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)
        return logits, loss


DATA = torch.randint(0, 11, (500,), generator=torch.Generator().manual_seed(0))


def get_batch(g):
    from lmlib.data import sample_batch
    return sample_batch(DATA, 8, 4, generator=g)


def small_config(**kw):
    base = dict(max_steps=12, lr=1e-2, warmup_steps=3, eval_interval=4, progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def test_lr_schedule_matches_hand_formula():
    cfg = TrainConfig(max_steps=101, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    mid = 10 + 45  # halfway through the cosine: (1 + cos(pi/2)) / 2 = 1/2
    assert lr_at(mid, cfg) == pytest.approx(0.1 + 0.9 * 0.5)
    # independent reference: torch's CosineAnnealingLR follows the same closed form
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=90, eta_min=0.1)
    for s in range(10, 101):
        assert lr_at(s, cfg) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-9)
        opt.step()
        sched.step()


def test_param_groups_decay_only_matrices_and_count_tied_once():
    m = ToyLM()
    decay, no_decay = training.param_groups(m, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(m.parameters()))
    assert any(p is m.emb.weight for p in decay["params"])


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="exp")
    with pytest.raises(ValueError, match="unknown TrainConfig"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(TypeError, match="batch"):
        train(ToyLM(), lambda g: torch.zeros(2, 3, dtype=torch.long), small_config())


def test_training_reduces_loss_and_records_history():
    torch.manual_seed(0)
    m = ToyLM(dropout=0.0)
    eval_fn = training.make_lm_eval_fn(DATA, 8, 4, n_batches=3)
    before = eval_fn(m)["val_loss"]
    h = train(m, get_batch, small_config(max_steps=40, lr=3e-2), eval_fn=eval_fn)
    assert h.steps == list(range(1, 41)) and len(h.train_loss) == 40 and len(h.lr) == 40
    assert h.eval_steps == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    assert h.evals["val_loss"][0] == pytest.approx(before)
    assert h.evals["val_loss"][-1] < before - 0.2
    assert h.tokens == 40 * 4 * 8
    assert History.from_dict(h.to_dict()) == h
    assert set(h.curves(smooth=5)) == {"train loss (mean of 5)", "val_loss"}


def test_same_seed_same_run_bitwise():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = ToyLM()
        h = train(m, get_batch, small_config())
        runs.append((h.train_loss, [p.detach().clone() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_gradient_accumulation_equals_one_big_batch():
    """Two micro-batches of 4 accumulate to the gradient of one batch of 8 (same examples)."""
    g = torch.Generator().manual_seed(5)
    from lmlib.data import sample_batch
    x, y = sample_batch(DATA, 8, 8, generator=g)
    halves = [(x[:4], y[:4]), (x[4:], y[4:])]
    cfg = dict(max_steps=1, warmup_steps=0, grad_clip=None, progress=False, weight_decay=0.0)
    torch.manual_seed(1)
    a = ToyLM(dropout=0.0)
    b = ToyLM(dropout=0.0)
    b.load_state_dict(a.state_dict())
    train(a, [(x, y)], TrainConfig(**cfg))
    train(b, halves, TrainConfig(grad_accum_steps=2, **cfg))
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


_ADAMW_STEP = torch.optim.AdamW.step


def _grads_at_step(monkeypatch, model, data, **cfg):
    """The gradients that the optimiser sees at its (single) step."""
    seen = []
    orig = _ADAMW_STEP

    def spy(self, *a, **k):
        seen.append([p.grad.clone() for p in model.parameters()])
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    train(model, data, TrainConfig(max_steps=1, warmup_steps=0, grad_clip=None, progress=False, **cfg))
    return seen[0]


def test_accumulation_weights_micro_batches_by_their_number_of_targets(monkeypatch):
    """Masked-LM style labels: micro-batches with 2 and 6 targets accumulate to exactly the gradient
    of one big batch whose loss is the mean over its 8 targets (not the mean of the two means)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 11, (2, 8), generator=g)
    y = torch.full_like(x, -100)
    y[0, :2] = x[0, :2]        # 2 targets in the first micro-batch
    y[1, 1:7] = x[1, 1:7]      # 6 in the second
    torch.manual_seed(1)
    a = ToyLM(dropout=0.0)
    b = ToyLM(dropout=0.0)
    b.load_state_dict(a.state_dict())
    init = {k: v.clone() for k, v in a.state_dict().items()}
    big = _grads_at_step(monkeypatch, a, [(x, y)])
    acc = _grads_at_step(monkeypatch, b, [(x[:1], y[:1]), (x[1:], y[1:])], grad_accum_steps=2)
    for ga, gb in zip(big, acc):
        torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-7)
    # the same with dict batches ("labels"), as BertForMaskedLM takes them
    class DictLM(ToyLM):
        def forward(self, input_ids, labels=None):
            return super().forward(input_ids, labels)

    torch.manual_seed(1)
    c = DictLM(dropout=0.0)
    c.load_state_dict(init)
    acc_dict = _grads_at_step(monkeypatch, c, [{"input_ids": x[:1], "labels": y[:1]},
                                               {"input_ids": x[1:], "labels": y[1:]}], grad_accum_steps=2)
    for ga, gc in zip(big, acc_dict):
        torch.testing.assert_close(ga, gc, rtol=1e-5, atol=1e-7)


def test_accumulation_of_equal_micro_batches_is_unchanged(monkeypatch):
    """Equal target counts: each loss is divided by grad_accum_steps, as before (bitwise)."""
    x, y = get_batch(torch.Generator().manual_seed(2))
    torch.manual_seed(1)
    a = ToyLM(dropout=0.0)
    grads = _grads_at_step(monkeypatch, a, [(x[:2], y[:2]), (x[2:], y[2:])], grad_accum_steps=2)
    torch.manual_seed(1)
    b = ToyLM(dropout=0.0)
    (b(x[:2], y[:2])[1] / 2).backward()
    (b(x[2:], y[2:])[1] / 2).backward()
    for ga, p in zip(grads, b.parameters()):
        assert torch.equal(ga, p.grad)


def test_a_batch_with_no_targets_is_a_clear_error_not_a_nan_loss():
    x, y = get_batch(torch.Generator().manual_seed(2))
    nothing = torch.full_like(y, -100)
    for data, accum in (([(x, nothing)], 1), ([(x, y), (x, nothing)], 2),
                        ([{"idx": x, "targets": nothing}], 1)):
        with pytest.raises(ValueError, match="no targets to predict: all its labels/targets are -100"):
            train(ToyLM(), data, small_config(max_steps=1, grad_accum_steps=accum))
    # evaluation skips such a batch instead of returning NaN
    m = ToyLM(dropout=0.0)
    assert training.evaluate_loss(m, [(x, y), (x, nothing)]) == pytest.approx(training.evaluate_loss(m, [(x, y)]))


def test_train_config_validates_every_field():
    for kw, word in [(dict(weight_decay=float("nan")), "weight_decay"), (dict(eps=-1.0), "eps"),
                     (dict(grad_clip=float("nan")), "grad_clip"), (dict(device="gpu"), "device"),
                     (dict(seed="0"), "seed"), (dict(lr=float("inf")), "lr"), (dict(max_steps=2.0), "max_steps"),
                     (dict(betas=(0.9,)), "betas"), (dict(betas="ab"), "betas"), (dict(compile=1), "compile"),
                     (dict(progress="no"), "progress"), (dict(checkpoint_path=3), "checkpoint_path"),
                     (dict(desc=None), "desc"), (dict(autocast_dtype="fp8"), "autocast_dtype")]:
        with pytest.raises((TypeError, ValueError), match=word):
            TrainConfig(**kw)


def test_clipping_bounds_the_update():
    """With lr=1 and plain SGD-like first step, AdamW's first update is lr * sign-ish; instead check
    the clipped gradient norm directly through a hook on the optimiser step."""
    m = ToyLM(dropout=0.0)
    norms = []
    orig = torch.optim.AdamW.step

    def spy(self, *a, **k):
        norms.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for g in self.param_groups
                                   for p in g["params"] if p.grad is not None)))
        return orig(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        train(m, get_batch, small_config(max_steps=3, grad_clip=1e-3))
    finally:
        torch.optim.AdamW.step = orig
    assert len(norms) == 3 and all(n <= 1e-3 * (1 + 1e-4) for n in norms)


def test_iterable_data_is_cycled_and_resumed():
    batches = [get_batch(torch.Generator().manual_seed(i)) for i in range(3)]
    m = ToyLM(dropout=0.0)
    h = train(m, batches, small_config(max_steps=7))
    assert len(h.train_loss) == 7


def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path):
    """Stop at step 5 (checkpoint written), resume in a FRESH model, finish: same weights, losses
    and evaluations as a run that never stopped. Dropout is on, so the global RNG state matters."""
    eval_fn = training.make_lm_eval_fn(DATA, 8, 4, n_batches=2)
    torch.manual_seed(0)
    full = ToyLM()
    h_full = train(full, get_batch, small_config(), eval_fn=eval_fn)

    path = tmp_path / "run.safetensors"
    torch.manual_seed(0)
    first = ToyLM()
    train(first, get_batch, small_config(checkpoint_path=str(path)), eval_fn=eval_fn, stop_after=5)
    assert path.exists()
    torch.manual_seed(999)  # disturb every RNG: the checkpoint must restore them
    second = ToyLM()
    h_res = train(second, get_batch, small_config(checkpoint_path=str(path)), eval_fn=eval_fn,
                  resume_from=str(path))
    assert h_res.train_loss == h_full.train_loss
    assert h_res.evals == h_full.evals and h_res.eval_steps == h_full.eval_steps
    for (n, a), (_, b) in zip(full.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), n


def test_resume_refuses_a_different_optimisation(tmp_path):
    path = tmp_path / "run.safetensors"
    train(ToyLM(), get_batch, small_config(checkpoint_path=str(path)), stop_after=2)
    with pytest.raises(ValueError, match="lr"):
        train(ToyLM(), get_batch, small_config(lr=0.5), resume_from=str(path))


def test_sequential_batches_cover_every_target_once():
    data = torch.arange(23)
    batches = training.sequential_lm_batches(data, 5, 2)
    ys = torch.cat([y.reshape(-1) for _, y in batches])
    xs = torch.cat([x.reshape(-1) for x, _ in batches])
    assert torch.equal(ys, torch.arange(1, 23)) and torch.equal(xs, torch.arange(0, 22))


def test_evaluate_loss_weights_by_targets():
    """The weighted mean over uneven batches equals the loss over all tokens at once."""
    torch.manual_seed(0)
    m = ToyLM(dropout=0.0)
    batches = training.sequential_lm_batches(DATA[:103], 10, 4)
    with torch.no_grad():
        logits, _ = m(DATA[:102][None])
    ref = F.cross_entropy(logits[0], DATA[1:103])
    assert training.evaluate_loss(m, batches) == pytest.approx(ref.item(), rel=1e-5)


# --------------------------------------------------------------------------------------------
# The command line and the cache of trained models
# --------------------------------------------------------------------------------------------

def test_cli_help_documents_the_config():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "lmlib.train", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    assert "--config" in out.stdout and "--resume" in out.stdout and "--cache" in out.stdout


def test_cli_config_errors(tmp_path):
    from lmlib.train import load_config
    bad = tmp_path / "bad.json"
    bad.write_text('{"modle": {}}')
    with pytest.raises(ValueError, match="unknown section"):
        load_config(bad)
    bad.write_text('{"model": {"n_layers": 3}}')
    with pytest.raises(ValueError, match="n_layers"):
        load_config(bad)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.json")


TINY = {"data": {"batch_size": 4, "eval_batches": 1},
        "model": {"block_size": 32, "n_layer": 1, "n_head": 2, "n_embd": 16},
        "train": {"max_steps": 4, "warmup_steps": 1, "eval_interval": 2}}


def small_course_data(split_seed=0, *, tokenizer="char", vocab_size=None):
    """The real tokenizer and split, but only the first 20,000 characters of each part (fast)."""
    assert tokenizer == "char" and vocab_size is None
    from lmlib.data import corpus_text, split_plays
    from lmlib.pretrained import CourseData
    from lmlib.tokenizers import CharTokenizer
    tok = CharTokenizer.from_text(corpus_text())
    split = split_plays(seed=split_seed)
    ids = {p: torch.tensor(tok.encode(split.text(p)[:20_000]), dtype=torch.int16) for p in ("train", "val", "test")}
    return CourseData(tok, split, ids["train"], ids["val"], ids["test"])


def test_cli_trains_caches_and_course_gpt_loads_it(tmp_path, monkeypatch):
    import json
    from lmlib import pretrained
    from lmlib.train import main
    monkeypatch.setenv("LMLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pretrained, "course_data", small_course_data)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({**TINY, "out_dir": str(tmp_path / "run"), "checkpoint_interval": 2}))
    assert main(["--config", str(cfg), "--cache", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["bits_per_char"] == pytest.approx(metrics["loss"] / math.log(2))
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()
    assert pretrained.cache_dir() == tmp_path / "cache"

    loaded = pretrained.course_gpt(TINY, progress=False)  # same recipe -> same hash -> from the cache
    assert loaded.from_cache and loaded.history.steps[-1] == 4
    # the cached weights are those of a fresh deterministic training run with the same recipe
    retrained = pretrained.course_gpt(TINY, progress=False, retrain=True, cache=tmp_path / "other")
    assert not retrained.from_cache
    for (k, a), (_, b) in zip(loaded.model.state_dict().items(), retrained.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert loaded.history.train_loss == retrained.history.train_loss


def test_cached_model_generic_and_corrupt_entry(tmp_path):
    from lmlib import pretrained
    calls = []

    def fit(model):
        calls.append(1)
        return train(model, get_batch, small_config(max_steps=3))

    recipe = {"what": "toy", "steps": 3}
    a = pretrained.cached_model("toy", recipe, build=ToyLM, fit=fit, cache=tmp_path, verbose=False)
    b = pretrained.cached_model("toy", recipe, build=ToyLM, fit=fit, cache=tmp_path, verbose=False)
    assert calls == [1] and not a.from_cache and b.from_cache
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert b.model.head.weight is b.model.emb.weight
    c = pretrained.cached_model("toy", {**recipe, "steps": 4}, build=ToyLM, fit=fit, cache=tmp_path, verbose=False)
    assert not c.from_cache and len(calls) == 2 and c.path != a.path
    a.path.write_bytes(a.path.read_bytes()[:100])  # corrupt the entry: it is retrained, with a warning
    with pytest.warns(UserWarning, match="unusable cache entry"):
        d = pretrained.cached_model("toy", recipe, build=ToyLM, fit=fit, cache=tmp_path, verbose=False)
    assert not d.from_cache and len(calls) == 3
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), d.model.parameters()))


def test_gpt_with_dropout_resumes_bitwise(tmp_path):
    """The same resume guarantee on the course's GPT (dropout on, accumulation of 2 micro-batches)."""
    from lmlib.gpt import GPT, GPTConfig
    cfg_model = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.2)
    path = str(tmp_path / "gpt.safetensors")
    cfg = small_config(max_steps=6, grad_accum_steps=2, checkpoint_path=path)
    torch.manual_seed(0)
    full = GPT(cfg_model)
    h_full = train(full, get_batch, small_config(max_steps=6, grad_accum_steps=2))
    torch.manual_seed(0)
    train(GPT(cfg_model), get_batch, cfg, stop_after=4)
    resumed = GPT(cfg_model)
    h_res = train(resumed, get_batch, cfg, resume_from=path)
    assert h_res.train_loss == h_full.train_loss
    assert all(torch.equal(a, b) for a, b in zip(full.parameters(), resumed.parameters()))


# --------------------------------------------------------------------------------------------
# Gradient norm, float16 with a gradient scaler, accumulation against an independent reference
# --------------------------------------------------------------------------------------------

def _reference_run(model, cfg):
    """What train() does without float16, written out: the losses and the gradient norms before
    clipping (computed independently, in float64, from the gradients)."""
    import contextlib

    training.seed_everything(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model.train()
    opt = training.make_optimizer(model, cfg)
    losses, norms = [], []
    for step in range(cfg.max_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, y = get_batch(g)
        dtype = getattr(torch, cfg.autocast_dtype) if cfg.autocast_dtype else None
        with torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext():
            _, loss = model(x, y)
        loss.backward()
        norms.append(math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters())))
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses, norms


@pytest.mark.parametrize("autocast_dtype", [None, "bfloat16"])
@pytest.mark.parametrize("grad_clip", [1.0, 0.05, None])
def test_without_float16_the_loop_is_the_plain_algorithm_bitwise(autocast_dtype, grad_clip):
    """No scaler outside float16: the losses and weights are bitwise those of the plain loop (also
    with grad_clip=None, where the norm is computed with max_norm=inf, a multiplication by 1), and
    grad_norm is the gradient's norm before clipping."""
    cfg = small_config(max_steps=8, grad_clip=grad_clip, autocast_dtype=autocast_dtype)
    torch.manual_seed(0)
    model = ToyLM()
    ref = ToyLM()
    ref.load_state_dict(model.state_dict())
    h = train(model, get_batch, cfg)
    losses, norms = _reference_run(ref, cfg)
    assert h.train_loss == losses
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref.parameters()))
    assert len(h.grad_norm) == len(h.steps) == 8
    assert h.grad_norm == pytest.approx(norms, rel=1e-5)
    if grad_clip == 0.05:
        assert min(h.grad_norm) > 0.05  # recorded before clipping, not after


def test_grad_norm_follows_log_interval_and_round_trips():
    h = train(ToyLM(), get_batch, small_config(max_steps=7, log_interval=3))
    assert h.steps == [3, 6, 7] and len(h.grad_norm) == 3 and all(n > 0 for n in h.grad_norm)
    assert History.from_dict(h.to_dict()) == h


def test_a_history_stored_without_grad_norm_still_loads():
    old = {"steps": [1, 2], "train_loss": [2.0, 1.5], "lr": [0.1, 0.1], "eval_steps": [], "evals": {},
           "tokens": 64, "seconds": 0.5}
    h = History.from_dict(old)
    assert h.grad_norm == [] and h.steps == [1, 2]
    with pytest.raises(ValueError, match="grad_norm"):
        History.from_dict({**old, "grad_norm": ["big"]})


class _PatternLM(ToyLM):
    """ToyLM on a periodic sequence, which it can learn quickly; ``loss_factor`` makes the
    gradients tiny (float16 underflow) or large."""

    def __init__(self, loss_factor: float = 1.0):
        super().__init__(dropout=0.0)
        self.loss_factor = loss_factor

    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        return logits, (None if loss is None else loss * self.loss_factor)


PATTERN = torch.arange(400) % 7


def _pattern_batch(g):
    from lmlib.data import sample_batch
    return sample_batch(PATTERN, 8, 4, generator=g)


def test_float16_trains_on_cpu_with_a_gradient_scaler():
    torch.manual_seed(0)
    fp16 = _PatternLM()
    fp32 = _PatternLM()
    fp32.load_state_dict(fp16.state_dict())
    cfg = dict(max_steps=40, lr=3e-2, warmup_steps=3)
    h16 = train(fp16, _pattern_batch, small_config(autocast_dtype="float16", **cfg))
    h32 = train(fp32, _pattern_batch, small_config(**cfg))
    assert all(math.isfinite(v) for v in h16.train_loss)
    assert all(torch.isfinite(p).all() for p in fp16.parameters())
    assert h16.train_loss[-1] < 0.25 * h16.train_loss[0]
    assert h16.train_loss[-1] == pytest.approx(h32.train_loss[-1], rel=0.05, abs=0.02)


def test_float16_gradients_are_unscaled_and_do_not_underflow(monkeypatch):
    """A loss 1e-6 times smaller: under float16 autocast without a scaler, many gradient entries
    underflow to 0; with the scaler, the gradient the optimiser sees is the float32 one up to
    float16 rounding (so it has been divided back by the scale)."""
    seen = []
    orig = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append(torch.cat([p.grad.flatten() for g in self.param_groups for p in g["params"]]))
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    x, y = _pattern_batch(torch.Generator().manual_seed(0))
    cfg = dict(max_steps=1, warmup_steps=0, grad_clip=None, progress=False)
    torch.manual_seed(0)
    a = _PatternLM(loss_factor=1e-6)
    b = _PatternLM(loss_factor=1e-6)
    c = _PatternLM(loss_factor=1e-6)
    b.load_state_dict(a.state_dict())
    c.load_state_dict(a.state_dict())
    train(a, [(x, y)], TrainConfig(autocast_dtype="float16", **cfg))
    train(b, [(x, y)], TrainConfig(**cfg))
    g16, g32 = seen
    with torch.autocast("cpu", dtype=torch.float16):   # the same backward without a scaler
        _, loss = c(x, y)
    loss.backward()
    unscaled = torch.cat([p.grad.flatten() for p in c.parameters()])
    lost = int(((unscaled == 0) & (g32 != 0)).sum())
    assert lost > 0.1 * torch.count_nonzero(g32)                  # 79 of 480 when written
    assert float((unscaled - g32).norm() / g32.norm()) > 0.5
    assert torch.count_nonzero(g16) == torch.count_nonzero(g32)
    assert float((g16 - g32).norm() / g32.norm()) < 1e-2


def test_float16_overflow_skips_the_step_and_the_scaler_state_is_checkpointed(tmp_path):
    """ToyLM's first float16 steps overflow at the initial scale 65536: those steps are skipped
    (weights unchanged, grad_norm inf or NaN) while the scale halves. The scale is saved in the
    checkpoint, so a resumed run is bitwise the uninterrupted one (a fresh scaler would overflow
    and skip again)."""
    from lmlib.checkpoint import read_checkpoint

    torch.manual_seed(0)
    full = ToyLM(dropout=0.0)
    init = {k: v.clone() for k, v in full.state_dict().items()}
    h1 = train(full, get_batch, small_config(max_steps=1, autocast_dtype="float16"))
    assert not math.isfinite(h1.grad_norm[0])
    assert all(torch.equal(v, init[k]) for k, v in full.state_dict().items())

    path = tmp_path / "fp16.safetensors"
    cfg = small_config(max_steps=8, autocast_dtype="float16", checkpoint_path=str(path))
    full.load_state_dict(init)
    h_full = train(full, get_batch, small_config(max_steps=8, autocast_dtype="float16"))
    assert all(math.isfinite(n) for n in h_full.grad_norm[3:])  # the scale has come down
    part = ToyLM(dropout=0.0)
    part.load_state_dict(init)
    train(part, get_batch, cfg, stop_after=4)
    saved = read_checkpoint(path)[1]["extra"]["grad_scaler"]
    assert saved["scale"] < 65536.0
    resumed = ToyLM(dropout=0.0)
    h_res = train(resumed, get_batch, cfg, resume_from=str(path))
    assert h_res.train_loss == h_full.train_loss
    assert h_res.grad_norm[4:] == h_full.grad_norm[4:]
    assert all(torch.equal(a, b) for a, b in zip(full.parameters(), resumed.parameters()))


def test_a_corrupt_scaler_state_refuses_the_resume_before_anything_changes(tmp_path):
    from lmlib.checkpoint import read_checkpoint, atomic_save_tensors
    import json

    path = tmp_path / "fp16.safetensors"
    cfg = small_config(max_steps=4, autocast_dtype="float16", checkpoint_path=str(path))
    train(ToyLM(dropout=0.0), get_batch, cfg, stop_after=2)
    tensors, meta = read_checkpoint(path)
    meta["extra"]["grad_scaler"]["scale"] = -1.0
    atomic_save_tensors(path, tensors, metadata={"lmlib": json.dumps(meta)})
    model = ToyLM(dropout=0.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="grad_scaler"):
        train(model, get_batch, cfg, resume_from=str(path))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # a checkpoint written without the scaler's state (before it was saved) resumes with a fresh scaler
    del meta["extra"]["grad_scaler"]
    atomic_save_tensors(path, tensors, metadata={"lmlib": json.dumps(meta)})
    h = train(ToyLM(dropout=0.0), get_batch, cfg, resume_from=str(path))
    assert h.steps == [1, 2, 3, 4] and len(h.grad_norm) == 4


def test_accumulation_of_unequal_micro_batches_is_the_mean_over_all_targets(monkeypatch):
    """Three micro-batches with 1, 5 and 5 targets (labels -100 elsewhere): the accumulated gradient
    is the gradient of the mean loss over all 11 targets of the concatenated batch, computed here
    directly (sum of the per-target losses / 11), not through train()."""
    g = torch.Generator().manual_seed(7)
    x = torch.randint(0, 11, (3, 8), generator=g)
    y = torch.full_like(x, -100)
    y[0, 3] = x[0, 3]
    y[1, :5] = x[1, :5]
    y[2, 2:7] = x[2, 2:7]
    torch.manual_seed(1)
    model = ToyLM(dropout=0.0)
    ref = ToyLM(dropout=0.0)
    ref.load_state_dict(model.state_dict())
    acc = _grads_at_step(monkeypatch, model, [(x[i:i + 1], y[i:i + 1]) for i in range(3)], grad_accum_steps=3)
    logits, _ = ref(x)
    per_target = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100,
                                 reduction="sum")
    (per_target / int((y != -100).sum())).backward()
    for ga, p in zip(acc, ref.parameters()):
        torch.testing.assert_close(ga, p.grad, rtol=1e-5, atol=1e-7)
    # the mean of the three means would weight the single target of the first micro-batch 5 times more
    assert training._loss_divisors([(x[i:i + 1], y[i:i + 1]) for i in range(3)], 0) == [11.0, 11 / 5, 11 / 5]
