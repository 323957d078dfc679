"""The HTML report: every notebook executed with papermill, exported to self-contained HTML, and an index.

``facenb report`` (and ``make report``):

1. reads the notebook runs from ``notebooks/params.yaml`` (or ``--params FILE``): per notebook stem, either a
   mapping of parameters (one run) or ``runs:`` -- a list of ``{name, parameters}`` (a template executed once per
   entry, e.g. the paper notebook once per seed paper); notebooks not listed run once with their defaults;
2. executes each run with papermill (kernel ``python3``, working directory: the report folder) into
   ``reports/<name>.ipynb`` and converts it to ``reports/<name>.html`` with nbconvert (plotly.js embedded by the
   notebooks' renderer, so the pages work offline);
3. writes ``reports/index.html``: every run with status, run time and link, then the reproduction ledger of all
   seed claims (tier counts and one row per claim), also written as ``reports/ledger.csv``.

The notebooks are the ones shipped with facenb (package resource ``facenb._resources.notebooks``, the repository's
``notebooks/``; ``--notebooks DIR`` for others). Each runs with the report folder as working directory -- writable,
never the installed package nor the source tree -- so a relative output path of a notebook lands in the report and a
relative input path in a parameter file resolves against the report folder (give absolute paths).

Report channel: a notebook hands structured results to the report through its executed ``.ipynb`` itself, not
through the environment: :func:`publish_ledger` displays the ledger rows as one output of MIME type
:data:`LEDGER_MIMETYPE` (JSON; a ``text/plain`` line for people), and :func:`read_ledger` reads them back from the
executed notebook. Rows published by a run replace the default rows of their papers, so ``build_report()`` from
Python and ``facenb report`` give the same ledger. (``$FACENB_REPORT_DIR`` is set during the runs only as the
scratch folder of :func:`facenb.reproduction.work_dir`.)

A failing notebook is marked failed with its error (its partial HTML is still written); the others still run.
A run is skipped when nothing it depends on changed since its last successful run: the notebook file, its
parameters, the facenb sources, ``seeds/`` and ``data/reported/``, which datasets are available and whether
the conformance cases are (``reports/.state.json``).
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from facenb.errors import InputError

__all__ = ["Run", "RunResult", "LEDGER_MIMETYPE", "plan_runs", "build_report", "publish_ledger", "read_ledger"]

#: MIME type of the ledger rows a notebook hands to the report (:func:`publish_ledger`).
LEDGER_MIMETYPE = "application/vnd.facenb.ledger+json"


@dataclass(frozen=True)
class Run:
    """One notebook execution: ``name`` (output stem), the notebook, its parameters."""

    name: str
    notebook: Path
    parameters: dict


@dataclass(frozen=True)
class RunResult:
    """Outcome of a run: ``status`` is ``ok``, ``failed`` or ``skipped`` (unchanged since the last ok run)."""

    name: str
    notebook: str
    status: str
    seconds: float
    html: str
    error: str = ""
    title: str = ""


def _load_params(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc.__class__.__name__})", path, "fix the parameters file") from None
    if not isinstance(data, dict):
        raise InputError("parameters file must map notebook names to parameters", path,
                         "see notebooks/params.yaml for the format")
    return data


def plan_runs(notebooks_dir: Path, params_file: Path | None = None, only: Sequence[str] | None = None) -> list[Run]:
    """The runs of the report, in notebook order (see module docstring for the parameters format)."""
    params = _load_params(notebooks_dir / "params.yaml")
    if params_file is not None:
        if not Path(params_file).is_file():
            raise InputError("parameters file not found", params_file, "give an existing YAML file")
        params.update(_load_params(Path(params_file)))
    runs: list[Run] = []
    for nb in sorted(notebooks_dir.glob("*.ipynb")):
        spec = params.get(nb.stem, {}) or {}
        if isinstance(spec, dict) and "runs" in spec:
            for r in spec["runs"]:
                runs.append(Run(str(r["name"]), nb, dict(r.get("parameters") or {})))
        else:
            runs.append(Run(nb.stem, nb, dict(spec)))
    if only:
        wanted = set(only)
        runs = [r for r in runs if r.name in wanted or r.notebook.stem in wanted]
        if not runs:
            raise InputError(f"no notebook or run named {', '.join(sorted(wanted))}", notebooks_dir,
                             "see the names in notebooks/ and notebooks/params.yaml")
    return runs


def _tree_hash(paths: Sequence[Path], patterns: Sequence[str]) -> str:
    h = hashlib.sha256()
    for base in paths:
        if not base.exists():
            continue
        files = [base] if base.is_file() else sorted(p for pat in patterns for p in base.rglob(pat))
        for p in files:
            if "__pycache__" in p.parts:
                continue
            h.update(str(p.relative_to(base.parent)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _environment_key() -> str:
    from facenb import data as D

    avail = []
    try:
        avail = sorted(d.name for d in D.datasets() if D.available(d.name))
    except InputError:  # a broken registry is reported by the notebooks that need it
        pass
    return json.dumps({"available": avail, "mirror": D.mirror_dir() is not None,
                       "conformance": D.conformance_root() is not None})


def _title(nb_path: Path) -> str:
    try:
        nb = json.loads(nb_path.read_text())
        for c in nb.get("cells", []):
            if c.get("cell_type") == "markdown":
                src = "".join(c.get("source", ""))
                for line in src.splitlines():
                    if line.startswith("#"):
                        return line.lstrip("#").strip()
    except (json.JSONDecodeError, OSError):
        pass
    return nb_path.stem


_EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>')


def offline_html(body: str) -> str:
    """Drop the CDN ``<script src=...>`` tags nbconvert and plotly add (require.js, MathJax): the report must work
    offline; plotly.js itself is embedded by the notebooks' renderer. Markdown LaTeX then shows as source."""
    return _EXTERNAL_SCRIPT.sub("", body)


