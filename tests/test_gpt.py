import math

import pytest
import torch
import torch.nn.functional as F

from lmlib.attention import KVCache
from lmlib.gpt import GPT, GPTConfig


def small(**kw):
    base = dict(vocab_size=31, block_size=16, n_layer=2, n_head=2, n_embd=16)
    base.update(kw)
    return GPTConfig(**base)


@pytest.mark.parametrize("kw, field, error", [
    (dict(n_embd=10, n_head=3), "divisible", ValueError),
    (dict(n_layer=0), "n_layer", ValueError),
    (dict(vocab_size=-1), "vocab_size", ValueError),
    (dict(block_size=2.5), "block_size", TypeError),
    (dict(dropout=1.0), "dropout", ValueError),
    (dict(layer_norm_eps=0.0), "layer_norm_eps", ValueError),
    (dict(bias=1), "bias", TypeError),
])
def test_config_validation(kw, field, error):
    with pytest.raises(error, match=field):
        small(**kw)


def test_gpt2_small_config():
    c = GPTConfig.gpt2("small")
    assert (c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd) == (50257, 1024, 12, 12, 768)
    with pytest.raises(ValueError):
        GPTConfig.gpt2("huge")


def test_forward_shapes_and_loss_is_cross_entropy():
    torch.manual_seed(0)
    m = GPT(small())
    idx = torch.randint(0, 31, (3, 16))
    tgt = torch.randint(0, 31, (3, 16))
    tgt[0, :5] = -100
    logits, loss = m(idx, tgt)
    assert logits.shape == (3, 16, 31)
    keep = tgt != -100
    manual = -(logits.log_softmax(-1)[keep].gather(-1, tgt[keep][:, None])).mean()
    assert torch.allclose(loss, manual, atol=1e-6)
    assert m(idx)[1] is None
    # at initialisation the loss is close to log(V): the model predicts almost uniformly
    assert abs(m(idx, torch.randint(0, 31, (3, 16)))[1].item() - math.log(31)) < 0.2


def test_tied_embeddings_and_init():
    m = GPT(small(n_layer=4, n_embd=64, vocab_size=500, block_size=64))
    assert m.lm_head.weight is m.wte.weight
    assert m.num_params() == sum(p.numel() for p in m.parameters())
    assert abs(m.wte.weight.std().item() - 0.02) < 0.002
    scaled = m.blocks[0].self_attn.out_proj.weight.std().item()
    assert abs(scaled - 0.02 / math.sqrt(8)) < 0.002


def test_causal_future_does_not_change_past():
    torch.manual_seed(0)
    m = GPT(small()).eval()
    idx = torch.randint(0, 31, (2, 12))
    idx2 = idx.clone()
    idx2[:, 8:] = (idx2[:, 8:] + 1) % 31
    with torch.no_grad():
        a, b = m(idx)[0], m(idx2)[0]
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_kv_cache_matches_full_forward_and_offsets_positions():
    torch.manual_seed(0)
    m = GPT(small()).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    idx = torch.randint(0, 31, (2, 16))
    with torch.no_grad():
        full, _ = m(idx)
        caches = m.new_kv_caches()
        assert len(caches) == 2 and all(isinstance(c, KVCache) for c in caches)
        parts = [m(idx[:, :7], kv_caches=caches)[0]]
        assert caches[0].length == 7
        parts += [m(idx[:, t:t + 1], kv_caches=caches)[0] for t in range(7, 16)]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)
    with pytest.raises(ValueError, match="block_size"):
        m(idx[:, :1], kv_caches=caches)  # 16 cached + 1 > block_size


