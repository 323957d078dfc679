"""REALY templates: the official OBJ reader, prediction topologies and their 85 barycentric keypoints.

Part of :mod:`facenb.benchmarks.realy` (the protocol is described there).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facenb.errors import InputError
from facenb.io import RealyMesh, read_obj_realy as read_obj  # the official reader lives in facenb.io
from facenb.vocabulary import REALY_REGIONS


#: Column order of ``REALY_error.txt`` (and of every table here).
REGIONS: tuple[str, ...] = REALY_REGIONS

#: The official ``keypoints_region_map`` (indices into the 85 REALY keypoints; the first 68 follow ibug-68).
KEYPOINT_REGIONS: dict[str, tuple[int, ...]] = {
    "forehead": (36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26),
    "mouth": (48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 64),
    "nose": (27, 28, 29, 30, 31, 32, 33, 34, 35),
    "nose_part": (27, 28, 29, 30, 31, 35, 32, 33, 34, 70, 71),
    "cheek": (48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 64, 76, 77, 36, 41, 40, 39, 42, 47, 46, 45, 7, 8,
              9),
    "seven_keypoints": (36, 39, 42, 45, 33, 48, 54),
}

#: Templates shipped with the official code (``data/<NAME>.obj`` + ``data/<NAME>.txt``).
TEMPLATE_NAMES: tuple[str, ...] = ("HIFI3D", "BFM09", "Deep3D", "3DDFA_v2", "FLAME")
N_KEYPOINTS = 85


# =============================================================================================================
# templates and barycentric keypoints
# =============================================================================================================
@dataclass(frozen=True)
class RealyTemplate:
    """A prediction topology: the template mesh and its 85 barycentric REALY keypoints.

    Attributes
    ----------
    name : str
    n_vertices : int
        Every prediction must have exactly this many vertices, in the template's order.
    faces : (m, 3) int64
        Template triangles (official quad split); the keypoint rows index these.
    barycentric : (85, 3) float64
        Rows ``[triangle, w0, w1]`` of the keypoint file.
    obj_path, keypoints_path : Path
    """

    name: str
    n_vertices: int
    faces: np.ndarray
    barycentric: np.ndarray
    obj_path: Path
    keypoints_path: Path

    def keypoints(self, vertices: np.ndarray) -> np.ndarray:
        """The 85 keypoints ``(85, 3) float64`` of a mesh in this topology (:func:`barycentric_keypoints`)."""
        return barycentric_keypoints(vertices, self)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.faces).tobytes())
        h.update(np.ascontiguousarray(self.barycentric).tobytes())
        h.update(str(self.n_vertices).encode())
        return h.hexdigest()[:16]


def _template_dir() -> Path | None:
    """Where the REALY templates live: :func:`facenb.data.locate` (cache or ``$FACENB_DATA_MIRROR``), or None."""
    from facenb import data as _data

    return _data.locate("realy_templates")


# Canonical layout of the 7 alignment keypoints (subject's right eye outer/inner, left inner/outer, subnasale,
# mouth corners) of an average adult face, mm, y up, facing +z. Used only to recognise a keypoint file that
# does not belong to the template (its keypoints then land on unrelated triangles).
_CANONICAL_7 = np.array([[-45.0, 35.0, -10.0], [-15.0, 33.0, -5.0], [15.0, 33.0, -5.0], [45.0, 35.0, -10.0],
                         [0.0, -5.0, 12.0], [-25.0, -35.0, 0.0], [25.0, -35.0, 0.0]])


def _layout_residual(points7: np.ndarray) -> float:
    """RMS residual of the best rotation+scale fit of ``points7`` onto the canonical layout, relative to its size."""
    a = points7 - points7.mean(0)
    b = _CANONICAL_7 - _CANONICAL_7.mean(0)
    na = np.linalg.norm(a)
    if not np.isfinite(na) or na == 0:
        return np.inf
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    r = u @ np.diag([1.0, 1.0, d]) @ vt
    scale = (s[:2].sum() + d * s[2]) / na ** 2
    res = b - scale * a @ r.T
    return float(np.sqrt((res ** 2).sum() / (b ** 2).sum()))


def load_template(template: str | Path, keypoints: str | Path | None = None,
                  data_dir: str | Path | None = None) -> RealyTemplate:
    """Load a REALY template by name (``HIFI3D``, ``BFM09``, ``Deep3D``, ``3DDFA_v2``, ``FLAME``) or OBJ path.

    Parameters
    ----------
    template : str or Path
        A template name -- resolved in ``data_dir``, else ``facenb.data`` (``facenb data fetch realy_templates``),
        else ``$FACENB_DATA_MIRROR/realy_templates`` -- or the path of a template ``.obj``.
    keypoints : str or Path, optional
        The barycentric keypoint file (JSON list of 85 ``[triangle, w0, w1]``); default: the template's ``.txt``.
    data_dir : str or Path, optional
        Folder holding ``<NAME>.obj`` / ``<NAME>.txt``.

    Raises
    ------
    InputError
        Template not found; keypoint file unreadable, not 85 rows, triangle indices out of range, or keypoints that
        do not form a face layout on this template (a keypoint file of another topology).
    """
    t = str(template)
    if t.lower().endswith(".obj") or os.sep in t or Path(t).is_file():
        obj = Path(t)
        name = obj.stem
    else:
        names = {n.lower(): n for n in TEMPLATE_NAMES}
        name = names.get(t.lower(), t)
        root = Path(data_dir) if data_dir is not None else _template_dir()
        if root is None:
            from facenb import data as _data

            _data.raise_if_corrupt("realy_templates")  # a damaged copy says so, not "not found"
            raise InputError(f"REALY template {name!r} not found (no template folder)", None,
                             "run `facenb data fetch realy_templates`, set FACENB_DATA_MIRROR, or pass "
                             "--template PATH/TO/TEMPLATE.obj")
        obj = root / f"{name}.obj"
        if not obj.is_file():
            raise InputError(f"REALY template {name!r} not found", obj,
                             f"use one of {', '.join(TEMPLATE_NAMES)} or pass the template .obj path")
    kp = Path(keypoints) if keypoints is not None else obj.with_suffix(".txt")
    mesh = read_obj(obj)
    if not kp.is_file():
        raise InputError("barycentric keypoint file not found", kp,
                         "pass --template-keypoints FILE.txt (JSON list of 85 [triangle, w0, w1])")
    try:
        bary = np.array(json.loads(kp.read_text()), dtype=np.float64)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InputError("not a REALY barycentric keypoint file (JSON list of [triangle, w0, w1])", kp,
                         "use the template's .txt from the official REALY data/ folder") from None
    if bary.shape != (N_KEYPOINTS, 3):
        raise InputError(f"expected {N_KEYPOINTS} rows [triangle, w0, w1], found shape {bary.shape}", kp,
                         "use the template's .txt from the official REALY data/ folder")
    tri = bary[:, 0]
    if (tri != np.round(tri)).any() or tri.min() < 0 or tri.max() >= len(mesh.faces):
        raise InputError(f"triangle indices up to {int(tri.max())} but the template {obj.name} has "
                         f"{len(mesh.faces)} triangles: a keypoint file for another topology", kp,
                         f"use the keypoint file made for {obj.name} (same stem, .txt)")
    tmpl = RealyTemplate(name, len(mesh.vertices), mesh.faces, bary, obj, kp)
    kp7 = barycentric_keypoints(mesh.vertices, tmpl)[list(KEYPOINT_REGIONS["seven_keypoints"])]
    if _layout_residual(kp7) > 0.35:
        raise InputError(f"its keypoints do not form a face on {obj.name} (eye corners, nose, mouth corners out of "
                         "place): a keypoint file for another topology", kp,
                         f"use the keypoint file made for {obj.name} (same stem, .txt)")
    return tmpl


def barycentric_keypoints(vertices: np.ndarray, template: RealyTemplate) -> np.ndarray:
    """The 85 REALY keypoints of a mesh in the template's topology (official ``get_barycentric_coordinates``).

    ``k_j = w0 v[f0] + w1 v[f1] + (1 - w0 - w1) v[f2]``; computed as the official code does (the product of the
    vertices' own dtype with float64 weights, summed over the 3 corners).

    Returns
    -------
    (85, 3) float64
    """
    b = template.barycentric
    tri = template.faces[b[:, 0].astype(np.int64)]
    w = np.stack([b[:, 1], b[:, 2], 1.0 - b[:, 1] - b[:, 2]]).T.reshape(-1, 3, 1)
    return np.sum(np.asarray(vertices)[tri] * w, axis=1)
