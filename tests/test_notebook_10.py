"""notebooks/10_now.ipynb under papermill: the synthetic default, the conformance NoW folder (official layout; its
numbers equal the official aggregate), and no data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from _notebooks import run_notebook
from conftest import conformance_root, mirror_root, need

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "10_now.ipynb"


@pytest.mark.slow
def test_synthetic_default(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(need(mirror_root(), "public data mirror")))
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "default.ipynb",
                              {"synth_subjects": 1, "worst_k": 1, "interactive": False, "out_dir": str(tmp_path / "w")})
    assert "SYNTHETIC NoW set" in text and "not NoW data" in text
    assert "1. crop:" in text and "3. refinement:" in text and "4. error:" in text
    for m in ("precise", "coarse", "smooth", "expression_leak", "scale_pose", "missing_parts"):
        assert f"{m}: median" in text
    assert "multiview_occlusions" in text and "selfie" in text
    assert "metrical median" in text and "published NoW test leaderboard" in text and "MICA" in text
    assert "true_mean_mm" in text and "protocol_mean_mm" in text
    # landmarks x2, objective, heatmap, cumulative curves, 6 worst images, truth vs protocol
    assert pngs >= 12


@pytest.mark.slow
def test_conformance_folder_equals_the_official_aggregate(tmp_path):
    ds = need(conformance_root() / "now" / "challenge", "conformance cases")
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "conf.ipynb",
                              {"now_dataset_dir": str(ds), "worst_k": 1, "interactive": False,
                               "out_dir": str(tmp_path / "w")})
    assert "methods: RECON" in text and "RECON: median" in text
    diff = float(re.search(r"max \|diff\| ([0-9.e+-]+) mm", text).group(1))
    assert diff < 1e-6
    assert "only for a synthetic set" in text
    assert pngs >= 5


def test_no_data_says_what_to_point_it_at(tmp_path):
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "none.ipynb",
                              {"now_dataset_dir": str(tmp_path / "absent"), "out_dir": str(tmp_path / "w")})
    assert "not found" in text and "set now_dataset_dir" in text and "surrey_face_model" in text
    assert "not run: no data" in text
    assert "published NoW test leaderboard" in text  # the published numbers need no data
