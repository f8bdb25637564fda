"""Plotting helpers shared by every chapter: one function per kind of picture.

All functions return the matplotlib ``Figure`` (and draw nothing when no figure is wanted), so a
notebook can further style or save it. Inputs may be torch tensors or NumPy arrays.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from lmlib.validation import check_float, check_sequence

__all__ = ["to_numpy", "heatmap", "heatmap_grid", "plot_curves", "plot_attention", "confusion_matrix_plot"]


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, any dtype, with or without grad) or array-like as a NumPy array."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64 if x.is_floating_point() else x.dtype).numpy()
    except ImportError:  # pragma: no cover
        pass
    return _numeric("x", x, "to_numpy")


def _numeric(name: str, x, who: str) -> np.ndarray:
    """``x`` as a numeric NumPy array; ``TypeError`` naming ``name`` for None, text, ragged lists."""
    if isinstance(x, (str, bytes, dict)) or x is None:
        raise TypeError(f"{who}: {name} must be a tensor or array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise TypeError(f"{who}: {name} must be a tensor or array of numbers ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{who}: {name} must hold numbers, got an array of dtype {arr.dtype}")
    return arr


def _array(name: str, x, who: str) -> np.ndarray:
    return to_numpy(x) if hasattr(x, "detach") else _numeric(name, x, who)


def _labels(name: str, labels, who: str) -> list | None:
    return None if labels is None else check_sequence(name, labels, who=who)


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
    m = _array("matrix", matrix, "heatmap")
    xlabels, ylabels = _labels("xlabels", xlabels, "heatmap"), _labels("ylabels", ylabels, "heatmap")
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
    m = _array("matrices", matrices, "heatmap_grid")
    row_titles = _labels("row_titles", row_titles, "heatmap_grid")
    col_titles = _labels("col_titles", col_titles, "heatmap_grid")
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        m = m[None]
    if m.ndim != 4:
        raise ValueError(f"heatmap_grid expects matrices of shape (rows, cols, n_query, n_key), got shape {m.shape}")
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


def plot_attention(
    weights,
    tokens: Sequence[str] | None = None,
    *,
    key_tokens: Sequence[str] | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    head_titles: Sequence[str] | None = None,
    cell_size: float = 2.4,
    suptitle: str | None = None,
    vmax: float | None = 1.0,
):
    """Attention weights as a grid of heatmaps: one row per layer, one column per head.

    ``weights``: ``(layers, heads, T_q, T_k)``, ``(heads, T_q, T_k)`` or ``(T_q, T_k)`` (a batch
    dimension must be indexed away first). ``tokens`` label the queries (and the keys, unless
    ``key_tokens`` is given, as for cross-attention). ``layers``/``heads`` select which to draw;
    ``head_titles`` replaces the column titles "head 0", "head 1", ...
    Rows of weights sum to 1, so the colour scale is fixed to ``[0, vmax]`` by default.
    """
    w = _array("weights", weights, "plot_attention")
    tokens = _labels("tokens", tokens, "plot_attention")
    key_tokens = _labels("key_tokens", key_tokens, "plot_attention")
    while w.ndim < 4:
        w = w[None]
    if w.ndim != 4:
        raise ValueError(f"plot_attention expects weights of shape (layers, heads, T_q, T_k), got shape {w.shape}")
    layer_ids = list(range(w.shape[0])) if layers is None else list(layers)
    head_ids = list(range(w.shape[1])) if heads is None else list(heads)
    w = w[layer_ids][:, head_ids]
    key_tokens = tokens if key_tokens is None else key_tokens
    if tokens is not None and len(tokens) != w.shape[2]:
        raise ValueError(f"{len(tokens)} query tokens for {w.shape[2]} query positions")
    if key_tokens is not None and len(key_tokens) != w.shape[3]:
        raise ValueError(f"{len(key_tokens)} key tokens for {w.shape[3]} key positions")
    if head_titles is not None and len(head_titles) != w.shape[1]:
        raise ValueError(f"{len(head_titles)} head titles for {w.shape[1]} heads")
    if head_titles is None and w.shape[:2] != (1, 1):
        head_titles = [f"head {i}" for i in head_ids]
    fig = heatmap_grid(
        w,
        xlabels=None if key_tokens is None else [repr(t)[1:-1] for t in key_tokens],
        ylabels=None if tokens is None else [repr(t)[1:-1] for t in tokens],
        row_titles=[f"layer {i}" for i in layer_ids] if w.shape[0] > 1 else None,
        col_titles=head_titles,
        vmin=0.0,
        vmax=vmax,
        cell_size=cell_size,
    )
    if suptitle:
        fig.suptitle(suptitle, y=1.02)
    return fig


def _check_curves(curves, hlines) -> None:
    if not isinstance(curves, dict):
        raise TypeError(f"plot_curves: curves must be a dict {{name: (xs, ys)}}, got {type(curves).__name__}")
    for name, pair in curves.items():
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"plot_curves: curves[{name!r}] must be an (xs, ys) pair")
    if hlines is not None and not isinstance(hlines, dict):
        raise TypeError(f"plot_curves: hlines must be a dict {{name: y}}, got {type(hlines).__name__}")
    for name, y in (hlines or {}).items():
        check_float(f"hlines[{name!r}]", y, who="plot_curves")


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
    _check_curves(curves, hlines)
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


def confusion_matrix_plot(cm, class_names: Sequence[str], *, normalize: bool = True, title: str | None = None,
                          ax=None, figsize: tuple[float, float] = (4.5, 4)):
    """A confusion matrix ``(K, K)`` (rows = true class, columns = predicted) as an annotated
    heatmap; with ``normalize`` the colours show each row's fractions (recall on the diagonal)
    and every cell is labelled with its count and fraction. Returns the figure."""
    m = _array("cm", cm, "confusion_matrix_plot").astype(float)
    class_names = check_sequence("class_names", class_names, who="confusion_matrix_plot")
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix must be square (K, K), got shape {m.shape}")
    if len(class_names) != m.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {m.shape[0]}-class matrix")
    rows = m.sum(1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    shown = frac if normalize else m
    fig = heatmap(shown, xlabels=list(class_names), ylabels=list(class_names), xlabel="predicted", ylabel="true",
                  title=title, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None, ax=ax, figsize=figsize)
    axis = fig.axes[0] if ax is None else ax
    axis.tick_params(axis="x", labelrotation=0)
    top = shown.max() if shown.size else 1.0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            axis.text(j, i, f"{int(m[i, j])}\n{frac[i, j]:.0%}", ha="center", va="center", fontsize=8,
                      color="white" if shown[i, j] > 0.6 * top else "black")
    return fig

