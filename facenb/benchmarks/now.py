"""NoW benchmark: scan-to-mesh error of a predicted face mesh (Sanyal et al., RingNet, CVPR 2019).

Reproduces the official scorer ``soubhiksanyal/now_evaluation`` (``compute_error.py``,
``scan2mesh_computations.py`` and ``scan2mesh_computations_metrical.py``) without psbody-mesh or chumpy:

1. **Crop.** With the 7 scan landmarks ``l0..l6`` (float32, as the official ``.pp`` reader stores them):
   ``br = (l1 + l2) / 2``, centre ``c = l4 + 0.3 (br - l4)``, radius
   ``ρ = 1.4 (|l0 - l3| + |br - l4|) / 2``; the scan vertices with ``|v - c| <= ρ`` are kept, in file order.
   (The radius is evaluated in float64 from float32 distances, as numpy 1.x -- the official environment --
   does; numpy 2 would keep float32.)
2. **Landmark Procrustes.** Similarity from the 7 predicted to the 7 scan landmarks, reflections allowed
   (``reflection='best'``), in the landmarks' dtype (float32 for ``.txt``/``.pp``, the stored dtype for
   ``.npy``): :func:`facenb.align.procrustes`.
3. **Refinement.** ``min_{s,r,t} Σ_i d(p_i, s R(r) M + t)² + (100 (|s| - s))²`` over the cropped scan
   vertices ``p_i`` with chumpy's dogleg (``delta_0 = 0.1``, ``e_3 = 1e-4``, CG Gauss-Newton steps): the
   official, not fully converged, optimum (:func:`facenb.align.refine_scan_to_mesh`).
4. **Error.** Unsigned distance of every cropped scan vertex to the aligned prediction surface, in mm;
   a dataset is summarised by mean / median / population std (``ddof = 0``) of the concatenation of all
   images' distances (official ``cumulative_errors.py``).
5. **Metric mode** (``metric=True``, ``scan2mesh_computations_metrical.py``): the prediction is multiplied by
   the unit factor (m: 1000, cm: 10, mm: 1) instead of the Procrustes scale -- but, as in the official code,
   with the rotation and the *translation* of the scaled Procrustes -- and only ``(r, t)`` are refined.
6. **Degenerate faces.** ``clean_mesh=True`` (facenb's default) first removes the prediction triangles the
   official ``clean_degenerated_faces`` removes (zero unit-edge cross product: repeated indices, coincident
   vertices). The official CLI default is ``False``; it gives the same numbers whenever it finishes, but
   crashes (``ZeroDivisionError`` in lsqr) when a degenerate triangle is strictly the closest primitive of
   a scan point (e.g. faces ``(a, a, x)`` sticking out of the surface). ``clean_mesh=False`` reproduces that
   path: the degenerate triangles are kept and scored, and exactly the crashing case is refused with one
   line (``_check_uncleaned``; conformance ``now04`` scores 1.3580564732436773 mm, ``now06`` is refused).
   Unreferenced vertices never matter (only triangles are distances' targets).

Deliberate deviations, all optional with the official behaviour as default: ``solver='exact'`` (direct
Gauss-Newton solves instead of the official CG; a slightly better optimum, not the official number).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from facenb.align import Similarity, procrustes, refine_scan_to_mesh, similarity_matrix
from facenb.distance import SurfaceQuery, degenerate_faces, point_to_surface
from facenb.errors import InputError
from facenb.io import check_finite, file_identity, load_landmarks, load_mesh, load_npy
from facenb.landmarks import check_spread, outer_eye_distance

__all__ = [
    "LANDMARK_NAMES",
    "CHALLENGES",
    "UNIT_FACTORS",
    "Stats",
    "NowResult",
    "crop_scan",
    "load_now_landmarks",
    "evaluate",
    "evaluate_files",
    "statistics",
    "NowImage",
    "list_images",
    "ImageOutcome",
    "DatasetResult",
    "evaluate_dataset",
    "dataset_items",
    "score_image",
    "missing_note",
]

LANDMARK_NAMES = (
    "right_eye_outer",
    "right_eye_inner",
    "left_eye_inner",
    "left_eye_outer",
    "subnasale",
    "right_mouth_corner",
    "left_mouth_corner",
)
"""The 7 NoW landmarks in the official order ("right" = the subject's right; iBUG-68 points 37, 40, 43, 46,
34, 49, 55, 1-based)."""

CHALLENGES = ("multiview_neutral", "multiview_expressions", "multiview_occlusions", "selfie")
UNIT_FACTORS = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_PLAUSIBLE_EYE_MM = (30.0, 300.0)  # outer-eye-corner distance of a real face, with a wide margin


class Stats(NamedTuple):
    """Summary of per-vertex errors (mm): mean, median, population std (ddof = 0), count."""

    mean_mm: float
    median_mm: float
    std_mm: float
    n_points: int


def statistics(distances: np.ndarray | Sequence[np.ndarray]) -> Stats:
    """Official NoW summary of distances (a vector, or a list of per-image vectors concatenated)."""
    if isinstance(distances, (list, tuple)):
        d = np.hstack([np.asarray(x, dtype=np.float64).ravel() for x in distances]) if distances else np.zeros(0)
    else:
        d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size == 0:
        return Stats(float("nan"), float("nan"), float("nan"), 0)
    return Stats(float(np.mean(d)), _median(d), float(np.std(d)), int(d.size))


def _median(d: np.ndarray) -> float:
    """``numpy.median`` of a non-empty 1-D float64 vector, bit for bit, as numpy computes it (partition at the
    middle and the last positions; the middle element, or the mean ``(0 + a + b) / 2`` of the two middle ones; NaN if
    any is NaN) -- without the ``numpy.ma`` import (11 ms) its NaN check makes."""
    n = d.size
    h = n // 2
    kth = [h - 1, h, n - 1] if n % 2 == 0 else [h, n - 1]
    part = np.partition(d, kth)
    if np.isnan(part[-1]):
        return float("nan")
    if n % 2:
        return float((0.0 + part[h]) / 1.0)  # numpy's mean of one element: a sum from +0.0 (-0.0 -> 0.0)
    return float((0.0 + part[h - 1] + part[h]) / 2.0)


@dataclass(frozen=True)
class NowResult:
    """Result of scoring one prediction against one scan.

    Attributes
    ----------
    distances : (n_points,) float64, millimetres
        Unsigned distance of each cropped scan vertex to the aligned prediction, in the order of the
        cropped vertices (ascending scan vertex index).
    crop_indices : (n_points,) int64
        Indices of the cropped vertices in the scan.
    transform : (4, 4) float64
        Full map from the prediction's frame to the scan frame (Procrustes, then refinement).
    aligned_vertices : (m, 3) float64, millimetres
        Prediction vertices after alignment (scan frame).
    faces : (k, 3) int64
        Prediction triangles used (after cleaning).
    stats : Stats
    mode : str
        ``'nonmetric'`` or ``'metric'``.
    pred_unit : str or None
    iterations, evaluations : int
        Optimiser iterations and residual evaluations of the refinement.
    stop_reason : str
    removed_faces : int
        Degenerate triangles removed by cleaning.
    """

    distances: np.ndarray
    crop_indices: np.ndarray
    transform: np.ndarray
    aligned_vertices: np.ndarray
    faces: np.ndarray
    stats: Stats
    mode: str
    pred_unit: str | None
    iterations: int
    evaluations: int
    stop_reason: str
    removed_faces: int

    @property
    def mean_mm(self) -> float:
        return self.stats.mean_mm

    @property
    def median_mm(self) -> float:
        return self.stats.median_mm

    @property
    def std_mm(self) -> float:
        return self.stats.std_mm

    @property
    def n_points(self) -> int:
        return self.stats.n_points

    def summary(self) -> dict:
        """JSON-ready summary (no arrays)."""
        return {
            "mean_mm": self.mean_mm,
            "median_mm": self.median_mm,
            "std_mm": self.std_mm,
            "n_points": self.n_points,
            "mode": self.mode,
            "pred_unit": self.pred_unit,
            "iterations": self.iterations,
            "evaluations": self.evaluations,
            "stop_reason": self.stop_reason,
            "removed_degenerate_faces": self.removed_faces,
            "transform": self.transform.tolist(),
        }

    def printed(self) -> list[str]:
        """The official statistics as ``compute_error.py`` reports them (median, mean, std in mm)."""
        return [f"NoW {self.mode}: median {self.median_mm:.4f} mm, mean {self.mean_mm:.4f} mm, "
                f"std {self.std_mm:.4f} mm over {self.n_points} scan points"]

    def to_frame(self):
        """One row per cropped scan vertex: ``scan_vertex`` (index in the scan), ``distance_mm``."""
        import pandas as pd

        return pd.DataFrame({"scan_vertex": self.crop_indices, "distance_mm": self.distances})


# ------------------------------------------------------------------------------------------------- pieces
def crop_scan(scan_vertices: np.ndarray, scan_landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The NoW face crop.

    Parameters
    ----------
    scan_vertices : (n, 3) float64, millimetres
    scan_landmarks : (7, 3), millimetres
        Cast to float32 first (the official ``.pp`` reader's precision).

    Returns
    -------
    indices : (n_points,) int64
        Scan vertices with ``|v - c| <= ρ`` (see module docstring), ascending.
    centre : (3,) float32
    radius : float
    """
    lm = np.asarray(scan_landmarks).astype(np.float32)
    nose_bottom = lm[4]
    nose_bridge = (lm[1] + lm[2]) / 2
    centre = nose_bottom + 0.3 * (nose_bridge - nose_bottom)
    outer_eye = np.linalg.norm(lm[0] - lm[3])
    nose = np.linalg.norm(nose_bridge - nose_bottom)
    radius = 1.4 * float(outer_eye + nose) / 2  # numpy-1 promotion: float32 sum, float64 product
    dist = np.linalg.norm(np.asarray(scan_vertices, dtype=np.float64) - centre, axis=1)
    return np.nonzero(dist <= radius)[0].astype(np.int64), centre, radius


