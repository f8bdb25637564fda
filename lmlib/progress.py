"""Progress bars for long loops, in notebooks and in the terminal.

``tqdm.auto`` picks a widget bar inside Jupyter when ``ipywidgets`` is installed and a text bar
otherwise. The course does not need widgets, so the warning tqdm prints when they are missing is
silenced here once; everything in ``lmlib`` imports ``tqdm`` from this module.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*IProgress not found.*")
    from tqdm.auto import tqdm, trange  # noqa: F401

__all__ = ["tqdm", "trange"]
