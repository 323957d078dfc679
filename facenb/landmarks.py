"""Landmark sets and conversions between them.

Index tables (0-based) map a protocol's landmarks onto a source annotation:

* :data:`NOW7_FROM_IBUG68`: the 7 NoW landmarks (right-eye outer/inner, left-eye inner/outer, subnasale, right
  and left mouth corners; "right" = the subject's right) in the iBUG-68 annotation.
* :data:`NOW7_FROM_MENPO_JAMES`: the same 7 in the menpo LJSON grouping of ``james.ljson`` (menpo3d sample data),
  whose 68 points are ordered chin, leye, reye, leyebrow, nose, reyebrow, mouth.
"""
from __future__ import annotations

import numpy as np

from facenb.errors import InputError

__all__ = ["NOW7_FROM_IBUG68", "NOW7_FROM_MENPO_JAMES", "select", "outer_eye_distance"]

NOW7_FROM_IBUG68 = (36, 39, 42, 45, 33, 48, 54)
NOW7_FROM_MENPO_JAMES = (17, 20, 23, 26, 40, 48, 54)


def select(landmarks: np.ndarray, indices: tuple[int, ...], where: str | None = None) -> np.ndarray:
    """Rows ``indices`` of ``landmarks (k, d)``; raises :class:`InputError` if the set is too small."""
    lm = np.asarray(landmarks)
    if lm.ndim != 2 or lm.shape[0] <= max(indices):
        raise InputError(f"landmark set has shape {lm.shape}; need at least {max(indices) + 1} points", where,
                         "give the full source annotation (e.g. 68 iBUG points)")
    return lm[list(indices)]


def outer_eye_distance(now7: np.ndarray) -> float:
    """Distance between the outer eye corners of a NoW-ordered 7-point set (a face's natural size: ~90 mm)."""
    lm = np.asarray(now7, dtype=np.float64)
    return float(np.linalg.norm(lm[0] - lm[3]))


# =============================================================================================================
# landmarks from a known mesh topology (REALY's public barycentric keypoint files)
# =============================================================================================================
#: Topologies with a public REALY keypoint file (``czh-98/REALY@data/<NAME>.txt``; dataset ``realy_templates``),
#: and their vertex counts (the ``v`` lines of ``<NAME>.obj``, checked when a template is loaded).
TOPOLOGY_VERTICES: dict[str, int] = {"FLAME": 5023, "BFM09": 53215, "Deep3D": 35709, "3DDFA_v2": 38365,
                                     "HIFI3D": 20481}
TOPOLOGIES: tuple[str, ...] = tuple(TOPOLOGY_VERTICES)
#: The landmark sets :func:`from_topology` returns: REALY's 85 keypoints (the first 68 are iBUG-68, 0-based, then
#: 17 cheek points -- REALY README, "we extend 68 keypoints to 85"), the 68 iBUG points, the 7 NoW / Stirling ones.
POINT_SETS = ("now7", "ibug68", "realy85")

__all__ += ["TOPOLOGIES", "TOPOLOGY_VERTICES", "POINT_SETS", "from_topology", "identify_topology"]

_TOPOLOGY_CACHE: dict = {}


def _topology_template(name: str):
    """The REALY template (:class:`facenb.benchmarks.realy.RealyTemplate`) of a topology, loaded once."""
    from facenb.benchmarks import realy

    if name not in _TOPOLOGY_CACHE:
        tmpl = realy.load_template(name)
        if tmpl.n_vertices != TOPOLOGY_VERTICES[name]:
            raise InputError(f"template {name} has {tmpl.n_vertices} vertices, expected {TOPOLOGY_VERTICES[name]}",
                             tmpl.obj_path, "re-fetch it: `facenb data fetch realy_templates`")
        f = np.asarray(tmpl.faces, dtype=np.int64)
        # A quad (a, b, c, d) is split as (a, b, c), (a, c, d); a mesh saved with the other diagonal is the same
        # topology: accept (a, b, d), (b, c, d) for every consecutive pair of that form.
        pair = (f[:-1, 0] == f[1:, 0]) & (f[:-1, 2] == f[1:, 1])
        a, b, c, d = f[:-1, 0][pair], f[:-1, 1][pair], f[:-1, 2][pair], f[1:, 2][pair]
        alt = np.vstack([f, np.column_stack([a, b, d]), np.column_stack([b, c, d])])
        _TOPOLOGY_CACHE[name] = (tmpl, np.unique(_triangle_keys(alt, tmpl.n_vertices)), len(f))
    return _TOPOLOGY_CACHE[name]


