"""``facenb now``: the NoW scan-to-mesh metric (single pair or a whole dataset folder)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facenb.cli import command
from facenb.errors import InputError


@command
def _add_now(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "now",
        help="NoW benchmark error (official now_evaluation numbers)",
        description=(
            "Score predictions with the NoW protocol. Single pair: --scan --scan-landmarks --pred "
            "--pred-landmarks. Dataset: --dataset NOW_DIR (or --image-list with --scans/--scan-landmarks-dir) "
            "--predictions PRED_DIR --out DIR. Exit status (dataset mode, facenb.runner): 0 every image scored, 1 some "
            "failed or missing, 2 bad input or nothing scorable."
        ),
    )
    single = p.add_argument_group("single pair")
    single.add_argument("--scan", type=Path, help="ground-truth scan (.obj/.ply, millimetres)")
    single.add_argument("--scan-landmarks", type=Path, help="7 scan landmarks (.pp)")
    single.add_argument("--pred", type=Path, help="predicted mesh (.obj/.ply)")
    single.add_argument("--pred-landmarks", type=Path, help="7 predicted landmarks (.txt/.npy/.pp)")
    p.add_argument("--pred-topology", metavar="NAME|auto",
                   help="take the 7 predicted landmarks from the mesh's topology (FLAME, BFM09, Deep3D, 3DDFA_v2, "
                        "HIFI3D, or auto) instead of a landmark file (single pair and dataset mode)")
    single.add_argument("--json", type=Path, help="write the summary (mean_mm, median_mm, std_mm, n_points, ...)")
    single.add_argument("--distances", type=Path, help="save per-vertex distances (.npy, float64, crop order)")
    ds = p.add_argument_group("dataset")
    ds.add_argument("--dataset", type=Path, help="NoW dataset folder (imagepaths*.txt, scans/, scans_lmks_onlypp/)")
    ds.add_argument("--predictions", type=Path, help="predictions folder <subject>/<challenge>/<image>.obj|.ply")
    ds.add_argument("--split", choices=("val", "test"), default="val")
    ds.add_argument("--image-list", type=Path, help="image list file (overrides --split)")
    ds.add_argument("--scans", type=Path, help="scan folder (default DATASET/scans)")
    ds.add_argument("--scan-landmarks-dir", type=Path, help="scan landmark folder (default DATASET/scans_lmks_onlypp)")
    ds.add_argument("--challenge", choices=("multiview_neutral", "multiview_expressions", "multiview_occlusions",
                                            "selfie"))
    ds.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    ds.add_argument("--method", default="RECON", help="method identifier used in output file names")
    ds.add_argument("--out", type=Path, help="output folder")
    ds.add_argument("--no-progress", action="store_true",
                    help="no progress bar (there is none either when stderr is not a terminal)")
    opt = p.add_argument_group("protocol")
    opt.add_argument("--metric", action="store_true", help="official metrical evaluation (no scale estimate)")
    opt.add_argument("--pred-unit", choices=("m", "cm", "mm"), help="unit of the predictions (metric mode)")
    opt.add_argument("--no-clean-mesh", action="store_true",
                     help="keep degenerate triangles (official CLI default): same numbers when the official run "
                          "finishes; refused where it crashes (a degenerate triangle closest to a scan point)")
    opt.add_argument("--ply-polygons", choices=("first-triangle", "fan"), default="first-triangle",
                     help="PLY prediction faces with more than 3 indices: keep the first triangle (official: "
                          "psbody-mesh's reader, default) or fan-split them (single pair; OBJ is always fan-split)")
    opt.add_argument("--solver", choices=("cg-legacy", "exact"), default="cg-legacy",
                     help="Gauss-Newton solver of the refinement: official CG (default) or an exact solve")
    p.set_defaults(func=_run_now)


def _run_now(args: argparse.Namespace) -> int:
    from facenb.benchmarks import now

    kw = dict(metric=args.metric, pred_unit=args.pred_unit, clean_mesh=not args.no_clean_mesh, solver=args.solver)
    single = [args.scan, args.scan_landmarks, args.pred, args.pred_landmarks]
    from facenb.io import check_writable  # outputs are checked before any scoring

    check_writable(args.out, "folder", "--out")
    check_writable(args.json, "file", "--json")
    check_writable(args.distances, "file", "--distances")
    if args.pred_topology:
        from facenb.landmarks import TOPOLOGIES

        if args.pred_topology.lower() not in {"auto", *(t.lower() for t in TOPOLOGIES)}:
            raise InputError(f"unknown --pred-topology {args.pred_topology!r}", None,
                             "use auto or one of " + ", ".join(TOPOLOGIES))
    if args.predictions is not None or args.dataset is not None:
        if any(x is not None for x in single):
            raise InputError("give either a single pair (--scan ...) or a dataset (--dataset/--predictions)", None,
                             "see 'facenb now --help'")
        if args.predictions is None or args.out is None:
            raise InputError("dataset mode needs --predictions and --out", None, "see 'facenb now --help'")
        if args.jobs < 1:
            raise InputError("--jobs must be at least 1", None, "pass --jobs 1 or more")
        res = now.evaluate_dataset(
            args.dataset, args.predictions, args.out, split=args.split, image_list=args.image_list,
            challenge=args.challenge, scans_dir=args.scans, scan_landmarks_dir=args.scan_landmarks_dir,
            jobs=args.jobs, method=args.method, progress=not args.no_progress and sys.stderr.isatty(),
            pred_topology=args.pred_topology,
            **kw)
        for note in res.notes:
            print(f"facenb: note: {note}", file=sys.stderr)
        for o_ in res.outcomes:
            if o_.status == "missing":
                print(f"facenb: warning: {o_.error} (counted as missing)", file=sys.stderr)
            elif o_.status == "failed":
                print(f"facenb: error: {o_.image.key}: {o_.error}", file=sys.stderr)
        if res.n_scored == 0:
            print(f"facenb: error: no image could be scored ({res.n_failed} failed, {res.n_missing} missing); "
                  f"see {res.out_dir / 'per_image.csv'}", file=sys.stderr)
            return res.exit_code
        print("\n".join(res.printed()))
        return res.exit_code  # the runner's rule: 0 all scored, 1 some failed or missing, 2 nothing scored
    missing = [n for n, v in zip(("--scan", "--scan-landmarks", "--pred", "--pred-landmarks"), single)
               if v is None and not (n == "--pred-landmarks" and args.pred_topology)]
    if missing:
        raise InputError("missing " + ", ".join(missing), None,
                         "give --scan, --scan-landmarks, --pred and --pred-landmarks (or --dataset mode)")
    res = now.evaluate_files(args.scan, args.scan_landmarks, args.pred, args.pred_landmarks,
                             pred_topology=args.pred_topology, ply_polygons=args.ply_polygons, **kw)
    print("\n".join(res.printed()) + f" ({args.pred.name})")
    if args.json:
        import json

        args.json.write_text(json.dumps(res.summary(), indent=1))
    if args.distances:
        import numpy as np

        np.save(args.distances, res.distances.astype(np.float64))
    return 0
