"""Tokenizers (分词器): characters, bytes and byte-level BPE, with one interface.

Every tokenizer here turns text into a list of integer ids and back:

* ``encode(text) -> list[int]`` and ``decode(ids) -> str``;
* ``vocab_size`` (the number of distinct ids, special tokens included);
* ``special_tokens`` (a dict ``{"<|endoftext|>": id, ...}``) and ``eot_id`` (the id of
  ``"<|endoftext|>"``, or ``None`` when the tokenizer has no such token);
* ``save(path)`` and the class method ``load(path)`` (a versioned JSON file, described below);
* ``to_hf(path=None)``: the same tokenizer as a ``transformers.PreTrainedTokenizerFast``.

The four classes are

``CharTokenizer``
    one id per character seen in a training text (an unseen character is an error, or maps to
    an optional unknown token);
``WordTokenizer``
    one id per space-separated word of a fixed list (a pinyin syllable, in chapter 9), with
    the same optional unknown token;
``ByteTokenizer``
    one id per byte of the UTF-8 encoding, so 256 ids cover every string;
``BPETokenizer``
    byte-level byte-pair encoding in the GPT-2 style: the text is first cut into *pre-tokens*
    by a regular expression (words with their leading space, runs of digits, runs of
    punctuation, runs of whitespace), then each pre-token's bytes are merged pairwise by the
    learned merge rules. Its ``encode`` gives exactly the ids of ``tiktoken.Encoding`` built
    from :attr:`BPETokenizer.mergeable_ranks`, :attr:`BPETokenizer.pattern` and the special
    tokens.

Special tokens
--------------
Special tokens (for example ``"<|endoftext|>"``, which separates documents) are whole ids of
their own: ``encode`` first cuts the text at every occurrence of a special token's string, so a
special token is never split, never merged with its neighbours, and BPE training never sees it.
``encode(text, allowed_special="none")`` treats those strings as ordinary text instead (useful
for untrusted input).

Decoding
--------
``decode`` raises ``ValueError`` for an id outside ``range(vocab_size)`` and ``TypeError`` for
something that is not an integer. Byte-level ids can cut a character in the middle (the four
bytes of an emoji may be four tokens), so a slice of the ids need not be valid UTF-8 by itself:
``decode`` then puts U+FFFD (the replacement character) where the broken bytes were
(``errors="replace"``, as ``tiktoken`` and ``bytes.decode`` do); ``errors="strict"`` raises
``ValueError`` instead, and ``decode_bytes`` returns the raw bytes. ``decode(encode(s)) == s``
holds for every string ``s``: a BPE pre-tokenization pattern with capturing groups is refused,
and ``encode`` raises ``ValueError`` if a custom pattern skips a character of the text.

File format
-----------
``save`` writes one UTF-8 JSON object::

    {"format": "lmlib-tokenizer", "version": 1, "type": "bpe" | "byte" | "char",
     "special_tokens": {"<|endoftext|>": 4095},
     ...type-specific fields...}

* ``"char"``: ``"chars"``: the list of characters, character ``i`` has id ``i``;
  ``"unk_token"``: a special token's string or ``null``.
* ``"byte"``: nothing more (id ``b`` is byte ``b``).
* ``"bpe"``: ``"pattern"``: the pre-tokenization regular expression; ``"merges"``: the list of
  ``[left_id, right_id]`` pairs in the order they were learned; merge ``i`` creates token id
  ``256 + i`` whose bytes are the left token's bytes followed by the right token's bytes.

Special-token ids come after all ordinary ids. ``load`` checks the format name, the version,
the type and every field, and raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import heapq
import json
import operator
import os
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

import regex

from lmlib.validation import check_bool, check_choice, check_int, check_sequence, check_str
from lmlib.validation import check_path

__all__ = [
    "GPT2_PATTERN",
    "ENDOFTEXT",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "ByteTokenizer",
    "BPETokenizer",
    "load_tokenizer",
    "to_hf",
    "bytes_to_unicode",
]

#: The GPT-2 pre-tokenization pattern: English contractions, optional space + letters,
#: optional space + digits, optional space + other symbols, whitespace not followed by
#: a non-space (so that a word keeps one leading space), and any remaining whitespace.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
FORMAT_NAME = "lmlib-tokenizer"
FORMAT_VERSION = 1


# ------------------------------------------------------------------------------------------------
# The shared interface
# ------------------------------------------------------------------------------------------------

def _check_special_tokens(special: Iterable[str]) -> list[str]:
    if isinstance(special, str):
        raise TypeError("special_tokens must be a sequence of strings, not one string")
    out = check_sequence("special_tokens", special)
    for s in out:
        if not isinstance(s, str) or not s:
            raise ValueError(f"a special token must be a non-empty string, got {s!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate special tokens in {out}")
    return out


def _as_id_list(ids: Any) -> list[int]:
    """A sequence of token ids (list, tuple, 1-D tensor or array) as a list of Python ints."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"decode expects a sequence of token ids, got {type(ids).__name__}")
    if hasattr(ids, "tolist") and hasattr(ids, "shape"):  # torch tensor or numpy array
        if len(ids.shape) != 1:
            raise ValueError(f"decode expects a 1-D sequence of ids, got shape {tuple(ids.shape)}")
        ids = ids.tolist()
    ids = check_sequence("ids", ids)
    out = []
    for i in ids:
        if isinstance(i, bool):
            raise TypeError("token ids must be integers, got a bool")
        try:
            out.append(operator.index(i))
        except TypeError:
            raise TypeError(f"token ids must be integers, got {type(i).__name__} {i!r}") from None
    return out


