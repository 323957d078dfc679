"""Plots. The only facenb module that imports matplotlib or plotly (both imported lazily, inside functions).

Each benchmark adds its own section of functions below; functions take plain data (arrays, mappings,
DataFrames) and return a figure (``plotly.graph_objects.Figure`` or ``matplotlib.figure.Figure``), never show it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

# =============================================================================================================
# Cross-method comparisons (used by the FaceScape benchmark; generic): per-bin curves and cumulative error curves,
# with some methods (e.g. the seed papers' PRNet and MGCNet) highlighted.
# =============================================================================================================

#: Colours of highlighted methods (in order); other methods are drawn thin and translucent.
HIGHLIGHT_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
_BACKGROUND_COLOURS = ("#7f7f7f", "#bcbd22", "#17becf", "#e377c2", "#8c564b", "#9467bd", "#aec7e8", "#98df8a",
                       "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")


def _styles(methods: Sequence[str], highlight: Sequence[str]) -> dict[str, dict]:
    """Per-method style: highlighted -> strong colour, thick, on top; others -> thin, translucent."""
    styles = {}
    hi = [m for m in highlight if m in methods]
    k = 0
    for m in methods:
        if m in hi:
            styles[m] = {"colour": HIGHLIGHT_COLOURS[hi.index(m) % len(HIGHLIGHT_COLOURS)], "width": 3.5,
                         "alpha": 1.0, "highlight": True, "z": 3}
        else:
            styles[m] = {"colour": _BACKGROUND_COLOURS[k % len(_BACKGROUND_COLOURS)], "width": 1.2,
                         "alpha": 0.45, "highlight": False, "z": 1}
            k += 1
    return styles


def _ordered(methods: Sequence[str], highlight: Sequence[str]) -> list[str]:
    """Background methods first, highlighted last (drawn on top)."""
    return [m for m in methods if m not in highlight] + [m for m in methods if m in highlight]


def _bin_series(frame, method_col: str, bin_col: str, value_col: str):
    bins = list(dict.fromkeys(frame[bin_col].tolist()))
    methods = list(dict.fromkeys(frame[method_col].tolist()))
    series = {}
    for m in methods:
        sub = frame[frame[method_col] == m]
        lookup = dict(zip(sub[bin_col].tolist(), sub[value_col].astype(float).tolist()))
        series[m] = np.array([lookup.get(b, np.nan) for b in bins], dtype=np.float64)
    return bins, methods, series


def bin_curves_plotly(frame, *, highlight: Sequence[str] = ("PRNet", "MGCNet"), title: str = "",
                      y_label: str = "", x_label: str = "bin", method_col: str = "method", bin_col: str = "bin",
                      value_col: str = "value"):
    """Interactive per-bin curves, one line per method (plotly).

    Parameters
    ----------
    frame : pandas.DataFrame
        Long table with one row per (method, bin): columns ``method_col``, ``bin_col``, ``value_col``. Bins are
        plotted in order of first appearance; NaN values leave gaps.
    highlight : sequence of str
        Methods drawn thick, in strong colours, with markers, on top and marked ``*`` in the legend.
    title, y_label, x_label : str

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    bins, methods, series = _bin_series(frame, method_col, bin_col, value_col)
    st = _styles(methods, highlight)
    fig = go.Figure()
    for m in _ordered(methods, highlight):
        s = st[m]
        fig.add_trace(go.Scatter(
            x=bins, y=series[m], mode="lines+markers", name=(f"* {m}" if s["highlight"] else m),
            line={"color": s["colour"], "width": s["width"]}, opacity=s["alpha"],
            marker={"size": 9 if s["highlight"] else 4}, connectgaps=False,
            hovertemplate=f"{m}<br>%{{x}}: %{{y:.6f}}<extra></extra>",
        ))
    fig.update_layout(title=title, xaxis_title=x_label, yaxis_title=y_label, template="plotly_white",
                      legend={"title": "method (* highlighted)"}, xaxis={"type": "category"})
    return fig


