"""The 2DASL release (PRNet, 3DDFA, 2DASL on 40 AFLW2000-3D images): reader, rows, official NME.

Every number is checked against an independent plain-numpy computation on the raw files written here (scipy only
to read the .mat files), never against hard-coded values."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from facenb.benchmarks import aflw2000 as A
from facenb.benchmarks import aflw2000_published as P
from facenb.errors import InputError

BINS = ("0-30", "30-60", "60-90")


@pytest.fixture(scope="module")
def release(request):
    from conftest import mirror_root, need

    mirror = need(mirror_root(), "public data mirror")
    root = mirror / P.DATASET
    if not root.is_dir():
        need(root, "aflw2000_3d_2dasl40 in the data mirror")
    gt = A.load_ground_truth(mirror / "aflw2000_3d")
    return root, gt, P.load(root, gt)


def _plain(root: Path, gt_dir: Path, annotations: str):
    """Independent reference: read the raw files and compute the 3DDFA NME with plain numpy, float64."""
    text = (root / "keypoints.txt").read_text().replace(",", " ").split()
    offsets = np.array([int(t) for t in text]).reshape(68, 3)
    vid = (offsets[:, 2] + 1) // 3 - 1  # MATLAB: index = (pts(3,:) + 1) / 3, 1-based -> 0-based
    pts = np.load(gt_dir / "AFLW2000-3D.pts68.npy")
    ann = pts if annotations == "original" else np.load(gt_dir / "AFLW2000-3D-Reannotated.pts68.npy")
    yaw = np.load(gt_dir / "AFLW2000-3D.pose.npy")
    names = sorted(p.stem for p in (root / "results/AFLW-2000-3D_grdth").glob("*.jpg"))
    out = {m: [] for m in P.METHODS}
    rows, yaws = [], []
    for n in names:
        g68 = loadmat(root / f"results/AFLW-2000-3D_grdth/{n}.mat")["pt3d_68"]
        row = [i for i in range(len(pts)) if np.array_equal(pts[i], g68)]
        assert len(row) == 1
        rows.append(row[0])
        yaws.append(abs(float(yaw[row[0]])))
        g = ann[row[0], :2].astype(np.float64)
        size = np.sqrt((g[0].max() - g[0].min()) * (g[1].max() - g[1].min()))
        preds = {"PRNet": np.loadtxt(root / f"results/PRNet_results/kpt/{n}_kpt.txt")[:, :2].T}
        for m in ("3DDFA", "2DASL"):
            preds[m] = loadmat(root / f"results/{m}_results/{n}.mat")["vertex"][:2, vid].astype(np.float64)
        for m, p in preds.items():
            out[m].append(np.mean(np.sqrt(((p - g) ** 2).sum(axis=0))) / size * 100)
    yaws = np.array(yaws)
    bins = np.where(yaws <= 30, 0, np.where(yaws <= 60, 1, 2))
    return names, np.array(rows), {m: np.array(v) for m, v in out.items()}, bins


def test_keypoint_vertices_match_the_matlab_arithmetic(release):
    root, _, pub = release
    text = (root / "keypoints.txt").read_text().replace(",", " ").split()
    mat = np.array([int(t) for t in text], float).reshape(68, 3).T + 1  # reshape(pts, 3, 68) + 1
    index_1based = mat[2] / 3
    np.testing.assert_array_equal(pub.keypoint_vertices + 1, index_1based)
    assert pub.keypoint_vertices.dtype.kind == "i" and len(np.unique(pub.keypoint_vertices)) == 68


def test_reader_rows_and_landmarks(release):
    root, gt, pub = release
    names, rows, _, _ = _plain(root, Path(gt.source), "original")
    assert pub.names == tuple(names) and pub.n_images == 40
    np.testing.assert_array_equal(pub.rows, rows)
    np.testing.assert_array_equal(gt.pts68[pub.rows], pub.pt3d_68)
    n = names[7]
    v = loadmat(root / f"results/2DASL_results/{n}.mat")["vertex"]
    np.testing.assert_array_equal(pub.landmarks["2DASL"][7], v[:, pub.keypoint_vertices])
    np.testing.assert_array_equal(pub.dense("3DDFA", n)[:, pub.keypoint_vertices], pub.landmarks["3DDFA"][7])
    kpt = np.loadtxt(root / f"results/PRNet_results/kpt/{n}_kpt.txt")
    np.testing.assert_array_equal(pub.landmarks["PRNet"][7], kpt.T)
    for m in P.METHODS:
        assert pub.landmarks[m].shape == (40, 3, 68)


@pytest.mark.parametrize("annotations", ["original", "reannotated"])
def test_nme_of_all_three_methods_equals_plain_numpy(release, annotations):
    root, gt, pub = release
    _, _, ref, bins = _plain(root, Path(gt.source), annotations)
    res = P.score(pub, gt, annotations)
    again = P.score(P.load(root, gt), gt, annotations)  # deterministic: a fresh read gives the same bits
    table = P.summary_table(res)
    for m in P.METHODS:
        np.testing.assert_array_equal(res[m].per_image, again[m].per_image)
        np.testing.assert_allclose(np.asarray(res[m].per_image, np.float64) * 100, ref[m], rtol=1e-5)
        t = table[m]
        assert t["n_images"] == 40
        assert t["mean"] == pytest.approx(ref[m].mean(), rel=1e-5)
        assert t["median"] == pytest.approx(np.median(ref[m]), rel=1e-5)
        for b, name in enumerate(BINS):
            count, mean = t["bins"][name]
            assert count == int((bins == b).sum())
            assert mean == pytest.approx(ref[m][bins == b].mean(), rel=1e-5)
        assert t["balanced"] == pytest.approx(np.mean([ref[m][bins == b].mean() for b in range(3)]), rel=1e-5)
    # mostly frontal: most images in the first bin (what the text output warns about)
    assert table["PRNet"]["bins"]["0-30"][0] > 30


def test_published_reference_has_sources():
    ref = P.published_reference()
    for m in P.METHODS:
        assert ref[m] is not None and ref[m]["value"] > 1 and ":" in ref[m]["source"]


def test_read_keypoint_vertices_rejects_bad_files(tmp_path):
    f = tmp_path / "keypoints.txt"
    f.write_text(", ".join(str(i) for i in range(204)) + ",")
    assert (P.read_keypoint_vertices(f) == np.arange(68)).all()
    f.write_text(", ".join(str(i + 1) for i in range(204)))
    with pytest.raises(InputError, match="triples"):
        P.read_keypoint_vertices(f)
    f.write_text("1, 2, 3")
    with pytest.raises(InputError, match="expected 204"):
        P.read_keypoint_vertices(f)
    with pytest.raises(InputError, match="not the 2DASL release"):
        P.load(tmp_path, gt=A.GroundTruth(*(np.zeros(s, np.float32) for s in ((2000, 3, 68), (2000, 2, 68),
                                                                                (2000, 4), (2000,)))))


def test_cli_published_json_and_text(release, tmp_path):
    root, gt, _ = release
    out = tmp_path / "pub.json"
    env = {**os.environ, "FACENB_DATA_MIRROR": str(root.parent)}
    proc = subprocess.run([sys.executable, "-m", "facenb.cli", "aflw2000", "--published", "2dasl40", "--json",
                           str(out)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(out.read_text())
    _, _, ref, _ = _plain(root, Path(gt.source), "original")
    assert set(d) == set(P.METHODS)
    for m in P.METHODS:
        assert d[m]["n_images"] == 40 and list(d[m]["bins"]) == list(BINS)
        assert d[m]["mean"] == pytest.approx(ref[m].mean(), rel=1e-5)
    assert "cannot confirm a 2000-image number" in proc.stdout
    for m, r in P.published_reference().items():
        assert r["source"] in proc.stdout and f"{r['value']:.2f}" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "facenb.cli", "aflw2000", "--published", "2dasl40", "--coords",
                          "image"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("facenb: error:") and "Traceback" not in bad.stderr


def test_reproduced_vs_reported_rows_say_where_each_number_comes_from(release):
    """The notebook's last table: the subset's balanced means beside the published 2000-image values, and the
    reported 3DDFA-V2 rows quoted; a section without its inputs adds no row."""
    import math

    import pandas as pd

    root, gt, pub = release
    table = P.summary_table(P.score(pub, gt))
    reported = pd.DataFrame([{"benchmark": "aflw2000_3d", "method": "3DDFA-V2 (MobileNet)", "split": "original",
                              "region": "balanced", "value": 3.56, "source_ref": "x"},
                             {"benchmark": "now", "method": "3DDFA-V2", "split": "original", "region": "all",
                              "value": 1.0, "source_ref": "y"}])
    rows = P.reproduced_vs_reported(table=table, published=pub, reported=reported)
    assert [r["what"].split(",")[0] for r in rows] == list(P.METHODS) + ["3DDFA-V2 (MobileNet)"]
    ref = P.published_reference()
    for r, m in zip(rows, P.METHODS):
        assert r["reproduced"] == table[m]["balanced"] and f"({pub.n_images} images:" in r["what"]
        assert r["reported"] == ref[m]["value"] and r["source"] == ref[m]["source"]
        assert r["provenance"].startswith("reproduced: recomputed from the method's released predictions")
    assert math.isnan(rows[-1]["reproduced"]) and rows[-1]["reported"] == 3.56 and "quoted" in rows[-1]["provenance"]
    assert P.reproduced_vs_reported(reported=reported.iloc[:0]) == []
