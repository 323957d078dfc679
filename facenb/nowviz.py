"""The NoW benchmark, looked at closely (``notebooks/10_now.ipynb``): the protocol step by step on one image,
several methods side by side (per-challenge tables, cumulative error curves, worst images), and -- on a
``facenb synth now`` dataset -- the true error next to the protocol's.

The cumulative error curve is the official one (``soubhiksanyal/now_evaluation@7bd1498``, ``cumulative_errors.py``,
``cumulative_error``): all per-vertex distances of a method concatenated, a 100000-bin histogram from their minimum
to their maximum, ``x`` = left bin edges, ``y = 100 cumsum(counts) / N`` (percent; the official plot shows
``x`` in [0, 8] mm).
"""
from __future__ import annotations

import json

from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from facenb.align import Similarity, procrustes, refine_scan_to_mesh
from facenb.benchmarks import now as N
from facenb.errors import InputError

__all__ = ["cumulative_error", "curve_on_grid", "Walkthrough", "walkthrough", "crop_faces", "score_methods",
           "challenge_table", "worst_images", "image_heatmap", "truth_vs_protocol", "published_now",
           "synthetic_default", "NowData", "resolve_data"]


def cumulative_error(errors: np.ndarray, nbins: int = 100000) -> tuple[np.ndarray, np.ndarray]:
    """Official NoW cumulative error (``cumulative_errors.py``): ``(left bin edges, percent <= edge + bin)``.

    Parameters
    ----------
    errors : (n,) float, mm
        All per-vertex distances of a method (images concatenated).
    nbins : int
        Histogram bins between ``min`` and ``max`` (official: 100000).
    """
    e = np.asarray(errors, dtype=np.float64).ravel()
    if e.size == 0:
        return np.zeros(0), np.zeros(0)
    values, base = np.histogram(e, bins=nbins)
    return base[:-1], 100.0 * np.cumsum(values).astype(float) / float(e.size)