def bin_curves_matplotlib(frame, *, highlight: Sequence[str] = ("PRNet", "MGCNet"), title: str = "",
                          y_label: str = "", x_label: str = "bin", method_col: str = "method", bin_col: str = "bin",
                          value_col: str = "value", ax=None):
    """Static per-bin curves, one line per method (matplotlib); same input and styling as :func:`bin_curves_plotly`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    bins, methods, series = _bin_series(frame, method_col, bin_col, value_col)
    st = _styles(methods, highlight)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    else:
        fig = ax.figure
    x = np.arange(len(bins))
    for m in _ordered(methods, highlight):
        s = st[m]
        ax.plot(x, series[m], color=s["colour"], lw=s["width"], alpha=s["alpha"], zorder=s["z"],
                marker="o" if s["highlight"] else ".", ms=7 if s["highlight"] else 3,
                label=(f"* {m}" if s["highlight"] else m))
    ax.set_xticks(x, bins)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _bold_highlighted_legend(ax)
    return fig


def _bold_highlighted_legend(ax) -> None:
    leg = ax.legend(fontsize=7, ncol=2, frameon=False, loc="best")
    for text in leg.get_texts():
        if text.get_text().startswith("* "):
            text.set_fontweight("bold")


def cumulative_curve(values: np.ndarray, higher_is_better: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error curve of per-item errors; failed items (NaN) count in the denominator.

    Parameters
    ----------
    values : (n,) float
        Per-item errors; NaN = failed.
    higher_is_better : bool
        If True (e.g. a completeness rate) the curve is the share of items with value >= x.

    Returns
    -------
    x : (k,) float64
        Sorted finite values.
    y : (k,) float64
        ``y[j] = #{i : v_i <= x[j]} / n`` (or ``>=`` for ``higher_is_better``); it ends at the done rate,
        not at 1, when items failed.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.size
    ok = np.sort(v[~np.isnan(v)])
    if n == 0:
        return ok, ok
    if higher_is_better:
        ok = ok[::-1]
    y = np.arange(1, ok.size + 1, dtype=np.float64) / n
    return ok, y


def cumulative_error_curves_plotly(errors: Mapping[str, np.ndarray], *, highlight: Sequence[str] = ("PRNet", "MGCNet"),
                                   title: str = "", x_label: str = "error", higher_is_better: bool = False,
                                   x_range: tuple[float, float] | None = None):
    """Interactive cumulative error curves, one per method (plotly).

    Parameters
    ----------
    errors : mapping str -> (n,) float
        Method -> per-image errors (NaN = failed; failures keep the curve below 1).
    highlight : sequence of str
        Methods drawn thick, in strong colours, on top and marked ``*`` in the legend.
    title, x_label : str
    higher_is_better : bool
        See :func:`cumulative_curve`.
    x_range : (float, float), optional

    Returns
    -------
    plotly.graph_objects.Figure
        y = share of all images (failed included) whose error is <= x.
    """
    import plotly.graph_objects as go

    methods = list(errors)
    st = _styles(methods, highlight)
    fig = go.Figure()
    for m in _ordered(methods, highlight):
        x, y = cumulative_curve(errors[m], higher_is_better)
        s = st[m]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=(f"* {m}" if s["highlight"] else m),
                                 line={"color": s["colour"], "width": s["width"], "shape": "hv"}, opacity=s["alpha"],
                                 hovertemplate=f"{m}<br>x=%{{x:.4f}}<br>share=%{{y:.3f}}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=x_label,
                      yaxis_title="share of images with value " + ("\u2265 x" if higher_is_better else "\u2264 x"),
                      template="plotly_white", legend={"title": "method (* highlighted)"}, yaxis={"range": [0, 1.02]})
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig


def cumulative_error_curves_matplotlib(errors: Mapping[str, np.ndarray], *,
                                       highlight: Sequence[str] = ("PRNet", "MGCNet"), title: str = "",
                                       x_label: str = "error", higher_is_better: bool = False,
                                       x_range: tuple[float, float] | None = None, ax=None):
    """Static cumulative error curves (matplotlib); same input and styling as :func:`cumulative_error_curves_plotly`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    methods = list(errors)
    st = _styles(methods, highlight)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    else:
        fig = ax.figure
    for m in _ordered(methods, highlight):
        x, y = cumulative_curve(errors[m], higher_is_better)
        s = st[m]
        ax.step(x, y, where="post", color=s["colour"], lw=s["width"], alpha=s["alpha"], zorder=s["z"],
                label=(f"* {m}" if s["highlight"] else m))
    ax.set_xlabel(x_label)
    ax.set_ylabel("share of images with value " + ("\u2265 x" if higher_is_better else "\u2264 x"))
    ax.set_ylim(0, 1.02)
    if x_range is not None:
        ax.set_xlim(*x_range)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _bold_highlighted_legend(ax)
    return fig
