"""Plots. The only facenb module that imports matplotlib or plotly (both imported lazily, inside functions).

Each benchmark adds its own section of functions below; functions take plain data (arrays, mappings,
DataFrames) and return a figure (``plotly.graph_objects.Figure`` or ``matplotlib.figure.Figure``), never show it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from facenb.errors import InputError
from facenb.vocabulary import AFLW_YAW_BINS

# =============================================================================================================
# Cross-method comparisons (used by the FaceScape benchmark; generic): per-bin curves and cumulative error curves,
# with the methods the caller names (e.g. the seed papers' PRNet and MGCNet) highlighted; by default none.
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


def _figure_axes(ax, figsize: tuple[float, float], constrained: bool = True):
    """``(figure, axes)``: the given axes and its figure, or a new matplotlib Figure (not registered with pyplot,
    so a notebook shows it once) with one axes of ``figsize``."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained" if constrained else None)
    return fig, fig.subplots()


def _bin_series(frame, method_col: str, bin_col: str, value_col: str):
    bins = list(dict.fromkeys(frame[bin_col].tolist()))
    methods = list(dict.fromkeys(frame[method_col].tolist()))
    series = {}
    for m in methods:
        sub = frame[frame[method_col] == m]
        lookup = dict(zip(sub[bin_col].tolist(), sub[value_col].astype(float).tolist()))
        series[m] = np.array([lookup.get(b, np.nan) for b in bins], dtype=np.float64)
    return bins, methods, series


