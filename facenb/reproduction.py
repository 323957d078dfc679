"""Building blocks of the per-paper reproduction notebook (``notebooks/20_paper_reproduction.ipynb``).

The notebook is a template executed once per seed paper; everything longer than a few lines lives here:
the paper's card, its peers on every benchmark it reports (from the results database), the scorer
demonstrations on real geometry (NoW on the menpo ``james`` scan), and the recomputations that licensed data
given as notebook parameters allow (:func:`recompute_licensed`): REALY (:func:`realy_recompute`), Stirling/ESRC
(:func:`stirling_recompute`), Florence/MICC (:func:`florence_recompute`) and AFLW2000-3D dense / 3D-reconstruction
NME (:func:`dense_recompute`), each returning ``claim_id -> (value, tier, source[, coverage])`` for
:func:`facenb.ledger.build_ledger` (tier R; S with a coverage when the folder lacks items).

Also used by ``notebooks/00_leaderboards.ipynb``: :func:`campaign_boards` (a campaign folder's tier-R numbers in
leaderboard layout, drawn beside the quoted ones).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from facenb.errors import InputError
from facenb.vocabulary import AFLW_YAW_BINS

__all__ = ["paper_card", "PeerView", "peer_views", "locate_dataset",
           "realy_recompute", "stirling_recompute", "florence_recompute", "dense_recompute", "Recomputation",
           "recompute_licensed", "STIRLING_CLAIM_KEYS", "DENSE_PRESETS", "RecomputedBoard", "campaign_boards",
           "STATISTIC_BOARDS", "statistic_board"]


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


def peer_views(paper: str, highlight: list[str] | None = None, recomputed: dict | None = None) -> list[PeerView]:
    """The paper's method among its peers on every benchmark it reports that the results database covers
    (NoW test, REALY frontal/side, AFLW2000-3D original, Stirling HQ/LQ and Florence rankings of the claim's
    metric and statistic when at least two methods report it). Every number is quoted with its source; a
    Stirling/Florence claim recomputed in this run (``recomputed``: claim id -> (value, tier, source[, coverage])
    as for :func:`facenb.ledger.build_ledger`) is drawn beside the quoted one as a diamond, labelled with its tier."""
    from facenb import plot as P
    from facenb import results as RS

    s = _seed(paper)
    claims = RS.seed_claims_frame([s])
    df = RS.load_reported()
    hl = list(highlight or [s.method])
    views = []
    for bench, split in sorted(set(zip(claims.benchmark, claims.split))):
        if bench in ("stirling", "florence"):
            views += _ranking_views(paper, s.method, hl, claims[(claims.benchmark == bench) & (claims.split == split)],
                                    df, recomputed or {})
            continue
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


def _ranking_views(paper, method, highlight, claims, reported, recomputed) -> list[PeerView]:
    """One ranked-bars view per claim: the published values of the claim's metric and statistic (one
    best-supported source per method), the claim's own recomputed value (if any) as a diamond."""
    from facenb import plot as P
    from facenb import results as RS

    views = []
    for _, c in claims.iterrows():
        rows = RS.pick(reported, benchmark=c["benchmark"], split=c["split"], metric=c["metric"],
                       statistic=c["statistic"]).drop_duplicates("method")
        rec = recomputed.get(c["id"])
        if len(rows) < 2 and rec is None:
            continue
        values = rows.set_index("method")["value"]
        name = {"stirling": f"Stirling/ESRC {c['split']}", "florence": "Florence (MICC)"}[c["benchmark"]]
        unit = {"percent": "%"}.get(c["unit"], c["unit"])
        extra = {} if rec is None else {method: float(rec[0])}
        title = f"{name}: {c['statistic']} {c['metric']} ({unit}), ranked; {paper} marked"
        if rec is not None:
            title += f" (\u25c6 = recomputed by facenb, tier {rec[1]})"
        fig = P.ranked_bars(values, highlight=highlight, unit=unit, title=title,
                            recomputed=extra if rec is not None else None)
        note = (f"{len(values)} methods, quoted from data/reported ({rows['source_type'].value_counts().to_dict()}); "
                "one best-supported source per number"
                + ("" if rec is None else f"; {method} recomputed here (tier {rec[1]}): {rec[2]}"))
        table = values.to_frame(c["statistic"])
        if rec is not None:
            table.loc[f"{method} (recomputed, {rec[1]})", c["statistic"]] = float(rec[0])
        views.append(PeerView(c["benchmark"], c["split"], fig, table, note))
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


