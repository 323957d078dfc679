"""The reproduction ledger: every seed-paper claim with what facenb could do with it.

Each claim of ``seeds/*.yaml`` gets a tier:

``R`` recomputed from raw data
    facenb ran the benchmark's protocol on ground truth and predictions (e.g. a user pointed the paper notebook
    at a licensed REALY, Stirling/ESRC or Florence folder, or at a BFM-derived dense AFLW2000-3D ground truth, and
    the method's predictions: :func:`facenb.reproduction.recompute_licensed`).
``S`` recomputed from raw data on a subset
    facenb ran the benchmark's protocol on the method's own released predictions, but only for the images that
    are public (e.g. PRNet's landmarks on 40 of the 2000 AFLW2000-3D images, from the 2DASL repository), or on a
    licensed folder that lacks some predictions. The ``coverage`` column says how much (``40/2000 images``); a
    subset cannot confirm the full number, so ``S`` is counted apart from ``R``. The public subsets are added
    automatically when their data are in the facenb cache or mirror.
``P`` recomputed from published per-image errors
    the benchmark published every image's error (FaceScape); facenb recomputed the table.
``C`` consistency-checked from published components
    the claim is a function of other published numbers (REALY ``all`` = mean of the four region means; AFLW2000-3D
    balanced NME = mean of the three yaw-bin NMEs); facenb recomputed it from them.
``Q`` quoted with a source
    the public data allows no more (NoW test scans are held by the organisers; REALY, Stirling, Florence scans
    are licence-gated; no public predictions of the method exist); the ledger names the source that agrees.

``difference`` is reproduced minus reported (in the claim's unit); for ``Q`` rows it is empty. ``coverage`` is
empty for full recomputations and checks, and names the part of the benchmark an ``S`` row rests on.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from facenb.vocabulary import AFLW_YAW_BINS, REALY_REGIONS

__all__ = ["LEDGER_COLUMNS", "TIERS", "build_ledger", "tier_counts"]

LEDGER_COLUMNS = ["paper", "claim_id", "benchmark", "split", "region", "metric", "statistic", "reported",
                  "reproduced", "tier", "difference", "source", "why", "coverage"]


_DENSE_WHY = ("the dense ground truth of AFLW2000-3D is generated from the Basel Face Model, which is licence-gated "
              "(request from the University of Basel), and the method's dense predictions on all 2000 images are "
              "not public; no official scorer exists: facenb.benchmarks.aflw2000_dense.dense_nme computes it "
              "(preset 2dasl_dense_3d for the dense alignment NME, 2dasl_reconstruction for the 3D-reconstruction "
              "NME; one preset per implementation: 2DASL, SADRNet, PRNet-PyTorch). To recompute (tier R): set "
              "dense_gt_dir (your BFM-derived dense ground truth, a folder of per-image (3, n) arrays "
              "<image>.npy or .mat 'vertex') and dense_predictions_dir (the method's dense output, same names and "
              "vertex order) in the paper notebook 20 (notebook 12 scores the 2DASL release's 40 images with it)")

_WHY_Q = {
    "now": "NoW test-set scans are held by the organisers (scored only by their server); facenb's scorer matches "
           "the official one on the conformance cases (notebook 10_now: the protocol, validation folders)",
    "realy": "REALY ground-truth scans are licence-gated (request from the REALY authors); set realy_dir and "
             "realy_predictions_dir in the paper notebook to recompute (tier R)",
    "aflw2000_3d": "needs the method's predictions on all 2000 images, which are not public",
    "aflw2000_3d/nme_3d_dense": _DENSE_WHY,
    "aflw2000_3d/nme_3d_reconstruction": _DENSE_WHY,
    "aflw_lfpa": "AFLW-LFPA images and the method's predictions are not public data of this project",
    "florence": "Florence (MICC) scans are licence-gated (request from MICC, University of Florence); no official "
                "scorer exists: facenb.benchmarks.florence computes it with protocol 'prnet' (VRN's protocol that "
                "PRNet follows: rigid ICP for correspondences, mean distance / 3D outer interocular distance, "
                "percent). To recompute (tier R): set florence_dir (the MICC release) and florence_predictions_dir "
                "(subject_NN/<setting>.obj) in the paper notebook 20; florence_landmarks_dir defaults to the public "
                "florence_micc_landmarks",
    "stirling": "Stirling/ESRC scans (FG2018 challenge) are licence-gated (request from the University of Stirling); "
                "scorer facenb.benchmarks.stirling (the organisers' fg2018-competition@3bbbdefb protocol; per subset "
                "the mean distance over all masked scan vertices, the tables' 'mean reconstruction error'). To "
                "recompute (tier R): set stirling_dir (the FG2018 release) and stirling_predictions_dir "
                "(<HQ|LQ>/<image>.obj + 7 landmarks) in the paper notebook 20",
    "facescape": "FaceScape per-image errors were not available for this method",
}


def _best_source(reported: pd.DataFrame, method: str, benchmark: str, split: str, region: str, metric: str,
                 statistic: str) -> pd.Series | None:
    """The best-supported row for one number (:func:`facenb.results.pick`: verified first, then source type)."""
    from facenb import results as RS

    rows = RS.pick(reported, method=method, benchmark=benchmark, split=split, region=region, metric=metric,
                   statistic=statistic)
    return None if rows.empty else rows.iloc[0]


def _src(row: pd.Series | None) -> str:
    if row is None:
        return ""
    return f"{row['source_type']}: {row['source_ref']}"


def _component_values(method, benchmark, split, regions, metric, statistic, claims: pd.DataFrame,
                      reported: pd.DataFrame):
    vals, srcs = [], []
    for reg in regions:
        own = claims[(claims.method == method) & (claims.benchmark == benchmark) & (claims.split == split)
                     & (claims.region == reg) & (claims.metric == metric) & (claims.statistic == statistic)]
        if len(own):
            vals.append(float(own.iloc[0]["value"]))
            srcs.append("seed page")
            continue
        best = _best_source(reported, method, benchmark, split, reg, metric, statistic)
        if best is None:
            return None, None
        vals.append(float(best["value"]))
        srcs.append(str(best["source_type"]))
    return vals, srcs


def build_ledger(
    papers: Sequence[str] | None = None,
    recomputed: Mapping[str, tuple[float, str, str]] | None = None,
    seeds_dir=None,
    reported_dir=None,
    subsets: Mapping[str, Mapping] | None = None,
) -> pd.DataFrame:
    """One row per seed claim (see module docstring), columns :data:`LEDGER_COLUMNS`.

    Parameters
    ----------
    papers : list of str, optional
        Restrict to these papers (seed ``paper`` names).
    recomputed : mapping claim_id -> (value, tier, source[, coverage]), optional
        Values a notebook recomputed (tier ``R``, ``P`` or ``S``) with the data it was given.
    subsets : mapping claim_id -> {"value", "source", "coverage", "why"}, optional
        Tier-``S`` recomputations on public subsets. Default: those the available public data allow
        (:func:`facenb.benchmarks.aflw2000_published.subset_recomputations`); ``{}`` for none.
    seeds_dir, reported_dir : path, optional
        Defaults: the seed papers and the published-results table shipped with facenb
        (:func:`facenb.results.default_seeds_dir`, :func:`facenb.results.default_data_dir`).
    """
    from facenb import results as RS

    seeds = RS.load_seeds(seeds_dir)
    claims = RS.seed_claims_frame(seeds)
    reported = RS.load_reported(reported_dir)
    if papers:
        claims = claims[claims.paper.isin(list(papers))]
    recomputed = dict(recomputed or {})
    if subsets is None:
        from facenb.benchmarks.aflw2000_published import subset_recomputations
        from facenb.errors import InputError

        try:
            subsets = subset_recomputations(claims)
        except InputError:  # damaged or partial data: the ledger still builds, without the subset rows
            subsets = {}
    rows = []
    for _, c in claims.iterrows():
        base = {k: c[k] for k in ("paper", "benchmark", "split", "region", "metric", "statistic")}
        base.update(claim_id=c["id"], reported=float(c["value"]))
        best = _best_source(reported, c["method"], c["benchmark"], c["split"], c["region"], c["metric"],
                            c["statistic"])
        if c["id"] in recomputed:
            value, tier, source, *cov = recomputed[c["id"]]
            rows.append({**base, "reproduced": float(value), "tier": tier, "difference": float(value) - base["reported"],
                         "source": source, "why": "recomputed by facenb in this run", "coverage": "".join(cov)})
            continue
        if c["id"] in subsets:
            sub = subsets[c["id"]]
            rows.append({**base, "reproduced": float(sub["value"]), "tier": "S",
                         "difference": float(sub["value"]) - base["reported"], "source": sub["source"],
                         "why": sub["why"], "coverage": sub["coverage"]})
            continue
        comp = None
        if c["benchmark"] == "realy" and c["region"] == "all" and c["statistic"] == "mean":
            comp = (REALY_REGIONS, "REALY 'all' = mean of the four region means")
        elif c["benchmark"] == "aflw2000_3d" and c["region"] == "balanced" and c["statistic"] == "mean":
            comp = (AFLW_YAW_BINS, "balanced NME = mean of the three yaw-bin NMEs")
        if comp is not None:
            vals, srcs = _component_values(c["method"], c["benchmark"], c["split"], comp[0], c["metric"], "mean", claims if
                                           c["benchmark"] == "realy" else claims.iloc[0:0], reported)
            if vals is not None:
                value = float(np.mean(vals))
                rows.append({**base, "reproduced": value, "tier": "C", "difference": value - base["reported"],
                             "source": f"{comp[1]}; components from " + ", ".join(sorted(set(srcs))),
                             "why": comp[1]})
                continue
        agree = ""
        if best is not None:
            same_value = abs(float(best["value"]) - base["reported"]) < 0.5 * 10 ** -int(best.get("decimals", 2) or 2)
            agree = " (agrees)" if same_value else f" (gives {best['value_text'] or best['value']}: CONFLICT)"
        rows.append({**base, "reproduced": np.nan, "tier": "Q", "difference": np.nan,
                     "source": (_src(best) + agree) if best is not None else f"seed page {c['file']}",
                     "why": _WHY_Q.get(f"{c['benchmark']}/{c['metric']}",
                                       _WHY_Q.get(c["benchmark"], "no public data to recompute it"))})
    out = pd.DataFrame(rows, columns=LEDGER_COLUMNS)
    out["coverage"] = [v if isinstance(v, str) else "" for v in out["coverage"]]
    return out


TIERS = "RSPCQ"
"""Tier order: full recomputation, subset recomputation, per-image errors, consistency check, quote."""


def tier_counts(ledger: pd.DataFrame) -> dict:
    """Number of claims per tier, in R, S, P, C, Q order (subset recomputations counted apart from full ones)."""
    vc = ledger["tier"].value_counts()
    return {t: int(vc.get(t, 0)) for t in TIERS}