def load_now_landmarks(path: str | Path) -> np.ndarray:
    """Load 7 landmarks with the official scorer's precision.

    ``.txt`` and ``.pp`` become float32 (the official ``load_txt`` / ``load_pp``); ``.npy`` keeps its stored
    dtype (the official ``np.load``); other formats (``.pts``, ``.ljson``, ``.csv``) are read as float32.
    Shapes ``(7, 3)`` and ``(1, 7, 3)`` are accepted.
    """
    p = Path(path)
    if p.suffix.lower() == ".npy" and p.exists():
        raw = load_npy(p, "landmarks")
        arr = raw[0] if raw.ndim == 3 and raw.shape[0] == 1 else raw
        if arr.shape != (7, 3):
            raise InputError(f"landmarks have shape {raw.shape}, expected (7, 3) or (1, 7, 3)", p,
                             "give the 7 NoW landmarks in the official order")
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float64)
        check_finite(arr, p, "landmarks")
        check_spread(arr, p)
        return arr
    arr = load_landmarks(p, n=7, dim=3).astype(np.float32)
    check_spread(arr, p)
    return arr


def _check_scan_units(scan_landmarks: np.ndarray, where: str | None) -> None:
    eye = outer_eye_distance(scan_landmarks)
    lo, hi = _PLAUSIBLE_EYE_MM
    if not lo <= eye <= hi:
        raise InputError(
            f"scan landmarks span {eye:.4g} units between the outer eye corners; a face in millimetres spans "
            f"{lo:.0f}-{hi:.0f}", where, "NoW scans and their landmarks must be in millimetres")


def _check_metric_units(pred_landmarks: np.ndarray, unit: str | None, where: str | None) -> str:
    eye = outer_eye_distance(pred_landmarks)
    lo, hi = _PLAUSIBLE_EYE_MM
    if unit is None:
        guess = next((u for u, k in (("mm", 1.0), ("cm", 10.0), ("m", 1000.0)) if lo <= eye * k <= hi), None)
        if guess == "mm":
            return "mm"
        hint = f"it looks like {guess}: pass --pred-unit {guess}" if guess else "give --pred-unit m|cm|mm"
        raise InputError(
            f"metric evaluation needs the prediction's unit; the outer eye corners are {eye:.4g} apart", where, hint)
    if unit not in UNIT_FACTORS:
        raise InputError(f"unknown prediction unit {unit!r}", where, "use m, cm or mm")
    if not lo <= eye * UNIT_FACTORS[unit] <= hi:
        raise InputError(
            f"with --pred-unit {unit} the outer eye corners would be {eye * UNIT_FACTORS[unit]:.4g} mm apart "
            f"(a real face: {lo:.0f}-{hi:.0f} mm)", where, "pass the unit the prediction is saved in")
    return unit


