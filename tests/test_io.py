import json

import numpy as np
import pytest

from facenb import InputError
from facenb.io import load_landmarks, load_mesh, save_landmarks_txt, save_obj, save_pp


def test_obj_with_colours_quads_and_texture_indices(tmp_path):
    p = tmp_path / "m.obj"
    p.write_text(
        "# comment\nmtllib x.mtl\n"
        "v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 1 1 0 0 0 1\nv 0 1 0 0.5 0.5 0.5\nv 0 0 1\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
        "f 1/1/1 2/2/1 3/3/1 4/4/1\n"
        "f 1//1 2//1 5//1\n"
        "f -1 -2 -3\n"
    )
    m = load_mesh(p)
    assert m.vertices.dtype == np.float64 and m.vertices.shape == (5, 3)
    np.testing.assert_array_equal(m.faces, [[0, 1, 2], [0, 2, 3], [0, 1, 4], [4, 3, 2]])


def test_obj_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(10, 3))
    f = rng.integers(0, 10, size=(7, 3))
    save_obj(tmp_path / "a.obj", v, f, fmt="%.17g")
    m = load_mesh(tmp_path / "a.obj")
    np.testing.assert_array_equal(m.vertices, v)
    np.testing.assert_array_equal(m.faces, f)


def test_ply_via_trimesh(tmp_path):
    import trimesh

    tm = trimesh.creation.icosphere(subdivisions=1)
    tm.export(tmp_path / "s.ply")
    m = load_mesh(tmp_path / "s.ply")
    np.testing.assert_allclose(m.vertices, tm.vertices)
    np.testing.assert_array_equal(m.faces, tm.faces)