# ============================================================================================================
# licensed data -> tier R (Stirling/ESRC, Florence/MICC, AFLW2000-3D dense)
# ============================================================================================================
def _claims_of(paper: str, benchmark: str) -> pd.DataFrame:
    from facenb import results as RS

    claims = RS.seed_claims_frame([_seed(paper)])
    return claims[claims.benchmark == benchmark]


def _tier(n_scored: int, n_total: int, what: str) -> tuple[str, ...]:
    """``("R",)`` for a complete folder, ``("S", "n/N what")`` when items are missing or failed (a subset cannot
    confirm the full number: :mod:`facenb.ledger`)."""
    return ("R",) if n_scored == n_total else ("S", f"{n_scored}/{n_total} {what}")


#: Seed-claim statistic -> key of :attr:`facenb.benchmarks.stirling.DatasetResult.per_subset` (pooled over the
#: masked vertices of all images of the subset: see the aggregation section of the stirling module docstring).
STIRLING_CLAIM_KEYS = {"mean": "pooled_mean_mm", "median": "pooled_median_mm", "std": "pooled_std_mm"}


def stirling_recompute(paper: str, stirling_dir: str | Path, predictions_dir: str | Path, out_dir: str | Path, *,
                       annotations_dir: str | Path | None = None, pred_topology: str | None = None,
                       jobs: int = 1) -> dict:
    """Tier R for a paper's Stirling/ESRC (FG2018) claims: score the method's predictions on the licensed release.

    Scorer: :func:`facenb.benchmarks.stirling.evaluate_dataset` (official FG2018 protocol
    ``patrikhuber/fg2018-competition@3bbbdefb``: 7-landmark similarity Procrustes, face mask on the scan,
    scan-vertex -> predicted-surface distances) with its defaults ``statistic="mean"``, ``aggregate="pooled"``:
    the statistic the published Stirling tables print as "mean reconstruction error" (PRNet's HQ 2.06 / LQ 2.38 mm
    as quoted on the seed page; see the stirling module docstring on what could and could not be verified), i.e.
    the mean over all masked scan vertices of all images of the subset. A claim with statistic ``mean``,
    ``median`` or ``std`` and split ``HQ`` or ``LQ`` takes ``per_subset[split]`` of :data:`STIRLING_CLAIM_KEYS`.

    Parameters
    ----------
    stirling_dir : path
        The release (``Real_images__Subset_2D_FG2018/{HQ,LQ}``, ``{F,M}_3D_N/<subject>_N.obj``, ``annotations/``).
    predictions_dir : path
        ``<HQ|LQ>/<image>.obj|.ply`` with 7 landmarks ``<image>.txt|.npy`` (or ``pred_topology``).
    out_dir : path
        Dataset-mode outputs (summary, per-image table, the official distance files, cache).
    annotations_dir : path, optional
        ``.lnd`` folder; default ``stirling_dir/annotations``, else the public ``stirling_fg2018`` files.

    Returns
    -------
    dict claim_id -> (value mm, "R", source), or ``(value, "S", source, "n/N images")`` when images of the
    subset were missing or failed.
    """
    from facenb import data
    from facenb.benchmarks import stirling as St

    claims = _claims_of(paper, "stirling")
    claims = claims[claims.split.isin(St.SUBSETS) & claims.statistic.isin(list(STIRLING_CLAIM_KEYS))]
    if claims.empty:
        return {}
    splits = sorted(set(claims.split))
    if annotations_dir is None and not (Path(stirling_dir) / "annotations").is_dir():
        public = data.locate("stirling_fg2018")
        annotations_dir = Path(public) / "annotations" if public is not None else None
    res = St.evaluate_dataset(stirling_dir, predictions_dir, out_dir, subset=splits[0] if len(splits) == 1 else "all",
                              statistic="mean", aggregate="pooled", annotations_dir=annotations_dir,
                              pred_topology=pred_topology, jobs=jobs, progress=False)
    out: dict = {}
    for _, c in claims.iterrows():
        s = res.per_subset[c["split"]]
        value = float(s[STIRLING_CLAIM_KEYS[c["statistic"]]])
        if s["n_scored"] == 0 or value != value:
            continue
        tier = _tier(s["n_scored"], s["n_images"], "images")
        src = (f"facenb.benchmarks.stirling ({St.OFFICIAL_REPO.split('@')[0]} protocol; {c['statistic']} over the "
               f"{s['n_points']} masked scan vertices of {s['n_scored']} {c['split']} images, pooled) on "
               f"{stirling_dir}")
        out[c["id"]] = (value, tier[0], src, *tier[1:])
    return out


