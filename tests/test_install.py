"""A normal (non-editable) install works from any folder: facenb carries its published-results table, seed papers
and notebooks as package resources (setup.py maps data/reported, seeds, notebooks onto facenb._resources).

The wheel is built offline from a copy of the sources (``pip wheel --no-deps --no-build-isolation --no-index``,
with the virtualenv's setuptools and wheel), unpacked into a folder put first on ``PYTHONPATH`` (so it shadows
the editable install of the checkout), and every command runs from another folder with the same interpreter.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SOURCES = ("pyproject.toml", "setup.py", "README.md", "facenb", "data/reported", "seeds", "notebooks")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    for rel in _SOURCES:
        s, d = REPO / rel, src / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
        else:
            shutil.copy2(s, d)
    wheels = tmp / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(wheels), str(src)], capture_output=True, text=True, cwd=tmp)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("facenb-*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "MPLBACKEND": "Agg"}
    return {"site": site, "names": names, "cwd": elsewhere, "env": env}


def _run(inst, *args, env=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=inst["cwd"],
                          env=env or inst["env"], timeout=900)


@pytest.mark.slow
def test_wheel_carries_the_data(installed):
    names = installed["names"]
    for rel, pattern in (("data/reported", "*.csv"), ("seeds", "*.yaml"), ("notebooks", "*.ipynb")):
        kind = Path(rel).name
        expected = {f"facenb/_resources/{kind}/{p.name}" for p in (REPO / rel).glob(pattern)}
        assert expected and expected <= names, kind
    assert "facenb/_resources/notebooks/params.yaml" in names
    assert "facenb/registry/datasets.yaml" in names


@pytest.mark.slow
def test_installed_package_runs_from_another_folder(installed, tmp_path):
    site = installed["site"]
    probe = _run(installed, "-c", "import facenb, facenb.data as D, facenb.results as R; "
                 "print(facenb.__file__); print(R.default_data_dir()); print(D.resource_dir('notebooks'))")
    assert probe.returncode == 0, probe.stderr
    for line in probe.stdout.split():
        assert Path(line).is_relative_to(site), line  # the wheel's files, not the checkout's

    listed = _run(installed, "-m", "facenb", "results", "list", "--benchmark", "now")
    assert listed.returncode == 0, listed.stderr
    assert "MICA" in listed.stdout and "scan_to_mesh" in listed.stdout

    out = tmp_path / "findings.json"
    checked = _run(installed, "-m", "facenb", "results", "check", "--json", str(out))
    assert checked.returncode == 0, checked.stderr
    findings = json.loads(out.read_text())
    assert isinstance(findings, list) and findings and {"kind", "method", "sources"} <= set(findings[0])

    ledger = _run(installed, "-c", "from facenb.ledger import build_ledger; led = build_ledger(); "
                  "print(len(led), sorted(set(led.tier)))")
    assert ledger.returncode == 0, ledger.stderr
    assert ledger.stdout.split()[0] == "43"

    # the download cache defaults to the user's cache folder, never a folder of the installed package
    env = {k: v for k, v in installed["env"].items() if k not in ("FACENB_DATA", "XDG_CACHE_HOME")}
    env["HOME"] = str(tmp_path / "home")
    cache = _run(installed, "-c", "from facenb import data; print(data.cache_dir())", env=env)
    assert cache.returncode == 0, cache.stderr
    assert Path(cache.stdout.strip()) == tmp_path / "home" / ".cache" / "facenb"


@pytest.mark.slow
def test_installed_report_runs_the_packaged_notebooks(installed, tmp_path):
    """`facenb report` from a non-editable install: the packaged notebooks and params.yaml are found, the
    leaderboard notebook runs in a kernel importing the installed package, and the ledger holds the 43 claims."""
    reports = tmp_path / "reports"
    rep = _run(installed, "-m", "facenb", "report", "--out", str(reports), "--only", "00_leaderboards")
    assert rep.returncode == 0, rep.stdout[-2000:] + rep.stderr[-2000:]
    assert "00_leaderboards: ok" in rep.stdout
    executed = (reports / "00_leaderboards.ipynb").read_text()
    assert "published numbers from" in executed and "Traceback" not in executed
    assert (reports / "ledger.csv").read_text().count("\n") == 44
    assert "Reproduction ledger (43 claims)" in (reports / "index.html").read_text()