def _to_html(ipynb: Path, out_html: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    out_html.write_text(offline_html(body))


def _execute(run: Run, out_dir: Path, kernel: str) -> tuple[str, str]:
    import papermill as pm

    out_nb = out_dir / f"{run.name}.ipynb"
    # The kernel process inherits our stderr; its log lines (e.g. ipykernel's transport warning) go to
    # reports/<name>.kernel.log instead of interleaving with the progress lines.
    sys.stderr.flush()
    saved = os.dup(2)
    log = open(out_dir / f"{run.name}.kernel.log", "wb")
    os.dup2(log.fileno(), 2)
    try:
        pm.execute_notebook(str(run.notebook), str(out_nb), parameters=run.parameters, kernel_name=kernel,
                            cwd=str(out_dir.resolve()), progress_bar=False, log_output=False)
        status, error = "ok", ""
    except pm.PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}".strip().splitlines()[0][:500]
    except Exception as exc:  # kernel death, bad parameters, ...
        status, error = "failed", f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.close()
    if out_nb.exists():
        try:
            _to_html(out_nb, out_dir / f"{run.name}.html")
        except Exception as exc:
            status, error = "failed", error or f"HTML export failed: {type(exc).__name__}: {exc}"
    return status, error


def build_report(
    out_dir: str | Path = "reports",
    *,
    only: Sequence[str] | None = None,
    params_file: str | Path | None = None,
    notebooks_dir: str | Path | None = None,
    kernel: str = "python3",
    force: bool = False,
    ledger_context: dict | None = None,
    echo=print,
) -> list[RunResult]:
    """Execute the notebooks and write the report; returns one :class:`RunResult` per run.

    Parameters
    ----------
    out_dir : path
        Report folder (created): ``<run>.ipynb``, ``<run>.html``, ``index.html``, ``ledger.csv``.
    only : list of str, optional
        Run only these notebooks (stem) or runs (name).
    params_file : path, optional
        YAML overriding the notebooks folder's ``params.yaml``.
    notebooks_dir : path, optional
        Default: the notebooks shipped with facenb (:func:`facenb.data.resource_dir` ``("notebooks")``).
    ledger_context : dict, optional
        Keyword arguments of :func:`facenb.ledger.build_ledger` (e.g. ``seeds_dir``); the rows the runs published
        (:func:`publish_ledger`) then replace the default rows of their papers.
    """
    import facenb
    from facenb import data as D

    nb_dir = Path(notebooks_dir) if notebooks_dir else D.resource_dir("notebooks")
    if not nb_dir.is_dir():
        raise InputError("notebooks folder not found", nb_dir, "give a folder of .ipynb files (--notebooks DIR)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = plan_runs(nb_dir, Path(params_file) if params_file else None, only)
    state_file = out / ".state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    common = _tree_hash([Path(facenb.__file__).parent, D.resource_dir("seeds"), D.resource_dir("reported")],
                        ["*.py", "*.yaml", "*.csv"]) + _environment_key()
    results: list[RunResult] = []
    for i, run in enumerate(runs, 1):
        key = hashlib.sha256((common + json.dumps(run.parameters, sort_keys=True, default=str)).encode()
                             + run.notebook.read_bytes()).hexdigest()
        html_name = f"{run.name}.html"
        prev = state.get(run.name, {})
        title = _title(run.notebook)
        if run.parameters:
            title = ", ".join(f"{k}={v}" for k, v in run.parameters.items()) + " -- " + title
        if not force and prev.get("key") == key and prev.get("status") == "ok" and (out / html_name).exists():
            echo(f"[{i}/{len(runs)}] {run.name}: unchanged, skipped")
            results.append(RunResult(run.name, run.notebook.name, "skipped", prev.get("seconds", 0.0), html_name,
                                     "", title))
            continue
        echo(f"[{i}/{len(runs)}] {run.name}: running {run.notebook.name} ...")
        t0 = time.perf_counter()
        saved_dir = os.environ.get("FACENB_REPORT_DIR")
        os.environ["FACENB_REPORT_DIR"] = str(out.resolve())  # scratch folder of the runs (reproduction.work_dir)
        try:
            status, error = _execute(run, out, kernel)
        finally:
            if saved_dir is None:
                os.environ.pop("FACENB_REPORT_DIR", None)
            else:
                os.environ["FACENB_REPORT_DIR"] = saved_dir
        dt = time.perf_counter() - t0
        echo(f"[{i}/{len(runs)}] {run.name}: {status} in {dt:.1f} s" + (f" -- {error}" if error else ""))
        results.append(RunResult(run.name, run.notebook.name, status, dt, html_name, error, title))
        state[run.name] = {"key": key, "status": status, "seconds": dt}
        state_file.write_text(json.dumps(state, indent=1))
    ledger = None
    try:
        from facenb import ledger as L

        ledger = L.build_ledger(**(ledger_context or {}))
        published = [read_ledger(out / f"{r.name}.ipynb") for r in results if r.status in ("ok", "skipped")]
        ledger = merge_ledgers(ledger, [p for p in published if p is not None])
        ledger.to_csv(out / "ledger.csv", index=False)
    except ImportError:
        pass
    (out / "index.html").write_text(_index_html(results, ledger))
    echo(f"report: {out / 'index.html'}")
    return results


