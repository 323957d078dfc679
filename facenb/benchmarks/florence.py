"""Florence (MICC) 3D face reconstruction error: the published protocols, every choice an option.

There is **no official Florence scorer**. The MICC Florence dataset (Bagdanov et al. 2011; 53 subjects, two
frontal 3D scans ``frontal1``/``frontal2`` each, and three videos: ``Indoor-Cooperative``, ``PTZ-Indoor``,
``PTZ-Outdoor``) is licence-gated; each paper built its own evaluation. facenb implements the protocols that are
described in public sources, names each preset after the paper whose protocol it reproduces, and exposes every
choice as a field of :class:`FlorenceOptions` so that a user can see what each choice does to the number.

Protocols (presets)
-------------------
``"prnet"`` (default, :data:`OFFICIAL`): the VRN protocol that PRNet (Feng et al. 2018, NME 3.7551 %) follows.
    Described by VRN's author in the issues of ``AaronJackson/vrn`` (repository @ ``ea51847``):

    * #143 (2020-04-02): ICP is used only to find the correspondence between the (volume-extracted) prediction and
      the ground truth; "we are not using the aligned mesh to compute the error" -- the moved copy is discarded, so
      the distances are measured with the prediction at its pose before the ICP (``error_frame="initial"``).
    * #144 (2020-04-06): the prediction is brought back to the input frame by inverting the image transform ("there
      should not be any need to apply any manual scaling"); "ICP should only need to be used for finding the
      correspondence" -- a rigid ICP (the asker's MATLAB ``pcregrigid``: point-to-point, no scale, 20 iterations by
      default), prediction moving.
    * #99 (2018-09-01): the main paper's NME is "without explicit alignment" (correspondences "by doing ICP and ...
      nearest neighbours"; depth aligned by the mean z), the supplement's removes the rigid transformation
      (``error_frame="aligned"``).
    * #88 (2018-06-19): the NME is normalised by the 3D *outer* interocular distance (iBUG landmarks 37 and 46,
      1-based) of the ground truth; on Florence the landmarks were detected on the frontal texture and lifted to 3D.
    * #158 (2021-01-29): the test images are renders of each scan at 15 poses (pitch -15, -20, -25 degrees x yaw
      -80, -40, 0, 40, 80 degrees; the paper's "20" is a typo).

    What the issues do not state, facenb chooses and documents: the ground truth is cropped to a 95 mm ball around
    the nose tip (the crop of Genova et al. 2018 as implemented in GANFit, below); distances are measured from each
    cropped ground-truth vertex to its nearest predicted vertex; ``frontal1`` is the ground-truth scan; the
    prediction is brought near the scan by a rigid landmark Procrustes when its 68 landmarks are given (VRN used the
    known render transform; its pose error then counts in the NME as in VRN's main numbers), else by centring.

``"ganfit"``: ``micc_evaluation.py`` of ``barisgecer/GANFit`` @ ``73d664506edb19671ba9d3903e8847ba677572e6``
    (GANFit, Gecer et al. 2019; "borrowed from Genova et al. CVPR 2018", README): ground truth registered to a
    template and cropped to a ball of radius 0.95 template units (0.6 for subject 28) around iBUG landmark 30 (nose
    tip); a *similarity* ICP (menpo ``AlignmentSimilarity`` to the closest points on the other surface, VTK
    closest-point locator = exact point-to-surface), iterated while the mean distance drops by more than 0.001;
    the score is the *symmetric* mean (ground truth -> prediction and prediction -> ground truth ICPs, averaged),
    printed x100 (template units to mm); per subject and video the minimum over ``frontal1``/``frontal2``; per video
    setting mean +- std over subjects. The README calls it "point-to-plane"; the code measures point-to-surface.

``"m3dfb"``: estimator ``E1`` ("ICP + Chamfer", the "widely used" estimator) of ``sariyanidi/M3DFB`` @
    ``94992e835c2ff1f3d8c32f06f2b1021b67f58310`` (``info/error_computers/E01.json``, ``rigid_aligners.py``,
    ``corr_establishers.py``, ``distance_computers.py``): similarity Procrustes on iBUG landmarks 30, 36, 45, 48, 54
    (nose tip, outer eye corners, mouth corners; its iBUG-51 indices 13, 19, 28, 31, 37), then Open3D point-to-point
    rigid ICP (all points, max correspondence distance 1000, 30 iterations), then for every *predicted* vertex the
    nearest ground-truth vertex; no crop (M3DFB's Florence meshes come pre-cropped), the mean in mm.

Options (every choice; the preset values)
-----------------------------------------
==================  ===================  ===================  ===================  =====================================
field               ``prnet``            ``ganfit``           ``m3dfb``            source
==================  ===================  ===================  ===================  =====================================
crop_radius_mm      95.0                 95.0                 None (no crop)       GANFit 0.95 template units x 100;
                                                                                   M3DFB E1 has no cropper
crop_center         30 (nose tip)        30                   30                   GANFit ``landmarks[30]``
tight_subjects      ()                   (28,) at 60 mm       ()                   GANFit ``id == 28`` -> mask 0.6
init                "auto"               "auto"               "auto"               VRN: render transform (not public);
                                                                                   GANFit: template correspondence;
                                                                                   M3DFB: landmark Procrustes
init_landmarks      36,39,42,45,30,48,54 36,39,42,45,30,48,54 30,36,45,48,54       M3DFB ``ref_lmk_indices``
init_scale          False                True                 True                 #144 "no manual scaling"; menpo
                                                                                   AlignmentSimilarity; M3DFB procrustes
icp                 "point_to_point"     "point_to_surface"   "point_to_point"     pcregrigid default metric; VTK
                                                                                   closest point; Open3D p2p
icp_scale           False                True                 False                pcregrigid rigid; AlignmentSimilarity
icp_direction       "pred_to_gt"         = correspondence     "pred_to_gt"         pcregrigid(moving=prediction);
                                                                                   GANFit per direction; Open3D source
icp_max_iter        20                   1000                 30                   pcregrigid default; ``while``; Open3D
icp_tol_mm          0.001                0.001                1e-6                 GANFit ``> 0.001``; pcregrigid and
                                                                                   Open3D stop on other criteria (the
                                                                                   closest facenb rule)
correspondence      "gt_to_pred"         "symmetric"          "pred_to_gt"         #99 (direction not stated); GANFit
                                                                                   two calls averaged; M3DFB Chamfer
distance            "vertex"             "surface"            "vertex"             #99 nearest neighbours; VTK closest
                                                                                   point; M3DFB DenseP2PDistance
error_frame         "initial"            "aligned"            "aligned"            vrn #143; GANFit/M3DFB measure after
                                                                                   their ICP
normaliser          "outer_interocular"  "none"               "none"               #88; GANFit/M3DFB report mm
scans               "frontal1"           "min"                "frontal1"           GANFit ``np.min(distances, 1)``
==================  ===================  ===================  ===================  =====================================

Equations. With ``P`` the cropped ground-truth vertices (``|P - L_30| <= r``), ``T`` the similarity found by the
initial alignment and the ICP (prediction -> ground truth), ``S`` the moved prediction (its vertices or its
triangles, per ``distance``):

.. math:: d_i = \\lVert p_i - T_e(T^{-1}(q_i)) \\rVert_2,\\quad
          q_i = \\arg\\min_{q \\in T(S)} \\lVert p_i - q \\rVert_2,\\quad
          \\text{mean} = \\frac{1}{|P|} \\sum_i d_i,\\quad
          \\text{NME} = 100\\,\\frac{\\text{mean}}{\\lVert L_{36} - L_{45} \\rVert_2}\\ \\%

(``gt_to_pred``); ``pred_to_gt`` swaps the roles (``p_i`` the moved predicted vertices within the crop radius of
``L_30``, ``S`` the whole scan -- GANFit's target in that direction is its whole registered ground truth);
``symmetric`` averages the two directional means, each after its own ICP (GANFit). ``L`` are the ground truth's
iBUG-68 landmarks (0-based indices); ``T_e = T`` (``error_frame="aligned"``) or the initial pose ``T_0``
(``"initial"``, VRN: the correspondent is found under ``T`` but measured where the prediction was). The ICP always
moves the *prediction* so that distances stay in the ground truth's millimetres (GANFit moves its registered ground
truth, in template units -- with ``icp_scale=True`` the two differ by the small residual scale).

Deviations from the published code (all because the inputs differ): GANFit evaluates template-registered ground
truth against template-topology predictions (initial correspondence by vertex index); facenb evaluates the raw scan
against a prediction of any topology, with an initial landmark alignment instead. Open3D's and ``pcregrigid``'s
convergence tests are replaced by the mean-distance rule above. No reflections are allowed (M3DFB's Procrustes
allows one when it fits better).

Dataset layout (see :func:`dataset_items`)
------------------------------------------
``florence_dir`` -- the licensed MICC release as distributed::

    subject_NN/Model/frontal1/obj/<stamp>.obj     (or .ply; the scan, millimetres)
    subject_NN/Model/frontal2/obj/<stamp>.obj

``landmarks_dir`` -- the public ``florence_micc_landmarks`` dataset (GANFit's manual iBUG-68 labels; default: the
facenb cache or mirror): ``MICC_landmarks/subject_NN/Model/frontal{1,2}/obj/<stamp>.ljson`` (same stem as the scan).

``predictions_dir`` -- one folder per subject, one mesh per video setting or rendered pose::

    subject_NN/Indoor-Cooperative.obj   subject_NN/PTZ-Indoor.obj   subject_NN/PTZ-Outdoor.obj   (GANFit layout)
    subject_NN/pitch-15_yaw+40.obj ...                                                   (VRN/PRNet renders)

with optional 68 iBUG landmarks of the prediction beside it (``<stem>.ljson``, ``.txt``, ``.npy`` or ``.pts``),
used for the initial alignment. Every ``<stem>`` found is a setting; results are averaged per setting and overall.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from facenb.align import Similarity, apply_transform, procrustes
from facenb.distance import SurfaceQuery
from facenb.errors import InputError

__all__ = [
    "FlorenceOptions",
    "OFFICIAL",
    "PRNET",
    "GANFIT",
    "M3DFB",
    "PRESETS",
    "options_for",
    "SETTINGS",
    "VRN_RENDER_POSES",
    "IBUG_ORDER",
    "FlorenceResult",
    "evaluate",
    "crop_mask",
    "crop_mesh",
    "interocular_distance",
    "ibug68_from_ljson",
    "load_scan_landmarks",
    "sfm_ibug68",
    "dataset_items",
    "score_one",
    "DatasetResult",
    "evaluate_dataset",
    "compare_protocols",
    "claim_values",
]

#: The three MICC video settings (GANFit's folder names).
SETTINGS = ("Indoor-Cooperative", "PTZ-Indoor", "PTZ-Outdoor")
#: VRN's 15 render poses (pitch, yaw) in degrees (vrn issue #158).
VRN_RENDER_POSES = tuple((p, y) for p in (-15, -20, -25) for y in (-80, -40, 0, 40, 80))
#: iBUG-68 groups in index order (menpo LJSON labels), for :func:`ibug68_from_ljson`.
IBUG_ORDER = (("chin", 17), ("leyebrow", 5), ("reyebrow", 5), ("nose", 9), ("leye", 6), ("reye", 6), ("mouth", 20))

_INITS = ("auto", "landmarks", "centroid", "none")
_ICPS = ("point_to_point", "point_to_surface", "none")
_DIRS = ("gt_to_pred", "pred_to_gt")
_CORRS = ("gt_to_pred", "pred_to_gt", "symmetric")
_DISTS = ("vertex", "surface")
_NORMS = ("outer_interocular", "none")
_SCANS = ("frontal1", "frontal2", "min", "mean")


@dataclass(frozen=True)
class FlorenceOptions:
    """Every choice of a Florence protocol (see the module docstring's table for the presets and sources).

    Attributes
    ----------
    protocol : str
        Label of the preset the options came from (``"prnet"``, ``"ganfit"``, ``"m3dfb"``); ``"custom"`` once a
        field is changed with :meth:`with_`.
    crop_radius_mm : float or None
        Ground-truth crop: keep scan vertices with ``|p - L[crop_center]| <= crop_radius_mm``; None keeps all.
    crop_center : int
        0-based iBUG-68 index of the crop centre (30: nose tip).
    tight_subjects : tuple of int
        Subjects (MICC numbers) cropped with ``tight_radius_mm`` instead (GANFit: subject 28).
    tight_radius_mm : float
    init : {"auto", "landmarks", "centroid", "none"}
        Initial alignment of the prediction: landmark Procrustes (needs the prediction's 68 landmarks),
        centroid of the prediction onto the centroid of the cropped scan, or none (prediction already in the scan's
        frame). ``"auto"``: landmarks when given, else centroid.
    init_landmarks : tuple of int
        iBUG-68 indices used by the landmark Procrustes.
    init_scale : bool
        Similarity (True) or rigid (False) landmark Procrustes.
    icp : {"point_to_point", "point_to_surface", "none"}
        Closest predicted *vertex* or closest point on the *triangles* as the ICP correspondence.
    icp_scale : bool
        Similarity ICP (GANFit) or rigid ICP (VRN, M3DFB).
    icp_direction : {"gt_to_pred", "pred_to_gt"} or None
        Which point set queries the other during the ICP; None: the same as the measured direction.
    icp_max_iter : int
    icp_tol_mm : float
        Stop when the mean correspondence distance drops by ``<= icp_tol_mm`` in one iteration.
    correspondence : {"gt_to_pred", "pred_to_gt", "symmetric"}
        Direction of the measured distances.
    distance : {"vertex", "surface"}
        Nearest vertex (a point cloud) or exact point-to-surface distance (:class:`facenb.distance.SurfaceQuery`).
    error_frame : {"initial", "aligned"}
        ``"initial"`` (VRN): the ICP only finds the correspondences, the distances are measured with the prediction
        at its initial pose (the ICP-moved copy is discarded, vrn #143); ``"aligned"``: measured after the ICP
        (VRN's supplementary "rigid transformation removed" numbers, GANFit, M3DFB).
    normaliser : {"outer_interocular", "none"}
        The headline score: NME in percent of the ground truth's 3D outer interocular distance ``|L36 - L45|``,
        or the mean distance in mm. Both are always reported.
    scans : {"frontal1", "frontal2", "min", "mean"}
        Dataset mode: which of the subject's two frontal scans is the ground truth (min/mean over both).
    """

    protocol: str = "prnet"
    crop_radius_mm: float | None = 95.0
    crop_center: int = 30
    tight_subjects: tuple[int, ...] = ()
    tight_radius_mm: float = 60.0
    init: Literal["auto", "landmarks", "centroid", "none"] = "auto"
    init_landmarks: tuple[int, ...] = (36, 39, 42, 45, 30, 48, 54)
    init_scale: bool = False
    icp: Literal["point_to_point", "point_to_surface", "none"] = "point_to_point"
    icp_scale: bool = False
    icp_direction: Literal["gt_to_pred", "pred_to_gt"] | None = "pred_to_gt"
    icp_max_iter: int = 20
    icp_tol_mm: float = 1e-3
    correspondence: Literal["gt_to_pred", "pred_to_gt", "symmetric"] = "gt_to_pred"
    distance: Literal["vertex", "surface"] = "vertex"
    error_frame: Literal["initial", "aligned"] = "initial"
    normaliser: Literal["outer_interocular", "none"] = "outer_interocular"
    scans: Literal["frontal1", "frontal2", "min", "mean"] = "frontal1"

    def __post_init__(self):
        def one_of(name, allowed):
            v = getattr(self, name)
            if v not in allowed:
                raise InputError(f"FlorenceOptions.{name} must be one of {', '.join(map(str, allowed))}, got {v!r}")

        one_of("init", _INITS)
        one_of("icp", _ICPS)
        one_of("icp_direction", _DIRS + (None,))
        one_of("correspondence", _CORRS)
        one_of("distance", _DISTS)
        one_of("error_frame", ("initial", "aligned"))
        one_of("normaliser", _NORMS)
        one_of("scans", _SCANS)
        if self.crop_radius_mm is not None and not self.crop_radius_mm > 0:
            raise InputError(f"crop_radius_mm must be positive or None, got {self.crop_radius_mm!r}")
        if not 0 <= int(self.crop_center) < 68:
            raise InputError(f"crop_center must be an iBUG-68 index 0..67, got {self.crop_center!r}")
        lms = tuple(int(i) for i in self.init_landmarks)
        if len(lms) < 3 or any(not 0 <= i < 68 for i in lms):
            raise InputError(f"init_landmarks must be at least 3 iBUG-68 indices, got {self.init_landmarks!r}")
        object.__setattr__(self, "init_landmarks", lms)
        object.__setattr__(self, "tight_subjects", tuple(int(s) for s in self.tight_subjects))
        if int(self.icp_max_iter) < 0 or not self.icp_tol_mm >= 0:
            raise InputError("icp_max_iter and icp_tol_mm must be >= 0")

    def with_(self, **changes) -> "FlorenceOptions":
        """A copy with ``changes``; the label becomes ``"custom"`` unless ``protocol`` is given."""
        changes.setdefault("protocol", "custom")
        return replace(self, **changes)

    def radius_for(self, subject: int | None) -> float | None:
        """Crop radius (mm) for MICC subject number ``subject`` (None: not a dataset item)."""
        if subject is not None and subject in self.tight_subjects and self.crop_radius_mm is not None:
            return self.tight_radius_mm
        return self.crop_radius_mm


#: VRN/PRNet protocol (the default; there is no official scorer -- see the module docstring).
PRNET = FlorenceOptions()
OFFICIAL = PRNET
#: GANFit ``micc_evaluation.py`` protocol (symmetric point-to-surface after similarity ICP, mm).
GANFIT = FlorenceOptions(protocol="ganfit", tight_subjects=(28,), tight_radius_mm=60.0, init_scale=True,
                         icp="point_to_surface", icp_scale=True, icp_direction=None, icp_max_iter=1000,
                         icp_tol_mm=1e-3, correspondence="symmetric", distance="surface", error_frame="aligned",
                         normaliser="none", scans="min")
#: M3DFB estimator E1 (landmark similarity, rigid point-to-point ICP, Chamfer prediction -> scan, mm).
M3DFB = FlorenceOptions(protocol="m3dfb", crop_radius_mm=None, init_landmarks=(30, 36, 45, 48, 54), init_scale=True,
                        icp="point_to_point", icp_scale=False, icp_direction="pred_to_gt", icp_max_iter=30,
                        icp_tol_mm=1e-6, correspondence="pred_to_gt", distance="vertex", error_frame="aligned",
                        normaliser="none", scans="frontal1")
PRESETS = {"prnet": PRNET, "ganfit": GANFIT, "m3dfb": M3DFB}


def options_for(protocol: str) -> FlorenceOptions:
    """The preset named ``protocol`` (``prnet``, ``ganfit``, ``m3dfb``)."""
    try:
        return PRESETS[protocol]
    except KeyError:
        raise InputError(f"unknown Florence protocol {protocol!r}", None, f"use one of {', '.join(PRESETS)}") from None


# --------------------------------------------------------------------------------------------- landmarks
def ibug68_from_ljson(path: str | Path) -> np.ndarray:
    """68 iBUG landmarks ``(68, 3)`` of a menpo LJSON file, in iBUG order.

    The MICC files list their groups in iBUG index order; menpo's ``james.ljson`` groups them as chin, leye, reye,
    leyebrow, nose, reyebrow, mouth with consecutive masks. This reads the group labels and reorders to
    :data:`IBUG_ORDER` (``leye`` = iBUG 36-41), so both give iBUG-68.
    """
    from facenb.io import load_landmarks

    p = Path(path)
    pts = load_landmarks(p, n=68)
    try:
        obj = json.loads(p.read_text())
        grp = next(iter(obj["groups"].values())) if "groups" in obj else obj
        labels = {g["label"]: list(g["mask"]) for g in grp.get("labels", [])}
    except (json.JSONDecodeError, KeyError, TypeError, StopIteration, AttributeError):
        labels = {}
    if not labels:
        return pts
    order = []
    for name, n in IBUG_ORDER:
        mask = labels.get(name)
        if mask is None or len(mask) != n:
            raise InputError(f"LJSON group {name!r} missing or not {n} points", p, "give an iBUG-68 menpo LJSON file")
        order.extend(mask)
    return pts[np.asarray(order)]


def sfm_ibug68(vertices: np.ndarray, mapping_path: str | Path) -> np.ndarray:
    """iBUG-68 landmarks ``(68, 3)`` of a Surrey Face Model mesh from eos' ``ibug_to_sfm.txt``
    (``[landmark_mappings]`` lines ``ibug_1based = sfm_vertex``); NaN where the file maps no vertex (the contour)
    or a vertex the mesh's resolution lacks."""
    import re

    p = Path(mapping_path)
    v = np.asarray(vertices, dtype=np.float64)
    out = np.full((68, 3), np.nan)
    section = None
    for line in p.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]")
            continue
        m = re.fullmatch(r"(\d+)\s*=\s*(\d+)", line)
        if section == "landmark_mappings" and m:
            i, k = int(m.group(1)) - 1, int(m.group(2))
            if not 0 <= i < 68:
                raise InputError(f"mapping {i + 1} = {k} is not an iBUG-68 point", p, "give eos' ibug_to_sfm.txt")
            if k < len(v):  # the file's ids above 845 exist only in the higher model resolutions
                out[i] = v[k]
    if np.isnan(out).all():
        raise InputError("no [landmark_mappings] lines found", p, "give eos' ibug_to_sfm.txt")
    return out


def load_scan_landmarks(path: str | Path) -> np.ndarray:
    """iBUG-68 landmarks (mm) of a scan or a prediction: ``.ljson`` via :func:`ibug68_from_ljson`, else
    :func:`facenb.io.load_landmarks` (68 points)."""
    p = Path(path)
    if p.suffix.lower() == ".ljson":
        return ibug68_from_ljson(p)
    from facenb.io import load_landmarks

    return load_landmarks(p, n=68)


def interocular_distance(landmarks68: np.ndarray) -> float:
    """3D outer interocular distance ``|L36 - L45|`` (mm) of iBUG-68 landmarks (vrn issue #88)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return float(np.linalg.norm(lm[36] - lm[45]))


def crop_mask(vertices: np.ndarray, landmarks68: np.ndarray, radius_mm: float | None, center: int = 30) -> np.ndarray:
    """Boolean mask ``(n,)`` of the vertices within ``radius_mm`` (``<=``) of landmark ``center``; all if None."""
    v = np.asarray(vertices, dtype=np.float64)
    if radius_mm is None:
        return np.ones(len(v), dtype=bool)
    c = np.asarray(landmarks68, dtype=np.float64)[center]
    return np.linalg.norm(v - c, axis=1) <= radius_mm


def crop_mesh(vertices: np.ndarray, faces: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-mesh of the masked vertices (order kept) and the faces whose three vertices are all masked."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    m = np.asarray(mask, dtype=bool)
    new = np.full(len(v), -1, dtype=np.int64)
    new[m] = np.arange(int(m.sum()))
    keep = m[f].all(axis=1) if len(f) else np.zeros(0, dtype=bool)
    return v[m], new[f[keep]]


# -------------------------------------------------------------------------------------------------- core
class _Target:
    """Closest vertex or closest surface point of a fixed point set / mesh."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray | None, kind: str, what: str):
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        if kind == "surface":
            if faces is None or len(faces) == 0:
                raise InputError(f"the {what} has no triangles; point-to-surface distances need a mesh", None,
                                 "give a triangle mesh, or use distance='vertex' / icp='point_to_point'")
            self._q = SurfaceQuery(self.vertices, faces)
            self._tree = None
        else:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.vertices)
            self._q = None

    def closest(self, points: np.ndarray) -> np.ndarray:
        if self._q is not None:
            return self._q.query(points).points
        _, idx = self._tree.query(points)
        return self.vertices[idx]


def _inverse(T: np.ndarray) -> np.ndarray:
    A = T[:3, :3]
    Ai = np.linalg.inv(A)
    out = np.eye(4)
    out[:3, :3] = Ai
    out[:3, 3] = -Ai @ T[:3, 3]
    return out


def _closest_world(direction: str, T: np.ndarray, P: np.ndarray, V: np.ndarray, pred_t: _Target | None,
                   gt_t: _Target | None) -> tuple[np.ndarray, np.ndarray]:
    """(sources, their closest points) in the scan frame for prediction transform ``T``."""
    if direction == "gt_to_pred":
        local = apply_transform(_inverse(T), P)
        return P, apply_transform(T, pred_t.closest(local))
    src = apply_transform(T, V)
    return src, gt_t.closest(src)


def _icp(direction: str, T: np.ndarray, P, V, pred_t, gt_t, scale: bool, max_iter: int, tol: float):
    """Iterate: closest points, then the least-squares similarity (or rigid) step that moves the prediction.

    Stops after ``max_iter`` steps or when the mean distance drops by ``<= tol`` mm (GANFit's rule; a step that
    raises the mean while lowering the sum of squares goes on, where GANFit would stop). A step that raises the sum
    of squared distances -- the objective each step minimises, so only rounding can raise it -- is not taken.
    """
    src, q = _closest_world(direction, T, P, V, pred_t, gt_t)
    d = np.linalg.norm(src - q, axis=1)
    mean, sq = float(d.mean()), float(np.dot(d, d))
    it = 0
    while it < max_iter:
        # move the prediction: gt_to_pred maps its closest points q onto P; pred_to_gt maps its points onto q
        tgt, mov = (src, q) if direction == "gt_to_pred" else (q, src)
        T_new = procrustes(tgt, mov, scaling=scale, reflection=False).matrix @ T
        src_n, q_n = _closest_world(direction, T_new, P, V, pred_t, gt_t)
        d = np.linalg.norm(src_n - q_n, axis=1)
        mean_n, sq_n = float(d.mean()), float(np.dot(d, d))
        it += 1
        if sq_n > sq:
            break
        T, src, q, improved, mean, sq = T_new, src_n, q_n, mean - mean_n, mean_n, sq_n
        if 0.0 <= improved <= tol:
            break
    return T, it


@dataclass(frozen=True)
class FlorenceResult:
    """One ground-truth scan against one prediction.

    Attributes
    ----------
    protocol : str
    score : float
        The headline number: ``nme_percent`` (normaliser ``outer_interocular``) or ``mean_mm`` (``none``).
    score_unit : {"percent", "mm"}
    nme_percent : float
        ``100 * mean_mm / interocular_mm``.
    mean_mm : float
        Mean distance (symmetric: the average of the two directional means, GANFit).
    median_mm, std_mm, rmse_mm, max_mm : float
        Over ``distances`` (symmetric: over both directions' distances).
    interocular_mm : float
        Ground truth's 3D outer interocular distance ``|L36 - L45|``.
    n_points : int
        Number of distances (both directions when symmetric).
    distances : (k,) float64, mm
        Per cropped scan vertex distance to the prediction (``gt_to_pred`` and ``symmetric``; aligned with
        ``crop``), or per cropped predicted vertex (``pred_to_gt``, aligned with ``pred_crop``).
    distances_reverse : (j,) float64 or None
        Symmetric only: per cropped predicted vertex distance to the scan (aligned with ``pred_crop``).
    crop : (n,) bool
        The ground-truth crop (scan vertices kept).
    pred_crop : (m,) bool
        Predicted vertices measured (pred_to_gt and symmetric; all False otherwise).
    transform : (4, 4) float64
        Prediction -> scan similarity after the initial alignment and the ICP (of the reported direction;
        symmetric: of the ``gt_to_pred`` ICP).
    transform_reverse : (4, 4) float64 or None
        Symmetric only: the ``pred_to_gt`` ICP's transform.
    init_transform : (4, 4) float64
    init : str
        The initial alignment used (``landmarks``, ``centroid``, ``none``).
    icp_iterations : int
    options : FlorenceOptions
    """

    protocol: str
    score: float
    score_unit: str
    nme_percent: float
    mean_mm: float
    median_mm: float
    std_mm: float
    rmse_mm: float
    max_mm: float
    interocular_mm: float
    n_points: int
    distances: np.ndarray = field(repr=False)
    distances_reverse: np.ndarray | None = field(repr=False)
    crop: np.ndarray = field(repr=False)
    pred_crop: np.ndarray = field(repr=False)
    transform: np.ndarray = field(repr=False)
    transform_reverse: np.ndarray | None = field(repr=False)
    init_transform: np.ndarray = field(repr=False)
    init: str
    icp_iterations: int
    options: FlorenceOptions = field(repr=False)

    def summary(self) -> dict:
        """Flat dict of the scalar results (JSON-able)."""
        return {"protocol": self.protocol, "score": self.score, "score_unit": self.score_unit,
                "nme_percent": self.nme_percent, "mean_mm": self.mean_mm, "median_mm": self.median_mm,
                "std_mm": self.std_mm, "rmse_mm": self.rmse_mm, "max_mm": self.max_mm,
                "interocular_mm": self.interocular_mm, "n_points": self.n_points, "init": self.init,
                "icp_iterations": self.icp_iterations}

    def printed(self) -> list[str]:
        """The lines facenb prints (no official scorer, so no official output format exists)."""
        return [f"Florence ({self.protocol}): NME {self.nme_percent:.4f} % of {self.interocular_mm:.2f} mm, "
                f"mean {self.mean_mm:.4f} mm",
                f"median {self.median_mm:.4f} mm, std {self.std_mm:.4f} mm, rmse {self.rmse_mm:.4f} mm, "
                f"{self.n_points} points, init {self.init}, {self.icp_iterations} ICP iterations"]

    def to_frame(self):
        """One-row DataFrame of :meth:`summary`."""
        import pandas as pd

        return pd.DataFrame([self.summary()])


def _check_points(a, what: str, n: int | None = None) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or (n is not None and x.shape[0] != n) or len(x) == 0:
        want = f"({n}, 3)" if n else "(n, 3)"
        raise InputError(f"{what} must be a {want} array, got shape {x.shape}")
    if not np.isfinite(x).all() and n is None:
        raise InputError(f"{what} hold non-finite values", None, "repair the mesh")
    return x


def evaluate(gt_vertices: np.ndarray, gt_faces: np.ndarray | None, gt_landmarks68: np.ndarray,
             pred_vertices: np.ndarray, pred_faces: np.ndarray | None,
             options: FlorenceOptions = OFFICIAL, *, pred_landmarks68: np.ndarray | None = None,
             subject: int | None = None) -> FlorenceResult:
    """Score one prediction against one MICC ground-truth scan.

    Parameters
    ----------
    gt_vertices : (n, 3) float, mm
        The scan. ``gt_faces`` ``(k, 3)`` int (may be None/empty for ``distance='vertex'`` with ``gt_to_pred``).
    gt_landmarks68 : (68, 3) float, mm
        iBUG-68 landmarks of the scan (the public GANFit labels: :func:`load_scan_landmarks`). Landmarks not used
        by the protocol (crop centre 30, eye corners 36/45, ``init_landmarks``) may be NaN.
    pred_vertices : (m, 3) float
        The prediction (mm, or any unit with ``init_scale``/``icp_scale``); ``pred_faces`` ``(j, 3)`` int.
    options : FlorenceOptions
        Protocol (default :data:`OFFICIAL` = the VRN/PRNet protocol).
    pred_landmarks68 : (68, 3) float, optional
        The prediction's iBUG-68 landmarks for the initial landmark alignment.
    subject : int, optional
        MICC subject number (GANFit's tight crop of subject 28).

    Returns
    -------
    FlorenceResult
    """
    o = options
    G = _check_points(gt_vertices, "ground-truth vertices")
    S = _check_points(pred_vertices, "predicted vertices")
    L = _check_points(gt_landmarks68, "ground-truth landmarks", 68)
    need = {36, 45, o.crop_center} | (set(o.init_landmarks) if pred_landmarks68 is not None else set())
    if not np.isfinite(L[sorted(need)]).all():
        raise InputError(f"ground-truth landmarks {sorted(need)} must be finite for this protocol")
    iod = interocular_distance(L)
    if not iod > 0:
        raise InputError("the ground truth's outer eye corners (iBUG 36, 45) coincide", None, "check the landmarks")
    gf = None if gt_faces is None else np.asarray(gt_faces, dtype=np.int64).reshape(-1, 3)
    pf = None if pred_faces is None else np.asarray(pred_faces, dtype=np.int64).reshape(-1, 3)
    for f, v, what in ((gf, G, "ground-truth"), (pf, S, "predicted")):
        if f is not None and len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise InputError(f"{what} faces index vertices outside 0..{len(v) - 1}")

    crop = crop_mask(G, L, o.radius_for(subject), o.crop_center)
    if not crop.any():
        raise InputError(f"no scan vertex within {o.radius_for(subject)} mm of landmark {o.crop_center}", None,
                         "check that the landmarks belong to this scan (same units and frame)")
    P = G[crop]

    # initial alignment (prediction -> scan frame)
    init = o.init
    if init == "auto":
        init = "landmarks" if pred_landmarks68 is not None else "centroid"
    T0 = np.eye(4)
    if init == "landmarks":
        if pred_landmarks68 is None:
            raise InputError("init='landmarks' needs the prediction's 68 landmarks", None,
                             "pass pred_landmarks68 (--pred-landmarks) or use init='centroid'")
        PL = _check_points(pred_landmarks68, "predicted landmarks", 68)
        idx = list(o.init_landmarks)
        if not np.isfinite(PL[idx]).all():
            raise InputError(f"predicted landmarks {idx} must be finite")
        T0 = procrustes(L[idx], PL[idx], scaling=o.init_scale, reflection=False).matrix
    elif init == "centroid":
        T0[:3, 3] = P.mean(axis=0) - S.mean(axis=0)

    directions = ("gt_to_pred", "pred_to_gt") if o.correspondence == "symmetric" else (o.correspondence,)
    kind_icp = "surface" if o.icp == "point_to_surface" else "vertex"
    r_pred = o.radius_for(subject)

    def pred_subset(T):
        if r_pred is None:
            return np.ones(len(S), dtype=bool)
        return np.linalg.norm(apply_transform(T, S) - L[o.crop_center], axis=1) <= r_pred

    targets: dict[tuple[str, str], _Target] = {}

    def target(which: str, kind: str) -> _Target:
        key = (which, kind)
        if key not in targets:
            if which == "pred":
                targets[key] = _Target(S, pf, kind, "prediction")
            else:
                targets[key] = _Target(G, gf, kind, "ground-truth scan")
        return targets[key]

    runs = {}
    iters = 0
    pred_mask = np.zeros(len(S), dtype=bool)
    for measured in directions:
        icp_dir = o.icp_direction if (o.icp_direction is not None and o.correspondence != "symmetric") else measured
        pm = pred_subset(T0)
        if icp_dir == "pred_to_gt" or measured == "pred_to_gt":
            if not pm.any():
                raise InputError(f"no predicted vertex within {r_pred} mm of the scan's landmark {o.crop_center} "
                                 "after the initial alignment", None,
                                 "check the prediction's units and landmarks, or use init='landmarks'")
        T = T0
        if o.icp != "none" and o.icp_max_iter > 0:
            V = S[pm]
            pred_t = target("pred", kind_icp) if icp_dir == "gt_to_pred" else None
            gt_t = target("gt", kind_icp) if icp_dir == "pred_to_gt" else None
            T, n_it = _icp(icp_dir, T0, P, V, pred_t, gt_t, o.icp_scale, int(o.icp_max_iter), float(o.icp_tol_mm))
            iters = max(iters, n_it)
        # correspondences under the ICP pose T; distances under T (aligned) or the initial pose T0 (VRN)
        T_err = T if o.error_frame == "aligned" else T0
        if measured == "gt_to_pred":
            q_local = target("pred", o.distance).closest(apply_transform(_inverse(T), P))
            src, q = P, apply_transform(T_err, q_local)
        else:
            pm = pred_subset(T)
            if not pm.any():
                raise InputError("no predicted vertex inside the crop after the alignment", None,
                                 "check the prediction's units and landmarks")
            pred_mask = pm
            q = target("gt", o.distance).closest(apply_transform(T, S[pm]))
            src = apply_transform(T_err, S[pm])
        runs[measured] = (np.linalg.norm(src - q, axis=1), T)

    if o.correspondence == "symmetric":
        d_f, T_f = runs["gt_to_pred"]
        d_r, T_r = runs["pred_to_gt"]
        mean = 0.5 * (float(d_f.mean()) + float(d_r.mean()))
        alld = np.concatenate([d_f, d_r])
        dist, dist_rev, T, T_rev = d_f, d_r, T_f, T_r
    else:
        dist, T = runs[o.correspondence]
        alld, dist_rev, T_rev = dist, None, None
        mean = float(dist.mean())
    nme = 100.0 * mean / iod
    score, unit = (nme, "percent") if o.normaliser == "outer_interocular" else (mean, "mm")
    return FlorenceResult(
        protocol=o.protocol, score=score, score_unit=unit, nme_percent=nme, mean_mm=mean,
        median_mm=float(np.median(alld)), std_mm=float(np.std(alld)), rmse_mm=float(np.sqrt(np.mean(alld ** 2))),
        max_mm=float(alld.max()), interocular_mm=iod, n_points=int(alld.size), distances=dist,
        distances_reverse=dist_rev, crop=crop, pred_crop=pred_mask, transform=T, transform_reverse=T_rev,
        init_transform=T0, init=init, icp_iterations=iters, options=o)


def compare_protocols(gt_vertices, gt_faces, gt_landmarks68, pred_vertices, pred_faces, *,
                      pred_landmarks68=None, variants: dict[str, FlorenceOptions] | None = None):
    """Score the same pair under several options; a DataFrame, one row per variant (default: each preset and
    the PRNet preset with one field changed at a time)."""
    import pandas as pd

    if variants is None:
        variants = {
            "prnet (default)": PRNET,
            "prnet, no crop": PRNET.with_(crop_radius_mm=None),
            "prnet, crop 70 mm": PRNET.with_(crop_radius_mm=70.0),
            "prnet, point-to-surface distance": PRNET.with_(distance="surface"),
            "prnet, pred -> gt distances": PRNET.with_(correspondence="pred_to_gt"),
            "prnet, symmetric": PRNET.with_(correspondence="symmetric"),
            "prnet, similarity ICP": PRNET.with_(icp_scale=True, init_scale=True),
            "prnet, distances after the ICP": PRNET.with_(error_frame="aligned"),
            "prnet, no ICP": PRNET.with_(icp="none"),
            "ganfit": GANFIT,
            "m3dfb (E1)": M3DFB,
        }
    rows = []
    for name, opts in variants.items():
        r = evaluate(gt_vertices, gt_faces, gt_landmarks68, pred_vertices, pred_faces, opts,
                     pred_landmarks68=pred_landmarks68)
        rows.append({"variant": name, **r.summary()})
    return pd.DataFrame(rows).set_index("variant")


# ------------------------------------------------------------------------------------------ dataset mode
_MESH_EXT = (".obj", ".ply")
_LMK_EXT = (".ljson", ".txt", ".npy", ".pts")


def _subject_number(name: str) -> int | None:
    if name.startswith("subject_") and name[8:].isdigit():
        return int(name[8:])
    return None


def _scan_pair(florence_dir: Path, landmarks_dir: Path, subj: str, which: str) -> tuple[Path | None, Path | None]:
    folder = florence_dir / subj / "Model" / which / "obj"
    lfolder = landmarks_dir / "MICC_landmarks" / subj / "Model" / which / "obj"
    if not lfolder.is_dir():
        lfolder = landmarks_dir / subj / "Model" / which / "obj"
    lmk = sorted(lfolder.glob("*.ljson")) if lfolder.is_dir() else []
    if not lmk:
        return None, None
    scans = [folder / (lmk[0].stem + e) for e in _MESH_EXT if (folder / (lmk[0].stem + e)).is_file()]
    if not scans and folder.is_dir():
        scans = sorted(p for p in folder.iterdir() if p.suffix.lower() in _MESH_EXT)
    return (scans[0] if scans else folder / (lmk[0].stem + ".obj")), lmk[0]


def dataset_items(florence_dir: str | Path, predictions_dir: str | Path, landmarks_dir: str | Path | None = None,
                  options: FlorenceOptions = OFFICIAL):
    """Runner items (``facenb.runner.Item``), one per ``subject_NN/<setting>`` prediction.

    Every subject with landmarks (105 frontal scans of 53 subjects) and every prediction mesh under
    ``predictions_dir/subject_NN/`` becomes an item keyed ``subject_NN/<stem>``; a subject with landmarks but no
    prediction for a setting seen elsewhere is an item with ``missing`` set. See the module docstring for the
    layout.
    """
    from facenb.runner import Item

    fd, pd_ = Path(florence_dir), Path(predictions_dir)
    if not fd.is_dir():
        raise InputError("Florence (MICC) folder not found", fd, "point --dataset at the licensed MICC release")
    if not pd_.is_dir():
        raise InputError("predictions folder not found", pd_, "give --predictions DIR (subject_NN/<setting>.obj)")
    if landmarks_dir is None:
        from facenb import data

        landmarks_dir = data.locate("florence_micc_landmarks")
        if landmarks_dir is None:
            raise InputError("the florence_micc_landmarks dataset is not available", None,
                             "run `facenb data fetch florence_micc_landmarks` or pass --landmarks DIR")
    ld = Path(landmarks_dir)
    root = ld / "MICC_landmarks" if (ld / "MICC_landmarks").is_dir() else ld
    subjects = sorted(p.name for p in root.glob("subject_*") if p.is_dir())
    if not subjects:
        raise InputError("no subject_NN folders in the landmarks folder", ld,
                         "point it at the florence_micc_landmarks dataset (MICC_landmarks/subject_NN/...)")
    preds: dict[str, dict[str, Path]] = {}
    settings: set[str] = set()
    for s in subjects:
        d = pd_ / s
        found = {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in _MESH_EXT} if d.is_dir() else {}
        preds[s] = found
        settings |= set(found)
    if not settings:
        raise InputError("no prediction meshes found", pd_, "write subject_NN/<setting>.obj (e.g. PTZ-Indoor.obj)")
    items = []
    for s in subjects:
        scans = {w: _scan_pair(fd, ld, s, w) for w in ("frontal1", "frontal2")}
        wanted = ("frontal1", "frontal2") if options.scans in ("min", "mean") else (options.scans,)
        pairs = [(w, *scans[w]) for w in wanted if scans[w][1] is not None]
        for setting in sorted(settings):
            key = f"{s}/{setting}"
            mesh = preds[s].get(setting)
            params = {"subject": s, "setting": setting}
            if not pairs:  # no landmarks for the required scan (public labels: subject_30 has no frontal2)
                if mesh is not None:
                    items.append(Item(key, (), params, f"no {'/'.join(wanted)} scan landmarks for {s} in {root}"))
                continue
            if mesh is None:
                items.append(Item(key, (), params, f"missing prediction {pd_ / s / (setting + '.obj')}"))
                continue
            lmk = next((mesh.with_suffix(e) for e in _LMK_EXT if mesh.with_suffix(e).is_file()), None)
            absent = [str(p) for _, p, _ in pairs if not p.is_file()]
            if absent:
                items.append(Item(key, (), params, f"missing scan {absent[0]}"))
                continue
            inputs = [mesh] + ([lmk] if lmk else []) + [x for _, sc, lm in pairs for x in (sc, lm)]
            params.update(pred=str(mesh), pred_landmarks=str(lmk) if lmk else None,
                          scans=[[w, str(sc), str(lm)] for w, sc, lm in pairs])
            items.append(Item(key, tuple(inputs), params))
    return items


def score_one(item, settings: dict) -> dict:
    """Runner plug-in: score ``item`` (from :func:`dataset_items`) with ``settings['options']`` (a dict of
    :class:`FlorenceOptions` fields). Returns scalars plus per-scan scores."""
    from facenb.io import load_mesh

    opts = FlorenceOptions(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in settings["options"].items()})
    p = item.params
    pred = load_mesh(p["pred"])
    pl = load_scan_landmarks(p["pred_landmarks"]) if p.get("pred_landmarks") else None
    subj = _subject_number(p["subject"])
    per = {}
    for which, scan_path, lmk_path in p["scans"]:
        scan = load_mesh(scan_path, require_faces=opts.distance == "surface" or opts.icp == "point_to_surface")
        lm = load_scan_landmarks(lmk_path)
        per[which] = evaluate(scan.vertices, scan.faces, lm, pred.vertices, pred.faces, opts, pred_landmarks68=pl,
                              subject=subj)
    if opts.scans == "min":
        best = min(per.values(), key=lambda r: r.score)
        out = best.summary()
        out["scan"] = [w for w, r in per.items() if r is best][0]
    elif opts.scans == "mean":
        out = {k: float(np.mean([r.summary()[k] for r in per.values()]))
               for k in ("score", "nme_percent", "mean_mm", "median_mm", "std_mm", "rmse_mm", "max_mm",
                         "interocular_mm")}
        out.update(protocol=opts.protocol, score_unit=next(iter(per.values())).score_unit, scan="mean",
                   n_points=int(sum(r.n_points for r in per.values())), init=next(iter(per.values())).init,
                   icp_iterations=max(r.icp_iterations for r in per.values()))
    else:
        out = per[opts.scans].summary()
        out["scan"] = opts.scans
    for w, r in per.items():
        out[f"score_{w}"] = r.score
    out["subject"], out["setting"] = p["subject"], p["setting"]
    return out


class DatasetResult(NamedTuple):
    """Dataset mode result: ``rows`` (one per scored item), ``per_setting`` (setting -> mean, std, n of the
    score), ``overall`` (mean, std, n over all scored items), the runner's ``run`` and the output folder."""

    rows: list
    per_setting: dict
    overall: dict
    run: object
    out_dir: Path
    options: FlorenceOptions

    def summary(self) -> dict:
        return {"protocol": self.options.protocol, **{f"overall_{k}": v for k, v in self.overall.items()},
                **{f"{s}_{k}": v for s, d in self.per_setting.items() for k, v in d.items()}}

    def printed(self) -> list[str]:
        """Overall and per-setting lines."""
        unit = "%" if self.options.normaliser == "outer_interocular" else "mm"
        lines = [f"Florence ({self.options.protocol}): {self.overall['mean']:.4f} {unit} "
                 f"(std {self.overall['std']:.4f}) over {self.overall['n']} predictions"]
        for s, d in self.per_setting.items():
            lines.append(f"  {s:20s} {d['mean']:.4f} +- {d['std']:.4f} {unit} (n={d['n']})")
        return lines

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)