def bin_curves_plotly(frame, *, highlight: Sequence[str] = (), title: str = "",
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


def bin_curves_matplotlib(frame, *, highlight: Sequence[str] = (), title: str = "",
                          y_label: str = "", x_label: str = "bin", method_col: str = "method", bin_col: str = "bin",
                          value_col: str = "value", ax=None):
    """Static per-bin curves, one line per method (matplotlib); same input and styling as :func:`bin_curves_plotly`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    bins, methods, series = _bin_series(frame, method_col, bin_col, value_col)
    st = _styles(methods, highlight)
    fig, ax = _figure_axes(ax, (7.5, 4.5))
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


def cumulative_error_curves_plotly(errors: Mapping[str, np.ndarray], *, highlight: Sequence[str] = (),
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
                                       highlight: Sequence[str] = (), title: str = "",
                                       x_label: str = "error", higher_is_better: bool = False,
                                       x_range: tuple[float, float] | None = None, ax=None):
    """Static cumulative error curves (matplotlib); same input and styling as :func:`cumulative_error_curves_plotly`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    methods = list(errors)
    st = _styles(methods, highlight)
    fig, ax = _figure_axes(ax, (7.5, 4.5))
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


# =============================================================================================================
# Leaderboards of published results (facenb.results; notebooks/00_leaderboards.ipynb): NoW bars, REALY
# region-by-method heatmap and ranked 'all' chart, AFLW2000-3D NME by yaw bin. Highlighted methods (default: the
# five seed papers) carry a star in their label, a strong colour and a dark outline in every chart.
# =============================================================================================================

SEED_MARK = "\u2605 "  #: prefix of a highlighted method's label


def _mark(method: str, highlight: Sequence[str]) -> str:
    return f"{SEED_MARK}{method}" if method in highlight else method


def now_bars(table, *, highlight: Sequence[str] = (),
             statistics: Sequence[str] = ("median", "mean", "std"), sort_by: str = "median",
             title: str = "NoW test (non-metric): scan-to-mesh error per method", recomputed=None):
    """Grouped bars of NoW median / mean / std per method (plotly).

    Parameters
    ----------
    table : DataFrame
        ``method x statistic`` values in mm (e.g. ``facenb.results.wide(picked, columns="statistic")``).
    highlight : sequence of str
        Methods to mark (star in the label, dark outline, full opacity); others are drawn lighter.
    statistics : sequence of str
        Columns to draw, one bar group each.
    sort_by : str
        Column ordering the methods (ascending: best first); methods without it go last.
    recomputed : DataFrame, optional
        ``method x statistic`` values recomputed by facenb (tier R, e.g. a campaign's rows): drawn as diamond
        markers with a black outline over the quoted bars of the same method (a new column for a method without
        quoted numbers), the quoted bars then named "<statistic>, quoted". Default None: the quoted bars only.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    t = table.sort_values(sort_by, na_position="last") if sort_by in table.columns else table
    methods = list(t.index)
    labels = [_mark(m, highlight) for m in methods]
    colours = {"median": "#1f77b4", "mean": "#ff7f0e", "std": "#7f7f7f"}
    fig = go.Figure()
    for stat in statistics:
        if stat not in t.columns or (recomputed is not None and t.empty):
            continue
        vals = t[stat].to_numpy(dtype=float)
        hi = [m in highlight for m in methods]
        fig.add_bar(
            x=labels, y=vals, name=stat if recomputed is None else f"{stat}, quoted",
            marker_color=colours.get(stat, None),
            marker_line_color=["black" if h else "rgba(0,0,0,0)" for h in hi],
            marker_line_width=[2.5 if h else 0 for h in hi],
            marker_opacity=[1.0 if h else 0.55 for h in hi],
            text=[("" if np.isnan(v) else f"{v:.2f}") for v in vals], textposition="outside",
            hovertemplate="%{x}<br>" + stat + " %{y:.3f} mm<extra></extra>",
            **({} if recomputed is None else {"offsetgroup": stat}),
        )
    if recomputed is not None:
        _recomputed_markers(fig, recomputed, [s for s in statistics if s in recomputed.columns], highlight,
                            colours, "mm")
        fig.update_layout(scattermode="group")
    fig.update_layout(barmode="group", title=title, yaxis_title="error (mm)", xaxis_title="method "
                      f"({SEED_MARK.strip()} = highlighted)", legend_title="statistic", template="plotly_white")
    return fig


RECOMPUTED_SYMBOL = "diamond"  #: marker of numbers recomputed by facenb (tier R) beside quoted ones


def _recomputed_markers(fig, recomputed, columns, highlight, colours, unit, horizontal=False, labels=None):
    """Diamond markers (black outline) of tier-R values, one trace per column, named "<column>: recomputed (R)"."""
    methods = list(recomputed.index)
    for col in columns:
        vals = recomputed[col].to_numpy(dtype=float)
        lab = labels or [_mark(m, highlight) for m in methods]
        xy = dict(x=vals, y=lab) if horizontal else dict(x=lab, y=vals)
        fig.add_scatter(
            **xy, mode="markers+text" if horizontal else "markers", name=f"{col}: recomputed (R)",
            offsetgroup=None if horizontal else col,
            text=[f"{v:.3f} (R)" if "(recomputed, R)" in lb else "" for v, lb in zip(vals, lab)] if horizontal else None,
            textposition="middle right",
            marker=dict(symbol=RECOMPUTED_SYMBOL, size=14, color=colours.get(col, "#d62728"),
                        line=dict(color="black", width=2)),
            hovertemplate=("%{y}" if horizontal else "%{x}") + f"<br>{col} "
            + ("%{x:.3f}" if horizontal else "%{y:.3f}") + f" {unit}, recomputed by facenb (tier R)<extra></extra>")


def realy_heatmap(table, *, highlight: Sequence[str] = (),
                  title: str = "REALY: mean error per region (mm)", colorscale: str = "Viridis", recomputed=None):
    """Region-by-method heatmap of REALY errors (plotly), methods sorted by their ``all`` column if present.

    Parameters
    ----------
    table : DataFrame
        ``method x region`` values in mm (columns e.g. ``nose, mouth, forehead, cheek, all``).
    highlight : sequence of str
        Methods to mark: star in the row label and a black frame around the row.
    recomputed : DataFrame, optional
        ``method x region`` values recomputed by facenb (tier R): rows of their own labelled
        "<method> (recomputed, R)", sorted among the quoted ones, each cell marked with a diamond. Default None.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import pandas as pd
    import plotly.graph_objects as go

    if recomputed is not None:
        rc = recomputed.reindex(columns=table.columns).astype(float)
        rc.index = [f"{m} (recomputed, R)" for m in rc.index]
        table = pd.concat([table.astype(float), rc])
    t = table.sort_values("all", na_position="last") if "all" in table.columns else table
    methods = list(t.index)
    z = t.to_numpy(dtype=float)
    labels = [_mark(m, highlight) for m in methods]
    text = [["" if np.isnan(v) else ("\u25c6 " if m.endswith(" (recomputed, R)") else "") + f"{v:.3f}" for v in row]
            for m, row in zip(methods, z)]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(t.columns), y=labels, text=text, texttemplate="%{text}", colorscale=colorscale,
        colorbar_title="mm", hovertemplate="%{y}<br>%{x}: %{z:.3f} mm<extra></extra>"))
    for i, m in enumerate(methods):
        if m in highlight:
            fig.add_shape(type="rect", xref="x domain", yref="y", x0=0, x1=1, y0=i - 0.5, y1=i + 0.5,
                          line=dict(color="black", width=3))
    if recomputed is not None:
        title = f"{title} (\u25c6 = recomputed by facenb, tier R)"
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, xaxis_title="region", yaxis_title=f"method ({SEED_MARK.strip()} = highlighted)",
                      height=max(400, 24 * len(methods) + 150), template="plotly_white")
    return fig


