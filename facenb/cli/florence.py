"""``facenb florence``: Florence (MICC) reconstruction error (single pair or a whole dataset folder)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from facenb.cli import command
from facenb.errors import InputError


@command
def _add_florence(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "florence",
        help="Florence (MICC) reconstruction error (VRN/PRNet protocol by default; GANFit, M3DFB)",
        description=(
            "Score predictions against MICC Florence scans. There is no official scorer: --protocol prnet (default) "
            "is the VRN protocol PRNet follows (rigid ICP, nearest-neighbour distances, NME in % of the 3D outer "
            "interocular distance); ganfit is GANFit's micc_evaluation.py (similarity ICP, symmetric "
            "point-to-surface, mm); m3dfb is M3DFB's estimator E1. Single pair: --scan --scan-landmarks --pred "
            "[--pred-landmarks]. Dataset: --dataset MICC_DIR --predictions DIR --out DIR."
        ),
    )
    single = p.add_argument_group("single pair")
    single.add_argument("--scan", type=Path, help="ground-truth scan (.obj/.ply, millimetres)")
    single.add_argument("--scan-landmarks", type=Path, help="68 iBUG landmarks of the scan (.ljson/.txt/.npy/.pts)")
    single.add_argument("--pred", type=Path, help="predicted mesh (.obj/.ply)")
    single.add_argument("--pred-landmarks", type=Path, help="68 iBUG landmarks of the prediction (initial alignment)")
    single.add_argument("--subject", type=int, help="MICC subject number (GANFit's tight crop of subject 28)")
    single.add_argument("--json", type=Path, help="write the summary (nme_percent, mean_mm, median_mm, ...)")
    single.add_argument("--distances", type=Path, help="save per-vertex distances (.npy, float64, crop order)")
    ds = p.add_argument_group("dataset")
    ds.add_argument("--dataset", type=Path, help="MICC release folder (subject_NN/Model/frontal{1,2}/obj/*.obj)")
    ds.add_argument("--predictions", type=Path, help="predictions folder subject_NN/<setting>.obj")
    ds.add_argument("--landmarks", type=Path,
                    help="florence_micc_landmarks folder (default: the facenb cache or data mirror)")
    ds.add_argument("--out", type=Path, help="output folder (cache, florence.json, florence.csv)")
    ds.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    ds.add_argument("--no-progress", action="store_true", help="no progress bar")
    opt = p.add_argument_group("protocol")
    opt.add_argument("--protocol", choices=("prnet", "ganfit", "m3dfb"), default="prnet",
                     help="preset (default prnet = the VRN/PRNet protocol)")
    opt.add_argument("--crop-radius", type=float, help="crop radius around the nose tip in mm (0: no crop)")
    opt.add_argument("--icp", choices=("point_to_point", "point_to_surface", "none"), help="ICP correspondence")
    opt.add_argument("--icp-scale", choices=("yes", "no"), help="similarity (yes) or rigid (no) ICP")
    opt.add_argument("--correspondence", choices=("gt_to_pred", "pred_to_gt", "symmetric"),
                     help="direction of the measured distances")
    opt.add_argument("--distance", choices=("vertex", "surface"), help="nearest vertex or exact point-to-surface")
    opt.add_argument("--error-frame", choices=("initial", "aligned"),
                     help="measure with the prediction at its initial pose (VRN: ICP only pairs points) or after ICP")
    opt.add_argument("--scans", choices=("frontal1", "frontal2", "min", "mean"), help="dataset: which frontal scan")
    p.set_defaults(func=_run_florence)


def _options(args: argparse.Namespace):
    from facenb.benchmarks import florence as F

    o = F.options_for(args.protocol)
    ch = {}
    if args.crop_radius is not None:
        if args.crop_radius < 0:
            raise InputError("--crop-radius must be >= 0", None, "give a radius in mm, or 0 for no crop")
        ch["crop_radius_mm"] = None if args.crop_radius == 0 else float(args.crop_radius)
    for name in ("icp", "correspondence", "distance", "error_frame", "scans"):
        if getattr(args, name) is not None:
            ch[name] = getattr(args, name)
    if args.icp_scale is not None:
        ch["icp_scale"] = args.icp_scale == "yes"
    return o.with_(**ch) if ch else o


def _run_florence(args: argparse.Namespace) -> int:
    from facenb import io
    from facenb import runner
    from facenb.benchmarks import florence as F

    opts = _options(args)
    single = [args.scan, args.scan_landmarks, args.pred]
    if args.dataset is not None or args.predictions is not None:
        if any(x is not None for x in single + [args.pred_landmarks]):
            raise InputError("give either a single pair (--scan ...) or a dataset (--dataset/--predictions)", None,
                             "see 'facenb florence --help'")
        if args.dataset is None or args.predictions is None or args.out is None:
            raise InputError("dataset mode needs --dataset, --predictions and --out", None,
                             "see 'facenb florence --help'")
        if args.jobs < 1:
            raise InputError("--jobs must be at least 1", None, "pass --jobs 1 or more")
        io.check_writable(args.out, "folder", "--out")
        res = F.evaluate_dataset(args.dataset, args.predictions, args.out, landmarks_dir=args.landmarks,
                                 options=opts, executor="processes" if args.jobs > 1 else "serial", jobs=args.jobs,
                                 progress=not args.no_progress)
        c = res.run.counts()
        if c.get("ok", 0) + c.get("cached", 0):
            print("\n".join(res.printed()))
        print(f"{c.get('ok', 0)} scored, {c.get('cached', 0)} cached, {c.get('missing', 0)} missing, "
              f"{c.get('failed', 0)} failed -> {res.out_dir}")
        for o in res.run.outcomes:
            if o.status in ("missing", "failed"):
                print(f"facenb: warning: {o.key}: {o.reason}")
        return runner.exit_code(res.run)
    missing = [n for n, v in zip(("--scan", "--scan-landmarks", "--pred"), single) if v is None]
    if missing:
        raise InputError("missing " + ", ".join(missing), None,
                         "give --scan, --scan-landmarks and --pred (or --dataset mode)")
    io.check_writable(args.json, "file", "--json")
    io.check_writable(args.distances, "file", "--distances")
    surface = opts.distance == "surface" or opts.icp == "point_to_surface"
    scan = io.load_mesh(args.scan, require_faces=surface)
    pred = io.load_mesh(args.pred, require_faces=surface)
    gl = F.load_scan_landmarks(args.scan_landmarks)
    pl = F.load_scan_landmarks(args.pred_landmarks) if args.pred_landmarks is not None else None
    res = F.evaluate(scan.vertices, scan.faces, gl, pred.vertices, pred.faces, opts, pred_landmarks68=pl,
                     subject=args.subject)
    print("\n".join(res.printed()))
    if args.json:
        args.json.write_text(json.dumps(runner.to_json(res.summary()), indent=1, allow_nan=False))
    if args.distances:
        import numpy as np

        np.save(args.distances, res.distances.astype(np.float64))
    return 0
