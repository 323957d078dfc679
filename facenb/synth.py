"""A public synthetic benchmark in the official layouts (``facenb synth now|realy|stirling``).

NoW, REALY and Stirling/ESRC ground truth is licence-gated. This module writes a complete dataset in each
benchmark's official folder layout from public data only, so every flow (dataset mode, notebooks, reports, tests)
can run end to end: :func:`synth_now`, :func:`synth_realy`, :func:`synth_stirling`.

* **Subjects** are Surrey Face Model identities (``surrey_face_model/sfm_shape_3448.bin``, the public shape-only
  SFM of Huber et al., VISAPP 2016, read with :func:`load_sfm`): ``S = μ + U (α ⊙ √λ)``, ``α ~ N(0, 1)`` clipped at
  2.5, mm, y up, face towards +z, subject's right at -x.
* **Scans** (NoW, Stirling) are the subject's neutral shape, midpoint-subdivided (``scan_subdivisions`` times; the
  surface is unchanged, so it is the *noise-free shape*), then scanner-like: vertices dropped with a smoothly
  varying probability (density), holes at both eyes and one random spot, Gaussian noise along the normal
  (``scan_noise_mm``). Scan landmarks are the noise-free iBUG points 37, 40, 43, 46, 34, 49, 55 (SFM vertices from
  ``ibug_to_sfm.txt``) plus annotator jitter. REALY: the identity carried onto a REALY template topology
  (:func:`synth_realy`).
* **Methods** (:data:`METHODS`) predict each image with graded, known errors: shape-coefficient noise (larger on
  occlusion, selfie and LQ images), Laplacian smoothing, a leak of the image's expression (SFM blendshapes) into the
  neutral shape, a scale and pose error, missing parts. A prediction is written in an arbitrary rigid frame (mm).
* ``truth.json`` holds each prediction's **true** per-vertex error: for every scan vertex the scorer measures (the
  official NoW crop, the FG2018 face mask, the REALY regions; in the order of the scorer's distances), the distance
  of its noise-free position to the predicted surface in the ground-truth frame -- no alignment, so scale and pose
  errors count.

Everything is deterministic for a seed (byte-identical files).
"""
from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from facenb.align import rodrigues
from facenb.errors import InputError
from facenb.landmarks import NOW7_FROM_MENPO_JAMES

__all__ = ["SurreyModel", "load_sfm", "MethodSpec", "METHODS", "NOW7_IBUG_1BASED", "synth_now", "SynthResult",
           "synth_realy", "synth_stirling", "load_truth"]

NOW7_IBUG_1BASED = (37, 40, 43, 46, 34, 49, 55)
CHALLENGE_CYCLE = ("multiview_neutral", "multiview_expressions", "multiview_occlusions", "selfie")


# ============================================================================================ the Surrey model
@dataclass(frozen=True)
class SurreyModel:
    """The public shape-only Surrey Face Model (3448 vertices), millimetres, y up, face towards +z.

    Attributes
    ----------
    mean : (n, 3) float64
    basis : (3n, k) float64
        Orthonormal PCA basis (columns), ``k = 63``.
    eigenvalues : (k,) float64
        Variances (mm²) of the components.
    faces : (m, 3) int64
    expressions : dict name -> (n, 3) float64
        The 6 blendshapes (anger, disgust, fear, happiness, sadness, surprise), added with a weight.
    ibug : dict int -> int
        iBUG-68 point (1-based) -> SFM vertex (0-based), from ``ibug_to_sfm.txt`` (points defined on this mesh).
    """

    mean: np.ndarray
    basis: np.ndarray
    eigenvalues: np.ndarray
    faces: np.ndarray
    expressions: dict = field(default_factory=dict)
    ibug: dict = field(default_factory=dict)

    def shape(self, alpha: np.ndarray, expression: dict | None = None) -> np.ndarray:
        """``μ + U (α ⊙ √λ) + Σ_e w_e B_e``, ``(n, 3)`` mm; ``alpha`` may be shorter than ``k`` (rest 0)."""
        a = np.zeros(len(self.eigenvalues))
        a[: len(alpha)] = np.asarray(alpha, dtype=np.float64)[: len(a)]
        v = self.mean + (self.basis @ (a * np.sqrt(self.eigenvalues))).reshape(-1, 3)
        for name, w in (expression or {}).items():
            v = v + w * self.expressions[name]
        return v

    @property
    def now7(self) -> list[int]:
        """SFM vertices of the 7 NoW landmarks (iBUG 37, 40, 43, 46, 34, 49, 55)."""
        return [self.ibug[i] for i in NOW7_IBUG_1BASED]


def _matrix(b: bytes, o: int) -> tuple[np.ndarray, int]:
    rows, cols = struct.unpack_from("<ii", b, o)
    o += 8
    a = np.frombuffer(b, dtype="<f4", count=rows * cols, offset=o).reshape(cols, rows).T  # Eigen: column-major
    return a.astype(np.float64), o + 4 * rows * cols


def _folder(name: str, folder: str | Path | None) -> Path:
    from facenb import data as _data

    return _data.require(name, folder)