def ranked_bars(values, *, highlight: Sequence[str] = (),
                title: str = "REALY 'all' (mean of the four region means), ranked", unit: str = "mm",
                flagged: Sequence[str] = (), recomputed=None):
    """Horizontal bars of one number per method, ranked best (lowest) first (plotly).

    Parameters
    ----------
    values : Series or mapping
        method -> value.
    highlight : sequence of str
        Methods drawn in red with a star and a dark outline; others grey.
    flagged : sequence of str
        Methods whose number a consistency check flags: their label gets a trailing "(!)".
    recomputed : Series or mapping, optional
        method -> value recomputed by facenb (tier R): a diamond marker (black outline) on the method's row, or on
        a row of its own labelled "<method> (recomputed, R)" ranked among the quoted ones when the method has no
        quoted number. Default None: the quoted bars only.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import pandas as pd
    import plotly.graph_objects as go

    s = pd.Series(values, dtype=float).dropna().sort_values()
    r = None if recomputed is None else pd.Series(recomputed, dtype=float).dropna()
    if r is not None:  # methods only recomputed get a row (no bar) at their rank
        extra = {f"{m} (recomputed, R)": v for m, v in r.items() if m not in s.index}
        s = s.reindex(pd.concat([s, pd.Series(extra, dtype=float)]).sort_values().index)
    methods = list(s.index)
    labels = [f"{i + 1}. {_mark(m, highlight)}{' (!)' if m in flagged else ''}" for i, m in enumerate(methods)]
    hi = [m in highlight for m in methods]
    fig = go.Figure(go.Bar(
        x=s.to_numpy(), y=labels, orientation="h",
        marker_color=["#d62728" if h else "#9e9e9e" for h in hi],
        marker_line_color=["black" if h else "rgba(0,0,0,0)" for h in hi], marker_line_width=[2 if h else 0 for h in hi],
        text=["" if np.isnan(v) else f"{v:.3f}" + (f" (recomputed: {r[m]:.3f})" if r is not None and m in r.index else "")
              for m, v in zip(methods, s.to_numpy())], textposition="outside",
        hovertemplate="%{y}: %{x:.3f} " + unit + "<extra></extra>",
        **({} if r is None else {"name": "quoted", "showlegend": True})))
    if r is not None:
        row = {m: labels[i] for i, m in enumerate(methods)}
        keys = [m if m in row else f"{m} (recomputed, R)" for m in r.index]
        _recomputed_markers(fig, pd.DataFrame({"value": r.to_numpy()}, index=keys), ["value"], highlight,
                            {"value": "rgba(255,255,255,0)"}, unit, horizontal=True, labels=[row[k] for k in keys])
        fig.data[-1].name = "recomputed (R)"
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, xaxis_title=unit, template="plotly_white",
                      height=max(350, 22 * len(methods) + 150))
    return fig


def aflw_pose_bins(table, *, highlight: Sequence[str] = (),
                   bins: Sequence[str] = (*AFLW_YAW_BINS, "balanced"),
                   title: str = "AFLW2000-3D: 68-point 2D NME by yaw bin (original annotation)"):
    """AFLW2000-3D NME per yaw bin, one line per method (plotly).

    Parameters
    ----------
    table : DataFrame
        ``method x bin`` NME values in percent.
    highlight : sequence of str
        Methods drawn thick, coloured, with a star in the legend; others thin and translucent.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    cols = [b for b in bins if b in table.columns]
    t = table[cols]
    methods = list(t.index)
    styles = _styles(methods, list(highlight))
    fig = go.Figure()
    for m in _ordered(methods, list(highlight)):
        st = styles[m]
        fig.add_scatter(
            x=cols, y=t.loc[m].to_numpy(dtype=float), mode="lines+markers", name=_mark(m, highlight),
            line=dict(color=st["colour"], width=st["width"]), opacity=st["alpha"],
            marker=dict(size=10 if st["highlight"] else 6, symbol="star" if st["highlight"] else "circle"),
            hovertemplate=_mark(m, highlight) + "<br>%{x}: %{y:.3f} %<extra></extra>")
    fig.update_layout(title=title, xaxis_title="yaw bin (degrees); balanced = mean of the three bins",
                      yaxis_title="NME (%)", template="plotly_white", legend_title="method")
    return fig


