"""facenb.reproduction: licensed data -> tier R for the paper notebook's Stirling, Florence and AFLW2000-3D dense
claims, each checked against the scorer's own output computed independently here (synthetic Stirling release from
`facenb synth stirling`, a MICC-layout folder made of the james scan, synthetic dense arrays)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from facenb import InputError
from facenb import ledger as L
from facenb import reproduction as Rp


@pytest.fixture(scope="module")
def stirling_release(tmp_path_factory):
    from conftest import mirror_root, need

    from facenb import synth

    sfm = need(mirror_root() / "surrey_face_model", "public data mirror")
    root = tmp_path_factory.mktemp("stirling")
    synth.synth_stirling(root, subjects=2, images_per_subject=2, methods=["precise"], sfm_dir=sfm)
    return root, root / "predictions" / "precise"


def _pooled_mean_by_hand(root, preds, subset):
    """Independent: the per-image scorer (evaluate_files) on every image of the subset, distances pooled."""
    from facenb.benchmarks import stirling as St

    d = []
    for img in sorted((root / "Real_images__Subset_2D_FG2018" / subset).glob("*.jpg")):
        subject = img.stem.split("_")[0]
        scan = next(root.glob(f"?_3D_N/{subject}_N.obj"))
        lnd = next(root.glob(f"annotations/?_3D_N/{subject}_N.lnd"))
        res = St.evaluate_files(scan, lnd, preds / subset / f"{img.stem}.obj", preds / subset / f"{img.stem}.txt")
        d.append(res.distances)
    d = np.concatenate(d)
    return float(d.mean()), len(d)


def test_stirling_recompute_is_the_scorer_output(stirling_release, tmp_path):
    root, preds = stirling_release
    got = Rp.stirling_recompute("PRNet", root, preds, tmp_path / "out")
    assert set(got) == {"prnet-stirling-hq-mean", "prnet-stirling-lq-mean"}
    for cid, subset in (("prnet-stirling-hq-mean", "HQ"), ("prnet-stirling-lq-mean", "LQ")):
        value, tier, source = got[cid]
        want, n = _pooled_mean_by_hand(root, preds, subset)
        assert tier == "R" and value == pytest.approx(want, rel=1e-12)
        assert "facenb.benchmarks.stirling" in source and f"{n} masked scan vertices" in source
    led = L.build_ledger(papers=["PRNet"], recomputed=got, subsets={}).set_index("claim_id")
    row = led.loc["prnet-stirling-hq-mean"]
    assert row["tier"] == "R" and row["difference"] == pytest.approx(got["prnet-stirling-hq-mean"][0] - 2.06)
    assert row["coverage"] == "" and L.tier_counts(led.reset_index())["R"] == 2


def test_stirling_missing_prediction_is_a_subset(stirling_release, tmp_path):
    root, preds = stirling_release
    partial = tmp_path / "preds"
    shutil.copytree(preds, partial)
    (partial / "HQ" / "M1002_01.obj").unlink()
    got = Rp.stirling_recompute("PRNet", root, partial, tmp_path / "out")
    value, tier, source, coverage = got["prnet-stirling-hq-mean"]
    assert tier == "S" and coverage == "1/2 images"
    assert got["prnet-stirling-lq-mean"][1] == "R"
    assert Rp.stirling_recompute("MICA", root, preds, tmp_path / "mica") == {}  # MICA's seed has no Stirling claim


@pytest.fixture(scope="module")
def james():
    from conftest import mirror_root, need

    from facenb.benchmarks import florence as F
    from facenb.io import load_mesh

    d = need(mirror_root() / "james_scan", "public data mirror")
    m = load_mesh(d / "james.obj")
    return m.vertices, m.faces, F.ibug68_from_ljson(d / "james.ljson")


def test_florence_recompute_is_the_scorer_output(james, tmp_path):
    from test_florence import _fake_micc

    from facenb.benchmarks import florence as F
    from facenb.io import load_mesh

    micc, lmk, pred = _fake_micc(tmp_path, james)
    got = Rp.florence_recompute("PRNet", micc, pred, tmp_path / "out", landmarks_dir=lmk)
    value, tier, source, coverage = got["prnet-florence-recon-nme"]
    assert tier == "S" and coverage == "3/4 predictions"  # _fake_micc leaves one prediction out
    # complete the folder: tier R, value = mean NME of the PRNet protocol over the four predictions, by hand
    for ext in (".obj", ".txt"):
        shutil.copy(pred / "subject_01" / f"PTZ-Indoor{ext}", pred / "subject_28" / f"PTZ-Indoor{ext}")
    got = Rp.florence_recompute("PRNet", micc, pred, tmp_path / "out2", landmarks_dir=lmk)
    assert set(got) == {"prnet-florence-recon-nme"}
    value, tier, source = got["prnet-florence-recon-nme"]
    v, f, lm = james
    want = []
    for s in ("subject_01", "subject_28"):
        for setting in F.SETTINGS[:2]:
            p = load_mesh(pred / s / f"{setting}.obj")
            want.append(F.evaluate(v, f, lm, p.vertices, p.faces, F.PRNET,
                                   pred_landmarks68=np.loadtxt(pred / s / f"{setting}.txt"),
                                   subject=int(s[-2:])).nme_percent)
    assert tier == "R" and value == pytest.approx(np.mean(want), rel=1e-9)
    assert "protocol prnet" in source and "4 predictions" in source


def _dense_case(tmp_path, n_images=3, n=400, seed=0):
    rng = np.random.default_rng(seed)
    gt, pr = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pr.mkdir()
    lms = {}
    for i in range(n_images):
        name = f"image{i:05d}"
        g = np.vstack([rng.uniform(100, 300, n), rng.uniform(80, 320, n), rng.uniform(-50, 50, n)])
        p = g + rng.normal(scale=2.0, size=g.shape)
        np.save(gt / f"{name}.npy", g)
        np.save(pr / f"{name}.npy", p)
        lms[name] = g[:, rng.choice(n, 68, replace=False)]
    return gt, pr, lms


def test_dense_recompute_by_hand(tmp_path):
    gt, pr, lms = _dense_case(tmp_path)
    got = Rp.dense_recompute("PRNet", gt, pr, gt_landmarks=lms)
    assert set(got) == {"prnet-aflw2000-nme3d-dense", "prnet-aflw2000-recon-nme"}
    value, tier, source, coverage = got["prnet-aflw2000-nme3d-dense"]
    assert tier == "S" and coverage == "3/2000 images" and "2dasl_dense_3d" in source
    want = []
    for name, lm in lms.items():  # 2DASL dense 3D: z minus its minimum per set, mean 3D error / sqrt(w h) of lm box
        g, p = np.load(gt / f"{name}.npy"), np.load(pr / f"{name}.npy")
        g[2] -= g[2].min()
        p[2] -= p[2].min()
        w, h = np.ptp(lm[0]), np.ptp(lm[1])
        want.append(100 * np.linalg.norm(g - p, axis=0).mean() / np.sqrt(w * h))
    assert value == pytest.approx(np.mean(want), rel=1e-12)
    from facenb.benchmarks import aflw2000_dense as D

    rec = got["prnet-aflw2000-recon-nme"]
    want = np.mean([D.dense_nme(np.load(gt / f"{n}.npy"), np.load(pr / f"{n}.npy"), "2dasl_reconstruction").nme
                    for n in lms]) * 100
    assert rec[0] == pytest.approx(want, rel=1e-12) and "2dasl_reconstruction" in rec[2]


def test_dense_recompute_errors(tmp_path):
    gt, pr, _ = _dense_case(tmp_path)
    with pytest.raises(InputError, match="53215-vertex BFM"):
        Rp.dense_recompute("PRNet", gt, pr, keypoints=_keypoints(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .npy or .mat"):
        Rp.dense_recompute("PRNet", gt, empty)
    other = tmp_path / "other"
    other.mkdir()
    np.save(other / "x.npy", np.zeros((3, 5)))
    with pytest.raises(InputError, match="both a dense ground truth and a dense prediction"):
        Rp.dense_recompute("PRNet", gt, other)


def _keypoints(tmp_path):
    """A keypoints.txt in 2DASL's format (offsets 3v, 3v+1, 3v+2 of 68 BFM vertices), made here."""
    v = np.arange(68) * 700 + 11
    p = tmp_path / "keypoints.txt"
    p.write_text("\n".join(str(int(x)) for x in np.stack([3 * v, 3 * v + 1, 3 * v + 2], 1).ravel()))
    return p


