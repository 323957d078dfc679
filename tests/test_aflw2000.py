"""AFLW2000-3D NME: conformance with the official 3DDFA scorer, analytic cases, options, validation, CLI."""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import json
import math
import platform
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facenb.benchmarks import aflw2000 as A
from facenb.cli import main
from facenb.errors import InputError

CASE_KEYS = {"original": ("ori", "expected_nme_ori.npy"), "reannotated": ("reannotated", "expected_nme_re.npy")}


# ------------------------------------------------------------------------------------------ conformance
def _cases(conformance_dir):
    cases = sorted(p for p in (conformance_dir / "aflw2000").iterdir() if (p / "expected.json").is_file())
    assert cases, "no AFLW2000-3D conformance cases found"
    return cases


@pytest.fixture
def gt(data_mirror):
    return A.load_ground_truth(data_mirror / "aflw2000_3d")


@pytest.mark.parametrize("annotations", ["original", "reannotated"])
def test_conformance_numpy1_bit_exact(conformance_dir, gt, annotations):
    key, per_image_file = CASE_KEYS[annotations]
    for case in _cases(conformance_dir):
        exp = json.loads((case / "expected.json").read_text())
        pred_path = case / "pred_pts68.npy"
        before = np.load(pred_path)
        r = A.evaluate(gt, pred_path, annotations=annotations)
        # per image: the official float32 list, to 1e-9 (in fact bit for bit)
        expected = np.load(case / per_image_file)
        assert r.per_image.dtype == np.float32 and r.per_image.shape == (2000,)
        assert np.max(np.abs(r.per_image.astype(np.float64) - expected)) <= 1e-9
        np.testing.assert_array_equal(r.per_image, expected)
        e = exp[key]
        got = [*r.bin_mean, r.mean, r.std, *r.bin_std]
        want = [e["mean_nme_0_30"], e["mean_nme_30_60"], e["mean_nme_60_90"], e["balanced_mean"],
                e["balanced_std"], *e["std_nme_per_bin"]]
        assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-9, (case.name, got, want)
        assert list(r.bin_count) == e["n_per_bin"] == [1312, 383, 305]
        assert r.printed() == e["printed"]
        d = r.as_dict()
        assert d["nme_0_30"] == r.nme_0_30 and d["nme_mean"] == r.mean and d["n_60_90"] == 305
        np.testing.assert_array_equal(np.load(pred_path), before)  # official converts in place; facenb does not


@pytest.mark.parametrize("annotations", ["original", "reannotated"])
def test_conformance_numpy2_variant(conformance_dir, gt, annotations):
    key, per_image_file = CASE_KEYS[annotations]
    for case in _cases(conformance_dir):
        e2 = json.loads((case / "expected.json").read_text())["numpy2_variant"][key]
        r = A.evaluate(gt, case / "pred_pts68.npy", annotations=annotations, arithmetic="numpy2")
        got = [*r.bin_mean, r.mean, r.std]
        want = [e2["mean_nme_0_30"], e2["mean_nme_30_60"], e2["mean_nme_60_90"], e2["balanced_mean"],
                e2["balanced_std"]]
        assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-9, (case.name, got, want)
        numpy1 = np.load(case / per_image_file)
        differ = r.per_image != numpy1
        assert int(differ.sum()) == e2["per_image_nme_n_differing"]
        assert float(np.max(np.abs(r.per_image.astype(np.float64) - numpy1))) == pytest.approx(
            e2["per_image_nme_max_abs_diff_vs_numpy1"], rel=1e-12)


def test_conformance_quirk_second_call(conformance_dir, gt):
    """Calling the official calc_nme twice on one array converts it twice: reproduce that number explicitly."""
    for case in _cases(conformance_dir):
        exp = json.loads((case / "expected.json").read_text())
        once = A.crop_to_image(np.load(case / "pred_pts68.npy"), gt.roi_box)  # what the first call leaves behind
        r = A.evaluate(gt, once, annotations="reannotated", check_frame=False)  # the second call converts again
        assert abs(r.mean_all_images - exp["quirk_second_call_on_mutated_array_mean_nme_percent"]) <= 1e-9


