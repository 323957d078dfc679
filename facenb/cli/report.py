"""``facenb report``: execute every notebook and write the HTML report with the reproduction ledger."""
from __future__ import annotations

import argparse
from pathlib import Path

from facenb.cli import command


@command
def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run every notebook with papermill and write reports/index.html",
                       description="Execute the notebooks (parameters from notebooks/params.yaml), export them to "
                                   "HTML and write reports/index.html with the reproduction ledger.")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    p.add_argument("--only", action="append", metavar="NAME", help="run only this notebook or run (repeatable)")
    p.add_argument("--params", type=Path, help="YAML overriding the notebooks' params.yaml (use absolute paths)")
    p.add_argument("--notebooks", type=Path, help="notebooks folder (default: the notebooks shipped with facenb)")
    p.add_argument("--force", action="store_true", help="re-run notebooks even if nothing changed")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from facenb import report

    results = report.build_report(args.out, only=args.only, params_file=args.params, notebooks_dir=args.notebooks,
                                  force=args.force)
    failed = [r for r in results if r.status == "failed"]
    return 1 if failed else 0