def florence_recompute(paper: str, florence_dir: str | Path, predictions_dir: str | Path, out_dir: str | Path, *,
                       landmarks_dir: str | Path | None = None, jobs: int = 1) -> dict:
    """Tier R for a paper's Florence (MICC) claims: score the method's predictions on the licensed release.

    Scorer: :func:`facenb.benchmarks.florence.evaluate_dataset` with :data:`facenb.benchmarks.florence.PRNET`
    (VRN's protocol, which PRNet follows: rigid ICP used only for correspondences, mean per-vertex distance over
    the cropped scan divided by its 3D outer interocular distance, percent), then
    :func:`facenb.benchmarks.florence.claim_values` (mean over the scored predictions).

    Parameters
    ----------
    florence_dir : path
        ``subject_NN/Model/frontal{1,2}/obj/<stamp>.obj``.
    predictions_dir : path
        ``subject_NN/<setting or pose>.obj`` (+ optional 68 landmarks beside it).
    landmarks_dir : path, optional
        iBUG-68 scan landmarks; default the public ``florence_micc_landmarks`` (facenb cache or mirror).

    Returns
    -------
    dict claim_id -> (value %, "R", source), or ``(value, "S", source, "n/N predictions")`` when predictions
    of subjects with scan landmarks are missing or failed.
    """
    from facenb.benchmarks import florence as F

    claims = _claims_of(paper, "florence")
    if claims.empty:
        return {}
    res = F.evaluate_dataset(florence_dir, predictions_dir, out_dir, landmarks_dir=landmarks_dir, options=F.PRNET,
                             executor="processes" if jobs > 1 else "serial", jobs=jobs, progress=False)
    n_total = len(res.run.outcomes)
    tier = _tier(len(res.rows), n_total, "predictions")
    return {cid: (v, tier[0], src, *tier[1:]) for cid, (v, _, src) in F.claim_values(res, claims).items()}


#: Dense NME preset per seed-claim metric (:data:`facenb.benchmarks.aflw2000_dense.PRESETS`): 2DASL's MATLAB
#: evaluation (``nme_for_alignment_dense_3d.m``, ``nme_for_3DReconstruction.m``), the public implementation of the
#: AFLW2000-3D dense protocols of the comparison tables PRNet appears in; PRNet published no evaluation code.
DENSE_PRESETS = {"nme_3d_dense": "2dasl_dense_3d", "nme_3d_reconstruction": "2dasl_reconstruction"}
AFLW2000_IMAGES = 2000


