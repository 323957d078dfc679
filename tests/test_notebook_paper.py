"""The paper reproduction template under papermill: default and non-default parameters."""
import os
from pathlib import Path

import pandas as pd
import pytest

from _notebooks import run_notebook

REPO = Path(__file__).resolve().parents[1]
NB = REPO / "notebooks" / "20_paper_reproduction.ipynb"


def _run(tmp_path, params):
    return run_notebook(NB, tmp_path / "out.ipynb", params, cwd=NB.parent)[0]


def test_default_paper(tmp_path, data_mirror, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    text = _run(tmp_path, {})
    assert "PRNet: 28 claims" in text
    assert "prnet-now-test-median" in text and "notebook 10 (10_now.html)" in text  # NoW claims + the link
    assert "3DDFA_V2 mb05 recomputed by facenb from the pixels of the 16 public sample images" in text
    # the ledger rows travel in the executed notebook (the report channel), equal to build_ledger's
    from facenb import ledger as L
    from facenb import report

    published = report.read_ledger(tmp_path / "out.ipynb")
    expected = L.build_ledger(papers=["PRNet"])
    assert published is not None and "28 ledger rows of PRNet handed to the report" in text
    pd.testing.assert_frame_equal(published.reset_index(drop=True), expected.reset_index(drop=True))


def test_other_paper_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "empty_cache"))
    text = _run(tmp_path, {"paper": "MICA"})
    assert "MICA: 5 claims" in text
    assert "facenb data fetch facescape_benchmark" in text  # a data-dependent section says what to fetch
    assert "10_now.html" in text and "mica-now-test-mean" in text  # the NoW section: its claims, the link to nb 10


def test_licensed_realy_folder_gives_tier_r(tmp_path, conformance_dir, data_mirror, monkeypatch):
    """A REALY-layout folder (the official-output conformance case stands in for the licensed data) turns the
    paper's REALY claims into tier R, with the values the official scorer wrote for that folder."""
    import json

    case = conformance_dir / "realy" / "realy01_hifi3d_topology"
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    text = _run(tmp_path, {"paper": "PRNet", "realy_dir": str(case), "realy_predictions_dir": str(case / "prediction"),
                           "realy_template": "HIFI3D"})
    assert "REALY recomputed for 5 claims of PRNet" in text
    from facenb import report

    led = report.read_ledger(tmp_path / "out.ipynb").set_index("claim_id")
    assert led.loc["prnet-realy-frontal-nose-mean", "tier"] == "R"
    subject = json.loads((case / "expected.json").read_text())["subjects"][0]
    assert abs(led.loc["prnet-realy-frontal-nose-mean", "reproduced"] - subject["nose_mm"]) < 1e-6
    assert led.loc["prnet-realy-frontal-all-mean", "tier"] == "R"


def _bfm_dense_case(root, n_images=2, seed=0):
    """Dense ground truth of the 53215-vertex BFM size (random points: the protocol does not need a face) and a
    noisy prediction per image."""
    import numpy as np

    rng = np.random.default_rng(seed)
    gt, pr = root / "dense_gt", root / "dense_pred"
    gt.mkdir()
    pr.mkdir()
    for i in range(n_images):
        g = np.vstack([rng.uniform(100, 300, 53215), rng.uniform(80, 320, 53215), rng.uniform(-50, 50, 53215)])
        np.save(gt / f"image{i:05d}.npy", g)
        np.save(pr / f"image{i:05d}.npy", g + rng.normal(scale=2.0, size=g.shape))
    return gt, pr


