import numpy as np
import pytest

from facenb import InputError
from facenb import landmarks as LM
from facenb.io import load_landmarks


def test_select_and_eye_distance():
    lm = np.arange(68 * 3, dtype=float).reshape(68, 3)
    sel = LM.select(lm, LM.NOW7_FROM_IBUG68)
    np.testing.assert_array_equal(sel[0], lm[36])
    assert LM.outer_eye_distance(sel) == pytest.approx(np.linalg.norm(lm[36] - lm[45]))
    with pytest.raises(InputError, match="need at least 55"):
        LM.select(lm[:20], LM.NOW7_FROM_IBUG68)


def test_james_ljson_v3_to_now7(data_mirror):
    lm68 = load_landmarks(data_mirror / "james_scan" / "james.ljson", n=68)
    l7 = LM.select(lm68, LM.NOW7_FROM_MENPO_JAMES)
    # a real face in millimetres: outer eye corners ~9-10 cm apart, subnasale below the eyes, mouth below the nose
    assert 80 < LM.outer_eye_distance(l7) < 110
    assert l7[4, 1] < l7[1, 1] and l7[5, 1] < l7[4, 1]
    assert l7[0, 0] < l7[3, 0]  # subject's right at negative x


def test_check_spread_refuses_identical_and_collinear_sets_naming_the_file():
    import pytest

    from facenb.errors import InputError
    from facenb.landmarks import check_spread

    face = np.array([[-45, 35, 60], [-15, 35, 70], [15, 35, 70], [45, 35, 60], [0, 0, 80], [-25, -25, 70],
                     [25, -25, 70]], dtype=np.float64)
    check_spread(face, "face.txt")
    with pytest.raises(InputError, match=r"^same\.txt: all 7 landmarks are the same point"):
        check_spread(np.repeat(face[:1], 7, axis=0), "same.txt")
    line = face[0] + np.linspace(0, 1, 7)[:, None] * (face[3] - face[0])
    with pytest.raises(InputError, match=r"^line\.txt: .*lie on"):
        check_spread(line, "line.txt")
    # nearly collinear: second extent 1 % of the first (below the 5 % cut) -- still refused
    with pytest.raises(InputError, match="line"):
        check_spread(line + np.outer(np.linspace(-1, 1, 7) ** 2, [0, 0.45, 0]), "nearly.txt")
