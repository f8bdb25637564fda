"""Showing ``lmlib`` code and tokenized text inside the notebooks.

A chapter derives an idea step by step and then shows the finished version that lives in
``lmlib`` with :func:`show_source`, so the reader sees exactly the code that later chapters import.
:func:`show_tokens` draws the tokens of a text as coloured spans, so the token boundaries of
different tokenizers can be compared at a glance.
"""

from __future__ import annotations

import html
import inspect
import textwrap
from typing import Any

from lmlib.validation import check_int, check_str

__all__ = ["show_source", "source", "token_spans_html", "show_tokens"]

#: Background colours of successive tokens (pale, so that the text stays readable).
TOKEN_COLOURS = ("#fde2a7", "#b9e4c9", "#c6d8f7", "#f7c6d9", "#e0d3f5", "#d4ece8")


def source(obj: Any) -> str:
    """The source code of a function, class, method or module, dedented."""
    if isinstance(obj, property):
        obj = obj.fget
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (TypeError, OSError) as exc:
        raise TypeError(f"cannot show the source of {obj!r}: {exc}") from None


def show_source(*objs: Any):
    """Display the source of one or more objects as a highlighted Python block.

    In a notebook this renders as Markdown (and in the book as a code block); outside IPython it
    returns the plain source text.
    """
    if not objs:
        raise TypeError("show_source needs at least one object")
    text = "\n\n".join(source(o) for o in objs)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - IPython comes with the notebook tools
        return text
    return Markdown(f"```python\n{text}```")


def _token_label(piece: bytes) -> tuple[str, bool]:
    """The text of one token for display, and whether it is a whole UTF-8 string."""
    try:
        return piece.decode("utf-8"), True
    except UnicodeDecodeError:  # a fragment of a multi-byte character: show its bytes
        return "".join(f"\\x{b:02x}" for b in piece), False


def token_spans_html(tokenizer: Any, text: str, *, title: str | None = None) -> str:
    """HTML showing how ``tokenizer`` cuts ``text``: one coloured span per token.

    Neighbouring tokens get different background colours; hovering over a token shows its id.
    A newline inside a token is drawn as ``↵`` (and still breaks the line), and a token that is
    only part of a character's UTF-8 bytes is drawn as its bytes (``\\xe2``), in italics. The
    header gives the number of tokens and characters.
    """
    from lmlib.tokenizers import Tokenizer

    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"token_spans_html: tokenizer must be an lmlib Tokenizer, got {type(tokenizer).__name__}")
    check_str("text", text, who="token_spans_html")
    if title is not None:
        check_str("title", title, who="token_spans_html")
    ids = tokenizer.encode(text)
    spans = []
    for k, i in enumerate(ids):
        label, whole = _token_label(tokenizer.decode_bytes([i]))
        shown = html.escape(label).replace("\n", "↵\n")
        style = f"background:{TOKEN_COLOURS[k % len(TOKEN_COLOURS)]};border-radius:3px;padding:1px 0"
        if not whole:
            style += ";font-style:italic"
        spans.append(f'<span title="id {i}" style="{style}">{shown}</span>')
    head = html.escape(title if title is not None else type(tokenizer).__name__)
    return (f'<div style="margin:0.4em 0"><b>{head}</b>: {len(ids)} tokens for {len(text)} characters'
            f'<div style="font-family:monospace;white-space:pre-wrap;line-height:1.8">{"".join(spans)}</div></div>')


def show_tokens(tokenizer: Any, text: str, *, title: str | None = None):
    """Display :func:`token_spans_html` in a notebook (returns the HTML string outside IPython)."""
    out = token_spans_html(tokenizer, text, title=title)
    try:
        from IPython.display import HTML
    except ImportError:  # pragma: no cover - IPython comes with the notebook tools
        return out
    return HTML(out)