def test_plain_square_differs_from_official(conformance_dir, gt, monkeypatch):
    """The glibc powf emulation matters: with x*x some images change by one float32 ulp (the test can fail)."""
    case = _cases(conformance_dir)[0]
    expected = np.load(case / "expected_nme_ori.npy")
    monkeypatch.setattr(A, "powf_square", lambda x: x * x)
    r = A.evaluate(gt, case / "pred_pts68.npy")
    n = int((r.per_image != expected).sum())
    assert 0 < n < 20


# --------------------------------------------------------------------------------- numerics primitives
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1500), st.integers(0, 2**31 - 1))
def test_pairwise_sum_matches_numpy(n, seed):
    x = np.random.default_rng(seed).normal(size=n).astype(np.float32) * 10
    assert A.pairwise_sum(x[None])[0] == np.add.reduce(x)


def _libm_powf():
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        major, minor = (int(v) for v in libc.gnu_get_libc_version().decode().split(".")[:2])
    except (OSError, AttributeError, ValueError):
        return None
    if (major, minor) < (2, 28):
        return None
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.powf.restype = ctypes.c_float
    libm.powf.argtypes = [ctypes.c_float, ctypes.c_float]
    return libm.powf


def test_powf_square_matches_glibc():
    powf = _libm_powf()
    if powf is None:
        pytest.skip("needs glibc >= 2.28 to compare with the C library's powf")
    rng = np.random.default_rng(3)
    m = np.arange(4097, 5793, 2, dtype=np.float64)  # squares exactly halfway between two float32 numbers
    x = np.concatenate([
        (rng.normal(size=20000) * 50).astype(np.float32),
        rng.integers(0, 0x7F000000, size=20000, dtype=np.uint32).view(np.float32),
        (m * 2.0 ** -3).astype(np.float32), -(m * 2.0 ** 5).astype(np.float32),
        np.float32([0.0, -0.0, 1e-45, -3e-39, 1e-20, 3e19]),
    ])
    ref = np.array([powf(float(v), 2.0) for v in x], dtype=np.float32)
    got = A.powf_square(x)
    np.testing.assert_array_equal(got, ref)
    with np.errstate(over="ignore"):
        assert (got != x * x).sum() > 0  # the emulation is not plain squaring


def test_powf_square_is_within_one_ulp_of_square():
    x = (np.random.default_rng(0).normal(size=100000) * 100).astype(np.float32)
    got, sq = A.powf_square(x), x * x
    assert np.all(np.abs(got.view(np.int32).astype(np.int64) - sq.view(np.int32).astype(np.int64)) <= 1)


# -------------------------------------------------------------------------------------- synthetic ground truth
def _synthetic_gt(n_per_bin=(7, 5, 4), seed=0) -> A.GroundTruth:
    """A GroundTruth whose first images have known boxes and yaws; the rest are copies (2000 rows)."""
    rng = np.random.default_rng(seed)
    n = A.N_IMAGES
    base = rng.uniform(-1, 1, size=(A.N_LANDMARKS, 2))
    pts = np.zeros((n, 3, A.N_LANDMARKS), np.float32)
    roi = np.zeros((n, 4), np.float32)
    for i in range(n):
        w, h = rng.uniform(80, 200), rng.uniform(80, 200)
        cx, cy = rng.uniform(150, 300, size=2)
        p = base.copy()
        p = (p - p.min(0)) / (p.max(0) - p.min(0))  # exactly [0, 1] box
        pts[i, 0] = (cx + (p[:, 0] - 0.5) * w).astype(np.float32)
        pts[i, 1] = (cy + (p[:, 1] - 0.5) * h).astype(np.float32)
        pts[i, 2] = rng.normal(size=A.N_LANDMARKS).astype(np.float32) * 20 + 500
        side = float(np.round(max(w, h) * 1.6))
        roi[i] = [np.round(cx - side / 2), np.round(cy - side / 2), np.round(cx - side / 2) + side,
                  np.round(cy - side / 2) + side]
    yaw = np.concatenate([rng.uniform(-30, 30, n - 600), rng.uniform(30.5, 60, 300) * rng.choice([-1, 1], 300),
                          rng.uniform(61, 200, 300) * rng.choice([-1, 1], 300)]).astype(np.float32)
    yaw[:3] = [30.0, -60.0, 60.5]  # bin edges: 30 -> bin 0, -60 -> bin 1, 60.5 -> bin 2
    re = pts[:, :2] + np.float32(0.5)
    return A.GroundTruth(pts68=pts, pts68_reannotated=re.astype(np.float32), roi_box=roi, yaw=yaw, source="synthetic")


