"""facenb synth: synthetic benchmarks in the official layouts, from public data (Surrey Face Model)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from facenb import synth
from facenb.benchmarks import now
from facenb.cli import main


@pytest.fixture(scope="module")
def now_set(tmp_path_factory):
    from conftest import mirror_root, need

    sfm = need(mirror_root() / "surrey_face_model", "public data mirror (surrey_face_model)")
    out = tmp_path_factory.mktemp("synth_now")
    res = synth.synth_now(out, subjects=1, images_per_subject=4, methods=["precise", "coarse", "scale_pose"],
                          seed=7, sfm_dir=sfm)
    return res, sfm


def test_sfm_reader(now_set):
    _, folder = now_set
    m = synth.load_sfm(folder)
    assert m.mean.shape == (3448, 3) and m.basis.shape == (10344, 63) and m.faces.shape == (6736, 3)
    np.testing.assert_allclose(m.basis.T @ m.basis, np.eye(63), atol=1e-4)  # orthonormal: column-major read right
    assert sorted(m.expressions) == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    lm = m.mean[m.now7]
    assert lm[0, 0] < lm[1, 0] < 0 < lm[2, 0] < lm[3, 0]  # subject's right at -x, as NoW
    assert 80 < np.linalg.norm(lm[0] - lm[3]) < 110  # millimetres


def test_layout_is_the_official_one_and_deterministic(now_set, tmp_path):
    res, folder = now_set
    lines = (res.out / "imagepathsvalidation.txt").read_text().split()
    assert len(lines) == res.n_images == 4
    assert {ln.split("/")[1] for ln in lines} == set(now.CHALLENGES)
    for m, d in res.predictions.items():
        imgs = now.list_images(res.out, d)
        assert len(imgs) == 4 and all(i.pred_mesh and i.pred_landmarks for i in imgs)
    again = synth.synth_now(tmp_path, subjects=1, images_per_subject=4, methods=["precise", "coarse", "scale_pose"],
                            seed=7, sfm_dir=folder)
    assert (again.truth.read_bytes() == res.truth.read_bytes())
    key = lines[1][:-4]
    assert (again.predictions["coarse"] / f"{key}.obj").read_bytes() == \
        (res.predictions["coarse"] / f"{key}.obj").read_bytes()
    other = synth.synth_now(tmp_path / "s8", subjects=1, images_per_subject=1, methods=["precise"], seed=8,
                            sfm_dir=folder)
    assert (other.out / "scans").exists()
    assert (other.out / "scans" / "SYNTH_000" / "SYNTH_000.obj").read_bytes() != \
        (res.out / "scans" / "SYNTH_000" / "SYNTH_000.obj").read_bytes()


def test_passes_facenb_now_dataset_and_truth_matches_the_crop(now_set, tmp_path, capsys):
    res, _ = now_set
    truth = synth.load_truth(res.out)
    assert truth["synthetic"] is True
    protocol = {}
    for m, d in res.predictions.items():
        assert main(["now", "--dataset", str(res.out), "--predictions", str(d), "--out", str(tmp_path / m),
                     "--method", m, "--no-progress"]) == 0
        s = json.loads((tmp_path / m / "summary.json").read_text())
        assert s["n_scored"] == 4 and s["n_missing"] == 0 and s["n_failed"] == 0
        protocol[m] = s["overall"]["mean_mm"]
        for key, t in truth["true_error"][m].items():
            d_ = np.load(tmp_path / m / "per_image" / (key.replace("/", "__") + ".npy"))
            assert len(t["per_vertex_mm"]) == len(d_) == truth["images"][key]["n_crop"]
    true_mean = {m: np.mean([t["mean_mm"] for t in v.values()]) for m, v in truth["true_error"].items()}
    # graded quality, seen by both the truth and the protocol
    assert true_mean["precise"] < true_mean["coarse"] and protocol["precise"] < protocol["coarse"]
    # the protocol's similarity alignment removes the scale/pose error the truth still counts
    assert true_mean["scale_pose"] > 2 * protocol["scale_pose"]
    # the metrical protocol does not remove the scale error
    assert main(["now", "--dataset", str(res.out), "--predictions", str(res.predictions["scale_pose"]), "--out",
                 str(tmp_path / "metric"), "--metric", "--pred-unit", "mm", "--no-progress"]) == 0
    metric = json.loads((tmp_path / "metric" / "summary.json").read_text())["overall"]["mean_mm"]
    assert metric > 1.5 * protocol["scale_pose"]


def test_cli_bad_input(tmp_path, capsys):
    assert main(["synth", "now", "--out", str(tmp_path), "--methods", "oracle"]) == 2
    assert "unknown synthetic method(s) oracle" in capsys.readouterr().err
    assert main(["synth", "now", "--out", str(tmp_path), "--subjects", "0"]) == 2


def test_realy_set_passes_facenb_realy_and_is_graded(now_set, tmp_path):
    _, folder = now_set
    res = synth.synth_realy(tmp_path / "realy", subjects=1, methods=["precise", "coarse"], seed=3, sfm_dir=folder)
    again = synth.synth_realy(tmp_path / "again", subjects=1, methods=["precise", "coarse"], seed=3, sfm_dir=folder)
    assert (res.out / "predictions" / "coarse" / "1.obj").read_bytes() == \
        (again.out / "predictions" / "coarse" / "1.obj").read_bytes()
    truth = synth.load_truth(res.out)
    assert truth["synthetic"] is True and truth["realy_args"] == list(res.realy_args)
    scored = {}
    for m, d in res.predictions.items():
        assert main(["realy", *res.realy_args, "--predictions", str(d), "--out", str(tmp_path / m),
                     "--no-progress"]) == 0
        rows = [ln.split() for ln in (tmp_path / m / "REALY_error.txt").read_text().splitlines() if ln.strip()]
        assert rows[0][0] == "1" and len(rows[0]) == 5
        scored[m] = np.mean([float(x) for x in rows[0][1:]])
    true = {m: truth["true_error"][m]["1"]["all_mean_mm"] for m in res.predictions}
    assert true["precise"] < true["coarse"] and scored["precise"] < scored["coarse"]
    for r in ("nose", "mouth", "forehead", "cheek"):
        text = (res.out / "REALY_scan_region" / "1" / f"{r}.obj").read_text()
        n = sum(ln.startswith("v ") for ln in text.splitlines())
        assert n == truth["true_error"]["precise"]["1"][r]["n_points"] > 300


def test_realy_refuses_missing_parts(tmp_path, capsys):
    assert main(["synth", "realy", "--out", str(tmp_path), "--methods", "missing_parts"]) == 2
    assert "does not apply to REALY" in capsys.readouterr().err


def test_stirling_set_passes_facenb_stirling_dataset(now_set, tmp_path):
    from facenb.benchmarks import stirling as St

    _, folder = now_set
    res = synth.synth_stirling(tmp_path / "st", subjects=2, images_per_subject=2, methods=["precise", "coarse"],
                               seed=5, sfm_dir=folder)
    truth = synth.load_truth(res.out)
    assert res.n_images == 4 and sorted(truth["images"]) == ["HQ/F1001_01", "HQ/M1002_01", "LQ/F1001_02",
                                                              "LQ/M1002_02"]
    pooled = {}
    for m, d in res.predictions.items():
        imgs = St.list_images(res.out, d)
        assert len(imgs) == 4 and all(i.scan and i.scan_landmarks and i.pred and i.pred_landmarks for i in imgs)
        assert main(["stirling", "--dataset", str(res.out), "--predictions", str(d), "--out", str(tmp_path / m),
                     "--no-progress"]) == 0
        img = imgs[0]
        r = St.evaluate_files(img.scan, img.scan_landmarks, img.pred, img.pred_landmarks)
        assert r.n_points == len(truth["true_error"][m][img.key]["per_vertex_mm"])
        pooled[m] = np.mean([t["mean_mm"] for t in truth["true_error"][m].values()])
    assert pooled["precise"] < pooled["coarse"]


def test_nowviz_on_the_synthetic_set_and_from_the_cache(now_set, tmp_path):
    from facenb import nowviz

    res, _ = now_set
    methods = {"precise": res.predictions["precise"]}
    first = nowviz.score_methods(res.out, methods, tmp_path)
    again = nowviz.score_methods(res.out, methods, tmp_path)
    assert {o.status for o in again["precise"].outcomes} == {"cached"}
    t1, t2 = nowviz.challenge_table(first), nowviz.challenge_table(again)
    assert t1.equals(t2) and list(t1["images"]) == [4, 1, 1, 1, 1]
    worst = nowviz.worst_images(again["precise"], 2)
    assert len(worst) == 2 and worst[0].stats.mean_mm >= worst[1].stats.mean_mm
    v, f, d = nowviz.image_heatmap(worst[0])
    assert len(v) == len(d) and f.max() < len(v) and d.mean() == pytest.approx(worst[0].stats.mean_mm)
    tv = nowviz.truth_vs_protocol(synth.load_truth(res.out), again)
    assert len(tv) == 4 and (tv["true_mean_mm"] > 0).all()
    # the official cumulative curve: percentages up to 100, read on a grid
    x, y = nowviz.cumulative_error(np.hstack(again["precise"].distances()))
    assert y[-1] == pytest.approx(100.0) and np.all(np.diff(y) >= 0) and len(x) == 100000
    g, yg = nowviz.curve_on_grid(x, y)
    assert yg[0] >= 0 and yg[-1] <= 100 and np.all(np.diff(yg) >= 0)
    # the notebook's summary lines, per-statistic tables and check against an official aggregate.json
    o = again["precise"].overall
    assert nowviz.score_lines(again) == [f"precise: median {o.median_mm:.4f} mm, mean {o.mean_mm:.4f} mm, std "
                                         f"{o.std_mm:.4f} mm (4 images, 0 missing, 0 failed)"]
    piv = nowviz.challenge_pivots(again)
    assert list(piv) == ["median_mm", "mean_mm", "std_mm"]
    assert piv["mean_mm"].loc["precise", "all"] == round(o.mean_mm, 3)
    assert nowviz.aggregate_check(again, res.out) is None  # the synthetic set carries no official numbers
    (tmp_path / "agg").mkdir()
    (tmp_path / "agg" / "aggregate.json").write_text(json.dumps(
        {"official": "x@1", "mean_mm": o.mean_mm + 1e-3, "median_mm": o.median_mm, "std_mm": o.std_mm}))
    line = nowviz.aggregate_check(again, tmp_path / "agg")
    assert line.startswith("official aggregate (x@1)") and line.endswith("max |diff| 1.00e-03 mm")
    assert nowviz.aggregate_check({**again, "other": again["precise"]}, tmp_path / "agg") is None


def test_now_with_the_real_james_scan(now_set, tmp_path):
    from conftest import mirror_root, need

    _, folder = now_set
    james = need(mirror_root() / "james_scan", "public data mirror (james_scan)")
    res = synth.synth_now(tmp_path / "j", subjects=1, images_per_subject=2, methods=["precise", "coarse"], seed=2,
                          sfm_dir=folder, james=True, james_dir=james)
    truth = synth.load_truth(res.out)
    keys = [k for k in truth["images"] if k.startswith("JAMES/")]
    assert len(keys) == 2 and truth["parameters"]["james"] is True
    assert main(["now", "--dataset", str(res.out), "--predictions", str(res.predictions["coarse"]), "--out",
                 str(tmp_path / "r"), "--no-progress"]) == 0
    for k in keys:
        d_ = np.load(tmp_path / "r" / "per_image" / (k.replace("/", "__") + ".npy"))
        assert len(d_) == len(truth["true_error"]["coarse"][k]["per_vertex_mm"]) > 1000
    j = {m: np.mean([truth["true_error"][m][k]["mean_mm"] for k in keys]) for m in ("precise", "coarse")}
    assert j["precise"] < j["coarse"]
