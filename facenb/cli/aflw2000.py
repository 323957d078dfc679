"""``facenb aflw2000``: the AFLW2000-3D 68-landmark NME (official 3DDFA ``benchmark_aflw2000.py`` numbers)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from facenb.cli import command
from facenb.vocabulary import AFLW_YAW_BINS


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
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", type=Path,
                     help="predicted landmarks .npy: (2000, 2|3, 68) or (2000, 68, 2|3), official image order")
    src.add_argument("--published", choices=("2dasl40",),
                     help="score released predictions instead: 2dasl40 = PRNet, 3DDFA and 2DASL on the 40 images "
                          "of the 2DASL repository (dataset aflw2000_3d_2dasl40; image pixels, official bins); "
                          "--json then writes {method: {n_images, mean, median, balanced, bins}}")
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
    if args.published:
        return _run_published(args)
    r = aflw2000.evaluate(args.gt_dir, args.pred, annotations=args.annotations, error=args.error,
                          normalization=args.normalization, coords=args.coords, arithmetic=args.arithmetic)
    opts = ", ".join(f"{k}={v}" for k, v in r.options.items())
    print(f"AFLW2000-3D NME (%), {opts}")
    print(f"{'yaw bin':10s} {'images':>6s} {'mean':>6s} {'std':>6s}")
    for lab, n, m, s in zip(AFLW_YAW_BINS, r.bin_count, r.bin_mean, r.bin_std):
        print(f"{lab:10s} {n:6d} {_fmt(m)} {_fmt(s)}")
    print(f"{'balanced':10s} {len(r.per_image):6d} {_fmt(r.mean)} {_fmt(r.std)}  (mean and std of the 3 bin means)")
    if args.json is not None:
        r.to_json(args.json)
    if args.per_image is not None:
        np.save(args.per_image, r.per_image)
    return 0


def _run_published(args: argparse.Namespace) -> int:
    import json

    from facenb.benchmarks import aflw2000, aflw2000_published as pub
    from facenb.errors import InputError

    if args.per_image is not None or args.coords != "crop" or args.error != "2d" or args.normalization != "bbox" \
            or args.arithmetic != "numpy1":
        raise InputError("--published scores with the official protocol in image pixels; only --annotations, "
                         "--gt-dir and --json apply", None, "drop the other options")
    g = aflw2000.load_ground_truth(args.gt_dir)
    data = pub.load(gt=g)
    results = pub.score(data, g, args.annotations)
    table = pub.summary_table(results)
    ref = pub.published_reference()
    n = data.n_images
    print(f"AFLW2000-3D NME (%) of released predictions on {n} images (2DASL release), annotations="
          f"{args.annotations}, coords=image, official yaw bins")
    print(f"{n} mostly frontal images of the 2000 cannot confirm a 2000-image number: they check reading, "
          "indexing and frame, and compare the methods on identical inputs.")
    print(f"{'method':7s} {'images':>6s} {'mean':>6s} {'median':>6s} {AFLW_YAW_BINS[0]:>12s} {AFLW_YAW_BINS[1]:>12s} {AFLW_YAW_BINS[2]:>12s}"
          f" {'balanced':>8s} | published, 2000 images (balanced)")
    for m, t in table.items():
        bins = " ".join(f"{_fmt(v if v is not None else math.nan)} ({c:2d})" for c, v in t["bins"].values())
        r = ref.get(m)
        pubtxt = f"{r['value']:.2f}  [{r['source']}]" if r else "none in data/reported"
        print(f"{m:7s} {t['n_images']:6d} {_fmt(t['mean'])} {_fmt(t['median'])} {bins} "
              f"{_fmt(t['balanced'] if t['balanced'] is not None else math.nan):>8s} | {pubtxt}")
    print("bins: mean NME (images in the bin); mean/median over the images; balanced = mean of the 3 bin means")
    if args.json is not None:
        args.json.write_text(json.dumps(table, indent=1) + "\n")
    return 0
