"""Building blocks of the per-paper reproduction notebook (``notebooks/20_paper_reproduction.ipynb``).

The notebook is a template executed once per seed paper; everything longer than a few lines lives here:
the paper's card, its peers on every benchmark it reports (from the results database), and the scorer
demonstrations on real geometry (NoW on the menpo ``james`` scan).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from facenb.errors import InputError
from facenb.vocabulary import AFLW_YAW_BINS

__all__ = ["paper_card", "PeerView", "peer_views", "NowDemo", "now_demo", "crop_submesh", "locate_dataset"]


def _seed(paper: str):
    from facenb import results as RS

    seeds = {s.paper: s for s in RS.load_seeds()}
    if paper not in seeds:
        raise InputError(f"unknown seed paper {paper!r}", None, "use one of " + ", ".join(sorted(seeds)))
    return seeds[paper]


def paper_card(paper: str) -> str:
    """Markdown card of a seed paper: title, authors, year, venue, code, number of claims per benchmark."""
    s = _seed(paper)
    from facenb import results as RS

    claims = RS.seed_claims_frame([s])
    per = claims.groupby("benchmark").size().to_dict()
    meta = {k: getattr(s, k, None) for k in ("title", "authors", "year", "venue", "code")}
    authors = ", ".join(meta["authors"]) if isinstance(meta["authors"], (list, tuple)) else meta["authors"]
    lines = [f"### {paper}: {meta['title']}", "", f"{authors} -- {meta['venue'] or 'venue not stated'} "
             f"({meta['year']}); code: {meta['code'] or 'none published'}", "",
             f"{len(claims)} reported numbers: " + ", ".join(f"{k} {v}" for k, v in sorted(per.items()))]
    return "\n".join(lines)


class PeerView(NamedTuple):
    """One cross-method comparison: a plotly figure, the table drawn, and a sentence on where it comes from."""

    benchmark: str
    split: str
    figure: object
    table: pd.DataFrame
    note: str


def peer_views(paper: str, highlight: list[str] | None = None) -> list[PeerView]:
    """The paper's method among its peers on every benchmark it reports that the results database covers
    (NoW test, REALY frontal/side, AFLW2000-3D original). Every number is quoted with its source."""
    from facenb import plot as P
    from facenb import results as RS

    s = _seed(paper)
    claims = RS.seed_claims_frame([s])
    df = RS.load_reported()
    hl = list(highlight or [s.method])
    views = []
    for bench, split in sorted(set(zip(claims.benchmark, claims.split))):
        if bench not in ("now", "realy", "aflw2000_3d"):
            continue
        lb = RS.leaderboard(df, bench, split)
        if lb.table.empty:
            continue
        note = (f"{len(lb.table)} methods, quoted from data/reported ({lb.rows['source_type'].value_counts().to_dict()});"
                f" one best-supported source per number")
        if bench == "now":
            fig = P.now_bars(lb.table, highlight=hl, title=f"NoW {split}: scan-to-mesh error (mm), {paper} marked")
        elif bench == "realy":
            fig = P.realy_heatmap(lb.table, highlight=hl, title=f"REALY {split} view: mean error per region (mm)")
        else:
            table = lb.table
            extra = tddfa_v2_sample_row(annotations=split)
            if extra is not None:
                table = pd.concat([table, extra])
                note += "; plus 3DDFA_V2 mb05 recomputed by facenb from the pixels of the 16 public sample images"
            fig = P.aflw_pose_bins(table, highlight=hl, title=f"AFLW2000-3D ({split} annotation): NME by yaw bin")
            lb = lb._replace(table=table)
        views.append(PeerView(bench, split, fig, lb.table, note))
    return views


def tddfa_v2_sample_row(annotations: str = "original") -> pd.DataFrame | None:
    """3DDFA_V2 (mb05) run by facenb on the 16 public AFLW2000-3D sample images, scored with the official NME:
    one row ``0-30, 30-60, 60-90, balanced`` (percent) labelled with the image counts, or None without the data
    (``aflw2000_3d``, ``aflw2000_3d_samples``, ``tddfa_v2``). 16 images cannot confirm a 2000-image mean."""
    from facenb.benchmarks import aflw2000 as A
    from facenb.methods import tddfa_v2 as T

    dirs = [locate_dataset(n) for n in ("aflw2000_3d", "aflw2000_3d_samples", "tddfa_v2")]
    if any(d is None for d in dirs):
        return None
    gt = A.load_ground_truth(dirs[0])
    run = T.run_aflw2000_samples(dirs[1], gt, T.TDDFAv2.load(dirs[2]),
                                 annotations="reannotated" if annotations == "reannotated" else "original")
    r = run.result
    label = f"3DDFA-V2 mb05, facenb, 16 images ({'/'.join(str(n) for n in r.bin_count)} per bin)"
    return pd.DataFrame([[*r.bin_mean, r.mean]], index=[label], columns=[*AFLW_YAW_BINS, "balanced"])


def crop_submesh(vertices: np.ndarray, faces: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sub-mesh on the vertices ``keep`` (indices, in order): triangles with all three corners kept."""
    keep = np.asarray(keep, dtype=np.int64)
    remap = -np.ones(len(vertices), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    f = remap[np.asarray(faces, dtype=np.int64)]
    return np.asarray(vertices)[keep], f[(f >= 0).all(axis=1)]


class NowDemo(NamedTuple):
    """A NoW scoring of a synthetic prediction against a real scan, ready for heatmaps."""

    result: object  # facenb.benchmarks.now.NowResult
    crop_vertices: np.ndarray
    crop_faces: np.ndarray
    prediction_vertices: np.ndarray
    prediction_faces: np.ndarray


def now_demo(james_dir: str | Path, *, voxel_mm: float = 4.5, noise_mm: float = 0.3, bump_mm: float = 1.5,
             seed: int = 0) -> NowDemo:
    """Score a degraded copy of the real ``james`` scan (menpo3d sample data, mm) with the NoW protocol.

    The prediction is :func:`facenb.synthetic.degrade` of the scan (vertex clustering, noise, smooth bumps,
    random similarity), its landmarks the scan's 7 NoW landmarks (from ``james.ljson``) moved and jittered.
    """
    from facenb import landmarks as LM
    from facenb import synthetic as S
    from facenb.benchmarks import now
    from facenb.io import load_landmarks, load_mesh

    d = Path(james_dir)
    scan = load_mesh(d / "james.obj")
    lm7 = LM.select(load_landmarks(d / "james.ljson", n=68), LM.NOW7_FROM_MENPO_JAMES)
    deg = S.degrade(scan.vertices, scan.faces, landmarks=lm7, voxel_mm=voxel_mm, noise_mm=noise_mm,
                    bump_mm=bump_mm, seed=seed)
    res = now.evaluate(scan.vertices, lm7, deg.vertices, deg.faces, deg.landmarks.astype(np.float32))
    cv, cf = crop_submesh(scan.vertices, scan.faces, res.crop_indices)
    return NowDemo(res, cv, cf, res.aligned_vertices, res.faces)


def locate_dataset(name: str, given: str | None = None) -> Path | None:
    """Folder of a dataset for a notebook: :func:`facenb.data.locate` (``given`` if it exists, else the verified
    ``facenb data`` cache, else ``$FACENB_DATA_MIRROR/name``); None when none holds it (the notebook then says what
    to fetch)."""
    from facenb import data as D

    return D.locate(name, given or None)


def work_dir(name: str) -> Path:
    """Folder for a notebook's outputs: ``$FACENB_REPORT_DIR/name`` during a report, else a fresh temporary
    folder (never inside ``notebooks/``)."""
    import os
    import tempfile

    base = os.environ.get("FACENB_REPORT_DIR")
    path = Path(base) / name if base else Path(tempfile.mkdtemp(prefix=f"facenb_{name}_"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def facescape_rows(method: str, results_dir: str | Path) -> pd.DataFrame:
    """The method's rows of the FaceScape tables recomputed from the published per-image errors (tier P):
    one row per dataset, grouping, metric and bin (official ``show.py`` binning), with the done rate."""
    from facenb.benchmarks import facescape as fs

    frame = fs.facescape_tables(results_dir).to_frame()
    rows = frame[frame["method"] == method]
    if rows.empty:
        raise InputError(f"{method} is not among the FaceScape benchmark methods", results_dir,
                         "FaceScape evaluated: " + ", ".join(sorted(frame["method"].unique())))
    return rows.reset_index(drop=True)


def realy_recompute(paper: str, realy_dir: str | Path, predictions_dir: str | Path, template: str | Path,
                    out_dir: str | Path, *, template_keypoints: str | Path | None = None,
                    template_mask: str | Path | None = None, jobs: int = 1) -> dict:
    """Tier R for a paper's REALY claims: score the method's predictions on a (licence-gated) REALY folder.

    Parameters
    ----------
    realy_dir : path
        Official REALY layout: ``REALY_HIFI3D_keypoints/``, ``REALY_scan_region/``, ``metrical_scale.txt``.
    predictions_dir : path
        ``<id>.obj`` predictions; either directly (scored as the frontal view) or in ``frontal/`` and ``side/``.
    template : str or path
        REALY template topology of the predictions (``HIFI3D``, ``FLAME``, ``BFM09``, ``Deep3D``, ``3DDFA_v2`` or
        a template OBJ with ``template_keypoints``).

    Returns
    -------
    dict claim_id -> (value, 'R', source) for every REALY claim of the paper whose view was scored:
    region mean / median / std as the official ``get_statistic_metric`` prints them, ``all`` = mean of the
    four region means.
    """
    from facenb import results as RS
    from facenb.benchmarks import realy

    root, preds = Path(realy_dir), Path(predictions_dir)
    views = {v: preds / v for v in ("frontal", "side") if (preds / v).is_dir()} or {"frontal": preds}
    claims = RS.seed_claims_frame([_seed(paper)])
    claims = claims[claims.benchmark == "realy"]
    out: dict = {}
    for view, folder in views.items():
        res = realy.evaluate_folder(root / "REALY_HIFI3D_keypoints", root / "REALY_scan_region",
                                    root / "metrical_scale.txt", folder, template, Path(out_dir) / view,
                                    template_keypoints=template_keypoints, template_mask=template_mask,
                                    view=view, jobs=jobs, progress=False)
        n = len([o for o in res.outcomes if o.status in ("ok", "cached")])
        for _, c in claims[claims.split == view].iterrows():
            st = res.statistics.get(c["region"])
            if st is None or c["statistic"] not in ("mean", "median", "std"):
                continue
            value = float(getattr(st, c["statistic"]))
            if value == value:  # not NaN
                out[c["id"]] = (value, "R", f"facenb.benchmarks.realy on {folder} ({n} subjects, {view} view)")
    return out