def load_sfm(folder: str | Path | None = None) -> SurreyModel:
    """Read ``sfm_shape_3448.bin`` (eos cereal binary: class version; mean, basis, eigenvalues as Eigen matrices
    ``int32 rows, int32 cols, float32 column-major``; triangles ``uint64 n, int32[n][3]``), the expression
    blendshapes (``uint64 count``; each ``uint64 len, name, matrix``) and ``ibug_to_sfm.txt``.

    ``folder`` defaults to the ``surrey_face_model`` dataset through :mod:`facenb.data`.
    """
    d = _folder("surrey_face_model", folder)
    try:
        b = (d / "sfm_shape_3448.bin").read_bytes()
        o = 4
        mean, o = _matrix(b, o)
        basis, o = _matrix(b, o)
        ev, o = _matrix(b, o)
        (n,) = struct.unpack_from("<Q", b, o)
        faces = np.frombuffer(b, dtype="<i4", count=3 * n, offset=o + 8).reshape(n, 3).astype(np.int64)
        e = (d / "expression_blendshapes_3448.bin").read_bytes()
        (count,) = struct.unpack_from("<Q", e, 0)
        o, expressions = 8, {}
        for _ in range(count):
            (ln,) = struct.unpack_from("<Q", e, o)
            name = e[o + 8: o + 8 + ln].decode()
            m, o = _matrix(e, o + 8 + ln)
            expressions[name] = m.reshape(-1, 3)
        ibug = {}
        section = ""
        for line in (d / "ibug_to_sfm.txt").read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("["):
                section = line
            elif section == "[landmark_mappings]" and "=" in line:
                k, v = line.split("=")
                ibug[int(k)] = int(v)
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the Surrey Face Model ({type(exc).__name__}: {exc})", d,
                         "run `facenb data fetch surrey_face_model` again") from None
    mean = mean.reshape(-1, 3)
    if basis.shape[0] != mean.size or faces.max() >= len(mean) or not set(NOW7_IBUG_1BASED) <= set(ibug):
        raise InputError("Surrey Face Model files are inconsistent", d, "run `facenb data fetch surrey_face_model`")
    return SurreyModel(mean, basis, ev.ravel(), faces, expressions, ibug)


# ================================================================================================== methods
@dataclass(frozen=True)
class MethodSpec:
    """A synthetic reconstruction method of known quality.

    Attributes
    ----------
    coef_sigma : float
        Std of the error added to each of the first 40 identity coefficients (units of √λ).
    smooth_iters : int
        Uniform Laplacian smoothing iterations (λ = 0.5) of the predicted mesh (lost detail, shrinkage).
    expression_leak : float
        Fraction of the image's expression put into the (neutral) predicted shape.
    scale : float
        Scale error about the landmarks' centroid (1 = none).
    rot_deg : float
        Pose error: rotation about the vertical axis through the landmarks' centroid, degrees.
    missing_mm : float
        Radius of a region (around the chin) whose triangles the method does not output (0 = none).
    lmk_sigma_mm : float
        Std of the method's own 3D landmark error.
    """

    coef_sigma: float = 0.2
    smooth_iters: int = 0
    expression_leak: float = 0.0
    scale: float = 1.0
    rot_deg: float = 0.0
    missing_mm: float = 0.0
    lmk_sigma_mm: float = 1.0


#: The default methods, best first (by design): their names say what is wrong with them.
METHODS: dict[str, MethodSpec] = {
    "precise": MethodSpec(coef_sigma=0.15, lmk_sigma_mm=0.8),
    "coarse": MethodSpec(coef_sigma=0.6, lmk_sigma_mm=1.5),
    "smooth": MethodSpec(coef_sigma=0.3, smooth_iters=12),
    "expression_leak": MethodSpec(coef_sigma=0.3, expression_leak=0.9),
    "scale_pose": MethodSpec(coef_sigma=0.3, scale=1.08, rot_deg=4.0),
    "missing_parts": MethodSpec(coef_sigma=0.3, missing_mm=30.0),
}
#: Coefficient-noise multiplier per NoW challenge (occlusions and selfies are harder).
CHALLENGE_DIFFICULTY = {"multiview_neutral": 1.0, "multiview_expressions": 1.2, "multiview_occlusions": 1.6,
                        "selfie": 1.3}


_EDGES: dict = {}


def _laplacian_smooth(v: np.ndarray, faces: np.ndarray, iters: int, lam: float = 0.5) -> np.ndarray:
    n = len(v)
    key = (n, len(faces), hash(faces.tobytes()))
    if key not in _EDGES:
        e = np.vstack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        _EDGES[key] = np.unique(np.sort(e, axis=1), axis=0)
    e = _EDGES[key]
    deg = np.bincount(e.ravel(), minlength=n).astype(np.float64)
    deg[deg == 0] = 1
    out = v.copy()
    for _ in range(iters):
        s = np.zeros_like(out)
        np.add.at(s, e[:, 0], out[e[:, 1]])
        np.add.at(s, e[:, 1], out[e[:, 0]])
        out = out + lam * (s / deg[:, None] - out)
    return out


def _rotation_y(deg: float) -> np.ndarray:
    return rodrigues(np.array([0.0, np.deg2rad(deg), 0.0]))[0]


def _predict(sfm: SurreyModel, alpha: np.ndarray, expression: dict, spec: MethodSpec, difficulty: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A method's prediction in the ground-truth frame: vertices, faces, 7 landmarks (with the method's error)."""
    a = alpha.copy()
    a[:40] += rng.normal(scale=spec.coef_sigma * difficulty, size=40)
    leak = {k: w * spec.expression_leak for k, w in expression.items()}
    v = sfm.shape(a, leak)
    if spec.smooth_iters:
        v = _laplacian_smooth(v, sfm.faces, spec.smooth_iters)
    c = v[sfm.now7].mean(axis=0)
    if spec.scale != 1.0 or spec.rot_deg:
        v = c + spec.scale * (v - c) @ _rotation_y(spec.rot_deg * rng.choice([-1.0, 1.0])).T
    faces = sfm.faces
    if spec.missing_mm:
        chin = v[sfm.ibug[9]]
        gone = (np.linalg.norm(v - chin, axis=1) < spec.missing_mm)[faces].any(axis=1)
        faces = faces[~gone]
    lm = v[sfm.now7] + rng.normal(scale=spec.lmk_sigma_mm, size=(7, 3))
    return v, faces, lm


def _load_james(folder: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The menpo ``james`` scan (mm): vertices, faces, its 68 landmarks (menpo LJSON grouping)."""
    from facenb.io import load_landmarks, load_mesh

    d = _folder("james_scan", folder)
    mesh = load_mesh(d / "james.obj")
    return mesh.vertices, mesh.faces, np.asarray(load_landmarks(d / "james.ljson", n=68), dtype=np.float64)


