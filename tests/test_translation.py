"""lmlib.translation: examples, vocabularies, the two batch layouts, training and held-out loss."""

import pytest
import torch
import torch.nn.functional as F

from lmlib import translation as T
from lmlib.cedict import Word
from lmlib.gpt import GPT
from lmlib.transformer import Transformer

WORDS = [
    Word("银行", (("yin2", "hang2"),), ("bank",)),
    Word("行", (("xing2",), ("hang2",)), ("to walk", "row", "OK")),
    Word("人", (("ren2",),), ("person", "people")),
    Word("行人", (("xing2", "ren2"),), ("pedestrian",)),
    Word("银", (("yin2",),), ("silver",)),
    Word("长", (("chang2",), ("zhang3",)), ("long", "to grow; a very long explanation of the sense")),
]


def _vocab(task="pinyin"):
    return T.build_vocabularies(T.make_examples(WORDS, task))


def test_make_examples_pinyin_and_english():
    ex = T.make_examples(WORDS, "pinyin")
    assert [e.source for e in ex] == [w.headword for w in WORDS]
    assert all(e.task == "pinyin" for e in ex)
    assert ex[1] == T.Example("pinyin", "行", "xing2", ("xing2", "hang2"))
    assert ex[0].target == "yin2 hang2" and ex[0].references == ("yin2 hang2",)
    en = T.make_examples(WORDS, "english")
    assert en[1] == T.Example("english", "行", "to walk", ("to walk", "row", "OK"))
    assert [e.references for e in en] == [w.senses for w in WORDS]
    # the filter looks at the target (first reading / sense) only
    assert [e.source for e in T.make_examples(WORDS, "english", max_target_chars=6)] == ["银行", "人", "银", "长"]
    assert [e.source for e in T.make_examples(WORDS, "pinyin", max_target_chars=5)] == ["行", "人", "银"]
    assert len(T.make_examples(WORDS, "english", max_target_chars=10)) == 6


def test_build_vocabularies_and_unknown_characters():
    ex = T.make_examples(WORDS, "pinyin") + T.make_examples(WORDS, "english")
    v = T.build_vocabularies(ex)
    assert v.source.chars == sorted(set("银行人长"))
    assert v.target.chars == sorted(set("".join(e.target for e in ex)))
    assert v.joint_size == v.source.vocab_size + v.target.vocab_size
    unk_s, unk_t = v.source.special_tokens["<unk>"], v.target.special_tokens["<unk>"]
    assert v.source.encode_ordinary("银X行") == [v.source.chars.index("银"), unk_s, v.source.chars.index("行")]
    assert v.target.encode_ordinary("a#") == [v.target.chars.index("a"), unk_t]
    e = T.Example("pinyin", "银鬼", "yin2 gui3", ("yin2 gui3",))
    assert T.source_ids(v, e) == [v.source.special_tokens["<pinyin>"], v.source.chars.index("银"), unk_s]


def test_syllable_vocabulary_one_token_per_syllable():
    ex = T.make_examples(WORDS, "pinyin")
    v = T.build_vocabularies(ex, target_units="syllable")
    assert v.target.words == sorted({s for w in WORDS for s in w.readings[0]})
    assert v.source.chars == T.build_vocabularies(ex).source.chars      # the source side is unchanged
    ids = v.target.encode_ordinary("yin2 hang2")
    assert ids == [v.target.words.index("yin2"), v.target.words.index("hang2")]
    assert v.target.decode(ids) == "yin2 hang2"
    assert v.target.encode_ordinary("yin2 gui3")[1] == v.target.special_tokens["<unk>"]
    enc = T.encode_seq2seq(v, ex)
    lengths = (enc["targets"] != -100).sum(1).tolist()
    assert lengths == [len(e.target.split()) + 1 for e in ex]            # syllables + <eos>
    with pytest.raises(ValueError, match=r"examples\[6\] is a 'english' example"):
        T.build_vocabularies(ex + T.make_examples(WORDS, "english"), target_units="syllable")


