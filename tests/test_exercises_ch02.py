"""The Chapter 2 checkers accept right answers and give specific hints for typical wrong ones."""

from __future__ import annotations

import torch

from lmlib.embeddings import sinusoidal_encoding
from lmlib.tokenizers import BPETokenizer
from lmlib.exercises import ch02


def test_utf8_bytes(capsys):
    assert ch02.check_utf8_bytes(15)
    assert "Correct" in capsys.readouterr().out
    assert not ch02.check_utf8_bytes(5)
    assert "characters" in capsys.readouterr().out
    assert not ch02.check_utf8_bytes(10)
    assert "UTF-16" in capsys.readouterr().out
    assert not ch02.check_utf8_bytes(None)


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


def test_sinusoidal(capsys):
    assert ch02.check_sinusoidal(lambda T, C: sinusoidal_encoding(T, C))
    capsys.readouterr()

    def halves(T, C):
        pe = sinusoidal_encoding(T, C)
        return torch.cat([pe[:, 0::2], pe[:, 1::2]], dim=1)

    def swapped(T, C):
        pe = sinusoidal_encoding(T, C)
        return torch.stack([pe[:, 1::2], pe[:, 0::2]], dim=-1).reshape(T, C)

    def wrong_exponent(T, C):
        pos = torch.arange(T, dtype=torch.float64)[:, None]
        ang = pos * 10000.0 ** (-torch.arange(C // 2, dtype=torch.float64)[None, :] / C)
        return torch.stack([ang.sin(), ang.cos()], dim=-1).reshape(T, C)

    for fn, words in [(halves, "interleaves"), (swapped, "swapped"), (wrong_exponent, "2i/d_model"),
                      (lambda T, C: sinusoidal_encoding(T, C).T, "one row per position"),
                      (lambda T, C: None, "torch tensor")]:
        assert not ch02.check_sinusoidal(fn)
        assert words in capsys.readouterr().out