@pytest.fixture(scope="module")
def sgt():
    return _synthetic_gt()


def _box(g):
    w = g[:, 0].max(1).astype(np.float64) - g[:, 0].min(1)
    h = g[:, 1].max(1).astype(np.float64) - g[:, 1].min(1)
    return w, h


def test_yaw_bins_edges():
    np.testing.assert_array_equal(A.yaw_bins(np.array([0, 30, -30, 30.01, 60, -60, 60.01, 95, -351.2])),
                                  [0, 0, 0, 1, 1, 1, 2, 2, 2])


@pytest.mark.parametrize("normalization", ["bbox", "interocular", "diagonal"])
@pytest.mark.parametrize("arithmetic", ["numpy1", "numpy2", "float64"])
def test_constant_offset_image_coords(sgt, normalization, arithmetic):
    """prediction = GT + (3, -4) px -> every landmark is 5 px off -> NME = 5 / L exactly (up to rounding)."""
    gt2 = sgt.pts68[:, :2].astype(np.float64)
    pred = gt2 + np.array([3.0, -4.0])[None, :, None]
    r = A.evaluate(sgt, pred, coords="image", normalization=normalization, arithmetic=arithmetic)
    w, h = _box(sgt.pts68)
    if normalization == "bbox":
        L = np.sqrt(w * h)
    elif normalization == "diagonal":
        L = np.hypot(w, h)
    else:
        L = np.linalg.norm(sgt.pts68[:, :2, 36].astype(np.float64) - sgt.pts68[:, :2, 45], axis=1)
    np.testing.assert_allclose(r.per_image, 5.0 / L, rtol=2e-6)
    bins = A.yaw_bins(sgt.yaw)
    assert r.bin_count == tuple(int((bins == b).sum()) for b in range(3))
    means = [100 * float(np.mean(5.0 / L[bins == b])) for b in range(3)]
    assert r.bin_mean == pytest.approx(means, rel=2e-6)
    assert r.mean == pytest.approx(np.mean(means), rel=2e-6)
    assert r.std == pytest.approx(np.std(means), rel=1e-4, abs=1e-7)
    assert r.bin_std == pytest.approx([100 * float(np.std(5.0 / L[bins == b])) for b in range(3)], rel=1e-3)