def test_a_syllable_model_trains_decodes_and_fits_by_syllables():
    ex = T.make_examples(WORDS, "pinyin")
    v = T.build_vocabularies(ex, target_units="syllable")
    torch.manual_seed(0)
    # max_len 3 holds <task> + 2 characters and <bos> + 2 syllables, not 10 letters
    model = T.encoder_decoder(v, d_model=16, n_layers=1, n_heads=2, dropout=0.0, max_len=3)
    before = T.heldout_loss(model, v, ex)
    history = T.train_translator(model, v, ex, steps=60, batch_size=6, lr=1e-2, warmup_steps=3, progress=False)
    assert 60 * 6 * 2 <= history.tokens <= 60 * 6 * 3       # one or two syllables + <eos> per row, no letters
    assert T.heldout_loss(model, v, ex) < 0.2 * before
    assert T.translate(model, v, ex) == [e.target for e in ex]           # memorised, read back with spaces
    got = T.cross_attention(model, v, ex[0], "yin2 hang2")
    assert got.shape == (1, 2, 3, 3)                                     # 2 syllables + <eos>; <task> + 2 characters
    chars = T.build_vocabularies(ex)
    with pytest.raises(ValueError, match="max_len=3"):                   # the letters would not fit
        T.train_translator(T.encoder_decoder(chars, d_model=16, n_layers=1, n_heads=2, max_len=3), chars, ex,
                           steps=1, progress=False)


def _decode(tok, ids, stop=None):
    out = []
    for i in ids:
        if i == stop:
            break
        out.append(tok.decode([i]))
    return out


def test_encode_seq2seq_round_trips_to_the_examples():
    ex = T.make_examples(WORDS, "pinyin") + T.make_examples(WORDS[:2], "english")
    v = T.build_vocabularies(ex)
    b = T.encode_seq2seq(v, ex)
    s, t = v.source.special_tokens, v.target.special_tokens
    S = max(len(e.source) for e in ex) + 1
    L = max(len(e.target) for e in ex) + 1
    assert b["src"].shape == b["src_mask"].shape == (len(ex), S)
    assert b["tgt_in"].shape == b["targets"].shape == (len(ex), L)
    assert b["src_mask"].dtype == torch.bool
    for i, e in enumerate(ex):
        src = b["src"][i].tolist()
        n = len(e.source) + 1
        assert src[0] == s[f"<{e.task}>"]
        assert "".join(_decode(v.source, src[1:n])) == e.source
        assert src[n:] == [s["<pad>"]] * (S - n)
        assert b["src_mask"][i].tolist() == [False] * n + [True] * (S - n)
        tgt_in, targets = b["tgt_in"][i].tolist(), b["targets"][i].tolist()
        m = len(e.target) + 1
        assert tgt_in[0] == t["<bos>"] and tgt_in[1:m] == targets[:m - 1]     # <bos> shift
        assert "".join(_decode(v.target, targets[:m - 1])) == e.target
        assert targets[m - 1] == t["<eos>"]
        assert targets[m:] == [-100] * (L - m) and tgt_in[m:] == [t["<pad>"]] * (L - m)


def test_encode_lm_joint_ids_and_loss_positions():
    ex = T.make_examples(WORDS, "pinyin") + T.make_examples(WORDS[:3], "english")
    v = T.build_vocabularies(ex)
    b = T.encode_lm(v, ex)
    shift, t = v.target.vocab_size, v.target.special_tokens
    L = max(len(e.source) + 2 + len(e.target) for e in ex)
    assert b["idx"].shape == b["targets"].shape == (len(ex), L)
    assert int(b["idx"].max()) < v.joint_size
    for i, e in enumerate(ex):
        idx, tg = b["idx"][i].tolist(), b["targets"][i].tolist()
        p = len(e.source) + 2                                     # <task> source <sep>
        assert idx[:p - 1] == [shift + j for j in T.source_ids(v, e)]
        assert all(j >= shift for j in idx[:p - 1]) and idx[p - 1] == t["<sep>"]
        assert T.lm_prompt(v, e) == idx[:p]
        n = len(e.target)
        assert "".join(_decode(v.target, idx[p:p + n])) == e.target
        assert idx[p + n:] == [t["<pad>"]] * (L - p - n)
        # -100 exactly while the next token is still the prompt, and at padding
        assert tg[:p - 1] == [-100] * (p - 1)
        assert tg[p - 1:p - 1 + n] == idx[p:p + n] and tg[p - 1 + n] == t["<eos>"]
        assert tg[p + n:] == [-100] * (L - p - n)
        assert sum(x != -100 for x in tg) == n + 1
        assert tg[p - 1:p + n] == T.encode_seq2seq(v, [e])["targets"][0].tolist()   # same targets as seq2seq


