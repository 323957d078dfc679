"""notebooks/12_aflw2000.ipynb under papermill: default parameters, non-default parameters, and without data."""
from __future__ import annotations

from pathlib import Path

import pytest

from _notebooks import run_notebook
from conftest import conformance_root, mirror_root, need

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "12_aflw2000.ipynb"


def _run(tmp_path, name, params):
    return run_notebook(NOTEBOOK, tmp_path / name, params)


@pytest.mark.slow
def test_notebook_default_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(need(mirror_root(), "public data mirror")))
    monkeypatch.setenv("FACENB_CONFORMANCE", str(need(conformance_root(), "conformance cases")))
    text, pngs = _run(tmp_path, "default.ipynb", {})
    assert "per-image NME: 0 of 2000 differ from the official float32 list" in text
    assert "[ 0, 90]\tMean: 4.836, Std: 0.645" in text  # the official printout of the conformance case
    assert "images per bin: (10, 4, 2)" in text
    assert "[ 0, 90]\tMean: 3.671" in text  # 3DDFA_V2 mb05 on the 16 real images
    assert "issues/20" in text and "quoted with source" in text and "recomputed from raw data" in text
    # the three methods' released predictions on the 40 public images (issue 12)
    assert "coverage: 40/2000 images (rows 0-39), original ground truth" in text
    assert "tier S" in text and "40/2000 images" in text and "'S': 1" in text
    assert "PRNet, balanced (40 images: 34/1/5 per bin)" in text
    assert "2dasl_reconstruction" in text and "dense_gt_dir not set" in text
    assert pngs >= 7  # 2 landmark grids, 3 bar charts, 2 cumulative curves


@pytest.mark.slow
def test_notebook_non_default_parameters(tmp_path, monkeypatch):
    root = need(mirror_root(), "public data mirror")
    conf = need(conformance_root(), "conformance cases")  # located before the variables that say where are dropped
    monkeypatch.delenv("FACENB_DATA_MIRROR", raising=False)
    monkeypatch.delenv("FACENB_CONFORMANCE", raising=False)
    text, pngs = _run(tmp_path, "reannotated.ipynb", {
        "aflw2000_3d_dir": str(root / "aflw2000_3d"), "samples_dir": str(root / "aflw2000_3d_samples"),
        "tddfa_v2_dir": str(root / "tddfa_v2"), "conformance_root": str(conf),
        "case": "aflw02_laplace_bias_outliers", "annotations": "reannotated", "arithmetic": "numpy2",
        "network_dtype": "float64", "n_show": 4, "published_dir": str(root / "aflw2000_3d_2dasl40"),
        "dense_gt_dir": str(_dense_gt(root, tmp_path)), "dense_preset": "sadrnet_dense_3d"})
    assert "[ 0, 90]\tMean: 5.106" in text  # official (numpy 2 run) balanced mean of case aflw02, re-annotated GT
    assert "arithmetic=numpy2" in text and "green: reannotated ground truth" in text
    assert "images per bin: (10, 4, 2)" in text and "[ 0, 90]\tMean: 2.50" in text
    assert "coverage: 40/2000 images (rows 0-39), reannotated ground truth" in text
    # dense_gt_dir: with 3DDFA's own output as the "ground truth", 3DDFA scores 0 and 2DASL what dense_agreement says
    assert "3DDFA, sadrnet_dense_3d: mean 0.000 % over 40 images" in text
    from facenb.benchmarks import aflw2000_published as P

    agree = P.dense_agreement(P.load(root / P.DATASET, root / "aflw2000_3d"), presets=("sadrnet_dense_3d",))
    assert f"2DASL, sadrnet_dense_3d: mean {agree['mean %'][0]:.3f} % over 40 images" in text


def _dense_gt(root: Path, tmp_path: Path) -> Path:
    """A stand-in dense ground-truth folder written by facenb itself: 3DDFA's released reconstructions as
    per-image (3, n) .npy files (the real one needs the licence-gated Basel Face Model)."""
    import numpy as np

    from facenb.benchmarks import aflw2000_published as P

    pub = P.load(root / P.DATASET, root / "aflw2000_3d")
    out = tmp_path / "dense_gt"
    out.mkdir()
    for n in pub.names:
        np.save(out / f"{n}.npy", pub.dense("3DDFA", n))
    return out


@pytest.mark.slow
def test_notebook_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("FACENB_DATA_MIRROR", raising=False)
    monkeypatch.delenv("FACENB_CONFORMANCE", raising=False)
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "empty_cache"))  # no facenb download cache either
    text, _ = _run(tmp_path, "nodata.ipynb", {})
    for name in ("aflw2000_3d", "aflw2000_3d_samples", "tddfa_v2"):
        assert f"{name}: not available -- run: facenb data fetch {name}" in text
    assert "skipped" in text and "The 3DDFA_V2 rows need the data" in text
    assert "aflw2000_3d_2dasl40: not available -- run: facenb data fetch aflw2000_3d_2dasl40" in text
    assert "dense_gt_dir not set" in text