def test_crop_coords_offset(sgt):
    """A constant offset (dx, dy) in crop pixels is (dx sx_scale, dy sy_scale) in image pixels."""
    roi = sgt.roi_box.astype(np.float64)
    scale = (roi[:, 2] - roi[:, 0]) / 120  # boxes are square here
    g = sgt.pts68[:, :2].astype(np.float64)
    crop = (g - roi[:, None, :2].transpose(0, 2, 1)) / scale[:, None, None]
    pred = crop + np.array([0.6, 0.8])[None, :, None]  # 1 crop pixel off
    r = A.evaluate(sgt, pred, coords="crop", arithmetic="float64")
    w, h = _box(sgt.pts68)
    np.testing.assert_allclose(r.per_image, scale / np.sqrt(w * h), rtol=1e-9)
    r32 = A.evaluate(sgt, pred.astype(np.float32))  # official float32 path: the same to float32 rounding
    np.testing.assert_allclose(r32.per_image, scale / np.sqrt(w * h), rtol=2e-4)
    # 3D in crop coordinates: z is scaled by the mean roi scale; a constant z offset (in crop units) cancels
    z = sgt.pts68[:, 2].astype(np.float64) / scale[:, None] + 7.0
    pred3 = np.concatenate([pred, z[:, None, :]], axis=1)
    r3 = A.evaluate(sgt, pred3, coords="crop", error="3d", arithmetic="float64")
    np.testing.assert_allclose(r3.per_image, scale / np.sqrt(w * h), rtol=1e-9)


def test_3d_error(sgt):
    """z offset is removed; an alternating +-e z error adds in quadrature: sqrt(d^2 + e^2)."""
    g = sgt.pts68.astype(np.float64)
    pred = g.copy()
    pred[:, 0] += 3.0
    pred[:, 1] -= 4.0
    pred[:, 2] += 1000.0 + np.where(np.arange(68) % 2 == 0, 12.0, -12.0)[None, :]
    w, h = _box(sgt.pts68)
    r2 = A.evaluate(sgt, pred, coords="image", arithmetic="float64")
    r3 = A.evaluate(sgt, pred, coords="image", error="3d", arithmetic="float64")
    np.testing.assert_allclose(r2.per_image, 5.0 / np.sqrt(w * h), rtol=1e-12)
    np.testing.assert_allclose(r3.per_image, 13.0 / np.sqrt(w * h), rtol=1e-12)
    r3_32 = A.evaluate(sgt, pred.astype(np.float32), coords="image", error="3d")
    np.testing.assert_allclose(r3_32.per_image, 13.0 / np.sqrt(w * h), rtol=1e-4)


def test_reannotated_uses_other_gt(sgt):
    g = sgt.pts68[:, :2].astype(np.float64)
    r_ori = A.evaluate(sgt, g, coords="image", arithmetic="float64")
    r_re = A.evaluate(sgt, g, coords="image", annotations="reannotated", arithmetic="float64")
    assert np.all(r_ori.per_image == 0) and r_ori.mean == 0
    w, h = _box(sgt.pts68_reannotated)
    d = np.linalg.norm(sgt.pts68_reannotated.astype(np.float64) - g, axis=1).mean(axis=1)  # ~ sqrt(0.5) px
    np.testing.assert_allclose(d, math.sqrt(0.5), rtol=1e-4)
    np.testing.assert_allclose(r_re.per_image, d / np.sqrt(w * h), rtol=1e-12)


def test_layouts_dtypes_and_no_mutation(sgt):
    rng = np.random.default_rng(1)
    pred = (sgt.pts68[:, :2] + rng.normal(size=(2000, 2, 68)).astype(np.float32) * 3).astype(np.float32)
    pred3 = np.concatenate([pred, sgt.pts68[:, 2:]], axis=1)
    ref = A.evaluate(sgt, pred, coords="image")
    for variant in (pred.transpose(0, 2, 1), pred3, pred3.transpose(0, 2, 1)):
        keep = variant.copy()
        r = A.evaluate(sgt, variant, coords="image")
        np.testing.assert_array_equal(r.per_image, ref.per_image)
        np.testing.assert_array_equal(variant, keep)
    r64 = A.evaluate(sgt, pred.astype(np.float64), coords="image")
    np.testing.assert_allclose(r64.per_image, ref.per_image, rtol=1e-6)
    rint = A.evaluate(sgt, np.round(pred).astype(np.int32), coords="image")  # integers are accepted as float64
    assert rint.per_image.shape == (2000,)


