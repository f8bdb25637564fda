"""Plotting helpers shared by every chapter: one function per kind of picture.

All functions return the matplotlib ``Figure`` (and draw nothing when no figure is wanted), so a
notebook can further style or save it. Inputs may be torch tensors or NumPy arrays.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["to_numpy", "heatmap", "heatmap_grid", "plot_curves"]


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, any dtype, with or without grad) or array-like as a NumPy array."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64 if x.is_floating_point() else x.dtype).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x)


def heatmap(
    matrix,
    *,
    xlabels: Sequence[str] | None = None,
    ylabels: Sequence[str] | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    cmap: str = "viridis",
    ax=None,
    colorbar: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    figsize: tuple[float, float] = (5, 4),
):
    """Draw one 2-D matrix of shape ``(rows, cols)`` as a heatmap; returns the figure."""
    m = to_numpy(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap expects a 2-D matrix, got shape {m.shape}")
    if xlabels is not None and len(xlabels) != m.shape[1]:
        raise ValueError(f"{len(xlabels)} x labels for {m.shape[1]} columns")
    if ylabels is not None and len(ylabels) != m.shape[0]:
        raise ValueError(f"{len(ylabels)} y labels for {m.shape[0]} rows")
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    im = ax.imshow(m, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax, interpolation="nearest")
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), labels=list(xlabels), rotation=90, fontsize=8)
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), labels=list(ylabels), fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig


def heatmap_grid(
    matrices,
    *,
    xlabels: Sequence[str] | None = None,
    ylabels: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    xlabel: str = "key",
    ylabel: str = "query",
    cmap: str = "viridis",
    vmin: float | None = 0.0,
    vmax: float | None = None,
    cell_size: float = 2.4,
    suptitle: str | None = None,
):
    """A grid of heatmaps sharing one colour scale, e.g. attention weights of layers x heads.

    ``matrices`` has shape ``(rows, cols, n_query, n_key)`` (a 4-D tensor or array, or nested
    lists of 2-D matrices). ``xlabels``/``ylabels`` are the token labels of keys and queries.
    """
    m = to_numpy(matrices)
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        m = m[None]
    if m.ndim != 4:
        raise ValueError(f"heatmap_grid expects (rows, cols, n_query, n_key), got shape {m.shape}")
    rows, cols = m.shape[:2]
    if row_titles is not None and len(row_titles) != rows:
        raise ValueError(f"{len(row_titles)} row titles for {rows} rows")
    if col_titles is not None and len(col_titles) != cols:
        raise ValueError(f"{len(col_titles)} column titles for {cols} columns")
    vmax = float(m.max()) if vmax is None else vmax
    fig, axes = plt.subplots(rows, cols, figsize=(cell_size * cols + 1, cell_size * rows + 0.5),
                             squeeze=False, sharex=True, sharey=True)
    im = None
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            im = ax.imshow(m[r, c], cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
            if col_titles is not None and r == 0:
                ax.set_title(col_titles[c], fontsize=9)
            if row_titles is not None and c == 0:
                ax.set_ylabel(row_titles[r] if ylabels is None else f"{row_titles[r]}\n{ylabel}", fontsize=9)
            elif c == 0:
                ax.set_ylabel(ylabel, fontsize=8)
            if r == rows - 1:
                ax.set_xlabel(xlabel, fontsize=8)
            if xlabels is not None:
                ax.set_xticks(range(len(xlabels)), labels=list(xlabels), rotation=90, fontsize=7)
            if ylabels is not None:
                ax.set_yticks(range(len(ylabels)), labels=list(ylabels), fontsize=7)
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, pad=0.02)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_curves(
    curves: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    hlines: dict[str, float] | None = None,
    xlabel: str = "step",
    ylabel: str = "loss",
    title: str | None = None,
    logy: bool = False,
    ax=None,
    figsize: tuple[float, float] = (6, 4),
):
    """Plot named ``(x, y)`` curves, plus labelled horizontal reference lines; returns the figure."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    for name, (xs, ys) in curves.items():
        xs, ys = to_numpy(xs), to_numpy(ys)
        if xs.shape != ys.shape:
            raise ValueError(f"curve {name!r}: {xs.shape[0]} x values but {ys.shape[0]} y values")
        ax.plot(xs, ys, label=name, marker="o" if len(xs) < 30 else None, ms=3)
    for i, (name, y) in enumerate((hlines or {}).items()):
        ax.axhline(y, ls="--", color=f"C{len(curves) + i}", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
