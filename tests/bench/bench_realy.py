"""`make bench` (run by bench/run.py as a subprocess): REALY seconds per subject on the conformance cases.

For each case (size printed: subjects, topology, template vertices, scan-region vertices per subject), three facenb
times per subject, each as CPU time (``time.process_time``; for the subprocess ``RUSAGE_CHILDREN`` user + system)
and wall clock, best of ``FACENB_BENCH_REPEAT`` (default 3) runs; the machine may be shared, so CPU time is the
steadier number:

* scoring core: the whole official protocol per subject (global alignment, 4 region rigid ICPs, 4 bidirectional
  non-rigid ICPs, errors) on arrays already read, in one process (``jobs=1``);
* files to errors: the same, reading the template and the subject's files (prediction, keypoints, 4 regions)
  included;
* whole command: ``facenb realy ... --jobs 1`` as a subprocess on the case's folders (start-up, reading, scoring,
  statistics, ``REALY_error.txt``, summaries and error maps written to a fresh folder), with compiled bytecode as
  from an installed package (one untimed warm-up run).

Then one profiled run: CPU seconds per protocol stage (global alignment, closest-point surfaces and queries, region
rigid ICP, non-rigid ICP and its linear solves; CHOLMOD's numeric factorisations, symbolic analyses and triangular
solves, those of the keypoint stages included), per subject.

Baseline measured in the same run: one trimesh ``closest_point`` query of the subject's 4 scan regions (all their
vertices) against the globally aligned prediction -- a single distance evaluation; the protocol needs dozens (rigid
ICP iterations, non-rigid steps). Every ratio printed is against that baseline, measured in this run.

The official scorer (czh-98/REALY ``main.py``): when ``FACENB_OFFICIAL_REALY`` names an official checkout and
``FACENB_OFFICIAL_REALY_PYTHON`` its environment's Python (README, "REALY": how to build it), it is timed side by side:
``FACENB_BENCH_OFFICIAL_ROUNDS`` (default 2) alternating rounds of, per subject, the official ``REALY_eval_all`` on
that subject in one process (``official_realy_subject.py``: CPU seconds, the subject's files read, one BLAS thread)
and facenb reading the same files (template included) and scoring them; the best of each and their ratio are
printed, with whether the official run wrote the conformance case's line. Otherwise its times are quoted from issue
15's table (2026, another host of this machine class): 25.0 s per HIFI3D subject, 13.1-13.7 s per FLAME subject
with a template mask, in one process. No ratio against a figure not measured in this run is printed.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from facenb.benchmarks import realy  # noqa: E402
from run import _PYCACHE, _best, _best_command, _facenb_exe, _official_json  # noqa: E402  (the NoW bench's timing helpers)

#: official scorer, one process, seconds per subject: issue 15's table (2026), measured on this machine class
ISSUE_15_OFFICIAL = {"HIFI3D": "25.0 s", "FLAME": "13.1-13.7 s"}


def _trimesh_baseline(subjects, tmpl) -> None:
    """One trimesh closest-point query of every subject's scan regions against its aligned prediction."""
    import trimesh

    for s in subjects:
        al = realy.global_alignment(s.prediction.vertices, s.gt_keypoints, tmpl)
        mesh = trimesh.Trimesh(al.vertices, s.prediction.faces, process=False)
        pts = np.concatenate([np.asarray(s.regions[r].vertices, np.float64) for r in realy.REGIONS])
        trimesh.proximity.closest_point(mesh, pts)


