"""lmlib.hf_llama: Llama <-> LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM.

Every model has random weights with every tensor perturbed (norm weights far from 1, nonzero
biases), on shapes where transformers' defaults would hide a mapping error: GQA and MQA, head
sizes that are not powers of two, an explicit head_dim, untied embeddings, unusual rope_theta and
rms_norm_eps. ``pytest -s`` prints the measured max |Δlogits| of every config.
"""

import dataclasses

import pytest
import torch

from lmlib import hf_llama as H
from lmlib.embeddings import RotaryEmbedding
from lmlib.generation import generate
from lmlib.llama import Llama, LlamaConfig

TOL = 1e-4
V, T = 97, 16

# name -> (arch, LlamaConfig overrides)
CONFIGS = {
    "llama_gqa6/2_hs12_untied_theta5e5": ("llama", dict(n_head=6, n_kv_head=2, n_embd=72, ffn_hidden=100,
                                                        rope_base=500000.0, norm_eps=1e-6, tie_embeddings=False)),
    "llama_mqa4/1_hs24_tied_theta1234.5": ("llama", dict(n_head=4, n_kv_head=1, n_embd=96, ffn_hidden=120,
                                                         rope_base=1234.5, norm_eps=3e-5, tie_embeddings=True)),
    "llama_headdim16_on_d48_4heads": ("llama", dict(n_head=4, n_kv_head=2, n_embd=48, head_dim=16, ffn_hidden=72,
                                                    rope_base=20000.0, norm_eps=1e-5, tie_embeddings=False)),
    "llama_all_biases": ("llama", dict(n_head=6, n_kv_head=3, n_embd=72, ffn_hidden=90, bias=True,
                                       rope_base=50000.0, norm_eps=2e-6, tie_embeddings=False)),
    "qwen2_qkv_bias_gqa6/2": ("qwen2", dict(n_head=6, n_kv_head=2, n_embd=72, ffn_hidden=100, qkv_bias=True,
                                            rope_base=1000000.0, norm_eps=1e-6, tie_embeddings=False)),
    "qwen2_qkv_bias_window5": ("qwen2", dict(n_head=6, n_kv_head=2, n_embd=72, ffn_hidden=100, qkv_bias=True,
                                             sliding_window=5, rope_base=1234.5, norm_eps=1e-6, tie_embeddings=True)),
    "mistral_window5_gqa6/2": ("mistral", dict(n_head=6, n_kv_head=2, n_embd=72, ffn_hidden=100, sliding_window=5,
                                               rope_base=1000000.0, norm_eps=1e-5, tie_embeddings=False)),
    "mistral_headdim24_on_d64": ("mistral", dict(n_head=4, n_kv_head=2, n_embd=64, head_dim=24, ffn_hidden=80,
                                                 rope_base=10000.0, norm_eps=1e-6, tie_embeddings=False)),
}
WINDOWED = [n for n, (_, kw) in CONFIGS.items() if kw.get("sliding_window")]


def _config(name: str) -> tuple[str, LlamaConfig]:
    arch, kw = CONFIGS[name]
    return arch, LlamaConfig(vocab_size=V, block_size=64, n_layer=2, **kw)


@torch.no_grad()
def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Add noise to every parameter: norm weights become 1 + N(0, 0.3²), biases N(0, 0.2²), so a
    swapped norm or a dropped bias changes the logits."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        scale = 0.3 if "norm" in name else 0.2 if name.endswith("bias") else 0.08
        p.add_(torch.randn(p.shape, generator=g) * scale)


