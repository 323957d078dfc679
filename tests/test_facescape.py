"""FaceScape benchmark tables (facenb.benchmarks.facescape), its CLI, plots and notebook.

Reference outputs used below (OFFICIAL_*) were produced by running the unmodified official summary scripts
``zhuhao-nju/facescape@3f1cb5aeb4b3c29d3ced2aa14c40a79ae0ce52dc benchmark/code/show.py`` and
``benchmark/code/export_table.py`` (Python 3.11.7, numpy 2.4.6) on the mirror's
``facescape_benchmark/eval_result`` (zhuhao-nju/facescape@19a9fffd68a79c48fec31ee9949e10a8a412abca). The full
outputs are pinned by their SHA-256 (216 lines of show.py; the three CSV tables); the rows of the seed methods
(PRNet, MGCNet) and of DF2Net (the quirky one) are pinned as text.
"""
from __future__ import annotations

import hashlib
import subprocess
import warnings
import sys
from pathlib import Path

import numpy as np
import pytest

from facenb import InputError
from facenb.benchmarks import facescape as fs
from facenb.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]

OFFICIAL_SHOW_SHA256 = "edba9918b9d3d67c63d683440f0c9f0a97d908669505188c6a5cd1868a2b75a0"
OFFICIAL_EXPORT_SHA256 = {
    "table_1_fswild_angle.csv": "a9f5366d21ec46c7fd1d014931034598aa4eefc14c21a4a9fb00a0a8c5afb1e3",
    "table_2_fslab_angle.csv": "f81a9514ed073b0dbfbe78ae4b88053acf76540064eeca23e0783e8e04888b04",
    "table_3_fslab_f.csv": "48349d3bfcd2e54259e0ca4e45a9a7758cd63ff5ac28c57f13759384ec2b5834",
}
# show.py output lines (section 0 = fswild angle, 1 = fslab angle, 2 = fslab focal length), per method: CD, MNE, CR.
OFFICIAL_SHOW_ROWS = {
    (0, "PRNet"): ["CD_full:\t2.640336\t3.073193\t4.276910\t3.879687  |  3.467531\t1.000000",
                   "MNE_full:\t0.115951\t0.112640\t0.118274\t0.140516  |  0.121845\t1.000000",
                   "CR_full:\t0.832883\t0.828620\t0.785548\t0.752423  |  0.799868\t1.000000"],
    (0, "MGCNet"): ["CD_full:\t3.114560\t2.921744\t2.852223\t4.199544  |  3.272018\t1.000000",
                    "MNE_full:\t0.071874\t0.072165\t0.069982\t0.091343  |  0.076341\t1.000000",
                    "CR_full:\t0.845290\t0.845797\t0.816045\t0.743740  |  0.812718\t1.000000"],
    (0, "DF2Net"): ["CD_full:\t2.962783\t4.167396\t6.727869\t21.269031  |  4.674024\t0.748663",
                    "MNE_full:\t0.115967\t0.125532\t0.158062\t0.344117  |  0.133971\t0.748663",
                    "CR_full:\t0.582922\t0.562368\t0.466377\t0.258088  |  0.538460\t0.748663"],
    (1, "PRNet"): ["CD_full:\t2.940647\t3.399457\t3.740661  |  3.562542\t1.000000",
                   "MNE_full:\t0.132625\t0.124928\t0.121851  |  0.125528\t1.000000",
                   "CR_full:\t0.925202\t0.901284\t0.851590  |  0.895645\t1.000000"],
    (1, "MGCNet"): ["CD_full:\t3.447503\t3.908699\t3.650008  |  4.001216\t1.000000",
                    "MNE_full:\t0.085387\t0.092531\t0.090172  |  0.093229\t1.000000",
                    "CR_full:\t0.927168\t0.900817\t0.832116  |  0.898989\t1.000000"],
    (1, "DF2Net"): ["CD_full:\t4.479809\t7.643255\t-1.000000  |  6.884077\t0.736364",
                    "MNE_full:\t0.152376\t0.200072\t-1.000000  |  0.189588\t0.736364",
                    "CR_full:\t0.641354\t0.522416\t-1.000000  |  0.515059\t0.736364"],
    (2, "PRNet"): ["CD_full:\t3.419784\t3.481933\t3.785910  |  3.562542\t1.000000",
                   "MNE_full:\t0.125068\t0.123928\t0.127586  |  0.125528\t1.000000",
                   "CR_full:\t0.894423\t0.890371\t0.902141  |  0.895645\t1.000000"],
    (2, "MGCNet"): ["CD_full:\t3.819737\t4.006894\t4.177016  |  4.001216\t1.000000",
                    "MNE_full:\t0.091453\t0.090600\t0.097633  |  0.093229\t1.000000",
                    "CR_full:\t0.890721\t0.893533\t0.912714  |  0.898989\t1.000000"],
    (2, "DF2Net"): ["CD_full:\t7.262117\t6.974818\t6.390156  |  6.884077\t0.736364",
                    "MNE_full:\t0.194326\t0.190935\t0.183180  |  0.189588\t0.736364",
                    "CR_full:\t0.536746\t0.512214\t0.495084  |  0.515059\t0.736364"],
}
OFFICIAL_EXPORT_ROWS = {
    "table_1_fswild_angle.csv": [
        "PRNet,2.64,0.116,83.3,3.07,0.113,82.9,4.28,0.118,78.6,3.88,0.141,75.2,100.0",
        "DF2Net,2.96,0.116,58.3,4.17,0.126,56.2,6.73,0.158,46.6,21.27,0.344,25.8,74.9",
        "MGCNet,3.11,0.072,84.5,2.92,0.072,84.6,2.85,0.070,81.6,4.20,0.091,74.4,100.0"],
    "table_2_fslab_angle.csv": [
        "PRNet,2.94,0.133,92.5,3.40,0.125,90.1,3.74,0.122,85.2,100.0",
        "DF2Net,4.48,0.152,64.1,7.64,0.200,52.2,-1.00,-1.000,-100.0,73.6",
        "MGCNet,3.45,0.085,92.7,3.91,0.093,90.1,3.65,0.090,83.2,100.0"],
    "table_3_fslab_f.csv": [
        "PRNet,3.42,0.125,89.4,3.48,0.124,89.0,3.79,0.128,90.2,100.0",
        "DF2Net,7.26,0.194,53.7,6.97,0.191,51.2,6.39,0.183,49.5,73.6",
        "MGCNet,3.82,0.091,89.1,4.01,0.091,89.4,4.18,0.098,91.3,100.0"],
}


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def bench_dir() -> Path:
    from conftest import mirror_root, need

    return need(mirror_root() / "facescape_benchmark" / "eval_result", "public data mirror (facescape_benchmark)").parent


