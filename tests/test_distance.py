import numpy as np
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