def use_notebook_renderer(connected: bool = False) -> str:
    """Make ``fig.show()`` in a notebook emit both the plotly mimetype (JupyterLab) and self-contained HTML.

    With only the mimetype (plotly's default in a bare kernel), an executed notebook exported by nbconvert shows
    no chart. ``"plotly_mimetype+notebook"`` embeds plotly.js once per notebook, so the exported HTML stays
    interactive offline; ``connected=True`` loads plotly.js from its CDN instead (smaller files, needs internet).
    Returns the renderer string set.
    """
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+" + ("notebook_connected" if connected else "notebook")
    return pio.renderers.default


def facescape_figures(tables, results, metric: str, options=None, *, interactive: bool = False,
                      highlight: Sequence[str] = ()) -> list:
    """The figures of ``notebooks/13_facescape.ipynb``: ``metric`` (``"CD"``, ``"MNE"`` or ``"CR"``) per bin for
    every (dataset, grouping) of ``tables`` (:class:`facenb.benchmarks.facescape.FaceScapeTables`), then its
    cumulative curve over all images of every dataset of ``results`` (scored with ``options``; default the
    official ones). Plotly figures when ``interactive``, else matplotlib."""
    from facenb.benchmarks import facescape as fs

    options = fs.OFFICIAL if options is None else options
    unit = {"CD": "CD (mm)", "MNE": "MNE (rad)", "CR": "CR (fraction)"}[metric]
    x_name = {"yaw": "head rotation (deg)", "angle": "view angle (deg)", "focal": "focal length (px)"}
    figs = []
    for dataset, grouping in tables.tables:
        frame = fs.plot_frame(tables, dataset, grouping, metric)
        kw = dict(highlight=highlight, title=f"FaceScape {dataset}: {metric} by {grouping}", y_label=unit,
                  x_label=x_name[grouping])
        figs.append(bin_curves_plotly(frame, **kw) if interactive else bin_curves_matplotlib(frame, **kw))
    for dataset in results.datasets:
        errs = fs.per_image_errors(results, dataset, metric, options)
        kw = dict(highlight=highlight, title=f"FaceScape {dataset}: cumulative {metric} over all images",
                  x_label=unit, higher_is_better=(metric == "CR"))
        figs.append(cumulative_error_curves_plotly(errs, **kw) if interactive
                    else cumulative_error_curves_matplotlib(errs, **kw))
    return figs


def show(fig) -> None:
    """Show a figure in a notebook: a plotly figure with ``fig.show()``, a matplotlib one as a PNG image (the
    same in JupyterLab and in the exported HTML)."""
    from IPython.display import Image, display

    if hasattr(fig, "savefig"):
        display(Image(figure_png(fig)))
    else:
        fig.show()


def figure_png(fig, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (for ``IPython.display.Image``; works with any matplotlib backend)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# ------------------------------------------------------------------------------ per-vertex error heatmaps
def mesh_error_figure(vertices: np.ndarray, faces: np.ndarray, errors: np.ndarray, *, title: str = "",
                      cmax: float | None = None, colorscale: str = "Jet", unit: str = "mm", height: int = 520):
    """Interactive per-vertex error heatmap on a mesh: plotly ``Mesh3d`` with a colour bar in ``unit``.

    Parameters
    ----------
    vertices : (n, 3) float, millimetres
    faces : (m, 3) int
    errors : (n,) float
        Per-vertex error (e.g. NoW scan-to-mesh distance of each cropped scan vertex).
    cmax : float, optional
        Upper end of the colour scale (default: the 99th percentile, so a few outliers do not wash it out).
    """
    import plotly.graph_objects as go

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    e = np.asarray(errors, dtype=np.float64)
    top = float(np.nanpercentile(e, 99)) if cmax is None else float(cmax)
    mesh = go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2], intensity=e,
                     intensitymode="vertex", colorscale=colorscale, cmin=0.0, cmax=top,
                     colorbar=dict(title=dict(text=unit)), flatshading=False,
                     hovertemplate="error %{intensity:.3f} " + unit + "<extra></extra>",
                     lighting=dict(ambient=0.55, diffuse=0.7, specular=0.1))
    fig = go.Figure(mesh)
    fig.update_layout(title=title, height=height, margin=dict(l=0, r=0, t=40, b=0),
                      scene=dict(aspectmode="data", xaxis_visible=False, yaxis_visible=False, zaxis_visible=False,
                                 camera=dict(eye=dict(x=0.0, y=0.0, z=1.8), up=dict(x=0, y=1, z=0))))
    return fig


