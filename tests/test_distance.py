import contextlib
import os

import numpy as np
import pytest
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st

from facenb.distance import closest_points, degenerate_faces, point_to_surface

from _synth import face_patch, random_similarity


def test_single_triangle_regions():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    f = np.array([[0, 1, 2]])
    pts = np.array([[0.2, 0.2, 3.0], [0.5, -2.0, 0.0], [-3.0, -4.0, 0.0], [0.2, 0.2, -0.5]])
    d = point_to_surface(pts, v, f)
    np.testing.assert_allclose(d, [3.0, 2.0, 5.0, 0.5], atol=1e-12)


def test_matches_trimesh_closest_point():
    verts, faces, _ = face_patch(3)
    rng = np.random.default_rng(0)
    pts = verts[rng.integers(0, len(verts), 100)] + rng.normal(scale=3.0, size=(100, 3))
    ours = closest_points(pts, verts, faces)
    tris = verts[faces]
    brute = []
    for p in pts:  # brute force over every triangle with trimesh's exact point-triangle routine
        q = trimesh.triangles.closest_point(tris, np.repeat(p[None], len(tris), 0))
        brute.append(np.linalg.norm(q - p, axis=1).min())
    np.testing.assert_allclose(ours.distances, brute, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(pts - ours.points, axis=1), ours.distances, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_distances_invariant_to_rigid_motion(seed):
    verts, faces, _ = face_patch(2)
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-90, 90, size=(200, 3))
    _, R, t = random_similarity(rng, scale=1.0)
    d0 = point_to_surface(pts, verts, faces)
    d1 = point_to_surface(pts @ R.T + t, verts @ R.T + t, faces)
    np.testing.assert_allclose(d0, d1, atol=1e-9)


def test_degenerate_faces_official_rule():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [0.5, 0, 0]], dtype=float)
    f = np.array([[0, 1, 2], [0, 0, 1], [0, 3, 3], [0, 4, 1]])
    # (a,b,c) fine; repeated index; coincident vertices; exactly collinear midpoint -> cross of unit edges is 0
    np.testing.assert_array_equal(degenerate_faces(v, f), [False, True, True, True])


def test_point_to_surface_few_points_equals_the_whole_tree():
    """The culled path for a few points on a large mesh (the landmark checks) gives the whole tree's distances."""
    import trimesh

    from facenb.distance import closest_points, point_to_surface

    ico = trimesh.creation.icosphere(subdivisions=5)
    rng = np.random.default_rng(7)
    v = np.asarray(ico.vertices) * [75.0, 95.0, 85.0] + rng.normal(scale=0.5, size=ico.vertices.shape)
    f = np.asarray(ico.faces)
    assert len(f) >= 4096
    pts = np.vstack([v[rng.integers(0, len(v), 7)] + rng.normal(scale=2.0, size=(7, 3)),
                     rng.normal(scale=150.0, size=(5, 3)), np.zeros((1, 3))])
    np.testing.assert_array_equal(point_to_surface(pts, v, f), closest_points(pts, v, f).distances)


