"""Released predictions of three methods on 40 AFLW2000-3D images, scored with the official NME.

The 2DASL repository (``XgTu/2DASL@95052f20``, folder ``evaluation/``) publishes, for the first 40 AFLW2000-3D
test images in sorted name order (``image00002`` ... ``image00081``), the official ``.mat`` annotations and three
methods' predictions: PRNet's 68 3D landmarks (``results/PRNet_results/kpt/<name>_kpt.txt``, 68 rows ``x y z``,
image pixels), and 3DDFA's and 2DASL's dense BFM reconstructions (``results/{3DDFA,2DASL}_results/<name>.mat``,
``vertex`` (3, 53215) float32, image pixels, y down). facenb mirrors them as the dataset ``aflw2000_3d_2dasl40``.

Reading them exactly as 2DASL's own MATLAB evaluation does (``nme_for_alignment_68pts_2d.m``)
------------------------------------------------------------------------------------------------
* ``keypoints.txt`` holds 204 comma-terminated integers: for each of the 68 landmarks the three 0-based offsets
  ``3v, 3v+1, 3v+2`` of its BFM vertex ``v`` in a flattened xyz vector. The MATLAB reads them column-major into
  ``reshape(pts, 3, 68) + 1`` (1-based offsets) and takes ``index = pts(3, :) / 3`` = ``(3v + 3) / 3 = v + 1``:
  the 1-based vertex. In 0-based numpy: ``v = offset_x // 3`` (checked: every triple is ``3v, 3v+1, 3v+2``).
* The 68 landmarks of a dense method are ``vertex[:, v]`` -- no flip and no pixel-origin shift (the MATLAB compares
  ``vertex(1:2, index)`` with ``pt3d_68(1:2, :)`` directly).
* PRNet's ``_kpt.txt`` rows are used as they are (the MATLAB transposes ``pp(:, 1:2)``).
* Each image's row in the 2000-image ground truth is the row whose ``AFLW2000-3D.pts68.npy`` landmarks equal the
  ``.mat``'s ``pt3d_68`` exactly (:func:`facenb.methods.tddfa_v2.match_rows`): rows 0-39.

Scoring
-------
:func:`score` runs :func:`facenb.benchmarks.aflw2000.evaluate` (``coords='image'``, the chosen annotation, the
official yaw file and bins) on these 40 rows. The 2DASL MATLAB scripts compute the same per-image NME on the
``pt3d_68`` landmarks (= the original annotation); their curves are per image, without yaw bins.

What 40 images can and cannot say
---------------------------------
The 40 images are the first 40 of the test set, mostly frontal (|yaw| <= 30 for most of them, only a handful in
the other two bins), so their mean is dominated by easy faces and their bins by one to a few images. They check
the pipeline (reading, indexing, frame) and compare the three methods on identical inputs; they cannot confirm a
2000-image number. :func:`published_reference` gives each method's 2000-image NME as published, with its source.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from facenb.errors import InputError
from facenb.vocabulary import AFLW_YAW_BINS

__all__ = [
    "DATASET",
    "METHODS",
    "DENSE_METHODS",
    "N_VERTICES",
    "Published40",
    "default_dir",
    "read_keypoint_vertices",
    "load",
    "score",
    "summary_table",
    "published_reference",
    "subset_recomputations",
    "comparison_frame",
    "reproduced_vs_reported",
    "dense_agreement",
]

DATASET = "aflw2000_3d_2dasl40"
METHODS = ("PRNet", "3DDFA", "2DASL")
DENSE_METHODS = ("3DDFA", "2DASL")
N_VERTICES = 53215
_GT = "results/AFLW-2000-3D_grdth"
_PRNET = "results/PRNet_results/kpt"
_DENSE = {"3DDFA": "results/3DDFA_results", "2DASL": "results/2DASL_results"}
_BIN_NAMES = AFLW_YAW_BINS  # facenb.vocabulary: the labels are defined once
#: The method name of each release in ``data/reported`` (rows benchmark aflw2000_3d, split original).
REPORTED_NAME = {"PRNet": "PRNet", "3DDFA": "3DDFA", "2DASL": "2DASL"}


def default_dir() -> Path:
    """The release folder: ``facenb.data.require('aflw2000_3d_2dasl40')`` (verified cache or mirror; otherwise an
    :class:`InputError` saying which ``facenb data fetch`` to run)."""
    from facenb import data

    return data.require(DATASET)


def read_keypoint_vertices(path: str | Path) -> np.ndarray:
    """The 68 BFM vertex indices (0-based) of ``keypoints.txt`` (see the module docstring).

    Returns
    -------
    (68,) int64
        ``v_k = offset_{3k} // 3``; raises :class:`InputError` unless the 204 offsets are the triples
        ``3v, 3v+1, 3v+2`` of vertices inside the 53215-vertex BFM.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("keypoints.txt not found", path, f"run 'facenb data fetch {DATASET}'")
    tokens = [t for t in re.split(r"[,\s]+", path.read_text()) if t]
    try:
        off = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError:
        raise InputError("keypoints.txt must hold integers", path, "use the file of XgTu/2DASL evaluation/") from None
    if off.size != 204:
        raise InputError(f"keypoints.txt holds {off.size} offsets, expected 204 (68 x 3)", path,
                         "use the file of XgTu/2DASL evaluation/")
    o = off.reshape(68, 3)  # MATLAB reshape(pts, 3, 68) is column-major: column k = offsets 3k..3k+2
    if (o[:, 0] % 3 != 0).any() or (o[:, 1] != o[:, 0] + 1).any() or (o[:, 2] != o[:, 0] + 2).any():
        raise InputError("keypoints.txt offsets are not xyz triples 3v, 3v+1, 3v+2", path,
                         "use the file of XgTu/2DASL evaluation/")
    v = o[:, 0] // 3
    if v.min() < 0 or v.max() >= N_VERTICES:
        raise InputError(f"keypoints.txt names vertices outside 0..{N_VERTICES - 1}", path, "use the 2DASL file")
    return v