def curve_on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The official step curve read at ``grid`` (default 0..8 mm, 0.01 mm): the value of the last bin whose left
    edge is ``<= g`` (0 before the first) -- a light copy for interactive charts, equal to the curve at those x."""
    g = np.linspace(0.0, 8.0, 801) if grid is None else np.asarray(grid, dtype=np.float64)
    i = np.searchsorted(x, g, side="right") - 1
    return g, np.where(i >= 0, y[np.clip(i, 0, max(len(y) - 1, 0))] if len(y) else 0.0, 0.0)


class Walkthrough(NamedTuple):
    """The NoW protocol on one image, step by step (all in mm, scan frame unless stated).

    Attributes
    ----------
    scan_vertices : (n, 3) ; scan_faces : (k, 3)
    scan_landmarks : (7, 3)
    crop_indices : (p,) int ; crop_centre : (3,) ; crop_radius : float
    pred_vertices, pred_faces : the prediction as given (its own frame)
    pred_landmarks : (7, 3), prediction frame
    procrustes : Similarity
        Landmark similarity (scale = the unit factor in metric mode).
    landmarks_after_procrustes : (7, 3)
    landmark_residuals_mm : (7,)
        ``|s R l_pred + t - l_scan|`` per landmark after the Procrustes step.
    trace : (q, 2) float
        ``(iteration, E)`` of the dogleg refinement (start and every accepted step), ``E`` in mm².
    result : NowResult
        :func:`facenb.benchmarks.now.evaluate` on the same inputs (the official numbers).
    """

    scan_vertices: np.ndarray
    scan_faces: np.ndarray
    scan_landmarks: np.ndarray
    crop_indices: np.ndarray
    crop_centre: np.ndarray
    crop_radius: float
    pred_vertices: np.ndarray
    pred_faces: np.ndarray
    pred_landmarks: np.ndarray
    procrustes: Similarity
    landmarks_after_procrustes: np.ndarray
    landmark_residuals_mm: np.ndarray
    trace: np.ndarray
    result: N.NowResult


def walkthrough(image: N.NowImage, *, metric: bool = False, pred_unit: str | None = None,
                solver: str = "cg-legacy") -> Walkthrough:
    """Run the NoW protocol on one image of a dataset (:func:`facenb.benchmarks.now.list_images`), keeping every
    intermediate: the crop, the landmark Procrustes, the refinement's objective per iteration, the final result.

    The steps repeat :func:`facenb.benchmarks.now.evaluate` (module docstring, steps 1-4) with the same inputs
    and options; ``result`` is ``evaluate``'s own output, so the numbers shown are the official ones.
    """
    from facenb.distance import degenerate_faces
    from facenb.io import load_mesh

    if image.pred_mesh is None or image.pred_landmarks is None:
        raise InputError(f"image {image.key} has no prediction mesh or landmarks", None, "pick another image")
    scan = load_mesh(image.scan, require_faces=False)
    slm = N.load_now_landmarks(image.scan_landmarks)
    pred = load_mesh(image.pred_mesh)
    plm = N.load_now_landmarks(image.pred_landmarks)
    result = N.evaluate(scan.vertices, slm, pred.vertices, pred.faces, plm, metric=metric, pred_unit=pred_unit,
                        solver=solver, where=str(image.pred_mesh))
    idx, centre, radius = N.crop_scan(scan.vertices, slm)
    sim = procrustes(slm.astype(np.float32), plm)
    first = Similarity(N.UNIT_FACTORS[result.pred_unit], sim.rotation, sim.translation) if metric else sim
    lm1 = first.scale * (np.asarray(plm, dtype=np.float64) @ first.rotation.T) + first.translation
    v1 = first.scale * (pred.vertices @ first.rotation.T) + first.translation
    faces = pred.faces[~degenerate_faces(pred.vertices, pred.faces)]
    trace: list[tuple[int, float]] = []
    refine_scan_to_mesh(scan.vertices[idx], v1, faces, scale=not metric, solver=solver,
                        callback=lambda i, e: trace.append((i, e)))
    return Walkthrough(scan.vertices, scan.faces, np.asarray(slm, dtype=np.float64), idx, np.asarray(centre),
                       float(radius), pred.vertices, pred.faces, np.asarray(plm, dtype=np.float64), first, lm1,
                       np.linalg.norm(lm1 - slm, axis=1), np.array(trace, dtype=np.float64).reshape(-1, 2), result)


def crop_faces(scan_faces: np.ndarray, crop_indices: np.ndarray, n_vertices: int) -> np.ndarray:
    """The scan triangles whose 3 corners are all in the crop, re-indexed into the cropped vertices."""
    remap = -np.ones(n_vertices, dtype=np.int64)
    remap[crop_indices] = np.arange(len(crop_indices))
    f = remap[np.asarray(scan_faces, dtype=np.int64).reshape(-1, 3)]
    return f[(f >= 0).all(axis=1)]


def score_methods(dataset_dir: str | Path, methods: Mapping[str, str | Path], out_dir: str | Path, *,
                  split: str = "val", challenge: str | None = None, metric: bool = False,
                  pred_unit: str | None = None, jobs: int = 1) -> dict[str, N.DatasetResult]:
    """:func:`facenb.benchmarks.now.evaluate_dataset` for every method (``name -> predictions folder``); outputs
    in ``out_dir/<name>[_metrical]`` (resumable: unchanged images come from the cache)."""
    if not methods:
        raise InputError("no methods given", None, "pass methods = {name: predictions folder}")
    out = {}
    for name, folder in methods.items():
        sub = Path(out_dir) / (name + ("_metrical" if metric else ""))
        out[name] = N.evaluate_dataset(dataset_dir, folder, sub, split=split, challenge=challenge, metric=metric,
                                       pred_unit=pred_unit, jobs=jobs, method=name, progress=False)
    return out


def challenge_table(results: Mapping[str, N.DatasetResult]) -> pd.DataFrame:
    """Per method and challenge (and ``all``): mean, median, std (mm, official aggregation), images, points."""
    rows = []
    for m, r in results.items():
        groups = [("all", r.overall)] + list(r.per_challenge.items())
        for ch, s in groups:
            n_img = sum(o.status in ("ok", "cached") and (ch == "all" or o.image.challenge == ch)
                        for o in r.outcomes)
            rows.append({"method": m, "challenge": ch, "mean_mm": s.mean_mm, "median_mm": s.median_mm,
                         "std_mm": s.std_mm, "images": n_img, "points": s.n_points})
    return pd.DataFrame(rows)


def score_lines(results: Mapping[str, N.DatasetResult]) -> list[str]:
    """One line per method: median, mean, std of all its scored points (mm, official aggregation) and its image
    counts (scored, missing, failed)."""
    lines = []
    for m, r in results.items():
        o = r.overall
        lines.append(f"{m}: median {o.median_mm:.4f} mm, mean {o.mean_mm:.4f} mm, std {o.std_mm:.4f} mm "
                     f"({len(r.outcomes) - r.n_missing - r.n_failed} images, {r.n_missing} missing, "
                     f"{r.n_failed} failed)")
    return lines


def challenge_pivots(results: Mapping[str, N.DatasetResult]) -> dict[str, pd.DataFrame]:
    """:func:`challenge_table` as one method x challenge table per statistic (``median_mm``, ``mean_mm``,
    ``std_mm``), rounded to 3 decimals (micrometres)."""
    table = challenge_table(results)
    return {stat: table.pivot(index="method", columns="challenge", values=stat).round(3)
            for stat in ("median_mm", "mean_mm", "std_mm")}


def aggregate_check(results: Mapping[str, N.DatasetResult], dataset_dir: str | Path) -> str | None:
    """For a folder that carries the official scorer's numbers (``aggregate.json``: ``mean_mm``, ``median_mm``,
    ``std_mm``, e.g. facenb's conformance challenge folder) and a single scored method: one line comparing them
    with facenb's, to 10 decimals, with the largest absolute difference. None otherwise."""
    agg = Path(dataset_dir) / "aggregate.json"
    if not agg.is_file() or len(results) != 1:
        return None
    exp = json.loads(agg.read_text())
    o = next(iter(results.values())).overall
    diff = max(abs(o.mean_mm - exp["mean_mm"]), abs(o.median_mm - exp["median_mm"]), abs(o.std_mm - exp["std_mm"]))
    return (f"official aggregate ({exp.get('official', 'aggregate.json')}): mean {exp['mean_mm']:.10f}, median "
            f"{exp['median_mm']:.10f}, std {exp['std_mm']:.10f}; facenb: mean {o.mean_mm:.10f}, median "
            f"{o.median_mm:.10f}, std {o.std_mm:.10f}; max |diff| {diff:.2e} mm")


