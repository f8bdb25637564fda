import re

import pytest
import torch
import torch.nn.functional as F

from lmlib.exercises import ch08
from lmlib.gqa import kv_cache_bytes
from lmlib.llama import Llama, LlamaConfig


def lin(x, w):
    return x @ w.T


# ---------------------------------------------------------------------------------------------
# SwiGLU
# ---------------------------------------------------------------------------------------------

def right_swiglu(x, w_gate, w_up, w_down):
    return (F.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def test_swiglu_right_answers_pass():
    assert ch08.check_swiglu(right_swiglu, quiet=True)
    assert ch08.check_swiglu(lambda x, g, u, d: F.linear(F.silu(F.linear(x, g)) * F.linear(x, u), d), quiet=True)
    # silu written out, in float64

    def by_hand(x, g, u, d):
        x, g, u, d = (t.double() for t in (x, g, u, d))
        a = x @ g.T
        return (a * torch.sigmoid(a) * (x @ u.T)) @ d.T

    assert ch08.check_swiglu(by_hand, quiet=True)


def test_swiglu_reference_is_the_formula():
    # the checker's reference (lmlib's SwiGLU module) against the formula written here
    for x, g, u, d in ch08._swiglu_cases():
        assert torch.allclose(ch08._swiglu_reference(x, g, u, d), right_swiglu(x, g, u, d), atol=1e-6)


@pytest.mark.parametrize("fn, words", [
    (lambda x, g, u, d: lin(F.silu(lin(x, u)) * lin(x, g), d), "gate and up are swapped"),
    (lambda x, g, u, d: lin(F.gelu(lin(x, g)) * lin(x, u), d), "GeGLU"),
    (lambda x, g, u, d: lin(F.gelu(lin(x, g), approximate="tanh") * lin(x, u), d), "tanh GELU"),
    (lambda x, g, u, d: lin(torch.sigmoid(lin(x, g)) * lin(x, u), d), "sigmoid(z) as the gate"),
    (lambda x, g, u, d: lin(F.relu(lin(x, g)) * lin(x, u), d), "ReGLU"),
    (lambda x, g, u, d: lin(F.silu(lin(x, g) * lin(x, u)), d), "after the product"),
    (lambda x, g, u, d: F.silu(lin(lin(x, g) * lin(x, u), d)), "applied to the output"),
    (lambda x, g, u, d: lin(F.silu(lin(x, g)) + lin(x, u), d), "ADD"),
    (lambda x, g, u, d: lin(F.silu(lin(x, g)) * lin(x, g), d), "w_gate for both"),
    (lambda x, g, u, d: lin(F.silu(lin(x, u)) * lin(x, u), d), "w_up for both"),
    (lambda x, g, u, d: lin(F.silu(lin(x, u)), d), "no gate"),
    (lambda x, g, u, d: lin(lin(x, g) * lin(x, u), d), "SiLU is missing"),
    (lambda x, g, u, d: (F.silu(x @ g) * (x @ u)) @ d, "(out_features, in_features)"),        # no transposes
    (lambda x, g, u, d: (F.silu(lin(x, g)) * lin(x, u)) @ d, "(out_features, in_features)"),  # one forgotten
    (lambda x, g, u, d: F.silu(lin(x, g)) * lin(x, u), "project it back"),
    (lambda x, g, u, d: right_swiglu(x, g, u, d) * 1.01, "wrong values on test case 0"),
])
def test_swiglu_typical_mistakes_get_their_hint(fn, words):
    v = ch08.check_swiglu(fn, quiet=True)
    assert not v and words in v.message, v.message


def test_swiglu_junk():
    assert not ch08.check_swiglu(None, quiet=True)
    v = ch08.check_swiglu(lambda x, g, u, d: None, quiet=True)
    assert not v and "returns None" in v.message

    def todo(x, g, u, d):
        raise NotImplementedError

    v = ch08.check_swiglu(todo, quiet=True)
    assert not v and "NotImplementedError" in v.message
    v = ch08.check_swiglu(lambda x, g, u, d: right_swiglu(x, g, u, d).long(), quiet=True)
    assert not v and "floating-point" in v.message
    v = ch08.check_swiglu(lambda x, g, u, d: [1.0], quiet=True)
    assert not v and "tensor" in v.message


# ---------------------------------------------------------------------------------------------
# repeat_kv
# ---------------------------------------------------------------------------------------------

def right_repeat(x, n_rep):
    return torch.repeat_interleave(x, n_rep, dim=1)


def test_repeat_kv_right_answers_pass():
    from lmlib.gqa import repeat_kv
    assert ch08.check_repeat_kv(right_repeat, quiet=True)
    assert ch08.check_repeat_kv(repeat_kv, quiet=True)

    def by_expand(x, n_rep):
        B, n, T, hs = x.shape
        return x[:, :, None].expand(B, n, n_rep, T, hs).reshape(B, n * n_rep, T, hs)

    assert ch08.check_repeat_kv(by_expand, quiet=True)
    # an independent definition: output head h is input head h // n_rep
    for x, r in ch08._repeat_cases():
        assert torch.equal(torch.stack([x[:, h // r] for h in range(x.shape[1] * r)], dim=1), repeat_kv(x, r))


def _no_reshape(x, r):
    B, n, T, hs = x.shape
    return x[:, :, None].expand(B, n, r, T, hs)


def _n_rep_one_fails(x, r):
    assert r > 1, "nothing to repeat"
    return right_repeat(x, r)


@pytest.mark.parametrize("fn, words", [
    (lambda x, r: x.repeat(1, r, 1, 1), "tiled the heads"),
    (lambda x, r: torch.cat([x] * r, dim=1), "tiled the heads"),
    (lambda x, r: torch.repeat_interleave(x, r, dim=2), "time axis (dim 2)"),
    (lambda x, r: x.repeat(1, 1, r, 1), "time axis (dim 2)"),
    (lambda x, r: torch.repeat_interleave(x, r, dim=3), "head_dim (dim 3)"),
    (lambda x, r: torch.repeat_interleave(x, r, dim=0), "batch (dim 0)"),
    (_no_reshape, "merge the new group axis"),
    (lambda x, r: x, "the input's shape"),
    (_n_rep_one_fails, "n_rep = 1 is plain multi-head attention"),
    (lambda x, r: right_repeat(x, r) if r > 1 else 2 * x, "return x unchanged"),
    (lambda x, r: right_repeat(x, r).flip(1), "should be a copy of key/value head"),
    (lambda x, r: right_repeat(x, r).double(), "dtype"),
])
def test_repeat_kv_typical_mistakes_get_their_hint(fn, words):
    v = ch08.check_repeat_kv(fn, quiet=True)
    assert not v and words in v.message, v.message


def test_repeat_kv_tiling_hint_shows_the_order():
    v = ch08.check_repeat_kv(lambda x, r: x.repeat(1, r, 1, 1), quiet=True)
    assert "0, 1, 2, 0, 1, 2" in v.message, v.message   # case 0: 3 key/value heads, n_rep = 2


# ---------------------------------------------------------------------------------------------
# Hugging Face Llama names -> course names
# ---------------------------------------------------------------------------------------------

#: the correspondence, written out independently of the checker
TABLE = {
    "input_layernorm": "norm1", "post_attention_layernorm": "norm2",
    "self_attn.q_proj": "self_attn.q_proj", "self_attn.k_proj": "self_attn.k_proj",
    "self_attn.v_proj": "self_attn.v_proj", "self_attn.o_proj": "self_attn.out_proj",
    "mlp.gate_proj": "ffn.gate_proj", "mlp.up_proj": "ffn.up_proj", "mlp.down_proj": "ffn.down_proj",
}


def right_names(name):
    if name == "model.embed_tokens.weight":
        return "wte.weight"
    if name == "model.norm.weight":
        return "norm_f.weight"
    if name == "lm_head.weight":
        return name
    i, rest = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", name).groups()
    return f"blocks.{i}.{TABLE[rest]}.weight"


@pytest.fixture(scope="module")
def hf():
    """The checker's tiny transformers model (built once): (state dict, token ids, logits)."""
    return ch08._hf_reference()


def test_hf_reference_is_a_llama_with_every_weight_random(hf):
    state, idx, logits = hf
    assert len(state) == 2 + 9 * ch08._TINY["layers"] + 1          # embeddings, 9 per layer, norm, lm_head
    assert "lm_head.weight" in state and not torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"])
    for name, t in state.items():
        if name.endswith("norm.weight"):
            assert (t - 1).abs().max() > 0.1, name                  # norms perturbed: a swap changes logits
    assert logits.shape == (*idx.shape, ch08._TINY["vocab"])


def test_hf_names_truth(hf):
    state, idx, logits = hf
    course = Llama(ch08._course_config())
    # the checker's diagnosis table agrees with the one here, and is a bijection onto the course's weights
    assert [ch08._true_name(n) for n in state] == [right_names(n) for n in state]
    assert sorted(map(right_names, state)) == sorted(course.state_dict())
    # and it is the truth: the renamed weights give transformers' logits
    course.load_state_dict({right_names(k): v for k, v in state.items()}, strict=True)
    with torch.no_grad():
        assert torch.allclose(course.eval()(idx)[0], logits, atol=1e-4)
    assert ch08.check_hf_to_course(right_names, quiet=True)


def test_hf_names_by_replacements_pass(hf):
    def by_replace(name):
        for a, b in (("model.layers.", "blocks."), ("model.embed_tokens", "wte"), ("model.norm", "norm_f"),
                     ("input_layernorm", "norm1"), ("post_attention_layernorm", "norm2"), ("o_proj", "out_proj"),
                     ("mlp.", "ffn.")):
            name = name.replace(a, b)
        return name

    assert ch08.check_hf_to_course(by_replace, quiet=True)


def _swap(fn, a, b):
    def wrong(name):
        out = fn(name)
        return out.replace(a, "@@").replace(b, a).replace("@@", b)
    return wrong


def _layer_shift(k):
    def wrong(name):
        out = right_names(name)
        m = re.match(r"blocks\.(\d+)\.(.*)", out)
        return out if m is None else f"blocks.{int(m.group(1)) + k}.{m.group(2)}"
    return wrong


def _reversed_layers(name):
    out = right_names(name)
    m = re.match(r"blocks\.(\d+)\.(.*)", out)
    return out if m is None else f"blocks.{ch08._TINY['layers'] - 1 - int(m.group(1))}.{m.group(2)}"


@pytest.mark.parametrize("fn, words", [
    (_swap(right_names, "norm1", "norm2"), "two norms of a block are swapped"),
    (_swap(right_names, "gate_proj", "up_proj"), "gate_proj and up_proj are swapped"),
    (_swap(right_names, "wte.weight", "lm_head.weight"), "embed_tokens and lm_head are swapped"),
    (lambda n: right_names(n).replace("out_proj", "o_proj"), "`out_proj`"),
    (lambda n: "model." + right_names(n), "drop the 'model.' prefix"),
    (lambda n: right_names(n).replace("blocks.", "layers."), "`blocks`"),
    (lambda n: right_names(n).replace("ffn.", "mlp."), "`ffn`"),
    (lambda n: right_names(n).replace("wte", "embed_tokens"), "`wte`"),
    (lambda n: n.replace("model.layers.", "blocks.").replace("model.embed_tokens", "wte")
     .replace("model.norm", "norm_f").replace("o_proj", "out_proj").replace("mlp.", "ffn."), "norm1"),
    (lambda n: re.sub(r"blocks\.\d+\.", "blocks.", right_names(n)), "keep the layer index"),
    (lambda n: re.sub(r"blocks\.\d+\.", "blocks.0.", right_names(n)), "Keep the layer index"),
    (_layer_shift(1), "off by one"),
    (_layer_shift(-1), "off by one"),
    (_reversed_layers, "the order of the"),
    (lambda n: "norm.weight" if n == "model.norm.weight" else right_names(n), "`norm_f`"),
    (lambda n: n, "unchanged"),
    (lambda n: right_names(n).replace("gate_proj", "down_proj") if "gate" in n else right_names(n), "weights go to"),
    (_swap(right_names, "gate_proj", "down_proj"), "has shape"),
])
def test_hf_names_typical_mistakes_get_their_hint(hf, fn, words):
    v = ch08.check_hf_to_course(fn, quiet=True)
    assert not v and words in v.message, v.message


def test_hf_names_q_k_swap_is_a_shape_error_under_gqa(hf):
    # with 2 key/value heads of 4, q_proj (24, 24) and k_proj (12, 24) do not fit each other's place
    v = ch08.check_hf_to_course(_swap(right_names, "q_proj", "k_proj"), quiet=True)
    assert not v and "has shape" in v.message, v.message
    v = ch08.check_hf_to_course(_swap(right_names, "k_proj", "v_proj"), quiet=True)   # same shape: logits decide
    assert not v and "different weight" in v.message, v.message


def test_hf_names_junk(hf):
    assert not ch08.check_hf_to_course(None, quiet=True)
    v = ch08.check_hf_to_course(lambda n: None, quiet=True)
    assert not v and "returns None" in v.message
    v = ch08.check_hf_to_course(lambda n: 3, quiet=True)
    assert not v and "as a str" in v.message
    v = ch08.check_hf_to_course(lambda n: {"lm_head.weight": "lm_head.weight"}[n], quiet=True)
    assert not v and "KeyError" in v.message and "model.embed_tokens.weight" in v.message


def test_hf_names_leaves_the_random_state_alone(hf):
    torch.manual_seed(3)
    a = torch.rand(3)
    torch.manual_seed(3)
    ch08.check_hf_to_course(right_names, quiet=True)
    assert torch.equal(torch.rand(3), a)


# ---------------------------------------------------------------------------------------------
# KV-cache size
# ---------------------------------------------------------------------------------------------

def right_kv(n_layer, n_head, n_kv_head, head_dim, context, batch, bytes_per_value):
    return 2 * n_layer * n_kv_head * head_dim * context * batch * bytes_per_value


def test_kv_truth_against_lmlib_and_llama3_8b():
    for L, H, K, hd, T, B, b in ch08._KV_CASES:
        assert right_kv(L, H, K, hd, T, B, b) == kv_cache_bytes(L, K, hd, bytes_per_value=b, tokens=T, batch=B)
    assert right_kv(*ch08.LLAMA3_8B_KV_CASE) == 2 ** 30                  # 1 GiB
    c = LlamaConfig.llama3_8b()
    assert ch08.LLAMA3_8B_KV_CASE[:4] == (c.n_layer, c.n_head, c.n_kv_head, c.head_dim)
    assert ch08.check_kv_cache_size(right_kv, quiet=True)
    assert ch08.check_kv_cache_size(lambda *a: torch.tensor(right_kv(*a)), quiet=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kv_truth_against_measured_caches(dtype):
    # the caches a tiny GQA Llama fills during a forward pass, in bytes
    L, H, K, hd, T, B = 3, 4, 2, 6, 10, 2
    torch.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=20, block_size=16, n_layer=L, n_head=H, n_embd=H * hd,
                              n_kv_head=K)).to(dtype).eval()
    caches = model.new_kv_caches()
    with torch.no_grad():
        model(torch.randint(0, 20, (B, T)), kv_caches=caches)
    measured = sum(t.numel() * t.element_size() for c in caches for t in (c.k, c.v))
    b = torch.empty(0, dtype=dtype).element_size()
    assert measured == right_kv(L, H, K, hd, T, B, b)
    assert measured != right_kv(L, H, H, hd, T, B, b)        # n_head heads would be twice as much


def test_kv_mistake_patterns_are_told_apart():
    patterns = [tuple(float(f"{r:.9e}") for r in ratios) for _, _, ratios in ch08._kv_patterns()]
    assert len(set(patterns)) == len(patterns)
    assert (1.0,) * len(ch08._KV_CASES) not in patterns


@pytest.mark.parametrize("fn, words", [
    (lambda L, H, K, hd, T, B, b: 2 * L * H * hd * T * B * b, "only the n_kv_head"),
    (lambda L, H, K, hd, T, B, b: L * K * hd * T * B * b, "keys AND values"),
    (lambda L, H, K, hd, T, B, b: 2 * K * hd * T * B * b, "every layer"),
    (lambda L, H, K, hd, T, B, b: 16 * L * K * hd * T * B * b, "bits"),
    (lambda L, H, K, hd, T, B, b: 2 * L * K * hd * T * B, "multiply by bytes_per_value"),
    (lambda L, H, K, hd, T, B, b: 2 * L * K * hd * T * b, "batch"),
    (lambda L, H, K, hd, T, B, b: 2 * L * K * hd * B * b, "context length"),
    (lambda L, H, K, hd, T, B, b: 2 * L * K * T * B * b, "head_dim numbers"),
    (lambda *a: right_kv(*a) / 2 ** 30, "GiB"),
    (lambda *a: right_kv(*a) / 1e6, "MB"),
    (lambda L, H, K, hd, T, B, b: L * H * hd * T * B * b, "2 things"),
    (lambda L, H, K, hd, T, B, b: H * hd * T * B * b, "3 things"),
    (lambda *a: right_kv(*a) + 1, "which is not right"),
    (lambda *a: right_kv(*a) * (1 + 1e-12), "integers"),
])
def test_kv_typical_mistakes_get_their_hint(fn, words):
    v = ch08.check_kv_cache_size(fn, quiet=True)
    assert not v and words in v.message, v.message


def test_kv_junk():
    assert not ch08.check_kv_cache_size(None, quiet=True)
    v = ch08.check_kv_cache_size(lambda *a: None, quiet=True)
    assert not v and "returns None" in v.message
    v = ch08.check_kv_cache_size(lambda *a: "1 GiB", quiet=True)
    assert not v and "number of bytes" in v.message
    v = ch08.check_kv_cache_size(lambda *a: float("nan"), quiet=True)
    assert not v and "number of bytes" in v.message
    v = ch08.check_kv_cache_size(lambda L, H, K, hd, T, B: 0, quiet=True)
    assert not v and "TypeError" in v.message


def test_every_checker_prints_one_line(capsys):
    for checker in (ch08.check_swiglu, ch08.check_repeat_kv, ch08.check_kv_cache_size):
        checker(lambda *a: None)
        assert capsys.readouterr().out.startswith("Not yet. Hint: ")