@dataclass(frozen=True)
class Published40:
    """The release, read.

    Attributes
    ----------
    root : Path
    names : tuple of str              image names (``imageNNNNN``), sorted
    rows : (n,) int                   row of each image in the 2000-image ground truth
    pt3d_68 : (n, 3, 68) float32      the ``.mat`` ground truth (image pixels)
    landmarks : dict method -> (n, 3, 68) float64   predicted 68 landmarks, image pixels (x, y, z rows)
    keypoint_vertices : (68,) int     BFM vertex of each landmark (0-based)
    image_paths : tuple of Path
    """

    root: Path
    names: tuple[str, ...]
    rows: np.ndarray
    pt3d_68: np.ndarray
    landmarks: Mapping[str, np.ndarray]
    keypoint_vertices: np.ndarray
    image_paths: tuple[Path, ...] = field(repr=False)

    @property
    def n_images(self) -> int:
        return len(self.names)

    def dense(self, method: str, name: str) -> np.ndarray:
        """The released dense reconstruction ``(3, 53215)`` float32 (image pixels) of ``method`` on image ``name``."""
        if method not in _DENSE:
            raise InputError(f"no dense release for {method!r}", None, f"use one of {', '.join(DENSE_METHODS)}")
        return _read_vertex(self.root / _DENSE[method] / f"{name}.mat")