def _dense_files(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise InputError(f"{what} folder not found", folder, "give a folder of per-image (3, n) <image>.npy arrays")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in (".npy", ".mat") and p.is_file():
            files.setdefault(p.stem, p)
    if not files:
        raise InputError(f"no .npy or .mat files in the {what} folder", folder, "one (3, n) array per image")
    return files


def dense_recompute(paper: str, dense_gt_dir: str | Path, predictions_dir: str | Path, *,
                    presets: dict | None = None, gt_landmarks: dict | None = None,
                    keypoints: str | Path | None = None) -> dict:
    """Tier R for a paper's AFLW2000-3D dense-alignment and 3D-reconstruction NME claims.

    Scorer: :func:`facenb.benchmarks.aflw2000_dense.dense_nme` per image with the preset of :data:`DENSE_PRESETS`
    (``presets`` overrides it per metric); the claim value is the mean over images of the per-image NME, in
    percent (the seed page does not say whether PRNet's mean is over images or balanced over yaw bins).

    Parameters
    ----------
    dense_gt_dir : path
        The user's BFM-derived dense ground truth (the Basel Face Model is licence-gated, facenb never builds it):
        one ``(3, n)`` array per image, ``<image>.npy`` or ``.mat`` (variable ``vertex``), image pixels.
    predictions_dir : path
        The method's dense predictions, same names, same vertex order (``(3, n)``).
    gt_landmarks : dict image -> (3, 68), optional
        The 68 ground-truth landmarks for presets normalised by them (``2dasl_dense_3d``: ``sqrt(w h)`` of their
        2D box). Default: the dense ground truth at the 68 BFM keypoint vertices of 2DASL's ``keypoints.txt``
        (``keypoints``, default the ``aflw2000_3d_2dasl40`` dataset), which needs the 53215-vertex BFM topology.

    Returns
    -------
    dict claim_id -> (value %, "R", source), or ``(value, "S", source, "n/2000 images")`` on fewer images.
    """
    from facenb.benchmarks import aflw2000_dense as D

    claims = _claims_of(paper, "aflw2000_3d")
    table = {**DENSE_PRESETS, **(presets or {})}
    claims = claims[claims.metric.isin(list(table)) & (claims.statistic == "mean")]
    if claims.empty:
        return {}
    gts = _dense_files(Path(dense_gt_dir), "dense ground-truth")
    preds = _dense_files(Path(predictions_dir), "dense predictions")
    names = sorted(set(gts) & set(preds))
    if not names:
        raise InputError("no image has both a dense ground truth and a dense prediction", predictions_dir,
                         f"name the predictions like the ground truth (e.g. {next(iter(gts))}.npy)")
    kp = None
    out: dict = {}
    for _, c in claims.iterrows():
        preset = table[c["metric"]]
        opts = D.PRESETS[preset] if isinstance(preset, str) else preset
        needs_lm = opts.normalizer in ("bbox2d_landmarks", "interocular_3d", "interocular_2d")
        nmes = []
        for n in names:
            g = D.read_dense(gts[n])
            lm = None
            if needs_lm:
                if gt_landmarks is not None and n in gt_landmarks:
                    lm = np.asarray(gt_landmarks[n], dtype=np.float64)
                else:
                    if kp is None:
                        kp = _bfm_keypoints(keypoints)
                    if g.shape[1] <= kp.max():
                        raise InputError(f"the dense ground truth of {n} has {g.shape[1]} vertices, not the "
                                         "53215-vertex BFM, so its 68 landmarks cannot be taken from it", gts[n],
                                         "pass gt_landmarks (image -> (3, 68)) or a preset without landmarks")
                    lm = g[:, kp]
            nmes.append(D.dense_nme(g, D.read_dense(preds[n]), opts, gt_landmarks=lm).nme * 100.0)
        tier = _tier(len(names), AFLW2000_IMAGES, "images")
        name = preset if isinstance(preset, str) else "custom options"
        src = (f"facenb.benchmarks.aflw2000_dense.dense_nme (preset {name}), mean over {len(names)} images of the "
               f"dense ground truth in {dense_gt_dir}")
        out[c["id"]] = (float(np.mean(nmes)), tier[0], src, *tier[1:])
    return out


def _bfm_keypoints(keypoints: str | Path | None) -> np.ndarray:
    from facenb.benchmarks import aflw2000_published as AP

    if keypoints is None:
        root = locate_dataset(AP.DATASET)
        if root is None:
            raise InputError("the 68 BFM keypoint vertices (2DASL keypoints.txt) are not available", None,
                             f"run `facenb data fetch {AP.DATASET}` or pass gt_landmarks")
        keypoints = Path(root) / "keypoints.txt"
    return AP.read_keypoint_vertices(keypoints)


class Recomputation(NamedTuple):
    """What the paper notebook recomputed from the data it was given: ``recomputed`` (claim id -> (value, tier,
    source[, coverage]) for :func:`facenb.ledger.build_ledger`) and one printed line per benchmark."""

    recomputed: dict
    lines: list


def recompute_licensed(paper: str, *, realy_dir=None, realy_predictions_dir=None, realy_template="HIFI3D",
                       stirling_dir=None, stirling_predictions_dir=None, florence_dir=None,
                       florence_predictions_dir=None, florence_landmarks_dir=None, dense_gt_dir=None,
                       dense_predictions_dir=None, jobs: int = 1) -> Recomputation:
    """Every recomputation the paper notebook's parameters allow (REALY, Stirling, Florence, AFLW2000-3D dense);
    each benchmark whose folders are not both given prints which parameters to set. Outputs go to
    :func:`work_dir`."""
    rec: dict = {}
    lines = []
    jobs_ = {
        "REALY": ((realy_dir, realy_predictions_dir), "realy_dir and realy_predictions_dir",
                  lambda: realy_recompute(paper, realy_dir, realy_predictions_dir, realy_template,
                                          work_dir("realy_" + paper), jobs=jobs)),
        "Stirling": ((stirling_dir, stirling_predictions_dir), "stirling_dir and stirling_predictions_dir",
                     lambda: stirling_recompute(paper, stirling_dir, stirling_predictions_dir,
                                                work_dir("stirling_" + paper), jobs=jobs)),
        "Florence": ((florence_dir, florence_predictions_dir), "florence_dir and florence_predictions_dir",
                     lambda: florence_recompute(paper, florence_dir, florence_predictions_dir,
                                                work_dir("florence_" + paper), landmarks_dir=florence_landmarks_dir,
                                                jobs=jobs)),
        "AFLW2000-3D dense": ((dense_gt_dir, dense_predictions_dir), "dense_gt_dir and dense_predictions_dir",
                              lambda: dense_recompute(paper, dense_gt_dir, dense_predictions_dir)),
    }
    for name, (given, params, run) in jobs_.items():
        if all(given):
            got = run()
            rec.update(got)
            tiers = sorted({v[1] for v in got.values()})
            lines.append(f"{name} recomputed for {len(got)} claims of {paper}"
                         + (f" (tier {'/'.join(tiers)})" if tiers else " (the paper reports none)"))
        else:
            lines.append(f"No licensed {name} data given: set {params} to recompute the {name} claims.")
    return Recomputation(rec, lines)


# ============================================================================================================
# campaign numbers (tier R) beside the quoted leaderboards (notebooks/00_leaderboards.ipynb)
# ============================================================================================================
#: Benchmarks whose leaderboard is ``method x (median, mean, std)`` of one metric (as NoW's) that
#: :func:`facenb.results.leaderboard` has no layout for: benchmark -> metric.
STATISTIC_BOARDS = {"stirling": "scan_to_mesh"}


def statistic_board(df: pd.DataFrame, benchmark: str, split: str):
    """``method x (median, mean, std)`` of a :data:`STATISTIC_BOARDS` benchmark split, one best-supported source
    per number (:func:`facenb.results.pick`), as a :class:`facenb.results.Leaderboard` (table, rows)."""
    from facenb import results as RS

    if benchmark not in STATISTIC_BOARDS:
        raise InputError(f"no statistic board for benchmark {benchmark!r}", None,
                         f"use one of {', '.join(STATISTIC_BOARDS)}")
    order = ("median", "mean", "std")
    rows = RS.pick(df, benchmark=benchmark, split=split, metric=STATISTIC_BOARDS[benchmark])
    rows = rows[rows.statistic.isin(order)] if not rows.empty else rows
    if rows.empty:
        return RS.Leaderboard(pd.DataFrame(columns=list(order)), rows)
    return RS.Leaderboard(RS.wide(rows, columns="statistic", order=order), rows)


class RecomputedBoard(NamedTuple):
    """One benchmark split of a campaign folder in leaderboard layout: ``table`` (method x statistic for NoW,
    method x region for REALY, as :func:`facenb.results.leaderboard`), the tier-R ``rows`` it rests on and a
    ``note`` naming the campaign, the number of items and the coverage per method."""

    benchmark: str
    split: str
    table: pd.DataFrame
    rows: pd.DataFrame
    note: str


def campaign_boards(campaign_dir: str | Path | None) -> dict[tuple[str, str], RecomputedBoard]:
    """The recomputed (tier R) leaderboards of a campaign folder (``facenb campaign run SPEC --out DIR``), keyed
    ``(benchmark, split)`` in the published vocabulary (NoW ``validation``/``test``, REALY ``frontal``/``side``).

    Rows come from :func:`facenb.campaign.load_results` with ``as_reported=True`` (method = the spec's
    ``reported:`` name when given, so that a recomputed method lands beside its quoted numbers). Empty for
    ``None``; an :class:`~facenb.errors.InputError` names a folder that is not a campaign.
    """
    from facenb import campaign as C
    from facenb import results as RS

    if campaign_dir is None or campaign_dir == "":
        return {}
    rows = C.load_results(campaign_dir, as_reported=True)
    out = {}
    for (bench, split), g in rows.groupby(["benchmark", "split"], sort=True):
        try:
            lb = statistic_board(g, bench, split) if bench in STATISTIC_BOARDS else RS.leaderboard(g, bench, split)
        except InputError:  # a benchmark without a leaderboard layout
            continue
        if lb.table.empty:
            continue
        head = lb.rows[lb.rows.region == "all"] if "all" in set(lb.rows.region) else lb.rows
        per = head.groupby("method").agg(n=("n_items", "max"), total=("n_total", "max"))
        def _n(v):
            return "?" if v != v else str(int(v))

        note = (f"{bench} {split}: {len(lb.table)} method(s) recomputed by facenb (tier R) in campaign "
                f"{Path(campaign_dir)}: " + "; ".join(f"{m} on {_n(r.n)}/{_n(r.total)} items"
                                                       for m, r in per.iterrows()))
        out[(bench, split)] = RecomputedBoard(bench, split, lb.table, lb.rows, note)
    return out
