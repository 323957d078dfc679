"""Optimal-step non-rigid ICP (Amberg, Romdhani & Vetter, CVPR 2007), as a general function of its schedule.

Each vertex ``i`` of a source mesh gets an affine map ``X_i (4, 3)``; one linear solve of a stage minimises

.. math:: \\sum_i w_i^2 \\lVert d_i^T X_i - u_i \\rVert^2
          + \\alpha^2 \\lVert (M \\otimes G) X \\rVert_F^2
          + \\sum_{k} \\beta_k^2 \\lVert d_k^T X_k - l_k \\rVert^2 ,

with ``d_i = (v_i, 1)`` (the current source vertex, float32-rounded as REALY's code builds its matrices), ``u_i`` the
nearest target point, ``w_i = 1`` for inliers (``|v_i - u_i| < max(2 mean, 1)``) and 0 otherwise, ``M`` the
node-arc incidence matrix of the source's unique edges, ``G = diag(g)`` the stiffness weights of the 4 affine rows,
``l_k`` keypoint targets with weights ``β_k``. A stage repeats solves until ``|X - X_prev|_F <= ε`` (or after
``max_steps``); a keypoint-only stage is solved once, in closed form. The *schedule* -- the list of
:class:`NICPStage` -- is a parameter: :data:`facenb.benchmarks.realy.protocol.OFFICIAL_NICP_SCHEDULE` and
``..._KEYPOINTS`` reproduce ``czh-98/REALY@3f13e9ad`` ``utils/NICP.py``.

Solves: the 4n x 4n system is assembled directly in one fill-reducing order per source mesh (minimum degree on the
vertex graph, each vertex's 4 unknowns kept together; computed once, reused by every factorisation of every stage).
With CHOLMOD (``cvxopt.cholmod``, bundled in cvxopt's wheels) every system is solved directly, as REALY does
(``sksparse.cholmod.cholesky_AAt``, a fresh Cholesky factorisation of ``A^T A`` per step): approximate minimum
degree order, one symbolic supernodal analysis per source mesh, one numeric factorisation per step and one solve
for the 3 right-hand sides at once (CHOLMOD's ``cholmod_l_solve`` reached with ctypes; cvxopt's ``cholmod.solve``,
one column at a time, when that is not available) -- ~3x less CPU than the fallback on REALY's scan regions.
Without cvxopt (or ``solver="scipy"``) each stage's first system is factorised with SuperLU (multiple minimum
degree order) and its later systems are solved by conjugate gradients preconditioned with that factorisation
(relative energy-norm error 1e-12). The two paths agree to ~1e-10 relative (solver rounding), except where that
rounding moves a vertex coordinate across a float32 rounding boundary (``d_i`` is float32, as REALY's): the step's
``d_i`` then differ by one float32 ulp in that entry and later steps carry it, so the results differ by a few
float32 ulps of the coordinates (~1e-7 mm; which steps flip depends on the BLAS kernels the machine runs).

REALY's steps never repeat a matrix (every step moves every vertex, so ``d_i`` changes), so no factorisation can
be reused without changing the computation.
"""
from __future__ import annotations

import ctypes
from typing import Callable, NamedTuple, Sequence

import numpy as np

from facenb.distance import NearestPoints

# scipy.sparse is imported where it is used (the SuperLU path, the MMD ordering): the CHOLMOD path does not need it

__all__ = ["NICPStage", "NonRigidResult", "optimal_step_nicp", "official_keypoint_weight"]


class NICPStage(NamedTuple):
    """One stage of :func:`optimal_step_nicp`.

    Attributes
    ----------
    alpha : float
        Stiffness ``α``.
    epsilon : float
        The stage stops when ``|X - X_prev|_F <= epsilon`` (tested before every solve).
    gamma : tuple of 4 floats
        ``g``: stiffness weights of the 3 linear rows and the translation row (used in float32, as REALY).
    keypoints_only : bool
        One closed-form solve with the keypoint terms only (no nearest-point term).
    keypoint_weight : float or None
        ``β`` of this stage; None: ``keypoint_weight(count)`` of :func:`optimal_step_nicp` (``count`` = solves so
        far over all stages).
    max_steps : int or None
        Also stop after more than this many solves.
    """

    alpha: float
    epsilon: float
    gamma: tuple = (1.0, 1.0, 1.0, 1.0)
    keypoints_only: bool = False
    keypoint_weight: float | None = None
    max_steps: int | None = None


