"""notebooks/00_leaderboards.ipynb runs under papermill with default and non-default parameters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NB = REPO / "notebooks" / "00_leaderboards.ipynb"

pytestmark = pytest.mark.slow


def test_committed_stripped_with_one_parameters_cell():
    nb = json.loads(NB.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert nb["cells"][0]["cell_type"] == "markdown" and "Leaderboards" in "".join(nb["cells"][0]["source"])


def _run(tmp_path: Path, **params) -> dict:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", cwd=str(tmp_path),
                               progress_bar=False)
    return json.loads(out.read_text())


def _outputs(nb: dict) -> str:
    text = []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            text.append("".join(o.get("text", "")))
            data = o.get("data", {})
            text.append("".join(data.get("text/plain", "")))
            if "application/vnd.plotly.v1+json" in data:
                text.append(json.dumps(data["application/vnd.plotly.v1+json"]))
    return "\n".join(text)


def test_default_parameters(tmp_path):
    nb = _run(tmp_path)
    out = _outputs(nb)
    assert "43 seed claims" in out
    n_plots = sum("application/vnd.plotly.v1+json" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    assert n_plots == 6  # NoW, REALY frontal x2, REALY side x2, AFLW2000-3D
    assert "\\u2605 MICA" in out or "\u2605 MICA" in out
    assert "realy_all_mismatch" in out and "quoted with source" in out


def test_other_parameters(tmp_path):
    nb = _run(tmp_path, benchmarks=["realy"], highlight=["HRN", "HiFace-f"], realy_views=["side"])
    out = _outputs(nb)
    n_plots = sum("application/vnd.plotly.v1+json" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    assert n_plots == 2
    assert ("\\u2605 HRN" in out or "\u2605 HRN" in out) and "\u2605 MICA" not in out and "\\u2605 MICA" not in out


def test_missing_data_still_finishes(tmp_path):
    nb = _run(tmp_path, data_dir=str(tmp_path / "nowhere"))
    assert "is not at" in _outputs(nb)
