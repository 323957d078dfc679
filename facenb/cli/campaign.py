"""``facenb campaign``: many methods x many benchmarks in one command (serial, processes or a Dask cluster)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facenb.cli import command
from facenb.errors import InputError


@command
def _add_campaign(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "campaign",
        help="score many methods on many benchmarks (one spec; local processes or a Dask cluster)",
        description="Campaigns: every (method, benchmark, item) of a YAML spec is one task; reruns score only "
                    "what is new. See the README section 'Campaigns' for the spec format.",
    )
    csub = p.add_subparsers(dest="campaign_command", metavar="ACTION", parser_class=type(p))
    r = csub.add_parser("run", help="score a campaign spec into a folder")
    r.add_argument("spec", type=Path, help="campaign spec (YAML)")
    r.add_argument("--out", type=Path, required=True, help="campaign folder (cache, results, status)")
    r.add_argument("--executor", choices=("serial", "processes", "dask"), default="serial")
    r.add_argument("--scheduler", help="Dask scheduler address tcp://HOST:PORT (default with --executor dask: "
                                       "a local cluster of --jobs workers)")
    r.add_argument("--jobs", type=int, default=1, help="worker processes (processes, local Dask cluster)")
    r.add_argument("--retries", type=int, default=3, help="Dask retries of a batch whose task raised")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_run)
    s = csub.add_parser("status", help="what is done, cached, failed, missing in a campaign folder")
    s.add_argument("folder", type=Path)
    s.set_defaults(func=_status)
    t = csub.add_parser("results", help="print the tidy results table of a campaign folder")
    t.add_argument("folder", type=Path)
    t.add_argument("--benchmark", help="only this benchmark label")
    t.add_argument("--statistic", help="only this statistic (mean, median, std)")
    t.add_argument("--csv", action="store_true", help="print CSV instead of an aligned table")
    t.set_defaults(func=_results)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    from facenb import campaign
    from facenb.runner import exit_code

    if args.retries < 0:
        raise InputError("--retries must be 0 or more", None, "pass --retries 3")
    res = campaign.run_campaign(args.spec, args.out, executor=args.executor, scheduler=args.scheduler,
                                jobs=args.jobs, progress=not args.no_progress, retries=args.retries)
    c = res.counts()
    print(f"campaign {args.spec}: {c['ok']} scored, {c['cached']} cached, {c['missing']} missing, "
          f"{c['failed']} failed in {res.seconds:.1f} s -> {res.out}")
    _print_pairs(res.items)
    for r in res.items[res.items["status"].isin(["missing", "failed"])].itertuples():
        level = "warning" if r.status == "missing" else "error"
        print(f"facenb: {level}: {r.method}/{r.benchmark}/{r.item}: {r.status}: {r.reason}", file=sys.stderr)
    return exit_code(res.run)


def _print_pairs(items) -> None:
    for (m, b), g in items.groupby(["method", "benchmark"], sort=False):
        vc = g["status"].value_counts()
        print(f"  {m:20s} {b:16s} " + "  ".join(f"{k} {int(vc.get(k, 0))}" for k in ("ok", "cached", "missing",
                                                                                       "failed")))


def _status(args: argparse.Namespace) -> int:
    from facenb import campaign

    st = campaign.campaign_status(args.folder)
    if st.get("running"):
        print(f"a run is in progress (pid {st['running']}); the counts below are from the last finished run")
    if not st.get("pairs"):
        print("no finished run yet")
        return 0
    print(f"campaign {st['campaign']} (facenb {st['facenb_version']}), last run finished {st['finished_utc']} "
          f"in {st['seconds']:.1f} s")
    print(f"  {'method':20s} {'benchmark':16s} {'items':>6s} {'ok':>6s} {'cached':>6s} {'missing':>8s} {'failed':>6s}")
    for p in st["pairs"]:
        print(f"  {p['method']:20s} {p['benchmark']:16s} {p['n_items']:6d} {p['ok']:6d} {p['cached']:6d} "
              f"{p['missing']:8d} {p['failed']:6d}")
    for q in st["problems"]:
        print(f"  {q['status']}: {q['task']}: {q['reason']}")
    return 0


def _results(args: argparse.Namespace) -> int:
    import pandas as pd

    from facenb import campaign

    df = campaign.load_results(args.folder)
    if args.benchmark:
        if args.benchmark not in set(df["benchmark"]):
            raise InputError(f"no benchmark {args.benchmark!r} in this campaign", args.folder,
                             "use one of " + ", ".join(sorted(set(df["benchmark"]))))
        df = df[df["benchmark"] == args.benchmark]
    if args.statistic:
        df = df[df["statistic"] == args.statistic]
    if args.csv:
        df.to_csv(sys.stdout, index=False, float_format="%.10g")
    else:
        with pd.option_context("display.width", 250, "display.max_rows", None, "display.max_columns", None):
            print(df.to_string(index=False, float_format=lambda v: f"{v:.6f}"))
    return 0