def _ours(name: str, seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    _, c = _config(name)
    m = Llama(c).eval()
    _perturb(m, seed + 100)
    return m


def _ids(seed: int = 1, B: int = 2, n: int = T) -> torch.Tensor:
    return torch.randint(0, V, (B, n), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _delta(ours: Llama, hf, idx: torch.Tensor) -> float:
    return (ours(idx)[0] - hf(idx).logits).abs().max().item()


def _report(what: str, name: str, d: float) -> None:
    print(f"\n[hf_llama] {what:<14} {name:<38} max|Δlogits| = {d:.2e}")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_ours_to_hf_parity_and_round_trip(name):
    arch, c = _config(name)
    m = _ours(name)
    hf = H.llama_to_hf(m, arch)
    assert type(hf).__name__ == {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                                 "mistral": "MistralForCausalLM"}[arch]
    assert not hf.training and next(hf.parameters()).dtype == torch.float32
    assert (hf.lm_head.weight is hf.model.embed_tokens.weight) == c.tie_embeddings
    d = _delta(m, hf, _ids())
    _report(f"ours->{arch}", name, d)
    assert d < TOL
    # the logits are not trivially small: a mapping error would show
    with torch.no_grad():
        assert m(_ids())[0].std() > 0.5
    # round trip: the same tensors, bit for bit, and the same config
    back = H.llama_from_hf(hf)
    assert back.config == c
    a, b = m.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (back.lm_head.weight is back.wte.weight) == c.tie_embeddings
    sd2 = H.llama_state_from_hf(H.llama_state_to_hf(a, c.n_layer), c.n_layer)
    assert sd2.keys() == a.keys() and all(sd2[k] is a[k] for k in a)
    assert H.llama_config_from_hf(H.llama_config_to_hf(c, arch)) == c


@pytest.mark.parametrize("name", list(CONFIGS))
def test_hf_to_ours_parity(name):
    """Start from a model that transformers built and initialised, perturbed on its own keys."""
    arch, c = _config(name)
    torch.manual_seed(5)
    hf_config = H.llama_config_to_hf(c, arch)
    hf = H._hf_classes()[arch][1](hf_config).eval()
    _perturb(hf, 7)
    ours = H.llama_from_hf(hf)
    assert not ours.training and ours.config == c
    d = _delta(ours, hf, _ids(3))
    _report(f"{arch}->ours", name, d)
    assert d < TOL


@pytest.mark.parametrize("name", WINDOWED)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_sliding_window_is_honoured(name, attn):
    """Window 5 on 16 tokens: the window changes the logits, and both kernels agree with ours."""
    arch, c = _config(name)
    m = _ours(name)
    hf = H.llama_to_hf(m, arch, attn_implementation=attn)
    assert hf.config._attn_implementation == attn
    d = _delta(m, hf, _ids())
    _report(f"window {attn}", name, d)
    assert d < TOL
    full = Llama(dataclasses.replace(c, sliding_window=None)).eval()
    full.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert (full(_ids())[0] - m(_ids())[0]).abs().max() > 0.1   # the window matters here


@pytest.mark.parametrize("name", ["llama_gqa6/2_hs12_untied_theta5e5", "llama_mqa4/1_hs24_tied_theta1234.5",
                                  "qwen2_qkv_bias_gqa6/2", "mistral_window5_gqa6/2"])
def test_greedy_generation_agrees(name):
    arch, c = _config(name)
    m = _ours(name)
    hf = H.llama_to_hf(m, arch, attn_implementation="eager")
    idx = _ids(4, B=1, n=8)
    with torch.no_grad():
        theirs = hf.generate(idx, attention_mask=torch.ones_like(idx), do_sample=False, max_new_tokens=20,
                             pad_token_id=0, eos_token_id=None)
    cached = generate(m, idx, 20, do_sample=False)
    uncached = generate(m, idx, 20, do_sample=False, use_cache=False)
    assert theirs.shape == (1, 28)
    assert torch.equal(cached, theirs), (cached[0, 8:].tolist(), theirs[0, 8:].tolist())
    assert torch.equal(uncached, theirs)
    assert len(set(theirs[0, 8:].tolist())) > 1   # not a constant stream


@pytest.mark.parametrize("swap", [("self_attn.k_proj", "self_attn.v_proj"), ("mlp.gate_proj", "mlp.up_proj"),
                                  ("input_layernorm", "post_attention_layernorm")])
def test_a_wrong_mapping_is_caught(swap):
    """The parity test can fail: one swap of same-shaped tensors in one layer moves the logits by >> TOL."""
    name = "llama_gqa6/2_hs12_untied_theta5e5"
    m = _ours(name)
    hf = H.llama_to_hf(m)
    sd = dict(hf.state_dict())
    a, b = (f"model.layers.0.{s}.weight" for s in swap)
    assert sd[a].shape == sd[b].shape
    sd[a], sd[b] = sd[b].clone(), sd[a].clone()
    hf.load_state_dict(sd, strict=True)
    d = _delta(m, hf, _ids())
    _report("swapped", f"{swap[0]}<->{swap[1]}", d)
    assert d > 100 * TOL


def test_tied_checkpoint_without_lm_head():
    """A tied checkpoint may store the embedding once: the head is then the embedding."""
    name = "llama_mqa4/1_hs24_tied_theta1234.5"
    m = _ours(name)
    hf_sd = H.llama_state_to_hf(m.state_dict(), 2)
    del hf_sd["lm_head.weight"]
    sd = H.llama_state_from_hf(hf_sd, 2)
    assert sd["lm_head.weight"] is hf_sd["model.embed_tokens.weight"]
    m2 = Llama(m.config).eval()
    m2.load_state_dict(sd)
    with torch.no_grad():
        assert torch.equal(m2(_ids())[0], m(_ids())[0])


def test_rope_base_lives_in_rope_parameters():
    """transformers 5 keeps rope_theta inside config.rope_parameters, with rope_type 'default'."""
    _, c = _config("llama_mqa4/1_hs24_tied_theta1234.5")
    hf_config = H.llama_config_to_hf(c)
    assert hf_config.rope_parameters == {"rope_type": "default", "rope_theta": 1234.5}
    from transformers import LlamaConfig as HFLlamaConfig
    legacy = HFLlamaConfig(hidden_size=48, num_attention_heads=4, num_hidden_layers=1, intermediate_size=64,
                           vocab_size=V, rope_theta=777.0)   # the old argument still works
    assert H.llama_config_from_hf(legacy).rope_base == 777.0


def _base(**kw) -> LlamaConfig:
    return LlamaConfig(**{**dict(vocab_size=V, block_size=32, n_layer=2, n_head=4, n_embd=48), **kw})


@pytest.mark.parametrize(("arch", "overrides", "field"), [
    ("llama", dict(norm="layer"), "norm"),
    ("llama", dict(position="learned"), "position"),
    ("llama", dict(ffn="gelu"), "ffn"),
    ("llama", dict(qk_norm=True), "qk_norm"),
    ("llama", dict(dropout=0.1), "dropout"),
    ("llama", dict(qkv_bias=True), "qkv_bias"),
    ("llama", dict(sliding_window=4), "sliding_window"),
    ("llama", dict(n_embd=50, n_head=4, head_dim=12), "head_dim"),
    ("qwen2", dict(qkv_bias=True, bias=True), "bias"),
    ("qwen2", dict(), "qkv_bias"),
    ("mistral", dict(qkv_bias=True), "qkv_bias"),
    ("mistral", dict(bias=True), "bias"),
    ("qwen2", dict(qkv_bias=True, qk_norm=True), "qk_norm"),
])
def test_ours_to_hf_refuses(arch, overrides, field):
    with pytest.raises(ValueError, match=field):
        H.llama_config_to_hf(_base(**overrides), arch)


def test_extra_cannot_override_a_mapped_field():
    with pytest.raises(ValueError, match="rope_theta"):
        H.llama_config_to_hf(_base(), rope_theta=5.0)
    assert H.llama_config_to_hf(_base(), eos_token_id=3).eos_token_id == 3


def _hf_config(cls_name: str, **kw):
    import transformers
    base = dict(vocab_size=V, hidden_size=48, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                intermediate_size=64)
    return getattr(transformers, cls_name)(**{**base, **kw})


@pytest.mark.parametrize(("cls_name", "kw", "field"), [
    ("LlamaConfig", dict(hidden_act="gelu"), "hidden_act"),
    ("LlamaConfig", dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}), "rope_type"),
    ("LlamaConfig", dict(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), "rope_type"),
    ("LlamaConfig", dict(attention_dropout=0.1), "attention_dropout"),
    ("LlamaConfig", dict(mlp_bias=True), "mlp_bias"),
    ("LlamaConfig", dict(attention_bias=True), "attention_bias"),
    ("Qwen2Config", dict(use_sliding_window=True, sliding_window=4, max_window_layers=1), "layer_types"),
    ("MistralConfig", dict(hidden_act="relu"), "hidden_act"),
])
def test_hf_to_ours_refuses(cls_name, kw, field):
    try:
        hc = _hf_config(cls_name, **kw)
    except Exception as e:  # pragma: no cover - depends on the transformers version
        pytest.skip(f"transformers itself rejects {kw}: {e}")
    with pytest.raises(ValueError, match=field):
        H.llama_config_from_hf(hc)