#: Orthographic views of a face mesh (mm, y up, facing +z) -> the axis pointing at the viewer. ``front`` looks along
#: -z (image x = x, y = y); ``side`` looks along -x, from the subject's left (image x = -z, y = y).
_VIEW_AXIS = {"front": 2, "side": 0}


def _view_xy(points: np.ndarray, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates ``(n, 2)`` and depth towards the viewer ``(n,)`` (larger = nearer) of ``(n, 3)`` points."""
    p = np.asarray(points, dtype=np.float64)
    if view == "front":
        return p[:, [0, 1]], p[:, 2]
    if view == "side":
        return np.column_stack([-p[:, 2], p[:, 1]]), p[:, 0]
    raise InputError(f"unknown view {view!r}", None, "use 'front' or 'side'")


def _painter_triangles(vertices: np.ndarray, faces: np.ndarray, view: str) -> tuple[np.ndarray, np.ndarray]:
    """The triangles of a mesh projected for ``view`` in painter's-algorithm order.

    Returns
    -------
    order : (m,) int
        Face indices sorted by mean depth, farthest first, so that the nearest triangle is drawn last, on top.
    polygons : (m, 3, 2) float
        The projected triangles in that order.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    xy, depth = _view_xy(v, view)
    order = np.argsort(depth[f].mean(axis=1), kind="stable")
    return order, xy[f[order]]


def mesh_error_image(vertices: np.ndarray, faces: np.ndarray, errors: np.ndarray, *, title: str = "",
                     cmax: float | None = None, cmap: str = "jet", unit: str = "mm", view: str = "front",
                     ax=None):
    """Static per-vertex error heatmap (matplotlib ``plot_trisurf``-free: a painter's-algorithm polygon
    collection, viewed along -z (``view='front'``) or -x (``'side'``)), with a colour bar in ``unit``.

    Returns the matplotlib Figure.
    """
    import matplotlib
    import matplotlib.cm as cm
    import matplotlib.colors as mcolors
    from matplotlib.collections import PolyCollection

    f = np.asarray(faces, dtype=np.int64)
    e = np.asarray(errors, dtype=np.float64)
    order, polys = _painter_triangles(vertices, f, view)
    top = float(np.nanpercentile(e, 99)) if cmax is None else float(cmax)
    norm = mcolors.Normalize(vmin=0.0, vmax=top)
    colours = matplotlib.colormaps[cmap](norm(e[f[order]].mean(axis=1)))
    fig, ax = _figure_axes(ax, (5.2, 5.6), constrained=False)
    ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="none"))
    ax.set_xlim(polys[:, :, 0].min(), polys[:, :, 0].max())
    ax.set_ylim(polys[:, :, 1].min(), polys[:, :, 1].max())
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, fraction=0.046, pad=0.04, label=unit)
    return fig


# =============================================================================================================
# AFLW2000-3D: 68 landmarks drawn on images, NME by yaw bin (the per-image NME distribution uses
# cumulative_error_curves_matplotlib above).
# =============================================================================================================

#: Index ranges of the iBUG-68 contours (jaw, brows, nose bridge, nostrils, eyes, outer and inner lips), as
#: 3DDFA_V2's ``draw_landmarks`` connects them; eyes and lips are closed polygons.
IBUG68_SEGMENTS = ((0, 17), (17, 22), (22, 27), (27, 31), (31, 36), (36, 42), (42, 48), (48, 60), (60, 68))
_IBUG68_CLOSED = {(36, 42), (42, 48), (48, 60), (60, 68)}


