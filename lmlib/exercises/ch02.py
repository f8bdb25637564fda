"""Checkers for the exercises of Chapter 2 (tokens and the input layer)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from . import Verdict, check_equal, check_function, correct, describe, hint, never_raises

__all__ = ["check_utf8_bytes", "check_encode_piece", "check_train_bpe"]


#: The string of the first exercise: ASCII, accented Latin, Chinese and an emoji (1 to 4 bytes each).
UTF8_TEXT = "café 大模型 😀"


@never_raises('an int (a number of bytes)')
def check_utf8_bytes(answer: Any, *, quiet: bool = False) -> Verdict:
    """How many bytes does ``UTF8_TEXT`` ("café 大模型 😀") take in UTF-8?"""
    text = UTF8_TEXT
    expected = len(text.encode("utf-8"))
    return check_equal(answer, expected, what=f'UTF-8 bytes of "{text}"', quiet=quiet, hints={
        len(text): "that is the number of characters (spaces included). Only ASCII characters take one byte.",
        len(text.encode("utf-16-le")): "that is the size in UTF-16 (2 bytes per character, 4 for the emoji), not UTF-8.",
        expected - 1: "one byte short: é (U+00E9) takes 2 bytes, and 😀 (U+1F600, beyond U+FFFF) takes 4.",
        expected - 2: "two bytes short: did you count the two spaces? Each is one byte.",
    }, default_hint="go character by character through the table of byte lengths at the start of the chapter.")


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


# -- training BPE ----------------------------------------------------------------------------------

def _pairs(ids: list[int]) -> Counter:
    return Counter(zip(ids, ids[1:]))  # overlapping pairs: "aaa" holds (a, a) twice


def _merge(ids: list[int], pair: tuple[int, int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _non_overlapping(ids: list[int]) -> Counter:
    """A typical wrong count: how many times the pair can be merged (like ``bytes.count``), not how
    often it occurs ("aaa" holds (a, a) once)."""
    return Counter({p: len(ids) - len(_merge(ids, p, -1)) for p in set(zip(ids, ids[1:]))})


def _variant_train(text: str, n_merges: int, *, pretokenize: bool = True, weighted: bool = True,
                   counter=_pairs, tie: str = "small", recount: bool = True) -> list[tuple[int, int]]:
    """The reference trainer (all defaults) and the typical wrong ones (one option changed)."""
    import regex

    from ..tokenizers import GPT2_PATTERN

    words = Counter(regex.findall(GPT2_PATTERN, text) if pretokenize else [text])
    seqs = {w: list(w.encode("utf-8")) for w in words}
    merges: list[tuple[int, int]] = []
    frozen = None
    for step in range(n_merges):
        counts: Counter = Counter()
        for w, f in words.items():
            for pair, k in counter(seqs[w]).items():
                counts[pair] += (f if weighted else 1) * k
        counts = +counts
        if not recount:  # rank the pairs once, at the start, and never update the counts
            if frozen is None:
                frozen = sorted(counts, key=lambda p: (-counts[p], p))
            if step >= len(frozen):
                break
            pair = frozen[step]
        else:
            if not counts:
                break
            if tie == "small":
                pair = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
            elif tie == "large":
                pair = max(counts, key=lambda p: (counts[p], p))
            else:  # "first": Counter.most_common keeps the first pair seen among equals
                pair = counts.most_common(1)[0][0]
        merges.append(pair)
        seqs = {w: _merge(s, pair, 256 + step) for w, s in seqs.items()}
    return merges


#: Texts for the trainer: ties, runs of one letter, repeated words, and a real passage.
_BPE_TEXTS = [
    ("aaa aaa bc bc", 3),
    ("to be or not to be that is the question", 6),
    ("low lower lowest slow slowly blow", 8),
    ("abab ab ab ba ba", 3),
    ("the cat sat on the mat; the other cat sat on the hat. " * 3 + "then they ate theirs", 12),
    ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
     "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n", 25),
]

_BPE_MISTAKES = [
    (dict(pretokenize=False), "merges that cross pre-token boundaries: cut the text with "
     "regex.findall(GPT2_PATTERN, text) first and merge only inside each pre-token."),
    (dict(weighted=False), "each distinct pre-token counted once: weight its pairs by how often the pre-token "
     "occurs (the f_w of the formula)."),
    (dict(counter=_non_overlapping), "pairs in runs such as \"aaa\" are counted as non-overlapping matches; "
     "count every neighbouring pair, overlapping ones too (\"aaa\" holds (a, a) twice), as pair_counts does."),
    (dict(recount=False), "the pair counts were computed once and never updated: after each merge the counts "
     "change (the merged pair disappears, new pairs with the new id appear)."),
]


def _counts_after(text: str, merges: list[tuple[int, int]]) -> Counter:
    """The weighted pair counts once ``merges`` have been applied (the counts that choose the next merge)."""
    import regex

    from ..tokenizers import GPT2_PATTERN

    counts: Counter = Counter()
    for w, f in Counter(regex.findall(GPT2_PATTERN, text)).items():
        ids = list(w.encode("utf-8"))
        for step, pair in enumerate(merges):
            ids = _merge(ids, pair, 256 + step)
        for pair, k in _pairs(ids).items():
            counts[pair] += f * k
    return counts


def _reference_train(text: str, n_merges: int) -> list[tuple[int, int]]:
    from ..tokenizers import BPETokenizer

    return BPETokenizer.train(text, 256 + n_merges, special_tokens=(), min_frequency=1).merges


def _as_merges(got: Any) -> list[tuple[int, int]] | None:
    try:
        out = [tuple(int(x) for x in p) for p in got]
    except Exception:  # noqa: BLE001
        return None
    return out if all(len(p) == 2 for p in out) else None


def _diagnose_train(args: tuple, got: Any, expected: list[tuple[int, int]]) -> str | None:
    text, n = args
    merges = _as_merges(got)
    if merges is None:
        return f"return a list of merges, each a pair (left_id, right_id) of ints; got {describe(got)}."
    if len(merges) != n:
        return f"return exactly the first {n} merges, got {len(merges)}."
    if any(a >= 256 + n or b >= 256 + n for a, b in merges):
        return "merged ids are 256, 257, ...: the k-th merge (from 0) creates id 256 + k."
    k = next(i for i, (g, e) in enumerate(zip(merges, expected)) if g != e)
    counts = _counts_after(text, expected[:k])
    if counts.get(merges[k], 0) == counts[expected[k]]:
        return (f"on {text[:40]!r}..., merge {k}: your pair {merges[k]} and the expected {expected[k]} occur equally "
                f"often ({counts[expected[k]]} times); among equally frequent pairs the one with the smallest "
                "(left id, right id) must win, whatever order your code met them in.")
    for kw, message in _BPE_MISTAKES:
        if merges == _variant_train(text, n, **kw):
            return f"on {text[:40]!r}...: {message}"
    k = next(i for i, (g, e) in enumerate(zip(merges, expected)) if g != e)
    return (f"on {text[:40]!r}... the first {k} merges are right, merge {k} should be {expected[k]} "
            f"(count every pair again after merge {k - 1}), you have {merges[k]}.")


def _same_mistake(fn: Callable, cases: list) -> str | None:
    """The typical mistake that reproduces every output of ``fn`` (None if none does)."""
    outs = []
    for args, _ in cases:
        try:
            outs.append(_as_merges(fn(*args)))
        except Exception:  # noqa: BLE001 - already reported by check_function
            return None
    for kw, message in _BPE_MISTAKES:
        if all(o == _variant_train(*args, **kw) for o, (args, _) in zip(outs, cases)):
            return message
    return None


@never_raises('a function fn(text, n_merges) returning a list of (left_id, right_id) pairs')
def check_train_bpe(fn: Callable[[str, int], Any] | None, *, quiet: bool = False) -> Verdict:
    """``fn(text: str, n_merges: int) -> [(left_id, right_id), ...]``: the merges BPE learns."""
    cases = [((text, n), _reference_train(text, n)) for text, n in _BPE_TEXTS]
    v = check_function(fn, cases, what="train_bpe", quiet=True,
                       compare=lambda got, exp: _as_merges(got) == exp, diagnose=_diagnose_train)
    if not v.ok and callable(fn):
        message = _same_mistake(fn, cases)
        if message is not None:
            return hint("train_bpe: " + message, quiet=quiet)
    if v.ok:
        return correct(v.message, quiet=quiet)
    return hint(v.message.removeprefix("Hint: "), quiet=quiet)
