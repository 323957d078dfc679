import numpy as np

from facenb import synthetic as S
from facenb.benchmarks import now

from _synth import face_patch


def test_degrade_is_deterministic_and_coarser():
    v, f, lm = face_patch(4)
    a = S.degrade(v, f, landmarks=lm, voxel_mm=6.0, seed=3)
    b = S.degrade(v, f, landmarks=lm, voxel_mm=6.0, seed=3)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    assert len(a.vertices) < len(v) and len(a.faces) > 0
    R = a.transform[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)


def test_noise_free_degrade_scores_small_and_noise_increases_error():
    v, f, lm = face_patch(5)
    errs = []
    for noise in (0.0, 1.0):
        d = S.degrade(v, f, landmarks=lm, voxel_mm=3.0, noise_mm=noise, lmk_sigma_mm=0.5, seed=1)
        errs.append(now.evaluate(v, lm, d.vertices, d.faces, d.landmarks).mean_mm)
    assert errs[0] < 0.05 and errs[1] > 0.3  # clustering alone is nearly exact; 1 mm noise is not
