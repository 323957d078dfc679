"""facenb.landmarks.from_topology: NoW / iBUG landmarks of a mesh in a known topology (REALY keypoint files)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from facenb import landmarks as L
from facenb.align import rodrigues
from facenb.benchmarks import now
from facenb.errors import InputError


def _hand_obj(path):
    """Read an OBJ by hand: vertices, and faces with quads split (a, b, c), (a, c, d) as REALY's reader does."""
    verts, faces = [], []
    for line in path.read_text().splitlines():
        t = line.split()
        if t and t[0] == "v":
            verts.append([float(x) for x in t[1:4]])
        elif t and t[0] == "f":
            idx = [int(x.split("/")[0]) - 1 for x in t[1:]]
            faces.append(idx[:3])
            if len(idx) == 4:
                faces.append([idx[0], idx[2], idx[3]])
    return np.array(verts), np.array(faces)


@pytest.fixture(scope="module")
def templates():
    from conftest import mirror_root, need

    root = need(mirror_root() / "realy_templates", "public data mirror (realy_templates)")
    return {t: (root, *_hand_obj(root / f"{t}.obj")) for t in L.TOPOLOGIES}


@pytest.mark.parametrize("topology", L.TOPOLOGIES)
def test_template_as_prediction_of_its_scaled_copy_scores_zero(templates, topology):
    _, v, f = templates[topology]
    lm = L.from_topology(v, topology, f)
    R, _ = rodrigues(np.array([0.1, -0.3, 0.05]))
    s = 90.0 / L.outer_eye_distance(lm)  # a face in mm, whatever the template's unit
    scan = s * v @ R.T + np.array([12.0, -7.0, 30.0])
    scan_lm = L.from_topology(scan, "auto", f)
    assert L.outer_eye_distance(scan_lm) == pytest.approx(90.0)
    res = now.evaluate(scan, scan_lm, v, f, lm)
    assert res.n_points > 1000
    assert res.mean_mm < 1e-5 and res.distances.max() < 1e-4
    # a different prediction does not score 0 (the test can fail)
    bumped = v + 0.05 / s * np.sin(v * s / 7.0)
    assert now.evaluate(scan, scan_lm, bumped, f, lm).mean_mm > 1e-3


@pytest.mark.parametrize("topology", L.TOPOLOGIES)
def test_equals_the_realy_keypoints_by_hand(templates, topology):
    root, v, f = templates[topology]
    rows = json.loads((root / f"{topology}.txt").read_text())
    assert len(rows) == 85
    by_hand = []
    for t, w0, w1 in rows:
        a, b, c = f[int(t)]
        by_hand.append(w0 * v[a] + w1 * v[b] + (1.0 - w0 - w1) * v[c])
    by_hand = np.array(by_hand)
    np.testing.assert_allclose(L.from_topology(v, topology, f, points="realy85"), by_hand, rtol=0, atol=1e-9)
    np.testing.assert_allclose(L.from_topology(v, topology, points="ibug68"), by_hand[:68], rtol=0, atol=1e-9)
    # iBUG-68 points 37, 40, 43, 46, 34, 49, 55 (1-based): NoW's order
    seven = by_hand[[36, 39, 42, 45, 33, 48, 54]]
    np.testing.assert_allclose(L.from_topology(v, "auto", f), seven, rtol=0, atol=1e-9)
    # the subject's right (NoW's first landmark) is at -x on every template (faces +z, y up), nose below the eyes
    assert seven[0, 0] < seven[1, 0] < 0 < seven[2, 0] < seven[3, 0]
    assert seven[5, 0] < seven[6, 0] and seven[4, 1] < seven[1, 1] and seven[5, 1] < seven[4, 1]


@pytest.mark.parametrize("topology", L.TOPOLOGIES)
def test_renumbered_mesh_is_refused(templates, topology):
    _, v, f = templates[topology]
    perm = np.random.default_rng(3).permutation(len(v))
    inv = np.argsort(perm)
    with pytest.raises(InputError, match="renumbered"):
        L.from_topology(v[perm], "auto", inv[f])
    with pytest.raises(InputError, match="renumbered"):
        L.from_topology(v[perm], topology, inv[f])
    # same mesh, corners rotated and winding flipped: still recognised
    assert L.identify_topology(v, f[:, [2, 1, 0]]) == topology