@pytest.fixture(scope="module")
def official(bench_dir) -> fs.FaceScapeTables:
    return fs.facescape_tables(bench_dir)


def _write(path: Path, values) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(("nan" if np.isnan(v) else "%.18e" % v) + "\n" for v in values))


@pytest.fixture(autouse=True)
def _short_synthetic_file(monkeypatch):
    """The synthetic fswild_B (250 lines) stands for the official short DF2Net file (374 lines): short files are
    accepted only when listed in fs.KNOWN_SHORT_WILD."""
    monkeypatch.setitem(fs.KNOWN_SHORT_WILD, "B", 250)


def _synthetic(root: Path) -> Path:
    """A results folder with known answers.

    fswild_A: line i holds i; lines 0-9 are NaN.  fswild_B: 250 lines (a short file), line i holds i.
    fslab_A: line 33 s + 11 f + v holds 100 f + v; the 60-degree views (9, 10) of focal 1200 are NaN for every
    subject.  CD = the values, MNE = values / 1000, CR = values / 1000 as well.
    """
    ev = root / "eval_result"
    wild_a = np.arange(400, dtype=float)
    wild_a[:10] = np.nan
    wild_b = np.arange(250, dtype=float)
    lab = np.array([100.0 * f + v for s in range(20) for f in range(3) for v in range(11)])
    lab[[33 * s + 0 * 11 + v for s in range(20) for v in (9, 10)]] = np.nan
    for name, vals in (("fswild_A", wild_a), ("fswild_B", wild_b), ("fslab_A", lab)):
        _write(ev / name / "CD_full.txt", vals)
        _write(ev / name / "MNE_full.txt", vals / 1000)
        _write(ev / name / "CR_full.txt", vals / 1000)
    return root