def _read_vertex(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    if not path.is_file():
        raise InputError("dense prediction not found", path, f"run 'facenb data fetch {DATASET}'")
    m = loadmat(path)
    v = m.get("vertex")
    if v is None or v.shape != (3, N_VERTICES):
        raise InputError(f"'vertex' must be (3, {N_VERTICES})", path, "use the 2DASL release")
    if not np.isfinite(v).all():
        raise InputError("'vertex' holds NaN or Inf", path, "use the 2DASL release")
    return np.asarray(v)


def _read_prnet(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError("PRNet landmark file not found", path, f"run 'facenb data fetch {DATASET}'")
    try:
        a = np.loadtxt(path, dtype=np.float64)
    except ValueError:
        raise InputError("PRNet landmarks must be 68 rows 'x y z'", path, "use the 2DASL release") from None
    if a.shape != (68, 3) or not np.isfinite(a).all():
        raise InputError(f"PRNet landmarks must be 68 finite rows 'x y z', got {a.shape}", path,
                         "use the 2DASL release")
    return a.T


def load(root: str | Path | None = None, gt=None) -> Published40:
    """Read the release: ground truth per image, its row in the 2000 images, each method's 68 landmarks.

    Parameters
    ----------
    root : path, optional
        The release folder (default :func:`default_dir`).
    gt : facenb.benchmarks.aflw2000.GroundTruth or folder, optional
        The 2000-image ground truth used to find each image's row (default: ``aflw2000_3d`` from the data cache
        or mirror).
    """
    from facenb.benchmarks import aflw2000
    from facenb.methods.tddfa_v2 import list_samples, match_rows

    root = Path(root) if root is not None else default_dir()
    if not (root / _GT).is_dir():
        raise InputError("not the 2DASL release folder (no results/AFLW-2000-3D_grdth/)", root,
                         f"run 'facenb data fetch {DATASET}' and pass its folder")
    g = gt if isinstance(gt, aflw2000.GroundTruth) else aflw2000.load_ground_truth(gt)
    samples = list_samples(root / _GT)
    rows = match_rows(samples, g.pts68)
    kv = read_keypoint_vertices(root / "keypoints.txt")
    lms = {"PRNet": np.stack([_read_prnet(root / _PRNET / f"{s.name}_kpt.txt") for s in samples])}
    for m in DENSE_METHODS:
        lms[m] = np.stack([_read_vertex(root / _DENSE[m] / f"{s.name}.mat")[:, kv].astype(np.float64)
                           for s in samples])
    return Published40(root=root, names=tuple(s.name for s in samples), rows=rows,
                       pt3d_68=np.stack([s.pt3d_68 for s in samples]), landmarks=lms, keypoint_vertices=kv,
                       image_paths=tuple(s.image_path for s in samples))


def score(published: Published40 | None = None, gt=None, annotations: str = "original",
          methods=METHODS) -> dict:
    """Official NME (``coords='image'``, ``annotations``, official yaw bins) of each method on the 40 images.

    Returns
    -------
    dict method -> facenb.benchmarks.aflw2000.NMEResult
    """
    from facenb.benchmarks import aflw2000

    g = gt if isinstance(gt, aflw2000.GroundTruth) else aflw2000.load_ground_truth(gt)
    pub = published if published is not None else load(gt=g)
    opts = aflw2000.AFLW2000Options(annotations=annotations, coords="image")
    return {m: aflw2000.evaluate(g, pub.landmarks[m], opts, indices=pub.rows) for m in methods}


def _f(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 6)


def summary_table(results: Mapping) -> dict:
    """``{method: {"n_images", "mean", "median", "balanced", "bins": {"0-30": [count, mean %], ...}}}``.

    ``mean`` and ``median`` are over the images (percent); ``balanced`` is the official mean of the bin means
    (NaN -> None when a bin is empty); a bin's mean is None when it holds no image.
    """
    out = {}
    for m, r in results.items():
        nme = np.asarray(r.per_image, np.float64) * 100
        out[m] = {"n_images": int(nme.size), "mean": _f(float(nme.mean())), "median": _f(float(np.median(nme))),
                  "balanced": _f(r.mean), "annotations": r.annotations,
                  "bins": {b: [int(n), _f(v)] for b, n, v in zip(_BIN_NAMES, r.bin_count, r.bin_mean)}}
    return out


def published_reference(methods=METHODS, reported_dir=None) -> dict:
    """Each method's published 2000-image balanced NME (original annotation) with its source, from
    ``data/reported`` (verified rows first, then official leaderboard > paper > README > third party).

    Returns
    -------
    dict method -> {"value": float, "source": str, "bins": [0-30, 30-60, 60-90] or None, "bins_source": str}
        (None when the method has no published row); ``bins`` come from the best source that gives all three.
    """
    from facenb import results as RS

    rep = RS.load_reported(reported_dir)
    rank = {"official leaderboard": 0, "paper": 1, "repository README": 2, "third party": 3}
    out: dict = {}
    for m in methods:
        rows = rep[(rep.method == REPORTED_NAME.get(m, m)) & (rep.benchmark == "aflw2000_3d")
                   & (rep.split == "original") & (rep.metric == "nme_2d_68") & (rep.statistic == "mean")]
        bal = rows[rows.region == "balanced"]
        if bal.empty:
            out[m] = None
            continue
        bal = bal.assign(_v=(bal["verified"] != "yes").astype(int), _r=bal["source_type"].map(rank).fillna(9))
        best = bal.sort_values(["_v", "_r"], kind="stable").iloc[0]
        bins, bins_source = None, None
        for _, cand in bal.sort_values(["_v", "_r"], kind="stable").iterrows():  # the best source with all 3 bins
            same = rows[rows.source_ref == cand["source_ref"]].set_index("region")["value"]
            if all(b in same.index for b in _BIN_NAMES):
                bins = [float(same[b]) for b in _BIN_NAMES]
                bins_source = f"{cand['source_type']}: {cand['source_ref']}" + (
                    "" if cand["verified"] == "yes" else " (not verified)")
                break
        out[m] = {"value": float(best["value"]), "source": f"{best['source_type']}: {best['source_ref']}",
                  "bins": bins, "bins_source": bins_source}
    return out


def subset_recomputations(claims=None, root=None, gt=None) -> dict:
    """Seed claims this release recomputes on its subset (tier ``S`` of :mod:`facenb.ledger`).

    For every seed claim of a method in :data:`METHODS` on AFLW2000-3D's 68-point 2D NME (split ``original``,
    statistic ``mean``; region ``balanced``, a yaw bin, or ``all``), the same statistic on the 40 released images.
    Empty when the release or the ground truth is not available (cache or mirror) -- never raises for missing data.

    Returns
    -------
    dict claim_id -> {"value": float (percent), "source": str, "coverage": "40/2000 images", "why": str}
    """
    from facenb import data
    from facenb import results as RS
    from facenb.benchmarks import aflw2000

    root = root if root is not None else data.locate(DATASET)
    if root is None:
        return {}
    if gt is None:
        gt = data.locate("aflw2000_3d")
        if gt is None:
            return {}
    if claims is None:
        claims = RS.seed_claims_frame(RS.load_seeds())
    sel = claims[(claims.benchmark == "aflw2000_3d") & (claims.metric == "nme_2d_68") & (claims.split == "original")
                 & (claims.statistic == "mean") & (claims.method.isin(METHODS))]
    if sel.empty:
        return {}
    if isinstance(gt, aflw2000.GroundTruth):
        table, n_images = _subset_table(load(root, gt), gt)
    else:
        table, n_images = _subset_table_cached(str(Path(root).resolve()), str(Path(gt).resolve()))
    out = {}
    for _, c in sel.iterrows():
        t = table[c["method"]]
        region = c["region"]
        if region == "balanced":
            value = t["balanced"]
        elif region in _BIN_NAMES:
            value = t["bins"][region][1]
        elif region == "all":
            value = t["mean"]
        else:
            continue
        if value is None:
            continue
        counts = "/".join(str(t["bins"][b][0]) for b in _BIN_NAMES)
        out[c["id"]] = {
            "value": float(value),
            "source": f"{DATASET}: {c['method']}'s released landmarks (XgTu/2DASL@95052f20 evaluation/results), "
                      "official 3DDFA NME (facenb aflw2000 --published 2dasl40)",
            "coverage": f"{n_images}/{aflw2000.N_IMAGES} images",
            "why": f"recomputed from the method's own predictions on a public subset: {n_images} mostly frontal "
                   f"images (yaw bins {counts}), so it cannot confirm the {aflw2000.N_IMAGES}-image number; "
                   f"over these images mean {t['mean']:.2f} %, median {t['median']:.2f} %",
        }
    return out


def _subset_table(pub: Published40, g) -> tuple[dict, int]:
    return summary_table(score(pub, g, "original")), pub.n_images


@lru_cache(maxsize=4)
def _subset_table_cached(root: str, gt_dir: str) -> tuple[dict, int]:
    """The 40-image table, once per process for a given (verified) release and ground-truth folder."""
    from facenb.benchmarks import aflw2000

    g = aflw2000.load_ground_truth(gt_dir)
    return _subset_table(load(root, g), g)


def comparison_frame(table: Mapping, reference: Mapping | None = None):
    """One row per method: images, mean, median, each bin as ``mean (n)``, balanced, and the published 2000-image
    balanced NME with its source (:func:`published_reference`) -- the text of ``facenb aflw2000 --published``."""
    import pandas as pd

    reference = published_reference(tuple(table)) if reference is None else reference
    rows = []
    for m, t in table.items():
        r = reference.get(m)
        row = {"method": m, "images": t["n_images"], "mean %": t["mean"], "median %": t["median"]}
        for b, (n, v) in t["bins"].items():
            row[f"{b} % (n)"] = "-" if v is None else f"{v:.3f} ({n})"
        row.update({"balanced %": t["balanced"], "published 2000 images %": None if r is None else r["value"],
                    "published source": "" if r is None else r["source"]})
        rows.append(row)
    return pd.DataFrame(rows)


def reproduced_vs_reported(annotations: str = "original", *, case: str | None = None, official: Mapping | None = None,
                           conformance=None, tddfa=None, table: Mapping | None = None,
                           published: Published40 | None = None, reported=None) -> list[dict]:
    """Rows ``what, reproduced, reported, source, provenance`` comparing facenb's AFLW2000-3D numbers with
    published ones (the last table of ``notebooks/12_aflw2000.ipynb``); every row says where its numbers come from.

    Parameters
    ----------
    annotations : {"original", "reannotated"}
    case, official, conformance : optional
        A conformance case's name, its ``expected.json`` and facenb's :class:`~facenb.benchmarks.aflw2000.NMEResult`
        on it: one row, its balanced mean against the official script's (consistency-checked).
    tddfa : optional
        A :func:`facenb.methods.tddfa_v2.run_aflw2000_samples` run: its three yaw bins (with standard errors) and
        its balanced mean against the third-party 2000-image re-run of mobilenet_v1_0.5 (3.80 %).
    table, published : optional
        :func:`summary_table` of the released predictions and the :class:`Published40` they came from: per method,
        the subset's balanced mean against the published 2000-image value (:func:`published_reference`).
    reported : DataFrame, optional
        The reported-results table (default :func:`facenb.results.load_reported`): its 3DDFA-V2 rows, quoted.
    """
    from facenb.benchmarks import aflw2000 as A

    rows = []
    if official is not None and conformance is not None:
        key = "ori" if annotations == "original" else "reannotated"
        rows.append({"what": f"conformance case {case}, balanced mean", "reproduced": conformance.mean,
                     "reported": official[key]["balanced_mean"],
                     "source": "official benchmark_aflw2000.py output (expected.json)",
                     "provenance": "consistency-checked (recomputed from the prediction file)"})
    if tddfa is not None:
        r = tddfa.result
        se_bins, se_bal = A.standard_errors(r)
        for lab, m, n, se in zip(("0-30", "30-60", "60-90"), r.bin_mean, r.bin_count, se_bins):
            rows.append({"what": f"3DDFA_V2 mb05, {lab} ({n} images)", "reproduced": m, "reported": math.nan,
                         "source": f"this run; standard error {se:.2f} %",
                         "provenance": "recomputed from raw data (16 of 2000 images)"})
        rows.append({"what": "3DDFA_V2 mb05, balanced (16 images)", "reproduced": r.mean, "reported": 3.80,
                     "source": "https://github.com/cleardusk/3DDFA_V2/issues/20 (third-party re-run of "
                               f"mobilenet_v1_0.5, all 2000 images); standard error here {se_bal:.2f} %",
                     "provenance": "reproduced: recomputed from raw data (16 images); reported: quoted with source"})
    if table is not None and published is not None:
        ref = published_reference()
        for m in METHODS:
            per_bin = "/".join(str(v[0]) for v in table[m]["bins"].values())
            rows.append({"what": f"{m}, balanced ({published.n_images} images: {per_bin} per bin)",
                         "reproduced": table[m]["balanced"], "reported": ref[m]["value"] if ref[m] else math.nan,
                         "source": ref[m]["source"] if ref[m] else "",
                         "provenance": "reproduced: recomputed from the method's released predictions on a public "
                                       f"subset ({published.n_images}/{A.N_IMAGES} images); reported: quoted with "
                                       "source (2000 images)"})
    if reported is None:
        from facenb.results import load_reported

        reported = load_reported()
    rep = reported[(reported["benchmark"] == "aflw2000_3d") & reported["method"].str.startswith("3DDFA-V2")
                   & (reported["split"] == "original")]
    for q in rep.itertuples():
        rows.append({"what": f"{q.method}, {q.region} (2000 images)", "reproduced": math.nan, "reported": q.value,
                     "source": q.source_ref, "provenance": "quoted with source (data/reported/aflw2000_3d.csv)"})
    return rows


def dense_agreement(published: Published40, presets=("2dasl_dense_2d", "2dasl_dense_3d", "sadrnet_dense_3d",
                                                     "2dasl_reconstruction"), reference: str = "3DDFA",
                    other: str = "2DASL"):
    """``other``'s released dense reconstruction scored against ``reference``'s on every image, per preset of
    :mod:`facenb.benchmarks.aflw2000_dense` -- how far two methods' dense outputs are apart (a number, not an
    accuracy: neither is ground truth). Returns a DataFrame: preset, images, mean %, median %."""
    import pandas as pd

    from facenb.benchmarks import aflw2000_dense as D

    rows = []
    dense = [(published.dense(reference, n), published.dense(other, n)) for n in published.names]
    for preset in presets:
        v = np.array([D.dense_nme(a, b, preset, gt_landmarks=published.pt3d_68[i]).nme
                      for i, (a, b) in enumerate(dense)]) * 100
        rows.append({"preset": preset, "images": len(v), "mean %": float(v.mean()), "median %": float(np.median(v))})
    return pd.DataFrame(rows)
