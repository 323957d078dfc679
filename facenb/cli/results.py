"""``facenb results``: the published-results table, its sources, and its consistency findings.

``facenb results list [--benchmark B] [--method M] ...`` prints rows of ``data/reported/*.csv``;
``facenb results check [--json OUT] [--strict]`` runs :func:`facenb.results.check` and prints (and writes) the
findings. Both validate the table first: a malformed row is an error naming the file, row and fix (exit 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from facenb.cli import command


@command
def _add_results(sub: argparse._SubParsersAction) -> None:
    from facenb.results import KINDS

    p = sub.add_parser("results", help="published results with sources; consistency checks",
                       description="Query the reported-results table (data/reported/*.csv) and the seed claims "
                                   "(seeds/*.yaml), and check them for consistency.")
    rs = p.add_subparsers(dest="results_command", metavar="ACTION")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=Path, help="table directory or CSV file (default: the table shipped with facenb)")
    common.add_argument("--seeds", type=Path, help="seed YAML directory (default: the seed papers shipped with facenb)")

    ls = rs.add_parser("list", parents=[common], help="print rows of the table",
                       description="Print rows of the reported-results table, filtered.")
    ls.add_argument("--benchmark", nargs="+", help="e.g. now realy aflw2000_3d")
    ls.add_argument("--method", nargs="+")
    ls.add_argument("--split", nargs="+", help="e.g. frontal side, test, original")
    ls.add_argument("--region", nargs="+")
    ls.add_argument("--statistic", nargs="+", choices=("mean", "median", "std"))
    ls.add_argument("--source-type", nargs="+", dest="source_type")
    ls.add_argument("--csv", type=Path, help="write the selected rows as CSV instead of printing them")
    ls.set_defaults(func=_run_list)

    ck = rs.add_parser("check", parents=[common], help="run the consistency checks",
                       description="Report REALY 'all' != mean of regions, AFLW balanced != mean of bins, seed claims "
                                   "that differ from another source, conflicting sources, and medians above their "
                                   "mean by an impossible/implausible margin. Each finding names its sources.")
    ck.add_argument("--json", type=Path, dest="json_out", metavar="OUT",
                    help="write the findings as a JSON list of objects (kind, method, benchmark, split, key, values, "
                         "sources, detail, verified)")
    ck.add_argument("--kind", nargs="+", choices=KINDS, help="run only these checks")
    ck.add_argument("--rel-margin", type=float, default=0.10,
                    help="median_above_mean margin (fraction of the mean) when no std is given (default 0.10)")
    ck.add_argument("--strict", action="store_true", help="exit with status 1 when there are findings")
    ck.set_defaults(func=_run_check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _run_list(args) -> int:
    import pandas as pd

    from facenb import results as R

    df = R.load_reported(args.data)
    q = R.query(df, benchmark=args.benchmark, method=args.method, split=args.split, region=args.region,
                statistic=args.statistic, source_type=args.source_type)
    cols = ["method", "benchmark", "split", "region", "metric", "statistic", "value_text", "unit", "source_type",
            "verified", "source_ref"]
    out = q[cols].rename(columns={"value_text": "value"})
    if args.csv:
        out.to_csv(args.csv, index=False)
        print(f"{len(out)} rows -> {args.csv}")
        return 0
    if out.empty:
        print("no rows match")
        return 0
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 80, "display.width", 250):
        print(out.to_string(index=False))
    print(f"({len(out)} rows)")
    return 0


def _run_check(args) -> int:
    from facenb import results as R

    df = R.load_reported(args.data)
    seeds = R.load_seeds(args.seeds)
    findings = R.check(df, seeds, rel_margin=args.rel_margin, kinds=args.kind)
    n_claims = sum(len(p.claims) for p in seeds)
    print(f"checked {len(df)} rows and {n_claims} seed claims: {len(findings)} finding(s)")
    for f in findings:
        print(f"\n[{f.kind}] {f.method} | {f.benchmark} {f.split} | {f.key}")
        print(f"  {f.detail}")
        for v, s, ok in zip(f.values, f.sources, f.verified or ("",) * len(f.sources)):
            print(f"  - {v:g}  {s}{'' if ok != 'no' else '  (unverified transcription)'}")
    if args.json_out:
        R.write_findings_json(findings, args.json_out)
        print(f"\nfindings -> {args.json_out}")
    return 1 if (args.strict and findings) else 0
