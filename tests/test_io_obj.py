"""The vectorised OBJ reader (facenb.io._obj_fast) against the line-by-line reader (facenb.io._parse_obj).

The line-by-line reader is the definition (Python's ``float()`` / ``int()`` on each token, polygons fan-split);
the vectorised reader must give the same arrays bit for bit whenever it answers, and load_mesh must give them
always (it defers to the line-by-line reader otherwise).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facenb.io import _obj_decimals, _obj_fast, _parse_obj, load_mesh, save_obj


def _same(a, b) -> bool:
    return (a.vertices.dtype == np.float64 and a.faces.dtype == np.int64 and a.vertices.shape == b.vertices.shape
            and a.vertices.tobytes() == b.vertices.tobytes() and np.array_equal(a.faces, b.faces)
            and a.faces.shape == b.faces.shape)


def _check(text: str, tmp_path) -> None:
    data = text.encode("latin-1")
    ref = _parse_obj(data.decode("latin-1"), tmp_path / "m.obj")
    fast = _obj_fast(data)
    if fast is not None:
        assert _same(fast, ref)
    p = tmp_path / "m.obj"
    p.write_bytes(data)
    assert _same(load_mesh(p, require_faces=False, check=False), ref)


_DECIMAL = st.builds(
    lambda sign, ip, fp, dot: sign + ip + ("." + fp if dot else ""),
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", min_size=1, max_size=8),
    st.text("0123456789", min_size=0, max_size=8),
    st.booleans(),
)
_NUMBER = st.one_of(
    _DECIMAL,
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),  # exponents, 17 digits
    st.floats(min_value=-500, max_value=500).map(lambda x: f"{x:.6f}"),
    st.floats(min_value=-500, max_value=500).map(lambda x: f"{x:.4f}"),
    st.sampled_from(["-0", "-0.0", ".5", "-.25", "5.", "0000012.50", "123456789012345", "1234567890123456"]),
)
_SPACE = st.sampled_from([" ", "  ", "\t", " \t "])


@st.composite
def _obj_text(draw):
    n = draw(st.integers(1, 12))
    lines = []
    for _ in range(n):
        k = draw(st.sampled_from([3, 3, 3, 4, 6]))
        nums = [draw(_NUMBER) for _ in range(k)]
        lines.append("v" + draw(_SPACE) + "".join(x + draw(_SPACE) for x in nums[:-1]) + nums[-1])
    style = draw(st.sampled_from(["plain", "vt", "vtn", "vn"]))
    for _ in range(draw(st.integers(0, 8))):
        k = draw(st.sampled_from([3, 3, 4, 5]))
        idx = [draw(st.one_of(st.integers(1, n), st.integers(-n, -1))) for _ in range(k)]
        tok = {"plain": "{}", "vt": "{}/1", "vtn": "{}/1/2", "vn": "{}//3"}[style]
        lines.append("f " + " ".join(tok.format(i) for i in idx))
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["# comment", "vt 0.5 0.5", "g head",
                                                                              "vn 0 0 1", "", "s off"])))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return eol.join(lines) + draw(st.sampled_from(["", eol]))


@settings(max_examples=400)
@given(_obj_text())
def test_vectorised_reader_is_the_line_reader(tmp_path_factory, text):
    _check(text, tmp_path_factory.mktemp("obj"))


@pytest.mark.parametrize("text", [
    "v 1 2 3\nv 4 5 6\nv 7 8 9\nf 1 2 3\n",
    "v 1 2 3 0.5 0.5 0.5\nv 4 5 6\nv 7 8 9 1\nf 1 2 3 1\nf 3 2 1\n",  # mixed colours, a quad then a triangle
    "v -0 -0.0 +0.5\nv .5 5. -.25\nv 1 1 1\nf -3 -2 -1\n",
    "v 1e3 2 3\nv 4 5 6\nv 7 8 9\nf 1/1/1 2/2/2 3/3/3\n",  # exponent: numpy's text reader
    "v 0.1 0.2 0.3\nv 1234567890.12345 2 3\nv 7 8 9\nf 1//1 2//1 3//1\n",  # 15 digits
    "v 0.1 0.2 0.3\nv 12345678901.12345 2 3\nv 7 8 9\nf 1 2 3\n",  # 16 digits: numpy's text reader
    "v 1 2 3 # note\nv 4 5 6\nv 7 8 9\nf 1 2 3 4 5\n",  # a comment after x y z; a pentagon
    "v 1 2 3\r\nv 4 5 6\r\nv 7 8 9\r\nf 1 2 3\r\n",
    "v\t1\t2\t3\nf\t1 1 1\n",
    "v 1 2 3\nv 4 5 6\nv 7 8 9\nf 0 1 2\nf 000000003 +2 1\n",  # index 0 (out of range), 9 digits, a sign
    "v 1 2 3\nv 1 2 3\nv 1 2 3\nvt 0 0\nf 1 2 3\nvn 0 0 1\nf 3 2 1\nv 9 9 9\nf 4 1 2\n",  # interleaved blocks
])
def test_vectorised_reader_cases(tmp_path, text):
    _check(text, tmp_path)


@pytest.mark.parametrize("text", [
    "v 1 2 3\nv 4 5 6\nv 7 8 9\nf 1 2\n",
    "v 1 2\nv 4 5 6\nv 7 8 9\nf 1 2 3\n",
    "v 1 2 3..4\nv 4 5 6\nv 7 8 9\nf 1 2 3\n",
    "v 1 2 3-4\nv 4 5 6\nv 7 8 9\nf 1 2 3\n",
    "v 1 2 3\x01\nv 4 5 6\nv 7 8 9\nf 1 2 3\n",
    "v 1 2 3\nv 4 5 6\nv 7 8 9\nf 1 2 3.0\n",
])
def test_vectorised_reader_defers_what_it_does_not_read(text):
    """Malformed lines: the vectorised reader gives up (the line reader words the error)."""
    assert _obj_fast(text.encode("latin-1")) is None


def test_decimals_are_correctly_rounded():
    """Every plain decimal of up to 15 digits is read as float() reads it (N / 10**k, one exact division)."""
    rng = np.random.default_rng(0)
    toks = []
    for _ in range(20000):
        k = int(rng.integers(0, 10))
        i = int(rng.integers(0, 16 - k))
        ip = "".join(rng.choice(list("0123456789"), size=max(i, 1)))
        fp = "".join(rng.choice(list("0123456789"), size=k))
        sign = str(rng.choice(["", "-", "+"]))
        toks.append(sign + ip[: max(1, 15 - k)] + ("." + fp if k else ""))
    text = (" " + " ".join(toks) + "\n").encode()
    seg = np.frombuffer(text, dtype=np.uint8)
    sep = seg <= 32
    start = np.flatnonzero(sep[:-1] & ~sep[1:]) + 1
    end = np.flatnonzero(~sep[:-1] & sep[1:]) + 1
    got = _obj_decimals(seg, start, end, dots=True)
    want = np.array([float(t) for t in toks])
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("digits", [15, 16, 17])
def test_long_decimals_are_read_as_float_reads_them(tmp_path, digits):
    """Near and above 2**53 (16-17 digits, with and without a dot): the same float64 as Python's float()."""
    rng = np.random.default_rng(digits)
    rows = []
    for _ in range(300):
        d = "".join(rng.choice(list("0123456789"), size=digits))
        k = int(rng.integers(0, digits))
        rows.append(d[: digits - k] + ("." + d[digits - k:] if k else ""))
    rows += ["9007199254740993", "9007199254740.993", "90071992547409.93", "12345678.12345678"]
    rows += ["0"] * (-len(rows) % 3)
    text = "".join(f"v {a} {b} {c}\n" for a, b, c in zip(rows[::3], rows[1::3], rows[2::3])) + "f 1 2 3\n"
    _check(text, tmp_path)
    want = np.array([float(t) for t in rows]).reshape(-1, 3)
    assert load_mesh_bytes(text, tmp_path).tobytes() == want.tobytes()


def load_mesh_bytes(text: str, tmp_path) -> np.ndarray:
    p = tmp_path / "long.obj"
    p.write_text(text)
    return load_mesh(p).vertices


def test_every_conformance_obj_reads_as_the_line_reader(conformance_dir):
    for p in sorted(conformance_dir.rglob("*.obj")):
        data = p.read_bytes()
        assert _same(load_mesh(p, require_faces=False), _parse_obj(data.decode("latin-1"), p)), p


def test_generated_scan_reads_as_the_line_reader(tmp_path):
    rng = np.random.default_rng(3)
    v = rng.normal(scale=60.0, size=(5000, 3))
    f = rng.integers(0, 5000, size=(9000, 3))
    for fmt in ("%.6f", "%.4f", "%.17g"):
        save_obj(tmp_path / "s.obj", v, f, fmt=fmt)
        data = (tmp_path / "s.obj").read_bytes()
        assert _same(load_mesh(tmp_path / "s.obj"), _parse_obj(data.decode("latin-1"), tmp_path / "s.obj"))