# ------------------------------------------------------------------------------------------------ real data
def test_fourteen_methods_and_file_shapes(bench_dir):
    res = fs.load_results(bench_dir)
    assert res.methods("fswild") == fs.OFFICIAL_METHODS
    assert res.methods("fslab") == fs.OFFICIAL_METHODS
    lengths = {(f.dataset, f.method): f.n_lines for f in res.files}
    assert lengths.pop(("fswild", "DF2Net")) == 374  # the short file (quirk)
    assert set(v for (d, _), v in lengths.items() if d == "fswild") == {400}
    assert set(v for (d, _), v in lengths.items() if d == "fslab") == {660}


def test_result_shape_summary_printed_to_frame(official):
    """The result protocol every benchmark shares: summary() flat dict, printed() official lines, to_frame()."""
    s = official.summary()
    assert all(not isinstance(v, (dict, list, tuple)) for v in s.values())  # flat
    frame = official.to_frame()
    cells = [k for k in s if k.count("/") == 4 and not k.endswith("/done_rate")]
    assert len(cells) == len(frame)  # one summary entry per frame row
    r = frame[(frame.dataset == "fswild") & (frame.method == "PRNet") & (frame.metric == "CD") & (frame.bin == "all")]
    assert s["fswild/yaw/PRNet/CD/all"] == pytest.approx(float(r["value"].iloc[0]))
    assert s["options"] == "official" and s["protocol"] == fs.PROTOCOL
    assert official.printed() == official.format_show().splitlines()


def test_show_output_identical_to_official_script(official):
    text = official.format_show()
    assert hashlib.sha256(text.encode()).hexdigest() == OFFICIAL_SHOW_SHA256
    lines = text.split("\n")
    assert len(lines) == 217 and lines[-1] == ""
    section = -1
    seen = 0
    for i, line in enumerate(lines):
        if line.startswith("=" * 30 + " show"):
            section += 1
        for (sec, method), rows in OFFICIAL_SHOW_ROWS.items():
            if sec == section and line == f"========== {method} ==========":
                assert lines[i + 2:i + 5] == rows
                seen += 1
    assert seen == len(OFFICIAL_SHOW_ROWS)


def test_export_tables_identical_to_official_script(official):
    files = official.format_export_tables()
    assert set(files) == set(OFFICIAL_EXPORT_SHA256)
    for name, text in files.items():
        assert hashlib.sha256(text.encode()).hexdigest() == OFFICIAL_EXPORT_SHA256[name], name
        rows = [r for r in text.splitlines() if r.split(",")[0] in ("PRNet", "MGCNet", "DF2Net")]
        assert rows == OFFICIAL_EXPORT_ROWS[name]


def test_every_cell_equals_plain_numpy_rederivation(bench_dir, official):
    """Independent re-derivation of all 546 cells from the raw files (reshape-based indexing, np.nanmean)."""
    n_cells = 0
    for method in fs.OFFICIAL_METHODS:
        for metric in fs.METRICS:
            w = np.loadtxt(bench_dir / "eval_result" / f"fswild_{method}" / f"{metric}_full.txt")
            lab = np.loadtxt(bench_dir / "eval_result" / f"fslab_{method}" / f"{metric}_full.txt").reshape(20, 3, 11)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN slice
                expected = {
                    ("fswild", "yaw"): [np.nanmean(w[0:100]), np.nanmean(w[100:200]), np.nanmean(w[200:300]),
                                        np.nanmean(w[300:]), np.nanmean(w)],
                    ("fslab", "angle"): [np.nanmean(lab[:, 0, 0]), np.nanmean(lab[:, 0, 1:9]),
                                         np.nanmean(lab[:, 0, 9:11]), np.nanmean(lab)],
                    ("fslab", "focal"): [np.nanmean(lab[:, 0, :]), np.nanmean(lab[:, 1, :]), np.nanmean(lab[:, 2, :]),
                                         np.nanmean(lab)],
                }
            if np.all(np.isnan(lab[:, 0, 9:11])):
                expected[("fslab", "angle")][2] = -1.0  # show.py's sentinel for an empty 60-degree bin
            done = {"fswild": np.mean(~np.isnan(w)), "fslab": np.mean(~np.isnan(lab))}
            for (dataset, grouping), vals in expected.items():
                row = official.row(dataset, grouping, method, metric)
                got = [b.value for b in row.bins]
                np.testing.assert_allclose(got, vals, rtol=1e-12, atol=0, err_msg=f"{dataset} {grouping} {method} {metric}")
                assert ["%f" % g for g in got] == ["%f" % v for v in vals]
                assert row.done_rate == pytest.approx(done[dataset], abs=1e-15)
                n_cells += len(vals)
    assert n_cells == 14 * 3 * 13 == 546