def test_hf_sliding_window_configs_map():
    q = _hf_config("Qwen2Config", use_sliding_window=True, sliding_window=4, max_window_layers=0)
    assert H.llama_config_from_hf(q).sliding_window == 4
    q = _hf_config("Qwen2Config", use_sliding_window=False, sliding_window=4)    # the flag switches it off
    assert H.llama_config_from_hf(q).sliding_window is None and H.llama_config_from_hf(q).qkv_bias
    assert H.llama_config_from_hf(_hf_config("MistralConfig", sliding_window=None)).sliding_window is None


# -------------------------------------------------------------------------------------------------
# RoPE layouts
# -------------------------------------------------------------------------------------------------

def test_rope_permutations_by_definition_and_inverse():
    w = torch.arange(16.0)[:, None].repeat(1, 3)                     # two heads of size 8, row r holds r
    half = H.rope_interleaved_to_half(w, 2)
    assert half[:, 0].tolist() == [0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15]
    assert H.rope_half_to_interleaved(w, 2)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]
    x = torch.randn(3 * 12, 5)
    assert torch.equal(H.rope_half_to_interleaved(H.rope_interleaved_to_half(x, 3), 3), x)
    assert torch.equal(H.rope_interleaved_to_half(H.rope_half_to_interleaved(x, 3), 3), x)
    b = torch.randn(36)                                               # a bias permutes like its rows
    assert torch.equal(H.rope_interleaved_to_half(b, 3), H.rope_interleaved_to_half(b[:, None], 3)[:, 0])