def _gpt(v, seed=0, **kw):
    torch.manual_seed(seed)
    return T.decoder_only(v, n_embd=16, n_layer=1, n_head=2, dropout=0.0, block_size=16, **kw)


def _ed(v, seed=0):
    torch.manual_seed(seed)
    return T.encoder_decoder(v, d_model=16, n_layers=1, n_heads=2, dropout=0.0, max_len=16)


def test_lm_target_logits_equals_the_cut_full_forward():
    v = _vocab()
    model = _gpt(v).eval()
    idx = T.encode_lm(v, T.make_examples(WORDS, "pinyin"))["idx"]
    with torch.no_grad():
        cut = T.lm_target_logits(model, idx, v.target.vocab_size)
        full = model(idx)[0]
    assert cut.shape == (*idx.shape, v.target.vocab_size)
    assert torch.allclose(cut, full[..., :v.target.vocab_size], atol=1e-5, rtol=1e-5)


def test_builders_give_the_sizes_asked():
    v = _vocab("english")
    ed, lm = _ed(v), _gpt(v)
    assert isinstance(ed, Transformer) and isinstance(lm, GPT)
    assert (ed.config.src_vocab_size, ed.config.tgt_vocab_size) == (v.source.vocab_size, v.target.vocab_size)
    assert ed.config.d_model == 16 and ed.config.n_encoder_layers == ed.config.n_decoder_layers == 1
    assert ed.config.max_len == 16 and ed.config.d_ff == 64
    assert lm.config.vocab_size == v.joint_size and lm.config.block_size == 16 and lm.config.n_layer == 1


# a copy-like task: each character has one syllable, the target spells the source out
COPY = [Word(a + b, ((sa, sb),), (f"{sa}-{sb}",)) for a, sa in zip("一二三四", ("a1", "b2", "c3", "d4"))
        for b, sb in zip("五六七", ("e5", "f1", "g2"))]


@pytest.mark.parametrize("arch", ["seq2seq", "lm"])
def test_train_translator_lowers_the_loss_is_deterministic_and_ends_in_eval(arch):
    ex = T.make_examples(COPY, "pinyin")
    v = T.build_vocabularies(ex)
    build = _ed if arch == "seq2seq" else _gpt
    model = build(v)
    before = T.heldout_loss(model, v, ex)
    kw = dict(steps=30, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=3, seed=1, progress=False)
    history = T.train_translator(model, v, ex, **kw)
    losses = history.train_loss
    assert len(losses) == 30 and history.steps == list(range(1, 31)) and not model.training
    after = T.heldout_loss(model, v, ex)
    assert after < 0.5 * before
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0]
    # the schedule: linear warm-up to lr, then a half cosine down to min_lr at the last step
    assert history.lr[:3] == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2])
    assert history.lr[-1] == pytest.approx(1e-3)
    assert all(a >= b - 1e-12 for a, b in zip(history.lr[2:], history.lr[3:]))
    # every target is 5 characters ("a1 e5", ...): 5 + <eos> = 6 target tokens per example
    assert history.tokens == 30 * 8 * 6
    # determinism (a few steps are enough): same seed, same losses and weights; another seed differs
    short = {**kw, "steps": 4}
    one, two = build(v), build(v)
    run = T.train_translator(one, v, ex, **short).train_loss
    assert run == losses[:4] and T.train_translator(two, v, ex, **short).train_loss == run
    for a, b in zip(one.state_dict().values(), two.state_dict().values()):
        assert torch.equal(a, b)
    assert T.train_translator(build(v), v, ex, **{**short, "seed": 2}).train_loss != run


def _direct_loss(model, v, ex):
    """Summed cross-entropy over every target token, one example at a time, from the full forward."""
    total, count = 0.0, 0
    with torch.no_grad():
        for e in ex:
            y = v.target.encode_ordinary(e.target) + [v.target.special_tokens["<eos>"]]
            if isinstance(model, Transformer):
                src = torch.tensor([T.source_ids(v, e)])
                tgt_in = torch.tensor([[v.target.special_tokens["<bos>"]] + y[:-1]])
                logits = model(src, tgt_in)[0][0]
            else:
                prompt = T.lm_prompt(v, e)
                idx = torch.tensor([prompt + y[:-1]])
                logits = model(idx)[0][0, len(prompt) - 1:, :v.target.vocab_size]
            total += float(-logits.log_softmax(-1).gather(1, torch.tensor(y)[:, None]).sum())
            count += len(y)
    return total / count


