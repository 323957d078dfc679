"""`make bench` (run by bench/run.py as a subprocess): Stirling/FG2018 scorer, one row per case.

Cases: every Stirling conformance case (``FACENB_CONFORMANCE/stirling``, when present) and a generated pair (a
head-like ~110k-vertex scan vs a 5k-vertex prediction). For each case, its size and:

* **scoring core**: ``stirling.evaluate`` on arrays already in memory (landmark checks, Procrustes, alignment, face
  mask, exact distances of the masked scan vertices to the aligned prediction);
* **files to distances**: ``stirling.evaluate_files`` (reading the scan, the ``.lnd``, the prediction and its
  landmarks included);
* **whole command**: ``facenb stirling --scan ... --pred ...`` as a subprocess (start-up, imports, reading,
  scoring, printing), children's CPU, with compiled bytecode after one untimed run (as the NoW rows);
* **baseline** measured in the same run: one trimesh ``closest_point`` query of the same masked scan points
  against the same aligned prediction (the distance step alone).

The official FG2018 code computes its distances with PyMesh's libigl AABB tree, and so does facenb (its file
reproduces the official bytes); the protocol is one exact distance query plus linear work, so the scoring core
should cost about one query. CPU time (``time.process_time``; children's user+sys for the subprocess) and wall
clock, best of ``FACENB_BENCH_REPEAT`` (default 3) runs. No ratio against a figure not measured in this run.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import trimesh

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from facenb.benchmarks import stirling  # noqa: E402
from facenb.io import load_landmarks, load_mesh, save_landmarks_txt, save_obj  # noqa: E402
from run import _PYCACHE, _best, _best_command, _face_surface, _facenb_exe  # noqa: E402  (the NoW bench's helpers)


def _row(name: str, cpu_wall: tuple[float, float]) -> str:
    return f"  {name:40s} cpu {cpu_wall[0]:7.3f} s   wall {cpu_wall[1]:7.3f} s"


def _bench_case(label: str, files: dict, repeat: int) -> None:
    scan = load_mesh(files["scan"], require_faces=False)
    pred = load_mesh(files["pred"])
    gt_lm = stirling.read_lnd(files["scan_lnd"])
    pred_lm = load_landmarks(files["pred_lmks"], n=7)
    res = stirling.evaluate(scan.vertices, gt_lm, pred.vertices, pred.faces, pred_lm)
    pts = scan.vertices[res.indices]
    print(f"Stirling/FG2018 | {label}: scan {len(scan.vertices)} vertices -> {res.n_points} in the face mask, "
          f"prediction {len(pred.vertices)} vertices / {len(pred.faces)} faces; mean {res.mean_mm:.6f} mm")
    print(_row("scoring core (arrays loaded)",
               _best(lambda: stirling.evaluate(scan.vertices, gt_lm, pred.vertices, pred.faces, pred_lm), repeat)))
    print(_row("files to distances",
               _best(lambda: stirling.evaluate_files(files["scan"], files["scan_lnd"], files["pred"],
                                                     files["pred_lmks"]), repeat)))
    argv = _facenb_exe() + ["stirling", "--scan", str(files["scan"]), "--scan-landmarks", str(files["scan_lnd"]),
                            "--pred", str(files["pred"]), "--pred-landmarks", str(files["pred_lmks"])]
    print(_row("whole command (facenb stirling)", _best_command(argv, repeat)))
    mesh = trimesh.Trimesh(res.aligned_vertices, res.faces, process=False)
    print(_row("baseline: trimesh closest_point (x1)",
               _best(lambda: trimesh.proximity.closest_point(mesh, pts), max(1, repeat - 1))))


def _write_lnd(path: Path, lm: np.ndarray) -> None:
    # the official .lnd: 7 lines "id x y z", in stirling.LANDMARK_NAMES order (the NoW order of _face_surface)
    path.write_text("".join(f"{i} {x:.6f} {y:.6f} {z:.6f}\n" for i, (x, y, z) in enumerate(lm, 1)))


def main() -> int:
    repeat = int(os.environ.get("FACENB_BENCH_REPEAT", "3"))
    root = Path(os.environ.get("FACENB_CONFORMANCE", REPO.parent / "shared" / "conformance")) / "stirling"
    cases = sorted(p for p in root.glob("st*") if (p / "scan.obj").exists()) if root.is_dir() else []
    if not cases:
        print(f"Stirling/FG2018 | conformance cases not found at {root}: skipped (set FACENB_CONFORMANCE)")
    for case in cases:
        _bench_case(f"conformance {case.name}", dict(scan=case / "scan.obj", scan_lnd=case / "scan.lnd",
                                                     pred=case / "pred.obj", pred_lmks=case / "pred_lmks.txt"),
                    repeat)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        sv, sf, slm = _face_surface(7, -0.33, 11, bumps=1.5)
        pv, pf, plm = _face_surface(5, 0.0, 12, bumps=1.5)
        save_obj(t / "scan.obj", sv, sf, fmt="%.6f")
        _write_lnd(t / "scan.lnd", slm)
        save_obj(t / "pred.obj", pv, pf, fmt="%.6f")
        save_landmarks_txt(t / "pred_lmks.txt", plm)
        _bench_case("generated ~110k-vertex scan vs 5k-vertex prediction",
                    dict(scan=t / "scan.obj", scan_lnd=t / "scan.lnd", pred=t / "pred.obj",
                         pred_lmks=t / "pred_lmks.txt"), repeat)
    shutil.rmtree(_PYCACHE, ignore_errors=True)  # the timed commands' bytecode (run._best_command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
