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
    * PLY (ASCII or binary), through trimesh without any processing (no merging, no reordering).
Landmarks
    * MeshLab PickedPoints ``.pp`` (XML ``<point x= y= z= name= />``), in file order.
    * whitespace/comma separated ``.txt`` / ``.csv`` (one landmark per row).
    * ``.npy`` arrays of shape ``(k, d)`` or ``(1, k, d)``.
    * iBUG ``.pts`` (``version``, ``n_points``, ``{ ... }``).
    * menpo ``.ljson`` (``{"landmarks": {"points": [...]}}``).
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
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


def check_finite(points: np.ndarray, path: str | Path | None, what: str = "vertices") -> None:
    """Raise :class:`InputError` if ``points`` holds NaN or Inf values."""
    bad = ~np.isfinite(points)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise InputError(
            f"{len(rows)} {what} contain NaN or Inf (first at row {rows[0]})",
            path,
            "export the prediction again; a mesh with non-finite coordinates cannot be scored",
        )


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


def load_mesh(path: str | Path, *, require_faces: bool = True, check: bool = True) -> Mesh:
    """Load a triangle mesh from OBJ or PLY.

    Parameters
    ----------
    path : str or Path
        ``.obj`` or ``.ply`` file.
    require_faces : bool
        Raise if the file has no faces (a point cloud cannot be a prediction surface).
    check : bool
        Validate: finite vertices, face indices in range.

    Returns
    -------
    Mesh
        ``vertices (n, 3) float64`` in the file's units, ``faces (m, 3) int64`` 0-based.

    Raises
    ------
    InputError
        Missing/unreadable/empty file, NaN or Inf vertices, out-of-range face indices.
    """
    p = _existing(path, "mesh")
    suffix = p.suffix.lower()
    if suffix == ".obj":
        try:
            text = p.read_text(errors="strict")
        except UnicodeDecodeError:
            raise InputError("OBJ file is not text", p, "re-export it as an ASCII OBJ") from None
        mesh = _parse_obj(text, p)
    elif suffix == ".ply":
        import trimesh

        try:
            tm = trimesh.load(p, process=False, force="mesh")
        except Exception as exc:  # trimesh raises many types for corrupt files
            raise InputError(f"cannot read PLY ({type(exc).__name__}: {exc})", p, "re-export the mesh") from None
        vertices = np.asarray(getattr(tm, "vertices", np.zeros((0, 3))), dtype=np.float64)
        faces = np.asarray(getattr(tm, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
        if len(vertices) == 0:
            raise InputError("mesh has no vertices", p, "check that this is the mesh you meant")
        mesh = Mesh(vertices, faces)
    else:
        raise InputError(f"unsupported mesh format {suffix!r}", p, "use .obj or .ply")
    if require_faces and len(mesh.faces) == 0:
        raise InputError("mesh has no faces ('f' lines): a point cloud is not a surface", p,
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
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception:
            raise InputError("cannot read .npy landmark file", p, "save it with numpy.save") from None
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