class Tokenizer:
    """Base class: special-token handling, id checks, save/load. Subclasses provide the rest."""

    kind: str = ""  # the "type" field of the saved file

    def __init__(self, special_tokens: dict[str, int]):
        _check_special_dict(special_tokens)
        self.special_tokens: dict[str, int] = dict(special_tokens)
        self._special_by_id: dict[int, str] = {i: s for s, i in self.special_tokens.items()}
        # Longest first, so that a special token that contains another one wins.
        names = sorted(self.special_tokens, key=lambda s: (-len(s), s))
        self._special_re = regex.compile("(" + "|".join(regex.escape(s) for s in names) + ")") if names else None

    # -- what subclasses implement --------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text`` with special-token strings treated as ordinary text."""
        raise NotImplementedError

    def _decode_ordinary(self, ids: list[int]) -> bytes:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_state(cls, state: dict[str, Any], special: dict[str, int]) -> "Tokenizer":
        raise NotImplementedError

    # -- shared behaviour ----------------------------------------------------------------------
    @property
    def eot_id(self) -> int | None:
        """The id of ``"<|endoftext|>"``, or ``None`` when this tokenizer has no such token."""
        return self.special_tokens.get(ENDOFTEXT)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, *, allowed_special: str | Iterable[str] = "all") -> list[int]:
        """The token ids of ``text``.

        ``allowed_special``: ``"all"`` (default) turns every special token's string into its id;
        ``"none"`` treats them as ordinary text; a set of strings allows only those.
        """
        check_str("text", text, who="encode")
        if isinstance(allowed_special, str) and allowed_special not in ("all", "none"):
            raise ValueError(f"allowed_special must be 'all', 'none' or a set of strings, got {allowed_special!r}")
        if not isinstance(allowed_special, str):
            check_sequence("allowed_special", allowed_special, of=str)
        if allowed_special == "none" or self._special_re is None:
            return self.encode_ordinary(text)
        if allowed_special == "all":
            allowed = self.special_tokens.keys()
        else:
            allowed = set(allowed_special)
            unknown = allowed - self.special_tokens.keys()
            if unknown:
                raise ValueError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        out: list[int] = []
        pending = []  # ordinary text (including special strings that are not allowed)
        for k, part in enumerate(self._special_re.split(text)):
            if k % 2 == 1 and part in allowed:  # odd parts are the separators (special strings)
                if pending:
                    out.extend(self.encode_ordinary("".join(pending)))
                    pending = []
                out.append(self.special_tokens[part])
            elif part:
                pending.append(part)
        if pending:
            out.extend(self.encode_ordinary("".join(pending)))
        return out

    def _check_ids(self, ids: Any) -> list[int]:
        ids = _as_id_list(ids)
        n = self.vocab_size
        for i in ids:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is out of range for a vocabulary of {n} ids")
        return ids

    def decode_bytes(self, ids: Any) -> bytes:
        """The UTF-8 bytes of a sequence of ids (special tokens become their strings)."""
        ids = self._check_ids(ids)
        if not self._special_by_id:
            return self._decode_ordinary(ids)
        out, run = [], []
        for i in ids:
            s = self._special_by_id.get(i)
            if s is None:
                run.append(i)
            else:
                if run:
                    out.append(self._decode_ordinary(run))
                    run = []
                out.append(s.encode("utf-8"))
        if run:
            out.append(self._decode_ordinary(run))
        return b"".join(out)

    def decode(self, ids: Any, *, errors: str = "replace") -> str:
        """The text of a sequence of ids (a list, tuple or 1-D tensor).

        Bytes that are not valid UTF-8 by themselves (part of a character) become U+FFFD with
        ``errors="replace"`` (the default); ``errors="strict"`` raises ``ValueError`` instead.
        """
        check_choice("errors", errors, ("replace", "strict", "ignore", "backslashreplace"))
        data = self.decode_bytes(ids)
        try:
            return data.decode("utf-8", errors=errors)
        except UnicodeDecodeError as exc:
            raise ValueError(f"the ids decode to bytes that are not valid UTF-8 ({exc.reason} at byte "
                             f"{exc.start}); use errors='replace' or decode_bytes") from None

    def token_strings(self, ids: Any) -> list[str]:
        """Each id decoded on its own (for display; a partial character shows as U+FFFD)."""
        return [self.decode([i]) for i in _as_id_list(ids)]

    # -- files ------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to ``path`` as JSON (format in the module docstring)."""
        path = check_path("path", path, who="save")
        obj = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "type": self.kind,
               "special_tokens": self.special_tokens, **self._state()}
        path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Read a tokenizer written by ``save``; ``Tokenizer.load`` returns whichever kind the
        file holds, ``BPETokenizer.load`` (etc.) insists on that kind."""
        path = check_path("path", path, who="load")
        if not path.is_file():
            raise ValueError(f"no tokenizer file at {path}")
        try:
            obj = json.loads(path.read_bytes().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"{path} is not a valid tokenizer file (not UTF-8 JSON: {exc})") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT_NAME:
            raise ValueError(f"{path} is not an lmlib tokenizer file (missing \"format\": \"{FORMAT_NAME}\")")
        version = obj.get("version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise ValueError(f"{path} has tokenizer format version {version!r}; this lmlib reads version "
                             f"{FORMAT_VERSION}")
        kinds = {c.kind: c for c in (CharTokenizer, WordTokenizer, ByteTokenizer, BPETokenizer)}
        kind = obj.get("type")
        if kind not in kinds:
            raise ValueError(f"{path}: unknown tokenizer type {kind!r} (expected one of {sorted(kinds)})")
        target = kinds[kind]
        if cls is not Tokenizer and not issubclass(target, cls):
            raise ValueError(f"{path} holds a {kind!r} tokenizer, not a {cls.kind!r} one; "
                             f"use Tokenizer.load or {target.__name__}.load")
        special = obj.get("special_tokens")
        if not isinstance(special, dict) or not all(
                isinstance(k, str) and k and isinstance(v, int) and not isinstance(v, bool) for k, v in special.items()):
            raise ValueError(f"{path}: \"special_tokens\" must map non-empty strings to integer ids")
        fields = {"format", "version", "type", "special_tokens", *target._FIELDS}
        missing, unknown = sorted(set(target._FIELDS) - set(obj) - {"unk_token"}), sorted(set(obj) - fields)
        if missing or unknown:
            raise ValueError(f"{path}: corrupt {kind!r} tokenizer file: " + "; ".join(
                ([f"missing field(s) {missing}"] if missing else []) + ([f"unknown field(s) {unknown}"] if unknown else []))
                + f" (the fields are {sorted(fields)})")
        try:
            return target._from_state(obj, special)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: corrupt {kind!r} tokenizer file: {exc}") from None

    def to_hf(self, path: str | os.PathLike | None = None):
        """This tokenizer as a ``transformers.PreTrainedTokenizerFast`` (saved to ``path`` with
        ``save_pretrained`` when given) that encodes and decodes exactly like this one."""
        return to_hf(self, path)

    def _special_ids_after(self, n_ordinary: int, special: dict[str, int]) -> None:
        _check_special_dict(special)
        ids = sorted(special.values())
        if ids != list(range(n_ordinary, n_ordinary + len(ids))):
            raise ValueError(f"special token ids must be {n_ordinary}..{n_ordinary + len(ids) - 1} (right after "
                             f"the {n_ordinary} ordinary ids), got {sorted(special.items(), key=lambda kv: kv[1])}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, special_tokens={self.special_tokens})"


def _check_special_dict(special: Any) -> dict[str, int]:
    if not isinstance(special, dict) or not all(isinstance(k, str) and k and isinstance(v, int)
                                                and not isinstance(v, bool) for k, v in special.items()):
        raise TypeError(f"special_tokens must map non-empty strings to int ids, got {special!r:.80}")
    return special


def _numbered(names: Sequence[str] | dict[str, int], start: int) -> dict[str, int]:
    if isinstance(names, dict):
        return dict(_check_special_dict(names))
    return {s: start + k for k, s in enumerate(_check_special_tokens(names))}


# ------------------------------------------------------------------------------------------------
# Characters
# ------------------------------------------------------------------------------------------------

class CharTokenizer(Tokenizer):
    """One id per character: ``chars[i]`` has id ``i``, special tokens come after.

    ``unk_token`` (optional) names a special token that unknown characters map to; without it
    an unknown character raises ``ValueError``. Build one from a text with :meth:`from_text`.
    """

    kind = "char"
    _FIELDS = ("chars", "unk_token")

    def __init__(self, chars: Iterable[str], special_tokens: Sequence[str] | dict[str, int] = (),
                 unk_token: str | None = None):
        chars = check_sequence("chars", chars)
        if unk_token is not None:
            check_str("unk_token", unk_token, nonempty=True)
        if not chars:
            raise ValueError("a CharTokenizer needs at least one character")
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"CharTokenizer characters must be single characters, got {c!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("duplicate characters in the CharTokenizer vocabulary")
        special = _numbered(special_tokens, len(chars))
        if unk_token is not None and unk_token not in special:
            special[unk_token] = len(chars) + len(special)
        self._special_ids_after(len(chars), special)
        super().__init__(special)
        self.chars: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}
        self.unk_token = unk_token
        self._unk_id = None if unk_token is None else special[unk_token]

    @classmethod
    def from_text(cls, text: str, special_tokens: Sequence[str] = (), unk_token: str | None = None) -> "CharTokenizer":
        """The characters of ``text`` in sorted order (the same ids as ``lmlib.data.CharVocab``)."""
        check_str("text", text, nonempty=True, who="CharTokenizer.from_text")
        return cls(sorted(set(text)), special_tokens, unk_token)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.special_tokens)

    def encode_ordinary(self, text: str) -> list[int]:
        stoi, unk = self.stoi, self._unk_id
        if unk is not None:
            return [stoi.get(c, unk) for c in text]
        try:
            return [stoi[c] for c in text]
        except KeyError as exc:
            c = exc.args[0]
            raise ValueError(f"character {c!r} (U+{ord(c):04X}) at position {text.index(c)} is not in the "
                             f"vocabulary (give the tokenizer an unk_token to map unknown characters)") from None

    def _decode_ordinary(self, ids: list[int]) -> bytes:
        return "".join(self.chars[i] for i in ids).encode("utf-8")

    def _state(self) -> dict[str, Any]:
        return {"chars": self.chars, "unk_token": self.unk_token}

    @classmethod
    def _from_state(cls, state: dict[str, Any], special: dict[str, int]) -> "CharTokenizer":
        chars, unk = state["chars"], state.get("unk_token")
        if not isinstance(chars, list):
            raise ValueError("\"chars\" must be a list of characters")
        if unk is not None and unk not in special:
            raise ValueError(f"unk_token {unk!r} is not one of the special tokens")
        return cls(chars, special, unk)


# ------------------------------------------------------------------------------------------------
# Words
# ------------------------------------------------------------------------------------------------

class WordTokenizer(Tokenizer):
    """One id per word: ``words[i]`` has id ``i``, special tokens come after.

    A text is split at whitespace (``str.split()``) and each piece looked up; ``decode`` joins
    the tokens with one space, so ``decode(encode(t)) == t`` for words separated by single
    spaces. ``unk_token`` works as in :class:`CharTokenizer`. Words are non-empty and contain
    no whitespace.
    """

    kind = "word"
    _FIELDS = ("words", "unk_token")

    def __init__(self, words: Iterable[str], special_tokens: Sequence[str] | dict[str, int] = (),
                 unk_token: str | None = None):
        words = check_sequence("words", words)
        if unk_token is not None:
            check_str("unk_token", unk_token, nonempty=True)
        if not words:
            raise ValueError("a WordTokenizer needs at least one word")
        for w in words:
            if not isinstance(w, str) or not w or w.split() != [w]:
                raise ValueError(f"WordTokenizer words must be non-empty strings without whitespace, got {w!r}")
        if len(set(words)) != len(words):
            raise ValueError("duplicate words in the WordTokenizer vocabulary")
        special = _numbered(special_tokens, len(words))
        if unk_token is not None and unk_token not in special:
            special[unk_token] = len(words) + len(special)
        self._special_ids_after(len(words), special)
        super().__init__(special)
        self.words: list[str] = words
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(words)}
        self.unk_token = unk_token
        self._unk_id = None if unk_token is None else special[unk_token]

    @property
    def vocab_size(self) -> int:
        return len(self.words) + len(self.special_tokens)

    def encode_ordinary(self, text: str) -> list[int]:
        stoi, unk = self.stoi, self._unk_id
        pieces = text.split()
        if unk is not None:
            return [stoi.get(w, unk) for w in pieces]
        for k, w in enumerate(pieces):
            if w not in stoi:
                raise ValueError(f"word {w!r} (word {k} of the text) is not in the vocabulary (give the "
                                 f"tokenizer an unk_token to map unknown words)")
        return [stoi[w] for w in pieces]

    def decode_bytes(self, ids: Any) -> bytes:
        """The tokens of ``ids`` (special tokens as their strings) joined with single spaces."""
        ids = self._check_ids(ids)
        names = self._special_by_id
        return " ".join(names[i] if i in names else self.words[i] for i in ids).encode("utf-8")

    def _decode_ordinary(self, ids: list[int]) -> bytes:
        return " ".join(self.words[i] for i in ids).encode("utf-8")

    def _state(self) -> dict[str, Any]:
        return {"words": self.words, "unk_token": self.unk_token}

    @classmethod
    def _from_state(cls, state: dict[str, Any], special: dict[str, int]) -> "WordTokenizer":
        words, unk = state["words"], state.get("unk_token")
        if not isinstance(words, list):
            raise ValueError("\"words\" must be a list of words")
        if unk is not None and unk not in special:
            raise ValueError(f"unk_token {unk!r} is not one of the special tokens")
        return cls(words, special, unk)


# ------------------------------------------------------------------------------------------------
# Bytes
# ------------------------------------------------------------------------------------------------

class ByteTokenizer(Tokenizer):
    """One id per UTF-8 byte (ids 0..255), special tokens from 256 on."""

    kind = "byte"
    _FIELDS = ()

    def __init__(self, special_tokens: Sequence[str] | dict[str, int] = ()):
        special = _numbered(special_tokens, 256)
        self._special_ids_after(256, special)
        super().__init__(special)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.special_tokens)

    def encode_ordinary(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def _decode_ordinary(self, ids: list[int]) -> bytes:
        return bytes(ids)

    def _state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from_state(cls, state: dict[str, Any], special: dict[str, int]) -> "ByteTokenizer":
        return cls(special)


# ------------------------------------------------------------------------------------------------
# Byte-level BPE
# ------------------------------------------------------------------------------------------------

def _merge_word(word: list[int], a: int, b: int, new: int) -> list[int]:
    """Replace every non-overlapping occurrence of the pair ``(a, b)`` in ``word``, left to right."""
    out, i, n = [], 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding (BPE) in the GPT-2 style.

    Ids ``0..255`` are the single bytes; merge ``i`` (``merges[i] == (left, right)``) creates id
    ``256 + i`` whose bytes are ``vocab[left] + vocab[right]``; special tokens come last.
    Because every byte has an id, any Unicode string can be encoded (the "byte fallback").

    Encoding a pre-token: if its bytes are one token, that token; otherwise start from single
    bytes and repeatedly merge the adjacent pair whose merged bytes have the lowest id (the
    leftmost such pair on a tie) until no adjacent pair forms a token. This is exactly what
    ``tiktoken`` does with ``mergeable_ranks``, so both give the same ids.
    """

    kind = "bpe"
    _FIELDS = ("pattern", "merges")

    def __init__(self, merges: Sequence[tuple[int, int]], special_tokens: Sequence[str] | dict[str, int] = (ENDOFTEXT,),
                 pattern: str = GPT2_PATTERN):
        self._pat = _compile_pattern(pattern)
        merges = check_sequence("merges", merges)
        self.pattern = pattern
        vocab = [bytes([b]) for b in range(256)]
        ranks = {v: i for i, v in enumerate(vocab)}
        clean: list[tuple[int, int]] = []
        for k, m in enumerate(merges):
            if not isinstance(m, (list, tuple)) or len(m) != 2 or not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in m):
                raise ValueError(f"merge {k} must be a pair of integer ids, got {m!r}")
            a, b = m
            if not (0 <= a < len(vocab) and 0 <= b < len(vocab)):
                raise ValueError(f"merge {k} = ({a}, {b}) refers to an id that does not exist yet "
                                 f"(only {len(vocab)} ids so far)")
            new = vocab[a] + vocab[b]
            if new in ranks:
                raise ValueError(f"merge {k} = ({a}, {b}) creates the bytes {new!r}, which already have id {ranks[new]}")
            ranks[new] = len(vocab)
            vocab.append(new)
            clean.append((a, b))
        special = _numbered(special_tokens, len(vocab))
        self._special_ids_after(len(vocab), special)
        super().__init__(special)
        self.merges: list[tuple[int, int]] = clean
        self.vocab: list[bytes] = vocab  # id -> bytes (ordinary tokens only)
        self._ranks: dict[bytes, int] = ranks
        self._cache: dict[bytes, tuple[int, ...]] = {}

    # -- properties ------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    @property
    def mergeable_ranks(self) -> dict[bytes, int]:
        """``{token bytes: id}`` for the ordinary tokens: what ``tiktoken.Encoding`` takes."""
        return dict(self._ranks)

    def token_bytes(self, i: int) -> bytes:
        """The bytes of token ``i`` (a special token gives its string's UTF-8 bytes)."""
        return self.decode_bytes([check_int("i", i, min=0, max=self.vocab_size - 1, who="token_bytes")])

    # -- encoding --------------------------------------------------------------------------------
    def pre_tokenize(self, text: str) -> list[str]:
        """The pre-tokens of ``text`` (the pieces that BPE merges never cross)."""
        return _pre_tokens(self._pat, check_str("text", text, who="pre_tokenize"))

    def _encode_piece(self, piece: bytes) -> tuple[int, ...]:
        ranks = self._ranks
        whole = ranks.get(piece)
        if whole is not None:
            return (whole,)
        n = len(piece)
        # Parts are identified by their start offset; nxt[s] is the start of the next part
        # (n for the last one) and prv[s] the start of the previous one.
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []
        for s in range(n - 1):
            r = ranks.get(piece[s:s + 2])
            if r is not None:
                heap.append((r, s, s + 1, s + 2))
        heapq.heapify(heap)
        while heap:
            r, s, m, e = heapq.heappop(heap)  # lowest rank, leftmost on a tie
            if not (alive[s] and alive[m] and nxt[s] == m and nxt[m] == e):
                continue  # stale: one of the two parts has changed since this entry was pushed
            alive[m] = False
            nxt[s] = e
            if e < n:
                prv[e] = s
            p = prv[s]
            if p >= 0:
                r2 = ranks.get(piece[p:e])
                if r2 is not None:
                    heapq.heappush(heap, (r2, p, s, e))
            if e < n:
                r2 = ranks.get(piece[s:nxt[e]])
                if r2 is not None:
                    heapq.heappush(heap, (r2, s, e, nxt[e]))
        out, s = [], 0
        while s < n:
            out.append(ranks[piece[s:nxt[s]]])
            s = nxt[s]
        return tuple(out)

    def encode_ordinary(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        out: list[int] = []
        cache = self._cache
        for piece in _pre_tokens(self._pat, text):
            b = piece.encode("utf-8")
            ids = cache.get(b)
            if ids is None:
                ids = self._encode_piece(b)
                if len(b) <= 64:
                    if len(cache) >= 200_000:
                        cache.clear()
                    cache[b] = ids
            out.extend(ids)
        return out

    def _decode_ordinary(self, ids: list[int]) -> bytes:
        vocab = self.vocab
        return b"".join(vocab[i] for i in ids)

    # -- training --------------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Sequence[str] = (ENDOFTEXT,), *,
              pattern: str = GPT2_PATTERN, min_frequency: int = 2, progress: bool = False) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        1. Cut ``text`` at the special tokens (they are never learned from), pre-tokenize it,
           and count each distinct pre-token once with its frequency ("word" -> count).
        2. Count every adjacent pair of ids over all words (weighted by frequency) and index
           which words contain each pair.
        3. Repeatedly take the most frequent pair, give it a new id, and rewrite only the words
           that contain it, adjusting the pair counts by what changed in those words. The most
           frequent pair comes from a heap of ``(-count, left_id, right_id)`` entries; an entry
           whose count is out of date is skipped when it reaches the top.

        Ties are broken deterministically: among pairs with the same count, the pair with the
        smaller ``(left_id, right_id)`` wins. A pair whose merged bytes are already a token
        (possible when the same bytes can be built in two ways) is skipped. Training stops
        early, with a smaller vocabulary, when no pair occurs ``min_frequency`` times.
        """
        check_str("text", text, who="train")
        special = _check_special_tokens(special_tokens)
        check_int("vocab_size", vocab_size, min=256 + len(special), who="train (256 bytes + special tokens)")
        check_int("min_frequency", min_frequency, min=1, who="train")
        check_bool("progress", progress, who="train")
        pat = _compile_pattern(pattern)
        n_merges = vocab_size - 256 - len(special)

        # 1. distinct pre-tokens and their frequencies
        chunks = [text]
        if special:
            names = sorted(special, key=lambda s: (-len(s), s))
            chunks = regex.split("|".join(regex.escape(s) for s in names), text)
        word_counts: Counter[str] = Counter()
        for chunk in chunks:
            word_counts.update(_pre_tokens(pat, chunk))
        words = [list(w.encode("utf-8")) for w in word_counts]
        freqs = list(word_counts.values())

        # 2. pair counts and pair -> words index
        pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for wi, (w, f) in enumerate(zip(words, freqs)):
            for pair in zip(w, w[1:]):
                pair_counts[pair] += f
                where[pair].add(wi)
        heap = [(-c, p) for p, c in pair_counts.items()]
        heapq.heapify(heap)

        vocab = [bytes([b]) for b in range(256)]
        known = set(vocab)
        merges: list[tuple[int, int]] = []
        bar = None
        if progress:
            from .progress import tqdm
            bar = tqdm(total=n_merges, desc="BPE merges")
        # 3. merge loop
        while len(merges) < n_merges and heap:
            neg, pair = heapq.heappop(heap)
            count = pair_counts.get(pair, 0)
            if count != -neg:
                continue  # stale entry
            if count < min_frequency:
                break
            a, b = pair
            new_bytes = vocab[a] + vocab[b]
            if new_bytes in known:
                del pair_counts[pair]  # never choose it; words keep the pair, harmlessly
                continue
            new = len(vocab)
            vocab.append(new_bytes)
            known.add(new_bytes)
            merges.append(pair)
            del pair_counts[pair]
            for wi in sorted(where.pop(pair)):
                w, f = words[wi], freqs[wi]
                nw = _merge_word(w, a, b, new)
                old_pairs = Counter(zip(w, w[1:]))
                new_pairs = Counter(zip(nw, nw[1:]))
                for q in old_pairs.keys() | new_pairs.keys():
                    if q == pair:
                        continue
                    d = new_pairs.get(q, 0) - old_pairs.get(q, 0)
                    if d == 0:
                        continue
                    if q in pair_counts or d > 0:
                        c = pair_counts[q] + d * f
                        pair_counts[q] = c
                        if c > 0:
                            heapq.heappush(heap, (-c, q))
                        else:
                            del pair_counts[q]
                    if q not in new_pairs:
                        where[q].discard(wi)
                    elif q not in old_pairs:
                        where[q].add(wi)
                words[wi] = nw
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return cls(merges, special, pattern)

    # -- files and other libraries -------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "merges": [list(m) for m in self.merges]}

    @classmethod
    def _from_state(cls, state: dict[str, Any], special: dict[str, int]) -> "BPETokenizer":
        merges, pattern = state["merges"], state["pattern"]
        if not isinstance(merges, list):
            raise ValueError("\"merges\" must be a list of [left_id, right_id] pairs")
        if not isinstance(pattern, str):
            raise ValueError("\"pattern\" must be a string")
        return cls([tuple(m) if isinstance(m, list) else m for m in merges], special, pattern)

    def to_tiktoken(self, name: str = "lmlib-bpe"):
        """The same tokenizer as a ``tiktoken.Encoding`` (built offline from our ranks)."""
        import tiktoken

        check_str("name", name, nonempty=True, who="to_tiktoken")
        return tiktoken.Encoding(name=name, pat_str=self.pattern, mergeable_ranks=self.mergeable_ranks,
                                 special_tokens=self.special_tokens)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load any tokenizer written by ``save`` (same as ``Tokenizer.load``)."""
    return Tokenizer.load(path)


