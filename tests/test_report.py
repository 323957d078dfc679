import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from facenb import report
from facenb.cli import main


def _nb(path: Path, code: str, param: str = "x = 1"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Test notebook {path.stem}"),
                nbformat.v4.new_code_cell(param, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture
def nbdir(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    _nb(d / "01_ok.ipynb", "print('value', x * 2)")
    _nb(d / "02_fails.ipynb", "raise ValueError('planted failure')")
    _nb(d / "03_template.ipynb", "print('name', name)", param="name = 'a'")
    (d / "params.yaml").write_text("01_ok: {x: 21}\n03_template:\n  runs:\n    - {name: t_a, parameters: {name: A}}\n"
                                   "    - {name: t_b, parameters: {name: B}}\n")
    return d


def test_report_runs_marks_failures_and_skips_unchanged(nbdir, tmp_path):
    out = tmp_path / "rep"
    lines = []
    res = report.build_report(out, notebooks_dir=nbdir, echo=lines.append)
    status = {r.name: r.status for r in res}
    assert status == {"01_ok": "ok", "02_fails": "failed", "t_a": "ok", "t_b": "ok"}
    failed = next(r for r in res if r.name == "02_fails")
    assert "planted failure" in failed.error
    assert "value 42" in (out / "01_ok.html").read_text()
    assert "name B" in (out / "t_b.html").read_text()
    index = (out / "index.html").read_text()
    assert "02_fails" in index and "planted failure" in index and "Reproduction ledger (43 claims)" in index
    assert index.count("<tr class='claim'") == 43
    assert (out / "ledger.csv").read_text().count("\n") == 44
    assert any("running" in line for line in lines)  # progress
    # second run: the ok notebooks are skipped, the failed one re-runs
    res2 = report.build_report(out, notebooks_dir=nbdir, echo=lines.append)
    assert {r.name: r.status for r in res2} == {"01_ok": "skipped", "02_fails": "failed", "t_a": "skipped",
                                                 "t_b": "skipped"}
    # a changed parameter re-runs only that notebook
    (nbdir / "params.yaml").write_text((nbdir / "params.yaml").read_text().replace("x: 21", "x: 5"))
    res3 = report.build_report(out, notebooks_dir=nbdir, only=["01_ok"], echo=lines.append)
    assert [r.status for r in res3] == ["ok"] and "value 10" in (out / "01_ok.html").read_text()


def test_offline_html_strips_cdn_scripts():
    html = '<script src="https://cdnjs.example/require.js"></script><p>x</p><script>var a=1;</script>'
    assert report.offline_html(html) == "<p>x</p><script>var a=1;</script>"


def test_cli_report_bad_only(nbdir, tmp_path, capsys):
    rc = main(["report", "--notebooks", str(nbdir), "--out", str(tmp_path / "r"), "--only", "nope"])
    assert rc == 2
    assert "no notebook or run named nope" in capsys.readouterr().err


def test_notebook_rows_reach_the_ledger_through_the_executed_notebook(tmp_path, monkeypatch):
    """The report channel: rows a notebook publishes travel in its executed .ipynb (no environment variable), so
    build_report() from Python and `facenb report` give the same ledger, with the notebook's tier-R row."""
    monkeypatch.delenv("FACENB_REPORT_DIR", raising=False)
    # other work on the facenb sources during the test must not force a re-run (the skip is what is tested below)
    monkeypatch.setattr(report, "_tree_hash", lambda paths, patterns: "frozen")
    d = tmp_path / "nbs"
    d.mkdir()
    _nb(d / "01_publish.ipynb", "from facenb import ledger as L, report\n"
        "led = L.build_ledger(papers=['MICA'], recomputed={'mica-now-test-mean': (value, 'R', 'unit test')})\n"
        "report.publish_ledger(led)\nopen('relative.txt', 'w').write('x')", param="value = 1.2345678901234567")
    res = report.build_report(tmp_path / "py", notebooks_dir=d, echo=lambda s: None)
    assert [r.status for r in res] == ["ok"]
    # the working directory is the report folder: never the notebooks' (installed package or source tree)
    assert (tmp_path / "py" / "relative.txt").exists() and not (d / "relative.txt").exists()
    assert "FACENB_REPORT_DIR" not in os.environ
    published = report.read_ledger(tmp_path / "py" / "01_publish.ipynb")
    assert len(published) == 5 and set(published["paper"]) == {"MICA"}
    led = pd.read_csv(tmp_path / "py" / "ledger.csv").set_index("claim_id")
    assert len(led) == 43
    row = led.loc["mica-now-test-mean"]
    assert row["tier"] == "R" and row["reproduced"] == 1.2345678901234567  # every digit survives the channel
    assert (led.drop(index="mica-now-test-mean")["tier"] != "R").all()
    assert main(["report", "--notebooks", str(d), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "ledger.csv").read_bytes() == (tmp_path / "py" / "ledger.csv").read_bytes()
    # a second build skips the unchanged run and still reads its rows from the executed notebook
    res = report.build_report(tmp_path / "py", notebooks_dir=d, echo=lambda s: None)
    assert [r.status for r in res] == ["skipped"]
    assert pd.read_csv(tmp_path / "py" / "ledger.csv").set_index("claim_id").loc["mica-now-test-mean", "tier"] == "R"


def test_read_ledger_without_published_rows(tmp_path):
    _nb(tmp_path / "plain.ipynb", "print(1)")
    assert report.read_ledger(tmp_path / "plain.ipynb") is None  # never executed: no outputs
    assert report.read_ledger(tmp_path / "absent.ipynb") is None