# Geometry checks (scale-free, so a prediction in any unit, pose or position passes; see _check_geometry).
_EXTENT_PER_EYE = (1.0, 30.0)
_SCAN_LANDMARK_OFF = 0.1
_PRED_LANDMARK_OFF = 0.2
_PLAUSIBLE_MESH_MM = (60.0, 3000.0)


def _surface_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray | None) -> np.ndarray:
    """Distance of each point to the mesh surface (to the nearest vertex when there are no faces)."""
    pts = np.asarray(points, dtype=np.float64)
    if faces is not None and len(faces):
        return point_to_surface(pts, vertices, faces)  # exact; no tree over the whole scan for 7 landmarks
    return _nearest_vertex_distance(pts, vertices)


def _some_vertex_distance(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Exact distance of each point to one vertex close to it (the nearest by ``|v|^2 - 2 v.p``, which rounding may
    mistake for a nearly as close one): an upper bound of the nearest-vertex distance, in one matrix product."""
    v = np.asarray(vertices, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    k = np.argmin(np.einsum("ij,ij->i", v, v)[None, :] - 2.0 * (p @ v.T), axis=1)
    return np.sqrt(np.einsum("ij,ij->i", v[k] - p, v[k] - p))


def _nearest_vertex_distance(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest of ``vertices``."""
    v = np.asarray(vertices, dtype=np.float64)
    return np.array([np.sqrt(np.min(np.einsum("ij,ij->i", v - p, v - p))) for p in np.asarray(points, np.float64)])


def _check_geometry(vertices: np.ndarray, faces: np.ndarray | None, landmarks: np.ndarray, role: str,
                    mesh_where: str | None, lm_where: str | None, unit_factor: float | None = None) -> None:
    """Refuse a mesh whose size or landmarks do not fit together (unit mix-ups, wrong or shifted files).

    With ``e`` the landmarks' outer-eye-corner distance (the face's own size, in the landmarks' unit):

    * **extent**: the bounding-box diagonal of the mesh's triangles (of all vertices for a point cloud;
      unreferenced vertices never count, as they never count in the metric) must lie in ``[1, 30] e``: a face
      mesh spans at least its two outer eye corners, and a head scan with shoulders (the largest NoW scans)
      about 6 e; a mesh in metres with landmarks in millimetres is 1000x off, in centimetres 10x. (The
      conformance cases and the challenge folder: 2.7-4.8 e.)
    * **landmarks on the mesh**: every landmark within ``0.1 e`` (scan; picked on the scan in MeshLab, the
      conformance scans' within 0.07 mm) or ``0.2 e`` (prediction; landmarks may come from a separate
      regressor) of the surface -- about 9 / 18 mm on a real face, while a factor-10 unit error or a
      shifted landmark file moves them tens of millimetres or more. (The conformance cases and the challenge
      folder: scan landmarks within 0.0007 e, predicted landmarks within 0.033 e.)
      A vertex of a triangle near each landmark is tried first: its distance bounds the surface (and the
      nearest-vertex) distance from above, so the exact query runs only when that bound exceeds the limit (same
      verdict, exact distances in the message).
    * **metric mode** (``unit_factor``): the prediction's diagonal in mm, ``factor x diagonal``, within
      60-3000 mm (a face mask to a head with shoulders).

    All tests are ratios, so any similarity transform of a valid pair passes (property-tested).
    """
    v = np.asarray(vertices, dtype=np.float64)
    lm = np.asarray(landmarks, dtype=np.float64)
    eye = outer_eye_distance(lm)
    has_faces = faces is not None and len(faces)
    if has_faces:  # unreferenced vertices never count (a mask, not np.unique: same set, no sort, no numpy.ma)
        referenced = np.zeros(len(v), dtype=bool)
        referenced[np.asarray(faces).ravel()] = True
        used = np.take(v, np.flatnonzero(referenced), axis=0)  # v[referenced], gathered ~2x faster
    else:
        used = v
    # column by column: numpy reduces an (n, 3) array along axis 0 about 15x slower
    lo_xyz = np.array([used[:, j].min() for j in range(3)])
    hi_xyz = np.array([used[:, j].max() for j in range(3)])
    diag = float(np.linalg.norm(hi_xyz - lo_xyz))
    lo, hi = _EXTENT_PER_EYE
    if not lo * eye <= diag <= hi * eye:
        raise InputError(
            f"{role} mesh spans {diag:.4g} units (bounding-box diagonal) but its landmarks"
            f"{'' if lm_where in (None, mesh_where) else f' ({lm_where})'} are {eye:.4g} apart "
            f"between the outer eye corners (expected {lo:g}-{hi:g}x): mesh and landmarks are in different units "
            f"or do not belong together", mesh_where,
            "save the mesh and its landmarks in the same unit" + (" (millimetres)" if role == "scan" else ""))
    if unit_factor is not None:
        lo_mm, hi_mm = _PLAUSIBLE_MESH_MM
        if not lo_mm <= diag * unit_factor <= hi_mm:
            raise InputError(
                f"in the given unit the prediction mesh would span {diag * unit_factor:.4g} mm (a face or head: "
                f"{lo_mm:.0f}-{hi_mm:.0f} mm)", mesh_where, "pass the unit the prediction is saved in (--pred-unit)")
    limit = (_SCAN_LANDMARK_OFF if role == "scan" else _PRED_LANDMARK_OFF) * eye
    # A referenced vertex lies on the surface, so its distance bounds the landmark's distance to the surface from
    # above: within the limit, the exact surface query (over the whole scan) cannot change the verdict.
    off = _some_vertex_distance(lm, used)
    if float(off.max()) > limit:  # the exact distances decide (and are reported)
        off = _surface_distance(lm, v, faces) if has_faces else _nearest_vertex_distance(lm, used)
    if float(off.max()) > limit:
        k = int(np.argmax(off))
        raise InputError(
            f"{role} landmark {k} ({LANDMARK_NAMES[k]}) lies {off[k]:.4g} units from the {role} surface (limit "
            f"{limit:.3g} = {limit / eye:.1f} x the outer-eye distance): these landmarks are not on this mesh",
            lm_where, f"give the landmarks of this {role} mesh, in its units and frame")


def _point_segments_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``min_k`` distance of each point ``(n, 3)`` to the segments ``a[k] b[k]`` (a zero-length one is a point)."""
    out = np.full(len(points), np.inf)
    for ak, bk in zip(a, b):
        ab = bk - ak
        ap = points - ak
        ll = float(ab @ ab)
        t = np.clip(ap @ ab / ll, 0.0, 1.0) if ll > 0 else np.zeros(len(points))
        np.minimum(out, np.linalg.norm(ap - t[:, None] * ab, axis=1), out=out)
    return out


def _check_uncleaned(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, bad: np.ndarray,
                     where: str | None, when: str) -> None:
    """Refuse what the official uncleaned path (``clean_mesh=False``, its CLI default) cannot score.

    The official refinement evaluates its Jacobian with sbody's ``sample2meshdist`` on the (triangle, part)
    that psbody-mesh's AABB tree reports for each scan point; its ``nearest_primitive`` projects the point on
    the triangle's supporting plane, which a zero-area triangle does not have, so the derivative is NaN,
    chumpy's dogleg falls back to ``scipy.sparse.linalg.lsqr`` and that raises ``ZeroDivisionError`` (the
    recorded outcome of conformance case ``now06_repeated_index_faces``). A degenerate triangle (collapsed to
    a segment or a point) is reported only when it is *strictly* the closest primitive of some scan point;
    otherwise it never enters the Jacobian and the official run scores -- with the distances of the cleaned
    mesh (``now04_degenerate_faces``: 1.3580564732436773 mm median either way). facenb checks this at the two
    alignments where the official Jacobian is certainly evaluated (after the landmark Procrustes, and the final
    one); exact ties between a degenerate and a regular triangle are not refused (they score the same).
    """
    good = SurfaceQuery(vertices, faces[~bad]).query(points).distances
    fb = faces[bad]
    va, vb, vc = vertices[fb[:, 0]], vertices[fb[:, 1]], vertices[fb[:, 2]]
    d_bad = np.minimum.reduce([_point_segments_distance(points, va, vb), _point_segments_distance(points, vb, vc),
                               _point_segments_distance(points, va, vc)])
    closer = d_bad < good - 1e-9 * np.maximum(1.0, good)
    if closer.any():
        raise InputError(
            f"{int(closer.sum())} scan points are closest to degenerate triangles (zero-area; {int(bad.sum())} in "
            f"the prediction) {when}: the official scorer without mesh cleaning crashes here "
            "(ZeroDivisionError in its solver)", where, "keep the default mesh cleaning (drop --no-clean-mesh)")


# -------------------------------------------------------------------------------------------------- scoring
def evaluate(
    scan_vertices: np.ndarray,
    scan_landmarks: np.ndarray,
    pred_vertices: np.ndarray,
    pred_faces: np.ndarray,
    pred_landmarks: np.ndarray,
    *,
    metric: bool = False,
    pred_unit: str | None = None,
    clean_mesh: bool = True,
    solver: str = "cg-legacy",
    check_units: bool = True,
    where: str | None = None,
) -> NowResult:
    """Score one predicted mesh against one NoW scan.

    Parameters
    ----------
    scan_vertices : (n, 3) float64, millimetres
        Ground-truth scan vertices (scan faces play no role in the metric).
    scan_landmarks : (7, 3), millimetres
        The 7 scan landmarks in :data:`LANDMARK_NAMES` order (used in float32, as officially).
    pred_vertices : (m, 3) float64
        Prediction, any frame; units arbitrary (non-metric) or ``pred_unit`` (metric).
    pred_faces : (k, 3) int
    pred_landmarks : (7, 3)
        Predicted landmarks in the prediction's frame; the dtype is kept (float32 reproduces ``.txt`` files).
    metric : bool
        Official metrical protocol (no scale estimate).
    pred_unit : {'m', 'cm', 'mm'} or None
        Unit of the prediction in metric mode. ``None``: must look like millimetres, otherwise an error
        says which unit it looks like (never a silent factor-1000 error).
    clean_mesh : bool
        Remove degenerate triangles first (see module docstring).
    solver : {'cg-legacy', 'exact'}
        Gauss-Newton solver of the refinement (``'cg-legacy'`` = official).
    check_units : bool
        Check that the scan landmarks look like millimetres, and that each mesh's size fits its landmarks and
        the landmarks lie on or near it (``_check_geometry``: scale-free ratios with documented thresholds;
        the scan without faces here, so against its vertices). Degenerate landmark sets (identical, collinear)
        are always refused (:func:`facenb.landmarks.check_spread`).
    where : str, optional
        Name used in error messages (e.g. the prediction's path).

    Returns
    -------
    NowResult
    """
    scan_vertices = np.asarray(scan_vertices, dtype=np.float64)
    pred_vertices = np.asarray(pred_vertices, dtype=np.float64)
    pred_faces = np.asarray(pred_faces, dtype=np.int64).reshape(-1, 3)
    scan_lm = np.asarray(scan_landmarks)
    pred_lm = np.asarray(pred_landmarks)
    for arr, what in ((scan_lm, "scan landmarks"), (pred_lm, "predicted landmarks")):
        if arr.shape != (7, 3):
            raise InputError(f"{what} have shape {arr.shape}, expected (7, 3)", where,
                             "give the 7 NoW landmarks in the official order")
    check_finite(scan_vertices, where, "scan vertices")
    check_finite(pred_vertices, where, "prediction vertices")
    check_finite(np.asarray(pred_lm, dtype=np.float64), where, "predicted landmarks")
    check_spread(scan_lm, where, "scan landmarks")
    check_spread(pred_lm, where, "predicted landmarks")
    if check_units:
        _check_scan_units(scan_lm, where)
        _check_geometry(scan_vertices, None, scan_lm, "scan", where, where)
    if metric:
        pred_unit = _check_metric_units(pred_lm, pred_unit, where)
    if check_units:
        _check_geometry(pred_vertices, pred_faces, pred_lm, "prediction", where, where,
                        UNIT_FACTORS[pred_unit] if metric else None)

    removed = 0
    uncleaned_bad = None
    if len(pred_faces):
        bad = degenerate_faces(pred_vertices, pred_faces)
        if clean_mesh:
            removed = int(bad.sum())
            pred_faces = pred_faces[~bad]
        elif bad.all():
            pred_faces = pred_faces[:0]
        elif bad.any():
            uncleaned_bad = bad  # kept, as officially; see _check_uncleaned
    if len(pred_faces) == 0:
        raise InputError("prediction has no non-degenerate triangles", where, "export the mesh with its faces")

    crop_idx, _, _ = crop_scan(scan_vertices, scan_lm)
    if len(crop_idx) == 0:
        raise InputError("no scan vertex lies inside the NoW face crop", where,
                         "check that the scan landmarks belong to this scan and are in millimetres")
    points = scan_vertices[crop_idx]

    # Step 2: landmark Procrustes (official precision), applied to the float64 vertices.
    sim = procrustes(scan_lm.astype(np.float32), pred_lm)
    if metric:
        factor = UNIT_FACTORS[pred_unit]
        first = Similarity(factor, sim.rotation, sim.translation)  # official: unit factor, Procrustes t
    else:
        first = sim
    v1 = first.scale * (pred_vertices @ first.rotation.T) + first.translation
    if uncleaned_bad is not None:
        _check_uncleaned(points, v1, pred_faces, uncleaned_bad, where, "after the landmark alignment")

    # Step 3: refinement.
    ref = refine_scan_to_mesh(points, v1, pred_faces, scale=not metric, solver=solver)
    t2 = ref.transform
    aligned = t2.scale * (v1 @ t2.rotation.T) + t2.translation
    if uncleaned_bad is not None:
        _check_uncleaned(points, aligned, pred_faces, uncleaned_bad, where, "after the refinement")

    # Step 4: final distances to the aligned surface. The official recomputes them on the transformed mesh; the
    # refinement's residuals at its final transform are the same exact point-to-surface distances (the mesh is
    # queried in its own frame, a similarity preserves the closest point), so no further query is made (they
    # differ from a recomputation by float rounding, ~1e-13 mm).
    distances = ref.distances
    transform = similarity_matrix(t2.scale, t2.rotation, t2.translation) @ first.matrix
    return NowResult(
        distances=distances,
        crop_indices=crop_idx,
        transform=transform,
        aligned_vertices=aligned,
        faces=pred_faces,
        stats=statistics(distances),
        mode="metric" if metric else "nonmetric",
        pred_unit=pred_unit if metric else None,
        iterations=ref.iterations,
        evaluations=ref.evaluations,
        stop_reason=ref.reason,
        removed_faces=removed,
    )


_SCAN_CACHE: dict = {}
_SCAN_CACHE_SIZE = 2


def _scan_entry(scan: str | Path, scan_landmarks: str | Path) -> dict:
    """The scan mesh and its landmarks, read once per process for consecutive images of one subject.

    A NoW subject's scan serves all its images (the image list is grouped by subject), and reading a 120k-vertex
    scan costs more than scoring a small crop. The last :data:`_SCAN_CACHE_SIZE` scans are kept, keyed by the
    files' identity (device, inode, size, modification and change times: a rewritten file is read again); the
    arrays are read-only. ``checked`` records that the scan checks of :func:`evaluate_files` passed.
    """
    key = (file_identity(scan), file_identity(scan_landmarks))
    entry = _SCAN_CACHE.get(key) if None not in key else None
    if entry is not None:
        return entry
    mesh = load_mesh(scan, require_faces=False)
    landmarks = load_now_landmarks(scan_landmarks)
    for arr in (mesh.vertices, mesh.faces, landmarks):
        arr.flags.writeable = False
    entry = {"mesh": mesh, "landmarks": landmarks, "checked": False}
    if None not in key and _SCAN_CACHE_SIZE > 0:
        while len(_SCAN_CACHE) >= _SCAN_CACHE_SIZE:
            _SCAN_CACHE.pop(next(iter(_SCAN_CACHE)))  # the oldest
        _SCAN_CACHE[key] = entry
    return entry


def evaluate_files(
    scan: str | Path,
    scan_landmarks: str | Path,
    pred: str | Path,
    pred_landmarks: str | Path | None,
    pred_topology: str | None = None,
    ply_polygons: str = "first-triangle",
    **kwargs,
) -> NowResult:
    """:func:`evaluate` on files: scan ``.obj``/``.ply`` (mm) + ``.pp``; prediction mesh + landmarks
    (``.txt``, ``.npy``, ``.pp``, ...). Keyword arguments are passed to :func:`evaluate`.

    ``pred_topology`` (a :data:`facenb.landmarks.TOPOLOGIES` name or ``"auto"``) replaces the landmark file: the
    7 landmarks come from the mesh itself (:func:`facenb.landmarks.from_topology`, float64); a landmark file,
    when also given, wins.

    ``ply_polygons`` says how a ``.ply`` prediction's polygons become triangles: ``'first-triangle'`` (default,
    official) keeps the first three indices of each face, as psbody-mesh's PLY reader in the official scorer
    does (a quad ``a b c d`` -> ``(a, b, c)``); ``'fan'`` splits it into ``(a, b, c), (a, c, d)``. OBJ polygons
    are fan-split either way, as psbody's OBJ reader does (:func:`facenb.io.load_mesh`)."""
    scan_entry = _scan_entry(scan, scan_landmarks)
    scan_mesh, scan_lm = scan_entry["mesh"], scan_entry["landmarks"]
    pred_mesh = load_mesh(pred, ply_polygons=ply_polygons)
    if pred_landmarks is not None:
        pred_lm = load_now_landmarks(pred_landmarks)
    elif pred_topology:
        from facenb.landmarks import from_topology

        pred_lm = from_topology(pred_mesh.vertices, pred_topology, pred_mesh.faces, where=str(pred))
    else:
        raise InputError("no predicted landmarks", pred, "give --pred-landmarks FILE or --pred-topology NAME|auto")
    kwargs.setdefault("where", str(pred))
    if not scan_entry["checked"]:
        _check_scan_units(scan_lm, str(scan_landmarks))
        _check_geometry(scan_mesh.vertices, scan_mesh.faces, scan_lm, "scan", str(scan), str(scan_landmarks))
        scan_entry["checked"] = True
    lm_where = str(pred_landmarks if pred_landmarks is not None else pred)
    unit = _check_metric_units(pred_lm, kwargs.get("pred_unit"), str(pred)) if kwargs.get("metric") else None
    _check_geometry(pred_mesh.vertices, pred_mesh.faces, pred_lm, "prediction", str(pred), lm_where,
                    UNIT_FACTORS[unit] if unit else None)
    return evaluate(scan_mesh.vertices, scan_lm, pred_mesh.vertices, pred_mesh.faces, pred_lm,
                    check_units=False, **kwargs)


