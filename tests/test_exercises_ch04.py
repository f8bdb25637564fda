import torch

from lmlib.exercises import ch04


def good_count(V, P, L, C):
    return V * C + P * C + L * (12 * C * C + 13 * C) + 2 * C


def test_param_count():
    assert ch04.check_gpt_param_count(good_count, quiet=True)
    assert not ch04.check_gpt_param_count(None, quiet=True)
    v = ch04.check_gpt_param_count(lambda V, P, L, C: good_count(V, P, L, C) + V * C, quiet=True)
    assert not v and "tied" in v.message
    v = ch04.check_gpt_param_count(lambda V, P, L, C: good_count(V, P, L, C) - 2 * C, quiet=True)
    assert not v and "final LayerNorm" in v.message
    v = ch04.check_gpt_param_count(lambda V, P, L, C: good_count(V, P, L, C) - P * C, quiet=True)
    assert not v and "position" in v.message
    v = ch04.check_gpt_param_count(lambda V, P, L, C: 1 / 0, quiet=True)
    assert not v and "ZeroDivisionError" in v.message


def test_split_c_attn():
    def right(W):
        C = W.shape[0]
        return tuple(W[:, i * C:(i + 1) * C].t() for i in range(3))

    assert ch04.check_split_c_attn(right, quiet=True)
    v = ch04.check_split_c_attn(lambda W: tuple(W[:, i * 6:(i + 1) * 6] for i in range(3)), quiet=True)
    assert not v and "transposed" in v.message
    v = ch04.check_split_c_attn(lambda W: W.chunk(3, dim=0), quiet=True)
    assert not v and "split dim 1" in v.message
    v = ch04.check_split_c_attn(lambda W: tuple(W.reshape(3, 6, 6)), quiet=True)
    assert not v and "reshape" in v.message
    v = ch04.check_split_c_attn(lambda W: tuple(reversed(right(W))), quiet=True)
    assert not v and "order" in v.message
    assert not ch04.check_split_c_attn(lambda W: (W,), quiet=True)


def right_warmup(step, peak_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return peak_lr * (total_steps - step) / (total_steps - warmup_steps)


def test_warmup_lr_right_answers_pass():
    assert ch04.check_warmup_lr(right_warmup, quiet=True)
    # the same schedule written another way (min of the two lines) passes too
    assert ch04.check_warmup_lr(lambda s, p, W, N: p * min((s + 1) / W if W else 1.0, (N - s) / (N - W)),
                                quiet=True)
    assert ch04.check_warmup_lr(lambda s, p, W, N: torch.tensor(right_warmup(s, p, W, N)), quiet=True)


def test_warmup_lr_typical_mistakes_get_their_hint():
    def wrong(warm, decay):
        return lambda s, p, W, N: warm(s, p, W, N) if s < W else decay(s, p, W, N)

    warm_ok = lambda s, p, W, N: p * (s + 1) / W            # noqa: E731
    decay_ok = lambda s, p, W, N: p * (N - s) / (N - W)      # noqa: E731
    cases = [
        (wrong(lambda s, p, W, N: p * s / W, decay_ok), "off by one in the warm-up"),
        (wrong(warm_ok, lambda s, p, W, N: p), "no decay"),
        (wrong(lambda s, p, W, N: p * s / W, lambda s, p, W, N: p), "two things"),
        (wrong(lambda s, p, W, N: p, decay_ok), "starts at peak_lr"),
        (lambda s, p, W, N: p * (N - s) / N, "without any warm-up"),
        (wrong(warm_ok, lambda s, p, W, N: p * (N - 1 - s) / (N - 1 - W)), "off by one in the decay"),
        (wrong(warm_ok, lambda s, p, W, N: p * (N - s) / N), "length of the decay"),
        (lambda s, p, W, N: min(p * (s + 1) / W, p * (N - s) / (N - W)), "divides by zero"),
    ]
    for fn, words in cases:
        v = ch04.check_warmup_lr(fn, quiet=True)
        assert not v and words in v.message, (words, v.message)


def test_warmup_lr_junk():
    assert not ch04.check_warmup_lr(None, quiet=True)
    v = ch04.check_warmup_lr(lambda s, p, W, N: None, quiet=True)
    assert not v and "number" in v.message
    v = ch04.check_warmup_lr(lambda s, p, W, N: right_warmup(s, p, W, N) * 1.01, quiet=True)
    assert not v and "step 0 should get" in v.message
    v = ch04.check_warmup_lr(lambda s, p, W, N: [][0], quiet=True)
    assert not v and "IndexError" in v.message
    assert not ch04.check_warmup_lr(42, quiet=True)


def test_attention_crossover():
    C = ch04.GPT2_SMALL_WIDTH
    # independently: the FLOP table of lmlib.flops at the crossover has the two sides equal
    from lmlib.flops import gpt_flops_breakdown
    from lmlib.gpt import GPTConfig
    cfg = GPTConfig(vocab_size=10, block_size=6 * C, n_layer=1, n_head=12, n_embd=C)
    f = gpt_flops_breakdown(cfg, 6 * C)
    assert f["attention_scores"] + f["attention_weighted_sum"] == f["attention_projections"] + f["mlp"]
    assert ch04.check_attention_crossover(6 * C, quiet=True)
    for wrong, words in ((3 * C, "2 FLOPs per token"), (12 * C, "weighted sum"), (2 * C, "12·C²"),
                         (18 * C, "backward"), (1024, "context length"), (5000, "solve for T")):
        v = ch04.check_attention_crossover(wrong, quiet=True)
        assert not v and words in v.message, (wrong, v.message)
    assert not ch04.check_attention_crossover(None, quiet=True)
    assert not ch04.check_attention_crossover("4608", quiet=True)