# ------------------------------------------------------------------------------------------------------------
# the closest-point engines (facenb._closest in C, libigl as fallback): exact minimum over all triangles
# ------------------------------------------------------------------------------------------------------------
def _segment_distance(p, a, b):
    ab = b - a
    den = ab @ ab
    t = np.zeros(len(p)) if den == 0.0 else np.clip((p - a) @ ab / den, 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _brute_force(points, vertices, faces):
    """Minimum distance over every triangle, one triangle at a time, by the textbook definition (independent of
    both engines): the plane distance where the projection falls inside the triangle, else the nearest edge;
    a zero-area triangle is its edges."""
    best = np.full(len(points), np.inf)
    for a, b, c in vertices[faces]:
        d = np.minimum.reduce([_segment_distance(points, a, b), _segment_distance(points, b, c),
                               _segment_distance(points, c, a)])
        n = np.cross(b - a, c - a)
        area2 = n @ n
        if area2 > 0.0:
            h = (points - a) @ n / area2  # signed height / |n|
            proj = points - h[:, None] * n
            # barycentric signs of the projection: inside iff all three sub-triangles face along n
            inside = np.ones(len(points), dtype=bool)
            for u, w in ((a, b), (b, c), (c, a)):
                inside &= np.cross(w - u, proj - u) @ n >= 0.0
            d = np.where(inside, np.abs(h) * np.sqrt(area2), d)
        best = np.minimum(best, d)
    return best


@contextlib.contextmanager
def _engine(name):
    """FACENB_CLOSEST_ENGINE=name for the block (hypothesis examples cannot use function-scoped fixtures)."""
    old = os.environ.get("FACENB_CLOSEST_ENGINE")
    os.environ["FACENB_CLOSEST_ENGINE"] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("FACENB_CLOSEST_ENGINE", None)
        else:
            os.environ["FACENB_CLOSEST_ENGINE"] = old


def _bumpy_patch(seed):
    v, f, _ = face_patch(subdivisions=4)
    rng = np.random.default_rng(seed)
    return v + rng.normal(0.0, 0.8, v.shape), f


def _random_mesh(rng, n_tri, degenerate=0):
    v = rng.normal(0.0, 30.0, (3 * n_tri, 3))
    f = np.arange(3 * n_tri).reshape(-1, 3)
    for i in range(degenerate):  # collinear corners, coincident corners, (a, a, x) needles, points, slivers
        a, b = v[f[i, 0]], v[f[i, 1]]
        kind = i % 5
        if kind == 4:  # a sliver: c off the line ab by 1e-6 to 1e-2 of |ab| (ill-conditioned barycentrics)
            off = np.cross(b - a, rng.normal(size=3))
            v[f[i, 2]] = a + rng.uniform(-1, 2) * (b - a) + 10.0 ** rng.uniform(-6, -2) * off
            continue
        if kind == 0:  # exactly collinear: corners differ in x only
            v[f[i, 1]] = a + [rng.uniform(1, 20), 0.0, 0.0]
            v[f[i, 2]] = a + [rng.uniform(-20, 40), 0.0, 0.0]
        elif kind == 1:
            v[f[i, 2]] = a
        elif kind == 2:
            v[f[i, 1]] = a
        else:
            v[f[i, 1]] = v[f[i, 2]] = a
    return v, f


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_tri=st.integers(1, 60), degenerate=st.integers(0, 10),
       engine=st.sampled_from(["c", "igl"]))
def test_engine_is_the_exact_minimum_over_all_triangles(seed, n_tri, degenerate, engine):
    """Law: the distance returned is min over triangles of the point-triangle distance, whatever the mesh
    (random triangle soup, collinear/coincident corners included) and wherever the points."""
    from facenb.distance import SurfaceQuery

    rng = np.random.default_rng(seed)
    # zero-area triangles and slivers only for the C engine: libigl's point-triangle distance is off by up to
    # ~1e-2 mm on them (seen here with libigl 2.6.3: exactly collinear corners, needles, slivers), one reason the C
    # engine is the default
    v, f = _random_mesh(rng, n_tri, min(degenerate, n_tri) if engine == "c" else 0)
    p = np.concatenate([rng.normal(0.0, 40.0, (40, 3)), v[rng.integers(0, len(v), 5)]])
    with _engine(engine):
        res = SurfaceQuery(v, f).query(p)
    np.testing.assert_allclose(res.distances, _brute_force(p, v, f), rtol=1e-10, atol=1e-8)
    # the closest point lies on the triangle returned (checked where that triangle is not a sliver), at the distance
    # returned
    from facenb.distance import _closest_on_triangles

    tri = v[f[res.face_index]]
    cross = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    longest = np.max([np.linalg.norm(tri[:, i] - tri[:, j], axis=1) for i, j in ((0, 1), (1, 2), (2, 0))], axis=0)
    flat = cross < 1e-2 * longest ** 2  # slivers: the reference projection itself is ill-conditioned there
    on = _closest_on_triangles(tri[~flat], res.points[~flat])
    np.testing.assert_allclose(on, res.points[~flat], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(p - res.points, axis=1), res.distances, rtol=1e-15, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_engine_hints_change_no_distance(seed):
    """Any hint (a good one, a random one, none) gives the same minimum; the C engine's order of points does not
    matter either."""
    from facenb.distance import SurfaceQuery, engine

    if engine() != "c":
        pytest.skip("hints are a C-engine feature (facenb._closest not built)")
    rng = np.random.default_rng(seed)
    v, f = _bumpy_patch(seed)
    s = SurfaceQuery(v, f)
    p = v[rng.integers(0, len(v), 300)] + rng.normal(0.0, 3.0, (300, 3))
    base = s.query(p)
    for hint in (base.face_index, rng.integers(-1, len(f), len(p)), np.full(len(p), -1)):
        np.testing.assert_allclose(s.query(p, hint=hint).distances, base.distances, rtol=1e-13, atol=1e-13)
    perm = rng.permutation(len(p))
    np.testing.assert_allclose(s.query(p[perm]).distances, base.distances[perm], rtol=1e-13, atol=1e-13)


def test_engines_agree_on_a_face_mesh():
    """C and libigl: same distances (to rounding) and, away from ties, the same closest points."""
    from facenb.distance import SurfaceQuery

    v, f = _bumpy_patch(3)
    rng = np.random.default_rng(0)
    p = v[rng.integers(0, len(v), 2000)] + rng.normal(0.0, 2.0, (2000, 3))
    a = SurfaceQuery(v, f).query(p)
    with _engine("igl"):
        b = SurfaceQuery(v, f).query(p)
    np.testing.assert_allclose(a.distances, b.distances, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.points, b.points, atol=1e-9)


def test_engine_choice_is_checked(monkeypatch):
    from facenb import distance

    monkeypatch.setenv("FACENB_CLOSEST_ENGINE", "fast")
    with pytest.raises(ValueError, match="FACENB_CLOSEST_ENGINE"):
        distance.engine()
    monkeypatch.setenv("FACENB_CLOSEST_ENGINE", "c")
    monkeypatch.setattr(distance, "_closest", None)
    with pytest.raises(RuntimeError, match="not built"):
        distance.engine()
    monkeypatch.setenv("FACENB_CLOSEST_ENGINE", "")
    assert distance.engine() == "igl"


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_degenerate_faces_equals_the_official_expression(seed):
    """Law: the prefiltered mask is the official clean_degenerated_faces test (unit-edge cross product exactly 0)
    on every triangle, for meshes full of exactly collinear, coincident and nearly collinear (1e-18..1e-3 off)
    corners."""
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 30.0, (120, 3))
    f = rng.integers(0, len(v), (300, 3))
    for i in range(60):
        a, b = v[f[i, 0]], v[f[i, 1]]
        off = 10.0 ** rng.uniform(-18, -3) * rng.normal(size=3) if i % 3 == 0 else 0.0
        v[f[i, 2]] = a + rng.choice([0.0, 0.5, 2.0, rng.uniform(-2, 3)]) * (b - a) + off
    f[60:80, 1] = f[60:80, 0]
    e1, e2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
    l1, l2 = np.linalg.norm(e1, axis=-1)[:, None], np.linalg.norm(e2, axis=-1)[:, None]
    l1[l1 == 0.0] = 1.0
    l2[l2 == 0.0] = 1.0
    official = np.linalg.norm(np.cross(e1 / l1, e2 / l2, axis=-1), axis=-1) == 0.0
    np.testing.assert_array_equal(degenerate_faces(v, f), official)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 3000), rounded=st.booleans())
