"""REALY folders in the official layout, on :mod:`facenb.runner`: pre-flight checks, items, outputs
(``REALY_error.txt``, summaries, error maps).

Part of :mod:`facenb.benchmarks.realy`.
"""
from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from facenb.errors import InputError
from facenb.io import file_identity
from facenb.io import read_error_map_ply, write_error_map_ply  # noqa: F401 (re-exported)
from facenb.benchmarks.realy.template import (
    N_KEYPOINTS,
    REGIONS,
    RealyTemplate,
    load_template,
    read_obj,
)
from facenb.benchmarks.realy.protocol import (
    RegionStatistics,
    _check_prediction,
    _read_mask,
    _read_scale,
    error_line,
    evaluate_subject,
    format_statistics,
    load_subject,
    official_statistics,
    official_truncate,
)


# =============================================================================================================
# folders: the official layout, outputs; cache, lock and parallel subjects through facenb.runner
# =============================================================================================================
#: bump when a change alters numbers, so stale per-subject cache entries are recomputed
_CACHE_VERSION = "realy-2"


def _subject_sort_key(path: Path):
    try:
        return (0, int(path.stem.replace("_", "")), path.stem)
    except ValueError:
        return (1, 0, path.stem)


def list_predictions(predictions_dir: str | Path) -> list[Path]:
    """``<PRED_DIR>/*.obj`` in the official order (``int(name.replace('_', ''))``)."""
    d = Path(predictions_dir)
    if not d.is_dir():
        raise InputError("predictions folder not found", d, "give the folder holding <id>.obj predictions")
    files = sorted(d.glob("*.obj"), key=_subject_sort_key)
    if not files:
        raise InputError("no .obj predictions in the folder", d, "save one <id>.obj per REALY subject")
    return files


@dataclass(frozen=True)
class SubjectOutcome:
    """One subject of a folder run: ``status`` is ``ok``, ``cached`` or ``failed`` (with ``error``)."""

    subject: str
    subject_id: int
    status: str
    errors_mm: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class FolderResult:
    """Result of :func:`evaluate_folder`.

    Attributes
    ----------
    outcomes : list of SubjectOutcome
        In the official (sorted) order.
    statistics : dict
        :func:`official_statistics` of the written values of the scored subjects.
    out_dir : Path
    error_file : Path
        ``REALY_error.txt``.
    warnings : tuple of str
        The runner's one-line warnings (e.g. a damaged cache entry recomputed).
    """

    outcomes: list
    statistics: Mapping[str, RegionStatistics]
    out_dir: Path
    error_file: Path
    warnings: tuple = ()

    @property
    def n_failed(self) -> int:
        return sum(o.status == "failed" for o in self.outcomes)

    def summary(self) -> dict:
        """Flat summary: ``<region>.<statistic>`` of the official statistics (NaN -> None) and counts."""
        import math

        out = {}
        for region, st in self.statistics.items():
            for k, v in st._asdict().items():
                v = float(v)
                out[f"{region}.{k}"] = None if math.isnan(v) else v
        out.update({"n_scored": sum(o.status in ("ok", "cached") for o in self.outcomes),
                    "n_failed": self.n_failed})
        return out

    def printed(self) -> list[str]:
        """The statistics lines the official ``main.py`` prints (:func:`format_statistics`)."""
        return list(format_statistics(self.statistics)) if self.statistics else []

    def to_frame(self):
        """One row per subject and region: ``subject``, ``status``, ``region``, ``error_mm``, ``error``."""
        import pandas as pd

        rows = []
        for o in self.outcomes:
            if o.errors_mm:
                rows += [{"subject": o.subject, "status": o.status, "region": r, "error_mm": e, "error": o.error}
                         for r, e in o.errors_mm.items()]
            else:
                rows.append({"subject": o.subject, "status": o.status, "region": None, "error_mm": float("nan"),
                             "error": o.error})
        return pd.DataFrame(rows)

    @property
    def exit_code(self) -> int:
        """:func:`facenb.runner.exit_code`: 0 all scored, 1 some failed, 2 none scored."""
        from facenb import runner

        return runner.exit_code([runner.Outcome(o.subject, o.status) for o in self.outcomes])


