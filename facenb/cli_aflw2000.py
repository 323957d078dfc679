"""``facenb aflw2000``: the AFLW2000-3D 68-landmark NME (official 3DDFA ``benchmark_aflw2000.py`` numbers)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from facenb.cli import command


@command
def _add_aflw2000(sub: argparse._SubParsersAction) -> None:
    from facenb.benchmarks.aflw2000 import ANNOTATIONS, ARITHMETICS, COORDS, ERRORS, NORMALIZATIONS

    p = sub.add_parser(
        "aflw2000",
        help="AFLW2000-3D NME by yaw bin (official 3DDFA benchmark numbers)",
        description=(
            "Score 68 predicted landmarks of the 2000 AFLW2000-3D images with the NME of cleardusk/3DDFA "
            "benchmark_aflw2000.py: per-image mean point error / sqrt(GT bbox area), means by |yaw| bin "
            "(<=30, 30-60, >60) and the balanced mean/std of the three bin means (percent)."
        ),
    )
    p.add_argument("--pred", type=Path, required=True,
                   help="predicted landmarks .npy: (2000, 2|3, 68) or (2000, 68, 2|3), official image order")
    p.add_argument("--annotations", choices=ANNOTATIONS, default="original",
                   help="ground truth: original (official 'ori', default) or reannotated ('re')")
    p.add_argument("--coords", choices=COORDS, default="crop",
                   help="prediction frame: 120x120 crop pixels (official, default) or image pixels")
    p.add_argument("--error", choices=ERRORS, default="2d", help="2d (official, default) or 3d point error")
    p.add_argument("--normalization", choices=NORMALIZATIONS, default="bbox",
                   help="bbox = sqrt(w h) of the GT box (official, default), interocular, diagonal")
    p.add_argument("--arithmetic", choices=ARITHMETICS, default="numpy1",
                   help="float semantics: numpy1 (the reference run, default), numpy2, float64")
    p.add_argument("--gt-dir", type=Path,
                   help="folder with the official AFLW2000-3D*.npy files (default $FACENB_DATA_MIRROR/aflw2000_3d)")
    p.add_argument("--json", type=Path, help="write the summary (nme_0_30, nme_30_60, nme_60_90, nme_mean, "
                                            "nme_std in percent, bin counts, options)")
    p.add_argument("--per-image", type=Path, help="save the per-image NME (.npy, float32 fraction)")
    p.set_defaults(func=_run_aflw2000)


def _fmt(x: float) -> str:
    return "   nan" if not math.isfinite(x) else f"{x:6.3f}"


def _run_aflw2000(args: argparse.Namespace) -> int:
    import numpy as np

    from facenb.benchmarks import aflw2000
    from facenb.io import check_writable

    check_writable(args.json, "file", "--json")  # before any scoring
    check_writable(args.per_image, "file", "--per-image")
    r = aflw2000.evaluate(args.gt_dir, args.pred, annotations=args.annotations, error=args.error,
                          normalization=args.normalization, coords=args.coords, arithmetic=args.arithmetic)
    opts = ", ".join(f"{k}={v}" for k, v in r.options.items())
    print(f"AFLW2000-3D NME (%), {opts}")
    print(f"{'yaw bin':10s} {'images':>6s} {'mean':>6s} {'std':>6s}")
    for lab, n, m, s in zip(("0-30", "30-60", "60-90"), r.bin_count, r.bin_mean, r.bin_std):
        print(f"{lab:10s} {n:6d} {_fmt(m)} {_fmt(s)}")
    print(f"{'balanced':10s} {len(r.per_image):6d} {_fmt(r.mean)} {_fmt(r.std)}  (mean and std of the 3 bin means)")
    if args.json is not None:
        r.to_json(args.json)
    if args.per_image is not None:
        np.save(args.per_image, r.per_image)
    return 0
