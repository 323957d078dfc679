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
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.spatial import cKDTree

from facenb.distance import TrimeshSurface
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
    """

    vertices: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    iterations: int
    errors: tuple


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
    while True:
        corr, _ = surface.query(scan64, pv, None if it == 0 else r_cum, None if it == 0 else t_cum)
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
    return RigidICPResult(pv, r_cum, t_cum, it, tuple(errors))


# =============================================================================================================
# step 4: the scan region as trimesh(process=True) holds it; non-rigid ICP; the region error
# =============================================================================================================
def process_scan(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``trimesh.Trimesh(v, f, process=True)`` of trimesh 3.12: drop unreferenced vertices and merge vertices
    equal to 8 decimals (first occurrence kept, order kept).

    Returns ``(vertices (k, 3) float64, faces (m, 3) int64)``.
    """
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
    return v[keep], remap[f]


def _edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges ``(e, 2)``, ``i < j``, of a triangle list (self-loops of degenerate faces dropped)."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [0, 2]], f[:, [1, 2]]])
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]
    return np.unique(e, axis=0)


class _BlockSystem:
    """``K = α² (L ⊗ diag(g²)) + blockdiag(c_i d_i d_i^T)`` in CSC with a fixed pattern (4 unknowns per vertex)."""

    def __init__(self, n: int, edges: np.ndarray):
        self.n = n
        self.deg = np.bincount(edges.ravel(), minlength=n).astype(np.float64)
        k4 = np.arange(4)
        v = np.arange(n)
        dr = (4 * v[:, None, None] + k4[None, :, None]).repeat(4, axis=2).ravel()
        dc = (4 * v[:, None, None] + k4[None, None, :]).repeat(4, axis=1).ravel()
        i, j = edges[:, 0], edges[:, 1]
        er = np.concatenate([(4 * i[:, None] + k4).ravel(), (4 * j[:, None] + k4).ravel()])
        ec = np.concatenate([(4 * j[:, None] + k4).ravel(), (4 * i[:, None] + k4).ravel()])
        rows = np.concatenate([dr, er])
        cols = np.concatenate([dc, ec])
        self._order = np.lexsort((rows, cols))
        self._indices = rows[self._order].astype(np.int32)
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=4 * n))]).astype(np.int32)
        self._n_edge = len(edges)
        self._edge_k = np.tile(k4, 2 * len(edges))

    def matrix(self, alpha: float, g: np.ndarray, c: np.ndarray, d: np.ndarray) -> sp.csc_matrix:
        g2 = np.asarray(g, dtype=np.float64) ** 2
        diag = (alpha * alpha) * self.deg[:, None, None] * np.diag(g2)[None] + c[:, None, None] * (
            d[:, :, None] * d[:, None, :])
        vals = np.concatenate([diag.ravel(), -(alpha * alpha) * g2[self._edge_k]])
        n4 = 4 * self.n
        return sp.csc_matrix((vals[self._order], self._indices, self._indptr), shape=(n4, n4))


def _factor(k: sp.csc_matrix):
    """SuperLU factorisation of the SPD block system (symmetric mode, no pivoting, minimum-degree ordering)."""
    return spla.splu(k, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, relax=8, panel_size=8,
                     options=dict(SymmetricMode=True))


def _pcg(k: sp.csc_matrix, b: np.ndarray, lu, x0: np.ndarray, tol: float = 1e-12, maxit: int = 100
         ) -> tuple[np.ndarray | None, int]:
    """Conjugate gradients on ``k x = b`` (3 columns at once) preconditioned by the factorisation ``lu``; stops when
    every column's preconditioned residual norm is below ``tol`` times its solution's energy norm. Returns
    ``(None, its)`` when it did not converge."""
    kr = sp.csr_matrix((k.data, k.indices, k.indptr), shape=k.shape)  # K is symmetric: its CSC arrays are its CSR
    x = x0.copy()
    r = b - kr @ x
    z = lu.solve(r)
    pdir = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for it in range(maxit + 1):
        energy = np.abs(np.einsum("ij,ij->j", x, b - r))  # x^T K x
        if np.all(np.sqrt(np.abs(rz)) <= tol * np.sqrt(np.maximum(energy, 1e-300))):
            return x, it
        if it == maxit:
            break
        kp = kr @ pdir
        a = rz / np.einsum("ij,ij->j", pdir, kp)
        x += a * pdir
        r -= a * kp
        z = lu.solve(r)
        rz_new = np.einsum("ij,ij->j", r, z)
        pdir = z + (rz_new / rz) * pdir
        rz = rz_new
    return None, maxit


