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


def test_pre_norm_forward():
    def right(layer, x):
        x = x + layer.self_attn(layer.norm1(x))
        return x + layer.ffn(layer.norm2(x))

    def post(layer, x):
        x = layer.norm1(x + layer.self_attn(x))
        return layer.norm2(x + layer.ffn(x))

    assert ch04.check_pre_norm_forward(right, quiet=True)
    v = ch04.check_pre_norm_forward(post, quiet=True)
    assert not v and "POST-norm" in v.message
    v = ch04.check_pre_norm_forward(lambda layer, x: x + layer.self_attn(layer.norm1(x)), quiet=True)
    assert not v and "FFN" in v.message
    assert not ch04.check_pre_norm_forward(lambda layer, x: x[:, 0], quiet=True)


def test_training_flops():
    N, D = ch04.GPT2_SMALL_PARAMS, ch04.TRAINING_TOKENS
    assert ch04.check_training_flops(6 * N * D, quiet=True)
    v = ch04.check_training_flops(2 * N * D, quiet=True)
    assert not v and "forward pass only" in v.message
    v = ch04.check_training_flops(6 * N, quiet=True)
    assert not v and "per token" in v.message
    assert not ch04.check_training_flops(None, quiet=True)