def official_keypoint_weight(count: int) -> float:
    """REALY's decaying keypoint weight ``50 e^{-0.9 count} / 10`` (``count`` = linear solves so far)."""
    return 50.0 * np.exp(-0.9 * count) / 10.0


def _edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges ``(e, 2)``, ``i < j``, of a triangle list (self-loops of degenerate faces dropped)."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [0, 2]], f[:, [1, 2]]])
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]
    if len(e) == 0:
        return e.reshape(0, 2)
    # lexicographic unique rows through one int64 key (same rows, same order as np.unique(e, axis=0))
    m = int(e.max()) + 1
    key = np.unique(e[:, 0] * m + e[:, 1])
    return np.stack([key // m, key % m], axis=1)


#: Relative energy-norm error at which the preconditioned conjugate gradients stop.
PCG_TOL = 1e-12


#: the 10 entries ``(a, b)``, ``a >= b``, of the lower triangle of a 4 x 4 block, and which of them are diagonal
_LOWER_A, _LOWER_B = np.tril_indices(4)
_LOWER_DIAG = np.nonzero(_LOWER_A == _LOWER_B)[0]


class _CholmodState:
    """What :meth:`_BlockSystem.cholmod_solve` keeps between calls: the symbolic factor ``sym`` (after the first
    factorisation), the lower triangle's pattern (``rows``, ``cols``: cvxopt index matrices) and the matrix ``k``
    (``in_order``: cvxopt kept our entry order, so new values are assigned in place), where each value comes from
    (``pos_d``/``gather``: the diagonal blocks' entries from the (n, 10) lower block values; ``pos_e``/``edge_k``:
    the edge entries and their affine row), the value buffer ``vals`` and the ``(alpha, g²)`` its edge entries
    were written for (``last``)."""

    __slots__ = ("sym", "rows", "cols", "k", "in_order", "pos_d", "gather", "pos_e", "edge_k", "vals", "last")

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.get(name))


class _BlockSystem:
    """``K = α² (L ⊗ diag(g²)) + blockdiag(c_i d_i d_i^T)`` in CSC with a fixed pattern (4 unknowns per vertex).

    The matrix is built directly in a fill-reducing order: a minimum-degree ordering (``ordering``: ``"mmd"`` or
    ``"amd"``, see :func:`_vertex_ordering`) of the scalar vertex graph (computed once per source mesh), each
    vertex's 4 unknowns kept together. :attr:`perm` maps the permuted
    unknowns to the natural ones (``K_perm = K[perm][:, perm]``); every factorisation of the region reuses it.
    """

    def __init__(self, n: int, edges: np.ndarray, ordering: str = "mmd"):
        self.n = n
        self.deg = np.bincount(edges.ravel(), minlength=n).astype(np.float64)
        vperm = _vertex_ordering(n, edges, ordering)  # vperm[new] = old
        vpos = np.empty(n, dtype=np.int64)
        vpos[vperm] = np.arange(n)
        k4 = np.arange(4)
        self.vperm, self.vpos = vperm, vpos
        self.perm = (4 * vperm[:, None] + k4).ravel()
        v = vpos  # the permuted block index of every vertex, in natural vertex order
        dr = (4 * v[:, None, None] + k4[None, :, None]).repeat(4, axis=2).ravel()
        dc = (4 * v[:, None, None] + k4[None, None, :]).repeat(4, axis=1).ravel()
        i, j = vpos[edges[:, 0]], vpos[edges[:, 1]]
        er = np.concatenate([(4 * i[:, None] + k4).ravel(), (4 * j[:, None] + k4).ravel()])
        ec = np.concatenate([(4 * j[:, None] + k4).ravel(), (4 * i[:, None] + k4).ravel()])
        rows = np.concatenate([dr, er])
        cols = np.concatenate([dc, ec])
        self._order = np.argsort(cols * (4 * n) + rows)  # CSC order (column, then row; the keys are unique)
        self._indices = rows[self._order].astype(np.int32)
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=4 * n))]).astype(np.int32)
        self._n_edge = len(edges)
        self._edge_k = np.tile(k4, 2 * len(edges))
        self._chol: _CholmodState | None = None  # what cholmod_solve keeps between calls, built on its first

    def _values(self, alpha: float, g: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        """The entries of the system in assembly order (blocks of the diagonal, then the edge blocks)."""
        g2 = np.asarray(g, dtype=np.float64) ** 2
        diag = (alpha * alpha) * self.deg[:, None, None] * np.diag(g2)[None] + c[:, None, None] * (
            d[:, :, None] * d[:, None, :])
        return np.concatenate([diag.ravel(), -(alpha * alpha) * g2[self._edge_k]])

    def matrix(self, alpha: float, g: np.ndarray, c: np.ndarray, d: np.ndarray) -> sp.csc_matrix:
        """The permuted system ``K[perm][:, perm]`` for weights ``c (n,)`` and rows ``d (n, 4)`` (natural order)."""
        vals = self._values(alpha, g, c, d)
        n4 = 4 * self.n
        import scipy.sparse as sp

        return sp.csc_matrix((vals[self._order], self._indices, self._indptr), shape=(n4, n4))

    def cholmod_solve(self, alpha: float, g: np.ndarray, c: np.ndarray, d: np.ndarray, rhs: np.ndarray
                      ) -> np.ndarray | None:
        """Solve the permuted system for ``rhs (4n, 3)`` (permuted order) with CHOLMOD: the symbolic analysis of
        the pattern once (in this order: the fill-reducing order is already applied), a numeric supernodal
        Cholesky factorisation per call. None when cvxopt is not installed or the matrix is not positive definite
        (the caller then takes the SuperLU path)."""
        mod = _cholmod()
        if mod is None:
            return None
        cholmod, matrix, spmatrix = mod
        n4 = 4 * self.n
        if self._chol is None:
            cols = np.repeat(np.arange(n4), np.diff(self._indptr))
            lower = self._indices >= cols
            rows_m, cols_m = matrix(self._indices[lower].astype(np.int64)), matrix(cols[lower].astype(np.int64))
            probe = np.arange(1.0, lower.sum() + 1.0)  # distinct values: the matrix keeps our (column, row) order
            k = spmatrix(matrix(probe), rows_m, cols_m, (n4, n4))
            # the matrix keeps our order iff its values read back as the probe: then each step only assigns its
            # values (cvxopt's documented ``V`` setter, ~0.2 ms) instead of rebuilding the matrix (~6 ms)
            in_order = np.array_equal(np.array(k.V).ravel(), probe)
            take = self._order[lower]  # lower-triangle entries in assembly order (diagonal blocks, then edges)
            on_diag = take < 16 * self.n
            src = take[on_diag]  # 16 v + 4 a + b: row a, column b (a >= b) of vertex v's diagonal block
            pair = np.full((4, 4), -1)
            pair[_LOWER_A, _LOWER_B] = np.arange(10)
            gather = (src // 16) * 10 + pair[(src % 16) // 4, src % 4]
            self._chol = _CholmodState(rows=rows_m, cols=cols_m, k=k, in_order=in_order,
                                       pos_d=np.nonzero(on_diag)[0], gather=gather, pos_e=np.nonzero(~on_diag)[0],
                                       edge_k=self._edge_k[take[~on_diag] - 16 * self.n], vals=np.empty(len(take)))
        st = self._chol
        # the lower triangle's values, the same floating-point operations as _values: the edge entries once per
        # (α, g), the 10 lower entries of each diagonal block per call
        g2 = np.asarray(g, dtype=np.float64) ** 2
        if st.last is None or st.last[0] != alpha or not np.array_equal(st.last[1], g2):
            st.vals[st.pos_e] = -(alpha * alpha) * g2[st.edge_k]
            st.last = (alpha, g2)
        low = c[:, None] * (d[:, _LOWER_A] * d[:, _LOWER_B])  # (n, 10)
        low[:, _LOWER_DIAG] += (alpha * alpha) * self.deg[:, None] * g2
        st.vals[st.pos_d] = low.ravel()[st.gather]
        if st.in_order:
            st.k.V = matrix(st.vals)
            k = st.k
        else:
            k = spmatrix(matrix(st.vals), st.rows, st.cols, (n4, n4))
        try:
            if st.sym is None:
                st.sym = cholmod.symbolic(k, p=matrix(np.arange(n4, dtype=np.int64)), uplo="L")
            cholmod.numeric(k, st.sym)
            out = _factor_solve(st.sym, rhs)
        except ArithmeticError:
            return None
        return out if np.all(np.isfinite(out)) else None


_CHOLMOD = None


def _cholmod():
    """``(cvxopt.cholmod, cvxopt.matrix, cvxopt.spmatrix)``, or None when cvxopt is not installed."""
    global _CHOLMOD
    if _CHOLMOD is None:
        try:
            from cvxopt import cholmod, matrix, spmatrix
        except ImportError:
            _CHOLMOD = False
        else:
            _CHOLMOD = (cholmod, matrix, spmatrix)
    return _CHOLMOD or None


class _CholmodDense(ctypes.Structure):
    """CHOLMOD's ``cholmod_dense`` (the same layout in SuiteSparse 4 to 7)."""

    _fields_ = [("nrow", ctypes.c_size_t), ("ncol", ctypes.c_size_t), ("nzmax", ctypes.c_size_t),
                ("d", ctypes.c_size_t), ("x", ctypes.c_void_p), ("z", ctypes.c_void_p), ("xtype", ctypes.c_int),
                ("dtype", ctypes.c_int)]


#: CHOLMOD's own multi-column solve, reached through cvxopt's extension module: None = not tried yet, False =
#: unavailable (or it failed its check), else ``(cholmod_l_solve, cholmod_l_free_dense, common buffer,
#: PyCapsule_GetName, PyCapsule_GetPointer)``
_MULTI_SOLVE = None


def _multi_solve():
    """``cholmod_l_solve`` of the CHOLMOD library cvxopt is linked to (with a ``cholmod_common`` of our own), or
    None. cvxopt's ``cholmod.solve`` calls it once per right-hand side; one call for the 3 columns streams the
    factor once and takes ~0.7x the time on REALY's largest regions (same algorithm: CHOLMOD's supernodal
    triangular solves, BLAS level 3 instead of level 2)."""
    global _MULTI_SOLVE
    if _MULTI_SOLVE is None:
        _MULTI_SOLVE = False
        if ctypes.sizeof(ctypes.c_void_p) != 8:  # cvxopt uses CHOLMOD's long-integer (cholmod_l_*) API on 64-bit only
            return None
        try:
            from cvxopt import cholmod

            # symbols resolve in its dependencies: cvxopt's own CHOLMOD. PyDLL, not CDLL: the calls keep the GIL,
            # so threads of one process never share the workspace `common` at the same time (cvxopt's own CHOLMOD
            # calls keep it too)
            lib = ctypes.PyDLL(cholmod.__file__)
            start, solve, free = lib.cholmod_l_start, lib.cholmod_l_solve, lib.cholmod_l_free_dense
            common = ctypes.create_string_buffer(1 << 16)  # cholmod_common is a few kB in every SuiteSparse
            start.argtypes = [ctypes.c_void_p]
            solve.restype = ctypes.POINTER(_CholmodDense)
            solve.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_CholmodDense), ctypes.c_void_p]
            free.argtypes = [ctypes.POINTER(ctypes.POINTER(_CholmodDense)), ctypes.c_void_p]
            # private prototypes (ctypes.pythonapi's shared function objects keep whatever types others set)
            get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
            get_ptr = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
                ("PyCapsule_GetPointer", ctypes.pythonapi))
            if start(common):
                _MULTI_SOLVE = (solve, free, common, get_name, get_ptr)
        except (ImportError, OSError, AttributeError):
            pass
    return _MULTI_SOLVE or None


