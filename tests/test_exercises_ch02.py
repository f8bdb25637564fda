"""The Chapter 2 checkers accept right answers and give specific hints for typical wrong ones."""

from __future__ import annotations

from collections import Counter

import regex

from lmlib.tokenizers import GPT2_PATTERN, BPETokenizer
from lmlib.exercises import ch02


def test_utf8_bytes(capsys):
    text = ch02.UTF8_TEXT
    # an independent count: the UTF-8 length rule of the chapter, character by character
    by_rule = sum(1 if ord(c) < 0x80 else 2 if ord(c) < 0x800 else 3 if ord(c) < 0x10000 else 4 for c in text)
    assert by_rule == 20
    assert ch02.check_utf8_bytes(by_rule)
    assert "Correct" in capsys.readouterr().out
    for answer, words in [(len(text), "number of characters"), (len(text.encode("utf-16-le")), "UTF-16"),
                          (19, "é (U+00E9) takes 2"), (18, "spaces"), (None, "replace `None`"), ("20", "int")]:
        assert not ch02.check_utf8_bytes(answer)
        assert words in capsys.readouterr().out, (answer, words)


def _encode_piece(piece, ranks):
    """An independent solution: rescan for the lowest-rank pair each round."""
    parts = [bytes([b]) for b in piece]
    while True:
        pairs = [(ranks[a + b], i) for i, (a, b) in enumerate(zip(parts, parts[1:])) if a + b in ranks]
        if not pairs:
            return [ranks[p] for p in parts]
        _, i = min(pairs)
        parts[i:i + 2] = [parts[i] + parts[i + 1]]


def test_encode_piece(capsys):
    assert ch02.check_encode_piece(_encode_piece)
    # lmlib's heap-based encoder is a right answer too (the toy ranks rebuilt as merges).
    tok = BPETokenizer([(98, 99), (99, 100), (97, 98), (97, 256), (97, 97)], ())
    assert ch02.check_encode_piece(lambda piece, ranks: list(tok._encode_piece(piece)) if ranks == tok.mergeable_ranks
                                   else _encode_piece(piece, ranks))
    capsys.readouterr()

    def first_found(piece, ranks):
        parts = [bytes([b]) for b in piece]
        i = 0
        while i < len(parts) - 1:
            if parts[i] + parts[i + 1] in ranks:
                parts[i:i + 2] = [parts[i] + parts[i + 1]]
                i = 0
            else:
                i += 1
        return [ranks[p] for p in parts]

    def longest(piece, ranks):
        out, i = [], 0
        while i < len(piece):
            j = max(j for j in range(i + 1, len(piece) + 1) if piece[i:j] in ranks)
            out.append(ranks[piece[i:j]])
            i = j
        return out

    def as_bytes(piece, ranks):
        ids = _encode_piece(piece, ranks)
        inv = {v: k for k, v in ranks.items()}
        return [inv[i] for i in ids]

    for fn, words in [(first_found, "LOWEST rank"), (longest, "LOWEST rank"), (as_bytes, "not the byte"),
                      (lambda p, r: _encode_piece(p, r)[::-1], "wrong order"), (lambda p, r: None, "Not yet"),
                      (lambda p, r: 1 / 0, "ZeroDivisionError")]:
        assert not ch02.check_encode_piece(fn)
        assert words in capsys.readouterr().out, words


def _pairs(ids):
    return Counter(zip(ids, ids[1:]))


def _merge(ids, pair, new):
    out, i = [], 0
    while i < len(ids):
        if tuple(ids[i:i + 2]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _train(text, n, *, pretokenize=True, weighted=True, overlapping=True, tie="small", recount=True):
    """An independent plain trainer, and the typical mistakes as options."""
    words = Counter(regex.findall(GPT2_PATTERN, text) if pretokenize else [text])
    seqs = {w: list(w.encode()) for w in words}
    merges, ranked = [], None
    for step in range(n):
        counts = Counter()
        for w, f in words.items():
            ids = seqs[w]
            for p in set(zip(ids, ids[1:])):
                k = _pairs(ids)[p] if overlapping else len(ids) - len(_merge(ids, p, -1))
                counts[p] += k * (f if weighted else 1)
        if not recount:
            ranked = ranked or sorted(counts, key=lambda p: (-counts[p], p))
            pair = ranked[step]
        elif tie == "small":
            pair = min(counts, key=lambda p: (-counts[p], p))
        elif tie == "large":
            pair = max(counts, key=lambda p: (counts[p], p))
        else:
            pair = counts.most_common(1)[0][0]
        merges.append(pair)
        seqs = {w: _merge(s, pair, 256 + step) for w, s in seqs.items()}
    return merges


def test_train_bpe_reference_is_lmlib(capsys):
    # The independent trainer agrees with BPETokenizer.train on the checker's texts and on a real passage.
    for text, n in ch02._BPE_TEXTS:
        assert _train(text, n) == BPETokenizer.train(text, 256 + n, special_tokens=(), min_frequency=1).merges
    assert ch02.check_train_bpe(_train)
    assert "Correct" in capsys.readouterr().out


def test_train_bpe_hints(capsys):
    for kw, words in [(dict(pretokenize=False), "cross pre-token boundaries"), (dict(weighted=False), "how often"),
                      (dict(overlapping=False), "overlapping"), (dict(tie="first"), "occur equally often"),
                      (dict(tie="large"), "smallest (left id, right id) must win"), (dict(recount=False), "never updated")]:
        assert not ch02.check_train_bpe(lambda text, n, kw=kw: _train(text, n, **kw))
        assert words in capsys.readouterr().out, kw
    for fn, words in [(lambda t, n: [], "exactly the first 3 merges"), (lambda t, n: None, "list of merges"),
                      (lambda t, n: [(a + 1, b) for a, b in _train(t, n)], "merge 0 should be"),
                      (lambda t, n: [(a + 300, b) for a, b in _train(t, n)], "creates id 256 + k"),
                      (lambda t, n: _train(t, n)[::-1], "merge 0 should be"),
                      (lambda t, n: 1 / 0, "ZeroDivisionError"), (None, "define your function")]:
        assert not ch02.check_train_bpe(fn)
        assert words in capsys.readouterr().out, words