def test_dense_landmarks_from_the_bfm_keypoints(tmp_path):
    """Without gt_landmarks, a 53215-vertex dense ground truth gives its 68 landmarks at the keypoint vertices."""
    rng = np.random.default_rng(1)
    gt, pr = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pr.mkdir()
    g = np.vstack([rng.uniform(0, 200, 53215), rng.uniform(0, 250, 53215), rng.uniform(-40, 40, 53215)])
    np.save(gt / "image00002.npy", g)
    np.save(pr / "image00002.npy", g + 1.0)
    kp = _keypoints(tmp_path)
    got = Rp.dense_recompute("PRNet", gt, pr, keypoints=kp)
    v = np.arange(68) * 700 + 11
    want = 100 * np.sqrt(2.0) / np.sqrt(np.ptp(g[0, v]) * np.ptp(g[1, v]))  # z shift removed by the min rule
    assert got["prnet-aflw2000-nme3d-dense"][0] == pytest.approx(want, rel=1e-12)


def test_quoted_reasons_name_scorer_and_parameters():
    led = L.build_ledger(papers=["PRNet"], subsets={}).set_index("claim_id")
    for cid in ("prnet-stirling-hq-mean", "prnet-stirling-lq-mean"):
        why = led.loc[cid, "why"]
        assert led.loc[cid, "tier"] == "Q"
        assert "facenb.benchmarks.stirling" in why and "stirling_dir" in why and "stirling_predictions_dir" in why
    why = led.loc["prnet-florence-recon-nme", "why"]
    assert "facenb.benchmarks.florence" in why and "florence_dir" in why and "florence_predictions_dir" in why
    for cid in ("prnet-aflw2000-nme3d-dense", "prnet-aflw2000-recon-nme"):
        why = led.loc[cid, "why"]
        assert "dense_gt_dir" in why and "dense_predictions_dir" in why and "(3, n)" in why


def test_recompute_licensed_says_what_to_set():
    rec = Rp.recompute_licensed("PRNet")
    assert rec.recomputed == {}
    text = "\n".join(rec.lines)
    for params in ("realy_dir and realy_predictions_dir", "stirling_dir and stirling_predictions_dir",
                   "florence_dir and florence_predictions_dir", "dense_gt_dir and dense_predictions_dir"):
        assert params in text
