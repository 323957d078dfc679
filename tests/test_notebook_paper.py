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
    assert "NoW error of the synthetic prediction" in text
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
    text = _run(tmp_path, {"paper": "MICA", "demo_seed": 3})
    assert "MICA: 5 claims" in text
    assert "facenb data fetch james_scan" in text


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
