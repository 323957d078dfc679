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
