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