def worst_images(result: N.DatasetResult, k: int) -> list[N.ImageOutcome]:
    """The ``k`` scored images with the largest mean error, worst first."""
    ok = [o for o in result.outcomes if o.status in ("ok", "cached")]
    return sorted(ok, key=lambda o: -o.stats.mean_mm)[: max(int(k), 0)]


def image_heatmap(outcome: N.ImageOutcome):
    """Per-vertex error on the cropped scan of one scored image, from the dataset run's saved distances (no
    re-scoring): ``(vertices (p, 3), faces, distances (p,))``."""
    from facenb.io import load_mesh

    if outcome.status not in ("ok", "cached") or outcome.distances_file is None:
        raise InputError(f"image {outcome.image.key} was not scored ({outcome.status})", None, "pick a scored image")
    scan = load_mesh(outcome.image.scan, require_faces=False)
    idx, _, _ = N.crop_scan(scan.vertices, N.load_now_landmarks(outcome.image.scan_landmarks))
    d = np.load(outcome.distances_file)
    if len(d) != len(idx):
        raise InputError(f"saved distances of {outcome.image.key} do not match its scan crop", outcome.distances_file,
                         "score the dataset again")
    return scan.vertices[idx], crop_faces(scan.faces, idx, len(scan.vertices)), d


