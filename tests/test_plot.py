"""facenb.plot: every public function returns a figure holding the data it was given (checked on the figure's data,
not its pixels), highlights only what the caller names, and draws meshes with the painter's algorithm (checked on
the pixels: the nearer of two overlapping triangles is the one visible)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from facenb import plot as P
from facenb.errors import InputError
from facenb.vocabulary import AFLW_YAW_BINS

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------------------ cross-method charts
def _long_frame():
    rows = [(m, b, v) for m, vals in (("A", (1.0, 2.0, np.nan)), ("B", (3.0, 4.0, 5.0)))
            for b, v in zip(("0-5", "5-10", "10-15"), vals)]
    return pd.DataFrame(rows, columns=["method", "bin", "value"])


def test_bin_curves_hold_the_values_and_highlight_only_what_is_named():
    fig = P.bin_curves_plotly(_long_frame())
    by = {t.name: t for t in fig.data}
    assert set(by) == {"A", "B"}  # nothing highlighted by default (no "* " mark)
    np.testing.assert_array_equal(by["B"].y, [3.0, 4.0, 5.0])
    assert list(by["A"].x) == ["0-5", "5-10", "10-15"] and np.isnan(by["A"].y[2])
    fig = P.bin_curves_plotly(_long_frame(), highlight=["B"])
    assert [t.name for t in fig.data] == ["A", "* B"]  # the highlighted method last (on top)
    mfig = P.bin_curves_matplotlib(_long_frame(), highlight=["A"])
    lines = {ln.get_label(): ln for ln in mfig.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["B"].get_ydata(), [3.0, 4.0, 5.0])
    assert "* A" in lines and lines["* A"].get_linewidth() > lines["B"].get_linewidth()


def test_cumulative_curve_counts_failures_in_the_denominator():
    x, y = P.cumulative_curve(np.array([3.0, np.nan, 1.0, 2.0]))
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(y, [0.25, 0.5, 0.75])  # ends at the done rate
    x, y = P.cumulative_curve(np.array([0.9, 0.5]), higher_is_better=True)
    np.testing.assert_array_equal(x, [0.9, 0.5])
    errs = {"A": np.array([1.0, 2.0]), "B": np.array([0.5, np.nan])}
    fig = P.cumulative_error_curves_plotly(errs)
    by = {t.name: t for t in fig.data}
    assert set(by) == {"A", "B"}
    np.testing.assert_allclose(by["B"].y[-1], 0.5)
    mfig = P.cumulative_error_curves_matplotlib(errs, highlight=["B"])
    labels = [ln.get_label() for ln in mfig.axes[0].get_lines()]
    assert "* B" in labels and "A" in labels


def _table(columns):
    return pd.DataFrame(RNG.uniform(1, 3, size=(3, len(columns))), index=["MICA", "X", "Y"], columns=list(columns))


def test_now_bars():
    t = _table(("median", "mean", "std"))
    fig = P.now_bars(t)
    assert [tr.name for tr in fig.data] == ["median", "mean", "std"]
    order = list(t.sort_values("median").index)
    assert list(fig.data[0].x) == order  # sorted by the median, no star: nothing highlighted by default
    np.testing.assert_allclose(fig.data[1].y, t.loc[order, "mean"])
    fig = P.now_bars(t, highlight=["MICA"])
    assert P.SEED_MARK + "MICA" in list(fig.data[0].x)


def test_realy_heatmap_and_ranked_bars():
    t = _table(("nose", "mouth", "forehead", "cheek", "all"))
    fig = P.realy_heatmap(t)
    order = list(t.sort_values("all").index)
    assert list(fig.data[0].y) == order and not fig.layout.shapes
    np.testing.assert_allclose(np.asarray(fig.data[0].z), t.loc[order].to_numpy())
    assert len(P.realy_heatmap(t, highlight=["X"]).layout.shapes) == 1  # one frame, around X
    fig = P.ranked_bars(t["all"], flagged=["Y"])
    np.testing.assert_allclose(fig.data[0].x, np.sort(t["all"].to_numpy()))
    assert all(c == "#9e9e9e" for c in fig.data[0].marker.color)  # nothing highlighted by default
    assert sum("(!)" in label for label in fig.data[0].y) == 1


def test_aflw_pose_bins():
    t = _table((*AFLW_YAW_BINS, "balanced"))
    fig = P.aflw_pose_bins(t)
    assert sorted(tr.name for tr in fig.data) == sorted(t.index)
    tr = next(tr for tr in fig.data if tr.name == "X")
    assert list(tr.x) == [*AFLW_YAW_BINS, "balanced"]
    np.testing.assert_allclose(tr.y, t.loc["X"])


def test_nme_bars():
    fig = P.nme_by_yaw_bars({"a": [1.0, 2.0, np.nan, 1.5], "b": [2.0, 2.5, 3.0, 2.5]})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1.0, 2.0, 0.0, 1.5, 2.0, 2.5, 3.0, 2.5]  # NaN drawn as an empty bar
    fig = P.nme_bins_with_counts({"m": {"bins": {"0-30": [10, 2.5], "30-60": [5, 3.5]}, "n_images": 15}})
    assert [p.get_height() for p in fig.axes[0].patches] == [2.5, 3.5, 0.0]
    assert any("n=10" in t.get_text() for t in fig.axes[0].texts)


def test_use_notebook_renderer_and_png():
    import plotly.io as pio

    before = pio.renderers.default
    try:
        assert P.use_notebook_renderer() == "plotly_mimetype+notebook"
        assert P.use_notebook_renderer(connected=True) == "plotly_mimetype+notebook_connected"
    finally:
        pio.renderers.default = before
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1])
    assert P.figure_png(fig, dpi=20).startswith(b"\x89PNG")


# ------------------------------------------------------------------------------------------------ meshes
def _grid_mesh(n=6):
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    v = np.column_stack([x.ravel(), y.ravel(), np.sin(x.ravel())])
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    f = np.concatenate([np.column_stack([a, b, d]), np.column_stack([a, d, c])])
    return v, f


def test_mesh_error_figure_and_image_hold_the_mesh():
    v, f = _grid_mesh()
    e = np.linspace(0, 2, len(v))
    fig = P.mesh_error_figure(v, f, e, cmax=1.5)
    m = fig.data[0]
    np.testing.assert_array_equal(m.x, v[:, 0])
    np.testing.assert_array_equal(m.k, f[:, 2])
    np.testing.assert_array_equal(m.intensity, e)
    assert m.cmax == 1.5
    img = P.mesh_error_image(v, f, e, view="side")
    coll = next(c for c in img.axes[0].collections if isinstance(c, PolyCollection))
    assert len(coll.get_paths()) == len(f)
    # side view: image x = -z, image y = y
    xs = np.concatenate([p.vertices[:3, 0] for p in coll.get_paths()])
    assert xs.min() == pytest.approx(-v[:, 2].max()) and xs.max() == pytest.approx(-v[:, 2].min())
    with pytest.raises(InputError, match="unknown view 'top'"):
        P.mesh_error_image(v, f, e, view="top")
    regions = {"nose": (v, f, e), "mouth": (v, f, 2 * e)}
    rfig = P.region_error_images(regions)
    titles = [ax.get_title() for ax in rfig.axes if ax.get_title()]
    assert titles == [f"nose: mean {e.mean():.3f} mm", f"mouth: mean {2 * e.mean():.3f} mm"]


def test_mesh_points_image_projects_points_as_the_mesh():
    v, f = _grid_mesh()
    pts = v[[0, 7, 20]]
    for view, expect in (("front", pts[:, [0, 1]]), ("side", np.column_stack([-pts[:, 2], pts[:, 1]]))):
        fig = P.mesh_points_image(v, f, [pts, pts + 0.1], labels=["a", "b"], view=view, annotate=[1])
        ax = fig.axes[0]
        offsets = [c.get_offsets() for c in ax.collections if not isinstance(c, PolyCollection)]
        np.testing.assert_allclose(offsets[0], expect)
        assert [t.get_text() for t in ax.texts] == ["1"]
        assert ax.texts[0].xy == pytest.approx(tuple(expect[1]))


def _two_triangles():
    """Two triangles overlapping around (0, 0) in both views: the first 10 mm nearer the viewer (z and x larger)
    and facing the viewer's axis squarely; the second tilted (so its grey shade differs)."""
    near = np.array([[-4.0, -4.0, 10.0], [4.0, -4.0, 10.0], [0.0, 4.0, 10.0]])
    far = np.array([[-4.0, -4.0, 0.0], [4.0, -4.0, 0.0], [0.0, 4.0, 0.0]])
    return near, far