def publish_ledger(ledger) -> None:
    """Hand a notebook's ledger rows to the report (call it in the notebook).

    Displays one output holding the rows as JSON under :data:`LEDGER_MIMETYPE` (``{"columns", "dtypes",
    "rows"}``, NaN as null) and a one-line ``text/plain`` for people. The executed notebook then carries the rows;
    :func:`build_report` reads them back with :func:`read_ledger`.

    Parameters
    ----------
    ledger : pandas.DataFrame
        Rows of :func:`facenb.ledger.build_ledger` (e.g. with tier-R values the notebook recomputed).
    """
    from IPython.display import display

    payload = {"columns": [str(c) for c in ledger.columns],
               "dtypes": {str(c): str(t) for c, t in ledger.dtypes.items()},
               "rows": [[_json_value(v) for v in row] for row in ledger.itertuples(index=False, name=None)]}
    papers = ", ".join(sorted(set(map(str, ledger["paper"])))) if "paper" in ledger else ""
    display({LEDGER_MIMETYPE: payload,
             "text/plain": f"{len(ledger)} ledger rows{' of ' + papers if papers else ''} handed to the report"},
            raw=True)


def _json_value(v):
    """A cell as exact JSON: numpy scalars as Python numbers (floats keep every digit), NaN/None as null."""
    if hasattr(v, "item"):
        v = v.item()
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v if isinstance(v, (bool, int, float, str)) else str(v)


