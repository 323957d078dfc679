"""``facenb facescape``: the FaceScape benchmark tables recomputed from the pre-evaluated per-image errors."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facenb.cli import command


@command
def _add_facescape(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "facescape",
        help="FaceScape benchmark tables (official show.py numbers) from eval_result/",
        description=(
            "Recompute the FaceScape single-view benchmark tables (fswild by head rotation, fslab by view angle and "
            "by focal length; CD, MNE, CR and done rate) from eval_result/{fswild,fslab}_<method>/{CD,MNE,CR}_full.txt "
            "exactly as the benchmark's benchmark/code/show.py does (quirks included; options below change them)."
        ),
    )
    p.add_argument("--results", type=Path,
                   help="benchmark folder holding eval_result/ (default: `facenb data fetch facescape_benchmark`'s "
                        "cache, else $FACENB_DATA_MIRROR/facescape_benchmark)")
    p.add_argument("--csv", type=Path, help="write the long table: dataset,grouping,method,metric,bin,value,done_rate,"
                                            "n_images,n_valid,n_lines")
    p.add_argument("--methods", nargs="+", metavar="METHOD", help="only these methods (default: every folder found)")
    p.add_argument("--dataset", choices=("fswild", "fslab", "all"), default="all")
    p.add_argument("--style", choices=("table", "show", "export"), default="table",
                   help="table: aligned text (default); show: byte-identical to show.py's output; "
                        "export: the CSV tables of export_table.py")
    opt = p.add_argument_group("deviations from the official script (default: official behaviour)")
    opt.add_argument("--lab-angle-focals", choices=("official", "all"), default="official",
                     help="fslab angle bins from the f=1200 images only (official) or from all three focal lengths")
    opt.add_argument("--missing-as-failed", action="store_true",
                     help="pad a short fswild file (DF2Net: 374 lines) with NaN to 400 images")
    opt.add_argument("--empty-bin", choices=("official", "nan"), default="official",
                     help="official: fslab 60-degree bin without valid image = -1; nan: NaN")
    opt.add_argument("--wild-binning", choices=("index", "rotation"), default="index",
                     help="fswild bins by line blocks of 100 (official) or by the ground-truth rotation angle")
    p.set_defaults(func=_run_facescape)


def _run_facescape(args: argparse.Namespace) -> int:
    from facenb.benchmarks import facescape as fs

    options = fs.FaceScapeOptions(
        lab_angle_focals=fs.LAB_FOCALS if args.lab_angle_focals == "all" else (1200,),
        missing_as_failed=args.missing_as_failed,
        empty_bin=args.empty_bin,
        wild_binning=args.wild_binning,
    )
    datasets = fs.DATASETS if args.dataset == "all" else (args.dataset,)
    from facenb.io import check_writable

    check_writable(args.csv, "file", "--csv")  # before any scoring
    tables = fs.facescape_tables(args.results, methods=args.methods, options=options, datasets=datasets)
    if args.style == "show":
        sys.stdout.write(tables.format_show())
    elif args.style == "export":
        for name, text in tables.format_export_tables().items():
            sys.stdout.write(f"# {name}\n{text}")
    else:
        sys.stdout.write(tables.format_table())
    if args.csv is not None:
        tables.to_frame().to_csv(args.csv, index=False)
        print(f"wrote {len(tables.to_frame())} rows to {args.csv}", file=sys.stderr)
    return 0