def _pixel(fig, ax, xy):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    px, py = ax.transData.transform(xy)
    return rgba[int(round(rgba.shape[0] - py)), int(round(px)), :3].astype(int)


@pytest.mark.parametrize("view", ["front", "side"])
@pytest.mark.parametrize("near_first", [True, False])
def test_painter_draws_the_near_triangle_on_top(view, near_first):
    near, far = _two_triangles()
    if view == "side":  # the same pair turned to face +x: near has the larger x
        turn = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # z -> x, x -> -z
        near, far = near @ turn.T, far @ turn.T
    tris = [near, far] if near_first else [far, near]
    v = np.concatenate(tris)
    f = np.array([[0, 1, 2], [3, 4, 5]])
    errors = np.repeat([0.0, 1.0] if near_first else [1.0, 0.0], 3)  # near: 0 (dark blue), far: 1 (dark red)
    fig = P.mesh_error_image(v, f, errors, cmax=1.0, cmap="jet", view=view)
    r, g, b = _pixel(fig, fig.axes[0], (0.0, 0.0))
    assert b > 100 and r < 60, (r, g, b)  # the near triangle's blue, not the far one's red
    # mesh_points_image: grey shade from the facing angle; tilt the far triangle so the two greys differ
    tilt = far.copy()
    tilt[2] += (np.array([0, 0, 6.0]) if view == "front" else np.array([6.0, 0, 0]))
    tris = [near, tilt] if near_first else [tilt, near]
    v = np.concatenate(tris)
    fig = P.mesh_points_image(v, f, np.zeros((0, 3)), view=view)
    grey = _pixel(fig, fig.axes[0], (0.0, -1.0))
    assert abs(int(grey[0]) - round(0.9 * 255)) <= 2, grey  # facing the viewer squarely: 0.55 + 0.35


# ------------------------------------------------------------------------------------------- landmarks, NoW
def test_landmarks_drawn_on_images():
    img = np.zeros((40, 50, 3), np.uint8)
    img[..., 0] = 255  # blue in B, G, R order
    pred = np.vstack([np.linspace(5, 45, 68), np.linspace(5, 35, 68)])
    gt = pred + 1.0
    fig = P.landmarks_on_image(img, pred, gt, title="t")
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    assert tuple(shown[0, 0]) == (0, 0, 255)  # converted to RGB
    points = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None"]
    np.testing.assert_array_equal(points[0].get_xdata(), gt[0])  # ground truth first, then the prediction
    np.testing.assert_array_equal(points[1].get_ydata(), pred[1])
    assert ax.get_ylim() == (40, 0)  # image rows downwards
    grid = P.landmark_grid([img] * 3, [pred] * 3, titles=["a", "b", "c"], ncols=2)
    assert [a.get_title() for a in grid.axes] == ["a", "b", "c", ""]
    multi = P.methods_landmark_grid([img] * 2, {"m1": np.stack([pred] * 2), "m2": np.stack([gt] * 2)},
                                    gts=np.stack([gt] * 2), suptitle="2 images")
    labels = [t.get_text() for t in multi.legends[0].get_texts()]
    assert labels == ["ground truth", "m1", "m2"]


def test_now_curves_and_traces():
    curves = {"A": (np.array([0.0, 1.0, 2.0]), np.array([0.0, 50.0, 100.0]))}
    fig = P.now_cumulative_plotly(curves, x_max=5.0)
    np.testing.assert_array_equal(fig.data[0].y, [0.0, 50.0, 100.0])
    assert tuple(fig.layout.xaxis.range) == (0, 5.0)
    mfig = P.now_cumulative_matplotlib(curves)
    np.testing.assert_array_equal(mfig.axes[0].get_lines()[0].get_xdata(), [0.0, 1.0, 2.0])
    assert mfig.axes[0].get_xlim() == (0, 8.0)
    tfig = P.objective_trace_image(np.array([[0, 10.0], [1, 2.0], [2, 1.5]]))
    np.testing.assert_array_equal(tfig.axes[0].get_lines()[0].get_ydata(), [10.0, 2.0, 1.5])
    assert tfig.axes[0].get_yscale() == "log"
    frame = pd.DataFrame({"method": ["a", "a", "b"], "true_mean_mm": [1.0, 2.0, 3.0],
                          "protocol_mean_mm": [0.8, 1.9, 2.5]})
    sfig = P.truth_vs_protocol_image(frame)
    offsets = [c.get_offsets() for c in sfig.axes[0].collections]
    np.testing.assert_array_equal(offsets[0], [[1.0, 0.8], [2.0, 1.9]])
    np.testing.assert_array_equal(offsets[1], [[3.0, 2.5]])


def test_show_displays_matplotlib_as_png_and_plotly_by_its_own_show(monkeypatch):
    import IPython.display as D

    shown = []
    monkeypatch.setattr(D, "display", lambda obj: shown.append(obj))
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    P.show(fig)
    assert len(shown) == 1 and isinstance(shown[0], D.Image) and shown[0].data == P.figure_png(fig)

    class Plotly:
        def show(self):
            shown.append("plotly")

    P.show(Plotly())
    assert shown[-1] == "plotly"