def _compile_pattern(pattern: str) -> "regex.Pattern":
    """The compiled pre-tokenization pattern; capturing groups are refused (``findall`` would
    return the groups instead of the pre-tokens: use ``(?:...)``)."""
    check_str("pattern", pattern, nonempty=True)
    try:
        pat = regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"invalid pre-tokenization pattern {pattern!r}: {exc}") from None
    if pat.groups:
        raise ValueError(f"the pre-tokenization pattern {pattern!r} has capturing groups; "
                         "write them as (?:...) so that every match is a whole pre-token")
    return pat


def _pre_tokens(pat: "regex.Pattern", text: str) -> list[str]:
    """``pat.findall(text)``, checking that the pieces cover every character of ``text``: a
    pattern that skips characters would break ``decode(encode(s)) == s``."""
    pieces = pat.findall(text)
    if sum(map(len, pieces)) != len(text):
        covered, pos = "".join(pieces), 0
        while pos < len(covered) and covered[pos] == text[pos]:
            pos += 1
        raise ValueError(f"the pre-tokenization pattern {pat.pattern!r} skips the character {text[pos]!r} at "
                         f"position {pos} of the text, so decode(encode(text)) would lose it; use a pattern "
                         "that matches every character (e.g. end it with |\\s+|.)")
    return pieces


