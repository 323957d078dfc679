"""`make bench` (run by bench/run.py as a subprocess): Stirling/FG2018 single pair, ~110k-vertex scan vs a 5k-vertex
prediction.

facenb's whole protocol (landmark checks, Procrustes, alignment, face mask, exact distances of the masked scan
vertices to the aligned prediction) on arrays already in memory, next to a baseline measured in the same run:
one trimesh ``closest_point`` query of the same masked points against the same aligned prediction (the distance
step alone). Target: < 0.3 s for facenb. Medians of repeated runs, wall clock and CPU time (libigl's AABB query
runs in threads: on a shared, loaded machine the wall clock can be several times the CPU time).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from facenb.benchmarks import stirling  # noqa: E402
from run import _generated_pair  # noqa: E402  (the NoW bench's head-like surfaces)

TARGET_SECONDS = 0.3


def _median(fn, repeat: int) -> float:
    return _median2(fn, repeat)[0]


def _median2(fn, repeat: int) -> tuple[float, float]:
    """Median wall clock and median CPU time (all threads of this process)."""
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu))


def _bench(label, sv, slm, pv, pf, plm) -> None:
    res = stirling.evaluate(sv, slm, pv, pf, plm)
    t_facenb, c_facenb = _median2(lambda: stirling.evaluate(sv, slm, pv, pf, plm), 7)
    pts = sv[res.indices]
    t_tm = _median(lambda: trimesh.proximity.closest_point(
        trimesh.Trimesh(res.aligned_vertices, res.faces, process=False), pts), 3)
    n = res.n_points
    print(f"Stirling/FG2018 | {label}")
    print(f"  scan {len(sv)} vertices -> {n} in the face mask; prediction {len(pv)} vertices / {len(pf)} faces; "
          f"mean {res.mean_mm:.6f} mm, 3D-RMSE {res.rmse_mm:.6f} mm")
    print(f"  facenb single pair          {t_facenb:8.3f} s   {n / t_facenb:12,.0f} scan points/s   "
          f"(CPU {c_facenb:.3f} s; target < {TARGET_SECONDS} s wall: "
          f"{'met' if t_facenb < TARGET_SECONDS else 'NOT met'})")
    print(f"  trimesh closest_point (x1)  {t_tm:8.3f} s   {n / t_tm:12,.0f} scan points/s   "
          f"ratio trimesh / facenb = {t_tm / t_facenb:.1f}x")


def main() -> int:
    sv, _, slm, pv, pf, plm = _generated_pair(7, -0.33, 5, 0.0, seed=11)
    _bench("generated ~110k-vertex scan vs 5k-vertex prediction", sv, slm, pv, pf, plm.astype(np.float64))
    case = Path(os.environ.get("FACENB_CONFORMANCE", REPO.parent / "shared" / "conformance")) / "stirling" \
        / "st02_sfm_dense_vs_other_identity"
    if case.is_dir():
        from facenb.io import load_landmarks, load_mesh

        scan = load_mesh(case / "scan.obj", require_faces=False)
        pred = load_mesh(case / "pred.obj")
        _bench(f"conformance case {case.name}", scan.vertices, stirling.read_lnd(case / "scan.lnd"),
               pred.vertices, pred.faces, load_landmarks(case / "pred_lmks.txt", n=7))
    else:
        print(f"Stirling/FG2018 | conformance case not found at {case}: skipped (set FACENB_CONFORMANCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
