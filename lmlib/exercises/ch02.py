"""Checkers for the exercises of Chapter 2 (tokens and the input layer)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from . import Verdict, check_equal, check_function, never_raises

__all__ = ["check_utf8_bytes", "check_encode_piece", "check_sinusoidal"]


@never_raises('an int (a number of bytes)')
def check_utf8_bytes(answer: Any, *, quiet: bool = False) -> Verdict:
    """How many bytes does "大语言模型" take in UTF-8?"""
    text = "大语言模型"
    expected = len(text.encode("utf-8"))
    return check_equal(answer, expected, what='UTF-8 bytes of "大语言模型"', quiet=quiet, hints={
        len(text): "that is the number of characters. Each of these characters is encoded by several bytes.",
        len(text.encode("utf-16-le")): "that is the size in UTF-16 (2 bytes per character here), not UTF-8.",
        4 * len(text): "UTF-8 uses 4 bytes only for characters beyond U+FFFF (such as emoji); "
                       "these characters are between U+0800 and U+FFFF.",
    }, default_hint="try len(text.encode('utf-8')) after counting by hand: how many bytes per character?")


# -- encoding one pre-token with merge ranks -------------------------------------------------------

def _toy_ranks() -> dict[bytes, int]:
    """Single bytes, then "bc" (256), "cd" (257), "ab" (258), "abc" (259), "aa" (260)."""
    ranks = {bytes([b]): b for b in range(256)}
    for k, tok in enumerate([b"bc", b"cd", b"ab", b"abc", b"aa"]):
        ranks[tok] = 256 + k
    return ranks


def _reference_encode_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best = min(range(len(parts) - 1), key=lambda i: (ranks.get(parts[i] + parts[i + 1], float("inf")), i))
        if parts[best] + parts[best + 1] not in ranks:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return [ranks[p] for p in parts]


def _first_found(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """A typical wrong answer: merge the leftmost mergeable pair, whatever its rank."""
    parts = [piece[i:i + 1] for i in range(len(piece))]
    merged = True
    while merged:
        merged = False
        for i in range(len(parts) - 1):
            if parts[i] + parts[i + 1] in ranks:
                parts[i:i + 2] = [parts[i] + parts[i + 1]]
                merged = True
                break
    return [ranks[p] for p in parts]


def _longest_prefix(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """Another typical wrong answer: greedy longest match from the left."""
    out, i = [], 0
    while i < len(piece):
        j = max(j for j in range(i + 1, len(piece) + 1) if piece[i:j] in ranks)
        out.append(ranks[piece[i:j]])
        i = j
    return out


_PIECES = [b"x", b"abcd", b"", b"aab", b"aabc", b"abcab", b"bcd", b"aaaa", b"dabcd"]


def _encode_cases() -> list[tuple[tuple, list[int]]]:
    ranks = _toy_ranks()
    cases = [((p, ranks), _reference_encode_piece(p, ranks)) for p in _PIECES]
    # A real tokenizer too: a few merges learned from a short English text.
    from ..tokenizers import BPETokenizer

    text = "the cat sat on the mat; the other cat sat on the hat. " * 4 + "then they ate theirs"
    tok = BPETokenizer.train(text, 256 + 40, special_tokens=())
    real = tok.mergeable_ranks
    for word in [" the", " cat", " then", " theirs", " mathematics", "hat", " xyz"]:
        cases.append(((word.encode(), real), tok.encode_ordinary(word)))
    return cases


def _diagnose_encode(args: tuple, got: Any, expected: list[int]) -> str | None:
    piece, ranks = args
    if isinstance(got, (bytes, str)) or (isinstance(got, list) and got and isinstance(got[0], (bytes, str))):
        return "return the ids (ranks[part] for each part), not the byte strings."
    got = list(got)
    if got == _first_found(piece, ranks) and got != expected:
        return (f"for {piece!r} you merged the first mergeable pair you found; BPE merges the pair whose merged "
                "bytes have the LOWEST rank (the merge learned earliest) first.")
    if got == _longest_prefix(piece, ranks) and got != expected:
        return (f"for {piece!r} you took the longest known prefix each time; BPE instead repeats: merge the "
                "adjacent pair with the lowest rank, until no adjacent pair is in the ranks.")
    if sorted(got) == sorted(expected):
        return "the right tokens in the wrong order: keep the parts in the order they appear in the piece."
    return f"for {piece!r} the expected ids are {expected}; you returned {got}."


@never_raises('a function fn(piece, ranks) returning a list of int token ids')
def check_encode_piece(fn: Callable[[bytes, dict[bytes, int]], Any] | None, *, quiet: bool = False) -> Verdict:
    """``fn(piece: bytes, ranks: {bytes: id}) -> list[int]``: BPE-encode one pre-token."""
    return check_function(fn, _encode_cases(), what="encode_piece", quiet=quiet,
                          compare=lambda got, exp: list(got) == exp, diagnose=_diagnose_encode)


# -- sinusoidal encodings -------------------------------------------------------------------------------

def _table(T: int, C: int, *, interleave: bool = True, swap: bool = False, exponent: float = 2.0) -> torch.Tensor:
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(C // 2, dtype=torch.float64)[None, :]
    ang = pos * 10000.0 ** (-exponent * i / C)  # (T, C/2)
    a, b = (ang.cos(), ang.sin()) if swap else (ang.sin(), ang.cos())
    if interleave:
        return torch.stack([a, b], dim=-1).reshape(T, C)
    return torch.cat([a, b], dim=-1)


_SIN_CASES = [(6, 4), (10, 8), (50, 16)]


def _diagnose_sin(args: tuple, got: Any, expected: torch.Tensor) -> str | None:
    T, C = args
    if not isinstance(got, torch.Tensor):
        return f"return a torch tensor of shape ({T}, {C}), got {type(got).__name__}."
    if tuple(got.shape) != (T, C):
        if tuple(got.shape) == (C, T):
            return f"the shape should be (T, C) = ({T}, {C}): one row per position."
        return f"expected shape ({T}, {C}), got {tuple(got.shape)}."
    g = got.detach().double()

    def near(x: torch.Tensor) -> bool:
        return torch.allclose(g, x, atol=1e-4)

    if near(_table(T, C, swap=True)):
        return "sine and cosine are swapped: even dimensions (0, 2, ...) hold the sine."
    if near(_table(T, C, interleave=False)):
        return "you put all sines first and all cosines after; the paper interleaves them: sin, cos, sin, cos, ..."
    if near(_table(T, C, exponent=1.0)):
        return "the exponent is 2i/d_model, where 2i is the index of the even dimension (0, 2, 4, ...)."
    return None


@never_raises('a function fn(T, C) returning a (T, C) float tensor')
def check_sinusoidal(fn: Callable[[int, int], Any] | None, *, quiet: bool = False) -> Verdict:
    """``fn(T, C) -> (T, C)`` tensor: the sinusoidal positional encodings."""
    cases = [((T, C), _table(T, C)) for T, C in _SIN_CASES]

    def compare(got: Any, exp: torch.Tensor) -> bool:
        return isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(exp.shape) and torch.allclose(
            got.detach().double(), exp, atol=1e-4)

    return check_function(fn, cases, what="sinusoidal encoding", quiet=quiet, compare=compare,
                          diagnose=_diagnose_sin)