def test_rope_interleaved_is_a_complex_rotation():
    """Independent reference: pair (2j, 2j+1) is the complex number x[2j] + i x[2j+1], times e^{i p w_j}."""
    torch.manual_seed(0)
    x, base = torch.randn(2, 7, 10, dtype=torch.float64).float(), 321.0
    pos = torch.arange(3, 10)
    z = torch.view_as_complex(x.double().reshape(2, 7, 5, 2).contiguous())
    w = base ** (-torch.arange(0, 10, 2, dtype=torch.float64) / 10)
    ref = torch.view_as_real(z * torch.polar(torch.ones(7, 5, dtype=torch.float64), pos[:, None] * w)).reshape(2, 7, 10)
    assert torch.allclose(H.rope_interleaved(x, pos, base).double(), ref, atol=1e-5)


@pytest.mark.parametrize("base", [10000.0, 1234.5])
def test_rope_layouts_give_the_same_attention_scores(base):
    torch.manual_seed(0)
    n_heads, hs, d, n = 3, 12, 20, 9
    Wq, Wk, x = torch.randn(n_heads * hs, d), torch.randn(n_heads * hs, d), torch.randn(n, d)
    pos = torch.arange(n)

    def heads(y):
        return y.view(n, n_heads, hs).transpose(0, 1)                # (n_heads, n, hs)

    q, k = heads(x @ Wq.T), heads(x @ Wk.T)
    scores_interleaved = H.rope_interleaved(q, pos, base) @ H.rope_interleaved(k, pos, base).transpose(-1, -2)
    rope = RotaryEmbedding(hs, base=base)
    q2, k2 = heads(x @ H.rope_interleaved_to_half(Wq, n_heads).T), heads(x @ H.rope_interleaved_to_half(Wk, n_heads).T)
    scores_half = rope(q2) @ rope(k2).transpose(-1, -2)
    scale = scores_interleaved.abs().max()
    assert ((scores_half - scores_interleaved).abs().max() / scale) < 1e-5
    # without the permutation the layouts disagree (the check can fail)
    wrong = rope(q) @ rope(k).transpose(-1, -2)
    assert ((wrong - scores_interleaved).abs().max() / scale) > 1e-2