# ------------------------------------------------------------------------------------------------
# Hugging Face export
# ------------------------------------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, used by byte-level BPE vocabularies in the
    ``tokenizers`` library: printable Latin-1 bytes stand for themselves, the other 68 bytes
    (controls, space, ...) are shifted to the characters from U+0100 on (space -> 'Ġ')."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _hf_added_tokens(tok, special: dict[str, int]) -> None:
    from tokenizers import AddedToken

    for s in sorted(special, key=special.get):
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False)])


def to_hf(tokenizer: Tokenizer, path: str | os.PathLike | None = None):
    """A ``transformers.PreTrainedTokenizerFast`` that encodes and decodes like ``tokenizer``.

    * ``BPETokenizer``: a ``tokenizers`` byte-level BPE model with our vocabulary and merges
      (tokens spelled with :func:`bytes_to_unicode`), the same pre-tokenization regex, the
      byte-level decoder, and our special tokens as added tokens with the same ids.
    * ``CharTokenizer``: a word-level model over single characters (every character is
      split off by the pre-tokenizer) whose decoder joins tokens without spaces. An unknown
      character maps to ``unk_token`` when the tokenizer has one; otherwise the exported
      tokenizer raises (as ``CharTokenizer.encode`` does).
    * ``WordTokenizer``: a word-level model behind a whitespace split, whose decoder joins the
      tokens with single spaces; unknown words as for ``CharTokenizer``.
    * ``ByteTokenizer``: exported as a BPE with no merges.

    ``path``: when given, the tokenizer is written there with ``save_pretrained`` (a folder that
    ``AutoTokenizer.from_pretrained`` can read, alone or next to a model).
    """
    if not isinstance(tokenizer, (ByteTokenizer, BPETokenizer, CharTokenizer, WordTokenizer)):
        raise TypeError(f"to_hf: tokenizer must be an lmlib tokenizer, got {type(tokenizer).__name__}")
    if path is not None:
        check_path("path", path, who="to_hf")
    from . import progress  # noqa: F401  (imports tqdm quietly before transformers does)
    from tokenizers import Regex
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if isinstance(tokenizer, ByteTokenizer):
        tokenizer = BPETokenizer([], tokenizer.special_tokens, GPT2_PATTERN)
    if isinstance(tokenizer, BPETokenizer):
        b2u = bytes_to_unicode()
        spell = lambda bs: "".join(b2u[x] for x in bs)  # noqa: E731
        vocab = {spell(v): i for i, v in enumerate(tokenizer.vocab)}
        vocab.update(tokenizer.special_tokens)
        merges = [(spell(tokenizer.vocab[a]), spell(tokenizer.vocab[b])) for a, b in tokenizer.merges]
        # ignore_merges: a pre-token that is itself a token is not split (as tiktoken does).
        hf = HFTokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
        hf.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(tokenizer.pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        hf.decoder = decoders.ByteLevel()
    elif isinstance(tokenizer, CharTokenizer):
        vocab = {c: i for i, c in enumerate(tokenizer.chars)}
        vocab.update(tokenizer.special_tokens)
        unk = tokenizer.unk_token if tokenizer.unk_token is not None else "<unk>"
        hf = HFTokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        hf.decoder = decoders.Fuse()
    elif isinstance(tokenizer, WordTokenizer):
        vocab = {w: i for i, w in enumerate(tokenizer.words)}
        vocab.update(tokenizer.special_tokens)
        unk = tokenizer.unk_token if tokenizer.unk_token is not None else "<unk>"
        hf = HFTokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
        hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    else:
        raise TypeError(f"to_hf expects an lmlib tokenizer, got {type(tokenizer).__name__}")
    _hf_added_tokens(hf, tokenizer.special_tokens)
    kwargs: dict[str, Any] = {"clean_up_tokenization_spaces": False}
    if tokenizer.eot_id is not None:
        kwargs.update(eos_token=ENDOFTEXT, bos_token=ENDOFTEXT)
    if isinstance(tokenizer, (CharTokenizer, WordTokenizer)) and tokenizer.unk_token is not None:
        kwargs["unk_token"] = tokenizer.unk_token
    fast = PreTrainedTokenizerFast(tokenizer_object=hf, **kwargs)
    if path is not None:
        fast.save_pretrained(str(path))
    return fast