def _subject_id(p: Path) -> int:
    try:
        return int(p.stem.split("_")[0])
    except ValueError:
        raise InputError("prediction file name does not start with a REALY subject id", p,
                         "name predictions <id>.obj or <id>_<anything>.obj as the official scorer expects") from None


def _mask_check(mask: np.ndarray | None, template: RealyTemplate, where: Path | None) -> None:
    if mask is None:
        return
    if not (np.asarray(mask)[template.faces] != 0).all(axis=1).any():
        raise InputError("the template mask removes every triangle (no triangle has its 3 vertices set to 1)",
                         where, "give one 0/1 per template vertex with 1 on the face region")


#: meshes read by :func:`validate_folder` for the subjects about to be scored in this process, reused once by
#: :func:`score_subject` (``str(path) -> (file identity, need_faces, mesh, bytes)``; a file changed since is read
#: again); cleared by :func:`evaluate_folder` when it returns
_VALIDATED: dict = {}
#: bytes of mesh arrays :data:`_VALIDATED` may hold (the rest is read twice, as before)
_VALIDATED_BUDGET = 256 * 2 ** 20


def _read_kept(path: Path, need_faces: bool = True, keep: bool = False):
    """:func:`read_obj`; with ``keep``, the mesh is also kept for :func:`_reuse_or_read` (within the budget)."""
    key = file_identity(path) if keep else None
    mesh = read_obj(path, need_faces=need_faces)
    if keep:
        size = sum(np.asarray(a).nbytes for a in (mesh.vertices, mesh.faces) if a is not None)
        used = sum(e[3] for e in _VALIDATED.values())
        if used + size <= _VALIDATED_BUDGET:
            _VALIDATED[str(path)] = (key, need_faces, mesh, size)
    return mesh


def _reuse_or_read(path, need_faces: bool = True):
    """The mesh :func:`validate_folder` read (once, if the file is unchanged), else :func:`read_obj`."""
    path = Path(path)
    entry = _VALIDATED.pop(str(path), None)
    if entry is not None and entry[1] == need_faces and entry[0] == file_identity(path):
        return entry[2]
    return read_obj(path, need_faces=need_faces)


def validate_folder(predictions: Sequence[Path], keypoints_dir: Path, regions_dir: Path, scales: np.ndarray,
                    template: RealyTemplate, keep: bool = False) -> list[tuple[Path, InputError]]:
    """Pre-flight checks of every subject, before anything is scored: the problems found, as
    ``(prediction path, error)``.

    Checked: the file name gives a subject id with a line in the scale file; the keypoint file exists and holds
    the 85 keypoints; the 4 region files exist and are readable meshes (vertices, faces, finite values); the
    prediction has the template's vertex count and finite values. With ``keep``, the meshes read are kept (within
    a memory budget) for :func:`score_subject` in this process, which then does not read them again.
    """
    problems = []
    for p in predictions:
        try:
            sid = _subject_id(p)
            if not 1 <= sid <= len(scales):
                raise InputError(f"subject id {sid} has no line in the metrical scale file", p,
                                 "use REALY's metrical_scale.txt (100 lines)")
            kp = keypoints_dir / f"{sid}.obj"
            if not kp.is_file():
                raise InputError(f"no ground-truth keypoints for subject {sid} (missing subject)", kp,
                                 "check --keypoints and the prediction's file name")
            for r in REGIONS:
                f = regions_dir / str(sid) / f"{r}.obj"
                if not f.is_file():
                    raise InputError(f"no {r} scan region for subject {sid} (missing subject)", f,
                                     "check --regions (REALY_scan_region/<id>/{nose,mouth,forehead,cheek}.obj)")
            n_kp = len(_read_kept(kp, False, keep).vertices)
            if n_kp != N_KEYPOINTS:
                raise InputError(f"expected {N_KEYPOINTS} keypoints, found {n_kp}", kp,
                                 "use REALY_HIFI3D_keypoints/<id>.obj from the REALY release")
            for r in REGIONS:
                _read_kept(regions_dir / str(sid) / f"{r}.obj", True, keep)
            _check_prediction(_read_kept(p, True, keep), template, p)
        except InputError as exc:
            problems.append((p, exc))
    return problems