def _keypoint_stage_solve(n: int, edges: np.ndarray, alpha: float, g: np.ndarray, kp_idx: np.ndarray,
                          kp_w: float, d: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Exact minimiser ``X (n, 4, 3)`` of ``α² ||(M ⊗ G) X||² + Σ_k w² |d_k^T X_k - p_k|²`` (keypoint-only stage).

    With ``r_k = w² (d_k^T X_k - p_k)`` the normal equations read ``α² g_a² L X^(a) = -Σ_k e_k d_ka r_k``; a
    particular solution comes from the grounded scalar Laplacian (one vertex per connected component fixed),
    the free constants ``μ`` per component from the bordered system
    ``[[S + I/w², -D], [D^T, 0]] [R; μ] = [-P; 0]``, ``S_kj = Y_kj Σ_a d_ka d_ja / (α² g_a²)``.
    """
    from scipy.sparse.csgraph import connected_components

    i, j = edges[:, 0], edges[:, 1]
    adj = sp.csr_matrix((np.ones(len(edges)), (i, j)), shape=(n, n))
    ncomp, label = connected_components(adj, directed=False)
    lap = sp.csr_matrix((np.concatenate([-np.ones(len(edges)), -np.ones(len(edges))]),
                         (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))
    deg = np.bincount(edges.ravel(), minlength=n).astype(np.float64)
    ground = np.array([np.nonzero(label == c)[0][0] for c in range(ncomp)])
    diag = deg.copy()
    diag[ground] += 1.0
    lg = (lap + sp.diags(diag)).tocsc()
    kp_comp = label[kp_idx]
    if len(np.unique(kp_comp)) != ncomp:
        raise np.linalg.LinAlgError("a connected component of the scan region holds no keypoint: the keypoint stage "
                                    "of the official non-rigid ICP is singular")
    nk = len(kp_idx)
    rhs = np.zeros((n, nk))
    rhs[kp_idx, np.arange(nk)] = 1.0
    y = spla.splu(lg, permc_spec="MMD_AT_PLUS_A").solve(rhs)  # (n, nk)
    lam = 1.0 / (alpha * alpha * np.asarray(g, dtype=np.float64) ** 2)  # (4,)
    dk = d[kp_idx]  # (nk, 4)
    s = y[kp_idx] * ((dk * lam) @ dk.T)
    dc = np.zeros((nk, 4 * ncomp))
    for c in range(ncomp):
        m = kp_comp == c
        dc[m, 4 * c:4 * c + 4] = dk[m]
    top = np.hstack([s + np.eye(nk) / (kp_w * kp_w), -dc])
    bottom = np.hstack([dc.T, np.zeros((4 * ncomp, 4 * ncomp))])
    sol = np.linalg.solve(np.vstack([top, bottom]), np.vstack([-targets, np.zeros((4 * ncomp, 3))]))
    r = sol[:nk]
    mu = sol[nk:].reshape(ncomp, 4, 3)
    x = np.empty((n, 4, 3))
    for a in range(4):
        x[:, a, :] = -lam[a] * (y @ (dk[:, a:a + 1] * r)) + mu[label, a, :]
    return x


class NonRigidResult(NamedTuple):
    """Result of :func:`nonrigid_icp`.

    Attributes
    ----------
    vertices : (n, 3) float64
        The deformed scan vertices.
    steps : tuple of int
        Linear solves per stage.
    deltas : tuple of float
        ``|X - X_prev|_F`` at every stopping test.
    """

    vertices: np.ndarray
    steps: tuple
    deltas: tuple


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
    src = np.asarray(scan_vertices, dtype=np.float64)
    n = len(src)
    dst = np.asarray(targets, dtype=np.float64)
    edges = _edges(scan_faces)
    system = _BlockSystem(n, edges)
    tree = cKDTree(dst, leafsize=100)
    with_kp = keypoint_index is not None
    if with_kp:
        kp_idx = np.asarray(keypoint_index, dtype=np.int64)
        kp_tgt = np.asarray(keypoint_targets, dtype=np.float64)
        stages = [(_NICP_ALPHA_KP, _NICP_EPSILON * 2.0, (2.0, 2.0, 3.0, _NICP_GAMMA * 2), True)]
        stages += [(_NICP_ALPHA * np.exp(-0.5 * (k - 1)), _NICP_EPSILON * pow(0.5, k - 1), (1.0, 1.0, 1.0, _NICP_GAMMA),
                    False) for k in (1, 2, 3)]
    else:
        stages = [(_NICP_ALPHA * np.exp(-0.5 * k), _NICP_EPSILON * pow(0.5, k), (1.0, 1.0, 1.0, _NICP_GAMMA), False)
                  for k in (0, 1, 2)]
    cur = src.copy()
    x_prev = np.zeros((4 * n, 3))
    x = np.ones((4 * n, 3))
    count = 0
    steps, deltas = [], []
    for alpha, eps, g, kp_only in stages:
        g = np.array(g, dtype=np.float32).astype(np.float64)
        step = 0
        lu = None
        while True:
            delta = float(np.linalg.norm(x - x_prev))
            deltas.append(delta)
            if delta <= eps or (with_kp and step > _NICP_MAX_STEP):
                break
            x_prev = x
            dist, idx = tree.query(cur, k=1)
            dist32 = np.asarray(dist, dtype=np.float32)
            nn = dst[idx]
            c32 = cur.astype(np.float32).astype(np.float64)
            d = np.concatenate([c32, np.ones((n, 1))], axis=1)
            threshold = max(np.mean(dist32) * 2, 1)
            w = (dist32 < threshold).astype(np.float64)
            kw = np.zeros(n)
            full = nn
            if with_kp:
                kw[kp_idx] = _NICP_KP_WEIGHT if kp_only else _NICP_KP_WEIGHT * np.exp(-0.9 * count) / 10.0
                full = nn.copy()
                full[kp_idx] = kp_tgt
            if kp_only:
                # keypoint-only stage: exact closed form (duplicate keypoint vertices: the last target wins)
                uk = np.unique(kp_idx)
                xb = _keypoint_stage_solve(n, edges, alpha, g, uk, _NICP_KP_WEIGHT, d, full[uk])
                x = xb.reshape(4 * n, 3)
            else:
                c = w * w + kw * kw
                target = (w * w)[:, None] * nn + (kw * kw)[:, None] * full
                rhs = (d[:, :, None] * target[:, None, :]).reshape(4 * n, 3)
                k = system.matrix(alpha, g, c, d)
                x_new = None
                if lu is not None:
                    x_new, _ = _pcg(k, rhs, lu, x_prev)
                if x_new is None:
                    lu = _factor(k)
                    x_new = lu.solve(rhs)
                x = x_new
            xb = x.reshape(n, 4, 3)
            cur = ((c32[:, 0:1] * xb[:, 0] + c32[:, 1:2] * xb[:, 1]) + c32[:, 2:3] * xb[:, 2]) + xb[:, 3]
            step += 1
            count += 1
            if kp_only:
                break
        steps.append(step)
    return NonRigidResult(cur, tuple(steps), tuple(deltas))


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


def load_subject(prediction: str | Path, keypoints_dir: str | Path, regions_dir: str | Path,
                 scale: float | np.ndarray | str | Path, template: RealyTemplate,
                 mask: np.ndarray | str | Path | None = None) -> SubjectInputs:
    """Read one subject in the official folder layout and validate it.

    Parameters
    ----------
    prediction : path
        ``<PRED_DIR>/<id>[_suffix].obj`` -- the subject id is the integer before the first ``_``.
    keypoints_dir : path
        ``REALY_HIFI3D_keypoints`` (``<id>.obj``: 85 ``v`` lines).
    regions_dir : path
        ``REALY_scan_region`` (``<id>/{nose,mouth,forehead,cheek}.obj``).
    scale : float, array or path
        Millimetres per unit of this subject, or the whole ``metrical_scale.txt`` (array or file; line ``id``).
    template : RealyTemplate
    mask : array or path, optional
        Template vertex mask (0/1 per vertex).

    Raises
    ------
    InputError
        Missing files (missing subject), vertex count different from the template, NaN/Inf vertices, keypoint
        file without 85 points, subject id outside the scale file.
    """
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
    kp = read_obj(kp_path, need_faces=False).vertices
    if kp.shape != (N_KEYPOINTS, 3):
        raise InputError(f"expected {N_KEYPOINTS} keypoints, found {len(kp)}", kp_path,
                         "use REALY_HIFI3D_keypoints/<id>.obj from the REALY release")
    rdir = Path(regions_dir) / str(sid)
    if not rdir.is_dir():
        raise InputError(f"no scan regions for subject {sid} (missing subject)", rdir,
                         "check --regions (REALY_scan_region/) and the prediction's file name")
    regions = {r: read_obj(rdir / f"{r}.obj") for r in REGIONS}
    pred = read_obj(pp)
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
    sv, sf = process_scan(scan.vertices, scan.faces)
    corr, _ = masked_surface.query(sv, pv, r_map, t_map)
    kname = _NONRIGID_KEYPOINTS[region]
    if kname is None:
        nr = nonrigid_icp(sv, sf, corr)
    else:
        kidx = list(KEYPOINT_REGIONS[kname])
        pk = barycentric_keypoints(pv, template)[kidx]
        _, sidx = cKDTree(sv).query(np.asarray(gt_keypoints, np.float32)[kidx].astype(np.float64))
        nr = nonrigid_icp(sv, sf, corr, np.asarray(sidx, np.int64), pk)
    q, _ = masked_surface.query(nr.vertices, pv, r_map, t_map)
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
    with _single_threaded_blas():
        return _evaluate_subject(inputs, template, regions, jobs)


def _single_threaded_blas():
    """BLAS limited to one thread: the protocol's dense operations are small, and idle OpenBLAS threads spinning
    next to SuperLU (or next to the other region worker) cost more CPU than they save."""
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing or no BLAS found: run as is
        import contextlib

        return contextlib.nullcontext()


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