def test_stirling_florence_dense_folders_give_tier_r(tmp_path, data_mirror, monkeypatch):
    """A synthetic Stirling release (`facenb synth stirling`), a complete MICC-layout folder made of the james scan
    and a BFM-sized synthetic dense ground truth turn PRNet's Stirling and Florence claims into tier R and its two
    dense claims into tier S (2 of 2000 images, coverage shown); every value is the scorer's own output, computed
    here by calling the scorers directly, and every row names its source."""
    import shutil

    import numpy as np

    from facenb import report, synth
    from facenb.benchmarks import aflw2000_dense as D
    from facenb.benchmarks import aflw2000_published as AP
    from facenb.benchmarks import florence as F
    from facenb.benchmarks import stirling as St
    from facenb.io import load_mesh
    from test_florence import _fake_micc

    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    if not (data_mirror / AP.DATASET / "keypoints.txt").is_file():
        pytest.skip("aflw2000_3d_2dasl40 (keypoints.txt) not in the mirror")
    st = tmp_path / "stirling"
    synth.synth_stirling(st, subjects=2, images_per_subject=2, methods=["coarse"],
                         sfm_dir=data_mirror / "surrey_face_model")
    m = load_mesh(data_mirror / "james_scan" / "james.obj")
    lm = F.ibug68_from_ljson(data_mirror / "james_scan" / "james.ljson")
    micc, lmk, pred = _fake_micc(tmp_path, (m.vertices, m.faces, lm))
    for ext in (".obj", ".txt"):  # complete the folder (_fake_micc leaves one prediction out)
        shutil.copy(pred / "subject_01" / f"PTZ-Indoor{ext}", pred / "subject_28" / f"PTZ-Indoor{ext}")
    gt, dp = _bfm_dense_case(tmp_path)
    text = _run(tmp_path, {"paper": "PRNet", "stirling_dir": str(st),
                           "stirling_predictions_dir": str(st / "predictions" / "coarse"),
                           "florence_dir": str(micc), "florence_predictions_dir": str(pred),
                           "florence_landmarks_dir": str(lmk), "dense_gt_dir": str(gt),
                           "dense_predictions_dir": str(dp)})
    assert "Stirling recomputed for 2 claims of PRNet (tier R)" in text
    assert "Florence recomputed for 1 claims of PRNet (tier R)" in text
    assert "AFLW2000-3D dense recomputed for 2 claims of PRNet (tier S)" in text
    assert "2/2000 images" in text  # the coverage column of the claim table
    # the peers section ranks PRNet's Stirling and Florence numbers among the published ones, the recomputed beside
    assert "stirling HQ: 6 methods, quoted from data/reported" in text and "PRNet recomputed here (tier R)" in text
    assert "florence all: 1 methods" in text
    led = report.read_ledger(tmp_path / "out.ipynb").set_index("claim_id")
    want = St.evaluate_dataset(st, st / "predictions" / "coarse", tmp_path / "st_again", progress=False).per_subset
    for cid, sub in (("prnet-stirling-hq-mean", "HQ"), ("prnet-stirling-lq-mean", "LQ")):
        assert led.loc[cid, "tier"] == "R"
        assert led.loc[cid, "reproduced"] == pytest.approx(want[sub]["pooled_mean_mm"], rel=1e-12)
        assert "facenb.benchmarks.stirling" in led.loc[cid, "source"]
    fl = F.evaluate_dataset(micc, pred, tmp_path / "fl_again", landmarks_dir=lmk, options=F.PRNET, progress=False)
    row = led.loc["prnet-florence-recon-nme"]
    assert row["tier"] == "R" and row["reproduced"] == pytest.approx(np.mean([r["nme_percent"] for r in fl.rows]))
    assert row["difference"] == pytest.approx(row["reproduced"] - 3.7551)
    assert "facenb.benchmarks.florence (protocol prnet)" in row["source"]
    kp = AP.read_keypoint_vertices(data_mirror / AP.DATASET / "keypoints.txt")
    for cid, preset in (("prnet-aflw2000-nme3d-dense", "2dasl_dense_3d"),
                        ("prnet-aflw2000-recon-nme", "2dasl_reconstruction")):
        vals = []
        for name in ("image00000", "image00001"):
            g, p = np.load(gt / f"{name}.npy"), np.load(dp / f"{name}.npy")
            vals.append(D.dense_nme(g, p, preset, gt_landmarks=g[:, kp]).nme * 100)
        row = led.loc[cid]
        assert row["tier"] == "S" and row["coverage"] == "2/2000 images" and preset in row["source"]
        assert row["reproduced"] == pytest.approx(np.mean(vals), rel=1e-12)
    counts = report.read_ledger(tmp_path / "out.ipynb")["tier"].value_counts()
    assert counts["R"] == 3 and counts["S"] >= 2
