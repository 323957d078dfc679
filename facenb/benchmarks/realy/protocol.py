"""The REALY protocol for one subject (czh-98/REALY ``main.py``): global alignment, region rigid ICP,
bidirectional non-rigid ICP, region errors, and the official statistics.

Part of :mod:`facenb.benchmarks.realy` (the protocol is described there step by step).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from facenb.align import single_threaded_blas
from facenb.distance import NearestPoints, TrimeshSurface
from facenb.nicp import NICPStage, NonRigidResult, official_keypoint_weight, optimal_step_nicp
from facenb.errors import InputError
from facenb.benchmarks.realy.template import (
    KEYPOINT_REGIONS,
    N_KEYPOINTS,
    REGIONS,
    RealyMesh,
    RealyTemplate,
    barycentric_keypoints,
    read_obj,
)


#: Keypoints used by the region rigid ICP (official ``rigid_regions``).
_RIGID_KEYPOINTS = {"forehead": "forehead", "mouth": "mouth", "nose": "nose_part", "cheek": "cheek"}
#: Keypoints used by the non-rigid step (official ``keypoints_map``; cheek has none).
_NONRIGID_KEYPOINTS = {"forehead": "forehead", "mouth": "mouth", "nose": "nose", "cheek": None}

# official hyper-parameters (utils/eval.py, utils/rICP.py)
_RICP_MAX_ITER = 100
_RICP_TOL = 1e-6
_NICP_EPSILON = 1.0
_NICP_GAMMA = 1.0
_NICP_ALPHA = 50.0
_NICP_ALPHA_KP = 150.0
_NICP_KP_WEIGHT = 50.0
_NICP_MAX_STEP = 10


# =============================================================================================================
# the official rigid fit and the global alignment
# =============================================================================================================
def _official_fit(source: np.ndarray, target: np.ndarray, with_scale: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """``fit_icp_RT(source.T, target.T, with_scale)`` of the official ``utils/util.py``, dtypes included.

    ``source (n, 3)`` float64, ``target (n, 3)`` float32 (C-contiguous, transposed views as in the official call,
    so numpy reduces in the same order). Returns ``(scale, R, t)`` with ``target ≈ s R source + t``.
    """
    s = source.T
    g = target.T
    n = s.shape[1]
    means = np.mean(s, 1)
    meant = np.mean(g, 1)
    s1 = s - np.tile(means, (n, 1)).T
    t1 = g - np.tile(meant, (n, 1)).T
    w = t1.dot(s1.T)
    u, _, vt = np.linalg.svd(w)
    rot = u.dot(vt)  # no reflection guard (official)
    scale = np.sum(np.sum(abs(t1))) / np.sum(np.sum(abs(rot.dot(s1)))) if with_scale else 1.0
    trans = np.mean(g - scale * rot.dot(s), 1)
    return scale, rot, trans


class GlobalAlignment(NamedTuple):
    """Result of :func:`global_alignment`.

    Attributes
    ----------
    vertices : (n, 3) float64
        ``(float32(v · s)) R^T + t``: the prediction in the ground truth's (REALY) space.
    scale : float
    rotation : (3, 3) float64
        May be a reflection (the official fit has no guard).
    translation : (3,) float64
    keypoints : (85, 3) float64
        Keypoints of the aligned prediction.
    """

    vertices: np.ndarray
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    keypoints: np.ndarray


def global_alignment(vertices: np.ndarray, gt_keypoints: np.ndarray, template: RealyTemplate) -> GlobalAlignment:
    """Official gICP: similarity from the prediction's 7 keypoints (36, 39, 42, 45, 33, 48, 54) to the ground truth's.

    Parameters
    ----------
    vertices : (n, 3) float32
        Prediction vertices as read (float32).
    gt_keypoints : (85, 3) float32
        The subject's REALY keypoints (``REALY_HIFI3D_keypoints/<id>.obj``).
    """
    v32 = np.asarray(vertices, dtype=np.float32)
    g32 = np.asarray(gt_keypoints, dtype=np.float32)
    seven = list(KEYPOINT_REGIONS["seven_keypoints"])
    pk = barycentric_keypoints(v32, template)[seven]
    scale, rot, trans = _official_fit(pk, g32[seven], True)
    # numpy 1.x value-based casting: float32 array * float64 scalar stays float32
    aligned = np.matmul(v32 * np.float32(scale), rot.T) + trans
    return GlobalAlignment(aligned, float(scale), rot, trans, barycentric_keypoints(aligned, template))


# closest points as trimesh 3.12 nearest.on_surface returns them: facenb.distance.TrimeshSurface
# =============================================================================================================
# step 3: region rigid ICP
# =============================================================================================================
class RigidICPResult(NamedTuple):
    """Result of :func:`region_rigid_icp`.

    Attributes
    ----------
    vertices : (n, 3) float32
        The prediction after the region's rigid ICP (float32, as the official loop leaves it; the global
        alignment itself, float64, when the loop stops at its first iteration).
    rotation, translation : (3, 3), (3,) float64
        Accumulated transform with ``vertices ≈ global_vertices @ R.T + t`` (up to the float32 rounding).
    iterations : int
        Updates applied (the official ``cur_iter``).
    errors : tuple of float
        The float32 alignment error of every iteration (the stopping criterion's input).
    closest : (k, 3) float64
        Closest points of the scan region's vertices on ``vertices`` (the last iteration's query, which the loop
        makes on the final iterate).
    closest_faces : (k,) int64
        Their triangles.
    """

    vertices: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    iterations: int
    errors: tuple
    closest: np.ndarray | None = None
    closest_faces: np.ndarray | None = None


def region_rigid_icp(global_vertices: np.ndarray, faces: np.ndarray, scan_vertices: np.ndarray,
                     pred_keypoints: np.ndarray, gt_keypoints: np.ndarray, region: str,
                     surface: TrimeshSurface | None = None, max_iteration: int = _RICP_MAX_ITER) -> RigidICPResult:
    """Official ``region_icp_one_region``: rigid ICP of the prediction onto one scan region, keypoint-weighted.

    Parameters
    ----------
    global_vertices : (n, 3) float64
        Globally aligned prediction (:func:`global_alignment`).
    faces : (m, 3) int
        All prediction triangles (the template mask is *not* applied here, as officially).
    scan_vertices : (k, 3) float32
        The region's scan vertices as read (unprocessed).
    pred_keypoints, gt_keypoints : (j, 3)
        The region's rigid keypoints (``nose_part`` for the nose) of the aligned prediction (float64) and of the
        ground truth (float32).
    region : str
        ``cheek`` repeats the keypoints 4 times less.
    surface : TrimeshSurface, optional
        Tree on ``global_vertices``/``faces`` (built if not given; pass it to share it between regions).
    """
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}")
    if surface is None:
        surface = TrimeshSurface(global_vertices, faces)
    scan32 = np.asarray(scan_vertices, dtype=np.float32)
    gk32 = np.asarray(gt_keypoints, dtype=np.float32)
    rate = scan32.shape[0] / gk32.shape[0]
    if region == "cheek":
        rate = rate / 4
    reps = int(rate)
    kp_pred = np.vstack([np.asarray(pred_keypoints, dtype=np.float64)] * reps) if reps else np.zeros((0, 3))
    kp_gt = np.vstack([gk32] * reps) if reps else np.zeros((0, 3), np.float32)
    target = np.vstack((scan32, kp_gt))
    scan64 = scan32.astype(np.float64)
    pv = np.asarray(global_vertices, dtype=np.float64)
    r_cum = np.eye(3)
    t_cum = np.zeros(3)
    err_pre = 0.0
    it = 0
    errors = []
    fid = None
    while True:
        # the previous iteration's triangles as search hints (the answer does not depend on them)
        corr, fid = surface.query(scan64, pv, None if it == 0 else r_cum, None if it == 0 else t_cum, hint=fid)
        src = np.vstack((corr, kp_pred))
        _, rot, trans = _official_fit(src, target, False)
        aligned = (np.matmul(src, rot.T) + trans).astype(np.float32)
        err = np.sum((aligned - target) ** 2, axis=1).mean()
        errors.append(float(err))
        if abs(float(err) - float(err_pre)) < _RICP_TOL or it >= max_iteration:
            break
        it += 1
        err_pre = err
        pv = (np.matmul(pv, rot.T) + trans).astype(np.float32)
        kp_pred = (np.matmul(kp_pred, rot.T) + trans).astype(np.float32)
        r_cum = rot @ r_cum
        t_cum = t_cum @ rot.T + trans
    return RigidICPResult(pv, r_cum, t_cum, it, tuple(errors), corr, fid)


# =============================================================================================================
# step 4: the scan region as trimesh(process=True) holds it; non-rigid ICP; the region error
# =============================================================================================================
def process_scan(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``trimesh.Trimesh(v, f, process=True)`` of trimesh 3.12: drop unreferenced vertices and merge vertices
    equal to 8 decimals (first occurrence kept, order kept).

    Returns ``(vertices (k, 3) float64, faces (m, 3) int64)``.
    """
    keep, faces = _process_scan(vertices, faces)
    return np.asarray(vertices, dtype=np.float64)[keep], faces