def _triangle_keys(faces: np.ndarray, n: int) -> np.ndarray:
    """One int64 per triangle, independent of corner order (``n ** 3 < 2 ** 63`` for every topology here)."""
    f = np.sort(np.asarray(faces, dtype=np.int64).reshape(-1, 3), axis=1)
    return (f[:, 0] * n + f[:, 1]) * n + f[:, 2]


def _faces_match(name: str, faces: np.ndarray) -> tuple[bool, str]:
    """Whether ``faces`` are (a subset of at least half of) the topology's triangles; the reason if not."""
    tmpl, accepted, n_template = _topology_template(name)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(f) == 0:
        return False, "the mesh has no faces"
    if f.min() < 0 or f.max() >= tmpl.n_vertices:
        return False, "face indices out of range"
    keys = np.unique(_triangle_keys(f, tmpl.n_vertices))
    foreign = int((~np.isin(keys, accepted, assume_unique=True)).sum())
    if foreign:
        return False, f"{foreign} of its {len(keys)} triangles are not {name}'s (renumbered vertices or another mesh)"
    if len(keys) < n_template / 2:
        return False, f"it has only {len(keys)} of the {n_template} triangles of {name}"
    return True, ""


def identify_topology(vertices: np.ndarray, faces: np.ndarray, where: str | None = None) -> str:
    """Recognise a mesh's topology among :data:`TOPOLOGIES` by its vertex count and its face list.

    A topology matches when the vertex count equals the template's and every triangle (corner order and quad
    diagonal ignored) is one of the template's, covering at least half of them.

    Raises
    ------
    InputError
        No topology matches (unknown, renumbered or re-triangulated mesh), or more than one does.
    """
    n = int(np.asarray(vertices).shape[0])
    candidates = [t for t, k in TOPOLOGY_VERTICES.items() if k == n]
    if not candidates:
        raise InputError(f"unknown mesh topology: {n} vertices matches none of "
                         + ", ".join(f"{t} ({k})" for t, k in TOPOLOGY_VERTICES.items()), where,
                         "give the mesh's landmarks (--pred-landmarks) or save it in one of these topologies")
    matches, reasons = [], []
    for t in candidates:
        ok, why = _faces_match(t, faces)
        (matches if ok else reasons).append(t if ok else f"{t}: {why}")
    if len(matches) > 1:
        raise InputError(f"ambiguous mesh topology: matches {', '.join(matches)}", where,
                         "name the topology (--pred-topology NAME)")
    if not matches:
        raise InputError(f"mesh has the vertex count but not the faces of {'; '.join(reasons)}",
                         where, "save the mesh in the template's vertex order (trimesh: process=False), or give "
                         "its landmarks")
    return matches[0]