def _stage_profile(subjects, tmpl) -> dict:
    """CPU seconds per protocol stage for one run over ``subjects`` (wrappers around the stage functions; the
    stages nest: rigid ICP includes its closest-point queries, non-rigid ICP its linear solves)."""
    from facenb import distance, nicp
    from facenb.benchmarks.realy import protocol

    spent: dict = {}
    patched = []

    def wrap(owner, name, key):
        fn = getattr(owner, name)

        def timed(*a, **k):
            c = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[key] = spent.get(key, 0.0) + time.process_time() - c

        patched.append((owner, name, fn))
        setattr(owner, name, timed)

    wrap(protocol, "global_alignment", "global alignment")
    wrap(distance.TrimeshSurface, "__init__", "closest-point surfaces (build)")
    wrap(distance.TrimeshSurface, "query", "closest-point queries (all)")
    wrap(protocol, "region_rigid_icp", "region rigid ICP (with its queries)")
    wrap(protocol, "nonrigid_icp", "non-rigid ICP (with its solves)")
    wrap(nicp._BlockSystem, "cholmod_solve", "  of which CHOLMOD factorise + solve")
    mod = nicp._cholmod()
    if mod is not None:
        wrap(mod[0], "numeric", "  CHOLMOD numeric factorisations (all)")
        wrap(mod[0], "symbolic", "  CHOLMOD symbolic analyses (all)")
    wrap(nicp, "_factor_solve", "  CHOLMOD triangular solves (all)")  # the multi-column call or cvxopt's
    wrap(nicp, "_pcg", "  of which SuperLU-preconditioned CG")
    wrap(nicp, "_factor", "  of which SuperLU factorisations")
    wrap(nicp, "_keypoint_stage_solve", "  of which keypoint stages")
    c = time.process_time()
    try:
        for s in subjects:
            realy.evaluate_subject(s, tmpl)
    finally:
        for owner, name, fn in reversed(patched):
            setattr(owner, name, fn)
    spent["total"] = time.process_time() - c
    return spent


def _official_side_by_side(case: Path, topo: str, exp: dict, mirror: Path, mask) -> None:
    """Alternating per-subject CPU times of the official scorer and facenb (see the module docstring)."""
    root, py = os.environ.get("FACENB_OFFICIAL_REALY"), os.environ.get("FACENB_OFFICIAL_REALY_PYTHON")
    if not root or not py:
        print("  official scorer: not run here (set FACENB_OFFICIAL_REALY to an official checkout and "
              "FACENB_OFFICIAL_REALY_PYTHON to its environment's python to time it side by side; README, REALY)")
        return
    rounds = int(os.environ.get("FACENB_BENCH_OFFICIAL_ROUNDS", "2"))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    script = Path(__file__).with_name("official_realy_subject.py")
    off: dict = {}
    ours: dict = {}
    lines: dict = {}
    for _ in range(rounds):
        for s in exp["subjects"]:
            sid = s["subject"]
            with tempfile.TemporaryDirectory(prefix="facenb_bench_official_") as tmp:
                o = _official_json([py, str(script), str(case), topo, str(sid), str(Path(tmp) / "out")], root,
                                   env=env, what=f"subject {sid}")
            if o is None:
                return
            off.setdefault(sid, []).append(o["cpu"])
            lines[sid] = o["line"]
            c = time.process_time()
            t = realy.load_template(topo, data_dir=mirror)
            realy.evaluate_subject(realy.load_case_subject(case, sid, t, mask), t)
            ours.setdefault(sid, []).append(time.process_time() - c)
    for sid in off:
        same = "the conformance case's line" if lines[sid] in exp["REALY_error_txt"] else "a line that differs from the conformance case's"
        print(f"  side by side, subject {sid} ({rounds} alternating rounds, CPU per subject, files read, one process): "
              f"official {min(off[sid]):.2f} s, facenb {min(ours[sid]):.2f} s = {min(off[sid]) / min(ours[sid]):.1f}x "
              f"(rounds: official {', '.join(f'{x:.2f}' for x in off[sid])}; facenb "
              f"{', '.join(f'{x:.2f}' for x in ours[sid])}); the official wrote {same}: {lines[sid].strip()!r}")