def _process_scan(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`process_scan` as ``(kept vertex indices (k,), faces (m, 3) int64)``."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    referenced = np.zeros(len(v), dtype=bool)
    referenced[f] = True
    ref_idx = np.nonzero(referenced)[0]
    keys = np.round(v[ref_idx] * 10 ** 8).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keep = ref_idx[first[order]]
    remap = np.zeros(len(v), dtype=np.int64)
    remap[ref_idx] = rank[inverse]
    return keep, remap[f]


#: REALY's non-rigid ICP schedule with keypoints (``nICP_with_keypoints``): one keypoint-only stage (α = 150,
#: G = diag(2, 2, 3, 2), weight 50), then α = 50 e^{-k/2}, ε = 2^{-k} (k = 0, 1, 2), at most 11 solves per stage.
OFFICIAL_NICP_SCHEDULE_KEYPOINTS: tuple = (
    NICPStage(_NICP_ALPHA_KP, _NICP_EPSILON * 2.0, (2.0, 2.0, 3.0, _NICP_GAMMA * 2), True, _NICP_KP_WEIGHT,
              _NICP_MAX_STEP),
    *(NICPStage(_NICP_ALPHA * np.exp(-0.5 * (k - 1)), _NICP_EPSILON * pow(0.5, k - 1), (1.0, 1.0, 1.0, _NICP_GAMMA),
                False, None, _NICP_MAX_STEP) for k in (1, 2, 3)),
)
#: REALY's schedule without keypoints (``nICP_without_keypoints``, the cheek): α = 50 e^{-k/2}, ε = 2^{-k}, no limit.
OFFICIAL_NICP_SCHEDULE: tuple = tuple(
    NICPStage(_NICP_ALPHA * np.exp(-0.5 * k), _NICP_EPSILON * pow(0.5, k), (1.0, 1.0, 1.0, _NICP_GAMMA))
    for k in (0, 1, 2))


def nonrigid_icp(scan_vertices: np.ndarray, scan_faces: np.ndarray, targets: np.ndarray,
                 keypoint_index: np.ndarray | None = None, keypoint_targets: np.ndarray | None = None
                 ) -> NonRigidResult:
    """Official optimal-step non-rigid ICP (``nICP_with_keypoints`` / ``nICP_without_keypoints`` of ``utils/NICP.py``).

    Parameters
    ----------
    scan_vertices : (n, 3) float64
        Source (the processed scan region).
    scan_faces : (m, 3) int
        Source triangles (their unique edges define the stiffness term).
    targets : (n, 3) float64
        The point set the source is pulled to (nearest neighbours at every step).
    keypoint_index : (k,) int, optional
        Source vertices tied to ``keypoint_targets (k, 3)``; None runs the version without keypoints (cheek).
    """
    if keypoint_index is None:
        return optimal_step_nicp(scan_vertices, scan_faces, targets, OFFICIAL_NICP_SCHEDULE)
    return optimal_step_nicp(scan_vertices, scan_faces, targets, OFFICIAL_NICP_SCHEDULE_KEYPOINTS, keypoint_index,
                             keypoint_targets, official_keypoint_weight)


@dataclass(frozen=True)
class RegionResult:
    """One region of one subject.

    Attributes
    ----------
    region : str
    error : float
        Mean distance in REALY units (the official ``normalized_mean_square_error`` before scaling).
    error_mm : float
        ``error × metrical_scale`` -- the number the official code writes (truncated) to ``REALY_error.txt``.
    distances_mm : (n,) float64
        Per scan vertex: ``|q_i - v_i| × scale``, the official error map's quantity, in mm.
    scan_vertices : (n, 3) float64
        The processed scan region (REALY units).
    scan_faces : (m, 3) int64
    deformed_vertices : (n, 3) float64
        The scan region after the non-rigid ICP.
    aligned_vertices : (p, 3) float64
        The prediction after this region's rigid ICP (float32 values).
    surface_points : (n, 3) float64
        ``q_i``: closest points of the deformed scan on the prediction.
    rigid_iterations : int
    nonrigid_steps : tuple of int
        Linear solves per non-rigid stage.
    """

    region: str
    error: float
    error_mm: float
    distances_mm: np.ndarray
    scan_vertices: np.ndarray
    scan_faces: np.ndarray
    deformed_vertices: np.ndarray
    aligned_vertices: np.ndarray
    surface_points: np.ndarray
    rigid_iterations: int
    nonrigid_steps: tuple


@dataclass(frozen=True)
class SubjectInputs:
    """Everything :func:`evaluate_subject` needs for one subject (see :func:`load_subject`)."""

    subject: str
    subject_id: int
    prediction: RealyMesh
    gt_keypoints: np.ndarray
    regions: Mapping[str, RealyMesh]
    scale: float
    mask: np.ndarray | None = None
    prediction_path: Path | None = None


@dataclass(frozen=True)
class SubjectResult:
    """Result of :func:`evaluate_subject`.

    Attributes
    ----------
    subject : str
        Prediction file stem (the first column of ``REALY_error.txt``).
    subject_id : int
    scale : float
        Millimetres per REALY unit for this subject.
    regions : dict
        :class:`RegionResult` per region, in :data:`REGIONS` order.
    alignment : GlobalAlignment
    faces : (m, 3) int64
        All prediction triangles (rigid ICP surface).
    masked_faces : (k, 3) int64
        Triangles whose three vertices are in the template mask (the error surface).
    seconds : float
    """

    subject: str
    subject_id: int
    scale: float
    regions: Mapping[str, RegionResult]
    alignment: GlobalAlignment
    faces: np.ndarray
    masked_faces: np.ndarray
    seconds: float = 0.0

    @property
    def errors_mm(self) -> dict[str, float]:
        """Untruncated region errors in mm."""
        return {r: self.regions[r].error_mm for r in self.regions}

    @property
    def written(self) -> dict[str, str]:
        """The strings the official code writes (``str(e)[:9]``)."""
        return {r: official_truncate(self.regions[r].error_mm) for r in self.regions}

    def line(self) -> str:
        """This subject's line of ``REALY_error.txt`` (all four regions needed)."""
        return error_line(self.subject, self.errors_mm)

    def summary(self) -> dict:
        """Flat summary: ``subject``, ``scale``, ``<region>_mm`` (untruncated), ``seconds``."""
        out = {"subject": self.subject, "subject_id": self.subject_id, "scale": self.scale}
        out.update({f"{r}_mm": float(e) for r, e in self.errors_mm.items()})
        out["seconds"] = self.seconds
        return out

    def printed(self) -> list[str]:
        """The official output: this subject's ``REALY_error.txt`` line."""
        return [self.line()]

    def to_frame(self):
        """One row per region: ``subject``, ``region``, ``error_mm`` (untruncated), ``written`` (official text),
        ``n_scan_vertices``."""
        import pandas as pd

        return pd.DataFrame([{"subject": self.subject, "region": r, "error_mm": res.error_mm,
                              "written": official_truncate(res.error_mm), "n_scan_vertices": len(res.distances_mm)}
                             for r, res in self.regions.items()])


def official_truncate(value: float) -> str:
    """``str(np.float64(value))[:9]``: the official ``REALY_error.txt`` entry (truncated, not rounded)."""
    return repr(float(value))[:9]


def error_line(subject: str, errors_mm: Mapping[str, float]) -> str:
    """``<subject>\\t\\t<nose>\\t<mouth>\\t<forehead>\\t<cheek>\\n`` with :func:`official_truncate` values."""
    return subject + "\t" + "".join("\t" + official_truncate(errors_mm[r]) for r in REGIONS) + "\n"


def _check_prediction(pred: RealyMesh, template: RealyTemplate, path: Path | None) -> None:
    if len(pred.vertices) != template.n_vertices:
        raise InputError(
            f"prediction has {len(pred.vertices)} vertices but the {template.name} template has "
            f"{template.n_vertices}: saved with vertex merging?", path,
            "export with process=False / keep the template's vertex order and count (e.g. trimesh "
            "Trimesh(..., process=False).export, no 'merge vertices')")


def _read_mask(path: str | Path, n_vertices: int) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError("template mask file not found", p, "give a text file with one 0/1 per template vertex")
    try:
        m = np.loadtxt(p, delimiter=",", dtype=np.int32).reshape(-1)
    except ValueError:
        raise InputError("template mask holds non-integer values", p, "write one 0 or 1 per line") from None
    if len(m) != n_vertices:
        raise InputError(f"template mask has {len(m)} values but the template has {n_vertices} vertices", p,
                         "write one 0/1 per template vertex, in the template's vertex order")
    return m


def _read_scale(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError("metrical scale file not found", p, "give REALY's metrical_scale.txt (one float per line)")
    if not p.read_bytes().strip():  # (numpy would only warn, and the first subject would be blamed)
        raise InputError("metrical scale file is empty", p, "give REALY's metrical_scale.txt (100 lines)")
    try:
        s = np.atleast_1d(np.loadtxt(p, dtype=np.float64))
    except ValueError:
        raise InputError("metrical scale file holds non-numeric values", p, "one float (mm per unit) per line") \
            from None
    if s.ndim != 1 or not np.all(np.isfinite(s)) or (s <= 0).any():
        raise InputError("metrical scales must be positive finite numbers, one per line", p,
                         "use REALY's metrical_scale.txt")
    return s


def _is_prediction_path(x) -> bool:
    return isinstance(x, (str, Path)) and Path(x).suffix.lower() == ".obj"


def load_subject(keypoints_dir: str | Path, regions_dir: str | Path, scale: float | np.ndarray | str | Path,
                 prediction: str | Path, template: RealyTemplate,
                 mask: np.ndarray | str | Path | None = None, *, reader=None) -> SubjectInputs:
    """Read one subject in the official folder layout and validate it (ground truth first, prediction second).

    Parameters
    ----------
    keypoints_dir : path
        ``REALY_HIFI3D_keypoints`` (``<id>.obj``: 85 ``v`` lines).
    regions_dir : path
        ``REALY_scan_region`` (``<id>/{nose,mouth,forehead,cheek}.obj``).
    scale : float, array or path
        Millimetres per unit of this subject, or the whole ``metrical_scale.txt`` (array or file; line ``id``).
    prediction : path
        ``<PRED_DIR>/<id>[_suffix].obj`` -- the subject id is the integer before the first ``_``.
    template : RealyTemplate
    mask : array or path, optional
        Template vertex mask (0/1 per vertex).
    reader : callable ``(path, need_faces=True) -> RealyMesh``, optional
        OBJ reader (default :func:`read_obj`, the official semantics); the folder runner passes one that reuses
        the meshes its pre-flight check has just read.

    The earlier order ``load_subject(prediction, keypoints_dir, regions_dir, scale, template, mask)`` still works:
    a first argument that is an ``.obj`` file while the fourth is not is read as that order.

    Raises
    ------
    InputError
        Missing files (missing subject), vertex count different from the template, NaN/Inf vertices, keypoint
        file without 85 points, subject id outside the scale file.
    """
    if _is_prediction_path(keypoints_dir) and not _is_prediction_path(prediction):
        # the earlier order load_subject(prediction, keypoints_dir, regions_dir, scale, ...)
        keypoints_dir, regions_dir, scale, prediction = regions_dir, scale, prediction, keypoints_dir
    pp = Path(prediction)
    subject = pp.stem
    try:
        sid = int(subject.split("_")[0])
    except ValueError:
        raise InputError("prediction file name does not start with a REALY subject id", pp,
                         "name predictions <id>.obj or <id>_<anything>.obj as the official scorer expects") from None
    if isinstance(scale, (str, Path)):
        scale = _read_scale(scale)
    scales = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    if scales.size == 1 and np.ndim(scale) == 0:
        s = float(scales[0])
    else:
        if not 1 <= sid <= len(scales):
            raise InputError(f"subject id {sid} has no line in the metrical scale file ({len(scales)} lines)", pp,
                             "use REALY's metrical_scale.txt (100 lines) or rename the prediction")
        s = float(scales[sid - 1])
    kp_path = Path(keypoints_dir) / f"{sid}.obj"
    if not kp_path.is_file():
        raise InputError(f"no ground-truth keypoints for subject {sid} (missing subject)", kp_path,
                         "check --keypoints (REALY_HIFI3D_keypoints/) and the prediction's file name")
    read = read_obj if reader is None else reader
    kp = read(kp_path, need_faces=False).vertices
    if kp.shape != (N_KEYPOINTS, 3):
        raise InputError(f"expected {N_KEYPOINTS} keypoints, found {len(kp)}", kp_path,
                         "use REALY_HIFI3D_keypoints/<id>.obj from the REALY release")
    rdir = Path(regions_dir) / str(sid)
    if not rdir.is_dir():
        raise InputError(f"no scan regions for subject {sid} (missing subject)", rdir,
                         "check --regions (REALY_scan_region/) and the prediction's file name")
    regions = {r: read(rdir / f"{r}.obj") for r in REGIONS}
    pred = read(pp)
    _check_prediction(pred, template, pp)
    if mask is not None and not isinstance(mask, np.ndarray):
        mask = _read_mask(mask, template.n_vertices)
    if mask is not None and len(mask) != template.n_vertices:
        raise InputError(f"template mask has {len(mask)} values for {template.n_vertices} vertices", None,
                         "one 0/1 per template vertex")
    return SubjectInputs(subject, sid, pred, kp, regions, s, None if mask is None else np.asarray(mask), pp)


def region_error(alignment: GlobalAlignment, faces: np.ndarray, masked_faces: np.ndarray,
                 surface: TrimeshSurface, masked_surface: TrimeshSurface, scan: RealyMesh,
                 gt_keypoints: np.ndarray, template: RealyTemplate, region: str, scale: float) -> RegionResult:
    """Steps 3-4 for one region: rigid ICP, non-rigid deformation of the scan, error (see the module docstring)."""
    rk = list(KEYPOINT_REGIONS[_RIGID_KEYPOINTS[region]])
    rigid = region_rigid_icp(alignment.vertices, faces, scan.vertices, alignment.keypoints[rk],
                             np.asarray(gt_keypoints, np.float32)[rk], region, surface)
    pv = rigid.vertices
    r_map = None if rigid.iterations == 0 else rigid.rotation
    t_map = None if rigid.iterations == 0 else rigid.translation
    keep, sf = _process_scan(scan.vertices, scan.faces)
    sv = np.asarray(scan.vertices, dtype=np.float64)[keep]
    if masked_surface is surface and rigid.closest is not None and np.asarray(scan.vertices).dtype == np.float32:
        corr, cfid = rigid.closest[keep], rigid.closest_faces[keep]  # the rigid loop's last query: same points,
        # same surface, same iterate
    else:
        corr, cfid = masked_surface.query(sv, pv, r_map, t_map)
    kname = _NONRIGID_KEYPOINTS[region]
    if kname is None:
        nr = nonrigid_icp(sv, sf, corr)
    else:
        kidx = list(KEYPOINT_REGIONS[kname])
        pk = barycentric_keypoints(pv, template)[kidx]
        _, sidx = NearestPoints(sv).query(np.asarray(gt_keypoints, np.float32)[kidx].astype(np.float64))
        nr = nonrigid_icp(sv, sf, corr, np.asarray(sidx, np.int64), pk)
    q, _ = masked_surface.query(nr.vertices, pv, r_map, t_map, hint=cfid)  # deformed towards corr
    dist = np.sqrt(np.sum((q - sv) ** 2, axis=-1))
    err = dist.mean()
    return RegionResult(region, float(err), float(err * scale), dist * scale, sv, sf, nr.vertices,
                        np.asarray(pv, dtype=np.float64), q, rigid.iterations, nr.steps)


#: context of the subject being scored by forked region workers (set by the parent just before forking)
_FORK_CONTEXT: dict = {}
#: regions, largest first (scheduling order for parallel workers)
_REGION_COST_ORDER = ("forehead", "cheek", "nose", "mouth")


def _region_task(region: str) -> RegionResult:
    c = _FORK_CONTEXT
    return region_error(c["alignment"], c["faces"], c["masked"], c["surface"], c["masked_surface"],
                        c["inputs"].regions[region], c["inputs"].gt_keypoints, c["template"], region,
                        c["inputs"].scale)


def evaluate_subject(inputs: SubjectInputs, template: RealyTemplate, regions: Sequence[str] = REGIONS,
                     jobs: int = 1) -> SubjectResult:
    """The official REALY protocol for one subject (all steps of the module docstring).

    Parameters
    ----------
    inputs : SubjectInputs
        From :func:`load_subject`.
    template : RealyTemplate
    regions : sequence of str
        Regions to score (default all four).
    jobs : int
        Worker processes for the regions (they are independent after the global alignment); ``1`` runs them in
        this process. Needs the ``fork`` start method (Linux, macOS with fork); otherwise runs serially.

    Returns
    -------
    SubjectResult
        Region errors in mm (untruncated and as written), aligned / deformed geometry for plots.
    """
    with single_threaded_blas():
        return _evaluate_subject(inputs, template, regions, jobs)


def _evaluate_subject(inputs: SubjectInputs, template: RealyTemplate, regions: Sequence[str],
                      jobs: int) -> SubjectResult:
    t0 = time.perf_counter()
    _check_prediction(inputs.prediction, template, inputs.prediction_path)
    bad = [r for r in regions if r not in REGIONS]
    if bad:
        raise ValueError(f"unknown region(s) {bad}; choose from {REGIONS}")
    pred = inputs.prediction
    faces = pred.faces
    if inputs.mask is not None:
        keep = (np.asarray(inputs.mask)[faces] != 0).all(axis=1)
        masked = faces[keep]
        if len(masked) == 0:
            raise InputError("the template mask removes every triangle", None, "check the template mask")
    else:
        masked = faces
    alignment = global_alignment(pred.vertices, inputs.gt_keypoints, template)
    surface = TrimeshSurface(alignment.vertices, faces)
    masked_surface = surface if inputs.mask is None else TrimeshSurface(alignment.vertices, masked)
    todo = [r for r in _REGION_COST_ORDER if r in regions]
    out: dict[str, RegionResult] = {}
    import multiprocessing as mp

    if jobs > 1 and len(todo) > 1 and "fork" in mp.get_all_start_methods():
        _FORK_CONTEXT.update(alignment=alignment, faces=faces, masked=masked, surface=surface,
                             masked_surface=masked_surface, inputs=inputs, template=template)
        try:
            with mp.get_context("fork").Pool(min(jobs, len(todo))) as pool:
                for res in pool.imap_unordered(_region_task, todo, chunksize=1):
                    out[res.region] = res
        finally:
            _FORK_CONTEXT.clear()
    else:
        for r in todo:
            out[r] = region_error(alignment, faces, masked, surface, masked_surface, inputs.regions[r],
                                  inputs.gt_keypoints, template, r, inputs.scale)
    ordered = {r: out[r] for r in REGIONS if r in out}
    return SubjectResult(inputs.subject, inputs.subject_id, inputs.scale, ordered, alignment, faces, masked,
                         time.perf_counter() - t0)


# =============================================================================================================
# step 5: aggregation as the official get_statistic_metric computes it
# =============================================================================================================
class RegionStatistics(NamedTuple):
    """Official per-region statistics over subjects (from the *written*, truncated values).

    Attributes
    ----------
    mean, median : float
    std : float
        ``x.std() · sqrt(n) / sqrt(n - 1)`` (ddof = 1); NaN for a single subject, as officially.
    n : int
    """

    mean: float
    median: float
    std: float
    n: int


def official_statistics(errors: Mapping[str, Sequence[float]]) -> dict[str, RegionStatistics]:
    """``get_statistic_metric``: average, median, standard deviation (ddof = 1) per region; ``all`` = mean of the
    four region averages (its median/std are NaN: the official code prints only the average).

    Parameters
    ----------
    errors : mapping region -> sequence of per-subject errors (mm)
        Pass the values as written to ``REALY_error.txt`` (truncated; :func:`parse_error_file`) to get the
        official numbers.
    """
    out = {}
    for r in REGIONS:
        x = np.asarray(errors[r], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            std = x.std() * np.sqrt(x.shape[0]) / np.sqrt(x.shape[0] - 1) if len(x) else np.nan
        out[r] = RegionStatistics(float(x.mean()) if len(x) else np.nan,
                                  float(np.median(x)) if len(x) else np.nan, float(std), int(len(x)))
    out["all"] = RegionStatistics(float(sum(out[r].mean for r in REGIONS) / 4.0), np.nan, np.nan,
                                  min(out[r].n for r in REGIONS))
    return out


def format_statistics(stats: Mapping[str, RegionStatistics]) -> list[str]:
    """The lines the official ``get_statistic_metric`` prints (``%.3f``)."""
    lines = [f"average nmse@{r} = {stats[r].mean:.3f}" for r in REGIONS]
    lines += [f"median nmse@{r} = {stats[r].median:.3f}" for r in REGIONS]
    lines += [f"standard deviation nmse@{r} = {stats[r].std:.3f}" for r in REGIONS]
    lines.append(f"average nmse@all = {stats['all'].mean:.3f}")
    return lines


def load_case_subject(folder: str | Path, subject: str, template: RealyTemplate, mask=None) -> SubjectInputs:
    """:func:`load_subject` for subject ``subject`` of a folder in the official layout (``REALY_HIFI3D_keypoints``,
    ``REALY_scan_region``, ``metrical_scale.txt``) that also holds its prediction as ``prediction/<subject>.obj``
    (facenb's conformance cases)."""
    folder = Path(folder)
    return load_subject(folder / "REALY_HIFI3D_keypoints", folder / "REALY_scan_region", folder / "metrical_scale.txt",
                        folder / "prediction" / f"{subject}.obj", template, mask)


def load_conformance_subject(case_dir: str | Path, templates_dir: str | Path, subject: str | int | None = None):
    """One subject of a conformance case (a REALY folder with the official outputs in ``expected.json``).

    Returns
    -------
    expected : dict
        The case's ``expected.json``.
    template : RealyTemplate
        Its topology's template (``expected["template_topology"]``) from ``templates_dir`` (dataset
        ``realy_templates``).
    mask : Path or None
        ``template_mask.txt`` when the case uses one.
    inputs : SubjectInputs
        ``subject`` (default: the case's first), read and validated.
    """
    import json

    from facenb.benchmarks.realy.template import load_template

    case_dir = Path(case_dir)
    expected = json.loads((case_dir / "expected.json").read_text())
    template = load_template(expected["template_topology"], data_dir=templates_dir)
    subjects = expected["subjects"]
    s = subjects[0] if subject is None else next((x for x in subjects if x["subject"] == str(subject)), None)
    if s is None:
        raise InputError(f"no subject {subject} in this case ({', '.join(x['subject'] for x in subjects)})",
                         case_dir / "expected.json", "pick one of the case's subjects")
    mask = case_dir / "template_mask.txt" if expected.get("template_mask") else None
    return expected, template, mask, load_case_subject(case_dir, s["subject"], template, mask)


def conformance_rows(case_dir: str | Path, expected: Mapping, template: RealyTemplate, mask=None, *,
                     done: SubjectResult | None = None, jobs: int = 1) -> list[dict]:
    """facenb against the official outputs of a conformance case, one row per subject and region.

    ``case_dir`` holds a REALY folder (``prediction/<id>.obj``, ``REALY_HIFI3D_keypoints``, ``REALY_scan_region``,
    ``metrical_scale.txt``); ``expected`` is its ``expected.json`` (``subjects``: ``subject`` and the official
    ``written`` value per region, as ``REALY_error.txt`` holds it: truncated to 7 decimals, so the official value
    lies in ``[w, w + 1e-7)``). ``done``: an already scored subject of the case (not scored again).

    Returns
    -------
    list of dict
        ``subject``, ``region``, ``facenb (mm)``, ``official written``, ``facenb written`` and ``distance to
        official (mm)`` = the distance from facenb's value to ``[w, w + 1e-7)``.
    """
    rows = []
    for s in expected["subjects"]:
        if done is not None and s["subject"] == done.subject:
            res = done
        else:
            res = evaluate_subject(load_case_subject(case_dir, s["subject"], template, mask), template, jobs=jobs)
        for r in REGIONS:
            w, x = float(s["written"][r]), res.errors_mm[r]
            rows.append({"subject": s["subject"], "region": r, "facenb (mm)": x, "official written": s["written"][r],
                         "facenb written": res.written[r], "distance to official (mm)": max(0.0, w - x, x - w - 1e-7)})
    return rows


def conformance_summary(rows: Sequence[Mapping]) -> list[str]:
    """The verdict on :func:`conformance_rows`: the largest distance to the official values, how many written
    strings are identical, and the official statistics printout of facenb's written values."""
    dist = max(r["distance to official (mm)"] for r in rows)
    same = sum(r["facenb written"] == r["official written"] for r in rows)
    written = {g: [float(r["facenb written"]) for r in rows if r["region"] == g] for g in REGIONS}
    return [f"max distance to the official values: {dist:.1e} mm (target 1e-3 mm); written strings identical: "
            f"{same} of {len(rows)}"] + format_statistics(official_statistics(written))


def reproduced_vs_reported(conformance: Sequence[Mapping], case: str | None, method: str, view: str,
                           folder=None, reported=None) -> list[dict]:
    """Rows ``what, reproduced, reported, source, provenance`` (the last table of ``notebooks/11_realy.ipynb``).

    ``conformance``: :func:`conformance_rows` of the case ``case`` (consistency-checked against the official
    written values); then ``method``'s published REALY ``view`` means (``reported``, default
    :func:`facenb.results.load_reported`), beside the means of ``folder`` (a :func:`evaluate_folder` result on a
    REALY release: recomputed from raw data) when given, else NaN (quoted only).
    """
    rows = [{"what": f"conformance {case}, subject {c['subject']}, {c['region']}", "reproduced": c["facenb (mm)"],
             "reported": float(c["official written"]), "source": "official main.py output (expected.json, truncated)",
             "provenance": "consistency-checked"} for c in conformance]
    if reported is None:
        from facenb.results import load_reported

        reported = load_reported()
    rep = reported[(reported.benchmark == "realy") & (reported.method == method) & (reported.split == view)
                   & (reported.statistic == "mean")]
    for _, r in rep.iterrows():
        got = float("nan")
        if folder is not None and r["region"] in folder.statistics:
            got = folder.statistics[r["region"]].mean
        rows.append({"what": f"{method}, REALY {view}, {r['region']} (mean over subjects)", "reproduced": got,
                     "reported": r["value"], "source": r["source_ref"],
                     "provenance": "recomputed from raw data" if folder is not None else
                     "quoted with source (not recomputed: no realy_dir)"})
    return rows


def parse_error_file(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a ``REALY_error.txt`` (official format) into ``{subject: {region: mm}}``."""
    p = Path(path)
    out: dict[str, dict[str, float]] = {}
    for i, line in enumerate(p.read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 6:
            raise InputError(f"line {i + 1} is not '<subject>\\t\\t<nose>\\t<mouth>\\t<forehead>\\t<cheek>'", p,
                             "give a REALY_error.txt written by the official scorer or facenb")
        out[parts[0]] = {r: float(v) for r, v in zip(REGIONS, parts[2:])}
    return out


def alignment_distances(result: SubjectResult, region: str) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from a region's processed scan vertices to the (masked) prediction surface after the global
    alignment and after the region's rigid ICP -- the "before / after" of step 3 (for plots and tables).

    Returns
    -------
    before, after : (n,) float64
    """
    reg = result.regions[region]
    surf = TrimeshSurface(result.alignment.vertices, result.masked_faces)
    q0, _ = surf.query(reg.scan_vertices)
    q1, _ = TrimeshSurface(reg.aligned_vertices, result.masked_faces).query(reg.scan_vertices)
    return (np.linalg.norm(q0 - reg.scan_vertices, axis=1) * result.scale,
            np.linalg.norm(q1 - reg.scan_vertices, axis=1) * result.scale)
