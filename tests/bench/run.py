"""`make bench`: speed of facenb's scorers, with baselines timed in the same run.

NoW, three configurations (median of repeated runs, wall clock, this machine):

* the largest NoW conformance case (if ``FACENB_CONFORMANCE`` / ``../shared/conformance`` is present),
* a generated 120k-vertex scan against a 5k-vertex prediction,
* a generated 164k-vertex scan cropped to ~32k points against a 10k-vertex prediction -- the configuration in
  which the official scorer (psbody-mesh + chumpy) was measured at about 1.9 s on this machine class.

For each: facenb's single-pair time (files already in memory, all protocol steps) and cropped scan points per
second, next to a baseline measured in the same run: one trimesh ``closest_point`` query of the same cropped
points against the same aligned prediction (a single distance evaluation; the protocol needs ~7-8 of them).
Other benchmarks (``bench/bench_*.py``) are run afterwards as subprocesses and print their own lines.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from facenb.benchmarks import now  # noqa: E402
from facenb.io import load_mesh  # noqa: E402

OFFICIAL_NOW_SECONDS = 1.9  # official scorer, 164k-vertex scan cropped to 32k points vs 10k-vertex prediction


def _timeit(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _face_surface(subdiv: int, keep_z: float | None, seed: int, bumps: float = 0.0):
    """A head-like closed surface: an ellipsoid (75 x 95 x 85 mm) with a nose, eye sockets and random smooth
    bumps (so that the rigid alignment is well determined, unlike a sphere), optionally cut to its front
    (z > keep_z * 85 mm). Landmarks: the vertices nearest to the planned eye/nose/mouth positions."""
    ico = trimesh.creation.icosphere(subdivisions=subdiv, radius=1.0)
    u = np.asarray(ico.vertices, dtype=np.float64)
    f = np.asarray(ico.faces, dtype=np.int64)
    v = u * np.array([75.0, 95.0, 85.0])
    feats = [((0, 10, 1), 18.0, 14.0), ((-30, 30, 1), -7.0, 12.0), ((30, 30, 1), -7.0, 12.0),
             ((0, -30, 1), 4.0, 15.0)]
    rng = np.random.default_rng(seed)
    for (x, y, _), h, sig in feats:
        d2 = (v[:, 0] - x) ** 2 + (v[:, 1] - y) ** 2
        v[:, 2] += np.where(u[:, 2] > 0, h * np.exp(-d2 / (2 * sig ** 2)), 0.0)
    for _ in range(12 if bumps else 0):
        c = rng.normal(size=3)
        c = c / np.linalg.norm(c)
        v += u * (bumps * rng.normal() * np.exp(-np.sum((u - c) ** 2, 1) / (2 * 0.25 ** 2)))[:, None]
    if keep_z is not None:
        fm = (u[f][:, :, 2] > keep_z).all(axis=1)
        used = np.unique(f[fm])
        remap = -np.ones(len(v), dtype=np.int64)
        remap[used] = np.arange(len(used))
        v, f = v[used], remap[f[fm]]
    targets = np.array([[-45, 35], [-15, 35], [15, 35], [45, 35], [0, -5], [-25, -35], [25, -35]], dtype=float)
    front = np.nonzero(v[:, 2] > 0)[0]
    lm = np.array([v[front[np.argmin(np.sum((v[front, :2] - t) ** 2, 1))]] for t in targets])
    return v, f, lm


def _generated_pair(scan_subdiv, scan_keep, pred_subdiv, pred_keep, seed=0):
    sv, sf, slm = _face_surface(scan_subdiv, scan_keep, seed, bumps=1.5)
    pv, pf, plm = _face_surface(pred_subdiv, pred_keep, seed + 1, bumps=1.5)
    rng = np.random.default_rng(seed)
    ang = rng.normal(size=3) * 0.2
    from facenb.align import rodrigues

    R, _ = rodrigues(ang)
    t = rng.uniform(-20, 20, 3)
    s = 1.1
    plm = plm + rng.normal(scale=1.0, size=plm.shape)
    return sv, sf, slm, s * pv @ R.T + t, pf, (s * plm @ R.T + t).astype(np.float32)


def _bench_now(label, sv, slm, pv, pf, plm, official=None):
    res = now.evaluate(sv, slm, pv, pf, plm)
    t_facenb = _timeit(lambda: now.evaluate(sv, slm, pv, pf, plm))
    pts = sv[res.crop_indices]
    tm = trimesh.Trimesh(res.aligned_vertices, res.faces, process=False)
    t_tm = _timeit(lambda: trimesh.proximity.closest_point(trimesh.Trimesh(tm.vertices, tm.faces, process=False),
                                                           pts), repeat=3)
    n = res.n_points
    print(f"NoW | {label}")
    print(f"  scan {len(sv)} vertices -> {n} cropped points; prediction {len(pv)} vertices; mean {res.mean_mm:.6f} mm;"
          f" {res.evaluations} distance evaluations")
    print(f"  facenb single pair          {t_facenb:8.3f} s   {n / t_facenb:12,.0f} scan points/s")
    print(f"  trimesh closest_point (x1)  {t_tm:8.3f} s   {n / t_tm:12,.0f} scan points/s   "
          f"ratio trimesh-one-query / facenb-whole-protocol = {t_tm / t_facenb:.2f}x")
    if official:
        print(f"  official scorer (measured separately, same machine class): ~{official:.1f} s -> facenb is "
              f"{official / t_facenb:.1f}x faster (target 5x)")


def main() -> int:
    conf = Path(os.environ.get("FACENB_CONFORMANCE", REPO.parent / "shared" / "conformance")) / "now"
    case = conf / "now02_sfm_dense_vs_other_identity"
    if case.is_dir():
        scan = load_mesh(case / "scan.obj", require_faces=False)
        pred = load_mesh(case / "pred.obj")
        slm = now.load_now_landmarks(case / "scan_lmks.pp")
        plm = now.load_now_landmarks(case / "pred_lmks.txt")
        t_io = _timeit(lambda: (load_mesh(case / "scan.obj", require_faces=False), load_mesh(case / "pred.obj")), 3)
        _bench_now(f"largest conformance case {case.name} (+{t_io:.3f} s to read both OBJ files)",
                   scan.vertices, slm, pred.vertices, pred.faces, plm)
    else:
        print(f"NoW | conformance cases not found at {conf}: skipped (set FACENB_CONFORMANCE)")
    sv, sf, slm, pv, pf, plm = _generated_pair(7, -0.5, 5, 0.0)
    _bench_now("generated 120k-vertex scan vs 5k-vertex prediction", sv, slm, pv, pf, plm)
    sv, sf, slm, pv, pf, plm = _generated_pair(7, None, 5, None, seed=3)
    _bench_now("generated 164k-vertex scan (~32k cropped) vs 10k-vertex prediction", sv, slm, pv, pf, plm,
               official=OFFICIAL_NOW_SECONDS)
    for extra in sorted(Path(__file__).parent.glob("bench_*.py")):
        sys.stdout.flush()
        subprocess.run([sys.executable, str(extra)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
