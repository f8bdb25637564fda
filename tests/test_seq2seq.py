"""lmlib.seq2seq: the toy tasks, teacher forcing, greedy decoding, cross-attention maps."""

import copy

import pytest
import torch
import torch.nn.functional as F

from lmlib import seq2seq as S
from lmlib.transformer import Transformer, TransformerConfig


def _model(K=5, norm_first=False, seed=0, d=16, layers=1):
    torch.manual_seed(seed)
    return Transformer(TransformerConfig(K + 1, K + 1, d_model=d, n_heads=2, n_encoder_layers=layers,
                                         n_decoder_layers=layers, d_ff=2 * d, dropout=0.0, max_len=8,
                                         norm_first=norm_first))


def test_make_pairs_tasks_and_symbols():
    g = torch.Generator().manual_seed(0)
    src, tgt = S.make_pairs(50, 6, 4, task="reverse", generator=g)
    assert src.shape == tgt.shape == (50, 6) and src.dtype == torch.long
    assert int(src.min()) >= 1 and int(src.max()) <= 4 and set(src.unique().tolist()) == {1, 2, 3, 4}
    for s, t in zip(src.tolist(), tgt.tolist()):
        assert t == s[::-1]
    src2, tgt2 = S.make_pairs(50, 6, 4, task="copy", generator=torch.Generator().manual_seed(0))
    assert torch.equal(src2, src) and torch.equal(tgt2, src)   # same generator state -> same sources
    assert tgt2.data_ptr() != src2.data_ptr()                   # a copy, not a view of the source


def test_shift_right_against_a_loop():
    tgt = torch.tensor([[3, 1, 4, 1], [5, 9, 2, 6]])
    out = S.shift_right(tgt, bos_id=7)
    ref = [[7] + row[:-1] for row in tgt.tolist()]
    assert out.tolist() == ref
    assert S.shift_right(tgt[:, :1]).tolist() == [[S.BOS], [S.BOS]]


def test_exact_match_counts_whole_rows():
    p = torch.tensor([[1, 2, 3], [1, 2, 3], [3, 2, 1], [0, 0, 0]])
    t = torch.tensor([[1, 2, 3], [1, 2, 4], [3, 2, 1], [0, 0, 1]])
    assert S.exact_match(p, t) == 0.5


def test_train_first_loss_is_the_teacher_forced_loss():
    src, tgt = S.make_pairs(40, 5, 5, generator=torch.Generator().manual_seed(1))
    model = _model()
    before = copy.deepcopy(model).eval()
    losses = S.train_seq2seq(model, src, tgt, steps=3, batch_size=8, lr=1e-3, seed=3, progress=False)
    i = torch.randint(0, 40, (8,), generator=torch.Generator().manual_seed(3))   # the first batch drawn
    dec_in = torch.cat([torch.zeros(8, 1, dtype=torch.long), tgt[i][:, :-1]], 1)
    logits, _ = before(src[i], dec_in)
    ref = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[i].reshape(-1))
    assert len(losses) == 3 and abs(losses[0] - ref.item()) < 1e-5
    assert not model.training                                                    # left in eval mode


def test_training_learns_to_reverse():
    src, tgt = S.make_pairs(2000, 3, 3, generator=torch.Generator().manual_seed(0))
    model = _model(K=3, d=16, layers=1, norm_first=True)
    hs, ht = S.make_pairs(200, 3, 3, generator=torch.Generator().manual_seed(9))
    before = S.exact_match(S.greedy_decode(model, hs, 3), ht)
    losses = S.train_seq2seq(model, src, tgt, steps=100, batch_size=32, lr=1e-2, warmup_steps=10, progress=False)
    assert losses[-1] < 0.5 * losses[0]
    assert before < 0.5 < 0.9 < S.exact_match(S.greedy_decode(model, hs, 3), ht)


def test_greedy_decode_matches_argmax_of_full_forward_passes():
    model = _model(seed=2).eval()
    src, _ = S.make_pairs(3, 5, 5, generator=torch.Generator().manual_seed(4))
    out = S.greedy_decode(model, src, 6)
    prefix = torch.zeros(3, 1, dtype=torch.long)
    for _ in range(6):                     # recompute everything, through forward(), at every step
        nxt = model(src, prefix)[0][:, -1].argmax(-1, keepdim=True)
        prefix = torch.cat([prefix, nxt], 1)
    assert torch.equal(out, prefix[:, 1:]) and out.shape == (3, 6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_cross_attention_weights_against_the_layer_by_hand(norm_first):
    model = _model(seed=5, norm_first=norm_first, layers=2).eval()
    src, tgt = S.make_pairs(2, 5, 5, generator=torch.Generator().manual_seed(6))
    tgt_in = S.shift_right(tgt)
    out_before = model(src, tgt_in)[0]
    ws = S.cross_attention_weights(model, src, tgt_in)
    assert len(ws) == 2 and all(w.shape == (2, 2, 5, 5) for w in ws)
    assert all(torch.allclose(w.sum(-1), torch.ones(2, 2, 5), atol=1e-5) for w in ws)
    # layer 0 by hand: embeddings, the self-attention sublayer, then the cross-attention's weights
    captured = {}                                   # the decoder's input: embeddings + positions

    def grab(module, args):
        captured["x"] = args[0]                     # (returns None: the input is left as it is)

    hook = model.decoder.register_forward_pre_hook(grab)
    with torch.no_grad():
        model(src, tgt_in)
    hook.remove()
    with torch.no_grad():
        memory = model.encode(src)
        x = captured["x"]
        layer = model.decoder.layers[0]
        if norm_first:
            x = x + layer.self_attn(layer.norm1(x), is_causal=True)
            q = layer.norm_cross(x)
        else:
            q = x = layer.norm1(x + layer.self_attn(x, is_causal=True))
        d = q.shape[-1] // 2
        Q = layer.cross_attn.q_proj(q).view(2, 5, 2, d).transpose(1, 2)
        Kt = layer.cross_attn.k_proj(memory).view(2, 5, 2, d).transpose(1, 2)
        ref = torch.softmax(Q @ Kt.transpose(-1, -2) / d ** 0.5, dim=-1)
    assert torch.allclose(ws[0], ref, atol=1e-5)
    assert torch.equal(model(src, tgt_in)[0], out_before)          # the hooks are gone
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