# ------------------------------------------------------------------------------------------------ datasets
@dataclass(frozen=True)
class NowImage:
    """One line of a NoW image list, resolved to files.

    ``pred_mesh`` / ``pred_landmarks`` are None when missing (``.obj`` preferred over ``.ply``, ``.npy``
    over ``.txt``, as officially). ``pred_stem`` is the expected prediction path without its suffix
    (``<predictions>/<subject>/<challenge>/<image>``).
    """

    line: str
    subject: str
    challenge: str
    image: str
    scan: Path
    scan_landmarks: Path
    pred_mesh: Path | None
    pred_landmarks: Path | None
    pred_stem: Path | None = None

    @property
    def key(self) -> str:
        return f"{self.subject}/{self.challenge}/{self.image}"


def _first(folder: Path, pattern: str) -> Path | None:
    hits = sorted(folder.glob(pattern)) if folder.is_dir() else []
    return hits[0] if hits else None


def list_images(
    dataset_dir: str | Path | None,
    predictions_dir: str | Path,
    *,
    split: str = "val",
    image_list: str | Path | None = None,
    challenge: str | None = None,
    scans_dir: str | Path | None = None,
    scan_landmarks_dir: str | Path | None = None,
    notes: list | None = None,
) -> list[NowImage]:
    """Resolve the official NoW layout.

    ``dataset_dir`` holds ``imagepathsvalidation.txt`` / ``imagepathstest.txt``, ``scans/<subject>/*.obj``
    and ``scans_lmks_onlypp/<subject>/*.pp``; ``predictions_dir`` holds
    ``<subject>/<challenge>/<image>.obj|.ply`` with ``.npy|.txt`` landmarks.

    A line repeating an earlier image (same ``subject/challenge/image``) is listed once; an image with both an
    ``.obj`` and a ``.ply`` (or both ``.npy`` and ``.txt`` landmarks) uses the official choice. Both are said in
    one line each, appended to ``notes`` when given.
    """
    pred_root = Path(predictions_dir)
    if not pred_root.is_dir():
        raise InputError("predictions folder not found", pred_root, "give the folder holding <subject>/<challenge>/")
    root = Path(dataset_dir) if dataset_dir else None
    if image_list is None:
        if root is None:
            raise InputError("no image list", None, "give --dataset NOW_DIR or --image-list FILE")
        if split not in ("val", "test"):
            raise InputError(f"unknown split {split!r}", None, "use --split val or --split test")
        image_list = root / ("imagepathsvalidation.txt" if split == "val" else "imagepathstest.txt")
    image_list = Path(image_list)
    if not image_list.is_file():
        raise InputError("image list not found", image_list, "give the NoW imagepaths*.txt via --image-list")
    scans = Path(scans_dir) if scans_dir else (root / "scans" if root else None)
    lmks = Path(scan_landmarks_dir) if scan_landmarks_dir else (root / "scans_lmks_onlypp" if root else None)
    if scans is None or not scans.is_dir():
        raise InputError("scans folder not found", scans, "give --dataset NOW_DIR (with scans/) or --scans DIR")
    if lmks is None or not lmks.is_dir():
        raise InputError("scan landmark folder not found", lmks,
                         "give --dataset NOW_DIR (with scans_lmks_onlypp/) or --scan-landmarks-dir DIR")
    if challenge not in (None, "", *CHALLENGES):
        raise InputError(f"unknown challenge {challenge!r}", None, "use one of " + ", ".join(CHALLENGES))
    try:
        text = image_list.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("image list is not UTF-8 text", image_list,
                         "give the NoW imagepaths*.txt (one <subject>/<challenge>/<image> per line)") from None
    out: list[NowImage] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split("/")
        if len(parts) < 3:
            raise InputError(f"image list line {line!r} is not <subject>/<challenge>/<image>", image_list,
                             "use the official imagepaths*.txt")
        subject, chal, filename = parts[-3], parts[-2], parts[-1]
        if challenge and chal != challenge:
            continue
        stem = os.path.splitext(filename)[0]
        key = f"{subject}/{chal}/{stem}"
        if key in first_line:
            if notes is not None:
                notes.append(f"{image_list}: line {number} repeats {key} (line {first_line[key]}); scored once")
            continue
        first_line[key] = number
        scan = _first(scans / subject, "*.obj")
        scan_lm = _first(lmks / subject, "*.pp")
        if scan is None or scan_lm is None:
            raise InputError(f"no scan (.obj) or scan landmarks (.pp) for subject {subject}",
                             scans / subject if scan is None else lmks / subject, "complete the NoW dataset folder")
        d = pred_root / subject / chal
        meshes = [d / (stem + e) for e in (".obj", ".ply") if (d / (stem + e)).is_file()]
        lms = [d / (stem + e) for e in (".npy", ".txt") if (d / (stem + e)).is_file()]
        if notes is not None:
            for found, what in ((meshes, "prediction meshes"), (lms, "prediction landmark files")):
                if len(found) > 1:
                    notes.append(f"{key}: both {found[0].name} and {found[1].name} exist; {found[0].name} is used "
                                 f"(the official choice) for the {what}")
        out.append(NowImage(line, subject, chal, stem, scan, scan_lm, meshes[0] if meshes else None,
                            lms[0] if lms else None, d / stem))
    return out


