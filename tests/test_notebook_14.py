"""notebooks/14_stirling_florence.ipynb under papermill: default parameters (public geometry), without any data, and
with the Florence dataset parameters pointing at a MICC-layout folder built from the james scan."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _notebooks import run_notebook
from conftest import mirror_root, need

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "14_stirling_florence.ipynb"


@pytest.mark.slow
def test_notebook_default_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(need(mirror_root(), "public data mirror")))
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "default.ipynb", {"out_dir": str(tmp_path / "out")})
    assert "james scan: 6393 vertices, 3D outer interocular 95.17 mm" in text
    assert "Stirling/FG2018: 1363 scan vertices in the face mask" in text
    assert "crop: 1204 of 6393 scan vertices within 95 mm of the nose tip" in text
    assert "Florence (prnet): NME" in text and "Florence (ganfit)" in text
    for row in ("prnet (default)", "prnet, distances after the ICP", "prnet, no ICP", "ganfit", "m3dfb (E1)"):
        assert row in text
    assert "★ PRNet" in text and "3.7551" in text and "2.06" in text
    assert "Stirling: not scored -- set stirling_dir" in text and "Florence: not scored -- set florence_dir" in text
    assert pngs == 2  # the two heatmap rows


@pytest.mark.slow
def test_notebook_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("FACENB_DATA_MIRROR", raising=False)
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "empty_cache"))  # no facenb download cache either
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "nodata.ipynb", {"out_dir": str(tmp_path / "out")})
    for name in ("james_scan", "surrey_face_model"):
        assert f"{name}: not available -- run: facenb data fetch {name}" in text
    assert "skipped: needs james_scan" in text and pngs == 0
    assert "★ PRNet" in text  # the published leaderboards need no data
    assert "Florence: not scored" in text


@pytest.mark.slow
def test_notebook_scores_a_florence_folder(tmp_path, monkeypatch):
    from facenb.benchmarks import florence as F
    from facenb.io import load_mesh
    from test_florence import _fake_micc

    root = need(mirror_root(), "public data mirror")
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(root))
    m = load_mesh(root / "james_scan" / "james.obj")
    lm = F.ibug68_from_ljson(root / "james_scan" / "james.ljson")
    micc, lmk, pred = _fake_micc(tmp_path, (m.vertices, m.faces, lm))
    text, _ = run_notebook(NOTEBOOK, tmp_path / "florence.ipynb", {
        "florence_dir": str(micc), "florence_predictions_dir": str(pred), "florence_landmarks_dir": str(lmk),
        "florence_protocol": "ganfit", "out_dir": str(tmp_path / "out")})
    want = F.evaluate_dataset(micc, pred, tmp_path / "again", landmarks_dir=lmk, options=F.GANFIT, progress=False)
    assert f"Florence (ganfit): {want.overall['mean']:.4f} mm" in text
    assert "'ok': 3" in text and "'missing': 1" in text
    assert np.isfinite(want.overall["mean"])