def test_indices_subset(sgt):
    g = sgt.pts68[:, :2].astype(np.float64) + 2.0
    full = A.evaluate(sgt, g, coords="image", arithmetic="float64")
    idx = np.array([0, 1, 2, 1500, 1700, 1900])
    sub = A.evaluate(sgt, g[idx], coords="image", arithmetic="float64", indices=idx)
    np.testing.assert_array_equal(sub.per_image, full.per_image[idx])
    assert sub.bin_count == (1, 2, 3)  # yaw 30 -> bin 0; -60 and row 1500 -> bin 1; 60.5, rows 1700, 1900 -> bin 2
    one_bin = A.evaluate(sgt, g[:1], coords="image", indices=[0])
    assert one_bin.bin_count == (1, 0, 0) and math.isnan(one_bin.mean) and math.isnan(one_bin.nme_30_60)
    assert one_bin.as_dict()["nme_mean"] is None


def test_compare_options_table(sgt):
    g = sgt.pts68.astype(np.float64) + 1.0
    df = A.compare_options(sgt, g, options=A.AFLW2000Options(coords="image"))
    assert list(df["variant"]) == ["official", "annotations=reannotated", "normalization=interocular",
                                   "normalization=diagonal", "error=3d", "arithmetic=numpy2", "arithmetic=float64"]
    # bbox < interocular distance? no: diagonal > sqrt(wh) always, so its NME is smaller
    assert (df.loc[3, ["nme_0_30", "nme_30_60", "nme_60_90"]].to_numpy()
            < df.loc[0, ["nme_0_30", "nme_30_60", "nme_60_90"]].to_numpy()).all()


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("shape", [(2000, 68), (2000, 4, 68), (2000, 2, 67), (2000, 67, 2), (1999, 2, 68),
                                   (2, 2000, 68)])
def test_bad_shapes(sgt, shape):
    with pytest.raises(InputError) as e:
        A.evaluate(sgt, np.zeros(shape, np.float32))
    assert "\n" not in str(e.value) and "fix:" in str(e.value)


def test_nan_and_dtype_and_options(sgt, tmp_path):
    p = np.zeros((2000, 2, 68), np.float32)
    p[17, 1, 3] = np.nan
    with pytest.raises(InputError, match="NaN or Inf.*image 17"):
        A.evaluate(sgt, p)
    with pytest.raises(InputError, match="real numbers"):
        A.evaluate(sgt, np.zeros((2000, 2, 68), complex))
    with pytest.raises(InputError, match="real numbers"):
        A.evaluate(sgt, np.full((2000, 2, 68), "a"))
    ok = np.zeros((2000, 2, 68), np.float32)
    with pytest.raises(InputError, match="annotations='ori'"):
        A.evaluate(sgt, ok, annotations="ori")
    with pytest.raises(InputError, match="needs predictions with z"):
        A.evaluate(sgt, ok, error="3d")
    with pytest.raises(InputError, match="only the original annotation"):
        A.evaluate(sgt, np.zeros((2000, 3, 68)), error="3d", annotations="reannotated")
    with pytest.raises(InputError, match="distinct rows"):
        A.evaluate(sgt, ok[:2], indices=[3, 3])
    with pytest.raises(InputError, match="2 images"):
        A.evaluate(sgt, ok[:2], indices=[1, 2, 3])
    with pytest.raises(InputError, match="not found"):
        A.evaluate(sgt, tmp_path / "missing.npy")
    (tmp_path / "p.txt").write_text("1 2 3")
    with pytest.raises(InputError, match=r"\.npy"):
        A.evaluate(sgt, tmp_path / "p.txt")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="cannot read"):
        A.evaluate(sgt, tmp_path / "bad.npy")


