"""Dense alignment and 3D-reconstruction NME on AFLW2000-3D: one function, every de facto variant an option.

PRNet (Feng et al., ECCV 2018) reports a dense 3D alignment NME of 4.40 % and a 3D face reconstruction NME of
3.9625 % on AFLW2000-3D. No official scorer exists: the papers that report such numbers use different
implementations, which differ in which dense points are compared, how z is handled, how points correspond,
whether and how the prediction is aligned first, and what the error is divided by (PRNet's own issues show users
unable to reproduce 4.40 %). :func:`dense_nme` makes each of these choices an explicit option
(:class:`DenseOptions`); every implementation facenb read is a named preset (:data:`PRESETS`).

The implementations read
------------------------
* ``XgTu/2DASL@95052f20`` ``evaluation/nme_for_alignment_dense_2d.m``, ``nme_for_alignment_dense_3d.m``,
  ``nme_for_3DReconstruction.m`` (+ ``3D_ICP-master/icp_process.m``, ``icp_process_xgtu.m``);
* ``MCG-NJU/SADRNet@a5e6fac9`` ``src/model/loss.py`` (``NME``, ``NME2D``, ``RecLoss`` with ``cp``);
* ``reshow/PRNet-PyTorch@7043cf58`` ``loss.py`` (``PRNError``: ``nme2d``, ``nme3d``, ``is_normalized=False``).

=========================  ======  ========  =====================  ==================  ==========================
preset                     dims    z         correspondences        alignment           normaliser
=========================  ======  ========  =====================  ==================  ==========================
``2dasl_dense_2d``         x, y    min       fixed (same vertex)    none                ``bbox2d_landmarks``
``2dasl_dense_3d``         x,y,z   min       fixed                  none                ``bbox2d_landmarks``
``2dasl_reconstruction``   x,y,z   min       fixed; every 50th      ``icp_rigid``       ``bbox2d_dense``
                                             vertex (1:50:53215)    (nearest-neighbour
                                                                    rotation, centroids
                                                                    removed, no scale)
``sadrnet_dense_3d``       x,y,z   mean      fixed (face region)    none                ``bbox2d_dense``
``sadrnet_dense_2d``       x, y    mean      fixed (face region)    none                ``bbox2d_dense``
``sadrnet_reconstruction`` x,y,z   as is     fixed (face region)    ``similarity_       ``interocular_3d``
                                                                    sadrnet``
``prnet_pytorch_nme3d``    x,y,z   mean      fixed (face region)    none                ``bbox2d_dense``
``prnet_pytorch_nme2d``    x, y    mean      fixed (face region)    none                ``bbox2d_dense``
``prnet_pytorch_bbox3d``   x,y,z   mean      fixed (face region)    none                ``bbox3d_diagonal``
=========================  ======  ========  =====================  ==================  ==========================

Options (:class:`DenseOptions`)
-------------------------------
``dims``            ``'2d'``: the error uses x, y; ``'3d'``: x, y, z.
``z``               ``'none'`` (as given), ``'min'`` (each set's z minus its own minimum: 2DASL), ``'mean'`` (each set's
                    z minus its own mean over the point set: SADRNet, PRNet-PyTorch). Applied before alignment.
``pred_z_scale``    multiplies the prediction's z before the z handling (1: as given; e.g. a crop-to-image scale when
                    a method outputs z in crop units).
``subsample``       keep every ``subsample``-th point of the point set (2DASL's reconstruction: 50) for the
                    alignment and the error; the normaliser uses the whole point set (as 2DASL does).
``correspondence``  ``'fixed'``: point ``i`` of the prediction is compared with point ``i`` of the ground truth (same
                    topology); ``'nearest'``: each ground-truth point with the nearest prediction point after the
                    alignment (any topology).
``alignment``       ``'none'``; ``'rigid'`` (least-squares rotation + translation on fixed correspondences, Kabsch);
                    ``'similarity'`` (least-squares scale, rotation, translation: Umeyama 1991);
                    ``'similarity_sadrnet'`` (SADRNet ``cp``: scale = ``sum_i ||g_i - g_0|| / sum_i ||p_i - p_0||``
                    around the *first* point, then the SVD rotation without a reflection check, translation of the
                    centroids); ``'icp_rigid'`` (2DASL: both sets centred, rotation from nearest-neighbour
                    correspondences (GT point -> nearest prediction point), repeated while the mean squared
                    nearest distance changes by more than ``icp_tol`` (0.01 px^2), at most ``icp_max_iter``).
``normalizer``      ``'bbox2d_landmarks'``: ``sqrt(w h)`` of the x/y box of the 68 GT landmarks (``gt_landmarks``);
                    ``'bbox2d_dense'``: ``sqrt(w h)`` of the x/y box of the dense GT point set;
                    ``'bbox3d_diagonal'``: ``sqrt(w^2 + h^2 + d^2)`` of its 3D box; ``'interocular_3d'``: the 3D
                    distance between the GT outer eye corners (iBUG 37 and 46, 1-based) of ``gt_landmarks``
                    ; ``'interocular_2d'``: the same in x, y.

Per image: ``NME = mean_i ||T(p_i) - g_i|| / L`` over the compared points (``T`` the alignment), a fraction.

Exactness notes
---------------
* 2DASL's ICP builds Horn's quaternion matrix from ``V = g' pp / n`` and applies ``data_p * R`` (row vectors);
  facenb estimates the same least-squares rotation with an SVD (Kabsch, proper rotation). The MATLAB was not run
  here, so the reconstruction preset is a faithful reading, not a bit-exact conformance. The MATLAB's final error
  compares the centred GT with the rotated, centred prediction vertex by vertex (fixed correspondences), not with
  the nearest neighbours used to estimate the rotation.
* 2DASL's dense GT is rebuilt from the ``.mat`` 3DMM parameters with the BFM and flipped to image rows
  (``grdVertex(2,:) = 1 - y + 450``); its normaliser for the reconstruction is the dense GT box, for the dense
  alignment the 68-landmark box. SADRNet and PRNet-PyTorch work on UV position maps restricted to the face-region
  mask (pass that point set as ``vertex_index`` or as the arrays themselves). SADRNet's reconstruction takes the
  outer eye corners from the GT position map (the dense GT at the landmark vertices), not from ``pt3d_68``: pass
  those points as ``gt_landmarks`` to reproduce it.
* The dense ground truth of AFLW2000-3D comes from the Basel Face Model, which is licence-gated: facenb never
  builds it; :func:`dense_nme` takes it as input, and :func:`dense_nme_folder` reads a folder of per-image
  ``(3, n)`` arrays (``<name>.npy`` or ``.mat`` with ``vertex``) that the user generated with a licensed BFM.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facenb.errors import InputError

__all__ = ["DenseOptions", "PRESETS", "DenseNME", "dense_nme", "dense_nme_folder", "read_dense", "with_options"]

_DIMS = ("2d", "3d")
_Z = ("none", "min", "mean")
_CORR = ("fixed", "nearest")
_ALIGN = ("none", "rigid", "similarity", "similarity_sadrnet", "icp_rigid")
_NORM = ("bbox2d_landmarks", "bbox2d_dense", "bbox3d_diagonal", "interocular_3d", "interocular_2d")
_EYES = (36, 45)


def _choice(name, value, allowed):
    if value not in allowed:
        raise InputError(f"{name}={value!r} is not one of {', '.join(allowed)}", None, f"pass {name}={allowed[0]!r}")


@dataclass(frozen=True)
class DenseOptions:
    """One dense-NME variant (see the module docstring's table). Defaults: ``2dasl_dense_3d``."""

    dims: str = "3d"
    z: str = "min"
    pred_z_scale: float = 1.0
    subsample: int = 1
    correspondence: str = "fixed"
    alignment: str = "none"
    normalizer: str = "bbox2d_landmarks"
    icp_tol: float = 0.01
    icp_max_iter: int = 100

    def __post_init__(self):
        _choice("dims", self.dims, _DIMS)
        _choice("z", self.z, _Z)
        _choice("correspondence", self.correspondence, _CORR)
        _choice("alignment", self.alignment, _ALIGN)
        _choice("normalizer", self.normalizer, _NORM)
        if int(self.subsample) != self.subsample or self.subsample < 1:
            raise InputError(f"subsample must be a positive integer, got {self.subsample!r}", None, "pass 1 or 50")
        if not (math.isfinite(self.pred_z_scale) and self.pred_z_scale > 0):
            raise InputError(f"pred_z_scale must be positive, got {self.pred_z_scale!r}", None, "pass 1.0")


PRESETS: dict[str, DenseOptions] = {
    "2dasl_dense_2d": DenseOptions(dims="2d", z="min", normalizer="bbox2d_landmarks"),
    "2dasl_dense_3d": DenseOptions(dims="3d", z="min", normalizer="bbox2d_landmarks"),
    "2dasl_reconstruction": DenseOptions(dims="3d", z="min", subsample=50, alignment="icp_rigid",
                                         normalizer="bbox2d_dense"),
    "sadrnet_dense_3d": DenseOptions(dims="3d", z="mean", normalizer="bbox2d_dense"),
    "sadrnet_dense_2d": DenseOptions(dims="2d", z="mean", normalizer="bbox2d_dense"),
    "sadrnet_reconstruction": DenseOptions(dims="3d", z="none", alignment="similarity_sadrnet",
                                           normalizer="interocular_3d"),
    "prnet_pytorch_nme3d": DenseOptions(dims="3d", z="mean", normalizer="bbox2d_dense"),
    "prnet_pytorch_nme2d": DenseOptions(dims="2d", z="mean", normalizer="bbox2d_dense"),
    "prnet_pytorch_bbox3d": DenseOptions(dims="3d", z="mean", normalizer="bbox3d_diagonal"),
}
"""Every implementation read, as options (module docstring table)."""


@dataclass(frozen=True)
class DenseNME:
    """Result of :func:`dense_nme` for one image.

    Attributes
    ----------
    nme : float            mean point error / normaliser (a fraction)
    mean_distance : float  mean point error (units of the input, image pixels for AFLW2000-3D)
    normalizer : float     the divisor
    n_points : int         points compared
    transform : (4, 4)     the alignment applied to the prediction (after the z handling)
    iterations : int       ICP iterations (0 without ICP)
    """

    nme: float
    mean_distance: float
    normalizer: float
    n_points: int
    transform: np.ndarray
    iterations: int = 0

    def summary(self) -> dict:
        return {"nme_percent": self.nme * 100, "mean_distance": self.mean_distance, "normalizer": self.normalizer,
                "n_points": self.n_points, "iterations": self.iterations}

    def printed(self) -> list[str]:
        return [f"dense NME {self.nme * 100:.4f} % (mean error {self.mean_distance:.4f} / normaliser "
                f"{self.normalizer:.4f}, {self.n_points} points)"]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([self.summary()])


def _as_points(a, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or 3 not in arr.shape:
        raise InputError(f"{what} must be (3, n) or (n, 3), got {arr.shape}", None, "pass x, y, z per point")
    if arr.shape[0] == 3 and arr.shape[1] != 3:
        arr = arr.T
    elif arr.shape == (3, 3):
        arr = arr.T  # (3, n) is the release layout; a 3-point set is read as (3, n) too
    if not np.isfinite(arr).all():
        raise InputError(f"{what} holds NaN or Inf", None, "remove invalid points")
    return arr.copy()


def _z(points: np.ndarray, how: str) -> np.ndarray:
    if how == "min":
        points[:, 2] -= points[:, 2].min()
    elif how == "mean":
        points[:, 2] -= points[:, 2].mean()
    return points


def _kabsch(src: np.ndarray, dst: np.ndarray, scale: str) -> np.ndarray:
    """4x4 transform mapping ``src`` onto ``dst`` (rows) in least squares; scale 'none' | 'umeyama'."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    r = (u @ fix @ vt).T
    c = 1.0
    if scale == "umeyama":
        c = float((s * np.diag(fix)).sum() / (a * a).sum())
    t = np.eye(4)
    t[:3, :3] = c * r
    t[:3, 3] = md - c * r @ ms
    return t


def _sadrnet(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """SADRNet ``cp``: scale from summed distances to the first point, SVD rotation (no reflection check)."""
    c = np.linalg.norm(dst - dst[0], axis=1).sum() / np.linalg.norm(src - src[0], axis=1).sum()
    a = src * c
    ma, mb = a.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((a - ma).T @ (dst - mb))
    r = vt.T @ u.T
    t = np.eye(4)
    t[:3, :3] = r * c
    t[:3, 3] = mb - ma @ r.T
    return t


def _apply(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ t[:3, :3].T + t[:3, 3]


def _icp_rigid(g: np.ndarray, p: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """2DASL's ICP: centre both, rotate the prediction by the least-squares rotation onto its nearest neighbours of
    the GT points, until the mean squared nearest distance changes by <= tol."""
    from scipy.spatial import cKDTree

    t = np.eye(4)
    t[:3, 3] = g.mean(0) - p.mean(0)  # centroids (2DASL centres both sets; the GT frame is kept here)
    cur = _apply(t, p)
    last = None
    it = 0
    for it in range(1, max_iter + 1):
        d, j = cKDTree(cur).query(g)
        err = float(np.mean(d * d))
        step = _kabsch(cur[j], g, "none")
        step[:3, 3] = g.mean(0) - step[:3, :3] @ cur.mean(0)  # rotation about the centroid, centroids matched
        t = step @ t
        cur = _apply(t, p)
        if last is not None and abs(err - last) <= tol:
            break
        last = err
    return t, it


def _normalizer(kind: str, g_all: np.ndarray, gt_landmarks) -> float:
    if kind == "bbox2d_dense":
        w, h = np.ptp(g_all[:, 0]), np.ptp(g_all[:, 1])
        return math.sqrt(w * h)
    if kind == "bbox3d_diagonal":
        return float(np.linalg.norm(np.ptp(g_all, axis=0)))
    if gt_landmarks is None:
        raise InputError(f"normalizer={kind!r} needs gt_landmarks (the 68 ground-truth landmarks)", None,
                         "pass gt_landmarks=(3|2, 68) or choose bbox2d_dense")
    lm = np.asarray(gt_landmarks, np.float64)
    if lm.shape[0] not in (2, 3) and lm.shape[-1] in (2, 3):
        lm = lm.T
    if lm.ndim != 2 or lm.shape[1] != 68:
        raise InputError(f"gt_landmarks must be (2|3, 68), got {np.shape(gt_landmarks)}", None, "pass pt3d_68")
    if kind == "bbox2d_landmarks":
        return math.sqrt(np.ptp(lm[0]) * np.ptp(lm[1]))
    a, b = _EYES
    dims = 3 if kind == "interocular_3d" else 2
    if dims == 3 and lm.shape[0] < 3:
        raise InputError("normalizer='interocular_3d' needs landmarks with z", None, "pass (3, 68) landmarks")
    return float(np.linalg.norm(lm[:dims, a] - lm[:dims, b]))


def dense_nme(
    gt_dense,
    pred_dense,
    options: DenseOptions | str = "2dasl_dense_3d",
    *,
    gt_landmarks=None,
    vertex_index: Sequence[int] | np.ndarray | None = None,
) -> DenseNME:
    """Dense alignment / 3D reconstruction NME of one image.

    Parameters
    ----------
    gt_dense : (3, n) or (n, 3) array
        Dense ground truth (image pixels for AFLW2000-3D: x right, y down, z of the fit).
    pred_dense : (3, m) or (m, 3) array
        Dense prediction in the same frame; ``m = n`` (same topology) unless ``correspondence='nearest'``.
    options : DenseOptions or preset name
        See the module docstring (default ``'2dasl_dense_3d'``).
    gt_landmarks : (2|3, 68) array, optional
        The 68 ground-truth landmarks (``pt3d_68``) for the landmark-based normalisers.
    vertex_index : int array, optional
        The point set: indices into both arrays (e.g. a face-region mask); default all points.

    Returns
    -------
    DenseNME
    """
    if isinstance(options, str):
        if options not in PRESETS:
            raise InputError(f"unknown dense NME preset {options!r}", None, f"use one of {', '.join(PRESETS)}")
        options = PRESETS[options]
    o = options
    g = _as_points(gt_dense, "gt_dense")
    p = _as_points(pred_dense, "pred_dense")
    if o.correspondence == "fixed" and len(g) != len(p):
        raise InputError(f"fixed correspondences need the same number of points, got {len(g)} GT and {len(p)} "
                         "predicted", None, "use correspondence='nearest' for another topology")
    if vertex_index is not None:
        idx = np.asarray(vertex_index)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) \
                or idx.min() < 0 or idx.max() >= len(g):
            raise InputError("vertex_index must be non-empty integer indices of the GT points", None,
                             "pass indices into the dense arrays")
        g = g[idx]
        if o.correspondence == "fixed":
            p = p[idx]
    p[:, 2] *= o.pred_z_scale
    g, p = _z(g, o.z), _z(p, o.z)
    norm = _normalizer(o.normalizer, g, gt_landmarks)  # distances and boxes: no z shift changes them
    if not norm > 0:
        raise InputError("the normaliser is zero", None, "check the ground truth")
    gs, ps = g[::o.subsample], (p[::o.subsample] if o.correspondence == "fixed" else p)
    iters = 0
    if o.alignment == "none":
        t = np.eye(4)
    elif o.alignment == "icp_rigid":
        t, iters = _icp_rigid(gs, ps, o.icp_tol, o.icp_max_iter)
    else:
        if o.correspondence != "fixed":
            raise InputError(f"alignment={o.alignment!r} needs fixed correspondences", None,
                             "use alignment='icp_rigid' for another topology")
        t = _sadrnet(ps, gs) if o.alignment == "similarity_sadrnet" else _kabsch(
            ps, gs, "umeyama" if o.alignment == "similarity" else "none")
    pa = _apply(t, ps)
    k = 2 if o.dims == "2d" else 3
    if o.correspondence == "fixed":
        d = np.linalg.norm(pa[:, :k] - gs[:, :k], axis=1)
    else:
        from scipy.spatial import cKDTree

        d, _ = cKDTree(pa[:, :k]).query(gs[:, :k])
    md = float(d.mean())
    return DenseNME(nme=md / norm, mean_distance=md, normalizer=float(norm), n_points=int(len(gs)), transform=t,
                    iterations=iters)


def read_dense(path: str | Path) -> np.ndarray:
    """A dense point set ``(3, n)`` float64 from ``.npy`` ((3, n) or (n, 3)) or ``.mat`` (variable ``vertex``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("dense point file not found", path, "give a (3, n) .npy or a .mat with 'vertex'")
    if path.suffix.lower() == ".mat":
        from scipy.io import loadmat

        m = loadmat(path)
        if "vertex" not in m:
            raise InputError("the .mat has no 'vertex' variable", path, "save the points as 'vertex' (3, n)")
        arr = m["vertex"]
    elif path.suffix.lower() == ".npy":
        arr = np.load(path, allow_pickle=False)
    else:
        raise InputError("dense points must be .npy or .mat", path, "save them with numpy.save as (3, n)")
    return _as_points(arr, str(path)).T


def dense_nme_folder(
    dense_gt_dir: str | Path,
    predictions: Mapping[str, np.ndarray],
    options: DenseOptions | str = "2dasl_dense_3d",
    gt_landmarks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, DenseNME]:
    """:func:`dense_nme` for every image of ``predictions`` (name -> (3, n)) against ``dense_gt_dir/<name>.npy``
    (or ``.mat``): the user's licensed BFM-derived dense ground truth, one ``(3, n)`` array per image."""
    root = Path(dense_gt_dir)
    if not root.is_dir():
        raise InputError("dense ground-truth folder not found", root,
                         "generate the per-image (3, n) dense GT with a licensed Basel Face Model")
    out = {}
    for name, pred in predictions.items():
        f = next((root / f"{name}{ext}" for ext in (".npy", ".mat") if (root / f"{name}{ext}").is_file()), None)
        if f is None:
            raise InputError(f"no dense ground truth for {name}", root / f"{name}.npy", "one file per image")
        lm = None if gt_landmarks is None else gt_landmarks.get(name)
        out[name] = dense_nme(read_dense(f), pred, options, gt_landmarks=lm)
    return out


def with_options(preset: str, **changes) -> DenseOptions:
    """A preset with some fields changed (e.g. ``with_options('2dasl_reconstruction', subsample=1)``)."""
    if preset not in PRESETS:
        raise InputError(f"unknown dense NME preset {preset!r}", None, f"use one of {', '.join(PRESETS)}")
    return replace(PRESETS[preset], **changes)
