"""Showing ``lmlib`` code inside the notebooks.

A chapter derives an idea step by step and then shows the finished version that lives in
``lmlib`` with :func:`show_source`, so the reader sees exactly the code that later chapters import.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

__all__ = ["show_source", "source"]


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