def test_quirks_on_real_data(bench_dir, official):
    df2 = official.row("fswild", "yaw", "DF2Net", "CD")
    assert df2.bin("60-90").n_images == 74 and df2.n_lines == 374 and "%f" % df2.done_rate == "0.748663"
    lab = official.row("fslab", "angle", "DF2Net", "CR")
    assert lab.bin("60").is_sentinel and lab.bin("60").n_images == 40
    assert [official.row("fslab", "angle", "PRNet", "CD").bin(b).n_images for b in ("0", "30", "60", "all")] == [20, 160, 40, 660]
    intended = fs.facescape_tables(bench_dir, options=fs.INTENDED)
    assert "%f" % intended.row("fswild", "yaw", "DF2Net", "CD").done_rate == "0.700000"
    assert intended.row("fswild", "yaw", "DF2Net", "CD").bin("60-90").n_images == 100
    assert intended.row("fslab", "angle", "DF2Net", "CD").value("60") == pytest.approx(10.020709, abs=5e-7)
    assert [intended.row("fslab", "angle", "PRNet", "CD").bin(b).n_images for b in ("0", "30", "60")] == [60, 480, 120]
    # intended options only change the fslab angle bins and the short DF2Net file
    d = fs.diff_tables(official, intended)
    assert set(map(tuple, d[["dataset", "grouping"]].drop_duplicates().values)) == {("fswild", "yaw"), ("fslab", "angle")}
    assert set(d.loc[d.dataset == "fswild", "method"]) == {"DF2Net"}
    assert set(d.loc[d.grouping == "angle", "bin"]) == {"0", "30", "60"}


def test_rotation_binning_matches_design_up_to_boundary_images(bench_dir):
    ang = fs.wild_rotation_angles(bench_dir)
    assert ang.shape == (400,)
    blocks = ang.reshape(4, 100)
    assert blocks[0].max() < 5.6 and blocks[1].min() > 5.4 and blocks[2].min() >= 30.0 and blocks[3].min() > 60.0
    t = fs.facescape_tables(bench_dir, methods=["PRNet"], datasets=["fswild"],
                            options=fs.FaceScapeOptions(wild_binning="rotation"))
    assert [b.n_images for b in t.row("fswild", "yaw", "PRNet", "CD").bins] == [95, 104, 101, 100, 400]


def test_compare_with_published_tables_in_export_layout(official):
    # the official export_table.py rows (PRNet, DF2Net, MGCNet) as a "published" table
    published_text = {name: "h1\nh2\n" + "\n".join(rows) + "\n" for name, rows in OFFICIAL_EXPORT_ROWS.items()}
    pub = fs.read_export_tables(published_text)
    assert len(pub) == 3 * (4 * 3 + 1) + 6 * (3 * 3 + 1)
    cmp = fs.compare_export_tables(official, pub)
    assert cmp["match"].all() and (cmp["difference"].abs() < 1e-12).all()
    # one wrong digit is found, with its difference
    bad = dict(published_text)
    bad["table_3_fslab_f.csv"] = bad["table_3_fslab_f.csv"].replace("MGCNet,3.82,", "MGCNet,3.83,")
    cmp = fs.compare_export_tables(official, fs.read_export_tables(bad))
    wrong = cmp[~cmp["match"]]
    assert len(wrong) == 1
    assert tuple(wrong.iloc[0][["grouping", "method", "metric", "bin"]]) == ("focal", "MGCNet", "CD", "1200")
    assert wrong.iloc[0]["difference"] == pytest.approx(-0.01)
    rep = fs.reported_comparison(official, methods=["PRNet"])
    assert rep["published"].isna().all() and set(rep["method"]) == {"PRNet"} and len(rep) == 13 + 10 + 10
    assert "no text copy" in rep["source"].iloc[0]