def missing_note(img: NowImage, need_landmarks: bool = True) -> str | None:
    """One line saying which prediction file(s) of ``img`` were expected where, or None if nothing is missing."""
    stem = img.pred_stem if img.pred_stem is not None else Path(img.key)
    mesh_missing = img.pred_mesh is None
    lm_missing = need_landmarks and img.pred_landmarks is None
    if mesh_missing and lm_missing:
        return (f"missing prediction for {img.key}: expected {stem}.obj (or .ply) and its landmarks {stem}.npy "
                f"(or .txt)")
    if mesh_missing:
        extra = f"; the landmarks {img.pred_landmarks.name} are there" if img.pred_landmarks is not None else ""
        return f"missing prediction for {img.key}: expected the mesh {stem}.obj (or .ply){extra}"
    if lm_missing:
        return (f"missing prediction for {img.key}: only the landmark file is missing: expected {stem}.npy "
                f"(or .txt) next to {img.pred_mesh.name}")
    return None


@dataclass(frozen=True)
class ImageOutcome:
    """Per-image outcome in a dataset run: ``status`` is ``ok``, ``cached``, ``missing`` or ``failed``
    (:data:`facenb.runner.STATUSES`); ``error`` is the one-line reason of ``missing``/``failed``."""

    image: NowImage
    status: str
    stats: Stats | None = None
    distances_file: Path | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def scored(self) -> bool:
        return self.status in ("ok", "cached")