def test_spatial_order_is_the_morton_order(seed, n, rounded):
    """Law: the permutation sorts the points (stably) by their 30-bit Morton code over the bounding cube, computed
    here bit by bit (x in bit 3b, y in 3b + 1, z in 3b + 2); ties (rounded points) keep their input order."""
    from facenb.distance import spatial_order

    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3)) * rng.uniform(1.0, 100.0)
    if rounded:
        p = np.round(p / 10.0)
    lo = p.min(axis=0)
    span = float((p.max(axis=0) - lo).max()) or 1.0
    q = np.clip((p - lo) * (1023 / span), 0, 1023).astype(np.int64)
    code = [sum(((int(q[i, k]) >> b) & 1) << (3 * b + k) for b in range(10) for k in range(3)) for i in range(n)]
    np.testing.assert_array_equal(spatial_order(p), sorted(range(n), key=lambda i: code[i]))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10 ** 6), st.booleans())
def test_nearest_points_equal_ckdtree_distances_bit_for_bit(seed, grid):
    """NearestPoints (the C engine's tree over zero-area triangles) gives cKDTree's distances bit for bit, and its
    point wherever the nearest one is unique (on a grid with half-integer queries many are exactly tied: then any of
    the tied points, at the same distance); hints change nothing."""
    from scipy.spatial import cKDTree

    from facenb.distance import NearestPoints

    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(300, 3)) * 20
    q = rng.normal(size=(500, 3)) * 25
    if grid:
        pts, q = np.round(pts), np.round(q) + 0.5
    d0, i0 = cKDTree(pts).query(q, k=1)
    near = NearestPoints(pts)
    d1, i1 = near.query(q)
    np.testing.assert_array_equal(d1, d0)
    e = pts[i1] - q
    np.testing.assert_array_equal(np.sqrt((e[:, 0] ** 2 + e[:, 1] ** 2) + e[:, 2] ** 2), d0)  # its own point's distance
    if not grid:
        np.testing.assert_array_equal(i1, i0)
    d2, i2 = near.query(q, hint=rng.integers(0, len(pts), len(q)))
    np.testing.assert_array_equal(d2, d0)