def main() -> int:
    conf = Path(os.environ.get("FACENB_CONFORMANCE", REPO.parent / "shared" / "conformance")) / "realy"
    mirror = Path(os.environ.get("FACENB_DATA_MIRROR", REPO.parent / "shared" / "data")) / "realy_templates"
    repeat = int(os.environ.get("FACENB_BENCH_REPEAT", "3"))
    if not conf.is_dir() or not mirror.is_dir():
        print(f"REALY | conformance cases ({conf}) or templates ({mirror}) not found: skipped")
        return 0
    for case in sorted(p for p in conf.iterdir() if (p / "expected.json").is_file()):
        exp = json.loads((case / "expected.json").read_text())
        topo = exp["template_topology"]
        mask = case / "template_mask.txt" if exp.get("template_mask") else None

        def read_all():
            t = realy.load_template(topo, data_dir=mirror)
            return t, [realy.load_case_subject(case, s["subject"], t, mask) for s in exp["subjects"]]

        tmpl, subjects = read_all()
        n = len(subjects)
        res: list = []

        def score_all() -> None:
            res[:] = [realy.evaluate_subject(s, tmpl) for s in subjects]

        def files_to_errors() -> None:
            t, subs = read_all()
            for s in subs:
                realy.evaluate_subject(s, t)

        c1, w1 = _best(score_all, repeat)
        c2, w2 = _best(files_to_errors, repeat)
        args = ["realy", "--keypoints", str(case / "REALY_HIFI3D_keypoints"), "--regions",
                str(case / "REALY_scan_region"), "--scale", str(case / "metrical_scale.txt"), "--predictions",
                str(case / "prediction"), "--template", str(mirror / f"{topo}.obj"), "--jobs", "1", "--no-progress"]
        if mask:
            args += ["--template-mask", str(mask)]
        with tempfile.TemporaryDirectory(prefix="facenb_bench_realy_") as tmp:
            out = Path(tmp) / "out"  # a fresh --out for each run (the runner would otherwise answer from its cache)
            c3, w3 = _best_command(_facenb_exe() + args + ["--out", str(out)], repeat,
                                   before=lambda: shutil.rmtree(out, ignore_errors=True))
        cb, wb = _best(lambda: _trimesh_baseline(subjects, tmpl), repeat)
        # the official values are known to lie in [written, written + 1e-7) (truncation): distance to that interval
        dev = max(max(max(0.0, float(s["written"][g]) - r.errors_mm[g], r.errors_mm[g] - float(s["written"][g]) - 1e-7)
                      for g in realy.REGIONS) for r, s in zip(res, exp["subjects"]))
        n_scan = sum(len(s.regions[r].vertices) for s in subjects for r in realy.REGIONS) // n
        official = exp.get("seconds_per_run") or []
        print(f"REALY | conformance case {case.name}: {n} subject(s), {topo} topology "
              f"({tmpl.n_vertices} vertices){', template mask' if mask else ''}, {n_scan} scan-region vertices per "
              f"subject; max distance to the official values = {dev:.1e} mm (they are known to 1e-7 mm)")
        for label, c, w in (("scoring core (arrays loaded)", c1, w1), ("files to errors (reading included)", c2, w2),
                            ("whole command (facenb realy --jobs 1)", c3, w3)):
            print(f"  facenb, {label:<38s} CPU {c / n:6.2f} s per subject (wall {w / n:5.2f} s) "
                  f"= {c / cb:4.1f}x the baseline's CPU")
        print(f"  baseline: one trimesh closest_point query      CPU {cb / n:6.2f} s per subject (wall {wb / n:5.2f} s)"
              f" (scan regions vs aligned prediction, this run)")
        _official_side_by_side(case, topo, exp, mirror, mask)
        prof = _stage_profile(subjects, tmpl)
        order = ["global alignment", "closest-point surfaces (build)", "region rigid ICP (with its queries)",
                 "non-rigid ICP (with its solves)", "  of which CHOLMOD factorise + solve",
                 "  CHOLMOD numeric factorisations (all)", "  CHOLMOD symbolic analyses (all)", "  CHOLMOD triangular solves (all)",
                 "  of which SuperLU factorisations", "  of which SuperLU-preconditioned CG",
                 "  of which keypoint stages", "closest-point queries (all)", "total"]
        print("  profile, one run, CPU s per subject: " + "; ".join(
            f"{k.strip()} {prof[k] / n:.2f}" for k in order if k in prof))
        quoted = ISSUE_15_OFFICIAL.get(topo)
        if quoted:
            print(f"  official scorer, 1 process: {quoted} per subject (issue 15's table, 2026, its host: quoted)")
        if official:
            print(f"  official main.py runs when this case was made: {', '.join(f'{t:.0f}' for t in official)} s "
                  f"(whole runs, not run here)")
        sys.stdout.flush()
    shutil.rmtree(_PYCACHE, ignore_errors=True)  # the timed commands' bytecode (run._best_command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
