"""Mesh and landmark input/output.

Meshes come back as :class:`Mesh` (``vertices (n, 3) float64``, ``faces (m, 3) int64``); landmarks as
``(k, 3)`` (or ``(k, 2)``) ``float64`` arrays. Units are whatever the file holds: facenb never rescales
silently (see :func:`facenb.landmarks.check_units`).

Supported formats
-----------------
Meshes
    * OBJ: ``v x y z`` and ``v x y z r g b`` (colours ignored), ``f`` with ``i``, ``i/t``, ``i//n`` or
      ``i/t/n`` indices, 1-based or negative (relative); polygons are triangulated as a fan from their first
      vertex, so a quad ``a b c d`` becomes ``(a, b, c), (a, c, d)`` -- the split the REALY and NoW
      official readers use.
    * PLY (ASCII or binary little/big endian), read by facenb itself without any processing (no merging,
      no reordering); the header's element counts must match the body. Polygons are fan-split by default;
      ``ply_polygons='first-triangle'`` keeps the first three indices of each face, as psbody-mesh does.
    * REALY: :func:`read_obj_realy` reads an OBJ as the official REALY reader does (float32 vertices, triangles
      and quads only; :class:`RealyMesh`); :func:`write_error_map_ply` / :func:`read_error_map_ply` are the
      per-vertex error maps ``facenb realy`` writes (binary PLY with an ``error_mm`` vertex property).
Landmarks
    * MeshLab PickedPoints ``.pp`` (XML ``<point x= y= z= name= />``), in file order.
    * whitespace/comma separated ``.txt`` / ``.csv`` (one landmark per row).
    * ``.npy`` arrays of shape ``(k, d)`` or ``(1, k, d)``.
    * iBUG ``.pts`` (``version``, ``n_points``, ``{ ... }``).
    * menpo ``.ljson`` (``{"landmarks": {"points": [...]}}``).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facenb.errors import InputError

__all__ = [
    "Mesh",
    "load_mesh",
    "save_obj",
    "load_landmarks",
    "save_landmarks_txt",
    "save_pp",
    "check_finite",
    "check_writable",
    "load_npy",
    "file_identity",
]

MESH_SUFFIXES = (".obj", ".ply")
LANDMARK_SUFFIXES = (".pp", ".txt", ".csv", ".npy", ".pts", ".ljson")


class Mesh(NamedTuple):
    """A triangle mesh.

    Attributes
    ----------
    vertices : (n, 3) float64
        Vertex positions, in the file's units (millimetres by facenb's convention).
    faces : (m, 3) int64
        0-based vertex indices of triangles. May be empty for a point cloud.
    """

    vertices: np.ndarray
    faces: np.ndarray


def _existing(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file not found", p, "check the path")
    if p.is_dir():
        raise InputError(f"expected a {what} file but this is a directory", p, "give the file inside it")
    return p


def _probe_folder(folder: Path) -> OSError | None:
    """Create and delete a temporary file in ``folder``: the only test that also holds for root (for whom
    ``os.access`` says yes to a read-only folder) and on a read-only file system."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc
    return None


def check_writable(path: str | Path | None, kind: str = "file", option: str | None = None) -> None:
    """Raise :class:`InputError` unless an output can be written at ``path`` -- call it *before* scoring.

    Parameters
    ----------
    path : str, Path or None
        The output path (``None``: nothing to check).
    kind : {'file', 'folder'}
        ``'file'``: ``path`` must not be a directory and its folder must exist and be writable (an existing
        file must be writable). ``'folder'``: ``path`` must not be a file; it is created later, so its nearest
        existing ancestor must be a writable folder.
    option : str, optional
        The command-line option named in the message (e.g. ``'--json'``).
    """
    if path is None:
        return
    p = Path(path)
    what = f"{option} " if option else ""
    if kind == "folder":
        if p.exists() and not p.is_dir():
            raise InputError(f"{what}output folder is an existing file", p, "give a folder path")
        anc = p
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise InputError(f"{what}output folder cannot be created: {anc} is a file", p, "give another folder")
        err = _probe_folder(anc)
        if err is not None:
            raise InputError(f"{what}output folder is not writable ({err.strerror})", anc,
                             "choose a folder you can write to")
        return
    if kind != "file":
        raise ValueError("kind must be 'file' or 'folder'")
    if p.is_dir():
        raise InputError(f"{what}output is a directory, expected a file name", p, "give a file path inside it")
    parent = p.parent
    if not parent.exists():
        raise InputError(f"{what}output folder does not exist", parent, "create it or choose another path")
    if not parent.is_dir():
        raise InputError(f"{what}output folder is a file", parent, "choose another path")
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"{what}output file is read-only", p, "choose another path or make it writable")
    err = _probe_folder(parent)
    if err is not None:
        raise InputError(f"{what}output folder is not writable ({err.strerror})", parent,
                         "choose a folder you can write to")


def load_npy(path: str | Path, what: str = "array") -> np.ndarray:
    """``numpy.load(path, allow_pickle=False)`` with one-line errors: a file without the NumPy header (e.g. text
    saved under a ``.npy`` name) is called what it is, not "pickled data"."""
    p = _existing(path, what)
    with open(p, "rb") as fh:
        head = fh.read(6)
    if head != b"\x93NUMPY":
        kind = "an empty file" if not head else ("text" if _looks_like_text(p) else "not a NumPy array")
        raise InputError(f"not a .npy file (no NumPy header; it is {kind})", p,
                         f"save the {what} with numpy.save (text belongs in a .txt file)")
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputError(f"the .npy file holds Python objects, not a numeric {what}", p,
                             "save a plain float array with numpy.save") from None
        raise InputError(f"cannot read the .npy file ({exc})", p, "save it again with numpy.save") from None
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt header or data
        raise InputError(f"cannot read the .npy file ({type(exc).__name__}: {exc})", p,
                         "save it again with numpy.save") from None


def _looks_like_text(p: Path) -> bool:
    with open(p, "rb") as fh:
        chunk = fh.read(4096)
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in chunk


