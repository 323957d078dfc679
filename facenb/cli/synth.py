"""``facenb synth``: a public synthetic benchmark in the official layout (NoW, REALY, Stirling; public data only)."""
from __future__ import annotations

import argparse
from pathlib import Path

from facenb.cli import command
from facenb.errors import InputError


@command
def _add_synth(sub: argparse._SubParsersAction) -> None:
    from facenb.synth import METHODS

    p = sub.add_parser(
        "synth",
        help="write a synthetic benchmark dataset (official layout, public data only) with graded predictions",
        description=(
            "Write a complete synthetic dataset in the benchmark's official layout, built from the public Surrey "
            "Face Model, with predictions of synthetic methods of known quality and truth.json (their true "
            "per-vertex errors). Deterministic for a seed."
        ),
    )
    p.add_argument("benchmark", choices=("now", "realy", "stirling"))
    p.add_argument("--out", type=Path, required=True, help="output folder (created; files overwritten)")
    p.add_argument("--subjects", type=int, default=2, help="number of subjects (default 2)")
    p.add_argument("--images-per-subject", type=int, default=4,
                   help="NoW: images per subject, cycling through the 4 challenges (default 4); Stirling: HQ and "
                        "LQ alternately")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="synthetic methods (default all: "
                   + ", ".join(METHODS) + ")")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scan-subdivisions", type=int, default=0,
                   help="NoW, Stirling: midpoint subdivisions of the scan (0: 3448 vertices; 1: ~13.7k; 2: ~54k)")
    p.add_argument("--james", action="store_true",
                   help="NoW: add subject JAMES, the real menpo james scan (dataset james_scan) as ground truth")
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from facenb import synth

    if args.scan_subdivisions < 0 or args.scan_subdivisions > 3:
        raise InputError("--scan-subdivisions must be 0..3", None, "pass 0, 1, 2 or 3")
    if args.benchmark == "now":
        res = synth.synth_now(args.out, subjects=args.subjects, images_per_subject=args.images_per_subject,
                              methods=args.methods, seed=args.seed, scan_subdivisions=args.scan_subdivisions,
                              james=args.james)
        print(f"synthetic NoW: {res.n_images} images, {len(res.predictions)} methods -> {res.out}")
        for m, d in res.predictions.items():
            print(f"  facenb now --dataset {res.out} --predictions {d} --out RESULTS/{m} --method {m}")
        return 0
    if args.benchmark == "realy":
        res = synth.synth_realy(args.out, subjects=args.subjects, methods=args.methods, seed=args.seed)
        print(f"synthetic REALY: {res.n_images} subjects, {len(res.predictions)} methods -> {res.out}")
        for m, d in res.predictions.items():
            print(f"  facenb realy {' '.join(res.realy_args)} --predictions {d} --out RESULTS/{m}")
        return 0
    res = synth.synth_stirling(args.out, subjects=args.subjects, images_per_subject=args.images_per_subject,
                               methods=args.methods, seed=args.seed, scan_subdivisions=args.scan_subdivisions)
    print(f"synthetic Stirling/ESRC: {res.n_images} images, {len(res.predictions)} methods -> {res.out}")
    for m, d in res.predictions.items():
        print(f"  facenb stirling --dataset {res.out} --predictions {d} --out RESULTS/{m}")
    return 0