def folder_items(predictions: Sequence[Path], keypoints_dir: Path, regions_dir: Path, scales: np.ndarray) -> list:
    """One :class:`facenb.runner.Item` per prediction: key = file stem; inputs = the prediction, its keypoint
    file and its 4 region files (contents hashed into the cache key); params = subject id and metrical scale."""
    from facenb.runner import Item

    items = []
    for p in predictions:
        sid = _subject_id(p)
        files = (p, keypoints_dir / f"{sid}.obj") + tuple(regions_dir / str(sid) / f"{r}.obj" for r in REGIONS)
        items.append(Item(p.stem, files, {"subject_id": sid, "scale": float(scales[sid - 1])}))
    return items


def score_subject(item, settings: dict) -> dict:
    """``score_one`` of the REALY folder runner: :func:`load_subject` + :func:`evaluate_subject` on the item's
    files.

    ``settings``: ``_template`` (:class:`RealyTemplate`), ``_mask`` (array or None), ``_region_jobs`` (int),
    ``_meshes_dir`` (str or None: also save the aligned / deformed meshes there, by the worker). Returns the
    region errors (``<region>_mm``), ``seconds``, iteration counts and the error-map arrays
    (``map_<region>_v`` (n, 3) float32 mm, ``map_<region>_f`` (m, 3) int32, ``map_<region>_e`` (n,) float32 mm).
    """
    t0 = time.perf_counter()
    pred, kp = Path(item.inputs[0]), Path(item.inputs[1])
    regions_dir = Path(item.inputs[2]).parent.parent
    tmpl = settings["_template"]
    inputs = load_subject(kp.parent, regions_dir, float(item.params["scale"]), pred, tmpl, settings.get("_mask"),
                          reader=_reuse_or_read)
    res = evaluate_subject(inputs, tmpl, jobs=int(settings.get("_region_jobs", 1)))
    payload = {"subject_id": inputs.subject_id, "scale": inputs.scale}
    for r, rr in res.regions.items():
        payload[f"{r}_mm"] = float(rr.error_mm)
        payload[f"map_{r}_v"] = (rr.scan_vertices * inputs.scale).astype(np.float32)
        payload[f"map_{r}_f"] = np.asarray(rr.scan_faces, dtype=np.int32)
        payload[f"map_{r}_e"] = np.asarray(rr.distances_mm, dtype=np.float32)
    payload["rigid_iterations"] = {r: int(rr.rigid_iterations) for r, rr in res.regions.items()}
    payload["nonrigid_steps"] = {r: [int(x) for x in rr.nonrigid_steps] for r, rr in res.regions.items()}
    if settings.get("_meshes_dir"):
        from facenb.io import save_obj

        mdir = Path(settings["_meshes_dir"]) / item.key
        mdir.mkdir(parents=True, exist_ok=True)
        for r, rr in res.regions.items():
            save_obj(mdir / f"aligned_{r}.obj", rr.aligned_vertices, res.masked_faces)
            save_obj(mdir / f"deformed_{r}.obj", rr.deformed_vertices, rr.scan_faces)
        save_obj(mdir / "aligned_global.obj", res.alignment.vertices, res.masked_faces)
    payload["seconds"] = time.perf_counter() - t0
    return payload