def _draw_68(ax, pts: np.ndarray, colour: str, label: str | None, markersize: float = 3.0) -> None:
    for lo, hi in IBUG68_SEGMENTS:
        idx = list(range(lo, hi)) + ([lo] if (lo, hi) in _IBUG68_CLOSED else [])
        ax.plot(pts[0, idx], pts[1, idx], "-", color=colour, lw=1.0, alpha=0.8)
    ax.plot(pts[0], pts[1], "o", color=colour, markersize=markersize, markeredgecolor="black", markeredgewidth=0.4,
            alpha=0.9, label=label, linestyle="None")


def landmarks_on_image(image: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None, *, bgr: bool = True,
                       title: str = "", ax=None, pred_label: str = "prediction", gt_label: str = "ground truth"):
    """68 landmarks drawn on an image (matplotlib), optionally with the ground truth.

    Parameters
    ----------
    image : (H, W, 3) uint8
        The image (B, G, R order when ``bgr``, as OpenCV / facenb.methods read it).
    pred, gt : (2 or 3, 68) float
        Landmarks in image pixels (x, y rows; a z row is ignored).
    title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    h, w = image.shape[:2]
    fig, ax = _figure_axes(ax, (4.0, 4.0 * h / w))
    ax.imshow(image[..., ::-1] if bgr else image)
    if gt is not None:
        _draw_68(ax, np.asarray(gt), "#2ca02c", gt_label, 2.5)
    _draw_68(ax, np.asarray(pred), "#ffffff", pred_label)
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    ax.axis("off")
    ax.set_title(title, fontsize=8)
    return fig


def landmark_grid(images: Sequence[np.ndarray], preds: Sequence[np.ndarray], gts: Sequence[np.ndarray] | None = None,
                  titles: Sequence[str] | None = None, *, ncols: int = 4, bgr: bool = True, size: float = 2.6):
    """A grid of :func:`landmarks_on_image` panels (white: prediction, green: ground truth).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        landmarks_on_image(images[i], preds[i], None if gts is None else gts[i], bgr=bgr,
                           title="" if titles is None else titles[i], ax=ax)
    return fig


