"""``facenb realy``: the REALY region metric on a folder in the official layout (czh-98/REALY ``main.py``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facenb.cli import command
from facenb.errors import InputError


@command
def _add_realy(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "realy",
        help="REALY region errors (official czh-98/REALY numbers)",
        description=(
            "Score predictions with the REALY protocol (global 7-keypoint alignment, region rigid ICP, "
            "bidirectional non-rigid ICP; nose / mouth / forehead / cheek errors in mm). The folders are the "
            "official ones, as they are. Writes REALY_error.txt (official format), summary.json / summary.csv, "
            "subjects.csv and per-region error maps (PLY with per-vertex error_mm) to --out. Exit status: 0 every "
            "subject scored, 1 some failed (--skip-invalid or a scoring failure), 2 bad input or none scored."
        ),
    )
    p.add_argument("--keypoints", type=Path, required=True, help="REALY_HIFI3D_keypoints/ (<id>.obj, 85 points)")
    p.add_argument("--regions", type=Path, required=True,
                   help="REALY_scan_region/ (<id>/{nose,mouth,forehead,cheek}.obj)")
    p.add_argument("--scale", type=Path, required=True, help="metrical_scale.txt (mm per unit, line = subject id)")
    p.add_argument("--predictions", type=Path, required=True, help="folder of <id>.obj predictions (template topology)")
    p.add_argument("--template",
                   help="template NAME (HIFI3D, BFM09, Deep3D, 3DDFA_v2, FLAME; see `facenb data fetch "
                        "realy_templates`) or path to a template .obj")
    p.add_argument("--pred-topology", metavar="NAME|auto",
                   help="instead of --template: the predictions' topology by name, or auto (recognised from the "
                        "first prediction's vertex count and triangles, facenb.landmarks.identify_topology)")
    p.add_argument("--template-keypoints", type=Path,
                   help="barycentric keypoint file of the template (default: the template's .txt)")
    p.add_argument("--template-mask", type=Path, help="0/1 per template vertex: triangles used for the error")
    p.add_argument("--view", choices=("frontal", "side"), default="frontal",
                   help="which REALY track the predictions are (recorded in the summary)")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes (subjects)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--save-meshes", action="store_true",
                   help="also save the aligned prediction per region and the deformed scan regions (OBJ)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="score the valid subjects when some fail the input checks (default: stop with exit 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_realy)


def _run_realy(args: argparse.Namespace) -> int:
    from facenb.benchmarks import realy

    if args.jobs < 1:
        raise InputError("--jobs must be at least 1", None, "pass --jobs 1 or more")
    from facenb.io import check_writable

    check_writable(args.out, "folder", "--out")  # before any scoring
    if (args.template is None) == (args.pred_topology is None):
        raise InputError("give --template or --pred-topology (one of them)", None, "see 'facenb realy --help'")
    if args.pred_topology is not None:
        from facenb import landmarks

        if args.pred_topology.lower() == "auto":
            first = realy.list_predictions(args.predictions)[0]
            mesh = realy.read_obj(first)
            args.template = landmarks.identify_topology(mesh.vertices, mesh.faces, str(first))
            print(f"facenb: note: predictions recognised as topology {args.template} (from {first.name})",
                  file=sys.stderr)
        else:
            names = {t.lower(): t for t in landmarks.TOPOLOGIES}
            if args.pred_topology.lower() not in names:
                raise InputError(f"unknown --pred-topology {args.pred_topology!r}", None,
                                 "use auto or one of " + ", ".join(landmarks.TOPOLOGIES))
            args.template = names[args.pred_topology.lower()]
    res = realy.evaluate_folder(
        args.keypoints, args.regions, args.scale, args.predictions, args.template, args.out,
        template_keypoints=args.template_keypoints, template_mask=args.template_mask, view=args.view,
        jobs=args.jobs, progress=not args.no_progress, save_meshes=args.save_meshes,
        skip_invalid=args.skip_invalid, log=lambda msg: print(f"facenb: error: {msg}", file=sys.stderr))
    n_ok = sum(o.status in ("ok", "cached") for o in res.outcomes)
    n_cached = sum(o.status == "cached" for o in res.outcomes)
    if n_ok == 0:
        print(f"facenb: error: no subject could be scored ({res.n_failed} failed); see {res.out_dir / 'subjects.csv'}",
              file=sys.stderr)
        return res.exit_code
    print(f"REALY ({args.view}): {n_ok} subjects scored ({n_cached} from cache), {res.n_failed} failed "
          f"-> {res.error_file}")
    for line in res.printed():
        print(line)
    return res.exit_code  # the runner's rule: 0 all scored, 1 some failed, 2 none scored
