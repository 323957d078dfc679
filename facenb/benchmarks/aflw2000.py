"""AFLW2000-3D 68-landmark NME, exactly as the 3DDFA benchmark computes it (Zhu et al., 3DDFA, CVPR 2016 / TPAMI 2019).

Reproduces ``benchmark_aflw2000.py`` of ``cleardusk/3DDFA@3545f355`` (functions ``calc_nme`` and ``ana``), the
scorer behind the AFLW2000-3D numbers of 3DDFA, 3DDFA_V2 and most papers that copy their table, with the
official ``test.configs`` files (``AFLW2000-3D.pts68.npy``, ``AFLW2000-3D-Reannotated.pts68.npy``,
``AFLW2000-3D_crop.roi_box.npy``, ``AFLW2000-3D.pose.npy``).

Protocol (official default)
---------------------------
1. **Crop to image.** A prediction ``p`` in 120 x 120 crop pixels of image ``i`` is mapped to image pixels with
   its roi box ``(sx, sy, ex, ey)``: ``x = p_x (ex - sx) / 120 + sx``, ``y = p_y (ey - sy) / 120 + sy``.
2. **Per-image NME.** With ground truth ``g`` (68 x/y points of the chosen annotation, image pixels),
   ``NME_i = mean_k ||p_k - g_k||_2 / sqrt((max g_x - min g_x) (max g_y - min g_y))`` -- the error over the
   68 landmarks normalised by the square root of the area of the ground-truth landmarks' bounding box.
   The official list is ``float32`` (a fraction, not a percentage).
3. **Yaw bins** from ``AFLW2000-3D.pose.npy`` (degrees): ``|yaw| <= 30``, ``30 < |yaw| <= 60`` and
   ``|yaw| > 60`` (the file holds yaws up to 351 degrees: everything above 60, even above 90, is in the third
   bin). On the 2000 images the bins hold 1312 / 383 / 305 images.
4. **Summary** (``ana``): per bin the mean and the population std (``ddof = 0``) of the NME in percent; the
   "[0, 90]" line is the **balanced** mean = mean of the three bin means, and its std = ``np.std`` of the three
   bin means (not the std over images). The plain mean over all 2000 images is commented out in the official
   code; facenb reports it as ``nme_all_images`` but it is not the published number.

Options (one table; the official behaviour is the first value of each row)
-------------------------------------------------------------------------
================  =================================  =========================================================
option            values                              meaning
================  =================================  =========================================================
``annotations``   ``original`` | ``reannotated``      GT landmarks: ``AFLW2000-3D.pts68.npy`` (the fitted 3DMM
                                                      landmarks released with AFLW2000-3D; official ``'ori'``) or
                                                      ``AFLW2000-3D-Reannotated.pts68.npy`` (manual re-annotation,
                                                      LS3D-W; official ``'re'``). Both use the same yaw file.
``error``         ``2d`` | ``3d``                     ``2d``: x/y only (official). ``3d``: x/y/z; the prediction's
                                                      z (crop units in ``coords='crop'``) is scaled by
                                                      ``((ex-sx)+(ey-sy))/240`` (as 3DDFA_V2's
                                                      ``similar_transform``) and, because the z origin of neither
                                                      set is meaningful, each set's mean z is subtracted before the
                                                      error (facenb convention). Only ``original`` has z.
``normalization`` ``bbox`` | ``interocular`` |         ``bbox``: ``sqrt(w h)`` of the GT x/y bounding box
                  ``diagonal``                        (official); ``interocular``: distance between the GT outer
                                                      eye corners (iBUG points 37 and 46, 1-based); ``diagonal``:
                                                      ``sqrt(w^2 + h^2)`` of the GT bounding box.
``coords``        ``crop`` | ``image``                ``crop``: predictions in 120 x 120 crop pixels, mapped with the
                                                      roi boxes (official); ``image``: already in image pixels.
``arithmetic``    ``numpy1`` | ``numpy2`` |           Floating-point semantics of the official code. ``numpy1``:
                  ``float64``                         numpy 1.x (the 1.23.5 of the reference run) with the
                                                      official dtypes, see below. ``numpy2``: the same code under
                                                      numpy 2 (NEP 50 keeps float32 where numpy 1 promoted to
                                                      float64). ``float64``: everything in float64 with exact
                                                      squares (no float32 rounding; not an official number).
================  =================================  =========================================================

The options are the fields of the frozen :class:`AFLW2000Options`; :data:`OFFICIAL` holds the first value of each
row. :func:`evaluate` takes ground truth first, prediction second, options last
(``evaluate(gt, pred, OFFICIAL)``; keyword overrides such as ``coords='image'`` are accepted, and so is the earlier
order ``evaluate(pred, gt)``).

Frame check (not part of the official code)
-------------------------------------------
A prediction in the wrong frame gives a plausible-looking but meaningless number (crop pixels read as image
pixels gave 154.9 %). :func:`check_coords` compares, per image, the centroid of the predicted landmarks with the
ground truth's, in units of the GT box size; when the median offset exceeds 0.5 it raises an :class:`InputError`
saying which frame the values look like (``check_frame=False`` in :func:`evaluate` turns it off).

Floating-point details reproduced by ``arithmetic='numpy1'``
------------------------------------------------------------
The official code runs on float32 arrays; its numbers depend on where numpy rounds:

* ``scale = (ex - sx) / 120`` is float64 (float32 scalar / Python int -> float64 in numpy 1), rounded to float32
  when it multiplies the float32 landmarks; ``p * scale + sx`` is two float32 roundings.
* ``np.power(dis, 2)`` on float32 calls the C library's ``powf`` element-wise, and glibc's ``powf`` (>= 2.28) is
  not always the correctly rounded square: facenb emulates its double-precision algorithm bit for bit
  (:func:`powf_square`); a plain ``x * x`` changes the NME of 2-5 images in 2000 by one float32 ulp (~4e-9).
* ``np.sum``/``np.mean`` of float32 use numpy's pairwise summation in float32 (emulated by :func:`pairwise_sum`,
  independent of the installed numpy); ``np.mean`` divides the float32 sum by the count in float64 and rounds back.
* ``dis / llength`` (float32 scalar / Python float) is float64, stored into the float32 NME list.
* ``ana`` multiplies the float32 means by 100 in float64, and takes the balanced mean/std in float64.

The official ``calc_nme`` converts the prediction **in place**: calling it twice on one array (e.g. ``'ori'`` then
``'re'``) converts twice and gives garbage. facenb never modifies its input; its numbers equal the official ones on
a fresh copy of the prediction. ``arithmetic='numpy1'`` reproduces the conformance cases (per image and all
aggregates) bit for bit; ``numpy2`` reproduces the official code run under numpy 2.x.

Predictions may be ``(n, 2, 68)``, ``(n, 3, 68)`` (3DDFA layout, rows x/y/z) or ``(n, 68, 2|3)`` (points as
rows), ``float32`` or ``float64`` (other dtypes are converted to float64); ``n = 2000`` in the official order,
or any ``n`` with ``indices`` giving each prediction's row in the 2000-image arrays (a subset is scored with the
same formulas, its bins holding only the given images).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facenb.errors import InputError
from facenb.vocabulary import AFLW_YAW_BINS

__all__ = [
    "N_IMAGES",
    "N_LANDMARKS",
    "CROP_SIZE",
    "GT_FILES",
    "BIN_KEYS",
    "BIN_LABELS",
    "ANNOTATIONS",
    "ERRORS",
    "NORMALIZATIONS",
    "COORDS",
    "ARITHMETICS",
    "GroundTruth",
    "AFLW2000Options",
    "OFFICIAL",
    "NMEResult",
    "check_coords",
    "default_gt_dir",
    "load_ground_truth",
    "load_predictions",
    "crop_to_image",
    "yaw_bins",
    "per_image_nme",
    "summarize",
    "evaluate",
    "compare_options",
    "standard_errors",
    "pairwise_sum",
    "powf_square",
]

N_IMAGES = 2000
N_LANDMARKS = 68
CROP_SIZE = 120
GT_FILES = {
    "pts68": "AFLW2000-3D.pts68.npy",
    "pts68_reannotated": "AFLW2000-3D-Reannotated.pts68.npy",
    "roi_box": "AFLW2000-3D_crop.roi_box.npy",
    "pose": "AFLW2000-3D.pose.npy",
}
"""File names of the official ground truth (``cleardusk/3DDFA`` ``test.configs/``)."""
BIN_KEYS = ("0_30", "30_60", "60_90")
BIN_LABELS = ("[ 0, 30]", "[30, 60]", "[60, 90]")
"""Bin labels as the official ``ana`` prints them (the bins are |yaw| <= 30, (30, 60], > 60)."""
ANNOTATIONS = ("original", "reannotated")
ERRORS = ("2d", "3d")
NORMALIZATIONS = ("bbox", "interocular", "diagonal")
COORDS = ("crop", "image")
ARITHMETICS = ("numpy1", "numpy2", "float64")
_OUTER_EYE_CORNERS = (36, 45)  # 0-based iBUG-68 indices of the outer eye corners


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise InputError(f"{name}={value!r} is not one of {', '.join(allowed)}", None, f"pass {name}={allowed[0]!r}")


@dataclass(frozen=True)
class AFLW2000Options:
    """How the NME is computed; the defaults (:data:`OFFICIAL`) are ``benchmark_aflw2000.py`` (see the table above).

    Attributes
    ----------
    annotations : {'original', 'reannotated'}
    error : {'2d', '3d'}
    normalization : {'bbox', 'interocular', 'diagonal'}
    coords : {'crop', 'image'}
        Frame of the predictions. Whatever is chosen, :func:`evaluate` checks that the predictions lie on the
        faces in that frame (:func:`check_coords`) and says which frame they look like when they do not.
    arithmetic : {'numpy1', 'numpy2', 'float64'}
    """

    annotations: str = "original"
    error: str = "2d"
    normalization: str = "bbox"
    coords: str = "crop"
    arithmetic: str = "numpy1"

    def __post_init__(self):
        for name, allowed in (("annotations", ANNOTATIONS), ("error", ERRORS), ("normalization", NORMALIZATIONS),
                              ("coords", COORDS), ("arithmetic", ARITHMETICS)):
            _check_choice(name, getattr(self, name), allowed)

    @property
    def is_official(self) -> bool:
        return self == OFFICIAL

    def as_dict(self) -> dict[str, str]:
        return dict(annotations=self.annotations, error=self.error, normalization=self.normalization,
                    coords=self.coords, arithmetic=self.arithmetic)


#: The official ``cleardusk/3DDFA`` ``benchmark_aflw2000.py`` protocol (crop-pixel predictions, original GT).
OFFICIAL = AFLW2000Options()


# ============================================================================================ ground truth
@dataclass(frozen=True)
class GroundTruth:
    """The official AFLW2000-3D evaluation files.

    Attributes
    ----------
    pts68 : (2000, 3, 68) float32
        Original landmarks (x, y, z rows; image pixels; z of the fitted 3DMM, arbitrary origin).
    pts68_reannotated : (2000, 2, 68) float32
        Re-annotated landmarks (x, y rows; image pixels).
    roi_box : (2000, 4) float32
        Crop boxes ``[sx, sy, ex, ey]`` (image pixels) of the 120 x 120 benchmark crops.
    yaw : (2000,) float32
        Yaw in degrees (``AFLW2000-3D.pose.npy``), used for the pose bins.
    source : str
        Where the files were read from (provenance).
    """

    pts68: np.ndarray
    pts68_reannotated: np.ndarray
    roi_box: np.ndarray
    yaw: np.ndarray
    source: str = ""

    def landmarks(self, annotations: str) -> np.ndarray:
        """Ground-truth landmarks ``(2000, 2|3, 68)`` float32 of ``annotations`` (``original``/``reannotated``)."""
        _check_choice("annotations", annotations, ANNOTATIONS)
        return self.pts68 if annotations == "original" else self.pts68_reannotated


def default_gt_dir() -> Path:
    """Folder of the official ground truth: ``facenb.data.require('aflw2000_3d')`` (the verified download cache or
    ``$FACENB_DATA_MIRROR/aflw2000_3d``); raises :class:`InputError` with the fetch hint when neither holds it."""
    from facenb import data

    return data.require("aflw2000_3d")


def _load_npy(path: Path, what: str, shape: tuple[int, ...]) -> np.ndarray:
    if not path.exists():
        raise InputError(f"{what} file not found", path,
                         "give the folder holding the official AFLW2000-3D files ('facenb data fetch aflw2000_3d')")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"cannot read {what} as a .npy array ({type(exc).__name__})", path,
                         "use the official file from cleardusk/3DDFA test.configs") from None
    if arr.shape != shape:
        raise InputError(f"{what} has shape {arr.shape}, expected {shape}", path,
                         "use the official file from cleardusk/3DDFA test.configs")
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise InputError(f"{what} must hold finite floats", path, "use the official file")
    return arr


def load_ground_truth(
    gt_dir: str | Path | None = None,
    *,
    pts68: str | Path | None = None,
    pts68_reannotated: str | Path | None = None,
    roi_box: str | Path | None = None,
    pose: str | Path | None = None,
) -> GroundTruth:
    """Load the official ground truth.

    Parameters
    ----------
    gt_dir : path, optional
        Folder holding the four files of :data:`GT_FILES` (default :func:`default_gt_dir`).
    pts68, pts68_reannotated, roi_box, pose : path, optional
        Explicit paths overriding the files of ``gt_dir`` (e.g. ``pose=.../AFLW2000-3D-new.pose.npy`` for the
        alternative yaw file; the official benchmark uses ``AFLW2000-3D.pose.npy``).
    """
    explicit = dict(pts68=pts68, pts68_reannotated=pts68_reannotated, roi_box=roi_box, pose=pose)
    if gt_dir is None and any(v is None for v in explicit.values()):
        gt_dir = default_gt_dir()
    if gt_dir is not None:
        gt_dir = Path(gt_dir)
        if not gt_dir.is_dir():
            raise InputError("AFLW2000-3D ground-truth folder not found", gt_dir,
                             "give the folder holding AFLW2000-3D.pts68.npy ('facenb data fetch aflw2000_3d')")
    paths = {k: Path(v) if v is not None else Path(gt_dir) / GT_FILES[k] for k, v in explicit.items()}
    return GroundTruth(
        pts68=_load_npy(paths["pts68"], "original landmarks", (N_IMAGES, 3, N_LANDMARKS)),
        pts68_reannotated=_load_npy(paths["pts68_reannotated"], "re-annotated landmarks", (N_IMAGES, 2, N_LANDMARKS)),
        roi_box=_load_npy(paths["roi_box"], "roi boxes", (N_IMAGES, 4)),
        yaw=_load_npy(paths["pose"], "yaw", (N_IMAGES,)),
        source=str(gt_dir) if gt_dir is not None else ", ".join(str(p) for p in paths.values()),
    )


def _as_gt(gt: GroundTruth | str | Path | None) -> GroundTruth:
    return gt if isinstance(gt, GroundTruth) else load_ground_truth(gt)


# ============================================================================================= predictions
def load_predictions(
    pred: np.ndarray | str | Path,
    n_images: int | None = N_IMAGES,
    *,
    path: str | Path | None = None,
) -> np.ndarray:
    """Validate predicted landmarks and return them as ``(n, d, 68)`` (d = 2 or 3), never a view of the input.

    Parameters
    ----------
    pred : array or path to ``.npy``
        ``(n, 2, 68)``, ``(n, 3, 68)``, ``(n, 68, 2)`` or ``(n, 68, 3)``.
    n_images : int or None
        Required number of images (``None``: any).
    path : path, optional
        Name used in error messages when ``pred`` is an array.

    Returns
    -------
    (n, d, 68) ndarray
        float32 or float64 as given (other dtypes converted to float64).
    """
    if isinstance(pred, (str, Path)):
        path = Path(pred)
        if not path.exists():
            raise InputError("prediction file not found", path, "check the path")
        if path.suffix.lower() != ".npy":
            raise InputError("predictions must be a .npy array", path,
                             "save them with numpy.save as (2000, 2, 68) or (2000, 68, 2)")
        try:
            pred = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot read the predictions ({type(exc).__name__}: {exc})", path,
                             "save them with numpy.save") from None
    name = str(path) if path is not None else "predictions"
    arr = np.asarray(pred)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name}: predictions must be real numbers, got dtype {arr.dtype}", None,
                         "save float32/float64 landmarks")
    if arr.ndim != 3 or not (arr.shape[1:] in ((2, N_LANDMARKS), (3, N_LANDMARKS))
                             or arr.shape[1:] in ((N_LANDMARKS, 2), (N_LANDMARKS, 3))):
        raise InputError(
            f"{name}: predictions have shape {arr.shape}; expected (n, 2, 68), (n, 3, 68), (n, 68, 2) or (n, 68, 3)",
            None, "stack the 68 landmarks of every image in the official image order")
    if arr.shape[1] == N_LANDMARKS and arr.shape[2] != N_LANDMARKS:
        arr = np.swapaxes(arr, 1, 2)
    if n_images is not None and arr.shape[0] != n_images:
        raise InputError(f"{name}: {arr.shape[0]} images, the benchmark has {n_images}", None,
                         "give one prediction per image in the order of AFLW2000-3D.pts68.npy (or pass indices)")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise InputError(f"{name}: {len(rows)} images have NaN or Inf landmarks (first: image {rows[0]})", None,
                         "predict every image; the official NME has no rule for failed images")
    return np.array(arr, copy=True, order="C")


# ==================================================================================== numerics (official)
def pairwise_sum(a: np.ndarray) -> np.ndarray:
    """Sum along the last axis exactly as numpy's pairwise summation does, in ``a.dtype``.

    numpy's ``add.reduce`` over a contiguous axis uses 8 accumulators for blocks of <= 128 values and splits
    longer runs in two (at a multiple of 8); fewer than 8 values are added left to right. Emulating it makes the
    float32 sums independent of the installed numpy and of how a vectorised call lays out its reductions.
    """
    a = np.asarray(a)
    n = a.shape[-1]
    if n < 8:
        res = np.zeros(a.shape[:-1], a.dtype)
        for i in range(n):
            res = res + a[..., i]
        return res
    if n <= 128:
        r = [a[..., j].copy() for j in range(8)]
        i = 8
        stop = n - (n % 8)
        while i < stop:
            for j in range(8):
                r[j] = r[j] + a[..., i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res = res + a[..., i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return pairwise_sum(a[..., :n2]) + pairwise_sum(a[..., n2:])


def _mean_numpy(a: np.ndarray) -> np.ndarray:
    """``np.mean`` along the last axis of a float array: pairwise sum, ``float64`` division, cast back."""
    s = pairwise_sum(a)
    return (s.astype(np.float64) / a.shape[-1]).astype(a.dtype)


def _std_numpy(a: np.ndarray, float_division_in: str) -> np.ndarray:
    """``np.std`` (ddof 0) along the last axis as numpy's ``_var`` computes it.

    ``float_division_in``: ``'same'`` (numpy 1: the mean's division runs in the array's dtype, value-based
    casting) or ``'float64'`` (numpy 2: a strong ``intp`` divisor promotes the division to float64, then the
    result is cast back into the array's dtype).
    """
    n = a.shape[-1]
    s = pairwise_sum(a)
    if float_division_in == "same":
        m = (s / a.dtype.type(n)).astype(a.dtype)
    else:
        m = (s.astype(np.float64) / n).astype(a.dtype)
    x = (a - m[..., None]).astype(a.dtype)
    x = x * x
    v = (pairwise_sum(x).astype(np.float64) / n).astype(a.dtype)
    return np.sqrt(v)


# glibc powf (sysdeps/ieee754/flt-32/e_powf.c, from Arm optimized-routines, MIT/Apache-2.0): tables and
# polynomials of the double-precision log2 / exp2 it evaluates (POWF_LOG2_TABLE_BITS = 4, EXP2F_TABLE_BITS = 5).
_H = float.fromhex
_POWF_INVC = np.array([_H(v) for v in (
    "0x1.661ec79f8f3bep+0", "0x1.571ed4aaf883dp+0", "0x1.49539f0f010bp+0", "0x1.3c995b0b80385p+0",
    "0x1.30d190c8864a5p+0", "0x1.25e227b0b8eap+0", "0x1.1bb4a4a1a343fp+0", "0x1.12358f08ae5bap+0",
    "0x1.0953f419900a7p+0", "0x1p+0", "0x1.e608cfd9a47acp-1", "0x1.ca4b31f026aap-1",
    "0x1.b2036576afce6p-1", "0x1.9c2d163a1aa2dp-1", "0x1.886e6037841edp-1", "0x1.767dcf5534862p-1")])
_POWF_LOGC = np.array([_H(v) for v in (
    "-0x1.efec65b963019p-2", "-0x1.b0b6832d4fca4p-2", "-0x1.7418b0a1fb77bp-2", "-0x1.39de91a6dcf7bp-2",
    "-0x1.01d9bf3f2b631p-2", "-0x1.97c1d1b3b7afp-3", "-0x1.2f9e393af3c9fp-3", "-0x1.960cbbf788d5cp-4",
    "-0x1.a6f9db6475fcep-5", "0x0p+0", "0x1.338ca9f24f53dp-4", "0x1.476a9543891bap-3",
    "0x1.e840b4ac4e4d2p-3", "0x1.40645f0c6651cp-2", "0x1.88e9c2c1b9ff8p-2", "0x1.ce0a44eb17bccp-2")])
_POWF_A = tuple(_H(v) for v in ("0x1.27616c9496e0bp-2", "-0x1.71969a075c67ap-2", "0x1.ec70a6ca7baddp-2",
                                "-0x1.7154748bef6c8p-1", "0x1.71547652ab82bp0"))
_EXP2F_TAB = np.array([
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540], dtype=np.uint64)
_EXP2F_C = tuple(_H(v) for v in ("0x1.c6af84b912394p-5", "0x1.ebfce50fac4f3p-3", "0x1.62e42ff0c52d6p-1"))
_EXP2F_SHIFT = _H("0x1.8p+52") / 32


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a, b):
    p = a * b
    ca, cb = a * 134217729.0, b * 134217729.0  # Veltkamp split (2^27 + 1)
    ah, bh = ca - (ca - a), cb - (cb - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fma(a, b, c):
    """Correctly rounded float64 ``a * b + c`` (Boldo-Melquiond emulation with round-to-odd)."""
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64))
    uh, ul = _two_prod(a, b)
    th, tl = _two_sum(c, uh)
    v, e = _two_sum(tl, ul)
    even = (v.view(np.uint64) & np.uint64(1)) == 0
    v = np.where((e != 0) & even, np.nextafter(v, np.where(e > 0, np.inf, -np.inf)), v)
    return th + v


def powf_square(x: np.ndarray) -> np.ndarray:
    """``powf(x, 2)`` of glibc >= 2.28 (what ``np.power(float32_array, 2)`` returns under numpy 1.x on Linux).

    glibc computes ``exp2(2 log2 |x|)`` in double precision (16-entry log2 table + degree-5 polynomial, 32-entry
    exp2 table + cubic) and rounds the double to float32; near the midpoint between two float32 numbers this can
    differ from the correctly rounded ``x * x`` by one ulp (about 7e-4 of random inputs). This is a vectorised,
    bit-exact emulation (the fused multiply-adds are emulated exactly); verified against the C library on
    600,000 inputs including every exact-midpoint pattern.

    Parameters
    ----------
    x : float32 array

    Returns
    -------
    float32 array, same shape
    """
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        ix = x.view(np.uint32) & np.uint32(0x7FFFFFFF)
        sub = (ix < 0x00800000) & (ix != 0)
        if sub.any():  # normalise subnormal inputs so their exponent becomes negative
            ixs = ((x * np.float32(2.0 ** 23)).view(np.uint32) & np.uint32(0x7FFFFFFF)) - np.uint32(23 << 23)
            ix = np.where(sub, ixs, ix).astype(np.uint32)
        tmp = (ix - np.uint32(0x3F330000)).astype(np.uint32)
        i = ((tmp >> np.uint32(19)) % np.uint32(16)).astype(np.intp)
        top = tmp & np.uint32(0xFF800000)
        iz = (ix - top).astype(np.uint32)
        k = (top.view(np.int32) >> 23).astype(np.float64)
        z = iz.view(np.float32).astype(np.float64)
        r = _fma(z, _POWF_INVC[i], -1.0)
        y0 = _POWF_LOGC[i] + k
        r2 = r * r
        y = _fma(_POWF_A[0], r, _POWF_A[1])
        p = _fma(_POWF_A[2], r, _POWF_A[3])
        r4 = r2 * r2
        q = _fma(_POWF_A[4], r, y0)
        q = _fma(p, r2, q)
        logx = _fma(y, r4, q)
        xd = 2.0 * logx
        kd = xd + _EXP2F_SHIFT
        ki = kd.view(np.uint64)
        kd = kd - _EXP2F_SHIFT
        rr = xd - kd
        t = (_EXP2F_TAB[(ki % np.uint64(32)).astype(np.intp)] + (ki << np.uint64(47))).astype(np.uint64)
        s = t.view(np.float64)
        zz = _fma(_EXP2F_C[0], rr, _EXP2F_C[1])
        yy = _fma(_EXP2F_C[2], rr, 1.0)
        yy = _fma(zz, rr * rr, yy) * s
        out = yy.astype(np.float32)
        out = np.where(xd > _H("0x1.fffffffd1d571p+6"), np.float32(np.inf), out)
        out = np.where(xd <= -150.0, np.float32(0.0), out)
        out = np.where(ix == 0, np.float32(0.0), out)
        out = np.where(np.isfinite(x), out, x * x)
    return out.astype(np.float32)


def _square(d: np.ndarray, arithmetic: str) -> np.ndarray:
    if arithmetic == "numpy1" and d.dtype == np.float32:
        return powf_square(d)
    return d * d  # numpy 2 squares (fast path of np.power(x, 2)); float64: glibc pow is within 0.52 ulp of this


# ================================================================================================ scoring
def crop_to_image(pts: np.ndarray, roi_box: np.ndarray, arithmetic: str = "numpy1") -> np.ndarray:
    """Map landmarks from 120 x 120 crop pixels to image pixels with the roi boxes (official ``calc_nme`` step).

    Parameters
    ----------
    pts : (n, d, 68) float32 or float64
        Rows x, y (and z, left unchanged here).
    roi_box : (n, 4) float32
        ``[sx, sy, ex, ey]`` per image.
    arithmetic : {'numpy1', 'numpy2', 'float64'}

    Returns
    -------
    (n, d, 68) array, dtype of ``pts`` (float64 for ``arithmetic='float64'``): ``x * (ex - sx) / 120 + sx``,
    ``y * (ey - sy) / 120 + sy``, with the official roundings (a new array; the input is not modified).
    """
    _check_choice("arithmetic", arithmetic, ARITHMETICS)
    out = np.array(pts, dtype=np.float64 if arithmetic == "float64" else pts.dtype, copy=True)
    roi = np.asarray(roi_box)
    sx, sy, ex, ey = (roi[:, j] for j in range(4))
    ft = out.dtype.type
    for row, (lo, hi) in ((0, (sx, ex)), (1, (sy, ey))):
        width = (hi - lo).astype(roi.dtype)  # float32 subtraction of the float32 box
        if arithmetic == "numpy1":
            scale = (width.astype(np.float64) / CROP_SIZE).astype(out.dtype)  # float64 scalar -> array dtype
        elif arithmetic == "numpy2":
            scale = (width / roi.dtype.type(CROP_SIZE)).astype(out.dtype)  # float32 / weak int stays float32
        else:
            scale = width.astype(np.float64) / CROP_SIZE
        out[:, row, :] = out[:, row, :] * scale[:, None].astype(ft) + lo[:, None].astype(ft)
    return out


def yaw_bins(yaw: np.ndarray) -> np.ndarray:
    """Bin index 0, 1, 2 of every image: ``|yaw| <= 30``, ``(30, 60]``, ``> 60`` (degrees, official ``ana``)."""
    a = np.abs(np.asarray(yaw))
    return np.where(a <= 30, 0, np.where(a <= 60, 1, 2)).astype(np.int64)


def per_image_nme(
    pred: np.ndarray,
    gt_landmarks: np.ndarray,
    roi_box: np.ndarray | None,
    *,
    error: str = "2d",
    normalization: str = "bbox",
    arithmetic: str = "numpy1",
) -> np.ndarray:
    """Per-image NME (a fraction) of ``calc_nme``.

    Parameters
    ----------
    pred : (n, d, 68) float32/float64
        Predicted landmarks (rows x, y[, z]), already validated (:func:`load_predictions`).
    gt_landmarks : (n, 2|3, 68) float32
        Ground truth of the same images, image pixels.
    roi_box : (n, 4) or None
        Crop boxes: ``pred`` is in crop pixels and is mapped to the image; ``None``: ``pred`` is in image pixels.
    error, normalization, arithmetic : str
        See the module docstring.

    Returns
    -------
    (n,) float32 (``arithmetic='float64'``: float64)
        ``mean_k ||p_k - g_k|| / L`` with ``L`` the normaliser.
    """
    _check_choice("error", error, ERRORS)
    _check_choice("normalization", normalization, NORMALIZATIONS)
    _check_choice("arithmetic", arithmetic, ARITHMETICS)
    dims = 3 if error == "3d" else 2
    if error == "3d":
        if pred.shape[1] < 3:
            raise InputError("error='3d' needs predictions with z: shape (n, 3, 68) or (n, 68, 3)", None,
                             "give 3D landmarks or use error='2d'")
        if gt_landmarks.shape[1] < 3:
            raise InputError("error='3d' needs ground truth with z; only the original annotation has it", None,
                             "use annotations='original' or error='2d'")
    p = crop_to_image(pred, roi_box, arithmetic) if roi_box is not None else (
        pred.astype(np.float64) if arithmetic == "float64" else pred.copy())
    g = gt_landmarks.astype(np.float64) if arithmetic == "float64" else gt_landmarks
    if error == "3d":
        p = p[:, :3, :].copy()
        if roi_box is not None:  # z in crop units -> image pixels with the mean scale (3DDFA_V2 similar_transform)
            roi = np.asarray(roi_box, np.float64)
            s = ((roi[:, 2] - roi[:, 0]) / CROP_SIZE + (roi[:, 3] - roi[:, 1]) / CROP_SIZE) / 2
            p[:, 2, :] = (p[:, 2, :] * s[:, None]).astype(p.dtype)
        g = g[:, :3, :].copy()
        p[:, 2, :] = p[:, 2, :] - _mean_numpy(p[:, 2, :])[:, None]
        g[:, 2, :] = g[:, 2, :] - _mean_numpy(g[:, 2, :])[:, None]
    ft = np.result_type(p.dtype, g.dtype)
    diff = (p[:, :dims, :].astype(ft) - g[:, :dims, :].astype(ft)).astype(ft)
    sq = _square(diff, arithmetic)
    acc = sq[:, 0, :]
    for j in range(1, dims):  # np.sum(axis=0) over the coordinate rows: left to right
        acc = acc + sq[:, j, :]
    dist = np.sqrt(acc)
    mean_dist = _mean_numpy(dist)  # (n,) in ft

    gl = gt_landmarks.astype(np.float64) if arithmetic == "float64" else gt_landmarks
    gx, gy = gl[:, 0, :], gl[:, 1, :]
    w = (gx.max(axis=1) - gx.min(axis=1)).astype(gl.dtype)  # float32 in the official code
    h = (gy.max(axis=1) - gy.min(axis=1)).astype(gl.dtype)
    if normalization == "bbox":
        norm = np.sqrt((w * h).astype(w.dtype).astype(np.float64))  # math.sqrt of the float32 product
    elif normalization == "diagonal":
        norm = np.sqrt(w.astype(np.float64) ** 2 + h.astype(np.float64) ** 2)
    else:
        a, b = _OUTER_EYE_CORNERS
        d = gt_landmarks[:, :2, a].astype(np.float64) - gt_landmarks[:, :2, b].astype(np.float64)
        norm = np.sqrt((d * d).sum(axis=1))
    if np.any(norm <= 0):
        raise InputError("a ground-truth normaliser is zero", None, "check the ground-truth landmarks")
    if arithmetic == "numpy2":  # float32 scalar / Python float stays float32 (NEP 50)
        nme = mean_dist / norm.astype(mean_dist.dtype)
    else:  # numpy 1: float32 scalar / Python float -> float64
        nme = mean_dist.astype(np.float64) / norm
    return nme if arithmetic == "float64" else nme.astype(np.float32)


@dataclass(frozen=True)
class NMEResult:
    """AFLW2000-3D NME of one set of predictions.

    Attributes
    ----------
    per_image : (n,) float32
        Per-image NME as a **fraction** (official ``calc_nme`` output; float64 for ``arithmetic='float64'``).
    image_index : (n,) int
        Row of every image in the 2000-image arrays.
    yaw : (n,) float
        Yaw (degrees) used for binning.
    bin_of_image : (n,) int
        0: ``|yaw| <= 30``, 1: ``(30, 60]``, 2: ``> 60``.
    bin_mean, bin_std : tuple of 3 floats
        Per-bin mean and population std (ddof 0) of the NME, in **percent** (NaN for an empty bin).
    bin_count : tuple of 3 ints
        Images per bin (1312 / 383 / 305 on the full set).
    mean, std : float
        Balanced mean = mean of the 3 bin means, and ``np.std`` of the 3 bin means, in percent (the official
        "[0, 90]" line; NaN if a bin is empty).
    mean_all_images : float
        Plain mean over all images, percent (commented out in the official code; not the published number).
    annotations, error, normalization, coords, arithmetic : str
        The options used.
    """

    per_image: np.ndarray
    image_index: np.ndarray
    yaw: np.ndarray
    bin_of_image: np.ndarray
    bin_mean: tuple[float, float, float]
    bin_std: tuple[float, float, float]
    bin_count: tuple[int, int, int]
    mean: float
    std: float
    mean_all_images: float
    annotations: str = "original"
    error: str = "2d"
    normalization: str = "bbox"
    coords: str = "crop"
    arithmetic: str = "numpy1"
    gt_source: str = field(default="", repr=False)

    @property
    def nme_0_30(self) -> float:
        return self.bin_mean[0]

    @property
    def nme_30_60(self) -> float:
        return self.bin_mean[1]

    @property
    def nme_60_90(self) -> float:
        return self.bin_mean[2]

    @property
    def options(self) -> dict[str, str]:
        return dict(annotations=self.annotations, error=self.error, normalization=self.normalization,
                    coords=self.coords, arithmetic=self.arithmetic)

    def printed(self) -> list[str]:
        """The four lines the official ``ana`` prints (colour codes removed)."""
        lines = [f"{lab}\tMean: {m:.3f}, Std: {s:.3f}" for lab, m, s in zip(BIN_LABELS, self.bin_mean, self.bin_std)]
        lines.append(f"[ 0, 90]\tMean: {self.mean:.3f}, Std: {self.std:.3f}")
        return lines

    def summary(self) -> dict:
        """Flat dict (percent): the bin means/stds/counts, ``nme_mean``/``nme_std`` (balanced), ``nme_median``
        (over images), ``nme_all_images``, ``n_images`` and the options."""
        d = {k: v for k, v in self.as_dict().items() if k not in ("printed",)}
        d["nme_median"] = _num(float(np.median(np.asarray(self.per_image, np.float64)) * 100)
                               if len(self.per_image) else math.nan)
        return d

    def to_frame(self):
        """One row per image: ``image_index`` (row in the 2000-image arrays), ``yaw``, ``bin`` (0-30, 30-60,
        60-90) and ``nme`` (percent)."""
        import pandas as pd

        return pd.DataFrame({"image_index": np.asarray(self.image_index, int), "yaw": np.asarray(self.yaw, float),
                             "bin": [AFLW_YAW_BINS[b] for b in self.bin_of_image],
                             "nme": np.asarray(self.per_image, np.float64) * 100})

    def as_dict(self) -> dict:
        """JSON-ready summary (percent): ``nme_0_30``, ``nme_30_60``, ``nme_60_90``, ``nme_mean``, ``nme_std``,
        ``std_*``, ``n_*``, ``n_images``, ``nme_all_images``, the options and the printed lines."""
        d: dict = {}
        for key, m, s, n in zip(BIN_KEYS, self.bin_mean, self.bin_std, self.bin_count):
            d[f"nme_{key}"] = _num(m)
            d[f"std_{key}"] = _num(s)
            d[f"n_{key}"] = int(n)
        d.update(nme_mean=_num(self.mean), nme_std=_num(self.std), n_images=int(len(self.per_image)),
                 nme_all_images=_num(self.mean_all_images), unit="percent", **self.options,
                 printed=self.printed(), protocol="cleardusk/3DDFA benchmark_aflw2000.py (calc_nme, ana)",
                 ground_truth=self.gt_source)
        return d

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=1) + "\n")


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def summarize(nme: np.ndarray, yaw: np.ndarray, arithmetic: str = "numpy1") -> tuple:
    """The official ``ana``: per-bin mean/std (percent), counts, balanced mean and std.

    Parameters
    ----------
    nme : (n,) float32 per-image NME (fraction)
    yaw : (n,) yaw in degrees
    arithmetic : {'numpy1', 'numpy2', 'float64'}

    Returns
    -------
    (bin_mean, bin_std, bin_count, mean, std, mean_all_images) with means/stds in percent.
    """
    _check_choice("arithmetic", arithmetic, ARITHMETICS)
    bins = yaw_bins(yaw)
    nme = np.asarray(nme)
    means, stds, counts = [], [], []
    for b in range(3):
        v = np.ascontiguousarray(nme[bins == b])
        counts.append(int(v.size))
        if v.size == 0:
            means.append(math.nan)
            stds.append(math.nan)
            continue
        m = _mean_numpy(v[None, :])[0]
        s = _std_numpy(v[None, :], "float64" if arithmetic == "numpy2" else "same")[0]
        if arithmetic == "numpy2":  # float32 * weak int stays float32
            means.append(float(m * m.dtype.type(100)))
            stds.append(float(s * s.dtype.type(100)))
        else:  # numpy 1: float32 scalar * Python int -> float64
            means.append(float(np.float64(m) * 100))
            stds.append(float(np.float64(s) * 100))
    if any(c == 0 for c in counts):
        mean = std = math.nan
    else:
        ft = np.float32 if arithmetic == "numpy2" else np.float64
        arr = np.array(means, dtype=ft)[None, :]
        mean = float(_mean_numpy(arr)[0])
        std = float(_std_numpy(arr, "float64" if arithmetic == "numpy2" else "same")[0])
    all_mean = float(np.float64(_mean_numpy(np.ascontiguousarray(nme)[None, :])[0]) * 100) if nme.size else math.nan
    return tuple(means), tuple(stds), tuple(counts), mean, std, all_mean


def _is_gt(x) -> bool:
    """True when ``x`` names ground truth (a :class:`GroundTruth` or a folder), not predictions."""
    return isinstance(x, GroundTruth) or (isinstance(x, (str, Path)) and Path(x).is_dir())


def check_coords(pred_image: np.ndarray, gt_landmarks: np.ndarray, roi_box: np.ndarray | None, coords: str,
                 path: str | Path | None = None) -> None:
    """Refuse predictions that do not lie on the faces in the frame they were declared in.

    Per image, the offset ``||c_p - c_g|| / sqrt(w h)`` between the centroid of the predicted x/y (after the
    crop -> image mapping for ``coords='crop'``) and of the ground truth, in units of the GT box size. A real
    method has a median offset of a few percent; predictions in the other frame have one of order 1 (e.g. crop
    pixels read as image pixels gave a 154.9 % NME). When the median offset exceeds 0.5 the other frame is tried
    (with ``roi_box``) and the :class:`InputError` says which frame the values look like.

    Parameters
    ----------
    pred_image : (n, d, 68) predictions as given (crop pixels for ``coords='crop'``, else image pixels)
    gt_landmarks : (n, 2|3, 68) ground truth, image pixels
    roi_box : (n, 4) crop boxes of the same images, or None (then the other frame is not tried)
    coords : {'crop', 'image'} the declared frame
    path : the prediction file, named in the error (optional)
    """
    g = np.asarray(gt_landmarks, np.float64)[:, :2]
    size = np.sqrt(np.ptp(g[:, 0], axis=1) * np.ptp(g[:, 1], axis=1))
    size = np.where(size > 0, size, 1.0)
    cg = g.mean(axis=2)

    def offset(points_image: np.ndarray) -> float:
        c = np.asarray(points_image, np.float64)[:, :2].mean(axis=2)
        return float(np.median(np.linalg.norm(c - cg, axis=1) / size))

    p = np.asarray(pred_image, np.float64)
    given = offset(crop_to_image(p, roi_box, "float64") if coords == "crop" else p)
    if given <= 0.5:
        return
    other = "image" if coords == "crop" else "crop"
    alt = math.nan
    if roi_box is not None:
        alt = offset(p if other == "image" else crop_to_image(p, roi_box, "float64"))
    if alt == alt and alt <= 0.5:
        raise InputError(f"with coords='{coords}' the predicted landmarks lie {given:.2f} face sizes from the faces "
                         f"(median); read as {other} pixels they lie {alt:.2f}: they look like "
                         + ("120x120 crop pixels" if other == "crop" else "image pixels"), path,
                         f"pass coords='{other}' (--coords {other})")
    raise InputError(f"with coords='{coords}' the predicted landmarks lie {given:.2f} face sizes from the faces "
                     "(median over images)" + (f", and {alt:.2f} read as {other} pixels" if alt == alt else "")
                     + ": neither frame fits", path,
                     "check the image order (official order or indices=) and the coordinate frame of the predictions")


def evaluate(
    gt,
    pred=None,
    options: AFLW2000Options | None = None,
    *,
    indices: Sequence[int] | np.ndarray | None = None,
    check_frame: bool = True,
    **overrides: str,
) -> NMEResult:
    """Score predicted 68 landmarks with the AFLW2000-3D NME protocol (official ``calc_nme`` + ``ana``).

    Parameters
    ----------
    gt : GroundTruth, folder, or None
        Official ground truth (:func:`load_ground_truth`; ``None``: :func:`default_gt_dir`).
    pred : array or path to .npy
        ``(2000, 2|3, 68)`` or ``(2000, 68, 2|3)`` landmarks in the official image order (or ``(n, ...)`` with
        ``indices``); crop pixels for ``coords='crop'`` (official), image pixels for ``coords='image'``.
    options : AFLW2000Options, optional
        Default :data:`OFFICIAL`. Keyword ``overrides`` (``annotations=``, ``error=``, ``normalization=``,
        ``coords=``, ``arithmetic=``) replace single fields.
    indices : sequence of int, optional
        Row of each prediction in the 2000-image arrays (scoring a subset; bins then hold the given images only).
    check_frame : bool
        Run :func:`check_coords` (default): predictions far from the faces in the declared frame raise an
        :class:`InputError` naming the frame they look like, instead of a silently wrong NME.

    Returns
    -------
    NMEResult

    Notes
    -----
    The earlier order ``evaluate(pred, gt, annotations=...)`` still works: an argument that is a
    :class:`GroundTruth` or a folder is taken as the ground truth wherever it stands.
    """
    if pred is None or (_is_gt(pred) and not _is_gt(gt)):
        gt, pred = pred, gt  # the earlier order evaluate(pred, gt)
    if pred is None:
        raise InputError("no predictions given", None, "call evaluate(gt, pred, options)")
    opts = options if options is not None else OFFICIAL
    if not isinstance(opts, AFLW2000Options):
        raise InputError(f"options must be an AFLW2000Options, got {type(opts).__name__}", None,
                         "pass aflw2000.OFFICIAL or AFLW2000Options(...)")
    unknown = set(overrides) - set(opts.as_dict())
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(sorted(unknown))}", None,
                         "use annotations, error, normalization, coords or arithmetic")
    if overrides:
        opts = AFLW2000Options(**{**opts.as_dict(), **overrides})
    annotations, error, normalization, coords, arithmetic = (opts.annotations, opts.error, opts.normalization,
                                                             opts.coords, opts.arithmetic)
    path = Path(pred) if isinstance(pred, (str, Path)) else None
    if indices is None:
        p = load_predictions(pred, N_IMAGES)
        idx = np.arange(N_IMAGES)
    else:
        idx = np.asarray(indices)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or idx.size == 0:
            raise InputError("indices must be a non-empty 1-D list of integer image rows", None,
                             "give the row of each prediction in AFLW2000-3D.pts68.npy")
        if idx.min() < 0 or idx.max() >= N_IMAGES or len(np.unique(idx)) != idx.size:
            raise InputError(f"indices must be distinct rows in [0, {N_IMAGES})", None, "check the image rows")
        p = load_predictions(pred, idx.size, path=path)
    g = _as_gt(gt)
    nme = per_image_nme(p, g.landmarks(annotations)[idx], g.roi_box[idx] if coords == "crop" else None,
                        error=error, normalization=normalization, arithmetic=arithmetic)
    if check_frame:
        try:
            check_coords(p, g.pts68[idx], g.roi_box[idx], coords, path)
        except InputError as exc:  # name the prediction file (issue 10: every message names the wrong file)
            if path is None or exc.path is not None:
                raise
            raise InputError(str(exc).split(" (fix: ")[0], path, exc.fix) from None
    yaw = g.yaw[idx]
    bm, bs, bc, mean, std, all_mean = summarize(nme, yaw, arithmetic)
    return NMEResult(per_image=nme, image_index=idx, yaw=yaw, bin_of_image=yaw_bins(yaw), bin_mean=bm, bin_std=bs,
                     bin_count=bc, mean=mean, std=std, mean_all_images=all_mean, annotations=annotations,
                     error=error, normalization=normalization, coords=coords, arithmetic=arithmetic,
                     gt_source=g.source)


def compare_options(
    gt: GroundTruth | str | Path | None,
    pred: np.ndarray | str | Path,
    variants: Sequence[Mapping[str, str]] | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
    options: AFLW2000Options | None = None,
):
    """Score the same predictions under several option sets; returns a pandas DataFrame (one row per variant).

    Each variant overrides fields of ``options`` (default :data:`OFFICIAL`; e.g. ``AFLW2000Options(coords='image')``
    for image-pixel predictions). Default variants: ``options`` itself, re-annotated GT, inter-ocular and diagonal
    normalisation, 3D error (when the predictions have z), and the numpy-2 / float64 arithmetic.
    """
    import pandas as pd

    if _is_gt(pred) and not _is_gt(gt):
        gt, pred = pred, gt  # the earlier order compare_options(pred, gt)
    g = _as_gt(gt)
    p = load_predictions(pred, None if indices is not None else N_IMAGES)
    if variants is None:
        variants = [{}, {"annotations": "reannotated"}, {"normalization": "interocular"},
                    {"normalization": "diagonal"}]
        if p.shape[1] == 3:
            variants.append({"error": "3d"})
        variants += [{"arithmetic": "numpy2"}, {"arithmetic": "float64"}]
    rows = []
    for v in variants:
        r = evaluate(g, p, options, indices=indices, **v)
        label = ", ".join(f"{k}={val}" for k, val in v.items()) or "official"
        d = r.as_dict()
        rows.append({"variant": label, **{k: d[k] for k in ("nme_0_30", "nme_30_60", "nme_60_90", "nme_mean",
                                                               "nme_std", "nme_all_images")},
                     **r.options})
    return pd.DataFrame(rows)


def standard_errors(result: NMEResult) -> tuple[tuple[float, float, float], float]:
    """Sampling standard errors (percent) of the bin means and of the balanced mean of ``result``.

    ``SE_b = std_b / sqrt(n_b)`` (population std of the bin, as the official code reports it) and
    ``SE_balanced = sqrt(sum_b SE_b^2) / 3``: how far a mean over a subset of images may sit from the mean over
    another sample of the same population, to first order. NaN where a bin holds fewer than 2 images.
    """
    se = tuple(s / math.sqrt(n) if n >= 2 else math.nan for s, n in zip(result.bin_std, result.bin_count))
    return se, math.sqrt(sum(v * v for v in se)) / 3