# ------------------------------------------------------------------------------------------------ synthetic
def test_synthetic_nan_handling_and_done_rate(tmp_path):
    t = fs.facescape_tables(_synthetic(tmp_path))
    a = t.row("fswild", "yaw", "A", "CD")
    assert [b.value for b in a.bins] == [54.5, 149.5, 249.5, 349.5, 204.5]  # NaN lines 0-9 skipped, not penalised
    assert [(b.n_images, b.n_valid) for b in a.bins] == [(100, 90), (100, 100), (100, 100), (100, 100), (400, 390)]
    assert a.done_rate == 390 / 400
    b = t.row("fswild", "yaw", "B", "MNE")
    assert [x.n_images for x in b.bins] == [100, 100, 50, 0, 250]
    assert b.value("30-60") == pytest.approx(0.2245) and np.isnan(b.value("60-90")) and b.done_rate == 1.0
    lab = t.row("fslab", "angle", "A", "CD")
    assert lab.value("0") == 0.0 and lab.value("30") == 4.5 and lab.value("60") == -1.0 and lab.bin("60").is_sentinel
    assert lab.done_rate == 620 / 660
    assert lab.value("all") == pytest.approx(np.mean([100.0 * f + v for f in range(3) for v in range(11)
                                                      if not (f == 0 and v >= 9)]))
    foc = t.row("fslab", "focal", "A", "CR")
    assert [x.value for x in foc.bins[:3]] == pytest.approx([0.004, 0.105, 0.205])
    frame = t.to_frame()
    assert list(frame.columns) == list(fs.FRAME_COLUMNS)
    assert len(frame) == 2 * 3 * 5 + 3 * 4 + 3 * 4
    assert fs.plot_frame(t, "fslab", "angle", "CD").query("bin == '60'")["value"].isna().all()


def test_synthetic_options(tmp_path):
    root = _synthetic(tmp_path)
    t = fs.facescape_tables(root, options=fs.INTENDED)
    b = t.row("fswild", "yaw", "B", "CD")
    assert b.n_lines == 400 and b.done_rate == 250 / 400 and b.bin("60-90").n_images == 100
    assert np.isnan(b.value("60-90")) and b.value("all") == pytest.approx(124.5)
    lab = t.row("fslab", "angle", "A", "CD")
    assert lab.value("0") == pytest.approx(100.0) and lab.value("60") == pytest.approx(159.5)
    assert lab.bin("60").n_images == 120 and lab.bin("60").n_valid == 80
    nan_only = fs.facescape_tables(root, options=fs.FaceScapeOptions(empty_bin="nan"), datasets=["fslab"])
    assert np.isnan(nan_only.row("fslab", "angle", "A", "MNE").value("60"))
    errs = fs.per_image_errors(fs.load_results(root), "fswild", "CD", fs.INTENDED)
    assert errs["B"].shape == (400,) and np.isnan(errs["B"][250:]).all()


def test_synthetic_rotation_binning(tmp_path):
    root = _synthetic(tmp_path)
    theta = np.radians(np.r_[np.full(100, 70.0), np.full(100, 45.0), np.full(100, 10.0), np.full(100, 2.0)])
    c, s = np.cos(theta), np.sin(theta)
    R = np.zeros((400, 3, 3))
    R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, s, 1.0, -s, c
    (root / "code" / "predef").mkdir(parents=True)
    np.save(root / "code" / "predef" / "wild_rotations.npy", R)
    np.testing.assert_allclose(fs.wild_rotation_angles(root), np.degrees(theta), atol=1e-9)
    t = fs.facescape_tables(root, datasets=["fswild"], options=fs.FaceScapeOptions(wild_binning="rotation"))
    a = t.row("fswild", "yaw", "A", "CD")
    assert [x.value for x in a.bins[:4]] == [349.5, 249.5, 149.5, 54.5]  # reversed blocks follow the angles
    with pytest.raises(InputError, match="wild_rotations.npy"):
        fs.facescape_tables(_synthetic(tmp_path / "other"), datasets=["fswild"],
                            options=fs.FaceScapeOptions(wild_binning="rotation"))


@pytest.mark.parametrize("content, dataset, match", [
    ("1.0\nabc\n", "fswild", "not one number per line"),
    ("1 2\n3 4\n", "fswild", "2 columns"),
    ("", "fswild", "empty"),
    ("1.0\n" * 401, "fswild", "401 lines"),
    ("1.0\n" * 659, "fslab", "659 lines"),
])
def test_bad_result_files(tmp_path, content, dataset, match):
    root = _synthetic(tmp_path)
    target = root / "eval_result" / f"{dataset}_A" / "MNE_full.txt"
    target.write_text(content)
    with pytest.raises(InputError, match=match) as exc:
        fs.load_results(root)
    assert str(target) in str(exc.value) and "\n" not in str(exc.value)


