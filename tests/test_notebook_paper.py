"""The paper reproduction template under papermill: default and non-default parameters."""
import os
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NB = REPO / "notebooks" / "20_paper_reproduction.ipynb"


def _run(tmp_path, params):
    import papermill as pm

    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", cwd=str(NB.parent),
                        progress_bar=False)
    nb = nbformat.read(str(out), as_version=4)
    return "\n".join(o.get("text", "") if o.get("output_type") == "stream" else str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_default_paper(tmp_path, data_mirror, monkeypatch):
    monkeypatch.setenv("FACENB_REPORT_DIR", str(tmp_path))
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(data_mirror))
    text = _run(tmp_path, {})
    assert "PRNet: 28 claims" in text
    assert "NoW error of the synthetic prediction" in text
    assert (tmp_path / "ledger_PRNet.csv").exists()


def test_other_paper_without_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FACENB_DATA_MIRROR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("FACENB_DATA", str(tmp_path / "empty_cache"))
    text = _run(tmp_path, {"paper": "MICA", "demo_seed": 3})
    assert "MICA: 5 claims" in text
    assert "facenb data fetch james_scan" in text
