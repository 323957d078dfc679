"""Alignment: Procrustes, Rodrigues rotations, Powell's dogleg, and scan-to-mesh similarity refinement.

Convention: points are ``(n, 3)`` rows; a similarity ``x' = s R x + t`` is returned both as its parts and as a
4 x 4 homogeneous matrix ``T`` acting on column vectors (``apply_transform(T, points)`` for rows).

The functions here reproduce the numerics of the official NoW scorer (``soubhiksanyal/now_evaluation``):

* :func:`procrustes` is the MATLAB-style similarity Procrustes the NoW code uses (reflections allowed with
  ``reflection='best'``), evaluated with numpy in the dtype of its inputs (float32 landmarks stay float32, as
  in the official code).
* :func:`rodrigues` is OpenCV's Rodrigues formula and analytic Jacobian (what ``smpl_webuser``'s chumpy
  ``Rodrigues`` node uses).
* :func:`dogleg` is chumpy 0.70's ``minimize_dogleg`` trust-region loop (Powell's dogleg after Lourakis &
  Argyros 2005) with its step rules, radius update and stopping tests ``e_1``, ``e_2``, ``e_3``.
* :func:`cg_legacy` is scipy 1.5's ``scipy.sparse.linalg.cg`` with its legacy tolerance (``tol=1e-5``
  relative to ``||b||``, exit at ``x = 0`` when ``||b|| <= tol``), which chumpy uses as the Gauss-Newton
  solver in the NoW refinement; its inexact steps are part of the official optimum.
* :func:`refine_scan_to_mesh` minimises ``sum_i d(p_i, s R(r) M + t)^2`` over ``(s, r, t)`` (or ``(r, t)``)
  with that optimiser: the NoW rigid(+scale) refinement.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from facenb.distance import SurfaceQuery, spatial_order

__all__ = [
    "Similarity",
    "procrustes",
    "similarity_matrix",
    "apply_transform",
    "rodrigues",
    "cg_legacy",
    "DoglegResult",
    "dogleg",
    "Refinement",
    "refine_scan_to_mesh",
    "single_threaded_blas",
]


class Similarity(NamedTuple):
    """A similarity transform ``x' = scale * rotation @ x + translation``.

    Attributes
    ----------
    scale : float
    rotation : (3, 3) float64
        Orthogonal; ``det = -1`` if a reflection was chosen.
    translation : (3,) float64, same units as the target points
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """The 4 x 4 homogeneous matrix of the transform."""
        return similarity_matrix(self.scale, self.rotation, self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform ``points (n, 3)``."""
        return apply_transform(self.matrix, points)


def similarity_matrix(scale: float, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4 x 4 matrix of ``x' = scale * rotation @ x + translation``."""
    T = np.eye(4)
    T[:3, :3] = float(scale) * np.asarray(rotation, dtype=np.float64)
    T[:3, 3] = np.asarray(translation, dtype=np.float64)
    return T


def apply_transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4 x 4 homogeneous transform to row points ``(n, 3)``."""
    p = np.asarray(points, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


# --------------------------------------------------------------------------------------------- Procrustes
class _ProcrustesRaw(NamedTuple):
    scale: np.generic
    rotation_rows: np.ndarray  # T with Z = scale * Y @ T + c (row-vector convention, official 'rotation')
    translation: np.ndarray


def _procrustes_raw(X: np.ndarray, Y: np.ndarray, scaling: bool, reflection: str | bool) -> _ProcrustesRaw:
    # Operation order and dtypes follow the MATLAB port used by NoW (and FG2018); do not "simplify".
    muX = X.mean(0)
    muY = Y.mean(0)
    X0 = X - muX
    Y0 = Y - muY
    ssX = (X0 ** 2.0).sum()
    ssY = (Y0 ** 2.0).sum()
    normX = np.sqrt(ssX)
    normY = np.sqrt(ssY)
    X0 = X0 / normX
    Y0 = Y0 / normY
    A = np.dot(X0.T, Y0)
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    V = Vt.T
    T = np.dot(V, U.T)
    if reflection != "best":
        have_reflection = np.linalg.det(T) < 0
        if bool(reflection) != bool(have_reflection):
            V[:, -1] *= -1
            s[-1] *= -1
            T = np.dot(V, U.T)
    traceTA = s.sum()
    b = traceTA * normX / normY if scaling else 1
    c = muX - b * np.dot(muY, T)
    return _ProcrustesRaw(b, T, c)


def procrustes(
    target: np.ndarray,
    source: np.ndarray,
    *,
    scaling: bool = True,
    reflection: str | bool = "best",
) -> Similarity:
    """Similarity (or rigid) Procrustes mapping ``source`` onto ``target``.

    Minimises ``sum_k || target_k - (s R source_k + t) ||^2`` over rotation ``R`` (a reflection is allowed
    when ``reflection='best'`` and it fits better -- the NoW scorer's setting), scale ``s`` (if ``scaling``)
    and translation ``t``. Closed form via the SVD of the cross-covariance of the centred, unit-norm point
    sets (Gower 1975; the MATLAB ``procrustes`` port used by the NoW and FG2018 scorers).

    Parameters
    ----------
    target, source : (k, 3) float
        Corresponding points. The arithmetic runs in the inputs' dtype (float32 landmarks stay float32, as
        in the official NoW code); the result is returned in float64.
    scaling : bool
        Estimate the scale (else ``s = 1``).
    reflection : 'best', True or False
        ``'best'``: reflection allowed; ``True``/``False``: forced / forbidden.

    Returns
    -------
    Similarity
        ``target ~ scale * rotation @ source + translation``.
    """
    X = np.asarray(target)
    Y = np.asarray(source)
    if X.shape != Y.shape or X.ndim != 2:
        raise ValueError(f"procrustes needs two (k, d) arrays of equal shape, got {X.shape} and {Y.shape}")
    raw = _procrustes_raw(X, Y, scaling, reflection)
    return Similarity(float(raw.scale), np.asarray(raw.rotation_rows, dtype=np.float64).T,
                      np.asarray(raw.translation, dtype=np.float64))


# ---------------------------------------------------------------------------------------------- Rodrigues
_D_RX = np.array(
    [[0, 0, 0, 0, 0, -1, 0, 1, 0], [0, 0, 1, 0, 0, 0, -1, 0, 0], [0, -1, 0, 1, 0, 0, 0, 0, 0]], dtype=np.float64
)
_I9 = np.eye(3).ravel()


def rodrigues(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation matrix of an axis-angle vector and its Jacobian (OpenCV's ``cv2.Rodrigues``).

    ``R = cos(θ) I + (1 - cos θ) u uᵀ + sin(θ) [u]ₓ`` with ``θ = |r|``, ``u = r / θ``.

    Parameters
    ----------
    r : (3,) float
        Axis-angle vector, radians.

    Returns
    -------
    R : (3, 3) float64
    dR : (3, 3, 3) float64
        ``dR[k] = ∂R / ∂r_k`` (OpenCV's analytic formula; at ``θ < DBL_EPSILON`` the derivative of
        ``I + [r]ₓ``).
    """
    r = np.asarray(r, dtype=np.float64).ravel()
    theta = float(np.sqrt(r @ r))
    if theta < np.finfo(np.float64).eps:
        return np.eye(3), _D_RX.reshape(3, 3, 3).copy()
    c, s = np.cos(theta), np.sin(theta)
    c1 = 1.0 - c
    itheta = 1.0 / theta
    u = r * itheta
    x, y, z = u
    rrt = np.array([x * x, x * y, x * z, x * y, y * y, y * z, x * z, y * z, z * z])
    r_x = np.array([0, -z, y, z, 0, -x, -y, x, 0], dtype=np.float64)
    R = (c * _I9 + c1 * rrt + s * r_x).reshape(3, 3)
    drrt = np.array(
        [
            [x + x, y, z, y, 0, 0, z, 0, 0],
            [0, x, 0, x, y + y, z, 0, z, 0],
            [0, 0, x, 0, 0, y, x, y, z + z],
        ]
    )
    # row i: a0_i I + a1_i rrt + a2 drrt_i + a3_i [u]x + a4 D_i, all rows at once (same operations, same order)
    a0 = (-s * u)[:, None]
    a1 = ((s - 2 * c1 * itheta) * u)[:, None]
    a2 = c1 * itheta
    a3 = ((c - s * itheta) * u)[:, None]
    a4 = s * itheta
    J = a0 * _I9 + a1 * rrt + a2 * drrt + a3 * r_x + a4 * _D_RX.reshape(3, 9)
    return R, J.reshape(3, 3, 3)


# -------------------------------------------------------------------------------------------------- solvers
def _norm(x: np.ndarray) -> float:
    """``np.linalg.norm(x)`` of a float64 vector, bit for bit (numpy computes ``sqrt(x.ravel('K').dot(...))``),
    without its ~8 us of argument handling: the dogleg and CG take ~20 norms per iteration."""
    x = x.ravel(order="K")
    return math.sqrt(x.dot(x))


def _norm_inf(x: np.ndarray) -> float:
    """``np.linalg.norm(x, np.inf)`` of a float64 vector: ``max |x_i|``."""
    return float(np.abs(x).max())


def cg_legacy(A: np.ndarray, b: np.ndarray, tol: float = 1e-5, maxiter: int = 2000) -> np.ndarray:
    """Conjugate gradients exactly as scipy 1.5's ``cg(A, b, tol=tol, maxiter=maxiter)`` (legacy ``atol``).

    Starts at ``x = 0``; returns ``0`` at once when ``||b|| <= tol`` (absolute: scipy's legacy check); else
    iterates the Templates CG (no preconditioner) until ``||r|| <= tol ||b||``, re-checking convergence with
    the true residual ``b - A x`` after the first iteration, or ``maxiter`` iterations.

    Parameters
    ----------
    A : (m, m) float64, symmetric positive (semi-)definite
    b : (m,) float64

    Returns
    -------
    (m,) float64
    """
    b = np.asarray(b, dtype=np.float64).ravel()
    x = np.zeros_like(b)
    bnrm2 = _norm(b)
    if bnrm2 <= tol:  # _get_atol legacy: residual of x0 = 0 compared with the *relative* tol
        return x
    atol = tol * bnrm2
    r = b.copy()
    if _norm(r) <= atol:
        return x
    p = np.zeros_like(b)
    rho1 = 0.0
    for it in range(1, maxiter + 1):
        # z = r (no preconditioner); p = z + (rho / rho1) p as one new array: the same operations as scipy's copies
        rho = float(r.dot(r))
        p = r + (rho / rho1) * p if it > 1 else r.copy()
        q = A @ p
        alpha = rho / float(np.dot(p, q))
        x += alpha * p
        r += (-alpha) * q
        converged = _norm(r) <= atol
        if converged and it > 1:
            r = b - A @ x
            converged = _norm(r) <= atol
        if converged:
            break
        rho1 = rho
    return x


class DoglegResult(NamedTuple):
    """Outcome of :func:`dogleg`.

    Attributes
    ----------
    x : (p,) float64
        Final parameters.
    residuals : (n,) float64
        Residual vector at ``x``.
    iterations : int
        Outer iterations (accepted or attempted Jacobian updates).
    evaluations : int
        Residual evaluations.
    reason : str
        Which stopping rule fired.
    """

    x: np.ndarray
    residuals: np.ndarray
    iterations: int
    evaluations: int
    reason: str


def dogleg(
    fun: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    *,
    delta_0: float | None = None,
    e_1: float = 1e-15,
    e_2: float = 1e-15,
    e_3: float = 0.0,
    maxiter: int = 200,
    solve: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> DoglegResult:
    """Powell's dogleg for ``min_x ||f(x)||²``, step for step as chumpy 0.70's ``minimize_dogleg``.

    Each iteration: Cauchy step ``d_sd = (|g|² / |J g|²) g`` with ``g = -Jᵀ f``; if ``|d_sd| >= Δ`` take it
    shortened to ``Δ``; else the Gauss-Newton step ``d_gn = solve(JᵀJ, g)`` if ``|d_gn| <= Δ``, else the
    dogleg point on the segment between them at distance ``Δ``. A step is accepted iff the sum of squares
    decreases; ``ρ`` = actual / predicted decrease updates ``Δ`` (``ρ > 0.9``: ``Δ = max(Δ, 2.5|d|)``;
    ``ρ < 0.05``: ``Δ /= 4``). Stops when ``max|g| < e_1``, ``|d| <= e_2 |x|``, ``Δ <= e_2 |x|``, after an
    accepted step whose relative decrease is below ``e_3`` (that step is kept), or after ``maxiter``.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, J)``: residuals ``(n,)`` and Jacobian ``(n, p)`` at ``x``.
    x0 : (p,) float
    delta_0 : float or None
        Initial trust radius (None: the first Gauss-Newton step length).
    e_1, e_2, e_3 : float
        Stopping thresholds (gradient, step, relative improvement).
    maxiter : int
    solve : callable, optional
        Linear solver for the Gauss-Newton system (default ``numpy.linalg.solve``).
    callback : callable, optional
        ``callback(iteration, sum_of_squares)`` at the start (iteration 0) and after every accepted step (a trace
        of the objective; no effect on the result).
    """
    solve = solve or (lambda A, b: np.linalg.solve(A, b))
    p = np.asarray(x0, dtype=np.float64).ravel().copy()
    f, J = fun(p)
    nfev = 1
    if callback is not None:
        callback(0, float(f @ f))
    A = J.T @ J
    g = J.T @ (-f)
    delta = delta_0
    done = False
    reason = "maxiter"
    if _norm_inf(g) < e_1:
        done, reason = True, "gradient"
    iteration = 0
    while not done:
        iteration += 1
        Jg = J @ g
        d_sd = (_norm(g) ** 2 / _norm(Jg) ** 2) * g
        d_gn = None
        while True:
            improved = False
            if delta is not None and _norm(d_sd) >= delta:
                d_dl = (delta / _norm(d_sd)) * d_sd
            else:
                if d_gn is None:
                    d_gn = np.asarray(solve(A, g), dtype=np.float64).ravel()
                if delta is None or _norm(d_gn) <= delta:
                    d_dl = d_gn
                    if delta is None:
                        delta = _norm(d_gn)
                else:
                    delta_sq = delta ** 2
                    diff = d_gn - d_sd
                    sqnorm_sd = _norm(d_sd) ** 2
                    pnow = diff @ diff * delta_sq + (d_gn @ d_sd) ** 2 - _norm(d_gn) ** 2 * sqnorm_sd
                    beta = float(delta_sq - sqnorm_sd) / float(diff @ d_sd + np.sqrt(pnow))
                    d_dl = d_sd + beta * diff
            if _norm(d_dl) <= e_2 * _norm(p):
                done, reason = True, "step"
            else:
                f_new, J_new = fun(p + d_dl)
                nfev += 1
                sse, sse_new = _norm(f) ** 2, _norm(f_new) ** 2
                rho = sse - sse_new
                if rho > 0:
                    rho /= 2.0 * (g @ d_dl) - d_dl @ (A @ d_dl)
                improved = rho > 0
                if improved:
                    p = p + d_dl
                    if callback is not None:
                        callback(iteration, float(sse_new))
                    if e_3 > 0.0 and (sse - sse_new) / sse < e_3:
                        f = f_new
                        done, reason = True, "improvement"
                    else:
                        f, J = f_new, J_new
                        A = J.T @ J
                        g = J.T @ (-f)
                        if _norm_inf(g) < e_1:
                            done, reason = True, "gradient"
                if rho > 0.9:
                    delta = max(delta, 2.5 * _norm(d_dl))
                elif rho < 0.05:
                    delta *= 0.25
                if delta <= e_2 * _norm(p):
                    done, reason = True, "trust_region"
            if done or improved:
                break
        if not done and iteration >= maxiter:
            done, reason = True, "maxiter"
    return DoglegResult(p, f, iteration, nfev, reason)


# -------------------------------------------------------------------------------- scan-to-mesh refinement
def single_threaded_blas():
    """Context limiting BLAS to one thread: facenb's dense products are small ((n x 7), (7 x 7) here; REALY's
    per-region work next to SuperLU), and OpenBLAS threads waiting on a busy machine cost more than they save
    (each ``norm``/``dot`` of an n-vector ~0.5 ms); results are unchanged up to the summation order of BLAS
    reductions, and no longer depend on the thread count. A no-op when threadpoolctl or BLAS is not found.
    Used by the NoW refinement and :func:`facenb.benchmarks.realy.evaluate_subject`."""
    global _BLAS_CONTROLLER
    try:
        if _BLAS_CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER = ThreadpoolController()
        return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
    except Exception:  # noqa: BLE001 - threadpoolctl missing or no BLAS found: run as is
        import contextlib

        return contextlib.nullcontext()


_BLAS_CONTROLLER = None


class Refinement(NamedTuple):
    """Result of :func:`refine_scan_to_mesh`.

    Attributes
    ----------
    transform : Similarity
        ``mesh' = scale * rotation @ mesh + translation`` (rotation about the origin of the mesh's frame).
    distances : (n,) float64
        Unsigned distances from the scan points to the transformed mesh (same units as the points).
    iterations, evaluations : int
    reason : str
        Stopping rule of the optimiser.
    """

    transform: Similarity
    distances: np.ndarray
    iterations: int
    evaluations: int
    reason: str


def refine_scan_to_mesh(
    points: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    scale: bool = True,
    scale_penalty: float = 100.0,
    delta_0: float = 0.1,
    e_3: float = 1e-4,
    maxiter: int = 200,
    solver: str = "cg-legacy",
    callback: Callable[[int, float], None] | None = None,
) -> Refinement:
    """Similarity refinement of a mesh onto scan points (the NoW protocol's second alignment step).

    Minimises, with :func:`dogleg`,

    .. math:: E(s, r, t) = \\sum_i d\\big(p_i,\\ s R(r) M + t\\big)^2 + \\big(w (|s| - s)\\big)^2

    where ``d`` is the unsigned point-to-surface distance, ``R(r)`` the Rodrigues rotation about the origin
    of the mesh frame, and the second term (weight ``w = scale_penalty``) the official penalty against a
    negative scale. Start ``s = 1, r = 0, t = 0``; the official options ``delta_0 = 0.1``, ``e_3 = 1e-4``;
    Gauss-Newton steps by :func:`cg_legacy` as in the official code (``solver='exact'`` uses a direct solve:
    a better optimum, not the official one). With ``scale=False`` only ``(r, t)`` are free (NoW metric).

    The mesh is queried in its own frame (scan points mapped by the inverse similarity), so one AABB tree
    serves all iterations; distances are scaled back by ``|s|``.

    Parameters
    ----------
    points : (n, 3) float64, millimetres
        Cropped scan vertices.
    vertices : (m, 3) float64, millimetres
        Mesh (already roughly aligned, e.g. by landmark Procrustes).
    faces : (k, 3) int
    callback : callable, optional
        Passed to :func:`dogleg`: ``callback(iteration, E)`` at the start and after every accepted step.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64)
    query = SurfaceQuery(vertices, faces)
    n = len(pts)
    order = spatial_order(pts)  # work in Z-order (coherent tree walks); residuals put back in the caller's order
    pts_ordered = pts[order]
    nparam = 7 if scale else 6
    hint = None  # each point's closest triangle at the previous evaluation

    def unpack(x):
        if scale:
            return x[0], x[1:4], x[4:7]
        return 1.0, x[0:3], x[3:6]

    def fun(x):
        nonlocal hint
        # residuals and Jacobian rows in the points' Z-order (the sum of squares, J^T J and J^T f do not depend on
        # the row order; only their floating-point summation order changes, at the 1e-16 level); the residuals
        # are put back in the caller's order at the end
        s, rv, t = unpack(x)
        R, dR = rodrigues(rv)
        if s == 0.0:
            q_local = np.zeros_like(pts_ordered)  # all vertices collapse onto t: the closest point is t itself
        else:
            y = ((pts_ordered - t) @ R) / s  # R^T (p - t) / s, row form
            # each point's closest triangle at the previous evaluation starts its search (same minimum, less work)
            if query.engine == "c":  # the closest points and triangles alone (the distances are computed below)
                _, hint, q_local = query._c_query(np.ascontiguousarray(y), hint)
            else:
                found = query.query(y, hint=hint)
                hint, q_local = found.face_index, found.points
        q = s * (q_local @ R.T) + t
        diff = pts_ordered - q
        dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        with np.errstate(invalid="ignore", divide="ignore"):
            u = diff / dist[:, None]
        u[dist == 0.0] = 0.0  # no direction at a contact point (the official Jacobian is NaN there)
        # d/dθ of u . (M q) for M in (R, dR/dr_0..2): with W = [R | dR_0 | dR_1 | dR_2]^T u (12 x n), column k of
        # D is sum_j W[3k + j] q_j; computed on (3, n) rows, which numpy streams fastest
        W = np.concatenate([R, dR[0], dR[1], dR[2]], axis=1).T @ u.T
        qt = q_local.T
        J = np.empty((n + (1 if scale else 0), nparam), order="F")  # column-major: each column written at once
        col = 0
        acc, tmp = np.empty(n), np.empty(n)  # scratch: the same products and sums as the plain expressions

        def row_dot(w0):  # W[w0] * qt[0] + W[w0 + 1] * qt[1] + W[w0 + 2] * qt[2], in that order
            np.multiply(W[w0], qt[0], out=acc)
            np.add(acc, np.multiply(W[w0 + 1], qt[1], out=tmp), out=acc)
            return np.add(acc, np.multiply(W[w0 + 2], qt[2], out=tmp), out=acc)

        if scale:
            np.negative(row_dot(0), out=J[:n, 0])
            col = 1
        for k in range(3):
            np.multiply(-s, row_dot(3 + 3 * k), out=J[:n, col + k])
        J[:n, col + 3:col + 6] = -u
        if scale:
            f = np.empty(n + 1)
            f[:n] = dist
            f[n] = scale_penalty * (abs(s) - s)
            J[n, :] = 0.0
            J[n, 0] = scale_penalty * (np.sign(s) - 1.0)
        else:
            f = dist
        return f, J

    x0 = np.zeros(nparam)
    if scale:
        x0[0] = 1.0
    solve = cg_legacy if solver == "cg-legacy" else None
    if solver not in ("cg-legacy", "exact"):
        raise ValueError("solver must be 'cg-legacy' (official) or 'exact'")
    with single_threaded_blas():
        out = dogleg(fun, x0, delta_0=delta_0, e_3=e_3, maxiter=maxiter, solve=solve, callback=callback)
    s, rv, t = unpack(out.x)
    R, _ = rodrigues(rv)
    residuals = np.empty(n)
    residuals[order] = out.residuals[:n]  # back to the caller's point order
    return Refinement(Similarity(float(s), R, np.asarray(t, dtype=np.float64)), residuals,
                      out.iterations, out.evaluations, out.reason)
