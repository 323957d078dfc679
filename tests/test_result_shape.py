"""One result shape across benchmarks (issue 9 item 2): every result type has ``summary()`` (flat dict),
``printed()`` (list of lines) and ``to_frame()`` (a DataFrame), and the CLIs print ``printed()``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facenb.benchmarks import aflw2000, aflw2000_dense, facescape, florence, now, realy, stirling
from facenb.cli import main

RESULT_TYPES = [now.NowResult, now.DatasetResult, realy.SubjectResult, realy.FolderResult, aflw2000_dense.DenseNME,
                aflw2000.NMEResult, facescape.FaceScapeTables, stirling.StirlingResult, stirling.DatasetResult,
                florence.FlorenceResult, florence.DatasetResult]


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=lambda c: f"{c.__module__.split('.')[-1]}.{c.__name__}")
def test_every_result_type_has_the_three_methods(cls):
    for name in ("summary", "printed", "to_frame"):
        assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name} missing"


def _check(res, n_lines=None):
    summ = res.summary()
    assert isinstance(summ, dict) and summ
    json.dumps(summ, allow_nan=False, default=str)  # flat and strict-JSON-able
    lines = res.printed()
    assert isinstance(lines, list) and all(isinstance(x, str) for x in lines)
    if n_lines is not None:
        assert len(lines) == n_lines
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame)
    return summ, lines, frame


def test_now_pair_and_dataset(conformance_dir, tmp_path, capsys):
    case = conformance_dir / "now" / "now01_james_decimated"
    expected = json.loads((case / "expected.json").read_text())
    res = now.evaluate_files(case / "scan.obj", case / "scan_lmks.pp", case / "pred.obj", case / "pred_lmks.txt")
    summ, lines, frame = _check(res, 1)
    assert summ["median_mm"] == pytest.approx(expected["median_mm"], abs=1e-6)
    assert np.array_equal(frame["distance_mm"].to_numpy(), res.distances)
    assert np.array_equal(frame["scan_vertex"].to_numpy(), res.crop_indices)
    assert main(["now", "--scan", str(case / "scan.obj"), "--scan-landmarks", str(case / "scan_lmks.pp"),
                 "--pred", str(case / "pred.obj"), "--pred-landmarks", str(case / "pred_lmks.txt")]) == 0
    assert capsys.readouterr().out.startswith(lines[0])

    ch = conformance_dir / "now" / "challenge"
    ds = now.evaluate_dataset(ch, ch / "predictions", tmp_path / "out", progress=False)
    summ, lines, frame = _check(ds)
    assert summ["n_scored"] == len(frame) == len(ds.outcomes)
    assert summ["median_mm"] == pytest.approx(ds.overall.median_mm)
    assert len(lines) == 1 + len(ds.per_challenge)


def test_realy_folder_result_from_statistics(tmp_path):
    stats = realy.official_statistics({r: [1.0, 2.0, 4.0] for r in realy.REGIONS})
    res = realy.FolderResult([realy.SubjectOutcome("1", 1, "ok", {r: 1.0 for r in realy.REGIONS})], stats, tmp_path,
                             tmp_path / "REALY_error.txt")
    summ, lines, frame = _check(res)
    assert summ["nose.mean"] == pytest.approx(7.0 / 3.0)
    assert lines == list(realy.format_statistics(stats))
    assert set(frame["region"]) == set(realy.REGIONS)


def test_dense_nme_result():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 200)) * 50
    res = aflw2000_dense.dense_nme(gt, gt + 1.0, gt_landmarks=gt[:, :68])
    summ, lines, frame = _check(res, 1)
    assert frame.loc[0, "nme_percent"] == pytest.approx(summ["nme_percent"])