def test_bad_inputs():
    m = GPT(small())
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="idx must have 2 dimensions"):
        m(torch.zeros(17, dtype=torch.long))
    with pytest.raises(TypeError, match="idx must be torch.int64 or torch.int32"):
        m(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"idx must hold ids in 0\.\.30; got 31"):
        m(torch.tensor([[1, 31]]))
    with pytest.raises(ValueError, match=r"idx must hold ids in 0\.\.30; got -1"):
        m(torch.tensor([[-1, 3]]))
    with pytest.raises(ValueError, match="KV caches"):
        m(torch.zeros(1, 4, dtype=torch.long), kv_caches=[KVCache()])
    with pytest.raises(ValueError, match="targets"):
        m(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(TypeError):
        GPT(dict(vocab_size=3))


def test_dropout_active_only_in_training():
    m = GPT(small(dropout=0.5))
    idx = torch.randint(0, 31, (2, 8))
    m.train()
    assert not torch.allclose(m(idx)[0], m(idx)[0])
    m.eval()
    assert torch.equal(m(idx)[0], m(idx)[0])


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    m = GPT(small()).eval()
    idx = torch.randint(0, 31, (2, 16))
    with torch.no_grad():
        a = m(idx)[0]
        for b in m.blocks:
            b.self_attn.use_fused = False
        b_ = m(idx)[0]
    assert torch.allclose(a, b_, atol=1e-5)


@pytest.fixture
def one_thread():
    # tiny models train fastest on one thread (and much faster on a busy machine)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_overfits_one_batch(one_thread):
    torch.manual_seed(0)
    m = GPT(small())
    idx = torch.randint(0, 31, (4, 16))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    first = None
    for _ in range(25):
        _, loss = m(idx[:, :-1], idx[:, 1:])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


# --- hidden_states: the final hidden states before lm_head ---------------------------------

def _manual_hidden(m, idx):
    """The GPT-2 path written out: embeddings + positions, the blocks, the final LayerNorm."""
    x = m.drop(m.wte(idx) + m.wpe(torch.arange(idx.shape[1])))
    for block in m.blocks:
        x = block(x, is_causal=True)
    return m.ln_f(x)


def test_hidden_states_give_the_logits_exactly():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=8)).eval()
    idx = torch.randint(0, 11, (3, 16))
    with torch.no_grad():
        h = m.hidden_states(idx)
        logits, _ = m(idx)
        assert h.shape == (3, 16, 8)
        assert torch.equal(m.lm_head(h), logits)
        assert torch.allclose(h, _manual_hidden(m, idx), atol=1e-6)
        # causal: the states of a prefix do not depend on what follows
        assert torch.allclose(m.hidden_states(idx[:, :5]), h[:, :5], atol=1e-6)


def test_hidden_states_check_their_input_like_forward():
    m = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match="block_size"):
        m.hidden_states(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="idx"):
        m.hidden_states(torch.tensor([[1, 11]]))
    with pytest.raises(TypeError, match="idx"):
        m.hidden_states(torch.zeros(1, 3))


GPT_KEYS_ONE_LAYER = [
    ("wte.weight", (11, 8)), ("wpe.weight", (8, 8)),
    ("blocks.0.self_attn.q_proj.weight", (8, 8)), ("blocks.0.self_attn.q_proj.bias", (8,)),
    ("blocks.0.self_attn.k_proj.weight", (8, 8)), ("blocks.0.self_attn.k_proj.bias", (8,)),
    ("blocks.0.self_attn.v_proj.weight", (8, 8)), ("blocks.0.self_attn.v_proj.bias", (8,)),
    ("blocks.0.self_attn.out_proj.weight", (8, 8)), ("blocks.0.self_attn.out_proj.bias", (8,)),
    ("blocks.0.norm1.weight", (8,)), ("blocks.0.norm1.bias", (8,)),
    ("blocks.0.ffn.fc_in.weight", (32, 8)), ("blocks.0.ffn.fc_in.bias", (32,)),
    ("blocks.0.ffn.fc_out.weight", (8, 32)), ("blocks.0.ffn.fc_out.bias", (8,)),
    ("blocks.0.norm2.weight", (8,)), ("blocks.0.norm2.bias", (8,)),
    ("ln_f.weight", (8,)), ("ln_f.bias", (8,)), ("lm_head.weight", (11, 8)),
]


def test_state_dict_keys_are_pinned():
    # The shipped checkpoints (lmlib/models) and the Hugging Face conversion rely on these names.
    from lmlib.embeddings import LearnedPositionalEmbedding, TokenEmbedding

    m = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == GPT_KEYS_ONE_LAYER
    assert isinstance(m.wte, TokenEmbedding) and isinstance(m.wpe, LearnedPositionalEmbedding)
    assert m.lm_head.weight is m.wte.weight
    idx = torch.randint(0, 11, (2, 5))
    # the input layer against an independent formula: rows of the two tables, added
    torch.testing.assert_close(m.wpe(m.wte(idx)), F.embedding(idx, m.wte.weight) + m.wpe.weight[:5], rtol=0, atol=0)
