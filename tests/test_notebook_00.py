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
    assert n_plots == 8  # NoW, REALY frontal x2, REALY side x2, AFLW2000-3D, Stirling HQ and LQ
    assert "Stirling/ESRC (FG2018) HQ" in out and "VGGHeads" in out
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


def _campaign(conformance_dir: Path, tmp_path: Path) -> Path:
    """A campaign over the conformance cases (NoW challenge: 4 validation images; REALY realy01: 1 subject) and a
    synthetic Stirling release (`facenb synth stirling`: 2 HQ + 2 LQ images) whose one method is compared as the
    published PRNet (spec `reported:`), scored at test time."""
    import yaml

    from conftest import mirror_root, need

    from facenb import campaign, synth

    ch = conformance_dir / "now" / "challenge"
    rc = conformance_dir / "realy" / "realy01_hifi3d_topology"
    st = tmp_path / "stirling"
    synth.synth_stirling(st, subjects=2, images_per_subject=2, methods=["precise"],
                         sfm_dir=need(mirror_root() / "surrey_face_model", "public data mirror"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "nb00", "benchmarks": {
        "now_challenge": {"kind": "now", "dataset": str(ch)},
        "realy_f": {"kind": "realy", "keypoints": str(rc / "REALY_HIFI3D_keypoints"),
                    "regions": str(rc / "REALY_scan_region"), "scale": str(rc / "metrical_scale.txt"),
                    "template": "HIFI3D", "view": "frontal"},
        "stirling": {"kind": "stirling", "dataset": str(st)}},
        "methods": {"ckpt": {"reported": "PRNet", "predictions": {"now_challenge": str(ch / "predictions"),
                                                                  "realy_f": str(rc / "prediction"),
                                                                  "stirling": str(st / "predictions" / "precise")}}}}))
    campaign.run_campaign(spec, tmp_path / "campaign", progress=False)
    return tmp_path / "campaign"


def _arr(v):
    """A plotly JSON array (plain list, or plotly 6+'s base64 ``{"bdata", "dtype"}``) as a list."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def _traces(nb: dict) -> list[dict]:
    return [t for c in nb["cells"] for o in c.get("outputs", [])
            for t in o.get("data", {}).get("application/vnd.plotly.v1+json", {}).get("data", [])]


def test_campaign_numbers_drawn_beside_quoted(tmp_path, conformance_dir):
    """Tier-R numbers of a campaign folder appear as diamond markers (NoW, REALY ranking) and ◆ rows (REALY heatmap)
    with exactly the campaign's values, next to the quoted bars; the recomputed rows are listed with tier R."""
    from facenb import campaign

    try:
        folder = _campaign(conformance_dir, tmp_path)
    except Exception as exc:  # REALY templates absent: the NoW half is enough for the demonstration campaign
        pytest.skip(f"campaign over the conformance cases could not run: {exc}")
    res = campaign.load_results(folder, as_reported=True)
    nb = _run(tmp_path, campaign_dir=str(folder), benchmarks=["now", "realy", "stirling"], realy_views=["frontal"])
    out = _outputs(nb)
    assert "recomputed by facenb (tier R) in campaign" in out and "PRNet on 4/4 items" in out
    traces = _traces(nb)
    markers = [t for t in traces if t.get("type") == "scatter" and t.get("marker", {}).get("symbol") == "diamond"]
    # three diamonds (median, mean, std) per chart with campaign numbers, in notebook order: NoW validation (no
    # published numbers: a chart of its own), Stirling HQ and LQ (beside the quoted bars, on PRNet's column)
    stats = [t for t in markers if t["name"].split(":")[0] in ("median", "mean", "std")]
    assert len(stats) == 9
    for chart, (bench, split) in enumerate((("now", "validation"), ("stirling", "HQ"), ("stirling", "LQ"))):
        for t in stats[3 * chart:3 * chart + 3]:
            stat = t["name"].split(":")[0]
            want = res[(res.benchmark == bench) & (res.split == split) & (res.region == "all")
                       & (res.statistic == stat)]["value"].iloc[0]
            assert t["name"] == f"{stat}: recomputed (R)" and _arr(t["y"]) == pytest.approx([want])
            assert "PRNet" in t["x"][0]
    # REALY frontal: the ranking gets a diamond on PRNet's own row, at the campaign's 'all'
    ranking = [t for t in markers if t["name"] == "recomputed (R)"]
    want_all = res[(res.benchmark == "realy") & (res.region == "all") & (res.statistic == "mean")]["value"].iloc[0]
    assert len(ranking) == 1 and _arr(ranking[0]["x"]) == pytest.approx([want_all]) and "PRNet" in ranking[0]["y"][0]
    heat = [t for t in traces if t.get("type") == "heatmap"]
    assert any("PRNet (recomputed, R)" in "".join(t["y"]) for t in heat)
    assert "\u25c6" in json.dumps(heat, ensure_ascii=False) and "quoted" in out
    # the quoted bars are still there (NoW test: no recomputation on that split, bars as without a campaign; REALY
    # ranking: the quoted bars, PRNet's among them), and the recomputed rows are listed with their tier
    bars = [t for t in traces if t.get("type") == "bar"]
    assert {t["name"] for t in bars if t.get("orientation") != "h"} == {"median", "mean", "std", "median, quoted",
                                                                         "mean, quoted", "std, quoted"}
    assert "stirling HQ: 1 method(s) recomputed by facenb (tier R)" in out and "PRNet on 2/2 items" in out
    quoted = [t for t in bars if t.get("name") == "quoted"]
    assert len(quoted) == 1 and any("PRNet" in y for y in quoted[0]["y"])
    assert "settings_hash" in out and "4/4 items" in out
