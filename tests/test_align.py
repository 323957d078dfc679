import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from facenb.align import (apply_transform, cg_legacy, dogleg, procrustes, refine_scan_to_mesh, rodrigues,
                          similarity_matrix)

from _synth import face_patch, random_similarity


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_procrustes_recovers_known_similarity(seed):
    rng = np.random.default_rng(seed)
    src = rng.normal(scale=40.0, size=(7, 3))
    s, R, t = random_similarity(rng)
    dst = s * src @ R.T + t
    sim = procrustes(dst, src)
    assert sim.scale == pytest.approx(s, rel=1e-9)
    np.testing.assert_allclose(sim.rotation, R, atol=1e-9)
    np.testing.assert_allclose(sim.translation, t, atol=1e-7)
    np.testing.assert_allclose(sim.apply(src), dst, atol=1e-7)


def test_procrustes_reflection_modes():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(7, 3))
    mirrored = src * np.array([-1.0, 1.0, 1.0])
    assert np.linalg.det(procrustes(mirrored, src).rotation) == pytest.approx(-1.0)  # official 'best'
    assert np.linalg.det(procrustes(mirrored, src, reflection=False).rotation) == pytest.approx(1.0)


def test_procrustes_keeps_float32_arithmetic():
    rng = np.random.default_rng(4)
    src = rng.normal(scale=30, size=(7, 3)).astype(np.float32)
    dst = (src * 1.3 + 5).astype(np.float32)
    a = procrustes(dst, src)
    b = procrustes(dst.astype(np.float64), src.astype(np.float64))
    assert a.scale != b.scale  # float32 arithmetic really happened
    assert a.scale == pytest.approx(b.scale, rel=1e-5)


def test_similarity_matrix_apply():
    T = similarity_matrix(2.0, np.eye(3), [1, 2, 3])
    np.testing.assert_allclose(apply_transform(T, [[1, 1, 1]]), [[3, 4, 5]])


@settings(max_examples=50, deadline=None)
@given(r=st.lists(st.floats(-3, 3), min_size=3, max_size=3))
def test_rodrigues_matches_scipy_and_finite_differences(r):
    r = np.array(r)
    R, dR = rodrigues(r)
    np.testing.assert_allclose(R, Rotation.from_rotvec(r).as_matrix(), atol=1e-12)
    if np.linalg.norm(r) > 1e-3:
        h = 1e-6
        for k in range(3):
            e = np.zeros(3)
            e[k] = h
            fd = (rodrigues(r + e)[0] - rodrigues(r - e)[0]) / (2 * h)
            np.testing.assert_allclose(dR[k], fd, atol=1e-6)


def test_rodrigues_at_zero():
    R, dR = rodrigues(np.zeros(3))
    np.testing.assert_array_equal(R, np.eye(3))
    for k in range(3):
        e = np.zeros(3)
        e[k] = 1.0
        skew = np.array([[0, -e[2], e[1]], [e[2], 0, -e[0]], [-e[1], e[0], 0]])
        np.testing.assert_array_equal(dR[k], skew)  # d(I + [r]x)/dr_k


def test_cg_legacy_behaviour():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(7, 7))
    A = M @ M.T + 7 * np.eye(7)
    b = rng.normal(size=7)
    x = cg_legacy(A, b)
    assert np.linalg.norm(A @ x - b) <= 1e-5 * np.linalg.norm(b) * 1.0001
    np.testing.assert_array_equal(cg_legacy(A, b * 1e-6), np.zeros(7))  # ||b|| <= tol: legacy early exit
    # ill-conditioned: stops at the relative residual, not at the exact solution
    Q, _ = np.linalg.qr(rng.normal(size=(60, 60)))
    A2 = Q @ np.diag(np.logspace(4, 0, 60)) @ Q.T
    b2 = rng.normal(size=60)
    rel = np.linalg.norm(A2 @ cg_legacy(A2, b2) - b2) / np.linalg.norm(b2)
    assert 1e-9 < rel <= 1e-5  # stopped at the legacy tolerance, not at the exact solution


def test_dogleg_solves_rosenbrock():
    def fun(x):
        f = np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])
        J = np.array([[-20 * x[0], 10.0], [-1.0, 0.0]])
        return f, J

    out = dogleg(fun, np.array([-1.2, 1.0]), delta_0=0.1, maxiter=500)
    np.testing.assert_allclose(out.x, [1.0, 1.0], atol=1e-8)


@pytest.mark.parametrize("scale", [True, False])
def test_refinement_recovers_small_misalignment(scale):
    verts, faces, _ = face_patch(4)
    rng = np.random.default_rng(1)
    pts = verts[rng.choice(len(verts), 800, replace=False)]
    R = Rotation.from_rotvec([0.02, -0.03, 0.01]).as_matrix()
    s = 1.02 if scale else 1.0
    moved = s * verts @ R.T + np.array([1.0, -0.5, 0.8])
    ref = refine_scan_to_mesh(pts, moved, faces, scale=scale, e_3=0.0, solver="exact")
    assert ref.distances.max() < 1e-3