def truth_vs_protocol(truth: Mapping, results: Mapping[str, N.DatasetResult]) -> pd.DataFrame:
    """Per method and image: the true mean error (``truth.json``) and the protocol's, in mm."""
    rows = []
    for m, r in results.items():
        t = truth.get("true_error", {}).get(m, {})
        for o in r.outcomes:
            if o.status not in ("ok", "cached") or o.image.key not in t:
                continue
            rows.append({"method": m, "image": o.image.key, "challenge": o.image.challenge,
                         "true_mean_mm": t[o.image.key]["mean_mm"], "protocol_mean_mm": o.stats.mean_mm})
    frame = pd.DataFrame(rows, columns=["method", "image", "challenge", "true_mean_mm", "protocol_mean_mm"])
    frame["protocol_minus_true_mm"] = frame["protocol_mean_mm"] - frame["true_mean_mm"]
    return frame


def published_now(split: str = "test") -> pd.DataFrame:
    """The published NoW leaderboard (``data/reported/now.csv`` through :mod:`facenb.results`): method x
    (median, mean, std) in mm, sorted by median."""
    from facenb.results import leaderboard, load_reported

    table = leaderboard(load_reported(), "now", split).table
    return table.sort_values("median") if "median" in table else table


class NowData(NamedTuple):
    """What notebook 10 runs on: ``dataset`` folder and ``methods`` (name -> predictions folder), or None with
    ``message`` saying what to point it at; ``synthetic`` and its ``truth`` (``truth.json``) for a synthetic set."""

    dataset: Path | None
    methods: dict
    synthetic: bool
    truth: dict | None
    message: str


def resolve_data(now_dataset_dir: str | Path | None, methods: Mapping[str, str | Path] | None, work: str | Path, *,
                 synth_subjects: int = 2, synth_images_per_subject: int = 4, synth_seed: int = 0,
                 synth_methods: Sequence[str] | None = None, synth_james: bool = False) -> NowData:
    """Notebook 10's data: the given NoW folder (methods default to its ``predictions/`` as ``RECON``), else a
    synthetic set generated into ``work/synthetic`` (:func:`facenb.synth.synth_now`), else nothing and why."""
    from facenb import synth

    point = ("set now_dataset_dir to a NoW folder (imagepathsvalidation.txt, scans/, scans_lmks_onlypp/) and methods "
             "to {name: predictions folder}, or fetch the public Surrey Face Model (`facenb data fetch "
             "surrey_face_model`) for the synthetic default")
    if now_dataset_dir:
        ds = Path(now_dataset_dir)
        if not ds.is_dir():
            return NowData(None, {}, False, None, f"NoW folder {ds} not found: {point}")
        m = {k: Path(v) for k, v in (methods or {}).items()}
        if not m and (ds / "predictions").is_dir():
            m = {"RECON": ds / "predictions"}
        if not m:
            return NowData(ds, {}, False, None, f"no predictions given for {ds}: {point}")
        return NowData(ds, m, False, None, f"NoW folder {ds}; methods: {', '.join(m)}")
    res, why = synthetic_default(Path(work) / "synthetic", subjects=synth_subjects,
                                 images_per_subject=synth_images_per_subject, seed=synth_seed, methods=synth_methods,
                                 james=synth_james)
    if res is None:
        return NowData(None, {}, False, None, f"no NoW data ({why}): {point}")
    m = {k: Path(v) for k, v in (methods or res.predictions).items()}
    return NowData(res.out, m, True, synth.load_truth(res.out),
                   f"SYNTHETIC NoW set (facenb synth now, seed {synth_seed}: {res.n_images} images from the public "
                   f"Surrey Face Model) in {res.out} -- not NoW data; methods: {', '.join(m)}")


def synthetic_default(out_dir: str | Path, *, subjects: int = 2, images_per_subject: int = 4,
                      methods: Sequence[str] | None = None, seed: int = 0, james: bool = False):
    """The synthetic NoW set of notebook 10's default run (:func:`facenb.synth.synth_now`), or None with the
    reason when the public Surrey Face Model is not available."""
    from facenb import synth

    try:
        return synth.synth_now(out_dir, subjects=subjects, images_per_subject=images_per_subject, methods=methods,
                               seed=seed, james=james), None
    except InputError as exc:
        return None, str(exc)