def _predict_real(v: np.ndarray, f: np.ndarray, lm7: np.ndarray, mouth: np.ndarray, chin: np.ndarray,
                  expression: dict, spec: MethodSpec, difficulty: float, rng: np.random.Generator):
    """A method's prediction of a real scan (no model coefficients): 30 smooth bumps (20 mm wide) along the normal
    with amplitude ``N(0, 6 coef_sigma difficulty)`` mm, an 8 mm x leak x weight downward mouth displacement
    (15 mm wide) for an expression, smoothing, vertex clustering at 3 mm (:func:`facenb.synthetic.degrade`, no
    noise, no move), scale / pose error, missing chin. Returns vertices, faces, 7 landmarks (ground-truth frame)."""
    from facenb.synthetic import degrade

    normals = _vertex_normals(v, f)
    centres = rng.choice(len(v), 30, replace=False)
    amp = rng.normal(scale=6.0 * spec.coef_sigma * difficulty, size=30)
    weight = float(sum(expression.values()))

    def field(p: np.ndarray) -> np.ndarray:
        out = np.zeros_like(p)
        for c, a in zip(centres, amp):
            out += a * np.exp(-np.sum((p - v[c]) ** 2, axis=1) / (2 * 20.0 ** 2))[:, None] * normals[c]
        if spec.expression_leak and weight:
            out[:, 1] -= 8.0 * spec.expression_leak * weight * np.exp(-np.sum((p - mouth) ** 2, axis=1)
                                                                       / (2 * 15.0 ** 2))
        return out

    pv, lm = v + field(v), lm7 + field(lm7)
    if spec.smooth_iters:
        pv = _laplacian_smooth(pv, f, spec.smooth_iters)
    coarse = degrade(pv, f, voxel_mm=3.0, noise_mm=0.0, rot_deg=0.0, trans=0.0, seed=int(rng.integers(2 ** 31)))
    pv, pf = coarse.vertices, coarse.faces
    if spec.scale != 1.0 or spec.rot_deg:
        c = lm[:4].mean(axis=0)
        R = spec.scale * _rotation_y(spec.rot_deg * rng.choice([-1.0, 1.0]))
        pv, lm = c + (pv - c) @ R.T, c + (lm - c) @ R.T
    if spec.missing_mm:
        pf = pf[~(np.linalg.norm(pv - chin, axis=1) < spec.missing_mm)[pf].any(axis=1)]
    return pv, pf, lm + rng.normal(scale=spec.lmk_sigma_mm, size=(7, 3))


def _rigid(rng: np.random.Generator, rot_deg: float = 30.0, trans: float = 40.0) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    T = np.eye(4)
    T[:3, :3] = rodrigues(axis * np.deg2rad(rng.uniform(-rot_deg, rot_deg)))[0]
    T[:3, 3] = rng.uniform(-trans, trans, size=3)
    return T