def evaluate_folder(keypoints_dir: str | Path, regions_dir: str | Path, scale_file: str | Path,
                    predictions_dir: str | Path, template: RealyTemplate | str | Path, out_dir: str | Path, *,
                    template_keypoints: str | Path | None = None, template_mask: str | Path | None = None,
                    view: str = "frontal", jobs: int = 1, progress: bool = True, save_meshes: bool = False,
                    skip_invalid: bool = False, log=None, executor=None, warn=None) -> FolderResult:
    """Score a folder of predictions in the official REALY layout, with :func:`facenb.runner.run`.

    Writes to ``out_dir``: ``REALY_error.txt`` (official format, subjects in official order, failed subjects left
    out), ``summary.json`` (strict JSON) and ``summary.csv`` (per region mean / median / std (ddof = 1) and
    ``all``, from the written values, as officially), ``subjects.csv`` (untruncated errors),
    ``error_maps/<subject>/<region>.ply`` (processed scan region in mm with per-vertex ``error_mm``), and the
    runner's ``cache/`` (content-hashed, checksummed entries: an interrupted run resumes; a subject whose input
    files and settings are unchanged is not recomputed; a damaged entry is recomputed with one warning).
    ``.facenb.lock`` guards the folder during the run.

    Parameters
    ----------
    jobs : int
        Worker processes: subjects in parallel (``executor="processes"``), or the regions of a single subject.
    executor : optional
        A :func:`facenb.runner.run` executor; default from ``jobs``.
    log : callable, optional
        Receives one line per failed subject.
    warn : callable, optional
        Receives the runner's one-line warnings (default: stderr).

    Raises
    ------
    InputError
        Bad folders or files (scale file, template, template mask removing every triangle); with
        ``skip_invalid=False``, any subject failing the pre-flight checks (:func:`validate_folder`: missing
        keypoints/regions, not 85 keypoints, unreadable region, vertex count, NaN) -- nothing is computed then;
        the output folder in use by another run.
    """
    from facenb import runner

    kdir, rdir, out = Path(keypoints_dir), Path(regions_dir), Path(out_dir)
    for d, what, fix in ((kdir, "keypoints folder", "--keypoints REALY_HIFI3D_keypoints/"),
                         (rdir, "scan region folder", "--regions REALY_scan_region/")):
        if not d.is_dir():
            raise InputError(f"{what} not found", d, f"pass {fix}")
    if view not in ("frontal", "side"):
        raise InputError(f"unknown view {view!r}", None, "use --view frontal or --view side")
    tmpl = template if isinstance(template, RealyTemplate) else load_template(template, template_keypoints)
    mask = None if template_mask is None else _read_mask(template_mask, tmpl.n_vertices)
    _mask_check(mask, tmpl, None if template_mask is None else Path(template_mask))
    scales = _read_scale(scale_file)
    preds = list_predictions(predictions_dir)
    _VALIDATED.clear()
    try:
        return _evaluate_folder(kdir, rdir, scales, preds, tmpl, mask, out, view, jobs, progress, save_meshes,
                                skip_invalid, log, executor, warn)
    finally:
        _VALIDATED.clear()


