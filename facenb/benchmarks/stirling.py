"""Stirling/ESRC (FG2018 challenge): ground-truth scan -> aligned prediction distances over the inner face.

The FG2018 dense 3D face reconstruction challenge (Feng et al., "Evaluation of Dense 3D Reconstruction from 2D Face
Images in the Wild", FG 2018, arXiv:1803.05536) scores a predicted mesh against a Stirling/ESRC 3dMD scan with the
organisers' script ``patrikhuber/fg2018-competition@3bbbdefb`` ``compute_vertices_to_mesh_distances.py`` (MIT).
This module re-implements that script (read, not copied) and adds the per-image statistics and the dataset-level
aggregation the published tables use.

Protocol, one scan and one prediction (official, reproduced by default)
-----------------------------------------------------------------------
1. **Ground-truth landmarks** (:func:`read_lnd`): the official ``.lnd`` files hold 7 lines ``id x y z`` (mm) in
   the order of :data:`LANDMARK_NAMES` (right eye outer, right eye inner, left eye inner, left eye outer, nose
   bottom, right and left mouth corner; "right" = the subject's right). The official ``read_groundtruth`` reads them
   with ``csv.reader(delimiter=' ')`` on a file opened with ``newline=''``, skips empty rows (so a trailing blank
   line and CRLF line ends are harmless), ignores the id column and any token after the fourth (line order
   defines the landmark) and requires exactly 7 rows; values are Python floats (float64). Since commit ``6f22d9e``
   the id column is skipped (before it, columns 0-2 were read).
2. **Similarity Procrustes** of the 7 predicted landmarks ``Y`` onto the 7 ground-truth landmarks ``X``: the
   MATLAB ``procrustes`` port (:func:`facenb.align.procrustes`, float64) with ``scaling=True`` and
   ``reflection='best'``. The official ``if reflection is not 'best'`` compares strings by identity; with the
   interned literal passed by the official entry point the block is skipped, so the plain SVD solution
   ``T = V U^T`` is used *without determinant correction*: a reflection is accepted whenever it fits better (a
   mirrored prediction scores like the unmirrored one).
3. **Alignment**: every predicted vertex (row) ``v`` becomes ``b (v T) + c``; no ICP, no refinement, so landmark
   errors of the prediction enter the distances.
4. **Face mask** on the scan, from the ground-truth landmarks ``L0..L6`` only:
   ``nose_bridge = (L1 + L2) / 2``, ``centre = L4 + 0.3 (nose_bridge - L4)``,
   ``radius = 1.2 (|L0 - L3| + |nose_bridge - L4|) / 2``; a scan vertex is measured iff
   ``|v - centre| <= radius`` (the rule since commit ``d1645f4`` "Fix bug in radius computation", 7 Mar 2018;
   before it the outer-eye term was ``|L0 + L3|`` and the factor 1.5). Every ``v`` line of the scan is a
   candidate, scan faces play no role: a point-cloud scan is valid. The prediction is never cropped.
5. **Distances** ``d_i = sqrt(min_{q in S} |p_i - q|^2)`` from each masked scan vertex ``p_i`` to the aligned
   predicted triangle surface ``S`` (point-to-triangle; the official PyMesh ``distance_to_mesh`` with libigl's AABB
   tree; degenerate triangles count as the segment or point they are; unreferenced vertices are ignored). One
   direction only, ground truth -> prediction; no mesh cleaning.
6. **Output file** (:func:`format_distances`): one line ``<scan vertex index> <distance>`` per masked vertex in
   ascending index order, written by ``csv.writer(delimiter=' ')``: ``repr`` floats (shortest round trip, not
   the 6 decimals the official README shows) and CRLF line ends.

The official script computes no per-image number. Per image facenb reports the mean, median, population std
(``ddof=0``), max of ``d`` and the 3D root-mean-square error ``rmse = sqrt(mean(d^2))`` -- the "3DRMSE" the
FG2018 README says the organisers computed from these files.

Published Stirling tables: which statistic (what could be checked here)
--------------------------------------------------------------------------
* The official README (``3bbbdefb``): the per-vertex files "are used to compute the 3DRMSE ... by the organisers";
  the aggregation is not in the repository. The FG2018 paper (Feng et al. 2018) names its metric 3D-RMSE
  (HQ: 656 images, LQ: 1344).
* The Stirling numbers quoted for PRNet -- HQ 2.06 mm, LQ 2.38 mm, labelled "Mean Reconstruction Error (mm)" on the
  Papers-with-Code style seed page (``seeds/prnet.yaml``) -- are a **mean** distance. As far as we know the PRNet
  paper reports no Stirling number and the values come from the comparison table on the "Feng et al." benchmark in
  the RingNet paper (Sanyal et al., CVPR 2019), printed as mean and std per subset; neither paper could be read
  here, so this attribution and the table's exact aggregation are not verified.
* VGGHeads (Kupyn et al., arXiv:2407.18245, supplementary Tab. 12 "Feng et al.", read in a text copy) prints per
  subset **median, mean and std** (e.g. RingNet HQ 1.698 / 2.161 / 1.832 mm) next to one 3DRMSE column: median below
  mean by ~0.45 mm and std ~1.8 mm are statistics of the *pooled per-vertex distances* (as NoW's
  ``compute_error.py`` pools them), not of per-image means (whose spread is a few tenths of a mm).
* mmhuman3d (``open-mmlab/mmhuman3d@8c95747`` ``mmhuman3d/core/evaluation/eval_utils.py``
  ``fg_vertices_to_mesh_distance`` and ``human_image_smplx_dataset.py`` ``_report_3d_rmse``), a third-party
  re-implementation, returns per image the *mean* distance and averages it over images, under the name "3DRMSE"
  (ExPose face on Stirling HQ: 2.40).

facenb therefore reports, per subset, all of them, and its headline number (``value_mm``) is chosen with two
parameters of :func:`evaluate_dataset` (CLI ``--statistic`` / ``--aggregate``): ``statistic`` in ``mean``
(default: the published tables' "mean error"), ``median``, ``rmse`` (FG2018's 3D-RMSE); ``aggregate`` in
``pooled`` (default: over all masked vertices of all images of the subset, NoW-style, as the median/mean/std
tables imply) or ``per-image`` (mean over images of the per-image statistic, as mmhuman3d does; its std over
images is reported). Which aggregation the RingNet table used is not verifiable from the sources reachable here;
the two differ only by the weighting of images by their number of masked vertices (for the mean).
* MICA (Zielonka et al., ECCV 2022): its test code (``Tester.stirling`` of ``Zielonka/MICA``, read in a stored
  public copy; the repository itself could not be fetched here) reads ``Real_images__Subset_2D_FG2018/{HQ,LQ}/*.jpg``
  and writes one prediction per image group, ``predicted_meshes/{HQ,LQ}/<subject>/<name>.ply`` (mm) with
  ``<name>.npy`` (7 landmarks, mm); the scoring script is not in that code, so MICA's aggregation is unknown here.

Release layout facenb expects (dataset mode, :func:`list_images`)
-----------------------------------------------------------------
The licensed Stirling/ESRC FG2018 release, as MICA's and mmhuman3d's loaders read it::

    DATASET/
      Real_images__Subset_2D_FG2018/  (or Subset_2D_FG2018/)
        HQ/<image>.jpg                 656 high-quality images
        LQ/<image>.jpg                 1344 low-quality images
      F_3D_N/<subject>_N.obj          female neutral 3dMD scans (mm), subject = image name up to the first '_'
      M_3D_N/<subject>_N.obj          male scans (file names in upper or lower case, matched case-insensitively)
      annotations/F_3D_N/<subject>_N.lnd, annotations/M_3D_N/<subject>_N.lnd
                                       the 7 ground-truth landmarks (the 147 public files of the official repo)

Predictions: ``PRED/<HQ|LQ>/<image stem>.obj|.ply`` (or directly ``PRED/<image stem>.obj``) with the 7
landmarks beside it as ``<image stem>.txt`` (7 lines ``x y z``) or ``.npy`` ``(7, 3)``, in the prediction's frame
and unit (any unit: the Procrustes scale absorbs it), or ``pred_topology=NAME|auto`` to take them from a known
mesh topology (:func:`facenb.landmarks.from_topology`).

Deliberate differences (documented, each an option where a choice exists)
-------------------------------------------------------------------------
* ``.lnd`` lines with a leading space: the official reader silently shifts the columns (the id is read as x);
  :func:`read_lnd` raises :class:`~facenb.errors.InputError` instead (never a silently wrong number). So do NaN/Inf
  values and degenerate landmark sets (coincident or collinear: no Procrustes solution).
* A mask holding one vertex crashes the official script (``TypeError: iteration over a 0-d array``); facenb scores
  it. An empty mask (official: an empty file) is an :class:`~facenb.errors.InputError` (landmarks of another scan
  or unit).
* Predicted landmarks are used in float64 whatever their file dtype (the official ``run_example.py`` passes Python
  floats; a float32 ``.npy`` handed to the official function unconverted would run its Procrustes in float32).
* ``StirlingOptions(reflection="forbid")`` forces a proper rotation (the behaviour the official code intended
  to make optional); ``mask_rule="pre-d1645f4"`` reproduces copies of the script from before 7 Mar 2018.

Exactness: on the 10 conformance cases (official script, real PyMesh) facenb reproduces the masked vertex set
exactly and every distance within 1e-13 mm. With the official transform the output file is byte-identical; the
Procrustes SVD of this machine's LAPACK differs from the reference machine's in the last bit (~1e-16 relative),
so some ``repr`` strings differ in their last digits.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, Sequence

import numpy as np

from facenb.align import procrustes, similarity_matrix
from facenb.errors import InputError
from facenb.io import check_finite, load_landmarks, load_mesh

__all__ = [
    "LANDMARK_NAMES",
    "SUBSETS",
    "STATISTICS",
    "StirlingOptions",
    "OFFICIAL",
    "Stats",
    "StirlingResult",
    "read_lnd",
    "face_mask",
    "align",
    "evaluate",
    "evaluate_files",
    "score_aligned",
    "format_distances",
    "write_distances",
    "read_distances",
    "statistics",
]

OFFICIAL_REPO = "patrikhuber/fg2018-competition@3bbbdefb53001cd3736137af7c4f39686fb691b5"
LANDMARK_NAMES = (
    "right_eye_outer",
    "right_eye_inner",
    "left_eye_inner",
    "left_eye_outer",
    "nose_bottom",
    "right_mouth_corner",
    "left_mouth_corner",
)
SUBSETS = ("HQ", "LQ")
#: statistics the dataset headline can use, and how they are aggregated over a subset's images
STATISTICS = ("mean", "median", "rmse")
AGGREGATES = ("pooled", "per-image")
IMAGE_DIRS = ("Real_images__Subset_2D_FG2018", "Subset_2D_FG2018")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_MESH_SUFFIXES = (".obj", ".ply")
_LMK_SUFFIXES = (".txt", ".npy")


# ============================================================================================================
# options and results
# ============================================================================================================
@dataclass(frozen=True)
class StirlingOptions:
    """Choices of the protocol; :data:`OFFICIAL` reproduces ``fg2018-competition@3bbbdefb``.

    Attributes
    ----------
    reflection : {"best", "forbid"}
        ``"best"`` (official): the Procrustes may use a reflection when it fits better. ``"forbid"``: a proper
        rotation (``det R = +1``) is forced.
    scaling : bool
        Estimate the Procrustes scale (official ``True``; the ground truth is in mm, predictions in any unit).
    mask_rule : {"official", "pre-d1645f4"}
        ``"official"``: radius ``1.2 (|L0 - L3| + |nose_bridge - L4|) / 2``. ``"pre-d1645f4"``: the rule of the
        script before 7 Mar 2018, ``1.5 (|L0 + L3| + |nose_bridge - L4|) / 2`` (frame-dependent).
    """

    reflection: Literal["best", "forbid"] = "best"
    scaling: bool = True
    mask_rule: Literal["official", "pre-d1645f4"] = "official"

    def __post_init__(self):
        if self.reflection not in ("best", "forbid"):
            raise InputError(f"reflection must be 'best' or 'forbid', got {self.reflection!r}", None,
                             "use 'best' (official) or 'forbid'")
        if self.mask_rule not in ("official", "pre-d1645f4"):
            raise InputError(f"mask_rule must be 'official' or 'pre-d1645f4', got {self.mask_rule!r}", None,
                             "use 'official'")
        object.__setattr__(self, "scaling", bool(self.scaling))

    @property
    def is_official(self) -> bool:
        return self == OFFICIAL


#: the official script's behaviour
OFFICIAL = StirlingOptions()


class Stats(NamedTuple):
    """Per-image summary of distances (mm): mean, median, population std (ddof 0), max, min, 3D-RMSE, count."""

    mean_mm: float
    median_mm: float
    std_mm: float
    max_mm: float
    min_mm: float
    rmse_mm: float
    n_points: int


def statistics(distances: np.ndarray) -> Stats:
    """:class:`Stats` of a distance vector (NaN for an empty one); ``rmse = sqrt(mean(d^2))``."""
    d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size == 0:
        nan = float("nan")
        return Stats(nan, nan, nan, nan, nan, nan, 0)
    return Stats(float(np.mean(d)), float(np.median(d)), float(np.std(d)), float(np.max(d)), float(np.min(d)),
                 float(np.sqrt(np.mean(d * d))), int(d.size))


@dataclass(frozen=True)
class StirlingResult:
    """One prediction scored against one scan.

    Attributes
    ----------
    distances : (n_points,) float64, mm
        Distance of each masked scan vertex to the aligned predicted surface, ascending vertex index.
    indices : (n_points,) int64
        The masked scan vertices (0-based indices of the scan's ``v`` lines), ascending.
    transform : (4, 4) float64
        Prediction frame -> scan frame (``x' = s R x + t`` on column vectors; ``R`` = official ``rotation.T``).
    scale : float
        Procrustes scale ``b``.
    rotation : (3, 3) float64
        Official row-vector rotation ``T``: aligned row ``= scale * (v @ rotation) + translation``.
    translation : (3,) float64, mm
    aligned_vertices : (m, 3) float64, mm
    faces : (k, 3) int64
    centre : (3,) float64, mm
        Mask centre.
    radius : float, mm
        Mask radius.
    n_scan_vertices : int
    stats : Stats
    options : StirlingOptions
    """

    distances: np.ndarray
    indices: np.ndarray
    transform: np.ndarray
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    aligned_vertices: np.ndarray
    faces: np.ndarray
    centre: np.ndarray
    radius: float
    n_scan_vertices: int
    stats: Stats
    options: StirlingOptions = field(default=OFFICIAL)

    mean_mm = property(lambda self: self.stats.mean_mm)
    median_mm = property(lambda self: self.stats.median_mm)
    std_mm = property(lambda self: self.stats.std_mm)
    max_mm = property(lambda self: self.stats.max_mm)
    min_mm = property(lambda self: self.stats.min_mm)
    rmse_mm = property(lambda self: self.stats.rmse_mm)
    n_points = property(lambda self: self.stats.n_points)

    @property
    def reflection_used(self) -> bool:
        """True when the Procrustes rotation is a reflection (``det = -1``)."""
        return bool(np.linalg.det(self.rotation) < 0)

    def summary(self) -> dict:
        """Flat JSON-ready dict (no per-vertex arrays)."""
        return {
            "mean_mm": self.mean_mm,
            "median_mm": self.median_mm,
            "std_mm": self.std_mm,
            "rmse_mm": self.rmse_mm,
            "max_mm": self.max_mm,
            "min_mm": self.min_mm,
            "n_points": self.n_points,
            "n_scan_vertices": self.n_scan_vertices,
            "scale": self.scale,
            "reflection_used": self.reflection_used,
            "mask_radius_mm": self.radius,
            "mask_centre_mm": [float(x) for x in self.centre],
            "transform": self.transform.tolist(),
            "protocol": OFFICIAL_REPO if self.options.is_official else f"{OFFICIAL_REPO} with {self.options}",
        }

    def printed(self) -> list[str]:
        """Report lines: the official script prints only ``Computed and saved distances.`` (run_example.py);
        the statistics line is facenb's."""
        return [
            "Computed and saved distances.",
            f"Stirling/FG2018: {self.n_points} scan vertices in the face mask; mean {self.mean_mm:.6f} mm, "
            f"median {self.median_mm:.6f} mm, std {self.std_mm:.6f} mm, 3D-RMSE {self.rmse_mm:.6f} mm, "
            f"max {self.max_mm:.6f} mm",
        ]

    def to_frame(self):
        """Per-vertex table: ``vertex_idx``, ``distance_mm`` (the official file's content)."""
        import pandas as pd

        return pd.DataFrame({"vertex_idx": self.indices, "distance_mm": self.distances})

    def format_distances(self) -> str:
        """The official output file's text (see :func:`format_distances`)."""
        return format_distances(self.indices, self.distances)

    def write_distances(self, path: str | Path) -> None:
        """Write the official output file (``<scan>_distances.txt``), byte for byte as the official script."""
        write_distances(path, self.indices, self.distances)


# ============================================================================================================
# pieces
# ============================================================================================================
def read_lnd(path: str | Path) -> np.ndarray:
    """Read a FG2018 ``.lnd`` file as the official ``read_groundtruth`` does.

    Parameters
    ----------
    path : str or Path
        7 non-empty lines ``id x y z`` separated by single spaces (mm); LF or CRLF; empty lines skipped; the id
        column and tokens after the fourth are ignored; any Python float syntax.

    Returns
    -------
    (7, 3) float64, mm
        In line order (:data:`LANDMARK_NAMES`).

    Raises
    ------
    InputError
        Missing file; not 7 landmark lines; a line with fewer than 4 fields (a tab separator), an empty field
        (a double space) or a non-number; a leading space (the official reader would silently read the id as x);
        NaN or Inf.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("landmark file not found" if not p.exists() else "expected a .lnd file, got a folder",
                         p, "give the scan's .lnd annotation")
    fix = "write 7 lines 'id x y z' separated by single spaces, as the official .lnd files"
    rows: list[list[float]] = []
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            for lineno, row in enumerate(csv.reader(fh, delimiter=" "), 1):
                if not row:
                    continue
                if row[0] == "" and len(row) > 1:
                    raise InputError(f"line {lineno} starts with a space: the official reader would read the id "
                                     "as x (a silently wrong landmark)", p, fix)
                if len(row) < 4:
                    raise InputError(f"line {lineno} has {len(row)} space-separated field(s), expected 'id x y z'",
                                     p, fix)
                try:
                    rows.append([float(row[1]), float(row[2]), float(row[3])])
                except ValueError:
                    raise InputError(f"line {lineno}: {' '.join(row[1:4])!r} is not three numbers (an empty field "
                                     "means a double space)", p, fix) from None
    except UnicodeDecodeError:
        raise InputError("not a text file", p, fix) from None
    except csv.Error as exc:
        raise InputError(f"cannot parse ({exc})", p, fix) from None
    if len(rows) != 7:
        raise InputError(f"expected 7 landmarks, found {len(rows)}", p, fix)
    arr = np.array(rows, dtype=np.float64)
    check_finite(arr, p, "landmarks")
    return arr


def _check_landmark_set(lm: np.ndarray, what: str, where: str | None) -> None:
    if lm.shape != (7, 3):
        raise InputError(f"{what} have shape {lm.shape}, expected (7, 3)", where,
                         "give the 7 FG2018 landmarks (eye corners, nose bottom, mouth corners) in order")
    check_finite(lm, where, what)
    c = lm - lm.mean(0)
    sv = np.linalg.svd(c, compute_uv=False)
    if not sv[0] > 0 or sv[1] <= 1e-9 * sv[0]:
        raise InputError(f"{what} are degenerate ({'coincident' if not sv[0] > 0 else 'collinear'}): no "
                         "similarity transform is defined", where, "give 7 distinct, non-collinear landmarks")


def face_mask(scan_vertices: np.ndarray, gt_landmarks: np.ndarray, options: StirlingOptions = OFFICIAL
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """The FG2018 face mask: scan vertices in the ball ``|v - centre| <= radius`` (see the module docstring).

    Parameters
    ----------
    scan_vertices : (n, 3) float64, mm
    gt_landmarks : (7, 3) float64, mm
    options : StirlingOptions

    Returns
    -------
    indices : (n_points,) int64, ascending
    centre : (3,) float64, mm
    radius : float, mm
    """
    L = np.asarray(gt_landmarks, dtype=np.float64)
    nose_bottom = L[4]
    nose_bridge = (L[1] + L[2]) / 2
    centre = nose_bottom + 0.3 * (nose_bridge - nose_bottom)
    nose_dist = np.linalg.norm(nose_bridge - nose_bottom)
    if options.mask_rule == "official":
        radius = float(1.2 * (np.linalg.norm(L[0] - L[3]) + nose_dist) / 2)
    else:
        radius = float(1.5 * (np.linalg.norm(L[0] + L[3]) + nose_dist) / 2)
    v = np.asarray(scan_vertices, dtype=np.float64)
    diff = v - centre
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    inside = dist <= radius
    # The official test is np.linalg.norm(vertex - centre) per vertex; decide near-boundary vertices with it.
    near = np.nonzero(np.abs(dist - radius) <= 1e-12 * max(radius, 1.0))[0]
    for i in near:
        inside[i] = np.linalg.norm(v[i] - centre) <= radius
    return np.nonzero(inside)[0].astype(np.int64), centre, radius


def align(gt_landmarks: np.ndarray, pred_landmarks: np.ndarray, options: StirlingOptions = OFFICIAL
          ) -> tuple[float, np.ndarray, np.ndarray]:
    """The official Procrustes of the predicted onto the ground-truth landmarks.

    Returns
    -------
    scale : float
    rotation : (3, 3) float64
        Row-vector convention: aligned ``= scale * (v @ rotation) + translation``.
    translation : (3,) float64, mm
    """
    X = np.asarray(gt_landmarks, dtype=np.float64)
    Y = np.asarray(pred_landmarks, dtype=np.float64)
    sim = procrustes(X, Y, scaling=options.scaling, reflection="best" if options.reflection == "best" else False)
    return float(sim.scale), np.ascontiguousarray(sim.rotation.T), np.asarray(sim.translation, dtype=np.float64)


def _squared_distances(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    # libigl's AABB squared distances as returned (sqrt of these reproduces the official file bit for bit;
    # facenb.distance.SurfaceQuery recomputes |p - q| from the closest points, which differs in the last bit).
    import igl

    V = np.ascontiguousarray(vertices, dtype=np.float64)
    F = np.ascontiguousarray(faces, dtype=np.int64)
    tree = igl.AABB()
    tree.init(V, F)
    sq, _, _ = tree.squared_distance(V, F, np.ascontiguousarray(points, dtype=np.float64))
    return np.asarray(sq, dtype=np.float64).ravel()


# ============================================================================================================
# scoring
# ============================================================================================================
def evaluate(
    scan_vertices: np.ndarray,
    gt_landmarks: np.ndarray,
    pred_vertices: np.ndarray,
    pred_faces: np.ndarray,
    pred_landmarks: np.ndarray,
    options: StirlingOptions = OFFICIAL,
    *,
    where: str | None = None,
) -> StirlingResult:
    """Score one prediction against one Stirling scan (the official ``compute_vertices_to_mesh_distances``).

    Parameters
    ----------
    scan_vertices : (n, 3) float64, mm
        All vertices of the ground-truth scan (faces are not used; a point cloud is fine).
    gt_landmarks : (7, 3) float64, mm
        :func:`read_lnd` of the scan's ``.lnd``, :data:`LANDMARK_NAMES` order.
    pred_vertices : (m, 3) float
        Prediction in any frame and unit.
    pred_faces : (k, 3) int
        Prediction triangles (0-based), used as they are (no cleaning).
    pred_landmarks : (7, 3) float
        The prediction's 7 landmarks, same order, frame and unit as ``pred_vertices``.
    options : StirlingOptions
    where : str, optional
        Name used in error messages.

    Returns
    -------
    StirlingResult
        ``d_i = min_{q in S} |p_i - q|`` for the masked scan vertices ``p_i``, ``S`` the prediction after
        ``v -> s (v R) + t``.
    """
    scan = np.asarray(scan_vertices, dtype=np.float64)
    V = np.asarray(pred_vertices, dtype=np.float64)
    F = np.asarray(pred_faces, dtype=np.int64)
    X = np.asarray(gt_landmarks, dtype=np.float64)
    Y = np.asarray(pred_landmarks, dtype=np.float64)
    if scan.ndim != 2 or scan.shape[1] != 3 or len(scan) == 0:
        raise InputError(f"scan vertices have shape {scan.shape}, expected (n, 3)", where, "give the scan's vertices")
    if V.ndim != 2 or V.shape[1] != 3 or len(V) == 0:
        raise InputError(f"prediction vertices have shape {V.shape}, expected (m, 3)", where, "give the mesh vertices")
    if F.ndim != 2 or F.shape[1] != 3 or len(F) == 0:
        raise InputError("prediction has no triangles: a point set is not a surface", where,
                         "save the prediction with its faces")
    if F.min() < 0 or F.max() >= len(V):
        raise InputError(f"prediction face index out of range (mesh has {len(V)} vertices)", where,
                         "repair or re-export the mesh")
    check_finite(scan, where, "scan vertices")
    check_finite(V, where, "prediction vertices")
    _check_landmark_set(X, "ground-truth landmarks", where)
    _check_landmark_set(Y, "predicted landmarks", where)

    scale, R, t = align(X, Y, options)
    return score_aligned(scan, X, V, F, (scale, R, t), options, where=where)


def score_aligned(
    scan_vertices: np.ndarray,
    gt_landmarks: np.ndarray,
    pred_vertices: np.ndarray,
    pred_faces: np.ndarray,
    similarity: tuple[float, np.ndarray, np.ndarray],
    options: StirlingOptions = OFFICIAL,
    *,
    where: str | None = None,
) -> StirlingResult:
    """Steps 3-5 with a given similarity ``(scale, rotation, translation)`` (row convention, as returned by
    :func:`align`): aligned ``= scale * (v @ rotation) + translation``, mask, distances. :func:`evaluate` calls it
    with the Procrustes result; it also lets a test replay the official transform exactly."""
    scan = np.asarray(scan_vertices, dtype=np.float64)
    X = np.asarray(gt_landmarks, dtype=np.float64)
    V = np.asarray(pred_vertices, dtype=np.float64)
    F = np.asarray(pred_faces, dtype=np.int64)
    scale, R, t = float(similarity[0]), np.asarray(similarity[1], dtype=np.float64), \
        np.asarray(similarity[2], dtype=np.float64)
    aligned = scale * (V @ R) + t
    idx, centre, radius = face_mask(scan, X, options)
    if len(idx) == 0:
        raise InputError("no scan vertex lies inside the face mask", where,
                         "check that the .lnd annotation belongs to this scan and both are in millimetres")
    dist = np.sqrt(_squared_distances(scan[idx], aligned, F))
    return StirlingResult(
        distances=dist,
        indices=idx,
        transform=similarity_matrix(scale, R.T, t),
        scale=scale,
        rotation=R,
        translation=t,
        aligned_vertices=aligned,
        faces=F,
        centre=centre,
        radius=radius,
        n_scan_vertices=int(len(scan)),
        stats=statistics(dist),
        options=options,
    )


def _load_pred_landmarks(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".lnd":
        return read_lnd(path)
    return load_landmarks(path, n=7, dim=3)


def _pred_landmarks_from_topology(vertices: np.ndarray, faces: np.ndarray, topology: str, where: str) -> np.ndarray:
    from facenb.landmarks import from_topology

    return from_topology(vertices, topology, faces, points="now7", where=where)


def evaluate_files(
    scan: str | Path,
    scan_landmarks: str | Path,
    pred: str | Path,
    pred_landmarks: str | Path | None = None,
    options: StirlingOptions = OFFICIAL,
    *,
    pred_topology: str | None = None,
) -> StirlingResult:
    """:func:`evaluate` on files.

    Parameters
    ----------
    scan : path
        Ground-truth scan ``.obj``/``.ply`` in mm (point clouds accepted).
    scan_landmarks : path
        Its ``.lnd`` (official format, :func:`read_lnd`).
    pred : path
        Predicted mesh ``.obj``/``.ply``.
    pred_landmarks : path, optional
        7 landmarks ``.txt`` (``x y z`` lines), ``.npy``, ``.pp``, ``.lnd`` ...
    options : StirlingOptions
    pred_topology : str, optional
        Instead of ``pred_landmarks``: a topology name of :func:`facenb.landmarks.from_topology` or ``"auto"``.
    """
    scan_mesh = load_mesh(scan, require_faces=False)
    X = read_lnd(scan_landmarks)
    pred_mesh = load_mesh(pred)
    if (pred_landmarks is None) == (pred_topology is None):
        raise InputError("give the prediction's landmarks or its topology (one of them)", str(pred),
                         "pass pred_landmarks (a file) or pred_topology (a name or 'auto')")
    if pred_landmarks is not None:
        Y = _load_pred_landmarks(Path(pred_landmarks))
    else:
        Y = _pred_landmarks_from_topology(pred_mesh.vertices, pred_mesh.faces, pred_topology, str(pred))
    return evaluate(scan_mesh.vertices, X, pred_mesh.vertices, pred_mesh.faces, Y, options, where=str(pred))


def format_distances(indices: Sequence[int], distances: Sequence[float]) -> str:
    """The official output text: ``"<idx> <repr(distance)>\\r\\n"`` per vertex (``csv.writer(delimiter=' ')``)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=" ")
    w.writerows([int(i), float(d)] for i, d in zip(np.asarray(indices).tolist(), np.asarray(distances).tolist()))
    return buf.getvalue()


def write_distances(path: str | Path, indices: Sequence[int], distances: Sequence[float]) -> None:
    """Write :func:`format_distances` to ``path`` without newline translation (CRLF as the official file)."""
    Path(path).write_bytes(format_distances(indices, distances).encode("ascii"))


def read_distances(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an official ``*_distances.txt``: ``(indices int64, distances float64)``."""
    p = Path(path)
    idx, dist = [], []
    with open(p, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter=" "), 1):
            if not row:
                continue
            try:
                idx.append(int(row[0]))
                dist.append(float(row[1]))
            except (ValueError, IndexError):
                raise InputError(f"line {lineno} is not '<vertex_idx> <distance>'", p,
                                 "give a file written by the FG2018 script") from None
    return np.array(idx, dtype=np.int64), np.array(dist, dtype=np.float64)



# ============================================================================================================
# dataset mode
# ============================================================================================================
@dataclass(frozen=True)
class StirlingImage:
    """One test image of the release, resolved to files (``None`` where a file is absent).

    Attributes
    ----------
    subset : {"HQ", "LQ"}
    image : str
        Image file stem, e.g. ``F1001_04``; ``subject`` is the part before the first ``_``.
    subject : str
    scan, scan_landmarks, pred, pred_landmarks : Path or None
    """

    subset: str
    image: str
    subject: str
    scan: Path | None
    scan_landmarks: Path | None
    pred: Path | None
    pred_landmarks: Path | None

    @property
    def key(self) -> str:
        return f"{self.subset}/{self.image}"


def _index(folder: Path | None, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Lower-case stem -> file, for files with ``suffixes`` anywhere under ``folder`` (sorted: first wins)."""
    out: dict[str, Path] = {}
    if folder is None or not folder.is_dir():
        return out
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in suffixes and p.is_file():
            out.setdefault(p.stem.lower(), p)
    return out


def _image_root(dataset: Path) -> Path:
    for name in IMAGE_DIRS:
        if (dataset / name).is_dir():
            return dataset / name
    if all((dataset / s).is_dir() for s in SUBSETS):
        return dataset
    raise InputError("no image folder: expected Real_images__Subset_2D_FG2018/{HQ,LQ} (or Subset_2D_FG2018/)",
                     dataset, "give the root of the Stirling/ESRC FG2018 release")


def _subsets(subset: str) -> tuple[str, ...]:
    s = subset.upper() if isinstance(subset, str) else subset
    if s == "ALL":
        return SUBSETS
    if s not in SUBSETS:
        raise InputError(f"unknown subset {subset!r}", None, "use HQ, LQ or all")
    return (s,)


def _find_pred(predictions: Path, subset: str, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    for folder in (predictions / subset, predictions):
        for suf in suffixes:
            p = folder / f"{stem}{suf}"
            if p.is_file():
                return p
    return None


def list_images(
    dataset: str | Path,
    predictions: str | Path,
    subset: str = "all",
    *,
    scans_dir: str | Path | None = None,
    annotations_dir: str | Path | None = None,
    need_landmarks: bool = True,
) -> list[StirlingImage]:
    """The test images of the release (layout in the module docstring) with their scan, ``.lnd`` and prediction.

    Scans are looked up as ``<subject>_N.obj|.ply`` under ``scans_dir`` (default: ``DATASET/F_3D_N`` and
    ``DATASET/M_3D_N``, or all of ``DATASET`` outside the image and annotation folders when those are absent)
    and annotations as ``<subject>_N.lnd`` under ``annotations_dir`` (default ``DATASET/annotations``), both
    case-insensitively. Images in ascending name order, HQ before LQ.
    """
    dataset = Path(dataset)
    predictions = Path(predictions)
    if not dataset.is_dir():
        raise InputError("dataset folder not found", dataset, "give the root of the Stirling/ESRC FG2018 release")
    if not predictions.is_dir():
        raise InputError("predictions folder not found", predictions, "give the folder holding <HQ|LQ>/<image>.obj")
    root = _image_root(dataset)
    ann_dir = Path(annotations_dir) if annotations_dir is not None else dataset / "annotations"
    if not ann_dir.is_dir():
        raise InputError("annotation folder not found", ann_dir,
                         "give --annotations DIR (the .lnd files: 'facenb data fetch stirling_fg2018' has them)")
    lnds = _index(ann_dir, (".lnd",))
    if scans_dir is not None:
        scans = _index(Path(scans_dir), _MESH_SUFFIXES)
    else:
        scans = {}
        for g in ("F_3D_N", "M_3D_N", "f_3D_N", "m_3D_N"):
            for k, v in _index(dataset / g, _MESH_SUFFIXES).items():
                scans.setdefault(k, v)
    images: list[StirlingImage] = []
    for sub in _subsets(subset):
        folder = root / sub
        if not folder.is_dir():
            raise InputError(f"subset folder {sub} not found", folder, "the release has HQ/ and LQ/ image folders")
        for img in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            stem = img.stem
            subject = stem.split("_")[0]
            key = f"{subject}_n".lower()
            images.append(StirlingImage(
                subset=sub, image=stem, subject=subject,
                scan=scans.get(key), scan_landmarks=lnds.get(key),
                pred=_find_pred(predictions, sub, stem, _MESH_SUFFIXES),
                pred_landmarks=_find_pred(predictions, sub, stem, _LMK_SUFFIXES) if need_landmarks else None,
            ))
    if not images:
        raise InputError("no test images found", root, "the release has HQ/*.jpg and LQ/*.jpg")
    return images


def build_items(images: Sequence[StirlingImage], *, need_landmarks: bool = True) -> list:
    """:class:`facenb.runner.Item` per image (key ``<subset>/<image>``; inputs = scan, ``.lnd``, prediction and its
    landmarks); an absent file makes the item ``missing`` with the path that was expected."""
    from facenb.runner import Item

    items = []
    for im in images:
        files = {"scan": im.scan, "scan_landmarks": im.scan_landmarks, "pred": im.pred}
        if need_landmarks:
            files["pred_landmarks"] = im.pred_landmarks
        absent = [k for k, v in files.items() if v is None]
        missing = None
        if absent:
            what = {"scan": f"scan {im.subject}_N.obj", "scan_landmarks": f"annotation {im.subject}_N.lnd",
                    "pred": f"prediction {im.subset}/{im.image}.obj|.ply",
                    "pred_landmarks": f"prediction landmarks {im.subset}/{im.image}.txt|.npy"}
            missing = "missing " + ", ".join(what[k] for k in absent)
        params = {k: (str(v) if v is not None else None) for k, v in files.items()}
        params.update(subset=im.subset, image=im.image, subject=im.subject)
        items.append(Item(key=im.key, inputs=tuple(v for v in files.values() if v is not None), params=params,
                          missing=missing))
    return items


def _settings(options: StirlingOptions, pred_topology: str | None) -> dict:
    return {"benchmark": "stirling_fg2018", "protocol": OFFICIAL_REPO, "reflection": options.reflection,
            "scaling": options.scaling, "mask_rule": options.mask_rule, "pred_topology": pred_topology}


def score_one(item, settings: dict) -> dict:
    """Runner entry point: score one image. Payload: the per-image statistics, ``scale``, ``reflection_used``,
    ``indices`` (int64) and ``distances`` (float64, mm)."""
    p = item.params
    options = StirlingOptions(reflection=settings["reflection"], scaling=settings["scaling"],
                              mask_rule=settings["mask_rule"])
    res = evaluate_files(p["scan"], p["scan_landmarks"], p["pred"], p.get("pred_landmarks"), options,
                         pred_topology=settings.get("pred_topology") if not p.get("pred_landmarks") else None)
    s = res.stats
    return {"mean_mm": s.mean_mm, "median_mm": s.median_mm, "std_mm": s.std_mm, "rmse_mm": s.rmse_mm,
            "max_mm": s.max_mm, "n_points": s.n_points, "scale": res.scale, "reflection_used": res.reflection_used,
            "indices": res.indices.astype(np.int64), "distances": res.distances.astype(np.float64)}


@dataclass(frozen=True)
class DatasetResult:
    """Dataset-mode result.

    Attributes
    ----------
    per_subset : dict
        ``{"HQ": {...}, "LQ": {...}, "all": {...}}`` (subsets that were asked for): ``value_mm`` (the headline,
        ``statistic`` aggregated by ``aggregate``) and ``std_mm`` (pooled per-vertex std, or std over images for
        ``per-image``, ddof 0); always ``pooled_{mean,median,std,rmse}_mm`` over all masked distances and
        ``per_image_{mean,median,rmse}_mm`` (mean over images) with ``per_image_*_std_mm``; ``n_images``,
        ``n_scored``, ``n_missing``, ``n_failed``, ``n_points``.
    rows : list of dict
        One per image: key, subset, image, subject, status, reason, statistics.
    statistic, aggregate : str
    run : facenb.runner.RunResult
    out_dir : Path
    """

    per_subset: dict
    rows: list
    statistic: str
    aggregate: str
    run: object
    out_dir: Path

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> dict:
        return {"statistic": self.statistic, "aggregate": self.aggregate, "protocol": OFFICIAL_REPO,
                **self.per_subset}

    def printed(self) -> list[str]:
        lines = []
        for sub, s in self.per_subset.items():
            lines.append(f"Stirling/FG2018 {sub}: {self.statistic} ({self.aggregate}) {s['value_mm']:.4f} mm "
                         f"(std {s['std_mm']:.4f}) over {s['n_scored']} of {s['n_images']} images; pooled median "
                         f"{s['pooled_median_mm']:.4f} / mean {s['pooled_mean_mm']:.4f} / std {s['pooled_std_mm']:.4f}"
                         f" / rmse {s['pooled_rmse_mm']:.4f} mm; per-image mean {s['per_image_mean_mm']:.4f}, rmse "
                         f"{s['per_image_rmse_mm']:.4f} mm; {s['n_missing']} missing, {s['n_failed']} failed")
        return lines


def _aggregate(rows: list, values: dict, statistic: str, aggregate: str) -> dict:
    scored = [r for r in rows if r["status"] in ("ok", "cached")]
    d = [values[r["key"]]["distances"] for r in scored]
    pooled = statistics(np.concatenate(d) if d else np.zeros(0))
    nan = float("nan")

    def per_image(k):
        v = np.array([r[k] for r in scored], dtype=np.float64)
        return (float(v.mean()), float(v.std())) if v.size else (nan, nan)

    out = {"statistic": statistic, "aggregate": aggregate}
    if aggregate == "pooled":
        out["value_mm"] = {"mean": pooled.mean_mm, "median": pooled.median_mm, "rmse": pooled.rmse_mm}[statistic]
        out["std_mm"] = pooled.std_mm
    else:
        out["value_mm"], out["std_mm"] = per_image(f"{statistic}_mm")
    out.update({
        "pooled_mean_mm": pooled.mean_mm, "pooled_median_mm": pooled.median_mm, "pooled_std_mm": pooled.std_mm,
        "pooled_rmse_mm": pooled.rmse_mm,
    })
    for k in ("mean", "median", "rmse"):
        m, sd = per_image(f"{k}_mm")
        out[f"per_image_{k}_mm"] = m
        out[f"per_image_{k}_std_mm"] = sd
    out.update({
        "n_points": pooled.n_points, "n_images": len(rows), "n_scored": len(scored),
        "n_missing": sum(r["status"] == "missing" for r in rows),
        "n_failed": sum(r["status"] == "failed" for r in rows),
    })
    return out


def evaluate_dataset(
    dataset: str | Path,
    predictions: str | Path,
    out: str | Path,
    *,
    subset: str = "all",
    statistic: str = "mean",
    aggregate: str = "pooled",
    options: StirlingOptions = OFFICIAL,
    pred_topology: str | None = None,
    scans_dir: str | Path | None = None,
    annotations_dir: str | Path | None = None,
    jobs: int = 1,
    progress: bool = True,
    write_distance_files: bool = True,
) -> DatasetResult:
    """Score a method's predictions on the HQ and/or LQ images of the release (layout: module docstring).

    Parameters
    ----------
    dataset, predictions : path
    out : path
        Output folder: ``summary.json`` / ``summary.csv`` (per subset), ``per_image.csv``,
        ``distances/<subset>/<image>_distances.txt`` (the official submission files), ``cache/`` (resume).
    subset : {"all", "HQ", "LQ"}
    statistic : {"mean", "median", "rmse"}
        Statistic of the headline number ``value_mm`` (default ``mean``; ``rmse`` = FG2018's 3D-RMSE).
    aggregate : {"pooled", "per-image"}
        ``pooled`` (default): over all masked vertices of the subset's images; ``per-image``: mean over images of
        the per-image statistic (``std_mm`` is then its std over images). Every variant is reported anyway.
    options : StirlingOptions
    pred_topology : str, optional
        Take the predicted landmarks from this topology (``from_topology``) when no landmark file is given.
    jobs : int
        Worker processes (``facenb.runner``).
    """
    from facenb import runner

    if statistic not in STATISTICS:
        raise InputError(f"unknown statistic {statistic!r}", None, f"use one of {', '.join(STATISTICS)}")
    if aggregate not in AGGREGATES:
        raise InputError(f"unknown aggregate {aggregate!r}", None, f"use one of {', '.join(AGGREGATES)}")
    if jobs < 1:
        raise InputError("jobs must be at least 1", None, "pass --jobs 1 or more")
    out = Path(out)
    need_lm = pred_topology is None
    images = list_images(dataset, predictions, subset, scans_dir=scans_dir, annotations_dir=annotations_dir,
                         need_landmarks=need_lm)
    items = build_items(images, need_landmarks=need_lm)
    result = runner.run(items, score_one, _settings(options, pred_topology), out,
                        executor="processes" if jobs > 1 else "serial", jobs=jobs, progress=progress,
                        desc="stirling")
    values = {o.key: o.value for o in result.outcomes if o.value is not None}
    rows = []
    for im, o in zip(images, result.outcomes):
        row = {"key": o.key, "subset": im.subset, "image": im.image, "subject": im.subject, "status": o.status,
               "reason": o.reason}
        v = o.value or {}
        for k in ("mean_mm", "median_mm", "std_mm", "rmse_mm", "max_mm", "n_points", "scale", "reflection_used"):
            row[k] = v.get(k)
        rows.append(row)
        if write_distance_files and o.value is not None:
            d = out / "distances" / im.subset
            d.mkdir(parents=True, exist_ok=True)
            write_distances(d / f"{im.image}_distances.txt", o.value["indices"], o.value["distances"])
    subs = _subsets(subset)
    per_subset = {s: _aggregate([r for r in rows if r["subset"] == s], values, statistic, aggregate) for s in subs}
    if len(subs) > 1:
        per_subset["all"] = _aggregate(rows, values, statistic, aggregate)
    res = DatasetResult(per_subset, rows, statistic, aggregate, result, out)
    flat = [{"subset": k, **v} for k, v in per_subset.items()]
    runner.write_summary(out, "summary", res.summary(), flat)
    runner.write_summary(out, "per_image", {"statistic": statistic, "aggregate": aggregate, "images": rows}, rows)
    return res


__all__ += ["AGGREGATES", "StirlingImage", "list_images", "build_items", "score_one", "DatasetResult",
            "evaluate_dataset"]
