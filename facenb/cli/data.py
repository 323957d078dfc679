"""``facenb data``: the dataset registry, the cache, fetching.

Commands
--------
``facenb data list``                     every dataset: files, size, cache state, licence; gated ones with how to
                                         obtain them and the notebook parameter that points a notebook at them.
``facenb data fetch NAME|all [...]``     fetch into the cache (from ``--mirror DIR`` / ``$FACENB_DATA_MIRROR``
                                         when it holds the file, else from the origin URL), SHA-256 verified.
``facenb data path NAME [FILE]``         print the local path of a cached dataset folder or file.

Errors are one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
import textwrap

from facenb.cli import command


@command
def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="public datasets: list, fetch (sha256-verified), path",
                       description=__doc__.splitlines()[0])
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(p))
    p.set_defaults(func=lambda args: _usage(p))

    pl = dsub.add_parser("list", help="what is known, what is cached, licences, licence-gated datasets")
    pl.set_defaults(func=_run_list)

    pf = dsub.add_parser("fetch", help="fetch datasets into the cache (sha256-verified)")
    pf.add_argument("names", nargs="+", metavar="NAME", help="dataset name(s) from `facenb data list`, or 'all'")
    pf.add_argument("--mirror", metavar="DIR", default=None,
                    help="local mirror laid out as DIR/<dataset>/<file> (default $FACENB_DATA_MIRROR)")
    pf.add_argument("--force", action="store_true", help="fetch again even if the cached copy verifies")
    pf.add_argument("--timeout", type=float, default=None, metavar="S",  # None: facenb.data.DEFAULT_TIMEOUT
                    help="seconds allowed to connect and per read (default: facenb.data.DEFAULT_TIMEOUT, 60)")
    pf.add_argument("--quiet", action="store_true", help="no progress on stderr")
    pf.set_defaults(func=_run_fetch)

    pp = dsub.add_parser("path", help="print the local path of a cached dataset (or one of its files)")
    pp.add_argument("name", metavar="NAME")
    pp.add_argument("file", metavar="FILE", nargs="?", default=None, help="a file of the dataset (default: its folder)")
    pp.set_defaults(func=_run_path)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _state_text(name: str) -> str:
    from facenb import data

    states = [s.state for s in data.status(name)]
    n, ok = len(states), states.count("verified")
    bad = states.count("corrupt")
    if ok == n:
        return "verified"
    if bad:
        return f"CORRUPT ({bad} of {n} fail sha256)"
    if ok == 0:
        return "no"
    return f"partial ({ok} of {n})"


def _run_list(args: argparse.Namespace) -> int:
    from facenb import data

    mirror = data.mirror_dir()
    print(f"cache:  {data.cache_dir()}  (FACENB_DATA)")
    print(f"mirror: {mirror if mirror is not None else '(none)'}  (FACENB_DATA_MIRROR)")
    conformance = data.conformance_root()
    print(f"conformance cases: {conformance if conformance is not None else '(none)'}  (FACENB_CONFORMANCE)")
    print()
    rows = [("dataset", "files", "size", "cached", "licence")]
    for d in data.public_datasets():
        rows.append((d.name, str(len(d.files)), data.human_size(d.total_bytes), _state_text(d.name), d.licence))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) if j != 1 else c.rjust(w) for j, (c, w) in enumerate(zip(r[:4], widths)))
              + "  " + r[4])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    print()
    print("fetch with `facenb data fetch NAME` (or `all`); `facenb data path NAME` prints where a dataset is.")
    gated = data.gated_datasets()
    if gated:
        print()
        print("Licence-gated datasets (never downloaded by facenb; obtain them yourself, then point a notebook at")
        print("the folder with the parameter named):")
        for d in gated:
            params = ", ".join(p for p in (d.notebook_parameter, d.predictions_parameter) if p) or "-"
            print()
            print(f"  {d.name}  [parameter: {params}]  licence: {d.licence}")
            for line in textwrap.wrap(d.description, 100):
                print(f"    {line}")
            for j, line in enumerate(textwrap.wrap(d.how_to_obtain, 94)):
                print(f"    {'obtain: ' if j == 0 else '        '}{line}")
    return 0


def _run_fetch(args: argparse.Namespace) -> int:
    from facenb import data  # imported here: `facenb --help` and the scorers do not load the downloader

    timeout = data.DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    data.fetch(args.names, mirror=args.mirror, force=args.force, progress=not args.quiet, timeout=timeout)
    return 0


def _run_path(args: argparse.Namespace) -> int:
    from facenb import data

    print(data.path(args.name, args.file))
    return 0