def _evaluate_folder(kdir, rdir, scales, preds, tmpl, mask, out, view, jobs, progress, save_meshes, skip_invalid,
                     log, executor, warn) -> FolderResult:
    from facenb import runner

    # in one process the meshes read by the pre-flight check are scored without being read again
    problems = validate_folder(preds, kdir, rdir, scales, tmpl, keep=(executor in (None, "serial") and jobs == 1))
    if problems and not skip_invalid:
        more = f" (and {len(problems) - 1} more subject(s) with problems; --skip-invalid scores the others)" \
            if len(problems) > 1 else ""
        raise InputError(str(problems[0][1]) + more)
    bad = {p.stem for p, _ in problems}
    todo = [p for p in preds if p.stem not in bad]
    settings = {"version": _CACHE_VERSION, "template": tmpl.fingerprint(),
                "mask": None if mask is None else hashlib.sha256(np.ascontiguousarray(mask).tobytes()).hexdigest(),
                "_template": tmpl, "_mask": mask, "_region_jobs": jobs if len(todo) == 1 else 1,
                "_meshes_dir": str(out / "error_maps") if save_meshes else None}
    if executor is None:
        executor = "processes" if jobs > 1 and len(todo) > 1 else "serial"
    outcomes: dict[str, SubjectOutcome] = {}
    for p, e in problems:
        outcomes[p.stem] = SubjectOutcome(p.stem, -1, "failed", {}, 0.0, str(e))
        if log:
            log(str(e))
    res = runner.run(folder_items(todo, kdir, rdir, scales), score_subject, settings, out, executor=executor,
                     jobs=jobs, progress=progress, desc="REALY", warn=warn)
    maps = out / "error_maps"
    for p, o in zip(todo, res.outcomes):
        if o.status in ("ok", "cached"):
            v = o.value
            mdir = maps / o.key
            mdir.mkdir(parents=True, exist_ok=True)
            for r in REGIONS:
                write_error_map_ply(mdir / f"{r}.ply", v[f"map_{r}_v"], v[f"map_{r}_f"], v[f"map_{r}_e"])
            outcomes[o.key] = SubjectOutcome(o.key, int(v["subject_id"]), o.status,
                                             {r: float(v[f"{r}_mm"]) for r in REGIONS}, float(v["seconds"]))
        else:
            reason = o.reason if o.reason and str(p) in o.reason else f"{p}: {o.reason}"
            outcomes[o.key] = SubjectOutcome(o.key, _subject_id(p), "failed", {}, o.seconds, reason)
            if log:
                log(reason)
    ordered = [outcomes[p.stem] for p in preds if p.stem in outcomes]
    return _write_outputs(ordered, out, view, tmpl, tuple(res.warnings))


def _write_outputs(outcomes: Sequence[SubjectOutcome], out: Path, view: str, template: RealyTemplate,
                   warnings: tuple = ()) -> FolderResult:
    from facenb.runner import atomic_write, write_summary

    scored = [o for o in outcomes if o.status in ("ok", "cached")]
    err_file = out / "REALY_error.txt"
    atomic_write(err_file, lambda tmp: tmp.write_text("".join(error_line(o.subject, o.errors_mm) for o in scored)))
    written = {r: [float(official_truncate(o.errors_mm[r])) for o in scored] for r in REGIONS}
    stats = official_statistics(written) if scored else {}
    summary = {
        "protocol": "REALY (czh-98/REALY main.py, reproduced by facenb.benchmarks.realy)",
        "view": view, "template": template.name, "template_obj": str(template.obj_path),
        "n_subjects": len(scored), "n_failed": sum(o.status == "failed" for o in outcomes),
        "statistics_from": "values as written to REALY_error.txt (truncated to 9 characters), as officially",
        "regions": {k: {"mean": s.mean, "median": s.median, "std_ddof1": s.std, "n": s.n} for k, s in stats.items()},
        "printed": format_statistics(stats) if stats else [],
        "failed": [{"subject": o.subject, "error": o.error} for o in outcomes if o.status == "failed"],
    }
    fmt = lambda x: "" if x is None or not np.isfinite(x) else f"{x:.9g}"  # noqa: E731
    rows = [{"region": k, "mean_mm": fmt(s.mean), "median_mm": fmt(s.median), "std_mm_ddof1": fmt(s.std),
             "n_subjects": s.n} for k, s in stats.items()]
    write_summary(out, "summary", summary, rows,
                  columns=["region", "mean_mm", "median_mm", "std_mm_ddof1", "n_subjects"])
    def subjects(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["subject", "subject_id", "status"] + [f"{r}_mm" for r in REGIONS] + ["seconds", "error"])
            for o in outcomes:
                status = "ok" if o.status == "cached" else o.status  # the file does not depend on the cache
                w.writerow([o.subject, o.subject_id, status] + [repr(float(o.errors_mm[r])) if o.errors_mm else ""
                                                                for r in REGIONS] + [f"{o.seconds:.2f}", o.error])

    atomic_write(out / "subjects.csv", subjects)
    return FolderResult(list(outcomes), stats, out, err_file, warnings)