def from_topology(vertices: np.ndarray, topology: str, faces: np.ndarray | None = None, *, points: str = "now7",
                  where: str | None = None) -> np.ndarray:
    """Landmarks of a mesh in a known topology, from REALY's public barycentric keypoint files.

    Keypoint ``j`` of a mesh ``v`` is ``k_j = w0 v[f0] + w1 v[f1] + (1 - w0 - w1) v[f2]`` with row
    ``[t, w0, w1]`` of ``czh-98/REALY@data/<NAME>.txt`` and ``(f0, f1, f2)`` the template's triangle ``t``
    (official ``get_barycentric_coordinates``; quads split ``(a, b, c), (a, c, d)``). REALY's 85 keypoints are the
    68 iBUG points (0-based order) followed by 17 cheek points; the 7 NoW / Stirling landmarks are iBUG-68 points
    37, 40, 43, 46, 34, 49, 55 (1-based) = :data:`NOW7_FROM_IBUG68` -- exactly REALY's own ``seven_keypoints``.

    Parameters
    ----------
    vertices : (n, 3) float
        The mesh, any frame and unit, in the topology's vertex order.
    topology : str
        One of :data:`TOPOLOGIES` (case-insensitive), or ``"auto"`` (:func:`identify_topology`; needs ``faces``).
    faces : (k, 3) int, optional
        When given, checked against the topology (a renumbered mesh is refused).
    points : {'now7', 'ibug68', 'realy85'}
    where : str, optional
        Name used in error messages.

    Returns
    -------
    (7, 3), (68, 3) or (85, 3) float64, in the vertices' unit and frame.

    Raises
    ------
    InputError
        Unknown topology name or point set; vertex count or faces not those of the topology; ``auto`` without
        faces, or a mesh no topology (or more than one) matches; templates not available.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise InputError(f"vertices have shape {v.shape}, expected (n, 3)", where, "pass the mesh's vertex array")
    if points not in POINT_SETS:
        raise InputError(f"unknown landmark set {points!r}", where, "use one of " + ", ".join(POINT_SETS))
    names = {t.lower(): t for t in TOPOLOGIES}
    if str(topology).lower() == "auto":
        if faces is None:
            raise InputError("--pred-topology auto needs the mesh's faces", where,
                             "load the mesh with its faces, or name the topology")
        name = identify_topology(v, faces, where)
    else:
        name = names.get(str(topology).lower())
        if name is None:
            raise InputError(f"unknown topology {topology!r}", where, "use auto or one of " + ", ".join(TOPOLOGIES))
        if len(v) != TOPOLOGY_VERTICES[name]:
            raise InputError(f"mesh has {len(v)} vertices; topology {name} has {TOPOLOGY_VERTICES[name]}", where,
                             "name the mesh's own topology (or auto), or give its landmarks")
        if faces is not None:
            ok, why = _faces_match(name, faces)
            if not ok:
                raise InputError(f"mesh is not in topology {name}: {why}", where,
                                 "save the mesh in the template's vertex order (trimesh: process=False)")
    from facenb.benchmarks.realy import barycentric_keypoints

    k85 = barycentric_keypoints(v, _topology_template(name)[0])
    if points == "realy85":
        return k85
    if points == "ibug68":
        return k85[:68].copy()
    return k85[list(NOW7_FROM_IBUG68)]


# ----------------------------------------------------------------------------------- degenerate landmark sets
__all__ += ["SPREAD_MIN_RATIO", "check_spread"]

SPREAD_MIN_RATIO = 0.05
"""Smallest accepted ratio ``σ₂ / σ₁`` of the two largest singular values of a centred landmark set.

The similarity Procrustes fit (rotation, scale, translation from point pairs) is unique only when the centred
points span at least a plane (rank >= 2; a plane is enough since reflections are allowed, as in the NoW scorer).
7 identical points (rank 0) or collinear points (rank 1) leave the rotation about their line -- or everything --
undefined; a *nearly* collinear set leaves it ill-conditioned, so the cut is a ratio, not an exact rank. Real
face landmarks (eye corners, subnasale, mouth corners) have ``σ₂ / σ₁`` around 0.5 (about 90 mm across the
eyes against 40-50 mm from the eyes to the mouth); 0.05 refuses sets whose second extent is under ~5 % of the
first (e.g. under 4.5 mm for a 90 mm face), which no annotated face has. The ratio is invariant under any
similarity transform, so the check never depends on units, pose or position."""


def check_spread(landmarks: np.ndarray, where: str | None = None, what: str = "landmarks") -> None:
    """Raise :class:`InputError` if ``landmarks (k, 3)`` are identical, collinear or nearly so.

    The test is ``σ₂ < SPREAD_MIN_RATIO · σ₁`` (or ``σ₁ = 0``) for the singular values ``σ₁ >= σ₂ >= σ₃`` of
    the centred points ``L - mean(L)``: see :data:`SPREAD_MIN_RATIO` for the rationale.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or len(lm) < 3 or not np.isfinite(lm).all():
        return  # shape, count and finiteness have their own messages
    sv = np.linalg.svd(lm - lm.mean(axis=0), compute_uv=False)
    if sv[0] == 0.0:
        raise InputError(f"all {len(lm)} {what} are the same point: the landmark alignment is undefined", where,
                         "give the landmarks of distinct face points, in the protocol's order")
    if sv[1] < SPREAD_MIN_RATIO * sv[0]:
        raise InputError(f"the {len(lm)} {what} lie on (or within {sv[1] / sv[0]:.2g} of) a line: the landmark "
                         "alignment is undefined", where,
                         "give the landmarks of distinct face points (eye corners, nose, mouth corners)")