def read_ledger(notebook: str | Path):
    """The ledger rows an executed notebook published with :func:`publish_ledger` (the last such output), or None.

    Returns
    -------
    pandas.DataFrame or None
        None when the notebook does not exist, cannot be read, or published nothing.
    """
    import pandas as pd

    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    payload = None
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []) or []:
            if LEDGER_MIMETYPE in (o.get("data") or {}):
                payload = o["data"][LEDGER_MIMETYPE]
    if not isinstance(payload, dict) or "columns" not in payload:
        return None
    df = pd.DataFrame(payload.get("rows") or [], columns=payload["columns"])
    for col, dtype in (payload.get("dtypes") or {}).items():
        if col in df and dtype.startswith(("float", "int")):
            df[col] = pd.to_numeric(df[col]).astype(float if dtype.startswith("float") else dtype)
    return df


def merge_ledgers(ledger, published):
    """``ledger`` with the rows of each published ledger replacing the default rows of its papers; sorted by paper
    and claim id. Columns are the default ledger's (a column a notebook did not publish is left empty)."""
    import pandas as pd

    for rows in published:
        if not len(rows) or "paper" not in rows:
            continue
        papers = set(rows["paper"])
        rows = rows.reindex(columns=ledger.columns)
        ledger = pd.concat([ledger[~ledger["paper"].isin(papers)], rows], ignore_index=True)
    return ledger.sort_values(["paper", "claim_id"]).reset_index(drop=True)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}.ok{color:#1a7f37}.failed{color:#b00020}.skipped{color:#555}
.tier{font-weight:bold;text-align:center}.num{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f5f5f5;padding:0 .2rem}
.src{font-size:.75rem;max-width:420px;word-break:break-word}
"""

_TIER_TEXT = {
    "R": "recomputed from raw data",
    "S": "recomputed from raw data on a public subset; coverage says how much",
    "P": "recomputed from published per-image errors",
    "C": "consistency-checked from published components",
    "Q": "quoted with a source (the public data allows no more)",
}


def _index_html(results: Sequence[RunResult], ledger) -> str:
    e = html.escape
    rows = []
    for r in results:
        link = f'<a href="{e(r.html)}">{e(r.name)}</a>'
        rows.append(f"<tr><td>{link}</td><td>{e(r.title)}</td><td class='{r.status}'>{r.status}</td>"
                    f"<td class='num'>{r.seconds:.1f}</td><td>{e(r.error)}</td></tr>")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>facenb report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>facenb report</h1>",
        "<p>Every notebook of <code>notebooks/</code> executed with papermill (parameters from "
        "<code>notebooks/params.yaml</code>), then the reproduction ledger of the seed papers' claims.</p>",
        "<h2>Notebooks</h2><table id='notebooks'><tr><th>run</th><th>title</th><th>status</th><th>seconds</th>"
        "<th>error</th></tr>",
        *rows,
        "</table>",
    ]
    if ledger is not None:
        counts = ledger["tier"].value_counts().to_dict()
        parts.append(f"<h2>Reproduction ledger ({len(ledger)} claims)</h2><ul id='tiers'>")
        for t in "RSPCQ":
            parts.append(f"<li><b>{t}</b> ({_TIER_TEXT[t]}): {counts.get(t, 0)}</li>")
        parts.append("</ul><p>Also as <a href='ledger.csv'>ledger.csv</a>. Differences are reproduced minus "
                     "reported, in the claim's unit.</p><table id='ledger'><tr>")
        cols = ["paper", "claim_id", "benchmark", "split", "region", "statistic", "reported", "reproduced", "tier",
                "difference"] + (["coverage"] if "coverage" in ledger.columns else [])
        parts.append("".join(f"<th>{e(c)}</th>" for c in cols) + "<th>source / why</th></tr>")
        for _, row in ledger.iterrows():
            cells = []
            for c in cols:
                v = row[c]
                if isinstance(v, float):
                    text = "" if v != v else f"{v:.4f}"
                    cells.append(f"<td class='num'>{e(text)}</td>")
                else:
                    cells.append(f"<td{' class=tier' if c == 'tier' else ''}>{e(str(v))}</td>")
            cells.append(f"<td class='src'>{e(str(row['source']))}<br><i>{e(str(row['why']))}</i></td>")
            parts.append(f"<tr class='claim' data-claim='{e(str(row['claim_id']))}'>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