def _stats(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def evaluate_dataset(florence_dir: str | Path, predictions_dir: str | Path, out: str | Path, *,
                     landmarks_dir: str | Path | None = None, options: FlorenceOptions = OFFICIAL,
                     executor: str = "serial", jobs: int = 1, progress: bool = True) -> DatasetResult:
    """Score every ``subject_NN/<setting>`` prediction through :func:`facenb.runner.run` (cached, resumable).

    Per setting and overall: mean and (population) std over the scored predictions of the headline score
    (GANFit's ``scores.txt``: mean +- std per video setting). Writes ``florence_summary.json``/``.csv`` in ``out``.
    """
    from facenb import runner

    items = dataset_items(florence_dir, predictions_dir, landmarks_dir, options)
    settings = {"benchmark": "florence", "options": {k: (list(v) if isinstance(v, tuple) else v)
                                                     for k, v in asdict(options).items()}}
    res = runner.run(items, score_one, settings, Path(out), executor=executor, jobs=jobs, progress=progress,
                     desc="florence")
    rows = [dict(o.value, key=o.key) for o in res.scored()]
    per_setting = {}
    for s in sorted({r["setting"] for r in rows}):
        per_setting[s] = _stats([r["score"] for r in rows if r["setting"] == s])
    overall = _stats([r["score"] for r in rows])
    result = DatasetResult(rows, per_setting, overall, res, Path(out), options)
    runner.write_summary(Path(out), "florence", result.summary(), rows)
    return result


def claim_values(result: DatasetResult, claims) -> dict:
    """Recomputed values of published Florence claims from a dataset run (for the paper notebooks' tier R).

    Parameters
    ----------
    result : DatasetResult
        :func:`evaluate_dataset` over the method's predictions.
    claims : DataFrame or iterable of mappings
        Seed claims with ``id``, ``benchmark``, ``metric``, ``statistic`` (e.g. ``results.seed_claims_frame``).
        ``nme_3d_reconstruction`` claims take each prediction's ``nme_percent``, ``shape_error`` claims its
        ``mean_mm``; ``mean`` or ``std`` (population) over the scored predictions.

    Returns
    -------
    dict claim id -> (value, "R", source)
    """
    recs = claims.to_dict(orient="records") if hasattr(claims, "to_dict") else list(claims)
    out = {}
    for c in recs:
        col = {"nme_3d_reconstruction": "nme_percent", "shape_error": "mean_mm"}.get(c.get("metric"))
        if c.get("benchmark") != "florence" or col is None or c.get("statistic") not in ("mean", "std"):
            continue
        vals = np.array([r[col] for r in result.rows], dtype=np.float64)
        if vals.size == 0:
            continue
        value = float(vals.mean() if c["statistic"] == "mean" else vals.std())
        out[c["id"]] = (value, "R", f"facenb.benchmarks.florence (protocol {result.options.protocol}) on "
                                    f"{vals.size} predictions in {result.out_dir}")
    return out