def test_bad_ground_truth(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="folder not found"):
        A.load_ground_truth(tmp_path / "nope")
    with pytest.raises(InputError, match="file not found"):
        A.load_ground_truth(tmp_path)
    g = _synthetic_gt()
    np.save(tmp_path / A.GT_FILES["pts68"], g.pts68[:, :2])
    np.save(tmp_path / A.GT_FILES["pts68_reannotated"], g.pts68_reannotated)
    np.save(tmp_path / A.GT_FILES["roi_box"], g.roi_box)
    np.save(tmp_path / A.GT_FILES["pose"], g.yaw)
    with pytest.raises(InputError, match=r"shape \(2000, 2, 68\), expected \(2000, 3, 68\)"):
        A.load_ground_truth(tmp_path)
    np.save(tmp_path / A.GT_FILES["pts68"], g.pts68)
    loaded = A.load_ground_truth(tmp_path)
    np.testing.assert_array_equal(loaded.roi_box, g.roi_box)
    monkeypatch.delenv("FACENB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "empty_cache"))  # no download cache either
    with pytest.raises(InputError, match="FACENB_DATA_MIRROR"):
        A.load_ground_truth()
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(tmp_path.parent))  # a mirror without aflw2000_3d/
    with pytest.raises(InputError, match="facenb data fetch aflw2000_3d"):
        A.load_ground_truth()


# ----------------------------------------------------------------------------------------------------- CLI
def _write_gt(folder, g):
    folder.mkdir()
    for key, arr in (("pts68", g.pts68), ("pts68_reannotated", g.pts68_reannotated), ("roi_box", g.roi_box),
                     ("pose", g.yaw)):
        np.save(folder / A.GT_FILES[key], arr)


