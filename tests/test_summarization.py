"""Tests of lmlib.summarization: the data against an independent reading of the markdown, ROUGE
against counts done by hand, the baselines, and the encoder–decoder on a task it must learn."""

import re

import pytest
import torch

from lmlib import summarization as S
from lmlib.data import _play_files, load_play


# ---------------------------------------------------------------------------------------------
# The pairs, read a second way from the play's markdown
# ---------------------------------------------------------------------------------------------

def independent_pairs(slug, max_speeches):
    """(direction, speakers) for every entrance paragraph directly followed by speeches, read
    from the raw markdown with nothing but blank-line paragraphs and the bold speaker lines."""
    text = _play_files()[slug][1].read_text(encoding="utf-8")
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    out = []
    for i, para in enumerate(paras):
        if not re.match(r"^_(Enter|Re-enter)\b", para) or not para.endswith("_"):
            continue
        direction = " ".join(para.strip("_").replace("\\", "").split())
        speakers = []
        for q in paras[i + 1:]:
            m = re.match(r"^\*\*([^*]+)\*\*", q)
            whole_italic = q.startswith("_") and q.rstrip().endswith("_")
            if whole_italic or q.startswith("#") or len(speakers) == max_speeches or not (m or speakers):
                break                          # a direction, a heading, enough speeches, or no speaker
            if m:                              # (other paragraphs continue the last speech)
                speakers.append(" ".join(m.group(1).split()).upper())
        if speakers:
            out.append((direction, speakers))
    return out


@pytest.mark.parametrize("slug", ["hamlet", "the-tempest", "macbeth"])
def test_pairs_match_an_independent_reading(slug):
    ours = [(p.direction, list(p.speakers)) for p in S.entrance_pairs(slug, max_speeches=4)]
    theirs = independent_pairs(slug, 4)
    assert len(ours) > 20
    assert ours == theirs


def test_first_pairs_of_hamlet_by_hand():
    pairs = S.entrance_pairs("hamlet", max_speeches=3)
    assert pairs[0].direction == "Enter HORATIO and MARCELLUS"
    assert pairs[0].speakers == ("HORATIO", "MARCELLUS", "FRANCISCO")
    assert pairs[0].speeches[0] == "HORATIO:\nFriends to this ground."
    assert (pairs[0].act, pairs[0].scene) == ("I", "I")
    assert pairs[1].direction == "Enter Ghost"
    # every speech is verbatim a passage of the play's text
    text = load_play("hamlet").text
    assert all(s in text for p in pairs for s in p.speeches)


def test_source_units_cut_is_explicit():
    pair = S.EntrancePair("x", None, None, "Enter A", ("A:\nabcdef", "B:\nghijkl", "C:\nmn"), ("A", "B", "C"))
    units, dropped = S.source_units(pair, max_chars=14)
    assert units == ["A:\nabcdef", "B:\n"]        # 9 + 2 (the join) + 3 = 14 characters
    assert len("\n\n".join(units)) == 14
    assert dropped == len("ghijkl") + len("C:\nmn")
    units, dropped = S.source_units(pair, max_chars=1000)
    assert units == list(pair.speeches) and dropped == 0


# ---------------------------------------------------------------------------------------------
# ROUGE and the baselines
# ---------------------------------------------------------------------------------------------

def test_rouge_on_a_pair_counted_by_hand():
    # reference tokens: enter hamlet and horatio (4); candidate: enter hamlet hamlet and (4)
    # ROUGE-1 overlap (clipped): enter, hamlet, and = 3 -> P = 3/4, R = 3/4, F = 3/4
    # ROUGE-2 bigrams: ref {enter hamlet, hamlet and, and horatio}; cand {enter hamlet, hamlet hamlet,
    #   hamlet and}: overlap 2 -> P = R = F = 2/3
    # ROUGE-L: LCS = enter hamlet and = 3 -> F = 3/4
    r = S.rouge_scores(["Enter HAMLET, hamlet and"], ["Enter HAMLET and HORATIO"])
    assert r["rouge1"][0] == pytest.approx(0.75)
    assert r["rouge2"][0] == pytest.approx(2 / 3)
    assert r["rougeL"][0] == pytest.approx(0.75)
    # P != R: candidate "enter" (1 token) vs 4 reference tokens: P = 1, R = 1/4, F = 2PR/(P+R) = 0.4
    assert S.rouge_scores(["Enter"], ["Enter HAMLET and HORATIO"])["rouge1"][0] == pytest.approx(0.4)