#: the multi-column solve has been checked against cvxopt's column-by-column solve in this process
_MULTI_SOLVE_CHECKED = False


def _solve_columns(factor, rhs: np.ndarray) -> np.ndarray | None:
    """``K^{-1} rhs`` for every column of ``rhs (m, k)`` in one CHOLMOD call on cvxopt's numeric ``factor``; None
    when that call is not available (the caller then uses ``cvxopt.cholmod.solve``). The first call of a process
    is checked against ``cvxopt.cholmod.solve`` (relative 1e-10; else it is never used again)."""
    global _MULTI_SOLVE, _MULTI_SOLVE_CHECKED
    fns = _multi_solve()
    if fns is None:
        return None
    solve, free, common, get_name, get_ptr = fns
    b = np.asfortranarray(rhs, dtype=np.float64)
    m, k = b.shape
    try:  # a factor that is not the capsule this expects (another cvxopt): cvxopt's own solve
        name = get_name(factor)
        ptr = get_ptr(factor, name) if name in (b"CHOLMOD FACTOR D L", b"CHOLMOD FACTOR D U") else None
    except Exception:
        ptr = None
    if not ptr:
        _MULTI_SOLVE = False
        return None
    dense = _CholmodDense(m, k, m * k, m, b.ctypes.data, None, 1, 0)  # CHOLMOD_REAL, CHOLMOD_DOUBLE
    res = solve(0, ptr, ctypes.byref(dense), common)  # CHOLMOD_A: solve K x = b
    if not res:
        _MULTI_SOLVE = False
        return None
    try:
        r = res.contents
        if (r.nrow, r.ncol, r.d) != (m, k, m):
            _MULTI_SOLVE = False
            return None
        out = np.ctypeslib.as_array(ctypes.cast(r.x, ctypes.POINTER(ctypes.c_double)), shape=(k, m)).T.copy()
    finally:
        free(ctypes.byref(res), common)
    if not _MULTI_SOLVE_CHECKED:
        ref = _cvxopt_solve(factor, rhs)
        if not np.allclose(out, ref, rtol=0, atol=1e-10 * max(np.abs(ref).max(), 1e-300)):
            _MULTI_SOLVE = False
            return ref
        _MULTI_SOLVE_CHECKED = True
    return out