def test_cli_json_and_table(tmp_path, capsys):
    g = _synthetic_gt()
    _write_gt(tmp_path / "gt", g)
    pred = g.pts68[:, :2].astype(np.float64) + np.array([3.0, 4.0])[None, :, None]
    np.save(tmp_path / "pred.npy", pred.transpose(0, 2, 1))  # (2000, 68, 2)
    rc = main(["aflw2000", "--pred", str(tmp_path / "pred.npy"), "--coords", "image", "--gt-dir",
               str(tmp_path / "gt"), "--json", str(tmp_path / "out.json"), "--per-image", str(tmp_path / "nme.npy")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "balanced" in out and "0-30" in out
    d = json.loads((tmp_path / "out.json").read_text())
    for k in ("nme_0_30", "nme_30_60", "nme_60_90", "nme_mean", "nme_std", "n_0_30", "n_30_60", "n_60_90"):
        assert k in d
    w, h = _box(g.pts68)
    assert d["nme_mean"] == pytest.approx(np.mean([100 * np.mean(5 / np.sqrt(w * h)[A.yaw_bins(g.yaw) == b])
                                                   for b in range(3)]), rel=1e-5)
    assert d["n_0_30"] + d["n_30_60"] + d["n_60_90"] == 2000
    assert np.load(tmp_path / "nme.npy").shape == (2000,)


@pytest.mark.parametrize("shape", [(2000, 5, 68), (10, 2, 68)])
def test_cli_bad_input_exit_2(tmp_path, capsys, shape):
    g = _synthetic_gt()
    _write_gt(tmp_path / "gt", g)
    np.save(tmp_path / "pred.npy", np.zeros(shape, np.float32))
    rc = main(["aflw2000", "--pred", str(tmp_path / "pred.npy"), "--gt-dir", str(tmp_path / "gt")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facenb: error:") and "pred.npy" in err[0]


def test_cli_subprocess_missing_gt(tmp_path):
    np.save(tmp_path / "pred.npy", np.zeros((2000, 2, 68), np.float32))
    proc = subprocess.run([sys.executable, "-m", "facenb.cli", "aflw2000", "--pred", str(tmp_path / "pred.npy"),
                           "--gt-dir", str(tmp_path / "none")], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "ground-truth folder not found" in lines[0] and "Traceback" not in proc.stderr


def test_cli_conformance(conformance_dir, data_mirror, tmp_path):
    case = _cases(conformance_dir)[0]
    rc = main(["aflw2000", "--pred", str(case / "pred_pts68.npy"), "--annotations", "reannotated", "--gt-dir",
               str(data_mirror / "aflw2000_3d"), "--json", str(tmp_path / "o.json")])
    assert rc == 0
    d = json.loads((tmp_path / "o.json").read_text())
    e = json.loads((case / "expected.json").read_text())["reannotated"]
    assert abs(d["nme_mean"] - e["balanced_mean"]) <= 1e-9 and abs(d["nme_std"] - e["balanced_std"]) <= 1e-9
    assert [d["n_0_30"], d["n_30_60"], d["n_60_90"]] == e["n_per_bin"]


# ------------------------------------------------------------ argument order, options, result API, frame check
def test_options_and_argument_order(sgt):
    g = sgt.pts68.astype(np.float64) + np.float64(0.75)
    opts = A.AFLW2000Options(coords="image", arithmetic="float64")
    assert A.OFFICIAL.is_official and not opts.is_official
    new = A.evaluate(sgt, g, opts)
    legacy = A.evaluate(g, sgt, coords="image", arithmetic="float64")  # the earlier order still works
    np.testing.assert_array_equal(new.per_image, legacy.per_image)
    assert A.evaluate(sgt, g, A.OFFICIAL, coords="image", arithmetic="float64").mean == new.mean
    with pytest.raises(InputError, match="annotations='ori'"):
        A.AFLW2000Options(annotations="ori")
    with pytest.raises(InputError, match="unknown option"):
        A.evaluate(sgt, g, opts, coord="image")
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.coords = "crop"


def test_result_summary_printed_frame(sgt):
    g = sgt.pts68.astype(np.float64) + np.float64(0.75)
    r = A.evaluate(sgt, g, A.AFLW2000Options(coords="image", arithmetic="float64"))
    s = r.summary()
    assert all(not isinstance(v, (list, dict)) for v in s.values())
    assert s["nme_median"] == pytest.approx(np.median(r.per_image) * 100)
    assert s["n_0_30"] + s["n_30_60"] + s["n_60_90"] == s["n_images"] == 2000
    df = r.to_frame()
    assert len(df) == 2000 and list(df.columns) == ["image_index", "yaw", "bin", "nme"]
    assert df.groupby("bin")["nme"].mean()["30-60"] == pytest.approx(r.bin_mean[1])
    assert len(r.printed()) == 4


def test_crop_coordinates_declared_as_image_are_refused(sgt):
    """Issue 10 item 7: crop-pixel predictions passed with coords='image' gave 154.9 % silently."""
    g = sgt.pts68.astype(np.float64)
    roi = sgt.roi_box.astype(np.float64)
    crop = g.copy()  # the exact inverse of the crop -> image mapping
    crop[:, 0] = (g[:, 0] - roi[:, [0]]) * A.CROP_SIZE / (roi[:, [2]] - roi[:, [0]])
    crop[:, 1] = (g[:, 1] - roi[:, [1]]) * A.CROP_SIZE / (roi[:, [3]] - roi[:, [1]])
    assert A.evaluate(sgt, crop, A.AFLW2000Options(arithmetic="float64")).mean < 1e-6  # right frame: fine
    with pytest.raises(InputError, match="look like 120x120 crop pixels") as e:
        A.evaluate(sgt, crop, coords="image")
    assert "coords='crop'" in str(e.value)
    with pytest.raises(InputError, match="look like image pixels"):
        A.evaluate(sgt, g)  # image pixels declared as crop (the official default)
    shuffled = g[np.random.default_rng(0).permutation(2000)]
    with pytest.raises(InputError, match="neither frame fits"):
        A.evaluate(sgt, shuffled, coords="image")
    # off by design: the number is computed anyway
    assert A.evaluate(sgt, crop, coords="image", check_frame=False).mean > 50