def test_rouge_tokens_match_rouge_score():
    from rouge_score import tokenize
    for text in ["Enter KING CLAUDIUS, QUEEN GERTRUDE", "Re-enter Ghost.", "'Tis 12 o'clock!"]:
        assert S.rouge_tokens(text) == tokenize.tokenize(text, None)


def test_cue_and_lead_baselines():
    units = ["HAMLET:\nWho?", "HORATIO:\nI.", "HAMLET:\nAh.", "GHOST:\nMark me."]
    assert S.cue_summary(units) == "Enter HAMLET, HORATIO, and GHOST"
    assert S.cue_summary(units, max_names=2) == "Enter HAMLET and HORATIO"
    assert S.cue_summary(units[:1]) == "Enter HAMLET"
    assert S.lead_summary(units) == "HAMLET:\nWho?"
    assert S.cue_summary(units) == S.cue_summary(list(units))          # deterministic, no state


def test_oracle_and_centroid():
    units = ["A:\nthe cat", "B:\nEnter the king", "C:\nhello"]
    assert S.oracle_extract(units, "Enter the king") == 1
    e = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.2]])
    # the centre is (0.725, 0.325); its cosine with each row, computed here without F.cosine_similarity
    centre = e.mean(0)
    cos = [(float(r @ centre) / float(r.norm() * centre.norm())) for r in e]
    assert S.centroid_extract(e) == max(range(4), key=lambda i: cos[i]) == 3


def test_bert_embeddings_ignore_padding():
    from lmlib import zoo
    zm = zoo.load("bert-mlm")
    texts = ["HAMLET:\nTo be, or not to be.", "A much longer speech about the king and the castle, " * 6]   # > 62 tokens
    both, cut = S.bert_embeddings(zm, texts, batch_size=2)
    alone, _ = S.bert_embeddings(zm, texts[:1], batch_size=1)
    assert both.shape == (2, zm.model.config.hidden_size) and cut == 1
    assert torch.allclose(both[0], alone[0], atol=1e-5)               # padding does not leak in


# ---------------------------------------------------------------------------------------------
# The encoder–decoder
# ---------------------------------------------------------------------------------------------

class WordTok:
    """A toy tokenizer: the words w0..w9 and three specials."""
    vocab_size = 13

    def encode(self, text):
        return [int(w[1:]) for w in text.split()]

    def decode(self, ids):
        return " ".join(f"w{i}" for i in ids)


def test_codec_batch_and_decode():
    codec = S.TextCodec(WordTok(), pad_id=10, bos_id=11, eos_id=12)
    ids, pad = codec.batch(["w1 w2", "w3"], add_eos=True)
    assert ids.tolist() == [[1, 2, 12], [3, 12, 10]]
    assert pad.tolist() == [[False, False, False], [False, False, True]]
    assert codec.decode([3, 11, 4, 12, 5]) == "w3 w4"


def test_summarizer_learns_to_copy_the_first_word():
    from lmlib.transformer import Transformer, TransformerConfig
    torch.manual_seed(0)
    codec = S.TextCodec(WordTok(), pad_id=10, bos_id=11, eos_id=12)
    g = torch.Generator().manual_seed(0)
    srcs, tgts = [], []
    for _ in range(200):
        n = int(torch.randint(2, 6, (1,), generator=g))
        words = torch.randint(0, 10, (n,), generator=g).tolist()
        srcs.append(" ".join(f"w{w}" for w in words))
        tgts.append(f"w{words[0]}")
    model = Transformer(TransformerConfig(13, 13, d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                                          d_ff=64, dropout=0.0, max_len=8, share_embeddings=True))
    losses = S.train_summarizer(model, codec, srcs, tgts, steps=150, batch_size=32, lr=3e-3, warmup_steps=10,
                                progress=False)
    assert losses[-1] < 0.2 < losses[0]
    test = ["w7 w1 w2", "w3 w9", "w5 w5 w0 w8"]
    assert S.summarize(model, codec, test, max_new_tokens=3) == ["w7", "w3", "w5"]
