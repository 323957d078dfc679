"""notebooks/30_campaign.ipynb under papermill: the default (a demonstration campaign over the conformance cases),
a given campaign folder with a published comparison, and without data."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from _notebooks import run_notebook
from conftest import conformance_root, mirror_root, need
from facenb import campaign

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "30_campaign.ipynb"


@pytest.mark.slow
def test_notebook_default_demo_campaign(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(need(mirror_root(), "public data mirror")))
    monkeypatch.setenv("FACENB_CONFORMANCE", str(need(conformance_root(), "conformance cases")))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in `make report`
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "default.ipynb", {"work_dir": str(tmp_path / "work")})
    assert "demo campaign over the conformance cases" in text
    assert "0.8557" in text  # NoW challenge case: official median 0.8557392 mm
    assert "1.3816" in text  # REALY HIFI3D case: official average nmse@all 1.382 (1.38156 untruncated)
    assert "no published numbers for these methods" in text
    assert pngs == 3  # cumulative curve, NoW and REALY per-item distributions (each shown once)
    assert (tmp_path / "work" / "campaign" / "results.csv").is_file()


@pytest.mark.slow
def test_notebook_given_folder_with_published_comparison(tmp_path, monkeypatch):
    ch = need(conformance_root(), "conformance cases") / "now" / "challenge"
    lst = tmp_path / "one.txt"
    lst.write_text("SUBJ_B_james/multiview_expressions/IMG_0003.jpg\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "benchmarks": {"now": {"kind": "now", "dataset": str(ch), "image_list": str(lst), "split_label": "test"}},
        "methods": {"ckpt": {"predictions": {"now": str(ch / "predictions")}, "reported": "MICA"}}}))
    campaign.run_campaign(spec, tmp_path / "camp", progress=False)
    monkeypatch.delenv("FACENB_CONFORMANCE", raising=False)
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "given.ipynb", {"campaign_dir": str(tmp_path / "camp")})
    assert "demo campaign" not in text
    assert "MICA" in text and "ckpt" in text and "difference" in text  # compared with MICA's published NoW test
    assert "0.2643" in text  # the case's median for IMG_0003 (official 0.26428534 mm)
    assert pngs == 2  # cumulative curve, per-image distribution


def test_notebook_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("FACENB_CONFORMANCE", raising=False)
    text, pngs = run_notebook(NOTEBOOK, tmp_path / "none.ipynb", {})
    assert "No campaign folder: set campaign_dir" in text
    assert pngs == 0