def test_missing_inputs(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="facenb data fetch facescape_benchmark"):
        fs.load_results(tmp_path / "nope")
    monkeypatch.delenv("FACENB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "empty_cache"))
    with pytest.raises(InputError, match=r"facescape_benchmark is not available.*facenb data fetch facescape_benchmark"):
        fs.load_results(None)
    root = _synthetic(tmp_path / "r")
    (root / "eval_result" / "fslab_A" / "CR_full.txt").unlink()
    with pytest.raises(InputError, match="CR_full.txt"):
        fs.load_results(root)
    with pytest.raises(InputError, match="no results folder for method 'Z'"):
        fs.load_results(_synthetic(tmp_path / "s"), methods=["Z"])
    # eval_result/ itself is accepted, and so is a folder holding <dataset>_<method>/ directly
    assert fs.load_results(tmp_path / "s" / "eval_result").root == tmp_path / "s"
    with pytest.raises(InputError):
        fs.FaceScapeOptions(lab_angle_focals=(500,))


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_missing_results_dir_exit_2(tmp_path, capsys):
    assert cli_main(["facescape", "--results", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "absent") in err and "facenb data fetch facescape_benchmark" in err


def test_cli_console_script_exit_2_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "facenb.cli", "facescape", "--results", str(tmp_path / "absent")],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("facenb: error:")


def test_cli_csv_and_styles(tmp_path, capsys):
    import pandas as pd

    root = _synthetic(tmp_path / "r")
    out = tmp_path / "t.csv"
    assert cli_main(["facescape", "--results", str(root), "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FaceScape fswild" in printed and "done_rate" in printed
    df = pd.read_csv(out, dtype={"bin": str})
    assert list(df.columns) == list(fs.FRAME_COLUMNS)
    assert set(df["bin"]) == {"0-5", "5-30", "30-60", "60-90", "all", "0", "30", "60", "1200", "600", "300"}
    assert set(df["grouping"]) == {"yaw", "angle", "focal"} and set(df["metric"]) == {"CD", "MNE", "CR"}
    row = df[(df.dataset == "fswild") & (df.method == "A") & (df.metric == "CD") & (df.bin == "0-5")].iloc[0]
    assert row.value == 54.5 and row.done_rate == 0.975 and row.n_valid == 90
    assert cli_main(["facescape", "--results", str(root), "--style", "show", "--dataset", "fslab"]) == 0
    show = capsys.readouterr().out
    assert show.startswith("=" * 30 + " dataset: fslab") and "CD_full:\t0.000000\t4.500000\t-1.000000  |" in show
    assert cli_main(["facescape", "--results", str(root), "--dataset", "fslab", "--lab-angle-focals", "all",
                     "--empty-bin", "nan", "--style", "show"]) == 0
    assert "CD_full:\t100.000000\t" in capsys.readouterr().out
    assert cli_main(["facescape", "--results", str(root), "--csv", str(tmp_path / "no" / "t.csv")]) == 2


def test_cli_show_identical_to_official(bench_dir, capsys):
    assert cli_main(["facescape", "--results", str(bench_dir), "--style", "show"]) == 0
    assert hashlib.sha256(capsys.readouterr().out.encode()).hexdigest() == OFFICIAL_SHOW_SHA256


# ------------------------------------------------------------------------------------------------ plots
def test_cumulative_curve_counts_failures():
    from facenb.plot import cumulative_curve

    x, y = cumulative_curve(np.array([3.0, np.nan, 1.0, 2.0]))
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(y, [0.25, 0.5, 0.75])  # ends at the done rate
    x, y = cumulative_curve(np.array([0.9, 0.5]), higher_is_better=True)
    np.testing.assert_array_equal(x, [0.9, 0.5])
    np.testing.assert_array_equal(y, [0.5, 1.0])


def test_plots_highlight_methods(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from facenb import plot

    root = _synthetic(tmp_path)
    t = fs.facescape_tables(root)
    frame = fs.plot_frame(t, "fswild", "yaw", "CD")
    fig = plot.bin_curves_plotly(frame, highlight=["B"])
    widths = {tr.name: tr.line.width for tr in fig.data}
    assert widths == {"A": 1.2, "* B": 3.5} and fig.data[-1].name == "* B"  # highlighted drawn last (on top)
    assert list(fig.data[0].x) == ["0-5", "5-30", "30-60", "60-90"]
    mfig = plot.bin_curves_matplotlib(frame, highlight=["B"], y_label="CD (mm)")
    lines = {ln.get_label(): ln for ln in mfig.axes[0].get_lines()}
    assert lines["* B"].get_linewidth() == 3.5 and lines["A"].get_linewidth() == 1.2
    errs = fs.per_image_errors(fs.load_results(root), "fswild", "CD")
    cfig = plot.cumulative_error_curves_plotly(errs, highlight=["A"])
    last = {tr.name: tr.y[-1] for tr in cfig.data}
    assert last == {"B": 1.0, "* A": 0.975}
    cm = plot.cumulative_error_curves_matplotlib(errs, highlight=["A"], x_label="CD (mm)")
    bold = [t.get_text() for t in cm.axes[0].get_legend().get_texts() if t.get_fontweight() == "bold"]
    assert bold == ["* A"]
    # the notebook's figures: one per (dataset, grouping), then one cumulative curve per dataset
    results = fs.load_results(root)
    figs = plot.facescape_figures(t, results, "CD", interactive=True, highlight=["B"])
    assert len(figs) == len(t.tables) + len(results.datasets)
    want = fs.plot_frame(t, *t.tables[0], "CD")
    got = {tr.name.lstrip("* "): list(tr.y) for tr in figs[0].data}
    for m, g in want.groupby("method"):
        np.testing.assert_array_equal(got[m], g["value"].to_numpy())
    assert figs[-1].layout.title.text == f"FaceScape {results.datasets[-1]}: cumulative CD over all images"
    mfigs = plot.facescape_figures(t, results, "CR")
    assert len(mfigs) == len(figs) and all(hasattr(f, "savefig") for f in mfigs)


# ------------------------------------------------------------------------------------------------ notebook
NOTEBOOK = REPO / "notebooks" / "13_facescape.ipynb"


def _run_notebook(tmp_path, name, params, env=None):
    import papermill as pm

    out = tmp_path / name
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=params, kernel_name="python3", cwd=str(tmp_path),
                        progress_bar=False)
    import nbformat

    nb = nbformat.read(out, as_version=4)
    texts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                texts.append(o.get("text", ""))
            elif "data" in o and "text/plain" in o["data"]:
                texts.append(o["data"]["text/plain"])
    return nb, "\n".join(texts)


def test_notebook_committed_stripped_with_one_parameters_cell():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


@pytest.mark.slow
def test_notebook_default_parameters(tmp_path, bench_dir, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(bench_dir.parent))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb, text = _run_notebook(tmp_path, "default.ipynb", {})
    assert "14 fswild and 14 fslab methods" in text
    assert "3.467531" in text  # PRNet fswild CD 'all' (show.py)
    assert "recomputed from per-image errors" in text


@pytest.mark.slow
def test_notebook_other_parameters(tmp_path, bench_dir, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    pub = tmp_path / "published"
    pub.mkdir()
    for name, rows in OFFICIAL_EXPORT_ROWS.items():
        (pub / name).write_text("h1\nh2\n" + "\n".join(rows) + "\n")
    nb, text = _run_notebook(tmp_path, "other.ipynb", {
        "results_dir": str(bench_dir), "highlight": ["DECA", "3DDFA_V2"], "metric": "MNE", "options": "intended",
        "published_tables": str(pub), "interactive": True})
    assert "INTENDED" in text or "intended" in text
    assert "cells compared" in text


@pytest.mark.slow
def test_notebook_without_data_says_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb, text = _run_notebook(tmp_path, "nodata.ipynb", {"results_dir": str(tmp_path / "absent")})
    assert "facenb data fetch facescape_benchmark" in text


def test_default_folder_is_the_fetch_cache(tmp_path, data_mirror, monkeypatch, capsys):
    """After `facenb data fetch facescape_benchmark`, `facenb facescape` reads the cache (no mirror needed)."""
    from facenb import data
    from facenb.cli import main

    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    data.fetch("facescape_benchmark", progress=False)
    monkeypatch.delenv("FACENB_DATA_MIRROR")
    assert fs.default_results_dir() == tmp_path / "cache" / "facescape_benchmark"
    assert main(["facescape", "--dataset", "fswild"]) == 0
    assert "PRNet" in capsys.readouterr().out