@pytest.mark.parametrize(
    "content, needle",
    [
        ("", "no vertices"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
        ("v 0 0 nan\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or Inf"),
        ("v 0 0 inf\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or Inf"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "out of range"),
        ("v 0 0 a\nf 1 2 3\n", "three numbers"),
    ],
)
def test_bad_meshes_raise_one_line(tmp_path, content, needle):
    p = tmp_path / "bad.obj"
    p.write_text(content)
    with pytest.raises(InputError) as e:
        load_mesh(p)
    msg = str(e.value)
    assert needle in msg and str(p) in msg and "\n" not in msg and "fix:" in msg


def test_missing_mesh(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_mesh(tmp_path / "nope.obj")


def test_binary_garbage_mesh(tmp_path):
    p = tmp_path / "g.obj"
    p.write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(InputError, match="not text"):
        load_mesh(p)


def test_landmark_formats_agree(tmp_path):
    rng = np.random.default_rng(1)
    lm = np.round(rng.normal(size=(7, 3)) * 30, 6)
    save_pp(tmp_path / "a.pp", lm)
    save_landmarks_txt(tmp_path / "a.txt", lm)
    np.save(tmp_path / "a.npy", lm[None])
    np.save(tmp_path / "b.npy", lm)
    (tmp_path / "a.pts").write_text("version: 1\nn_points: 7\n{\n" + "\n".join(" ".join(map(str, r)) for r in lm) + "\n}\n")
    (tmp_path / "a.ljson").write_text(json.dumps({"landmarks": {"points": lm.tolist()}, "labels": []}))
    for name in ["a.pp", "a.txt", "a.npy", "b.npy", "a.pts", "a.ljson"]:
        np.testing.assert_allclose(load_landmarks(tmp_path / name, n=7), lm, atol=1e-9, err_msg=name)


def test_landmark_count_and_shape_errors(tmp_path):
    np.savetxt(tmp_path / "six.txt", np.zeros((6, 3)))
    with pytest.raises(InputError, match="expected 7 landmarks, found 6"):
        load_landmarks(tmp_path / "six.txt", n=7)
    np.save(tmp_path / "two_d.npy", np.zeros((7, 2)))
    with pytest.raises(InputError, match="2 coordinates per point"):
        load_landmarks(tmp_path / "two_d.npy", n=7)
    np.save(tmp_path / "cube.npy", np.zeros((2, 7, 3)))
    with pytest.raises(InputError, match=r"shape \(2, 7, 3\)"):
        load_landmarks(tmp_path / "cube.npy", n=7)
    (tmp_path / "nan.txt").write_text("0 0 0\n" * 6 + "nan 0 0\n")
    with pytest.raises(InputError, match="NaN"):
        load_landmarks(tmp_path / "nan.txt", n=7)
    (tmp_path / "bad.pp").write_text("<PickedPoints><point x='1'/>")
    with pytest.raises(InputError, match="PickedPoints"):
        load_landmarks(tmp_path / "bad.pp")


_PLY_HEAD = ("ply\nformat ascii 1.0\nelement vertex {nv}\nproperty float x\nproperty float y\nproperty float z\n"
             "element face {nf}\nproperty list uchar int vertex_indices\nend_header\n")


def test_ply_header_count_exceeding_the_body_is_refused(tmp_path):
    p = tmp_path / "short.ply"
    p.write_text(_PLY_HEAD.format(nv=5, nf=1) + "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    with pytest.raises(InputError, match="declares 5 vertex, 1 face elements"):
        load_mesh(p)
    # binary, truncated in the face block
    import struct

    head = _PLY_HEAD.format(nv=3, nf=2).replace("ascii", "binary_little_endian").encode()
    body = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0) + struct.pack("<B3i", 3, 0, 1, 2)
    (tmp_path / "trunc.ply").write_bytes(head + body)
    with pytest.raises(InputError, match="declares 2 face elements but the file holds only 1"):
        load_mesh(tmp_path / "trunc.ply")


def test_ply_point_cloud_says_no_faces(tmp_path):
    p = tmp_path / "cloud.ply"
    p.write_text(_PLY_HEAD.format(nv=3, nf=0) + "0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(InputError, match="no faces: a point cloud"):
        load_mesh(p)
    assert len(load_mesh(p, require_faces=False).vertices) == 3


@pytest.mark.parametrize("encoding", ["ascii", "binary_little_endian", "binary_big_endian"])
def test_ply_quads_fan_or_first_triangle(tmp_path, encoding):
    import struct

    v = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (2, 0, 0)]
    faces = [(0, 1, 2, 3), (1, 4, 2)]
    head = _PLY_HEAD.format(nv=5, nf=2).replace("ascii", encoding)
    if encoding == "ascii":
        data = (head + "".join(f"{x} {y} {z}\n" for x, y, z in v)
                + "".join(f"{len(f)} " + " ".join(map(str, f)) + "\n" for f in faces)).encode()
    else:
        o = "<" if "little" in encoding else ">"
        data = head.encode() + b"".join(struct.pack(o + "3f", *xyz) for xyz in v) + b"".join(
            struct.pack(o + "B" + "i" * len(f), len(f), *f) for f in faces)
    (tmp_path / "q.ply").write_bytes(data)
    fan = load_mesh(tmp_path / "q.ply")
    np.testing.assert_array_equal(fan.faces, [[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    first = load_mesh(tmp_path / "q.ply", ply_polygons="first-triangle")
    np.testing.assert_array_equal(first.faces, [[0, 1, 2], [1, 4, 2]])
    np.testing.assert_array_equal(first.vertices, np.array(v, dtype=np.float64))


def test_obj_with_a_latin1_comment_is_read(tmp_path):
    p = tmp_path / "latin1.obj"
    p.write_bytes(b"# exported by Jos\xe9's tool\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    m = load_mesh(p)
    assert m.faces.tolist() == [[0, 1, 2]]


def test_realy_reader_and_error_map_live_in_io(tmp_path):
    """The REALY official OBJ reader and the error-map PLY are facenb.io functions (re-exported by realy)."""
    from facenb import io
    from facenb.benchmarks import realy

    assert realy.read_obj is io.read_obj_realy and realy.write_error_map_ply is io.write_error_map_ply
    p = tmp_path / "q.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0.1\nf 1 2 3 4\nf 1 2 3 4 1\n")
    m = io.read_obj_realy(p)
    assert m.vertices.dtype == np.float32 and m.faces.tolist() == [[0, 1, 2], [0, 2, 3]] and m.skipped_polygons == 1
    e = np.array([0.5, 1.0, 1.5, 2.0])
    io.write_error_map_ply(tmp_path / "e.ply", m.vertices, m.faces, e)
    v, f, err = io.read_error_map_ply(tmp_path / "e.ply")
    assert np.array_equal(v, m.vertices.astype(np.float64)) and np.array_equal(f, m.faces) and np.array_equal(err, e)


# ----------------------------------------------------------------- REALY reader: vectorised = line by line
def _realy_both(tmp_path, data: bytes):
    """(fast-path result or None, read_obj_realy's result or InputError text, the line reader's likewise)."""
    from facenb import io

    p = tmp_path / "m.obj"
    p.write_bytes(data)

    def run(fn):
        try:
            return fn()
        except InputError as e:
            return str(e)

    return (io._obj_realy_fast(data), run(lambda: io.read_obj_realy(p)),
            run(lambda: io._read_obj_realy_lines(data, p, True)))


def _same_mesh(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return (a.vertices.dtype == b.vertices.dtype == np.float32 and np.array_equal(a.vertices, b.vertices)
            and a.faces.dtype == b.faces.dtype and np.array_equal(a.faces, b.faces)
            and a.skipped_polygons == b.skipped_polygons)


def test_realy_reader_fast_path_takes_plain_files_and_reads_them_like_the_line_reader(tmp_path):
    rng = np.random.default_rng(7)
    v = rng.normal(scale=50, size=(40, 3))
    tri = rng.integers(1, 41, size=(30, 3))
    quad = rng.integers(1, 41, size=(10, 4))
    for fmt in ("%.6f", "%.9g", "%.17g", "%.3f"):
        lines = ["# REALY-like", "mtllib m.mtl"] + ["v " + " ".join(fmt % x for x in r) for r in v] + ["vn 0 0 1"]
        lines += ["f " + " ".join(f"{i}/{i}/1" for i in r) for r in tri[:10]]
        lines += ["f " + " ".join(map(str, r)) for r in quad] + ["f " + " ".join(map(str, r)) for r in tri[10:]]
        for eol in (b"\n", b"\r\n"):
            data = eol.join(x.encode() for x in lines) + eol
            fast, got, ref = _realy_both(tmp_path, data)
            assert fast is not None, (fmt, eol)  # the plain file does take the vectorised path
            assert _same_mesh(got, ref) and _same_mesh(fast, ref) and len(ref.faces) == 50


@pytest.mark.parametrize("text", [
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 2 2\nf 1 2 3 4\nf 1/1 2/2 5/5\nf 1 2 3 4 5\n",  # a pentagon: skipped
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nf -3 -2 -1\n",  # relative indices: refused
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nf 0 1 2\n",  # index 0
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 4\n",  # out of range
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nf +1 2 3\n",  # signed index (int() takes it)
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nf\t1 2 3\nf 1 2 3\n",  # a TAB after f: not an 'f ' line
    "v\t5 5 5\nv 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\n",  # nor after v
    "v 0 0 0\nv 1 0\nv 1 1 0\nf 1 2 3\n",  # 2 coordinates
    "v 0 0 0 1 0 0\nv 1e2 0 0\nv 1 1 nan\nf 1 2 3\n",  # colours, exponent, NaN
    "v 0 0 0\nv 1 0 0\nv 1 1 0\n",  # no faces
    "v 0 0 0\rv 1 0 0\nv 1 1 0\nf 1 2 3\n",  # a lone CR
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3.0\n",  # not an integer
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 /2 3\n",  # a token starting with '/'
    "# caf\u00e9\nv 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\n",  # UTF-8 comment
])
def test_realy_reader_odd_files_read_or_refused_like_the_line_reader(tmp_path, text):
    _, got, ref = _realy_both(tmp_path, text.encode())
    assert _same_mesh(got, ref), (got, ref)


def test_realy_reader_latin1_bytes_are_refused_as_the_official_utf8_read(tmp_path):
    _, got, ref = _realy_both(tmp_path, b"# Jos\xe9\nv 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\n")
    assert got == ref and "not a text OBJ" in got
