"""Synthetic predictions made from real geometry, for demonstrations and tests of the scorers.

:func:`degrade` turns a real scan into a plausible "prediction": vertex clustering on a randomly rotated and
offset voxel grid (a coarser, re-triangulated surface), Gaussian noise per coordinate, optional smooth bumps,
then a random similarity transform -- the recipe of the NoW conformance predictions, implemented here from its
description.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from facenb.align import rodrigues

__all__ = ["Degraded", "degrade", "random_similarity"]


class Degraded(NamedTuple):
    """A degraded copy of a mesh: ``vertices (m, 3)``, ``faces (k, 3)``, the ``transform (4, 4)`` applied last,
    and ``landmarks (l, 3)`` mapped and jittered the same way (if landmarks were given)."""

    vertices: np.ndarray
    faces: np.ndarray
    transform: np.ndarray
    landmarks: np.ndarray | None


def random_similarity(rng: np.random.Generator, rot_deg: float = 30.0, trans: float = 20.0,
                      scale: float = 1.0) -> np.ndarray:
    """A 4 x 4 similarity: random axis, angle uniform in +-``rot_deg``, translation uniform in +-``trans``."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    R, _ = rodrigues(axis * np.deg2rad(rng.uniform(-rot_deg, rot_deg)))
    T = np.eye(4)
    T[:3, :3] = scale * R
    T[:3, 3] = rng.uniform(-trans, trans, size=3)
    return T


def degrade(vertices: np.ndarray, faces: np.ndarray, *, voxel_mm: float = 4.0, noise_mm: float = 0.3,
            bump_mm: float = 0.0, landmarks: np.ndarray | None = None, lmk_sigma_mm: float = 1.0,
            rot_deg: float = 30.0, trans: float = 20.0, scale: float = 1.0, seed: int = 0) -> Degraded:
    """Coarsen, perturb and move a mesh (millimetres).

    Parameters
    ----------
    vertices : (n, 3) float, millimetres
    faces : (k, 3) int
    voxel_mm : float
        Vertex-clustering cell size: each occupied cell becomes one vertex at the mean of its members; faces
        collapsing to fewer than 3 distinct vertices, and duplicates, are dropped.
    noise_mm : float
        Std of Gaussian noise added to every coordinate.
    bump_mm : float
        Amplitude of 8 smooth Gaussian bumps (width 15 mm) along the vertex normal direction (a shape error).
    landmarks : (l, 3) float, optional
        Mapped with the same transform, plus N(0, ``lmk_sigma_mm``) jitter.
    rot_deg, trans, scale :
        The final random similarity (see :func:`random_similarity`).
    seed : int
    """
    rng = np.random.default_rng(seed)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    R0, _ = rodrigues(rng.normal(size=3))
    local = v @ R0.T + rng.uniform(0, voxel_mm, size=3)
    cells = np.floor(local / voxel_mm).astype(np.int64)
    _, cluster = np.unique(cells, axis=0, return_inverse=True)
    cluster = cluster.ravel()
    nc = cluster.max() + 1
    counts = np.bincount(cluster, minlength=nc).astype(np.float64)
    new_v = np.column_stack([np.bincount(cluster, weights=v[:, k], minlength=nc) for k in range(3)]) / counts[:, None]
    nf = cluster[f]
    ok = (nf[:, 0] != nf[:, 1]) & (nf[:, 1] != nf[:, 2]) & (nf[:, 0] != nf[:, 2])
    nf = nf[ok]
    nf = nf[np.unique(np.sort(nf, axis=1), axis=0, return_index=True)[1]]
    new_v = new_v + rng.normal(scale=noise_mm, size=new_v.shape)
    if bump_mm:
        centre = new_v.mean(axis=0)
        normals = new_v - centre
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        for c in new_v[rng.choice(len(new_v), 8, replace=False)]:
            w = np.exp(-np.sum((new_v - c) ** 2, axis=1) / (2 * 15.0 ** 2))
            new_v = new_v + normals * (bump_mm * rng.normal() * w)[:, None]
    T = random_similarity(rng, rot_deg, trans, scale)
    out_v = new_v @ T[:3, :3].T + T[:3, 3]
    out_l = None
    if landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float64) + rng.normal(scale=lmk_sigma_mm, size=np.shape(landmarks))
        out_l = lm @ T[:3, :3].T + T[:3, 3]
    return Degraded(out_v, nf, T, out_l)