@pytest.mark.parametrize("arch", ["seq2seq", "lm"])
def test_heldout_loss_equals_a_direct_computation(arch):
    ex = T.make_examples(WORDS, "pinyin") + T.make_examples(WORDS, "english", max_target_chars=10)
    v = T.build_vocabularies(ex)
    model = _ed(v, seed=3) if arch == "seq2seq" else _gpt(v, seed=3)
    model.train()
    got = T.heldout_loss(model, v, ex, batch_size=3)            # uneven chunks: weighted by token counts
    assert model.training                                        # the mode is restored
    assert got == pytest.approx(_direct_loss(model.eval(), v, ex), rel=1e-5)
    assert T.heldout_loss(model, v, ex, batch_size=100) == pytest.approx(got, rel=1e-5)


def test_cross_attention_equals_the_weights_recomputed_by_hand():
    ex = T.make_examples(WORDS, "pinyin")
    v = T.build_vocabularies(ex)
    torch.manual_seed(1)
    model = T.encoder_decoder(v, d_model=16, n_layers=2, n_heads=4, dropout=0.1, max_len=16)
    model.train()
    e, output = ex[0], "yin2 hang2"
    got = T.cross_attention(model, v, e, output)
    assert model.training and not any(layer.cross_attn._forward_hooks for layer in model.decoder.layers)
    assert got.shape == (2, 4, len(output) + 1, len(e.source) + 1)
    torch.testing.assert_close(got.sum(-1), torch.ones(2, 4, len(output) + 1))
    # by hand: run the pre-norm decoder layer by layer and form softmax(q k^T / sqrt(d_head)) per head
    model.eval()
    with torch.no_grad():
        src = torch.tensor([T.source_ids(v, e)])
        tgt = torch.tensor([[v.target.special_tokens["<bos>"]] + v.target.encode_ordinary(output)])
        memory, x = model.encode(src), model._embed(model.tgt_embed, tgt)
        for i, layer in enumerate(model.decoder.layers):
            h = x + layer.self_attn(layer.norm1(x), is_causal=True)
            ca = layer.cross_attn
            q = ca.q_proj(layer.norm_cross(h)).view(1, -1, 4, 4).transpose(1, 2)
            k = ca.k_proj(memory).view(1, -1, 4, 4).transpose(1, 2)
            want = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)[0]
            torch.testing.assert_close(got[i], want, rtol=1e-5, atol=1e-6)
            x = layer(x, memory)
    assert not torch.allclose(got[0], got[1])              # two layers, two different maps


def test_bucketed_batches_draw_the_same_way_and_pad_less(monkeypatch):
    words = [Word("行" * n, (("xing2",) * n,), ("x" * (2 * n),)) for n in range(1, 3)] + WORDS
    ex = T.make_examples(words, "pinyin") + T.make_examples(words, "english")
    v = T.build_vocabularies(ex)
    seen = []
    real = T._encode
    monkeypatch.setattr(T, "_encode", lambda arch, vocab, batch: seen.append(list(batch)) or real(arch, vocab, batch))
    kw = dict(steps=8, batch_size=4, lr=1e-3, warmup_steps=0, seed=0, progress=False)
    T.train_translator(_ed(v), v, ex, bucket=4, **kw)
    bucketed, seen[:] = list(seen), []
    T.train_translator(_ed(v), v, ex, bucket=1, **kw)
    plain = list(seen)
    assert all(len(b) == 4 for b in bucketed) and len(bucketed) == len(plain) == 8
    # a pool of 4 batches is one draw of 16 examples, sorted by length and cut: within a pool the
    # batches' length ranges do not overlap
    size = lambda e: len(e.source) + len(e.target)
    for pool in (bucketed[:4], bucketed[4:]):
        spans = sorted((min(map(size, b)), max(map(size, b))) for b in pool)
        assert all(hi <= lo for (_, hi), (lo, _) in zip(spans, spans[1:]))
    padding = lambda batches: sum(max(map(size, b)) * len(b) - sum(map(size, b)) for b in batches)
    assert padding(bucketed) < padding(plain)
    # bucket=1 is the plain draw: a fixed seed gives the same batches as before bucketing existed
    g = torch.Generator().manual_seed(0)
    assert plain[0] == [ex[i] for i in torch.randint(0, len(ex), (4,), generator=g).tolist()]