def _cvxopt_solve(factor, rhs: np.ndarray) -> np.ndarray:
    """``K^{-1} rhs (m, k)`` by cvxopt's ``cholmod.solve`` on its numeric ``factor`` (column by column)."""
    from cvxopt import cholmod, matrix

    x = matrix(np.ascontiguousarray(rhs, dtype=np.float64))
    cholmod.solve(factor, x)
    return np.array(x)


def _factor_solve(factor, rhs: np.ndarray) -> np.ndarray:
    """``K^{-1} rhs (m, k)`` on cvxopt's numeric CHOLMOD ``factor``: one call for all columns
    (:func:`_solve_columns`), else :func:`_cvxopt_solve`."""
    out = _solve_columns(factor, rhs)
    return _cvxopt_solve(factor, rhs) if out is None else out


def _vertex_ordering(n: int, edges: np.ndarray, method: str = "mmd") -> np.ndarray:
    """Fill-reducing order ``(n,)`` (``order[new] = old``) of the vertex graph (the block system's pattern, one
    entry per vertex).

    ``method="mmd"``: SuperLU's multiple minimum degree of ``A^T + A`` for the graph Laplacian plus identity (the
    SuperLU + conjugate-gradient path). ``"amd"``: approximate minimum degree (``cvxopt.amd``, the CHOLMOD path;
    falls back to MMD without cvxopt): on REALY's scan regions its factors have up to 12 % fewer flops than MMD's
    and the ordering takes ~1.5 ms instead of ~20 ms. (SuperLU factors in AMD order precondition the conjugate
    gradients slightly less accurately, hence MMD there.)"""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    i, j = edges[:, 0], edges[:, 1]
    mod = _cholmod() if method == "amd" else None
    if mod is not None:
        from cvxopt import amd

        _, matrix, spmatrix = mod
        ar = np.arange(n, dtype=np.int64)
        lower = spmatrix(1.0, matrix(np.concatenate([ar, np.maximum(i, j)])),
                         matrix(np.concatenate([ar, np.minimum(i, j)])), (n, n))
        return np.array(amd.order(lower, uplo="L"), dtype=np.int64).ravel()
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    deg = np.bincount(edges.ravel(), minlength=n).astype(np.float64)
    lap = sp.csc_matrix((np.concatenate([-np.ones(len(edges)), -np.ones(len(edges)), deg + 1.0]),
                         (np.concatenate([i, j, np.arange(n)]), np.concatenate([j, i, np.arange(n)]))),
                        shape=(n, n))
    lu = spla.splu(lap, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
    return np.argsort(lu.perm_c).astype(np.int64)


def _factor(k: sp.csc_matrix):
    """SuperLU factorisation of the SPD block system, already in its fill-reducing order (symmetric mode, no
    pivoting, no further column ordering)."""
    import scipy.sparse.linalg as spla

    return spla.splu(k, permc_spec="NATURAL", diag_pivot_thresh=0.0, relax=8, panel_size=8,
                     options=dict(SymmetricMode=True))


def _pcg(k: sp.csc_matrix, b: np.ndarray, lu, x0: np.ndarray, tol: float | None = None, maxit: int = 100
         ) -> tuple[np.ndarray | None, int]:
    """Block conjugate gradients (O'Leary 1980) on ``k x = b`` for the 3 columns at once, preconditioned by the
    factorisation ``lu``: the 3 columns share one search space (3 directions per step), which takes about one step
    fewer than 3 independent recurrences. Stops when every column's preconditioned residual norm
    ``sqrt(r_j^T M^{-1} r_j)`` is below ``tol`` times its solution's energy norm ``sqrt(x_j^T K x_j)``. Returns
    ``(None, its)`` when it did not converge (or the 3x3 block recurrence broke down); the caller then solves
    directly."""
    if tol is None:
        tol = PCG_TOL
    import scipy.sparse as sp

    kr = sp.csr_matrix((k.data, k.indices, k.indptr), shape=k.shape)  # K is symmetric: its CSC arrays are its CSR
    x = x0.copy()
    r = b - kr @ x
    z = lu.solve(r)
    pdir = z.copy()
    rz = z.T @ r
    try:
        for it in range(maxit + 1):
            energy = np.abs(np.einsum("ij,ij->j", x, b - r))  # x^T K x
            if not np.all(np.isfinite(rz)):
                break
            if np.all(np.sqrt(np.abs(np.diag(rz))) <= tol * np.sqrt(np.maximum(energy, 1e-300))):
                return x, it
            if it == maxit:
                break
            kp = kr @ pdir
            a = np.linalg.solve(pdir.T @ kp, rz)
            x += pdir @ a
            r -= kp @ a
            z = lu.solve(r)
            rz_new = z.T @ r
            pdir = z + pdir @ np.linalg.solve(rz, rz_new)
            rz = rz_new
    except np.linalg.LinAlgError:
        pass
    return None, maxit


def _spd_solve(n: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, b: np.ndarray,
               cholmod_ok: bool = True) -> np.ndarray:
    """``a^{-1} b`` for a symmetric positive definite ``a (n, n)`` given by its lower triangle (``rows >= cols``,
    each entry once) and ``b (n, k)``: CHOLMOD (its own AMD order, all columns in one solve) when cvxopt is installed
    and ``cholmod_ok``, else SuperLU (multiple minimum degree order) of the whole matrix."""
    mod = _cholmod() if cholmod_ok else None
    if mod is not None:
        cholmod, matrix, spmatrix = mod
        m = spmatrix(matrix(np.asarray(vals, np.float64)), matrix(np.asarray(rows, np.int64)),
                     matrix(np.asarray(cols, np.int64)), (n, n))
        try:
            f = cholmod.symbolic(m, uplo="L")
            cholmod.numeric(m, f)
            return _factor_solve(f, b)
        except ArithmeticError:
            pass
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    off = rows != cols
    a = sp.csc_matrix((np.concatenate([vals, vals[off]]), (np.concatenate([rows, cols[off]]),
                                                          np.concatenate([cols, rows[off]]))), shape=(n, n))
    return spla.splu(a, permc_spec="MMD_AT_PLUS_A").solve(b)


def _components(n: int, edges: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the graph on ``n`` vertices with ``edges (e, 2)``: ``(count, label (n,))``, the
    components numbered by their smallest vertex (the labels of scipy's ``connected_components(directed=False)``).
    Hook each edge's larger root under its smaller one, then halve paths until every vertex points at its root;
    repeat until every edge joins one root (a component's root is its smallest vertex throughout)."""
    parent = np.arange(n)
    i, j = edges[:, 0], edges[:, 1]
    while len(i):
        pi, pj = parent[i], parent[j]
        join = pi != pj
        if not join.any():
            break
        np.minimum.at(parent, np.maximum(pi, pj)[join], np.minimum(pi, pj)[join])
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    roots, label = np.unique(parent, return_inverse=True)
    return len(roots), label.reshape(n).astype(np.int64)


def _keypoint_stage_solve(n: int, edges: np.ndarray, alpha: float, g: np.ndarray, kp_idx: np.ndarray,
                          kp_w: float, d: np.ndarray, targets: np.ndarray, cholmod_ok: bool = True) -> np.ndarray:
    """Exact minimiser ``X (n, 4, 3)`` of ``α² ||(M ⊗ G) X||² + Σ_k w² |d_k^T X_k - p_k|²`` (keypoint-only stage).

    With ``r_k = w² (d_k^T X_k - p_k)`` the normal equations read ``α² g_a² L X^(a) = -Σ_k e_k d_ka r_k``; a
    particular solution comes from the grounded scalar Laplacian (one vertex per connected component fixed),
    the free constants ``μ`` per component from the bordered system
    ``[[S + I/w², -D], [D^T, 0]] [R; μ] = [-P; 0]``, ``S_kj = Y_kj Σ_a d_ka d_ja / (α² g_a²)``. The Laplacian
    solve uses CHOLMOD when ``cholmod_ok`` and cvxopt is installed, else SuperLU (:func:`_spd_solve`).
    """
    ncomp, label = _components(n, edges)
    deg = np.bincount(edges.ravel(), minlength=n).astype(np.float64)
    ground = np.array([np.nonzero(label == c)[0][0] for c in range(ncomp)])
    diag = deg.copy()
    diag[ground] += 1.0
    # the grounded Laplacian's lower triangle: -1 at (j, i) for every edge i < j, the diagonal
    ar = np.arange(n)
    lg = (np.concatenate([edges[:, 1], ar]), np.concatenate([edges[:, 0], ar]),
          np.concatenate([-np.ones(len(edges)), diag]))
    kp_comp = label[kp_idx]
    if len(np.unique(kp_comp)) != ncomp:
        raise np.linalg.LinAlgError("a connected component of the scan region holds no keypoint: the keypoint stage "
                                    "of the official non-rigid ICP is singular")
    nk = len(kp_idx)
    rhs = np.zeros((n, nk))
    rhs[kp_idx, np.arange(nk)] = 1.0
    y = _spd_solve(n, *lg, rhs, cholmod_ok)  # (n, nk)
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
    """Result of :func:`optimal_step_nicp`.

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


def optimal_step_nicp(source_vertices: np.ndarray, source_faces: np.ndarray, targets: np.ndarray,
                      schedule: Sequence[NICPStage], keypoint_index: np.ndarray | None = None,
                      keypoint_targets: np.ndarray | None = None,
                      keypoint_weight: Callable[[int], float] = official_keypoint_weight,
                      solver: str = "auto") -> NonRigidResult:
    """Deform ``source`` onto the point set ``targets`` with the optimal-step non-rigid ICP, stage by stage.

    Parameters
    ----------
    source_vertices : (n, 3) float64
    source_faces : (m, 3) int
        Source triangles (their unique edges define the stiffness term).
    targets : (p, 3) float64
        The point set the source is pulled to (nearest neighbours at every solve).
    schedule : sequence of NICPStage
        The stages, in order (see the module docstring).
    keypoint_index : (k,) int, optional
        Source vertices tied to ``keypoint_targets (k, 3)``; None: no keypoint term.
    keypoint_weight : callable ``count -> float``
        ``β`` of the stages whose ``keypoint_weight`` is None.
    solver : {"auto", "cholmod", "scipy"}
        Linear solves: ``"auto"`` CHOLMOD when cvxopt imports, else SuperLU + preconditioned conjugate gradients
        (``"scipy"``); ``"cholmod"`` raises ImportError without cvxopt. Same numbers up to solver rounding
        (see the module docstring).

    Returns
    -------
    NonRigidResult
        Deformed vertices, solves per stage, the ``|X - X_prev|_F`` of every stopping test.
    """
    if solver not in ("auto", "cholmod", "scipy"):
        raise ValueError(f"solver must be 'auto', 'cholmod' or 'scipy', not {solver!r}")
    if solver == "cholmod" and _cholmod() is None:
        raise ImportError("solver='cholmod' needs cvxopt (pip install cvxopt)")
    direct = solver != "scipy" and _cholmod() is not None
    src = np.asarray(source_vertices, dtype=np.float64)
    n = len(src)
    dst = np.asarray(targets, dtype=np.float64)
    edges = _edges(source_faces)
    system = _BlockSystem(n, edges, "amd" if direct else "mmd")
    perm = system.perm
    # REALY queries a cKDTree (leaf size 100); facenb.distance.NearestPoints gives the same nearest point and the
    # same distance bit for bit (its C engine, else a cKDTree of leaf size 16), except which of several targets at
    # exactly the same distance it returns; each step starts from the previous step's answers
    tree = NearestPoints(dst)
    nn_idx = None
    with_kp = keypoint_index is not None
    if with_kp:
        kp_idx = np.asarray(keypoint_index, dtype=np.int64)
        kp_tgt = np.asarray(keypoint_targets, dtype=np.float64)
    cur = src.copy()
    x_prev = np.zeros((4 * n, 3))
    x = np.ones((4 * n, 3))
    count = 0
    steps, deltas = [], []
    for stage in schedule:
        alpha, eps, kp_only = stage.alpha, stage.epsilon, stage.keypoints_only
        if kp_only and not with_kp:
            raise ValueError("a keypoints_only stage needs keypoint_index and keypoint_targets")
        g = np.array(stage.gamma, dtype=np.float32).astype(np.float64)
        step = 0
        lu = None
        while True:
            delta = float(np.linalg.norm(x - x_prev))
            deltas.append(delta)
            if delta <= eps or (stage.max_steps is not None and step > stage.max_steps):
                break
            x_prev = x
            dist, idx = tree.query(cur, hint=nn_idx)
            nn_idx = idx
            dist32 = np.asarray(dist, dtype=np.float32)
            nn = dst[idx]
            c32 = cur.astype(np.float32).astype(np.float64)
            d = np.concatenate([c32, np.ones((n, 1))], axis=1)
            threshold = max(np.mean(dist32) * 2, 1)
            w = (dist32 < threshold).astype(np.float64)
            kw = np.zeros(n)
            full = nn
            if with_kp:
                beta = stage.keypoint_weight if stage.keypoint_weight is not None else keypoint_weight(count)
                kw[kp_idx] = beta
                full = nn.copy()
                full[kp_idx] = kp_tgt
            if kp_only:
                # keypoint-only stage: exact closed form (duplicate keypoint vertices: the last target wins)
                uk = np.unique(kp_idx)
                xb = _keypoint_stage_solve(n, edges, alpha, g, uk, beta, d, full[uk], direct)
                x = xb.reshape(4 * n, 3)
            else:
                c = w * w + kw * kw
                target = (w * w)[:, None] * nn + (kw * kw)[:, None] * full
                vp = system.vperm  # the right-hand side built in the permuted order: (d_i t_i^T) block by block
                rhs = (d[vp][:, :, None] * target[vp][:, None, :]).reshape(4 * n, 3)
                x_new = system.cholmod_solve(alpha, g, c, d, rhs) if direct else None
                k = None if x_new is not None else system.matrix(alpha, g, c, d)
                if x_new is None and lu is not None:
                    x_new, _ = _pcg(k, rhs, lu, x_prev[perm])
                if x_new is None:
                    lu = _factor(k)
                    x_new = lu.solve(rhs)
                x = x_new.reshape(n, 4, 3)[system.vpos].reshape(4 * n, 3)  # x[perm] = x_new, block by block
            xb = x.reshape(n, 4, 3)
            cur = ((c32[:, 0:1] * xb[:, 0] + c32[:, 1:2] * xb[:, 1]) + c32[:, 2:3] * xb[:, 2]) + xb[:, 3]
            step += 1
            count += 1
            if kp_only:
                break
        steps.append(step)
    return NonRigidResult(cur, tuple(steps), tuple(deltas))