@dataclass(frozen=True)
class DatasetResult:
    """Dataset-level NoW result (official aggregation over the concatenated distances).

    ``notes`` holds the image-list remarks of :func:`list_images` (repeated lines, ``.obj`` and ``.ply`` both
    present) and ``warnings`` the runner's (a damaged cache entry recomputed); :attr:`exit_code` is
    :func:`facenb.runner.exit_code` of the outcomes.
    """

    overall: Stats
    per_challenge: dict
    outcomes: tuple
    n_missing: int
    n_failed: int
    out_dir: Path
    settings: dict = field(default_factory=dict)
    notes: tuple = ()
    warnings: tuple = ()

    @property
    def n_scored(self) -> int:
        return sum(o.scored for o in self.outcomes)

    @property
    def n_cached(self) -> int:
        return sum(o.status == "cached" for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        from facenb import runner

        return runner.exit_code([runner.Outcome(o.image.key, o.status) for o in self.outcomes])

    def summary(self) -> dict:
        """Flat JSON-ready summary: overall and per-challenge statistics, counts (NaN -> None)."""
        def num(x):
            return None if isinstance(x, float) and not np.isfinite(x) else x

        out = {"median_mm": num(self.overall.median_mm), "mean_mm": num(self.overall.mean_mm),
               "std_mm": num(self.overall.std_mm), "n_points": self.overall.n_points,
               "n_scored": self.n_scored, "n_cached": self.n_cached, "n_missing": self.n_missing,
               "n_failed": self.n_failed}
        for ch, st in self.per_challenge.items():
            for k in ("median_mm", "mean_mm", "std_mm", "n_points"):
                out[f"{ch}.{k}"] = num(getattr(st, k))
        return out

    def printed(self) -> list[str]:
        """The lines ``facenb now --dataset`` prints: overall statistics, then one line per challenge."""
        o = self.overall
        mode = "metric" if self.settings.get("metric") else "non-metric"
        lines = [f"NoW {mode}: median {o.median_mm:.4f} mm, mean {o.mean_mm:.4f} mm, std {o.std_mm:.4f} mm over "
                 f"{o.n_points} points; {self.n_scored} images scored ({self.n_cached} from cache), "
                 f"{self.n_missing} missing, {self.n_failed} failed -> {self.out_dir}"]
        lines += [f"  {ch:22s} median {s.median_mm:.4f}  mean {s.mean_mm:.4f}  std {s.std_mm:.4f}  "
                  f"({s.n_points} points)" for ch, s in self.per_challenge.items()]
        return lines

    def to_frame(self):
        """One row per image: ``image``, ``challenge``, ``status``, statistics (NaN unless scored), ``error``."""
        import pandas as pd

        rows = []
        for o in self.outcomes:
            st = o.stats if o.stats is not None else Stats(np.nan, np.nan, np.nan, 0)
            rows.append({"image": o.image.key, "challenge": o.image.challenge, "status": o.status,
                         "median_mm": st.median_mm, "mean_mm": st.mean_mm, "std_mm": st.std_mm,
                         "n_points": st.n_points, "error": o.error or ""})
        return pd.DataFrame(rows)

    def distances(self, challenge: str | None = None) -> list[np.ndarray]:
        """Per-image distance vectors (in image-list order), optionally for one challenge."""
        return [np.load(o.distances_file) for o in self.outcomes
                if o.scored and (challenge is None or o.image.challenge == challenge)]


def dataset_items(images: Sequence[NowImage], pred_topology: str | None = None) -> list:
    """One :class:`facenb.runner.Item` per image: key ``subject/challenge/image``, inputs ``(scan, scan .pp,
    prediction mesh, prediction landmarks)`` (the landmarks left out with ``pred_topology``), ``missing`` set
    (:func:`missing_note`) when a prediction file is absent."""
    from facenb.runner import Item

    items = []
    for img in images:
        note = missing_note(img, need_landmarks=not pred_topology)
        if note is not None:
            items.append(Item(img.key, (), {}, note))
            continue
        inputs = (img.scan, img.scan_landmarks, img.pred_mesh)
        if img.pred_landmarks is not None:
            inputs += (img.pred_landmarks,)
        items.append(Item(img.key, inputs))
    return items


def score_image(item, settings: dict) -> dict:
    """``score_one`` of the NoW dataset runner: :func:`evaluate_files` on the item's inputs.

    Returns the payload ``{"distances": (n,) float64 mm, "mean_mm", "median_mm", "std_mm", "n_points",
    "iterations", "stop_reason"}``.
    """
    scan, scan_lm, pred = item.inputs[:3]
    pred_lm = item.inputs[3] if len(item.inputs) > 3 else None
    kw = {k: v for k, v in settings.items() if not k.startswith("_")}
    res = evaluate_files(scan, scan_lm, pred, pred_lm, **kw)
    return {"distances": np.asarray(res.distances, dtype=np.float64), "mean_mm": res.mean_mm,
            "median_mm": res.median_mm, "std_mm": res.std_mm, "n_points": res.n_points,
            "iterations": res.iterations, "stop_reason": res.stop_reason}


def evaluate_dataset(
    dataset_dir: str | Path | None,
    predictions_dir: str | Path,
    out_dir: str | Path,
    *,
    split: str = "val",
    image_list: str | Path | None = None,
    challenge: str | None = None,
    scans_dir: str | Path | None = None,
    scan_landmarks_dir: str | Path | None = None,
    metric: bool = False,
    pred_unit: str | None = None,
    clean_mesh: bool = True,
    solver: str = "cg-legacy",
    jobs: int = 1,
    method: str = "RECON",
    progress: bool = True,
    pred_topology: str | None = None,
    executor=None,
    warn=None,
) -> DatasetResult:
    """Score a NoW predictions folder, official layout, with :func:`facenb.runner.run`, and write the outputs.

    Writes to ``out_dir``: ``per_image/<subject>__<challenge>__<image>.npy`` (distances, float64 mm),
    ``per_image.csv``, ``summary.json`` (strict JSON) and ``summary.csv`` (overall and per challenge), and
    ``<method>_computed_distances[_<challenge>].npy`` (the official ``{'computed_distances': [...],
    'num_missing_files': k}`` pickle read by the official ``cumulative_errors.py``; facenb does not shuffle
    the per-image vectors as ``compute_error.py`` does -- statistics are unaffected). The resume cache is the
    runner's (``cache/``, content-hashed, checksummed entries); ``.facenb.lock`` guards the folder during the run.
    With ``pred_topology`` (name or ``"auto"``) an image needs no landmark file (see :func:`evaluate_files`).
    Images without prediction mesh or landmarks are counted as missing (as officially) and skipped; images
    that cannot be scored (bad files, degenerate landmarks, any exception) are reported as failed and the
    others go on.

    Parameters
    ----------
    jobs : int
        Worker processes (``executor="processes"`` when > 1).
    executor : optional
        A :func:`facenb.runner.run` executor (``"serial"``, ``"processes"``, or an object such as a Dask
        executor); default from ``jobs``.
    warn : callable, optional
        Receives the runner's one-line warnings (default: stderr).

    Raises
    ------
    InputError
        Bad folders or image list; nothing scorable (an empty image list, no image of ``challenge``, no
        prediction found for any image -- e.g. misnamed files or a flat folder); the output folder in use by
        another run.
    """
    from facenb import runner

    notes: list[str] = []
    images = list_images(dataset_dir, predictions_dir, split=split, image_list=image_list, challenge=challenge,
                         scans_dir=scans_dir, scan_landmarks_dir=scan_landmarks_dir, notes=notes)
    where = Path(image_list) if image_list is not None else (
        Path(dataset_dir) / ("imagepathsvalidation.txt" if split == "val" else "imagepathstest.txt"))
    if not images:
        raise InputError("the image list names no image" + (f" of challenge {challenge}" if challenge else ""),
                         where, "give the NoW imagepaths*.txt (one <subject>/<challenge>/<image> per line)")
    items = dataset_items(images, pred_topology)
    if all(it.missing is not None for it in items):
        raise InputError(
            f"no prediction found for any of the {len(items)} images ({items[0].missing})", predictions_dir,
            "save predictions as <subject>/<challenge>/<image>.obj|.ply with <image>.npy|.txt landmarks")
    settings = {"metric": metric, "pred_unit": pred_unit, "clean_mesh": clean_mesh, "solver": solver}
    if pred_topology:
        settings["pred_topology"] = pred_topology
    out = Path(out_dir)
    if executor is None:
        executor = "processes" if jobs > 1 else "serial"
    res = runner.run(items, score_image, settings, out, executor=executor, jobs=jobs, progress=progress,
                     desc="NoW", warn=warn)
    return _write_dataset_outputs(images, res, out, settings, challenge, method, tuple(notes))


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    from facenb.runner import atomic_write

    atomic_write(path, lambda tmp: np.save(tmp, arr), suffix=".npy")


def _write_dataset_outputs(images: Sequence[NowImage], res, out: Path, settings: dict, challenge: str | None,
                           method: str, notes: tuple = ()) -> DatasetResult:
    from facenb.runner import atomic_write, write_summary

    per_image = out / "per_image"
    per_image.mkdir(parents=True, exist_ok=True)
    outcomes, dists = [], []
    for img, o in zip(images, res.outcomes):
        if o.status in ("ok", "cached"):
            v = o.value
            npy = per_image / f"{img.key.replace('/', '__')}.npy"
            # a fresh float64 array (canonical dtype object): the official pickle below is then byte-identical
            # whether the vectors came from this process, a worker or the cache
            d = v["distances"].astype(np.float64, copy=True)
            _atomic_save(npy, d)
            dists.append(d)
            stats = Stats(v["mean_mm"], v["median_mm"], v["std_mm"], v["n_points"])
            outcomes.append(ImageOutcome(img, o.status, stats, npy, None, o.seconds))
        else:
            outcomes.append(ImageOutcome(img, o.status, None, None, o.reason, o.seconds))
    ok = [o for o in outcomes if o.scored]
    overall = statistics(dists)
    per_ch = {}
    for ch in CHALLENGES:
        sel = [d for o, d in zip(ok, dists) if o.image.challenge == ch]
        if sel:
            per_ch[ch] = statistics(sel)
    n_missing = sum(o.status == "missing" for o in outcomes)
    n_failed = sum(o.status == "failed" for o in outcomes)
    summary = {
        "overall": overall._asdict(),
        "per_challenge": {k: v._asdict() for k, v in per_ch.items()},
        "n_images": len(outcomes),
        "n_scored": len(ok),
        "n_missing": n_missing,
        "n_failed": n_failed,
        "missing": [o.image.key for o in outcomes if o.status == "missing"],
        "failed": {o.image.key: o.error for o in outcomes if o.status == "failed"},
        "notes": list(notes),
        "settings": settings,
        "protocol": "NoW (soubhiksanyal/now_evaluation), reproduced by facenb",
    }
    rows = [{"group": "all", "mean_mm": overall.mean_mm, "median_mm": overall.median_mm, "std_mm": overall.std_mm,
             "n_points": overall.n_points, "n_images": len(ok)}]
    rows += [{"group": k, "mean_mm": v.mean_mm, "median_mm": v.median_mm, "std_mm": v.std_mm,
              "n_points": v.n_points, "n_images": sum(o.image.challenge == k for o in ok)} for k, v in per_ch.items()]
    write_summary(out, "summary", summary, rows)

    def per_image_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "subject", "challenge", "status", "mean_mm", "median_mm", "std_mm", "n_points",
                        "error"])
            for o in outcomes:
                s = o.stats
                status = "ok" if o.status == "cached" else o.status  # the file does not depend on the cache
                w.writerow([o.image.line, o.image.subject, o.image.challenge, status,
                            *(s[:4] if s else ("", "", "", "")), o.error or ""])

    atomic_write(out / "per_image.csv", per_image_csv)
    ident = method + ("_metrical" if settings.get("metric") else "")
    fname = f"{ident}_computed_distances{'_' + challenge if challenge else ''}.npy"
    np.save(out / fname, {"computed_distances": dists, "num_missing_files": n_missing}, allow_pickle=True)
    return DatasetResult(overall, per_ch, tuple(outcomes), n_missing, n_failed, out, settings, notes,
                         tuple(res.warnings))
