import json
from pathlib import Path

import nbformat
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
    assert index.count("<tr class='claim'>") == 43
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