def check_finite(points: np.ndarray, path: str | Path | None, what: str = "vertices") -> None:
    """Raise :class:`InputError` if ``points`` holds NaN or Inf values."""
    bad = ~np.isfinite(points)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise InputError(
            f"{len(rows)} {what} contain NaN or Inf (first at row {rows[0]})",
            path,
            "repair or re-export this file; non-finite coordinates cannot be scored",
        )


_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True  # what str.split() and numpy's text parsing skip
_POW10 = 10.0 ** np.arange(16)  # exact float64 powers of ten
_INTEGER_TEXT = _WHITESPACE.copy()  # bytes that may appear in a line of integers
_INTEGER_TEXT[np.frombuffer(b"0123456789+-", dtype=np.uint8)] = True


def _obj_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines ``rows`` of ``buf`` (each ending with its newline) as one byte array with their first character
    (the ``v``/``f`` keyword) blanked, and the offset of each line in it."""
    s, e = starts[rows], ends[rows] + 1  # ends[i] is the line's newline (buf carries a final one)
    if rows[-1] - rows[0] + 1 == len(rows):  # one block of lines (the usual layout): a slice
        seg = buf[s[0]:e[-1]].copy()
        at = s - s[0]
    else:
        lens = e - s
        at = np.concatenate(([0], np.cumsum(lens)[:-1]))
        seg = buf[np.repeat(s - at, lens) + np.arange(int(lens.sum()))]
    seg[at] = 32
    return seg, at


def _obj_tokens(seg: np.ndarray, at: np.ndarray, slash_ends: bool):
    """Tokens of the lines in ``seg`` (starting at offsets ``at``): ``(start, end, first, count)`` -- each token's
    byte range (maximal runs of bytes other than space, tab, CR and LF; with ``slash_ends`` a token ends at its
    first '/', the vertex index of ``i/t/n``), the index of each line's first token and the token count of each
    line. ``None`` when ``seg`` holds another control character or a token starts with '/'."""
    sep = seg <= 32
    ctrl = np.count_nonzero(seg < 32)
    if ctrl != len(at) and ctrl != len(at) + np.count_nonzero(seg == 9) + np.count_nonzero(seg == 13):
        return None  # each line has one LF; any other control byte than TAB or CR: the general reader
    if slash_ends and (slash := seg == 47).any():
        if (sep[:-1] & slash[1:]).any():
            return None
        stop = sep | slash
        edge = np.flatnonzero(stop[:-1] != stop[1:]) + 1
        start, end = edge[0::2], edge[1::2]
        keep = sep[start - 1]  # a run after a '/' is a texture or normal index
        start, end = start[keep], end[keep]
    else:
        # seg[0] is the blanked keyword and seg ends with LF: the edges alternate, token start then token end
        edge = np.flatnonzero(sep[:-1] != sep[1:]) + 1
        start, end = edge[0::2], edge[1::2]
    n, lines = len(start), len(at)
    k = n // lines
    if k * lines == n and k > 0:  # k tokens on every line? (token i k on line i and token i k + k - 1 before i + 1)
        nxt = np.append(at[1:], len(seg))
        if (start[::k] >= at).all() and (start[k - 1::k] < nxt).all():
            return start, end, np.arange(0, n, k), np.full(lines, k)
    first = np.searchsorted(start, at)
    return start, end, first, np.diff(np.append(first, n))


def _obj_decimals(seg: np.ndarray, start: np.ndarray, end: np.ndarray, dots: bool) -> np.ndarray | None:
    """The float64 values of the tokens ``seg[start[i]:end[i]]``, each ``[+-]digits[.digits]`` (``dots``) or
    ``[+-]digits``, with 1 to 15 digits in all; ``None`` if a token is anything else.

    Exact: a token with ``k`` decimals is ``N / 10**k`` with the integer ``N < 10**15 < 2**53`` and ``10**k``
    exact in float64, so the one IEEE division is the correctly rounded value of the decimal -- what Python's
    ``float()`` and numpy's text reader return. Tokens are grouped by their layout (length, position of the
    dot, sign), so each group is read column by column.
    """
    n = len(start)
    length = end - start
    if n == 0 or length.max() > 17:
        return None if n else np.zeros(0)
    lead = seg[start]
    signed = (lead == 45) | (lead == 43)
    off = np.zeros(n, dtype=np.int16)  # bytes from the dot to the token's end (0: no dot)
    if dots:
        rest = np.arange(n)
        first_dot = bytes(seg[start[0]:end[0]]).rfind(b".")
        guess = [int(length[0]) - first_dot] if first_dot >= 0 else []
        for d in guess + [d for d in range(1, int(length.max()) + 1) if d not in guess]:
            hit = (seg[end[rest] - d] == 46) & (length[rest] >= d)
            off[rest[hit]] = d
            rest = rest[~hit]
            if len(rest) == 0:
                break
    ndig = length - signed - (off > 0)
    if ndig.min() < 1:
        return None
    fast = _obj_decimals_swar(seg, start, end, lead, signed, off)
    if fast is not None:
        return fast if len(fast) else None  # empty: a token holds a non-digit
    if ndig.max() > 15:
        return None  # N might exceed 2**53: numpy's text reader
    key = ((length * 32 + off) * 2 + signed).astype(np.int16)
    present = np.flatnonzero(np.bincount(key))
    if len(present) > 32:
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], present)
        groups = np.split(order, bounds[1:])
    else:
        groups = [np.flatnonzero(key == k) for k in present]
    out = np.empty(n)
    for k, idx in zip(present, groups):
        size, dot, sgn = int(k) // 64, int(k) // 2 % 32, int(k) % 2
        s = start[idx]
        at = s + sgn
        val = np.zeros(len(idx), dtype=np.int64)
        for j in range(sgn, size):
            if not (dot and j == size - dot):
                digit = seg[at] - np.uint8(48)  # a non-digit (another dot, a sign, a letter) wraps to > 9
                if digit.max() > 9:
                    return None
                val *= 10
                val += digit
            at += 1
        val = val.astype(np.float64)  # an integer < 10**15: exact
        if dot > 1:
            val /= _POW10[dot - 1]
        if sgn:
            np.negative(val, out=val, where=seg[s] == 45)
        out[idx] = val
    return out


_U = np.uint64
_SWAR_SHIFT = np.array([64 - 8 * k for k in range(9)], dtype=np.uint64)  # k digits to the top of the word
_SWAR_FILL = np.array([0x3030303030303030 >> (8 * k) if k < 8 else 0 for k in range(9)], dtype=np.uint64)
_POW10_INT = np.array([10 ** k for k in range(9)], dtype=np.uint64)


def _swar8(words: np.ndarray, pos: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, bool]:
    """The integers written by the ``count[i]`` (0 to 8) ASCII digits at ``pos[i]``, eight bytes at a time (one
    little-endian word per number: the digits are moved to its top, '0' bytes fill the rest, then three
    multiply-shift-mask steps add the digit pairs, quadruples and octets), and whether all were digits."""
    w = words[pos]
    lo, hi = int(count.min()), int(count.max())
    if lo == hi:  # one width: scalar shift and fill
        w <<= _SWAR_SHIFT[lo]
        w |= _SWAR_FILL[lo]
    else:
        w <<= _SWAR_SHIFT[count]
        w |= _SWAR_FILL[count]
    t = w + _U(0x0606060606060606)  # a byte is a digit iff its high nibble and that of byte + 6 are both 3
    t &= _U(0xF0F0F0F0F0F0F0F0)
    t >>= _U(4)
    t |= w & _U(0xF0F0F0F0F0F0F0F0)
    digits = bool((t == _U(0x3333333333333333)).all())
    w &= _U(0x0F0F0F0F0F0F0F0F)
    w *= _U(2561)
    w >>= _U(8)
    w &= _U(0x00FF00FF00FF00FF)
    w *= _U(6553601)
    w >>= _U(16)
    w &= _U(0x0000FFFF0000FFFF)
    w *= _U(42949672960001)
    w >>= _U(32)
    return w, digits


def _obj_decimals_swar(seg, start, end, lead, signed, off) -> np.ndarray | None:
    """:func:`_obj_decimals` for tokens with at most 8 digits before and 8 after the dot (a value below
    ``2**53``): ``N = I * 10**k + F`` from two eight-digit words. ``None`` when a token does not fit; an empty
    array when a token holds a non-digit."""
    first = start + signed
    dot = end - off  # the token's end when it has no dot
    n_int = dot - first
    n_frac = off - (off > 0)
    if n_int.max() > 8 or n_frac.max() > 8:
        return None
    padded = np.empty(len(seg) + 8, dtype=np.uint8)
    padded[:len(seg)] = seg
    padded[len(seg):] = 32
    words = np.ndarray((len(seg) + 1,), dtype="<u8", buffer=padded, strides=(1,))  # words[i]: bytes i..i+7
    value, ok = _swar8(words, first, n_int)
    if not ok:
        return np.zeros(0)
    k = int(n_frac.max())
    same = k == int(n_frac.min())  # the usual fixed number of decimals: scalar powers of ten
    if k > 0:
        frac, ok = _swar8(words, dot + 1, n_frac)
        if not ok:
            return np.zeros(0)
        value *= _POW10_INT[k] if same else _POW10_INT[n_frac]
        value += frac
        if value.max() > _U(2 ** 53):
            return None
    out = value.astype(np.float64)  # exact: below 2**53
    if k > 0:
        out /= _POW10[k] if same else _POW10[n_frac]  # one correctly rounded division by an exact power of ten
    if (lead == 45).any():
        np.negative(out, out=out, where=lead == 45)
    return out


def _obj_table(seg: np.ndarray, dtype) -> np.ndarray | None:
    """The whitespace-separated numbers of ``seg``'s lines as one ``(lines, columns)`` table (numpy's C text
    reader), or ``None`` when a line does not parse or the lines differ in length."""
    import io as _io

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.loadtxt(_io.BytesIO(seg.tobytes()), dtype=dtype, comments=None, ndmin=2)
    except (ValueError, OverflowError):
        return None
    return arr if arr.shape[1] >= 3 else None


def _obj_vertices(seg: np.ndarray, at: np.ndarray) -> np.ndarray | None:
    """``(lines, 3)`` float64: the first three numbers of each 'v' line (plain decimals only), or ``None``."""
    tokens = _obj_tokens(seg, at, slash_ends=False)
    if tokens is None:
        return None
    start, end, first, count = tokens
    if len(count) == 0 or count.min() < 3:
        return None
    if count.max() > 3:  # colours (or w): only x, y, z are read, as by the line-by-line reader
        take = (first[:, None] + np.arange(3)).ravel()
        start, end = start[take], end[take]
    val = _obj_decimals(seg, start, end, dots=True)
    return None if val is None else val.reshape(-1, 3)


def _obj_indices(seg: np.ndarray, start: np.ndarray, end: np.ndarray, n: int) -> np.ndarray | None:
    """0-based int64 vertex indices of the face tokens (``i`` -> ``i - 1``, ``-i`` -> ``n - i``), or ``None``."""
    lead = seg[start]
    width = end - start
    if width.max() <= 8 and not ((lead == 45) | (lead == 43)).any():  # the usual: unsigned, at most 8 digits
        padded = np.empty(len(seg) + 8, dtype=np.uint8)
        padded[:len(seg)] = seg
        padded[len(seg):] = 32
        words = np.ndarray((len(seg) + 1,), dtype="<u8", buffer=padded, strides=(1,))
        value, ok = _swar8(words, start, width)
        if not ok:
            return None
        idx = value.astype(np.int64)
        idx -= 1
        idx[idx < 0] = n  # index 0: out of range, as n + 0 (load_mesh says so)
        return idx
    val = _obj_decimals(seg, start, end, dots=False)
    if val is None:
        return None
    t = val.astype(np.int64)
    return np.where(t > 0, t - 1, n + t)


def _obj_faces(seg: np.ndarray, at: np.ndarray, n: int, max_corners: int | None = None,
               unsigned: bool = False) -> np.ndarray | None:
    """``(m, 3)`` int64 0-based triangles of the 'f' lines (polygons fan-split), or ``None`` (also when a line has
    more than ``max_corners`` corners, or, with ``unsigned``, an index carries a sign)."""
    tokens = _obj_tokens(seg, at, slash_ends=True)
    if tokens is None:
        return None
    start, end, first, count = tokens
    if len(count) == 0 or count.min() < 3 or (max_corners is not None and count.max() > max_corners):
        return None
    if unsigned and ((seg[start] == 45) | (seg[start] == 43)).any():
        return None
    idx = _obj_indices(seg, start, end, n)
    if idx is None:
        return None
    k = int(count.max())
    if k == count.min():  # all lines have k vertices
        idx = idx.reshape(-1, k)
        if k == 3:
            return idx
        j = np.arange(1, k - 1)
        faces = np.stack([np.broadcast_to(idx[:, :1], (len(idx), len(j))), idx[:, j], idx[:, j + 1]], axis=2)
        return np.ascontiguousarray(faces.reshape(-1, 3))
    ntri = count - 2  # mixed polygons: each line a fan from its first vertex, in file order
    base = np.repeat(first, ntri)
    j = np.arange(int(ntri.sum())) - np.repeat(np.cumsum(ntri) - ntri, ntri) + 1
    return np.stack([idx[base], idx[base + j], idx[base + j + 1]], axis=1)


def _obj_split(data: bytes) -> tuple[np.ndarray, tuple | None] | None:
    """The 'v' and 'f' lines of an OBJ file (a keyword, then a blank), split as ``str.splitlines()`` splits them:
    ``(vertices (n, 3) float64, face lines)`` -- the first three numbers of each 'v' line (plain decimals by
    :func:`_obj_decimals`, other numbers by numpy's text reader; both the correctly rounded float64, as ``float()``)
    and ``(seg, at)`` of the 'f' lines for :func:`_obj_faces` (None without any) -- or None when the file is not one
    the vectorised readers take (other line breaks, no 'v' line, a 'v' line that does not parse)."""
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None  # a lone CR is a line break for str.splitlines()
    if any(c in data for c in (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85")):
        return None  # other line breaks of str.splitlines() on Latin-1 text
    buf = np.frombuffer(data + b"\n\n", dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)[:-1]  # the newline ending each line (the padding adds one empty line)
    starts = np.concatenate(([0], ends[:-1] + 1))
    first, second = buf[starts], buf[starts + 1]
    blank = (second == 32) | (second == 9)
    rows_v = np.flatnonzero((first == ord("v")) & blank)
    rows_f = np.flatnonzero((first == ord("f")) & blank)
    if len(rows_v) == 0:
        return None
    seg, at = _obj_lines(buf, starts, ends, rows_v)
    vertices = _obj_vertices(seg, at)
    if vertices is None:
        table = _obj_table(seg, np.float64)
        if table is None:
            return None
        vertices = np.ascontiguousarray(table[:, :3])
    return vertices, (_obj_lines(buf, starts, ends, rows_f) if len(rows_f) else None)


def _obj_fast(data: bytes) -> Mesh | None:
    """Vectorised OBJ reader for well-formed files (the result of :func:`_parse_obj`, which it defers to -- and
    which words every error -- when a line does not parse or 'v' / 'f' lines differ in length)."""
    split = _obj_split(data)
    if split is None:
        return None
    vertices, face_lines = split
    if face_lines is None:
        return Mesh(vertices, np.zeros((0, 3), dtype=np.int64))
    n = len(vertices)
    seg, at = face_lines
    faces = _obj_faces(seg, at, n)
    if faces is not None:
        return Mesh(vertices, faces)
    slash = seg == ord("/")
    if slash.any():  # keep each token's vertex index: blank from its first '/' to the end of the token
        ws = _WHITESPACE[seg]
        token = np.cumsum(ws)  # constant inside a token
        seen = np.maximum.accumulate(np.where(slash, token, -1))
        seg[(seen == token) & ~ws] = 32
    if not _INTEGER_TEXT[seg].all():  # only digits, signs, blanks: numpy 1.x's loadtxt would truncate "3.0" or "2.5"
        return None
    table = _obj_table(seg, np.int64)
    if table is None:
        return None
    idx = np.where(table > 0, table - 1, n + table)
    if idx.shape[1] == 3:
        faces = idx
    else:  # polygons of k vertices: a fan from the first one
        j = np.arange(1, idx.shape[1] - 1)
        faces = np.stack([np.broadcast_to(idx[:, :1], (len(idx), len(j))), idx[:, j], idx[:, j + 1]], axis=2)
    return Mesh(vertices, np.ascontiguousarray(faces.reshape(-1, 3), dtype=np.int64))


def _parse_obj(text: str, path: Path) -> Mesh:
    verts: list[str] = []
    face_lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("v "):
            verts.append(line)
        elif line.startswith("f "):
            face_lines.append(line)
        elif line.startswith("v\t") or line.startswith("f\t"):
            (verts if line[0] == "v" else face_lines).append(line)
    if not verts:
        raise InputError("mesh has no vertices ('v' lines)", path, "check that this is the mesh you meant")
    try:
        rows = [ln.split()[1:4] for ln in verts]
        vertices = np.array(rows, dtype=np.float64)
    except ValueError:
        raise InputError("a 'v' line does not hold three numbers", path, "repair or re-export the OBJ") from None
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError("a 'v' line has fewer than three coordinates", path, "repair or re-export the OBJ")
    n = len(vertices)
    tris: list[tuple[int, int, int]] = []
    for ln in face_lines:
        toks = ln.split()[1:]
        try:
            idx = [int(t.split("/", 1)[0]) for t in toks]
        except ValueError:
            raise InputError(f"cannot read face line {ln.strip()!r}", path, "repair or re-export the OBJ") from None
        if len(idx) < 3:
            raise InputError(f"face line with fewer than 3 vertices: {ln.strip()!r}", path, "repair the OBJ")
        idx = [i - 1 if i > 0 else n + i for i in idx]
        for k in range(1, len(idx) - 1):
            tris.append((idx[0], idx[k], idx[k + 1]))
    faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
    return Mesh(vertices, faces)


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}
PLY_POLYGONS = ("fan", "first-triangle")


class _PlyElement(NamedTuple):
    name: str
    count: int
    props: list  # (name, dtype) for scalars, (name, count_dtype, item_dtype) for lists


def _ply_header(data: bytes, p: Path) -> tuple[str, list[_PlyElement], int]:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise InputError("not a PLY file (no 'ply' ... 'end_header' header)", p, "re-export the mesh as PLY or OBJ")
    body = data.index(b"\n", end) + 1 if b"\n" in data[end:] else len(data)
    fmt, elements = None, []
    for raw in data[:end].decode("latin-1").splitlines()[1:]:
        tok = raw.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        try:
            if tok[0] == "format":
                fmt = tok[1]
            elif tok[0] == "element":
                elements.append(_PlyElement(tok[1], int(tok[2]), []))
            elif tok[0] == "property" and tok[1] == "list":
                elements[-1].props.append((tok[4], _PLY_TYPES[tok[2]], _PLY_TYPES[tok[3]]))
            elif tok[0] == "property":
                elements[-1].props.append((tok[2], _PLY_TYPES[tok[1]]))
            else:
                raise ValueError(raw)
        except (IndexError, KeyError, ValueError):
            raise InputError(f"cannot read PLY header line {raw.strip()!r}", p, "re-export the mesh") from None
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise InputError(f"unknown PLY format {fmt!r}", p, "re-export the mesh as ascii or binary PLY")
    return fmt, elements, body


def _ply_short(p: Path, el: _PlyElement, got: int) -> InputError:
    return InputError(f"PLY header declares {el.count} {el.name} elements but the file holds only {got}", p,
                      "the file is truncated or its header is wrong: re-export the mesh")


def _parse_ply(data: bytes, p: Path, polygons: str) -> Mesh:
    fmt, elements, pos = _ply_header(data, p)
    vertices, polys = None, None
    if fmt == "ascii":
        lines = [ln for ln in data[pos:].decode("latin-1").splitlines() if ln.strip()]
        need = sum(el.count for el in elements)
        if len(lines) != need:
            counts = ", ".join(f"{el.count} {el.name}" for el in elements)
            raise InputError(f"PLY header declares {counts} elements ({need} lines) but the body has {len(lines)}",
                             p, "the file is truncated or its header counts are wrong: re-export the mesh")
        at = 0
        for el in elements:
            rows = lines[at:at + el.count]
            at += el.count
            try:
                fast = _ply_ascii_fast(rows, el)
                if fast is not None:
                    if el.name == "vertex":
                        vertices = _ply_xyz(el, [list(fast.T)], p, columns=True)
                    elif el.name == "face":
                        polys = fast[:, 1:]
                    continue
                vals = [_ply_ascii_row(r.split(), el.props) for r in rows]
            except (ValueError, IndexError):
                raise InputError(f"a PLY {el.name} line does not match the header", p, "re-export the mesh") \
                    from None
            if el.name == "vertex":
                vertices = _ply_xyz(el, [v for v in vals], p)
            elif el.name == "face":
                polys = [next(v for v in row if isinstance(v, list)) if any(isinstance(v, list) for v in row)
                         else None for row in vals]
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        for el in elements:
            if all(len(pr) == 2 for pr in el.props):
                dt = np.dtype([(f"f{i}", order + pr[1]) for i, pr in enumerate(el.props)])
                have = (len(data) - pos) // dt.itemsize if dt.itemsize else el.count
                if have < el.count:
                    raise _ply_short(p, el, have)
                arr = np.frombuffer(data, dtype=dt, count=el.count, offset=pos)
                pos += el.count * dt.itemsize
                if el.name == "vertex":
                    vertices = _ply_xyz(el, [[arr[f"f{i}"] for i in range(len(el.props))]], p, columns=True)
            elif len(el.props) == 1 and _ply_binary_uniform(data, pos, el, order) is not None:
                arr = _ply_binary_uniform(data, pos, el, order)
                pos += arr.nbytes
                if el.name == "face":
                    polys = arr["i"]
            else:
                rows = []
                for k in range(el.count):
                    row = []
                    for pr in el.props:
                        if len(pr) == 2:
                            size = np.dtype(pr[1]).itemsize
                            if pos + size > len(data):
                                raise _ply_short(p, el, k)
                            row.append(np.frombuffer(data, order + pr[1], 1, pos)[0])
                            pos += size
                        else:
                            csize = np.dtype(pr[1]).itemsize
                            if pos + csize > len(data):
                                raise _ply_short(p, el, k)
                            n = int(np.frombuffer(data, order + pr[1], 1, pos)[0])
                            pos += csize
                            isize = np.dtype(pr[2]).itemsize
                            if pos + n * isize > len(data):
                                raise _ply_short(p, el, k)
                            row.append(np.frombuffer(data, order + pr[2], n, pos).tolist())
                            pos += n * isize
                    rows.append(row)
                if el.name == "face":
                    polys = [next((v for v in row if isinstance(v, list)), None) for row in rows]
                elif el.name == "vertex":
                    vertices = _ply_xyz(el, rows, p)
    if vertices is None or len(vertices) == 0:
        raise InputError("mesh has no vertices (no PLY 'vertex' element)", p, "check that this is the mesh you meant")
    tris: list = []
    if polys is not None and isinstance(polys, np.ndarray):
        if polys.shape[1] < 3:
            raise InputError("a PLY face has fewer than 3 vertex indices", p, "repair or re-export the mesh")
        if polygons == "first-triangle" or polys.shape[1] == 3:
            return Mesh(vertices, np.asarray(polys[:, :3], dtype=np.int64))
        polys = polys.tolist()
    for poly in polys if polys is not None else []:
        if poly is None or len(poly) < 3:
            raise InputError("a PLY face has fewer than 3 vertex indices", p, "repair or re-export the mesh")
        poly = [int(i) for i in poly]
        if polygons == "first-triangle":
            tris.append(poly[:3])
        else:
            tris.extend((poly[0], poly[k], poly[k + 1]) for k in range(1, len(poly) - 1))
    return Mesh(vertices, np.array(tris, dtype=np.int64).reshape(-1, 3))


def _ply_ascii_fast(rows: list, el: _PlyElement) -> np.ndarray | None:
    """All rows of an all-scalar element, or of a single-list element with equal list lengths, as one array."""
    if not rows or not (all(len(pr) == 2 for pr in el.props) or len(el.props) == 1):
        return None
    try:
        arr = np.array([r.split() for r in rows], dtype=np.float64 if len(el.props[0]) == 2 else np.int64)
    except ValueError:  # ragged rows or non-numbers: the slow path says which
        return None
    if arr.ndim != 2:
        return None
    if len(el.props[0]) == 2:
        return arr if arr.shape[1] == len(el.props) else None
    return arr if (arr[:, 0] == arr.shape[1] - 1).all() else None


def _ply_binary_uniform(data: bytes, pos: int, el: _PlyElement, order: str) -> np.ndarray | None:
    """A single-list element whose lists all have the first list's length, read at once (else None)."""
    _, cdt, idt = el.props[0]
    csize = np.dtype(cdt).itemsize
    if el.count == 0 or pos + csize > len(data):
        return None
    n = int(np.frombuffer(data, order + cdt, 1, pos)[0])
    dt = np.dtype([("n", order + cdt), ("i", order + idt, (n,))])
    if pos + el.count * dt.itemsize > len(data):
        return None
    arr = np.frombuffer(data, dt, el.count, pos)
    return arr if (arr["n"] == n).all() else None


def _ply_ascii_row(tok: list, props: list) -> list:
    out, i = [], 0
    for pr in props:
        if len(pr) == 2:
            out.append(float(tok[i]))
            i += 1
        else:
            n = int(tok[i])
            out.append([int(t) for t in tok[i + 1:i + 1 + n]])
            if len(out[-1]) != n:
                raise ValueError("short list")
            i += 1 + n
    if i != len(tok):
        raise ValueError("extra values")
    return out


def _ply_xyz(el: _PlyElement, rows, p: Path, columns: bool = False) -> np.ndarray:
    names = [pr[0] for pr in el.props]
    if not {"x", "y", "z"} <= set(names):
        raise InputError("PLY vertices have no x, y, z properties", p, "re-export the mesh with vertex positions")
    idx = [names.index(c) for c in "xyz"]
    if columns:
        return np.stack([np.asarray(rows[0][i], dtype=np.float64) for i in idx], axis=1).reshape(-1, 3)
    return np.array([[row[i] for i in idx] for row in rows], dtype=np.float64).reshape(-1, 3)


def file_identity(path: str | Path) -> tuple | None:
    """``(device, inode, size, mtime_ns, ctime_ns)`` of a file, or ``None`` when it cannot be stat'ed: a key that
    changes when the file is rewritten, for the per-process caches of what a run has read (NoW's scans in
    dataset mode, REALY's pre-flight meshes)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def load_mesh(path: str | Path, *, require_faces: bool = True, check: bool = True,
              ply_polygons: str = "fan") -> Mesh:
    """Load a triangle mesh from OBJ or PLY.

    Parameters
    ----------
    path : str or Path
        ``.obj`` or ``.ply`` file.
    require_faces : bool
        Raise if the file has no faces (a point cloud cannot be a prediction surface).
    check : bool
        Validate: finite vertices, face indices in range.
    ply_polygons : {'fan', 'first-triangle'}
        How a PLY face with more than 3 indices becomes triangles: ``'fan'`` splits ``a b c d`` into
        ``(a, b, c), (a, c, d)``; ``'first-triangle'`` keeps ``(a, b, c)`` only -- what psbody-mesh's PLY
        reader (``plyutils.c`` ``face_cb``: value indices 0-2 only), and hence the official NoW scorer, does.
        OBJ polygons are always fan-split (psbody's OBJ reader does that too).

    Returns
    -------
    Mesh
        ``vertices (n, 3) float64`` in the file's units, ``faces (m, 3) int64`` 0-based.

    Raises
    ------
    InputError
        Missing/unreadable/empty file, NaN or Inf vertices, out-of-range face indices, a PLY whose header
        counts do not match its body.
    """
    p = _existing(path, "mesh")
    suffix = p.suffix.lower()
    if ply_polygons not in PLY_POLYGONS:
        raise ValueError(f"ply_polygons must be one of {PLY_POLYGONS}")
    if suffix == ".obj":
        data = p.read_bytes()
        if b"\x00" in data:
            raise InputError("OBJ file is not text (it holds NUL bytes)", p, "re-export it as an ASCII OBJ")
        # Latin-1 maps every byte: a non-UTF-8 byte in a comment or a group name is harmless, and one inside a
        # 'v' or 'f' line still fails the number parsing below.
        mesh = _obj_fast(data)
        if mesh is None:
            mesh = _parse_obj(data.decode("latin-1"), p)
    elif suffix == ".ply":
        mesh = _parse_ply(p.read_bytes(), p, ply_polygons)
    else:
        raise InputError(f"unsupported mesh format {suffix!r}", p, "use .obj or .ply")
    if require_faces and len(mesh.faces) == 0:
        raise InputError("mesh has no faces" + (" ('f' lines)" if suffix == ".obj" else "") +
                         ": a point cloud is not a surface", p,
                         "save the mesh with its triangles")
    if check:
        check_finite(mesh.vertices, p)
        if len(mesh.faces) and (mesh.faces.min() < 0 or mesh.faces.max() >= len(mesh.vertices)):
            raise InputError(
                f"face index out of range (mesh has {len(mesh.vertices)} vertices)", p, "repair or re-export the mesh"
            )
    return mesh


def save_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray | None = None, fmt: str = "%.6f") -> None:
    """Write ``v`` and (1-based) ``f`` lines to an OBJ file."""
    vertices = np.asarray(vertices, dtype=np.float64)
    with open(path, "w") as fh:
        np.savetxt(fh, vertices, fmt=f"v {fmt} {fmt} {fmt}")
        if faces is not None and len(faces):
            np.savetxt(fh, np.asarray(faces, dtype=np.int64) + 1, fmt="f %d %d %d")


_PP_POINT = re.compile(r"<point\b[^>]*>", re.IGNORECASE)


def _load_pp(p: Path) -> np.ndarray:
    import xml.etree.ElementTree as ET  # here: 2 ms of start-up for the commands that read no .pp

    text = p.read_text(errors="replace")
    try:
        root = ET.fromstring(text)
        pts = [el for el in root.iter() if el.tag.lower() == "point"]
        rows = [[float(el.attrib["x"]), float(el.attrib["y"]), float(el.attrib["z"])] for el in pts]
    except (ET.ParseError, KeyError, ValueError):
        raise InputError("not a valid MeshLab .pp (PickedPoints) file", p, "export the landmarks from MeshLab again") \
            from None
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def _load_pts(p: Path) -> np.ndarray:
    lines = [ln.strip() for ln in p.read_text(errors="replace").splitlines()]
    try:
        start = lines.index("{") + 1
        end = lines.index("}", start)
    except ValueError:
        raise InputError("not an iBUG .pts file (no '{' ... '}' block)", p, "check the file format") from None
    rows = [ln.split() for ln in lines[start:end] if ln]
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        raise InputError("a .pts point line does not hold numbers", p, "repair the file") from None


def _load_ljson(p: Path) -> np.ndarray:
    """menpo LJSON: v1/v2 ``{"landmarks": {"points": [...]}}`` or v3 ``{"groups": {NAME: {"landmarks": ...}}}``
    (the first group)."""
    import json

    try:
        obj = json.loads(p.read_text())
        if "groups" in obj:
            obj = next(iter(obj["groups"].values()))
        pts = obj["landmarks"]["points"]
    except (json.JSONDecodeError, KeyError, TypeError, StopIteration, AttributeError):
        raise InputError("not a menpo .ljson file (no landmarks.points)", p, "check the file format") from None
    return np.array([[np.nan if v is None else v for v in row] for row in pts], dtype=np.float64)


def _load_txt(p: Path) -> np.ndarray:
    rows = []
    for ln in p.read_text(errors="replace").splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        rows.append(ln.replace(",", " ").split())
    if not rows:
        raise InputError("landmark file is empty", p, "write one landmark per line: x y z")
    if len({len(r) for r in rows}) != 1:
        raise InputError("landmark rows have different numbers of values", p, "write one landmark per line: x y z")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        raise InputError("landmark file holds non-numeric values", p, "write one landmark per line: x y z") from None


def load_landmarks(path: str | Path, n: int | None = None, dim: int | None = 3) -> np.ndarray:
    """Load landmarks from ``.pp``, ``.txt``/``.csv``, ``.npy``, ``.pts`` or ``.ljson``.

    Parameters
    ----------
    path : str or Path
        Landmark file.
    n : int, optional
        Required number of landmarks; a different count raises :class:`InputError`.
    dim : int or None
        Required coordinate dimension (3 by default; ``None`` accepts 2 or 3).

    Returns
    -------
    (n, dim) float64
        Landmarks in file order and units.
    """
    p = _existing(path, "landmark")
    suffix = p.suffix.lower()
    if suffix == ".pp":
        arr = _load_pp(p)
    elif suffix in (".txt", ".csv"):
        arr = _load_txt(p)
    elif suffix == ".npy":
        arr = load_npy(p, "landmarks")
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        arr = np.asarray(arr, dtype=np.float64)
    elif suffix == ".pts":
        arr = _load_pts(p)
    elif suffix == ".ljson":
        arr = _load_ljson(p)
    else:
        raise InputError(f"unsupported landmark format {suffix!r}", p, "use .pp, .txt, .npy, .pts or .ljson")
    if arr.ndim != 2:
        raise InputError(f"landmarks have shape {arr.shape}, expected (k, 3)", p, "save one landmark per row")
    if dim is not None and arr.shape[1] != dim:
        raise InputError(f"landmarks have {arr.shape[1]} coordinates per point, expected {dim}", p,
                         f"save {dim}D landmarks, one per row")
    if n is not None and arr.shape[0] != n:
        raise InputError(f"expected {n} landmarks, found {arr.shape[0]}", p,
                         f"give exactly the {n} landmarks of the protocol, in its order")
    check_finite(arr, p, "landmarks")
    return arr


def save_landmarks_txt(path: str | Path, landmarks: np.ndarray, fmt: str = "%.6f") -> None:
    """Write landmarks one per line, separated by single spaces (the NoW ``.txt`` format)."""
    np.savetxt(path, np.asarray(landmarks, dtype=np.float64), fmt=fmt, delimiter=" ")


def save_pp(path: str | Path, landmarks: np.ndarray) -> None:
    """Write landmarks as a MeshLab PickedPoints ``.pp`` file (8 header lines, as MeshLab writes it)."""
    lines = [
        "<!DOCTYPE PickedPoints>",
        "<PickedPoints>",
        " <DocumentData>",
        '  <DateTime date="2000-01-01" time="00:00:00"/>',
        '  <User name="facenb"/>',
        '  <DataFileName name="scan.obj"/>',
        '  <templateName name=""/>',
        " </DocumentData>",
    ]
    for i, (x, y, z) in enumerate(np.asarray(landmarks, dtype=np.float64)):
        lines.append(f' <point x="{x:.6f}" y="{y:.6f}" z="{z:.6f}" active="1" name="{i}"/>')
    lines.append("</PickedPoints>")
    Path(path).write_text("\n".join(lines) + "\n")


# =============================================================================================================
# REALY: the official OBJ reader (czh-98/REALY utils/io_obj.read semantics) and the error-map PLY
# =============================================================================================================
class RealyMesh(NamedTuple):
    """A mesh as the official REALY reader returns it.

    Attributes
    ----------
    vertices : (n, 3) float32
        ``v`` lines, stored in float32 as ``io_obj.read`` does (every official computation starts from these).
    faces : (m, 3) int64
        0-based triangles; quads ``a b c d`` are split into ``(a, b, c), (a, c, d)``.
    skipped_polygons : int
        Faces with other than 3 or 4 corners, which the official reader silently ignores (so does this one).
    """

    vertices: np.ndarray
    faces: np.ndarray
    skipped_polygons: int = 0


def _obj_realy_fast(data: bytes) -> RealyMesh | None:
    """:func:`read_obj_realy`'s mesh of a plain file through the vectorised OBJ reader, or ``None`` when the file
    is anything else (then the line-by-line reader decides, and words every error).

    Plain: ASCII; lines end with LF or CRLF; no TAB (the official reader takes ``'v '`` / ``'f '`` lines, with a
    space, where the vectorised one also takes a TAB); 'v' lines of 3 or more numbers (as many on each; numbers
    other than plain decimals go through numpy's text reader, as in :func:`load_mesh`); every 'f' line
    has 3 or 4 unsigned indices in range (the official reader skips other polygons, and refuses index 0). The
    numbers are the same: both readers give the correctly rounded float64 of each decimal (then float32)."""
    if not data.isascii() or b"\t" in data:  # (without TAB, the keyword's blank is a space, as officially)
        return None
    split = _obj_split(data)
    if split is None or not np.isfinite(split[0]).all():
        return None
    vertices, face_lines = split
    n = len(vertices)
    faces = np.zeros((0, 3), dtype=np.int64)
    if face_lines is not None:
        faces = _obj_faces(*face_lines, n, max_corners=4, unsigned=True)
        if faces is None or faces.max() >= n:  # (index 0 is read as n)
            return None
    return RealyMesh(vertices.astype(np.float32), faces, 0)


def read_obj_realy(path: str | Path, *, need_faces: bool = True) -> RealyMesh:
    """Read an OBJ file exactly as the official ``utils/io_obj.read`` does (float32 vertices, 3/4-gons).

    Plain files go through the vectorised reader (:func:`_obj_realy_fast`, ~10x faster), every other file through
    a line-by-line reader of the official rules; both give the same arrays.

    Raises
    ------
    InputError
        Missing/unreadable file, no vertices, non-numeric values, negative (relative) face indices, face indices
        out of range, NaN/Inf coordinates, no faces (when ``need_faces``).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found" if not p.exists() else "expected a file, found a directory", p,
                         "check the path and the REALY folder layout")
    data = p.read_bytes()
    fast = _obj_realy_fast(data)
    if fast is not None and (len(fast.faces) or not need_faces):
        return fast
    return _read_obj_realy_lines(data, p, need_faces)


def _read_obj_realy_lines(data: bytes, p: Path, need_faces: bool) -> RealyMesh:
    """The official reader's rules, line by line (any file :func:`_obj_realy_fast` does not take)."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InputError("not a text OBJ file", p, "export the mesh as an ASCII OBJ") from None
    vrows: list[list[str]] = []
    tris: list[tuple[int, int, int]] = []
    skipped = 0
    try:
        for line in text.splitlines():
            if line.startswith("v "):
                vrows.append(line.split()[1:4])
            elif line.startswith("f "):
                toks = line.split()[1:]
                if len(toks) == 3:
                    a, b, c = (int(t.split("/", 1)[0]) for t in toks)
                    tris.append((a, b, c))
                elif len(toks) == 4:
                    a, b, c, d = (int(t.split("/", 1)[0]) for t in toks)
                    tris.append((a, b, c))
                    tris.append((a, c, d))
                else:
                    skipped += 1
        vertices = np.array(vrows, dtype=np.float64)
    except ValueError:
        raise InputError("a 'v' or 'f' line does not hold numbers", p, "repair or re-export the OBJ") from None
    if vertices.ndim != 2 or len(vertices) == 0:
        raise InputError("no vertices ('v' lines)", p, "check that this is the mesh you meant")
    if vertices.shape[1] != 3:
        raise InputError("a 'v' line has fewer than 3 coordinates", p, "repair or re-export the OBJ")
    bad = ~np.isfinite(vertices)
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        raise InputError(f"{int(bad.any(axis=1).sum())} vertices are NaN or Inf (first: vertex {row + 1})", p,
                         "export the mesh again; a mesh with non-finite coordinates cannot be scored")
    faces = np.array(tris, dtype=np.int64).reshape(-1, 3) - 1
    if len(faces):
        if faces.min() < 0:
            raise InputError("face indices must be positive (absolute, 1-based); the official reader mis-reads "
                             "relative (negative) indices", p, "export the OBJ with absolute face indices")
        if faces.max() >= len(vertices):
            raise InputError(f"face index {int(faces.max()) + 1} out of range ({len(vertices)} vertices)", p,
                             "repair or re-export the OBJ")
    elif need_faces:
        raise InputError("mesh has no triangle or quad faces", p, "save the mesh with its faces")
    return RealyMesh(vertices.astype(np.float32), faces, skipped)


def write_error_map_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray, errors: np.ndarray) -> None:
    """Binary PLY with vertex properties ``x y z`` (float32) and ``error_mm`` (float32), triangle faces."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    e = np.asarray(errors, dtype=np.float64)
    header = ("ply\nformat binary_little_endian 1.0\ncomment facenb REALY per-vertex error (mm)\n"
              f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"property float error_mm\nelement face {len(f)}\nproperty list uchar int vertex_indices\n"
              "end_header\n")
    vert = np.empty(len(v), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("e", "<f4")])
    vert["x"], vert["y"], vert["z"], vert["e"] = v[:, 0], v[:, 1], v[:, 2], e
    face = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    face["n"] = 3
    face["i"] = f
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(vert.tobytes())
        fh.write(face.tobytes())


def read_error_map_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a PLY written by :func:`write_error_map_ply`: ``(vertices (n, 3), faces (m, 3), error_mm (n,))``."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    head = data[:end].decode("ascii").splitlines()
    nv = int(next(h for h in head if h.startswith("element vertex")).split()[-1])
    nf = int(next(h for h in head if h.startswith("element face")).split()[-1])
    vert = np.frombuffer(data, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("e", "<f4")], count=nv, offset=end)
    face = np.frombuffer(data, dtype=[("n", "u1"), ("i", "<i4", (3,))], count=nf, offset=end + 16 * nv)
    v = np.stack([vert["x"], vert["y"], vert["z"]], axis=1).astype(np.float64)
    return v, face["i"].astype(np.int64), vert["e"].astype(np.float64)
