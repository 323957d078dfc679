"""``facenb stirling``: the Stirling/ESRC FG2018 scan-to-mesh metric (single pair or a whole release folder)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facenb.cli import command
from facenb.errors import InputError


@command
def _add_stirling(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stirling",
        help="Stirling/ESRC FG2018 error (official fg2018-competition numbers)",
        description=(
            "Score predictions with the FG2018 (Stirling/ESRC) protocol: 7-landmark similarity Procrustes, face "
            "mask ball on the scan, exact scan-to-surface distances. Single pair: --scan --scan-landmarks --pred "
            "(--pred-landmarks | --pred-topology). Dataset: --dataset DIR --predictions DIR --out DIR."
        ),
    )
    single = p.add_argument_group("single pair")
    single.add_argument("--scan", type=Path, help="ground-truth scan (.obj/.ply, millimetres; a point cloud is fine)")
    single.add_argument("--scan-landmarks", type=Path, help="the scan's 7 landmarks (official .lnd)")
    single.add_argument("--pred", type=Path, help="predicted mesh (.obj/.ply, any unit)")
    single.add_argument("--pred-landmarks", type=Path, help="7 predicted landmarks (.txt x y z lines, .npy, .lnd)")
    single.add_argument("--json", type=Path, help="write the summary (mean_mm, median_mm, std_mm, rmse_mm, ...)")
    single.add_argument("--distances", type=Path,
                        help="write the official distances file (<vertex_idx> <distance> lines, CRLF)")
    ds = p.add_argument_group("dataset")
    ds.add_argument("--dataset", type=Path,
                    help="release folder (Real_images__Subset_2D_FG2018/{HQ,LQ}, F_3D_N/, M_3D_N/, annotations/)")
    ds.add_argument("--predictions", type=Path, help="predictions <HQ|LQ>/<image>.obj|.ply + <image>.txt|.npy")
    ds.add_argument("--out", type=Path, help="output folder")
    ds.add_argument("--subset", choices=("HQ", "LQ", "all"), default="all")
    ds.add_argument("--statistic", choices=("mean", "median", "rmse"), default="mean",
                    help="statistic of the headline number (default mean; rmse = FG2018 3D-RMSE)")
    ds.add_argument("--aggregate", choices=("pooled", "per-image"), default="pooled",
                    help="pooled over all masked vertices of a subset (default) or mean over images of the "
                         "per-image statistic")
    ds.add_argument("--scans", type=Path, help="scan folder (default DATASET/F_3D_N and DATASET/M_3D_N)")
    ds.add_argument("--annotations", type=Path, help=".lnd folder (default DATASET/annotations)")
    ds.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    ds.add_argument("--no-progress", action="store_true", help="no progress bar")
    opt = p.add_argument_group("protocol")
    opt.add_argument("--pred-topology", metavar="NAME|auto",
                     help="take the 7 predicted landmarks from a known topology (FLAME, BFM09, ...; auto) instead "
                          "of --pred-landmarks")
    opt.add_argument("--no-reflection", action="store_true",
                     help="force a proper rotation (official: a reflection is allowed when it fits better)")
    opt.add_argument("--mask-rule", choices=("official", "pre-d1645f4"), default="official",
                     help="face mask radius rule (pre-d1645f4: the script before 7 Mar 2018)")
    p.set_defaults(func=_run_stirling)


def _run_stirling(args: argparse.Namespace) -> int:
    from facenb.benchmarks import stirling as S

    options = S.StirlingOptions(reflection="forbid" if args.no_reflection else "best", mask_rule=args.mask_rule)
    single = {"--scan": args.scan, "--scan-landmarks": args.scan_landmarks, "--pred": args.pred,
              "--pred-landmarks": args.pred_landmarks, "--json": args.json, "--distances": args.distances}
    if args.dataset is not None or args.predictions is not None:
        given = [k for k, v in single.items() if v is not None]
        if given:
            raise InputError(f"{', '.join(given)} belong(s) to single-pair mode, not dataset mode", None,
                             "give either a pair (--scan ...) or a dataset (--dataset/--predictions/--out)")
        if args.dataset is None or args.predictions is None or args.out is None:
            raise InputError("dataset mode needs --dataset, --predictions and --out", None,
                             "see 'facenb stirling --help'")
        if args.jobs < 1:
            raise InputError("--jobs must be at least 1", None, "pass --jobs 1 or more")
        from facenb.runner import exit_code

        res = S.evaluate_dataset(args.dataset, args.predictions, args.out, subset=args.subset,
                                 statistic=args.statistic, aggregate=args.aggregate, options=options,
                                 pred_topology=args.pred_topology,
                                 scans_dir=args.scans, annotations_dir=args.annotations, jobs=args.jobs,
                                 progress=not args.no_progress)
        for line in res.printed():
            print(line)
        print(f"-> {res.out_dir}")
        for line in res.run.problems():
            print(f"facenb: warning: {line}", file=sys.stderr)
        return exit_code(res.run)
    missing = [k for k in ("--scan", "--scan-landmarks", "--pred") if single[k] is None]
    if missing:
        raise InputError("missing " + ", ".join(missing), None,
                         "give --scan, --scan-landmarks, --pred and --pred-landmarks (or --dataset mode)")
    if (args.pred_landmarks is None) == (args.pred_topology is None):
        raise InputError("give exactly one of --pred-landmarks and --pred-topology", None,
                         "see 'facenb stirling --help'")
    res = S.evaluate_files(args.scan, args.scan_landmarks, args.pred, args.pred_landmarks, options,
                           pred_topology=args.pred_topology)
    print(f"Stirling/FG2018: mean {res.mean_mm:.4f} mm, median {res.median_mm:.4f} mm, std {res.std_mm:.4f} mm, "
          f"3D-RMSE {res.rmse_mm:.4f} mm over {res.n_points} scan points ({args.pred.name})")
    if args.json:
        args.json.write_text(json.dumps(res.summary(), indent=1))
    if args.distances:
        res.write_distances(args.distances)
    return 0