def nme_by_yaw_bars(table: Mapping[str, Sequence[float]], *, title: str = "",
                    bins: Sequence[str] = ("[0, 30]", "(30, 60]", "(60, 90]", "balanced"), ax=None):
    """Grouped bars of the NME (%) per yaw bin, one bar per variant / method (matplotlib).

    Parameters
    ----------
    table : mapping str -> sequence of float
        Variant -> NME values in the order of ``bins`` (NaN bars are left out).

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(table)
    fig, ax = _figure_axes(ax, (8.0, 4.0))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(bins), dtype=np.float64)
    for k, name in enumerate(names):
        vals = np.asarray(table[name], dtype=np.float64)
        pos = x + (k - (len(names) - 1) / 2) * width
        bars = ax.bar(pos, np.nan_to_num(vals, nan=0.0), width, label=name)
        for b, v in zip(bars, vals):
            if np.isfinite(v):
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x, bins)
    ax.set_xlabel("|yaw| bin (degrees); balanced = mean of the three bins")
    ax.set_ylabel("NME (%)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return fig


# =============================================================================================================
# REALY (notebooks/11_realy.ipynb): a mesh with named points on it, and a row of per-region error maps.
# The per-region heatmaps themselves are mesh_error_image / mesh_error_figure above.
# =============================================================================================================
def mesh_points_image(vertices: np.ndarray, faces: np.ndarray, points: Sequence[np.ndarray] | np.ndarray, *,
                      labels: Sequence[str] | None = None, colours: Sequence[str] | None = None, title: str = "",
                      view: str = "front", annotate: Sequence[int] | None = None, ax=None):
    """A grey mesh (painter's algorithm, as :func:`mesh_error_image`) with one or more point sets drawn on top.

    Parameters
    ----------
    vertices : (n, 3) float
    faces : (m, 3) int
    points : (k, 3) array or sequence of such arrays
        E.g. the 85 REALY keypoints of a prediction and of the ground truth.
    labels, colours : sequence of str, optional
        One per point set (legend entries / matplotlib colours).
    view : "front" (along -z) or "side" (along -x)
    annotate : sequence of int, optional
        Indices of the first point set to number on the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.collections import PolyCollection
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    sets = [np.asarray(points, dtype=np.float64)] if np.ndim(points) == 2 else [np.asarray(p, np.float64)
                                                                                for p in points]
    order, polys = _painter_triangles(v, f, view)
    fig, ax = _figure_axes(ax, (5.2, 5.6), constrained=False)
    # grey level from the angle between each triangle and the viewing direction (facing the viewer: lightest)
    tri = v[f[order]]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    facing = np.abs(normals[:, _VIEW_AXIS[view]]) / np.maximum(np.linalg.norm(normals, axis=1), 1e-300)
    shade = 0.55 + 0.35 * facing
    ax.add_collection(PolyCollection(polys, facecolors=np.repeat(shade[:, None], 3, axis=1), edgecolors="none"))
    colours = list(colours) if colours else ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"]
    for k, p in enumerate(sets):
        xy = _view_xy(p, view)[0]
        ax.scatter(xy[:, 0], xy[:, 1], s=10, color=colours[k % len(colours)], zorder=3,
                   label=None if labels is None else labels[k])
    if annotate is not None:
        xy = _view_xy(sets[0], view)[0]
        for i in annotate:
            ax.annotate(str(i), (xy[i, 0], xy[i, 1]), fontsize=6, zorder=4, xytext=(2, 2), textcoords="offset points")
    ax.set_xlim(polys[:, :, 0].min(), polys[:, :, 0].max())
    ax.set_ylim(polys[:, :, 1].min(), polys[:, :, 1].max())
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    if labels is not None:
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def region_error_images(regions: Mapping[str, tuple], *, cmax: float | None = None, unit: str = "mm",
                        title: str = ""):
    """One row of static per-vertex error maps, e.g. REALY's nose / mouth / forehead / cheek.

    Parameters
    ----------
    regions : mapping name -> (vertices (n, 3), faces (m, 3), errors (n,))
    cmax : float, optional
        Common upper end of the colour scale (default: the 99th percentile over all regions).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    allv = np.concatenate([np.asarray(e, dtype=np.float64) for _, _, e in regions.values()])
    top = float(np.nanpercentile(allv, 99)) if cmax is None else float(cmax)
    fig = Figure(figsize=(3.4 * len(regions), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(regions)))
    for ax, (name, (v, f, e)) in zip(axes, regions.items()):
        mesh_error_image(v, f, e, title=f"{name}: mean {np.mean(e):.3f} {unit}", cmax=top, unit=unit, ax=ax)
    if title:
        fig.suptitle(title)
    return fig


# =============================================================================================================
# AFLW2000-3D released predictions (notebooks/12_aflw2000.ipynb, issue 12): several methods on the same images,
# per-bin bars that carry their image counts.
# =============================================================================================================
_METHOD_COLOURS = ("#ffffff", "#ff7f0e", "#1f77b4", "#d62728", "#9467bd", "#8c564b")


def methods_landmark_grid(images: Sequence[np.ndarray], preds: Mapping[str, np.ndarray], gts: np.ndarray | None = None,
                          titles: Sequence[str] | None = None, *, ncols: int = 4, bgr: bool = True, size: float = 2.8,
                          suptitle: str = ""):
    """Each image with every method's 68 landmarks drawn on it (one colour per method; green: ground truth).

    Parameters
    ----------
    images : sequence of (H, W, 3) uint8
    preds : mapping method -> (n, 2|3, 68) landmarks, image pixels, same image order
    gts : (n, 2|3, 68), optional
    titles : sequence of str, optional
    suptitle : str  figure title (e.g. how many images the figure rests on)

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(size * ncols, size * nrows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        ax.imshow(img[..., ::-1] if bgr else img)
        if gts is not None:
            _draw_68(ax, np.asarray(gts[i]), "#2ca02c", "ground truth" if i == 0 else None, 2.0)
        for k, (m, p) in enumerate(preds.items()):
            _draw_68(ax, np.asarray(p[i]), _METHOD_COLOURS[k % len(_METHOD_COLOURS)], m if i == 0 else None, 2.0)
        ax.set_xlim(0, img.shape[1])
        ax.set_ylim(img.shape[0], 0)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(preds) + 1, fontsize=8,
               frameon=False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def nme_bins_with_counts(table: Mapping[str, Mapping], *, title: str = "", bins: Sequence[str] = AFLW_YAW_BINS,
                         ax=None):
    """Grouped bars of the NME (%) per yaw bin, each bin labelled with the number of images it holds.

    Parameters
    ----------
    table : mapping label -> {"bins": {bin: [count, mean %]}, ...}
        As :func:`facenb.benchmarks.aflw2000_published.summary_table` writes it; labels may be different methods
        or runs on different images (each bar is annotated with its own count).

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(table)
    fig, ax = _figure_axes(ax, (8.0, 4.2))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(bins), dtype=np.float64)
    for k, name in enumerate(names):
        entries = [table[name]["bins"].get(b, [0, None]) for b in bins]
        vals = np.array([np.nan if v is None else float(v) for _, v in entries])
        pos = x + (k - (len(names) - 1) / 2) * width
        bars = ax.bar(pos, np.nan_to_num(vals, nan=0.0), width, label=f"{name} ({table[name].get('n_images', '?')} images)")
        for b, v, (count, _) in zip(bars, vals, entries):
            text = f"{v:.2f}\nn={count}" if np.isfinite(v) else f"n={count}"
            ax.annotate(text, (b.get_x() + b.get_width() / 2, 0 if not np.isfinite(v) else v), ha="center",
                        va="bottom", fontsize=6)
    ax.set_xticks(x, [f"|yaw| {b}" for b in bins])
    ax.set_ylabel("mean NME (%)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return fig


# =============================================================================================================
# NoW, looked at closely (facenb.nowviz, notebooks/10_now.ipynb): official cumulative error curves of several
# methods, the refinement's objective per iteration, true vs protocol error on a synthetic set.
# =============================================================================================================
def now_cumulative_plotly(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str = "",
                          x_max: float = 8.0):
    """Interactive NoW cumulative error curves: ``curves`` maps method -> ``(x mm, percent)`` (e.g.
    :func:`facenb.nowviz.cumulative_error` read on a grid with :func:`facenb.nowviz.curve_on_grid`)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for m, (x, y) in curves.items():
        fig.add_trace(go.Scatter(x=np.asarray(x), y=np.asarray(y), mode="lines", name=m,
                                 hovertemplate=f"{m}<br>%{{x:.2f}} mm: %{{y:.1f}} %<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="Error [mm]", yaxis_title="Percentage", template="plotly_white",
                      xaxis={"range": [0, x_max]}, yaxis={"range": [0, 100]}, legend={"x": 0.99, "y": 0.02,
                                                                                     "xanchor": "right"})
    return fig


def now_cumulative_matplotlib(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str = "",
                              x_max: float = 8.0, ax=None):
    """Static NoW cumulative error curves, laid out as the official ``cumulative_errors.py`` plot (x 0-8 mm,
    y 0-100 %, legend lower right)."""
    fig, ax = _figure_axes(ax, (7.0, 4.5))
    for m, (x, y) in curves.items():
        ax.plot(x, y, label=m)
    ax.set_xlim(0, x_max)
    ax.set_ylim(0, 100)
    ax.set_xlabel("Error [mm]")
    ax.set_ylabel("Percentage")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def objective_trace_image(trace: np.ndarray, *, title: str = "", unit: str = "mm\u00b2", ax=None):
    """The refinement objective per accepted iteration (``trace (q, 2)`` of ``(iteration, E)``), log scale."""
    t = np.asarray(trace, dtype=np.float64).reshape(-1, 2)
    fig, ax = _figure_axes(ax, (5.5, 3.4))
    ax.plot(t[:, 0], t[:, 1], "o-", color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("dogleg iteration")
    ax.set_ylabel(f"objective E ({unit})")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return fig


def truth_vs_protocol_image(frame, *, title: str = "", ax=None):
    """Scatter of the protocol's mean error against the true one (``facenb.nowviz.truth_vs_protocol`` frame),
    one colour per method, with the diagonal ``protocol = true``."""
    fig, ax = _figure_axes(ax, (6.0, 5.0))
    top = float(max(frame["true_mean_mm"].max(), frame["protocol_mean_mm"].max(), 1e-3)) * 1.05 if len(frame) else 1
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="protocol = true")
    for m, g in frame.groupby("method", sort=False):
        ax.scatter(g["true_mean_mm"], g["protocol_mean_mm"], s=28, label=m)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("true mean error (mm, no alignment)")
    ax.set_ylabel("NoW protocol mean error (mm)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig
