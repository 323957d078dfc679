"""Stirling/ESRC (FG2018) scorer: conformance with the official script's outputs, .lnd reading, laws, bad input,
dataset mode and CLI."""
import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facenb import InputError
from facenb.align import procrustes
from facenb.benchmarks import stirling as S
from facenb.cli import main
from facenb.io import load_mesh, save_landmarks_txt, save_obj

CASES = ["st01_james_decimated", "st02_sfm_dense_vs_other_identity", "st03_pred_in_metres_expression",
         "st04_degenerate_faces", "st05_pred_in_metres_x104", "st06_repeated_index_faces",
         "st07_pred_in_inches_rotated", "st08_partial_prediction", "st09_gt_lnd_many_decimals",
         "st10_mirrored_prediction"]
# Reached here: statistics within 7e-14 mm, every distance within 1e-13 mm, identical vertex sets.
TOL = 1e-6
STAT_KEYS = ("mean_mm", "median_mm", "std_mm", "rmse_mm", "max_mm", "min_mm")


def _case(conformance_dir, case):
    d = conformance_dir / "stirling" / case
    if not d.is_dir():
        pytest.fail(f"conformance case {case} missing in {conformance_dir / 'stirling'}")
    return d, json.loads((d / "expected.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_conformance_case(conformance_dir, case):
    d, exp = _case(conformance_dir, case)
    res = S.evaluate_files(d / "scan.obj", d / "scan.lnd", d / "pred.obj", d / "pred_lmks.txt")
    idx, dist = S.read_distances(d / "expected_distances.txt")
    assert res.n_points == exp["n_points"] == len(idx)
    assert res.n_scan_vertices == exp["n_scan_vertices"]
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, dist, rtol=0, atol=TOL)
    summary = res.summary()
    for k in STAT_KEYS:
        assert abs(summary[k] - exp[k]) < TOL, k
    inter = exp["official_intermediates"]
    assert res.scale == pytest.approx(inter["scale"], rel=1e-12)
    np.testing.assert_allclose(res.rotation, inter["rotation"], atol=1e-12)
    assert res.reflection_used == (inter["det_rotation"] < 0)
    assert res.radius == inter["mask_radius_mm"]
    assert res.centre.tolist() == inter["face_centre"]
    # the written file has the official format: same indices, CRLF, repr floats within the tolerance
    text = res.format_distances()
    assert text.count("\r\n") == len(idx) and text.endswith("\r\n")


@pytest.mark.parametrize("case", CASES)
def test_file_byte_identical_with_official_transform(conformance_dir, case, tmp_path):
    """Given the official Procrustes result (its locals at return), mask + alignment + distances + writer
    reproduce the official output file byte for byte."""
    d, exp = _case(conformance_dir, case)
    inter = exp["official_intermediates"]
    scan = load_mesh(d / "scan.obj", require_faces=False)
    pred = load_mesh(d / "pred.obj")
    gt = S.read_lnd(d / "scan.lnd")
    assert gt.tolist() == inter["gt_landmarks_as_parsed"]
    res = S.score_aligned(scan.vertices, gt, pred.vertices, pred.faces,
                          (inter["scale"], np.array(inter["rotation"]), np.array(inter["translation"])))
    out = tmp_path / "d.txt"
    res.write_distances(out)
    assert out.read_bytes() == (d / "expected_distances.txt").read_bytes()


def test_mirrored_equals_unmirrored(conformance_dir):
    a = S.evaluate_files(*(conformance_dir / "stirling" / "st01_james_decimated" / f
                           for f in ("scan.obj", "scan.lnd", "pred.obj", "pred_lmks.txt")))
    d = conformance_dir / "stirling" / "st10_mirrored_prediction"
    b = S.evaluate_files(d / "scan.obj", d / "scan.lnd", d / "pred.obj", d / "pred_lmks.txt")
    assert b.reflection_used and not a.reflection_used
    np.testing.assert_allclose(a.distances, b.distances, rtol=0, atol=1e-9)
    forced = S.evaluate_files(d / "scan.obj", d / "scan.lnd", d / "pred.obj", d / "pred_lmks.txt",
                              S.StirlingOptions(reflection="forbid"))
    assert not forced.reflection_used and forced.mean_mm > 2 * a.mean_mm


def test_point_cloud_scan_accepted(conformance_dir):
    d = conformance_dir / "stirling" / "st02_sfm_dense_vs_other_identity"
    assert "\nf " not in (d / "scan.obj").read_text()
    assert S.evaluate_files(d / "scan.obj", d / "scan.lnd", d / "pred.obj", d / "pred_lmks.txt").n_points == 59117


# ------------------------------------------------------------------------------------------------ .lnd reading
def test_all_real_lnd_files_read(data_mirror):
    root = data_mirror / "stirling_fg2018" / "annotations"
    files = sorted(root.rglob("*.lnd"))
    assert len(files) == 147
    for f in files:
        lm = S.read_lnd(f)
        assert lm.shape == (7, 3) and lm.dtype == np.float64
        eye = np.linalg.norm(lm[0] - lm[3])
        assert 60 < eye < 130, f  # outer eye corners of an adult face, mm
        assert lm[0, 0] < lm[3, 0], f  # subject's right = negative x
        # value = float of the third..fifth token of each line, in line order
        rows = [ln.split(" ") for ln in f.read_text().splitlines() if ln]
        assert lm.tolist() == [[float(r[1]), float(r[2]), float(r[3])] for r in rows]


LND = ["1 -60.0601 10.2359 1.17878", "2 -31.6541 11.4451 3.5145", "3 5.1088 8.00713 0.517465",
       "4 34.3778 8.90553 -10.5481", "5 -10.6059 -43.3477 20.8981", "6 -31.5 -70.1 5.2", "7 12.3 -71.8 1.9"]
VALUES = [[float(t) for t in ln.split(" ")[1:]] for ln in LND]


@pytest.mark.parametrize("text", [
    "\n".join(LND) + "\n",                    # official files: LF
    "\r\n".join(LND) + "\r\n",                # CRLF
    "\n".join(LND) + "\n\n",                  # trailing empty line
    "\n".join(LND),                           # no final newline
    "\n".join(ln + " " for ln in LND) + "\n",  # trailing space: extra empty token ignored
    "\n".join(ln + " extra 9" for ln in LND) + "\n",  # tokens after the fourth ignored
    "\n".join("99 " + ln.split(" ", 1)[1] for ln in LND) + "\n",  # the id column is ignored
    "\ufeff" + "\n".join(LND) + "\n",         # a BOM lands in the (ignored) id column
    "\n\n".join(LND) + "\n",                  # empty lines between rows are skipped
])
def test_read_lnd_official_parsing(tmp_path, text):
    p = tmp_path / "x.lnd"
    p.write_bytes(text.encode("utf-8"))
    assert S.read_lnd(p).tolist() == VALUES


def test_read_lnd_float_syntax(tmp_path):
    p = tmp_path / "x.lnd"
    p.write_text("\n".join(["1 -6.00601e1 1.02359E1 +1.17878"] + LND[1:]) + "\n")
    assert S.read_lnd(p)[0].tolist() == [-60.0601, 10.2359, 1.17878]


@pytest.mark.parametrize("text,msg", [
    ("\n".join(LND[:6]) + "\n", "expected 7 landmarks, found 6"),
    ("\n".join(LND + ["8 1 2 3"]) + "\n", "expected 7 landmarks, found 8"),
    ("\n".join([LND[0].replace(" ", "  ", 1)] + LND[1:]) + "\n", "double space"),
    ("\n".join([LND[0].replace(" ", "\t")] + LND[1:]) + "\n", "field"),
    ("\n".join([" " + LND[0]] + LND[1:]) + "\n", "starts with a space"),
    ("\n".join(["1 a b c"] + LND[1:]) + "\n", "not three numbers"),
    ("\n".join(["1 nan 0 0"] + LND[1:]) + "\n", "NaN"),
    ("", "found 0"),
])
def test_read_lnd_bad(tmp_path, text, msg):
    p = tmp_path / "x.lnd"
    p.write_text(text)
    with pytest.raises(InputError, match=msg):
        S.read_lnd(p)


def test_read_lnd_missing(tmp_path):
    with pytest.raises(InputError, match="not found"):
        S.read_lnd(tmp_path / "nope.lnd")


# -------------------------------------------------------------------------------------------------------- laws
def _face(seed=0, n=40):
    """A smooth face-sized height field (mm) with 7 landmark positions on it."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-80, 80, n), np.linspace(-90, 70, n))
    z = 40 * np.exp(-(x ** 2 + y ** 2) / 4000) + rng.normal(0, 0.2, x.shape)
    V = np.c_[x.ravel(), y.ravel(), z.ravel()]
    F = []
    for i in range(n - 1):
        for j in range(n - 1):
            a = i * n + j
            F += [(a, a + 1, a + n), (a + 1, a + n + 1, a + n)]
    lm_xy = np.array([[-45, 20], [-15, 20], [15, 20], [45, 20], [0, -25], [-25, -50], [25, -50]], float)
    lm = np.c_[lm_xy, 40 * np.exp(-(lm_xy ** 2).sum(1) / 4000)]
    return V, np.array(F), lm


def _rot(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                     [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                     [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]])


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), mirror=st.booleans())
def test_similarity_of_gt_scores_zero(seed, scale, mirror):
    """The scan surface itself under any similarity (reflection included: 'best') scores 0."""
    V, F, lm = _face()
    rng = np.random.default_rng(seed)
    R = _rot(rng) * (np.array([-1, 1, 1]) if mirror else 1)
    t = rng.uniform(-500, 500, 3)
    res = S.evaluate(V, lm, scale * V @ R.T + t, F, scale * lm @ R.T + t)
    assert res.max_mm < 1e-7
    assert res.reflection_used == mirror


@settings(max_examples=10)
@given(offset=st.floats(0.1, 5.0))
def test_constant_offset_scores_offset(offset):
    """A flat prediction offset by d mm along its normal, its landmarks where the scan's are (identity
    Procrustes): every masked distance is d."""
    n = 30
    x, y = np.meshgrid(np.linspace(-150, 150, n), np.linspace(-150, 150, n))
    V = np.c_[x.ravel(), y.ravel(), np.zeros(n * n)]
    F = np.array([(i * n + j, i * n + j + 1, i * n + j + n) for i in range(n - 1) for j in range(n - 1)]
                 + [(i * n + j + 1, i * n + j + n + 1, i * n + j + n) for i in range(n - 1) for j in range(n - 1)])
    lm = np.array([[-45, 20, 0], [-15, 20, 0], [15, 20, 0], [45, 20, 0], [0, -25, 0], [-25, -50, 0.0],
                   [25, -50, 0]])
    lm[:, 2] = [3, 1, 1, 3, 8, 2, 2]  # not coplanar, so the rotation is determined
    scan = V[np.abs(V[:, 0]) < 100]
    pred = V + [0, 0, offset]
    res = S.evaluate(scan, lm, pred, F, lm)
    np.testing.assert_allclose(res.distances, offset, atol=1e-9)
    assert res.rmse_mm == pytest.approx(offset) and res.std_mm < 1e-9


def test_mask_is_inclusive_ball():
    lm = np.array([[-45, 20, 0], [-15, 20, 0], [15, 20, 0], [45, 20, 0], [0, -25, 0], [-25, -50, 0], [25, -50, 0.]])
    idx, centre, radius = S.face_mask(np.zeros((1, 3)), lm)
    assert centre.tolist() == [0, -25 + 0.3 * 45, 0]
    assert radius == 1.2 * (90 + 45) / 2
    pts = centre + np.array([[radius, 0, 0], [0, np.nextafter(radius, np.inf), 0], [0, 0, -radius]])
    assert S.face_mask(pts, lm)[0].tolist() == [0, 2]
    old = S.face_mask(pts, lm, S.StirlingOptions(mask_rule="pre-d1645f4"))
    assert old[2] == 1.5 * (np.linalg.norm(lm[0] + lm[3]) + 45) / 2


def test_procrustes_is_the_official_port():
    """facenb.align.procrustes with 'best' = the official port: no determinant correction."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(7, 3))
    Y = X * [-1, 1, 1] * 2.5 + 7
    s, R, t = S.align(X, Y)
    assert np.linalg.det(R) < 0 and s == pytest.approx(0.4)
    np.testing.assert_allclose(s * Y @ R + t, X, atol=1e-12)
    sim = procrustes(X, Y, reflection=False)
    assert np.linalg.det(sim.rotation) > 0


def test_vertex_order_and_unreferenced_vertices_do_not_matter():
    V, F, lm = _face(1)
    scan = V + np.random.default_rng(1).normal(0, 0.5, V.shape)
    a = S.evaluate(scan, lm, V, F, lm)
    perm = np.random.default_rng(2).permutation(len(V))
    inv = np.argsort(perm)
    V2 = np.vstack([V[perm], [[1e4, 1e4, 1e4]]])
    b = S.evaluate(scan, lm, V2, inv[F], lm)
    np.testing.assert_allclose(a.distances, b.distances, atol=1e-12)


def test_summary_printed_frame():
    V, F, lm = _face(2)
    res = S.evaluate(V + [0, 0, 1.0], lm, V, F, lm)
    s = res.summary()
    for k in ("mean_mm", "median_mm", "std_mm", "rmse_mm", "max_mm", "n_points", "transform"):
        assert k in s
    json.dumps(s)
    assert s["rmse_mm"] == pytest.approx(np.sqrt(np.mean(res.distances ** 2)))
    assert s["std_mm"] == pytest.approx(np.std(res.distances))
    assert res.printed()[0] == "Computed and saved distances."
    df = res.to_frame()
    assert list(df.columns) == ["vertex_idx", "distance_mm"] and len(df) == res.n_points
    T = res.transform
    np.testing.assert_allclose(V @ T[:3, :3].T + T[:3, 3], res.aligned_vertices, atol=1e-9)


def test_format_distances_matches_csv_writer():
    text = S.format_distances([3, 10], [0.1, 1 / 3])
    assert text == "3 0.1\r\n10 0.3333333333333333\r\n"


# -------------------------------------------------------------------------------------------------- bad input
def test_bad_inputs():
    V, F, lm = _face(4)
    with pytest.raises(InputError, match="degenerate"):
        S.evaluate(V, lm, V, F, np.zeros((7, 3)))
    with pytest.raises(InputError, match="collinear"):
        S.evaluate(V, lm, V, F, np.outer(np.arange(7.0), [1, 2, 3]))
    with pytest.raises(InputError, match="shape"):
        S.evaluate(V, lm, V, F, lm[:6])
    bad = lm.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        S.evaluate(V, lm, V, F, bad)
    with pytest.raises(InputError, match="no triangles"):
        S.evaluate(V, lm, V, np.zeros((0, 3), int), lm)
    with pytest.raises(InputError, match="face mask"):
        S.evaluate(V + 1e4, lm, V, F, lm)
    with pytest.raises(InputError):
        S.StirlingOptions(reflection="no")


# ----------------------------------------------------------------------------------------------- dataset mode
def _layout(conformance_dir, tmp_path):
    """A miniature release made of conformance cases (copied at test time, never committed)."""
    c = conformance_dir / "stirling"
    ds, pred = tmp_path / "release", tmp_path / "pred"
    img = ds / "Real_images__Subset_2D_FG2018"
    for sub, names in (("HQ", ["F1001_01", "F1001_02"]), ("LQ", ["M1002_01", "m1003_01", "F1001_03"])):
        (img / sub).mkdir(parents=True)
        for n in names:
            (img / sub / f"{n}.jpg").write_bytes(b"")
    for folder, name, case in (("F_3D_N", "F1001_N", "st01_james_decimated"),
                               ("M_3D_N", "m1002_N", "st03_pred_in_metres_expression")):
        (ds / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(c / case / "scan.obj", ds / folder / f"{name}.obj")
        (ds / "annotations" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(c / case / "scan.lnd", ds / "annotations" / folder / f"{name.upper()}.lnd")
    for sub, name, case in (("HQ", "F1001_01", "st01_james_decimated"),
                            ("HQ", "F1001_02", "st07_pred_in_inches_rotated"),
                            ("LQ", "M1002_01", "st03_pred_in_metres_expression"),
                            ("LQ", "F1001_03", "st08_partial_prediction")):
        (pred / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(c / case / "pred.obj", pred / sub / f"{name}.obj")
        shutil.copy(c / case / "pred_lmks.txt", pred / sub / f"{name}.txt")
    exp = {k: json.loads((c / case / "expected.json").read_text()) for k, case in (
        ("HQ/F1001_01", "st01_james_decimated"), ("HQ/F1001_02", "st07_pred_in_inches_rotated"),
        ("LQ/M1002_01", "st03_pred_in_metres_expression"), ("LQ/F1001_03", "st08_partial_prediction"))}
    return ds, pred, exp


def test_dataset_mode(conformance_dir, tmp_path):
    ds, pred, exp = _layout(conformance_dir, tmp_path)
    out = tmp_path / "out"
    res = S.evaluate_dataset(ds, pred, out, progress=False)
    rows = {r["key"]: r for r in res.rows}
    assert rows["LQ/m1003_01"]["status"] == "missing" and "m1003_N.obj" in rows["LQ/m1003_01"]["reason"]
    for k, e in exp.items():
        assert rows[k]["status"] == "ok"
        for s in ("mean_mm", "median_mm", "std_mm", "rmse_mm", "max_mm"):
            assert abs(rows[k][s] - e[s]) < TOL
        assert rows[k]["n_points"] == e["n_points"]
    hq, lq, al = res.per_subset["HQ"], res.per_subset["LQ"], res.per_subset["all"]
    # default headline: mean over all masked vertices of the subset (pooled)
    e1, e2 = exp["HQ/F1001_01"], exp["HQ/F1001_02"]
    n = e1["n_points"] + e2["n_points"]
    assert hq["value_mm"] == pytest.approx((e1["mean_mm"] * e1["n_points"] + e2["mean_mm"] * e2["n_points"]) / n,
                                           abs=1e-9)
    assert hq["n_points"] == n and hq["std_mm"] == hq["pooled_std_mm"]
    pooled_rmse = np.sqrt((e1["rmse_mm"] ** 2 * e1["n_points"] + e2["rmse_mm"] ** 2 * e2["n_points"]) / n)
    assert hq["pooled_rmse_mm"] == pytest.approx(pooled_rmse, abs=1e-9)
    assert hq["per_image_rmse_mm"] == pytest.approx((e1["rmse_mm"] + e2["rmse_mm"]) / 2, abs=1e-9)
    assert lq["n_images"] == 3 and lq["n_scored"] == 2 and lq["n_missing"] == 1
    assert al["n_scored"] == 4 and al["n_points"] == n + lq["n_points"]
    assert lq["per_image_mean_mm"] == pytest.approx(
        (exp["LQ/M1002_01"]["mean_mm"] + exp["LQ/F1001_03"]["mean_mm"]) / 2, abs=1e-9)
    assert lq["per_image_mean_std_mm"] == pytest.approx(
        abs(exp["LQ/M1002_01"]["mean_mm"] - exp["LQ/F1001_03"]["mean_mm"]) / 2, abs=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statistic"] == "mean" and summary["aggregate"] == "pooled" and summary["HQ"]["n_scored"] == 2
    assert (out / "per_image.csv").read_text().count("\n") == 6
    # the official submission files, one per image
    i, d = S.read_distances(out / "distances" / "HQ" / "F1001_01_distances.txt")
    e_i, e_d = S.read_distances(conformance_dir / "stirling" / "st01_james_decimated" / "expected_distances.txt")
    np.testing.assert_array_equal(i, e_i)
    np.testing.assert_allclose(d, e_d, atol=TOL)
    # rerun: cached, same numbers; other statistic
    again = S.evaluate_dataset(ds, pred, out, progress=False, statistic="rmse", aggregate="per-image", subset="HQ")
    assert {o.status for o in again.run.outcomes} == {"cached"}
    assert again.per_subset["HQ"]["value_mm"] == hq["per_image_rmse_mm"]
    assert again.per_subset["HQ"]["std_mm"] == hq["per_image_rmse_std_mm"]
    assert "all" not in again.per_subset


def test_dataset_failed_item_does_not_stop_others(conformance_dir, tmp_path):
    ds, pred, _ = _layout(conformance_dir, tmp_path)
    (pred / "HQ" / "F1001_02.txt").write_text("1 2 3\n")
    res = S.evaluate_dataset(ds, pred, tmp_path / "out", subset="HQ", progress=False)
    rows = {r["key"]: r for r in res.rows}
    assert rows["HQ/F1001_02"]["status"] == "failed" and "expected 7 landmarks" in rows["HQ/F1001_02"]["reason"]
    assert rows["HQ/F1001_01"]["status"] == "ok" and res.per_subset["HQ"]["n_failed"] == 1


def test_dataset_bad_layout(tmp_path):
    (tmp_path / "p").mkdir()
    with pytest.raises(InputError, match="no image folder"):
        S.list_images(tmp_path, tmp_path / "p")
    with pytest.raises(InputError, match="not found"):
        S.list_images(tmp_path / "nope", tmp_path / "p")
    with pytest.raises(InputError, match="statistic"):
        S.evaluate_dataset(tmp_path, tmp_path / "p", tmp_path / "o", statistic="max")
    with pytest.raises(InputError, match="aggregate"):
        S.evaluate_dataset(tmp_path, tmp_path / "p", tmp_path / "o", aggregate="images")


# -------------------------------------------------------------------------------------------------------- CLI
def _pair(conformance_dir, case="st01_james_decimated"):
    d = conformance_dir / "stirling" / case
    return ["--scan", str(d / "scan.obj"), "--scan-landmarks", str(d / "scan.lnd"), "--pred", str(d / "pred.obj"),
            "--pred-landmarks", str(d / "pred_lmks.txt")]


def test_cli_single(conformance_dir, tmp_path, capsys):
    out, dist = tmp_path / "o.json", tmp_path / "d.txt"
    assert main(["stirling", *_pair(conformance_dir), "--json", str(out), "--distances", str(dist)]) == 0
    s = json.loads(out.read_text())
    exp = json.loads((conformance_dir / "stirling" / "st01_james_decimated" / "expected.json").read_text())
    for k in ("mean_mm", "median_mm", "std_mm", "rmse_mm"):
        assert abs(s[k] - exp[k]) < TOL
    assert s["n_points"] == exp["n_points"]
    assert dist.read_bytes().count(b"\r\n") == exp["n_points"]
    assert "3D-RMSE 0.6211 mm" in capsys.readouterr().out


def _bad_cli(capsys, argv):
    assert main(["stirling", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facenb: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_bad_input(conformance_dir, tmp_path, capsys):
    d = conformance_dir / "stirling" / "st01_james_decimated"
    args = _pair(conformance_dir)
    # bad .lnd
    bad = tmp_path / "bad.lnd"
    bad.write_text((d / "scan.lnd").read_text().replace(" ", "  ", 1))
    assert "double space" in _bad_cli(capsys, [*args[:2], "--scan-landmarks", str(bad), *args[4:]])
    # wrong landmark count in the prediction
    few = tmp_path / "few.txt"
    few.write_text("\n".join((d / "pred_lmks.txt").read_text().splitlines()[:5]) + "\n")
    assert "expected 7 landmarks" in _bad_cli(capsys, [*args[:6], "--pred-landmarks", str(few)])
    # NaN in the prediction
    mesh = load_mesh(d / "pred.obj")
    v = mesh.vertices.copy()
    v[5, 1] = np.nan
    nanobj = tmp_path / "nan.obj"
    save_obj(nanobj, v, mesh.faces)
    assert "NaN" in _bad_cli(capsys, [*args[:4], "--pred", str(nanobj), *args[6:]])
    # missing file
    assert "not found" in _bad_cli(capsys, [*args[:4], "--pred", str(tmp_path / "none.obj"), *args[6:]])
    # degenerate landmarks
    flat = tmp_path / "flat.txt"
    save_landmarks_txt(flat, np.zeros((7, 3)))
    assert "degenerate" in _bad_cli(capsys, [*args[:6], "--pred-landmarks", str(flat)])
    # mixing modes, missing arguments
    assert "single-pair" in _bad_cli(capsys, [*args, "--dataset", str(tmp_path)])
    assert "missing --pred" in _bad_cli(capsys, args[:4])
    assert "exactly one" in _bad_cli(capsys, args[:6])


def test_cli_dataset(conformance_dir, tmp_path, capsys):
    ds, pred, _ = _layout(conformance_dir, tmp_path)
    rc = main(["stirling", "--dataset", str(ds), "--predictions", str(pred), "--out", str(tmp_path / "o"),
               "--no-progress", "--jobs", "2"])
    cap = capsys.readouterr()
    assert rc == 1  # one image missing
    assert "Stirling/FG2018 HQ: mean (pooled)" in cap.out and "m1003_01" in cap.err
    rc = main(["stirling", "--dataset", str(ds), "--predictions", str(pred), "--out", str(tmp_path / "o2"),
               "--no-progress", "--subset", "HQ", "--statistic", "rmse", "--aggregate", "per-image"])
    assert rc == 0
    assert json.loads((tmp_path / "o2" / "summary.json").read_text())["HQ"]["aggregate"] == "per-image"
    assert "needs --dataset" in _bad_cli(capsys, ["--predictions", str(pred)])


def test_cli_pred_topology(data_mirror, tmp_path, capsys):
    """--pred-topology auto: a FLAME template scored against its own (scaled, moved) surface as the scan gives 0;
    the landmarks come from facenb.landmarks.from_topology."""
    from facenb import landmarks as L

    root = data_mirror / "realy_templates"
    if not (root / "FLAME.obj").is_file():
        pytest.fail(f"realy_templates/FLAME.obj missing in {data_mirror}")
    mesh = load_mesh(root / "FLAME.obj")
    lm = L.from_topology(mesh.vertices, "FLAME", mesh.faces)
    s = 90.0 / L.outer_eye_distance(lm)
    R = _rot(np.random.default_rng(5))
    scan = s * mesh.vertices @ R.T + [3.0, -40.0, 800.0]
    save_obj(tmp_path / "scan.obj", scan, fmt="%.10f")
    lnd = s * lm @ R.T + [3.0, -40.0, 800.0]
    (tmp_path / "scan.lnd").write_text(
        "".join(f"{i + 1} {x!r} {y!r} {z!r}\n" for i, (x, y, z) in enumerate(lnd.tolist())))
    out = tmp_path / "o.json"
    argv = ["stirling", "--scan", str(tmp_path / "scan.obj"), "--scan-landmarks", str(tmp_path / "scan.lnd"),
            "--pred", str(root / "FLAME.obj"), "--json", str(out)]
    assert main([*argv, "--pred-topology", "auto"]) == 0
    summary = json.loads(out.read_text())
    assert summary["n_points"] > 1000 and summary["max_mm"] < 1e-5
    assert main([*argv, "--pred-topology", "BFM09"]) == 2
    assert "BFM09" in capsys.readouterr().err


def test_single_vertex_mask_is_scored():
    """The official script crashes on a one-vertex mask (PyMesh squeezes the result to 0-d); facenb scores it."""
    V, F, lm = _face(6)
    _, centre, _ = S.face_mask(V, lm)
    res = S.evaluate(np.vstack([centre + [0, 0, 2.0], [1e4, 0, 0]]), lm, V, F, lm)
    assert res.n_points == 1 and res.indices.tolist() == [0] and res.mean_mm == res.rmse_mm > 0


def test_dataset_mode_with_topology(data_mirror, tmp_path):
    """Dataset mode with pred_topology: no landmark files needed; a FLAME prediction of its own surface scores 0."""
    from facenb import landmarks as L

    root = data_mirror / "realy_templates"
    if not (root / "FLAME.obj").is_file():
        pytest.fail(f"realy_templates/FLAME.obj missing in {data_mirror}")
    mesh = load_mesh(root / "FLAME.obj")
    lm = L.from_topology(mesh.vertices, "FLAME", mesh.faces)
    s = 90.0 / L.outer_eye_distance(lm)
    ds, pred = tmp_path / "ds", tmp_path / "pred"
    (ds / "Subset_2D_FG2018" / "HQ").mkdir(parents=True)
    (ds / "Subset_2D_FG2018" / "LQ").mkdir(parents=True)
    (ds / "Subset_2D_FG2018" / "HQ" / "M1005_2.jpg").write_bytes(b"")
    (ds / "M_3D_N").mkdir()
    save_obj(ds / "M_3D_N" / "M1005_N.obj", s * mesh.vertices, fmt="%.10f")
    (ds / "annotations" / "M_3D_N").mkdir(parents=True)
    (ds / "annotations" / "M_3D_N" / "m1005_N.lnd").write_text(
        "".join(f"{i + 1} {x!r} {y!r} {z!r}\n" for i, (x, y, z) in enumerate((s * lm).tolist())))
    (pred / "HQ").mkdir(parents=True)
    shutil.copy(root / "FLAME.obj", pred / "HQ" / "M1005_2.obj")
    res = S.evaluate_dataset(ds, pred, tmp_path / "o", subset="HQ", pred_topology="auto", progress=False)
    assert res.rows[0]["status"] == "ok" and res.per_subset["HQ"]["value_mm"] < 1e-5
    res = S.evaluate_dataset(ds, pred, tmp_path / "o2", subset="HQ", progress=False)
    assert res.rows[0]["status"] == "missing" and "landmarks" in res.rows[0]["reason"]