def test_quad_diagonal_and_unknown_meshes(templates):
    _, v, f = templates["HIFI3D"]
    a, b, c, d = f[0::2, 0], f[0::2, 1], f[0::2, 2], f[1::2, 2]
    other_diagonal = np.vstack([np.column_stack([a, b, d]), np.column_stack([b, c, d])])
    assert L.identify_topology(v, other_diagonal) == "HIFI3D"
    with pytest.raises(InputError, match="unknown mesh topology: 100 vertices"):
        L.from_topology(np.zeros((100, 3)), "auto", np.array([[0, 1, 2]]))
    with pytest.raises(InputError, match="needs the mesh's faces"):
        L.from_topology(v, "auto")
    with pytest.raises(InputError, match="unknown topology 'SFM'"):
        L.from_topology(v, "SFM")
    with pytest.raises(InputError, match="topology FLAME has 5023"):
        L.from_topology(v, "flame")
    with pytest.raises(InputError, match="only 10 of the"):
        L.from_topology(v, "HIFI3D", f[:10])
    with pytest.raises(InputError, match="unknown landmark set"):
        L.from_topology(v, "HIFI3D", points="ibug51")


def test_cli_now_pred_topology_single_and_dataset(templates, tmp_path, capsys):
    from facenb.cli import main
    from facenb.io import save_obj, save_pp

    _, v, f = templates["FLAME"]
    lm = L.from_topology(v, "FLAME")
    s = 90.0 / L.outer_eye_distance(lm)
    ds, pred = tmp_path / "now", tmp_path / "pred"
    for d in (ds / "scans" / "S1", ds / "scans_lmks_onlypp" / "S1", pred / "S1" / "selfie"):
        d.mkdir(parents=True)
    save_obj(ds / "scans" / "S1" / "scan.obj", v * s)
    save_pp(ds / "scans_lmks_onlypp" / "S1" / "scan.pp", lm * s)
    save_obj(pred / "S1" / "selfie" / "IMG_1.obj", v, f)
    (ds / "imagepathsvalidation.txt").write_text("S1/selfie/IMG_1.jpg\n")
    single = ["now", "--scan", str(ds / "scans" / "S1" / "scan.obj"), "--scan-landmarks",
              str(ds / "scans_lmks_onlypp" / "S1" / "scan.pp"), "--pred", str(pred / "S1" / "selfie" / "IMG_1.obj")]
    assert main(single + ["--pred-topology", "auto", "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["mean_mm"] < 1e-5
    assert main(single + ["--pred-topology", "BFM09"]) == 2
    assert "topology BFM09 has 53215" in capsys.readouterr().err
    assert main(["now", "--dataset", str(ds), "--predictions", str(pred), "--out", str(tmp_path / "out"),
                 "--pred-topology", "flame", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_scored"] == 1 and summary["overall"]["mean_mm"] < 1e-5


def test_cli_realy_pred_topology_auto_equals_template(templates, tmp_path, capsys):
    """`facenb realy --pred-topology auto` recognises the predictions' topology and scores as `--template NAME`."""
    from conftest import mirror_root, need

    from facenb import synth
    from facenb.cli import main

    res = synth.synth_realy(tmp_path / "s", subjects=1, methods=["precise"], template="FLAME",
                            sfm_dir=need(mirror_root() / "surrey_face_model", "public data mirror"))
    common = ["realy", *res.realy_args[:-2], "--predictions", str(res.predictions["precise"]), "--no-progress"]
    assert main(common + ["--pred-topology", "auto", "--out", str(tmp_path / "a")]) == 0
    assert "recognised as topology FLAME" in capsys.readouterr().err
    assert main(common + ["--template", "FLAME", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "REALY_error.txt").read_text() == (tmp_path / "b" / "REALY_error.txt").read_text()
    assert main(common + ["--out", str(tmp_path / "c")]) == 2
    assert "give --template or --pred-topology" in capsys.readouterr().err