# ===================================================================================================== scans
def _subdivide(v: np.ndarray, f: np.ndarray, times: int) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint subdivision (the surface is unchanged; original vertices keep their indices)."""
    import trimesh

    for _ in range(times):
        v, f = trimesh.remesh.subdivide(v, f)
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.where(norm > 0, norm, 1.0)


def _scan(sfm: SurreyModel, shape: np.ndarray, rng: np.random.Generator, subdivisions: int, noise_mm: float):
    """A scanner-like scan of a neutral SFM shape: (noise-free kept vertices, noisy vertices, faces)."""
    v, f = _subdivide(shape, sfm.faces, subdivisions)
    eyes = [shape[[sfm.ibug[i] for i in ring]].mean(0) for ring in ((38, 39, 41, 42), (44, 45, 47, 48))]
    return _scanner(v, f, eyes, sfm.now7, rng, 0.05 * 2.0 ** subdivisions, noise_mm)


def _scanner(v: np.ndarray, f: np.ndarray, eyes: Sequence[np.ndarray], keep_ids: Sequence[int],
             rng: np.random.Generator, loss: float, noise_mm: float):
    """Scanner-like: smoothly varying density (keep probability ``1 - loss (1 + s)``, ``|s| <= 1``; a dropped vertex
    takes its triangles with it), holes at both ``eyes`` (7 mm) and one random spot, noise along the normal; the
    vertices ``keep_ids`` (where an annotator clicked) stay. Returns (noise-free kept vertices, noisy, faces)."""
    k = rng.normal(size=(3, 3)) / 40.0
    keep_p = 1.0 - loss * (1.0 + np.sin(v @ k).sum(axis=1) / 3.0)
    keep = rng.random(len(v)) < keep_p
    for centre, radius in ((eyes[0], 7.0), (eyes[1], 7.0), (v[rng.integers(len(v))], rng.uniform(4.0, 9.0))):
        keep &= np.linalg.norm(v - centre, axis=1) > radius
    keep[list(keep_ids)] = True
    idx = np.nonzero(keep)[0]
    remap = -np.ones(len(v), dtype=np.int64)
    remap[idx] = np.arange(len(idx))
    fk = remap[f]
    fk = fk[(fk >= 0).all(axis=1)]
    clean = v[idx]
    normals = _vertex_normals(v, f)[idx]
    noisy = clean + normals * rng.normal(scale=noise_mm, size=(len(idx), 1)) + rng.normal(scale=noise_mm / 4,
                                                                                          size=clean.shape)
    return clean, noisy, fk


def _save_obj(path: Path, v: np.ndarray, f: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "v %.4f %.4f %.4f\n" * len(v) % tuple(np.asarray(v, dtype=np.float64).ravel().tolist())
    if f is not None:
        text += "f %d %d %d\n" * len(f) % tuple((np.asarray(f, dtype=np.int64) + 1).ravel().tolist())
    path.write_text(text)


# ======================================================================================================= NoW
@dataclass(frozen=True)
class SynthResult:
    """What :func:`synth_now` / :func:`synth_realy` wrote.

    Attributes
    ----------
    out : Path
        The dataset folder (official layout).
    predictions : dict method -> Path
        One predictions folder per method.
    truth : Path
        ``truth.json``.
    n_images : int
    """

    out: Path
    predictions: dict
    truth: Path
    n_images: int
    realy_args: tuple = ()

    def summary(self) -> dict:
        return {"out": str(self.out), "predictions": {k: str(v) for k, v in self.predictions.items()},
                "truth": str(self.truth), "n_images": self.n_images}


def _methods(methods: Sequence[str] | None) -> dict[str, MethodSpec]:
    names = list(methods) if methods else list(METHODS)
    bad = [m for m in names if m not in METHODS]
    if bad:
        raise InputError(f"unknown synthetic method(s) {', '.join(bad)}", None, "use " + ", ".join(METHODS))
    return {m: METHODS[m] for m in names}


def _image_expression(sfm: SurreyModel, challenge: str, rng: np.random.Generator) -> dict:
    names = sorted(sfm.expressions)
    if challenge == "multiview_expressions":
        return {names[rng.integers(len(names))]: float(rng.uniform(0.5, 1.0))}
    if challenge == "selfie":
        return {"happiness": float(rng.uniform(0.1, 0.4))}
    return {}


def _stats(d: np.ndarray) -> dict:
    return {"mean_mm": float(np.mean(d)), "median_mm": float(np.median(d)), "std_mm": float(np.std(d)),
            "n_points": int(d.size)}


def synth_now(out: str | Path, *, subjects: int = 2, images_per_subject: int = 4,
              methods: Sequence[str] | None = None, seed: int = 0, scan_subdivisions: int = 0,
              scan_noise_mm: float = 0.2, annotator_sigma_mm: float = 0.5, sfm_dir: str | Path | None = None,
              per_vertex: bool = True, james: bool = False, james_dir: str | Path | None = None) -> SynthResult:
    """Write a synthetic NoW validation set in the official layout.

    Layout (``out``)::

        imagepathsvalidation.txt             <subject>/<challenge>/<image>.jpg, one per line
        scans/<subject>/<subject>.obj        noisy scan, mm (v + f)
        scans_lmks_onlypp/<subject>/<subject>_picked_points.pp   7 landmarks (MeshLab .pp)
        predictions/<method>/<subject>/<challenge>/<image>.obj + .txt   prediction (SFM topology) + 7 landmarks
        truth.json                           methods, images, true errors (see module docstring)

    Image ``j`` of a subject is in challenge ``CHALLENGE_CYCLE[j % 4]``. ``facenb now --dataset out
    --predictions out/predictions/<method> --out RESULT`` scores one method.

    Parameters
    ----------
    out : path
        Created if needed; existing files are overwritten.
    subjects, images_per_subject : int
    methods : sequence of str, optional
        Keys of :data:`METHODS` (default: all).
    seed : int
    scan_subdivisions : int
        Midpoint subdivisions of the SFM mesh for the scan (0: the SFM's 3448 vertices, ~2.5k in the NoW crop,
        fast to score; 1: ~13.7k; 2: ~54k, closer to a real scan's density).
    scan_noise_mm, annotator_sigma_mm : float
        Scanner noise along the normal; jitter of the scan landmarks.
    sfm_dir : path, optional
        Surrey Face Model folder (default: ``facenb.data``).
    per_vertex : bool
        Store the per-vertex true errors in ``truth.json`` (else only their statistics).
    james, james_dir :
        Add subject ``JAMES``: the real menpo ``james`` scan (dataset ``james_scan``; its 7 landmarks from
        ``james.ljson``) as ground truth, made scanner-like the same way, with predictions made from it
        (:func:`_predict_real`: smooth random bumps for the coefficient noise, a mouth displacement for the
        expression leak, then the methods' smoothing / scale / pose / missing parts, coarsened by
        :func:`facenb.synthetic.degrade`).
    """
    from facenb.benchmarks.now import crop_scan, load_now_landmarks
    from facenb.distance import SurfaceQuery
    from facenb.io import load_mesh, save_landmarks_txt, save_pp

    if subjects < 1 or images_per_subject < 1:
        raise InputError("--subjects and --images-per-subject must be at least 1", None, "pass positive counts")
    specs = _methods(methods)
    sfm = load_sfm(sfm_dir)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    ss = np.random.SeedSequence(seed)
    lines, images, truth = [], {}, {m: {} for m in specs}
    def write_images(si: int, subject: str, crop: np.ndarray, gt_points: np.ndarray, predict) -> None:
        for j in range(images_per_subject):
            challenge = CHALLENGE_CYCLE[j % len(CHALLENGE_CYCLE)]
            image = f"IMG_{j + 1:04d}"
            key = f"{subject}/{challenge}/{image}"
            lines.append(key + ".jpg")
            irng = np.random.default_rng([seed, si, j])
            expression = _image_expression(sfm, challenge, irng)
            images[key] = {"subject": subject, "challenge": challenge, "image": image, "expression": expression,
                           "n_crop": int(len(crop))}
            for name, spec in specs.items():
                mrng = np.random.default_rng([seed, si, j, list(METHODS).index(name)])
                pv, pf, plm = predict(expression, spec, CHALLENGE_DIFFICULTY[challenge], mrng)
                true = SurfaceQuery(pv, pf).query(gt_points).distances
                T = _rigid(mrng)
                d = root / "predictions" / name / subject / challenge
                _save_obj(d / f"{image}.obj", pv @ T[:3, :3].T + T[:3, 3], pf)
                save_landmarks_txt(d / f"{image}.txt", plm @ T[:3, :3].T + T[:3, 3])
                entry = {**_stats(true), "pose": T.tolist()}
                if per_vertex:
                    entry["per_vertex_mm"] = np.round(true, 5).tolist()
                truth[name][key] = entry

    def write_scan(subject: str, noisy: np.ndarray, faces: np.ndarray, lm: np.ndarray) -> np.ndarray:
        scan_path = root / "scans" / subject / f"{subject}.obj"
        _save_obj(scan_path, noisy, faces)
        pp = root / "scans_lmks_onlypp" / subject / f"{subject}_picked_points.pp"
        pp.parent.mkdir(parents=True, exist_ok=True)
        save_pp(pp, lm)
        # the crop exactly as the scorer sees it (values read back from the files)
        return crop_scan(load_mesh(scan_path, require_faces=False).vertices, load_now_landmarks(pp))[0]

    for si, sub_seq in enumerate(ss.spawn(subjects)):
        rng = np.random.default_rng(sub_seq)
        subject = f"SYNTH_{si:03d}"
        alpha = np.clip(rng.normal(size=len(sfm.eigenvalues)), -2.5, 2.5)
        shape = sfm.shape(alpha)
        clean, noisy, sf = _scan(sfm, shape, rng, scan_subdivisions, scan_noise_mm)
        lm = shape[sfm.now7] + rng.normal(scale=annotator_sigma_mm, size=(7, 3))
        crop = write_scan(subject, noisy, sf, lm)
        write_images(si, subject, crop, clean[crop],
                     lambda e, spec, diff, r, a=alpha: _predict(sfm, a, e, spec, diff, r))
    if james:
        jv, jf, j68 = _load_james(james_dir)
        rng = np.random.default_rng([seed, 3])
        jl7 = j68[list(NOW7_FROM_MENPO_JAMES)]
        near = [int(np.argmin(np.linalg.norm(jv - p, axis=1))) for p in jl7]
        clean, noisy, sf = _scanner(jv, jf, [j68[17:23].mean(0), j68[23:29].mean(0)], near, rng, 0.05,
                                    scan_noise_mm)
        crop = write_scan("JAMES", noisy, sf, jl7 + rng.normal(scale=annotator_sigma_mm, size=(7, 3)))
        write_images(subjects, "JAMES", crop, clean[crop],
                     lambda e, spec, diff, r: _predict_real(jv, jf, jl7, j68[48:68].mean(0), j68[8], e, spec, diff, r))
    (root / "imagepathsvalidation.txt").write_text("\n".join(lines) + "\n")
    doc = {
        "benchmark": "now",
        "synthetic": True,
        "generator": "facenb synth now",
        "seed": seed,
        "parameters": {"subjects": subjects, "images_per_subject": images_per_subject,
                       "scan_subdivisions": scan_subdivisions, "scan_noise_mm": scan_noise_mm,
                       "annotator_sigma_mm": annotator_sigma_mm, "james": james},
        "sources": ["surrey_face_model (sfm_shape_3448.bin, expression_blendshapes_3448.bin, ibug_to_sfm.txt)"]
        + (["james_scan (james.obj, james.ljson; menpo3d sample data)"] if james else []),
        "methods": {m: asdict(s) for m, s in specs.items()},
        "images": images,
        "per_vertex_order": "scan vertices inside the official NoW crop, ascending index (= facenb now distances)",
        "true_error": truth,
        "true_error_definition": "distance (mm) of each cropped scan vertex's noise-free position to the predicted "
                                 "surface in the ground-truth frame (before the arbitrary output pose 'pose'); "
                                 "no alignment, so the method's scale and pose errors count",
    }
    tp = root / "truth.json"
    tp.write_text(json.dumps(doc))
    return SynthResult(root, {m: root / "predictions" / m for m in specs}, tp, len(lines))


def load_truth(path: str | Path) -> dict:
    """Read a ``truth.json`` written by :func:`synth_now` / :func:`synth_realy` (a folder or the file)."""
    p = Path(path)
    p = p / "truth.json" if p.is_dir() else p
    if not p.is_file():
        raise InputError("truth.json not found", p, "point at a folder written by `facenb synth`")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        raise InputError("truth.json is not valid JSON", p, "write it again with `facenb synth`") from None


# ===================================================================================================== REALY
#: Keypoint groups (indices into REALY's 85) whose neighbourhoods form the synthetic scan regions.
_REALY_GROUPS = {"nose": tuple(range(27, 36)), "mouth": tuple(range(48, 68)),
                 "cheek": tuple(range(68, 85)) + (1, 2, 3, 4, 12, 13, 14, 15)}


class _Transfer(NamedTuple):
    """SFM -> template correspondence: template vertices (mm, SFM frame), SFM triangle + barycentric weights of
    each vertex's closest point on the SFM mean, and a fall-off weight (1 on the face, -> 0 away from it)."""

    template_mm: np.ndarray
    tri: np.ndarray
    weights: np.ndarray
    falloff: np.ndarray
    mean: np.ndarray


def _transfer(sfm: SurreyModel, template_vertices: np.ndarray, template_lm7: np.ndarray) -> _Transfer:
    from facenb.align import procrustes
    from facenb.distance import SurfaceQuery

    sim = procrustes(sfm.mean[sfm.now7], template_lm7)  # template frame -> SFM mm frame
    t_mm = sim.scale * (np.asarray(template_vertices, dtype=np.float64) @ sim.rotation.T) + sim.translation
    cp = SurfaceQuery(sfm.mean, sfm.faces).query(t_mm)
    tri = sfm.faces[cp.face_index]
    a, b, c = (sfm.mean[tri[:, k]] for k in range(3))
    # barycentric coordinates of the closest points
    v0, v1, v2 = b - a, c - a, cp.points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = np.where(np.abs(d00 * d11 - d01 ** 2) > 0, d00 * d11 - d01 ** 2, 1.0)
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    weights = np.column_stack([1.0 - w1 - w2, w1, w2])
    falloff = np.exp(-(cp.distances / 15.0) ** 2)
    return _Transfer(t_mm, tri, weights, falloff, sfm.mean)


def _on_template(tr: _Transfer, sfm_vertices: np.ndarray) -> np.ndarray:
    """The template (mm) deformed by the SFM displacement ``sfm_vertices - mean`` at the corresponding points."""
    disp = np.einsum("nk,nkj->nj", tr.weights, (sfm_vertices - tr.mean)[tr.tri])
    return tr.template_mm + tr.falloff[:, None] * disp


def _largest_component(mask: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``mask`` reduced to its largest connected piece (triangles with all corners in the mask)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = faces[mask[faces].all(axis=1)]
    if len(f) == 0:
        return mask & False
    n = len(mask)
    e = np.vstack([f[:, [0, 1]], f[:, [1, 2]]])
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    used = np.zeros(n, dtype=bool)
    used[f.ravel()] = True
    biggest = np.bincount(label[used]).argmax()
    return used & (label == biggest)


def _realy_regions(v_mm: np.ndarray, faces: np.ndarray, kp: np.ndarray) -> dict[str, np.ndarray]:
    """Vertex masks of the four synthetic scan regions on the template, from the 85 keypoints (mm, y up, face
    towards +z), each one connected piece: nose / mouth = within 12 / 10 mm of their keypoints (27-35 / 48-67);
    forehead = from below the eyes to 45 mm above the eyebrows, between the brows' ends (it holds REALY's forehead
    keypoints: eyes and brows); cheek = within 18 mm of the cheek keypoints and nearer to them than to the nose and
    mouth, outside the other regions."""
    def dist(group):
        return np.min(np.linalg.norm(v_mm[:, None, :] - kp[list(group)][None], axis=2), axis=1)

    front = v_mm[:, 2] > kp[[0, 16], 2].mean() - 5.0
    d = {r: dist(g) for r, g in _REALY_GROUPS.items()}
    masks = {"nose": front & (d["nose"] < 12.0) & (d["nose"] <= d["mouth"]),
             "mouth": front & (d["mouth"] < 10.0) & (d["mouth"] < d["nose"])}
    brows, eyes = kp[17:27], kp[36:48]
    masks["forehead"] = (front & (v_mm[:, 1] > eyes[:, 1].min() - 4.0) & (v_mm[:, 1] < brows[:, 1].max() + 45.0)
                         & (v_mm[:, 0] > brows[:, 0].min() - 3.0) & (v_mm[:, 0] < brows[:, 0].max() + 3.0))
    taken = masks["nose"] | masks["mouth"] | masks["forehead"]
    masks["cheek"] = (front & (d["cheek"] < 18.0) & (d["cheek"] < d["nose"]) & (d["cheek"] < d["mouth"])
                      & ~taken)
    # nose, mouth, forehead: one piece each (the official non-rigid keypoint stage needs a keypoint in every
    # piece); cheek (no keypoint stage): both cheeks
    out = {r: _largest_component(masks[r], faces) for r in ("nose", "mouth", "forehead")}
    out["cheek"] = masks["cheek"]
    return out


def synth_realy(out: str | Path, *, subjects: int = 2, methods: Sequence[str] | None = None, seed: int = 0,
                template: str = "HIFI3D", scan_noise_mm: float = 0.15, sfm_dir: str | Path | None = None
                ) -> SynthResult:
    """Write a synthetic REALY set in the official layout (``facenb realy`` reads it unchanged).

    Subjects are SFM identities carried onto the REALY template ``template`` (its vertices follow the SFM
    displacement at their closest point on the SFM mean, fading out 15 mm away from the SFM face), in REALY's
    normalised units (``metrical_scale.txt``: mm per unit, uniform 8.5-9.5 per subject).

    Layout (``out``)::

        REALY_HIFI3D_keypoints/<id>.obj      85 ground-truth keypoints (v lines; the template's barycentric points)
        REALY_scan_region/<id>/{nose,mouth,forehead,cheek}.obj   scan regions (v + f), normal noise
        metrical_scale.txt                   one line per subject
        predictions/<method>/<id>.obj        prediction in the template topology (mm, arbitrary rigid frame)
        truth.json                           per method, subject and region: the true error (mm) of the noise-free
                                             region vertices to the prediction in the ground-truth frame

    ``missing_parts`` does not apply (a REALY prediction has every template vertex).
    """
    from facenb.distance import SurfaceQuery
    from facenb.landmarks import TOPOLOGIES, _topology_template, from_topology

    if subjects < 1:
        raise InputError("--subjects must be at least 1", None, "pass a positive count")
    specs = _methods(methods or [m for m in METHODS if m != "missing_parts"])
    if any(s.missing_mm for s in specs.values()):
        raise InputError("method missing_parts does not apply to REALY (predictions keep every template vertex)",
                         None, "leave it out of --methods")
    names = {t.lower(): t for t in TOPOLOGIES}
    if template.lower() not in names:
        raise InputError(f"unknown REALY template {template!r}", None, "use one of " + ", ".join(TOPOLOGIES))
    template = names[template.lower()]
    sfm = load_sfm(sfm_dir)
    tmpl = _topology_template(template)[0]
    from facenb.benchmarks.realy import read_obj

    tv = read_obj(tmpl.obj_path).vertices.astype(np.float64)
    tf = np.asarray(tmpl.faces, dtype=np.int64)
    tr = _transfer(sfm, tv, from_topology(tv, template))
    root = Path(out)
    for sub in ("REALY_HIFI3D_keypoints", "REALY_scan_region"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    scales, truth = [], {m: {} for m in specs}
    ss = np.random.SeedSequence([seed, 1])
    for si, sub_seq in enumerate(ss.spawn(subjects)):
        rng = np.random.default_rng(sub_seq)
        sid = str(si + 1)
        alpha = np.clip(rng.normal(size=len(sfm.eigenvalues)), -2.5, 2.5)
        gt = _on_template(tr, sfm.shape(alpha))
        scale = float(rng.uniform(8.5, 9.5))
        scales.append(scale)
        kp = from_topology(gt, template, points="realy85")
        _save_obj(root / "REALY_HIFI3D_keypoints" / f"{sid}.obj", kp / scale)
        masks = _realy_regions(gt, tf, kp)
        normals = _vertex_normals(gt, tf)
        regions = {}
        for r in ("nose", "mouth", "forehead", "cheek"):
            idx = np.nonzero(masks[r])[0]
            remap = -np.ones(len(gt), dtype=np.int64)
            remap[idx] = np.arange(len(idx))
            rf = remap[tf]
            rf = rf[(rf >= 0).all(axis=1)]
            used = np.unique(rf)
            idx, rf = idx[used], np.searchsorted(used, rf)
            noisy = gt[idx] + normals[idx] * rng.normal(scale=scan_noise_mm, size=(len(idx), 1))
            _save_obj(root / "REALY_scan_region" / sid / f"{r}.obj", noisy / scale, rf)
            regions[r] = gt[idx]
        expression = _image_expression(sfm, "multiview_expressions", rng)
        for name, spec in specs.items():
            mrng = np.random.default_rng([seed, 1, si, list(METHODS).index(name)])
            a = alpha.copy()
            a[:40] += mrng.normal(scale=spec.coef_sigma, size=40)
            pv = _on_template(tr, sfm.shape(a, {k: w * spec.expression_leak for k, w in expression.items()}))
            if spec.smooth_iters:
                pv = _laplacian_smooth(pv, tf, spec.smooth_iters)
            if spec.scale != 1.0 or spec.rot_deg:
                c = from_topology(pv, template)[:4].mean(axis=0)
                pv = c + spec.scale * (pv - c) @ _rotation_y(spec.rot_deg * mrng.choice([-1.0, 1.0])).T
            q = SurfaceQuery(pv, tf)
            per = {r: q.query(regions[r]).distances for r in regions}
            T = _rigid(mrng)
            _save_obj(root / "predictions" / name / f"{sid}.obj", pv @ T[:3, :3].T + T[:3, 3], tf)
            truth[name][sid] = {r: {**_stats(d), "per_vertex_mm": np.round(d, 5).tolist()} for r, d in per.items()}
            truth[name][sid]["all_mean_mm"] = float(np.mean([per[r].mean() for r in per]))
    (root / "metrical_scale.txt").write_text("".join(f"{s:.6f}\n" for s in scales))
    doc = {
        "benchmark": "realy", "synthetic": True, "generator": "facenb synth realy", "seed": seed,
        "parameters": {"subjects": subjects, "template": template, "scan_noise_mm": scan_noise_mm},
        "sources": ["surrey_face_model", f"realy_templates ({template}.obj, {template}.txt)"],
        "methods": {m: asdict(s) for m, s in specs.items()},
        "realy_args": ["--keypoints", str(root / "REALY_HIFI3D_keypoints"), "--regions",
                       str(root / "REALY_scan_region"), "--scale", str(root / "metrical_scale.txt"),
                       "--template", template],
        "true_error": truth,
        "per_vertex_order": "vertices of REALY_scan_region/<id>/<region>.obj, in file order",
        "true_error_definition": "distance (mm) of each scan-region vertex's noise-free position to the predicted "
                                 "surface in the ground-truth frame (no alignment)",
    }
    tp = root / "truth.json"
    tp.write_text(json.dumps(doc))
    return SynthResult(root, {m: root / "predictions" / m for m in specs}, tp, subjects, tuple(doc["realy_args"]))


# ================================================================================================== Stirling
#: Coefficient-noise multiplier per Stirling subset (LQ images are harder).
SUBSET_DIFFICULTY = {"HQ": 1.0, "LQ": 1.4}


def _placeholder_jpg(path: Path) -> None:
    """A small grey JPEG standing for a test image (the synthetic methods do not read images)."""
    from PIL import Image as _Image

    path.parent.mkdir(parents=True, exist_ok=True)
    _Image.new("L", (16, 16), 128).save(path, format="JPEG")


def synth_stirling(out: str | Path, *, subjects: int = 2, images_per_subject: int = 2,
                   methods: Sequence[str] | None = None, seed: int = 0, scan_subdivisions: int = 0,
                   scan_noise_mm: float = 0.2, annotator_sigma_mm: float = 0.5,
                   sfm_dir: str | Path | None = None) -> SynthResult:
    """Write a synthetic Stirling/ESRC FG2018 set in the release layout ``facenb stirling --dataset`` reads
    (:mod:`facenb.benchmarks.stirling`, "Release layout").

    Layout (``out``)::

        Real_images__Subset_2D_FG2018/{HQ,LQ}/<subject>_<nn>.jpg   placeholder images (16 x 16 grey)
        F_3D_N/<subject>_N.obj, M_3D_N/<subject>_N.obj             scans, mm (as synth_now's NoW scans)
        annotations/{F,M}_3D_N/<subject>_N.lnd                     7 landmarks, ``id x y z`` lines
        predictions/<method>/<HQ|LQ>/<image>.obj + .txt            prediction + 7 landmarks (arbitrary rigid frame)
        truth.json                                                 true per-vertex error on the FG2018 face mask

    Subjects alternate female / male names (``F1001``, ``M1002``, ...); image ``j`` of a subject is in HQ when
    ``j`` is even, else LQ (coefficient noise x1.4).
    """
    from facenb.benchmarks import stirling as St
    from facenb.distance import SurfaceQuery
    from facenb.io import load_mesh, save_landmarks_txt

    if subjects < 1 or images_per_subject < 1:
        raise InputError("--subjects and --images-per-subject must be at least 1", None, "pass positive counts")
    specs = _methods(methods)
    sfm = load_sfm(sfm_dir)
    root = Path(out)
    images, truth = {}, {m: {} for m in specs}
    for si, sub_seq in enumerate(np.random.SeedSequence([seed, 2]).spawn(subjects)):
        rng = np.random.default_rng(sub_seq)
        sex = "F" if si % 2 == 0 else "M"
        subject = f"{sex}{1001 + si}"
        alpha = np.clip(rng.normal(size=len(sfm.eigenvalues)), -2.5, 2.5)
        shape = sfm.shape(alpha)
        clean, noisy, sf = _scan(sfm, shape, rng, scan_subdivisions, scan_noise_mm)
        scan_path = root / f"{sex}_3D_N" / f"{subject}_N.obj"
        _save_obj(scan_path, noisy, sf)
        lm = shape[sfm.now7] + rng.normal(scale=annotator_sigma_mm, size=(7, 3))
        lnd = root / "annotations" / f"{sex}_3D_N" / f"{subject}_N.lnd"
        lnd.parent.mkdir(parents=True, exist_ok=True)
        lnd.write_text("".join(f"{i + 1} {x:.6f} {y:.6f} {z:.6f}\n" for i, (x, y, z) in enumerate(lm)))
        mask, _, _ = St.face_mask(load_mesh(scan_path, require_faces=False).vertices, St.read_lnd(lnd))
        gt_points = clean[mask]
        for j in range(images_per_subject):
            subset = "HQ" if j % 2 == 0 else "LQ"
            image = f"{subject}_{j + 1:02d}"
            key = f"{subset}/{image}"
            _placeholder_jpg(root / "Real_images__Subset_2D_FG2018" / subset / f"{image}.jpg")
            irng = np.random.default_rng([seed, 2, si, j])
            expression = _image_expression(sfm, "selfie" if subset == "LQ" else "multiview_neutral", irng)
            images[key] = {"subject": subject, "subset": subset, "image": image, "expression": expression,
                           "n_mask": int(len(gt_points))}
            for name, spec in specs.items():
                mrng = np.random.default_rng([seed, 2, si, j, list(METHODS).index(name)])
                pv, pf, plm = _predict(sfm, alpha, expression, spec, SUBSET_DIFFICULTY[subset], mrng)
                true = SurfaceQuery(pv, pf).query(gt_points).distances
                T = _rigid(mrng)
                d = root / "predictions" / name / subset
                _save_obj(d / f"{image}.obj", pv @ T[:3, :3].T + T[:3, 3], pf)
                save_landmarks_txt(d / f"{image}.txt", plm @ T[:3, :3].T + T[:3, 3])
                truth[name][key] = {**_stats(true), "per_vertex_mm": np.round(true, 5).tolist()}
    doc = {
        "benchmark": "stirling", "synthetic": True, "generator": "facenb synth stirling", "seed": seed,
        "parameters": {"subjects": subjects, "images_per_subject": images_per_subject,
                       "scan_subdivisions": scan_subdivisions, "scan_noise_mm": scan_noise_mm,
                       "annotator_sigma_mm": annotator_sigma_mm},
        "sources": ["surrey_face_model (sfm_shape_3448.bin, expression_blendshapes_3448.bin, ibug_to_sfm.txt)"],
        "methods": {m: asdict(s) for m, s in specs.items()},
        "images": images,
        "true_error": truth,
        "per_vertex_order": "scan vertices inside the FG2018 face mask, ascending index (= facenb stirling distances)",
        "true_error_definition": "distance (mm) of each masked scan vertex's noise-free position to the predicted "
                                 "surface in the ground-truth frame (no alignment)",
    }
    tp = root / "truth.json"
    tp.write_text(json.dumps(doc))
    return SynthResult(root, {m: root / "predictions" / m for m in specs}, tp, len(images))
