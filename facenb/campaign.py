"""Campaigns: many methods x many benchmarks in one command, on one machine or a Dask cluster.

A campaign is a YAML spec naming benchmarks (ground-truth folders and protocol options) and methods (a
predictions folder per benchmark). Every ``(method, benchmark, item)`` -- a NoW image, a REALY subject, a Stirling
image -- is one task of the runner (:mod:`facenb.runner`), scored by the benchmark's own per-item function
(``now.score_image``, ``realy.score_subject``, ``stirling.score_one``): the tasks of all pairs go to the runner in one call, so one progress
bar covers the campaign, the content-hash cache makes a rerun score only what is new (a new method, a new
checkpoint, a changed file), and the executor -- ``serial``, ``processes`` or a Dask cluster
(:class:`DaskExecutor`) -- sees every task at once.

Spec (version 1)
----------------
.. code-block:: yaml

    name: sweep-2026-12                 # optional label
    benchmarks:
      now_val:                          # benchmark label (free text, used in the outputs)
        kind: now                       # now | realy | stirling
        dataset: /data/NoW_Dataset/final_release_version   # imagepaths*.txt, scans/, scans_lmks_onlypp/
        split: val                      # val | test   (or image_list: FILE, split_label: NAME)
        challenge: null                 # one NoW challenge only (default: all)
        metric: false                   # official metrical evaluation (needs pred_unit)
        pred_unit: null                 # m | cm | mm
      stirling:
        kind: stirling
        dataset: /data/Stirling_FG2018       # Real_images__Subset_2D_FG2018/{HQ,LQ}, {F,M}_3D_N, annotations
        subset: all                     # all | HQ | LQ; aggregate: pooled | per-image
      realy_frontal:
        kind: realy
        keypoints: /data/REALY/REALY_HIFI3D_keypoints
        regions: /data/REALY/REALY_scan_region
        scale: /data/REALY/metrical_scale.txt
        template: HIFI3D                # default topology of the predictions (a method's `topology` wins)
        view: frontal                   # frontal | side (a label: the folders decide what is scored)
    methods:
      ckpt_0100:
        topology: FLAME                 # optional: REALY template of this method's meshes (name or .obj path)
        template_mask: /data/FLAME_mask.txt   # optional 0/1 per template vertex (REALY)
        reported: MICA                  # optional: published method to compare with (facenb.results)
        predictions:
          now_val: /preds/ckpt_0100/now        # <subject>/<challenge>/<image>.obj + .txt/.npy landmarks
          realy_frontal: /preds/ckpt_0100/realy  # <id>.obj
          stirling: /preds/ckpt_0100/stirling    # {HQ,LQ}/<image>.obj + .txt/.npy landmarks

Relative paths are relative to the spec file. A method scores only the benchmarks it has predictions for.

Outputs (``--out DIR``)
-----------------------
``results.csv`` / ``results.parquet``
    The tidy table, one row per number: ``method, benchmark, kind, split, region, metric, statistic, value, unit,
    n_items, n_total, coverage, settings_hash, facenb_version`` (``region`` holds the NoW challenge or ``all``,
    the REALY region or ``all``; Stirling rows have ``split`` HQ / LQ / all). :func:`load_results` reads it as tier-R rows beside the published ones.
``items.csv`` / ``items.parquet``
    One row per task: status (ok, cached, missing, failed), reason, seconds, and the item's scalar results.
``curves.csv``
    NoW cumulative error curves (fraction of scan points within ``x`` mm) per method, benchmark and challenge.
``status.json``
    Counts per (method, benchmark) and the failed / missing items with their one-line reasons.
``cache/``
    The runner's content-hash cache (one entry per task; only the calling process writes it).

Memory: the runner returns every payload at the end of the run, so the client holds the distance vector of every
scored NoW / Stirling image of the campaign while it aggregates (the official statistics are taken over the
concatenated distances): about 8 bytes per cropped scan point -- e.g. 50 checkpoints x 410 NoW images x ~30k points
is ~5 GB. Split a larger sweep into several specs (each with its own ``--out``).

Distributed execution
---------------------
Tasks carry file *paths*, never arrays: every worker must see the data (ground truth and predictions) at the
same paths as the client, as on a cluster's shared file system. Tasks are sent in batches (about four per worker
thread, at most :data:`MAX_BATCH` items) so that a 2000-image benchmark is not 2000 round trips. Workers return
their results; the client alone writes the cache and the outputs, so a worker lost mid-task costs only that
batch's retry.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from facenb import runner
from facenb.errors import InputError
from facenb.runner import Item, atomic_write

__all__ = [
    "KINDS",
    "BenchmarkSpec",
    "MethodSpec",
    "CampaignSpec",
    "load_spec",
    "parse_spec",
    "DaskExecutor",
    "CampaignResult",
    "run_campaign",
    "campaign_tasks",
    "load_results",
    "load_items",
    "load_curves",
    "campaign_status",
    "RESULT_COLUMNS",
    "MAX_BATCH",
    "batch_size",
    "leaderboards",
    "compare_reported",
    "demo_campaign",
    "now_curves",
    "item_distributions",
]

#: columns of the tidy results table (``results.csv`` / ``results.parquet``)
RESULT_COLUMNS = ("method", "benchmark", "kind", "split", "region", "metric", "statistic", "value", "unit",
                  "n_items", "n_total", "coverage", "settings_hash", "facenb_version")
#: largest number of tasks sent to a Dask worker in one batch
MAX_BATCH = 64
#: x axis of the NoW cumulative error curves (mm)
CURVE_X_MM = np.round(np.arange(0.0, 10.0001, 0.05), 4)
_STATUS_FILE = "status.json"


# =============================================================================================================
# the spec
# =============================================================================================================
@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark of a campaign: ``name`` (label), ``kind`` (``now``, ``realy``) and its resolved options."""

    name: str
    kind: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class MethodSpec:
    """One method: predictions folder per benchmark label, optional topology / template mask / reported name."""

    name: str
    predictions: Mapping[str, Path]
    topology: str | None = None
    template_mask: Path | None = None
    reported: str | None = None


@dataclass(frozen=True)
class CampaignSpec:
    """A parsed, validated campaign spec (see the module docstring for the YAML format)."""

    path: Path | None
    name: str
    benchmarks: Mapping[str, BenchmarkSpec]
    methods: Mapping[str, MethodSpec]

    def pairs(self) -> list[tuple[MethodSpec, BenchmarkSpec]]:
        """The (method, benchmark) pairs to score, in spec order."""
        return [(m, self.benchmarks[b]) for m in self.methods.values() for b in self.benchmarks
                if b in m.predictions]


# option -> (type, default, required, is_path, is_dir); a type of tuple = allowed values
_NOW_OPTIONS = {
    "dataset": (str, None, False, True, True),
    "split": (("val", "test"), "val", False, False, False),
    "image_list": (str, None, False, True, False),
    "split_label": (str, None, False, False, False),
    "scans": (str, None, False, True, True),
    "scan_landmarks": (str, None, False, True, True),
    "challenge": (("multiview_neutral", "multiview_expressions", "multiview_occlusions", "selfie"), None, False,
                  False, False),
    "metric": (bool, False, False, False, False),
    "pred_unit": (("m", "cm", "mm"), None, False, False, False),
    "clean_mesh": (bool, True, False, False, False),
    "solver": (("cg-legacy", "exact"), "cg-legacy", False, False, False),
}
_REALY_OPTIONS = {
    "keypoints": (str, None, True, True, True),
    "regions": (str, None, True, True, True),
    "scale": (str, None, True, True, False),
    "template": (str, "HIFI3D", False, False, False),
    "template_keypoints": (str, None, False, True, False),
    "template_mask": (str, None, False, True, False),
    "view": (("frontal", "side"), "frontal", False, False, False),
}
_STIRLING_OPTIONS = {
    "dataset": (str, None, True, True, True),
    "subset": (("all", "HQ", "LQ"), "all", False, False, False),
    "scans": (str, None, False, True, True),
    "annotations": (str, None, False, True, True),
    "aggregate": (("pooled", "per-image"), "pooled", False, False, False),
    "reflection": (("best", "forbid"), "best", False, False, False),
    "scaling": (bool, True, False, False, False),
    "mask_rule": (("official", "pre-d1645f4"), "official", False, False, False),
}
_METHOD_KEYS = ("predictions", "topology", "template_mask", "reported")


def _spec_error(spec_path: Path | None, key: str, message: str, fix: str) -> InputError:
    return InputError(f"{key}: {message}", spec_path, fix)


def _resolve(value: str, base: Path) -> Path:
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else (base / p)


def _parse_options(name: str, raw: Mapping, table: Mapping, spec_path: Path | None, base: Path) -> dict:
    key0 = f"benchmarks.{name}"
    unknown = [k for k in raw if k not in table and k != "kind"]
    if unknown:
        raise _spec_error(spec_path, f"{key0}.{unknown[0]}", "unknown option",
                          "use one of " + ", ".join(sorted(table)))
    out = {}
    for opt, (typ, default, required, is_path, is_dir) in table.items():
        key = f"{key0}.{opt}"
        v = raw.get(opt, default)
        if v is None:
            if required:
                raise _spec_error(spec_path, key, "missing", f"give the {opt} path of benchmark {name}")
            out[opt] = None
            continue
        if isinstance(typ, tuple):
            if v not in typ:
                raise _spec_error(spec_path, key, f"{v!r} is not allowed", "use one of " + ", ".join(typ))
        elif typ is bool:
            if not isinstance(v, bool):
                raise _spec_error(spec_path, key, f"{v!r} is not true/false", "write true or false")
        elif not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise _spec_error(spec_path, key, f"{v!r} is not a string", "write a path or a name")
        if is_path:
            p = _resolve(str(v), base)
            if is_dir and not p.is_dir():
                raise _spec_error(spec_path, key, f"folder not found: {p}", "fix the path (relative paths are "
                                  "relative to the spec file)")
            if not is_dir and not p.is_file():
                raise _spec_error(spec_path, key, f"file not found: {p}", "fix the path (relative paths are "
                                  "relative to the spec file)")
            v = str(p.resolve())
        out[opt] = v
    return out


def parse_spec(raw: Any, spec_path: str | Path | None = None, base: str | Path | None = None) -> CampaignSpec:
    """Validate a campaign spec given as a mapping (the parsed YAML).

    Raises
    ------
    InputError
        One line naming the spec file and the offending key (``benchmarks.now_val.split: ...``) and the fix.
    """
    sp = Path(spec_path) if spec_path is not None else None
    base = Path(base) if base is not None else (sp.parent if sp is not None else Path.cwd())
    if not isinstance(raw, Mapping):
        raise InputError("a campaign spec must be a mapping with 'benchmarks' and 'methods'", sp,
                         "see the README section 'Campaigns' for an example spec")
    unknown = [k for k in raw if k not in ("name", "benchmarks", "methods", "version")]
    if unknown:
        raise _spec_error(sp, str(unknown[0]), "unknown top-level key", "use name, version, benchmarks, methods")
    if raw.get("version", 1) != 1:
        raise _spec_error(sp, "version", f"unsupported spec version {raw.get('version')!r}", "use version: 1")
    benches_raw = raw.get("benchmarks")
    if not isinstance(benches_raw, Mapping) or not benches_raw:
        raise _spec_error(sp, "benchmarks", "missing or empty", "name at least one benchmark (label: {kind: ...})")
    benches: dict[str, BenchmarkSpec] = {}
    for name, b in benches_raw.items():
        name = str(name)
        if not isinstance(b, Mapping):
            raise _spec_error(sp, f"benchmarks.{name}", "must be a mapping", "give kind: and its options")
        kind = b.get("kind")
        if kind not in KINDS:
            raise _spec_error(sp, f"benchmarks.{name}.kind", f"{kind!r} is not a supported benchmark kind",
                              "use one of " + ", ".join(KINDS))
        opts = _parse_options(name, b, KINDS[kind].options, sp, base)
        KINDS[kind].check(name, opts, sp)
        benches[name] = BenchmarkSpec(name, kind, opts)
    methods_raw = raw.get("methods")
    if not isinstance(methods_raw, Mapping) or not methods_raw:
        raise _spec_error(sp, "methods", "missing or empty", "name at least one method with its predictions")
    methods: dict[str, MethodSpec] = {}
    for name, m in methods_raw.items():
        name = str(name)
        key0 = f"methods.{name}"
        if "/" in name or name.strip() != name or not name:
            raise _spec_error(sp, key0, "method names must not contain '/' or surrounding blanks", "rename it")
        if not isinstance(m, Mapping):
            raise _spec_error(sp, key0, "must be a mapping", "give predictions: {benchmark: folder}")
        bad = [k for k in m if k not in _METHOD_KEYS]
        if bad:
            raise _spec_error(sp, f"{key0}.{bad[0]}", "unknown key", "use one of " + ", ".join(_METHOD_KEYS))
        preds_raw = m.get("predictions")
        if not isinstance(preds_raw, Mapping) or not preds_raw:
            raise _spec_error(sp, f"{key0}.predictions", "missing or empty",
                              "map each benchmark label to this method's predictions folder")
        preds = {}
        for b, folder in preds_raw.items():
            b = str(b)
            if b not in benches:
                raise _spec_error(sp, f"{key0}.predictions.{b}", "no benchmark with this label",
                                  "use one of " + ", ".join(benches))
            if not isinstance(folder, str):
                raise _spec_error(sp, f"{key0}.predictions.{b}", f"{folder!r} is not a path", "give a folder")
            p = _resolve(folder, base)
            if not p.is_dir():
                raise _spec_error(sp, f"{key0}.predictions.{b}", f"folder not found: {p}",
                                  "fix the path (relative paths are relative to the spec file)")
            preds[b] = p.resolve()
        mask = m.get("template_mask")
        if mask is not None:
            mp = _resolve(str(mask), base)
            if not mp.is_file():
                raise _spec_error(sp, f"{key0}.template_mask", f"file not found: {mp}", "fix the path")
            mask = mp.resolve()
        topo = m.get("topology")
        if topo is not None and not isinstance(topo, str):
            raise _spec_error(sp, f"{key0}.topology", f"{topo!r} is not a name or path", "e.g. FLAME or a .obj")
        if isinstance(topo, str) and (topo.lower().endswith(".obj") or "/" in topo):
            tp = _resolve(topo, base)
            if not tp.is_file():
                raise _spec_error(sp, f"{key0}.topology", f"template file not found: {tp}", "fix the path")
            topo = str(tp.resolve())
        rep = m.get("reported")
        methods[name] = MethodSpec(name, preds, topo, mask, None if rep is None else str(rep))
    return CampaignSpec(sp, str(raw.get("name") or (sp.stem if sp else "campaign")), benches, methods)


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign spec (YAML); see the module docstring for the format."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError("campaign spec not found", p, "give the path of a campaign YAML file")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"not valid YAML{where}", p, "fix the syntax") from None
    return parse_spec(raw, p)


# =============================================================================================================
# benchmark kinds: items, scoring of one item, aggregation
# =============================================================================================================
def _settings_hash(settings: Mapping) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


class _Kind:
    """A benchmark kind: option table, items of a (method, benchmark) pair, per-item scoring, aggregation."""

    name = ""
    options: Mapping = {}
    metric = ""

    def check(self, name: str, opts: dict, spec_path: Path | None) -> None:
        pass

    def split(self, opts: Mapping) -> str:
        raise NotImplementedError

    def items(self, bench: BenchmarkSpec, method: MethodSpec) -> tuple[list, dict]:
        raise NotImplementedError

    def aggregate(self, scored: Sequence, n_total: int) -> list[dict]:
        raise NotImplementedError


class _Now(_Kind):
    name = "now"
    options = _NOW_OPTIONS
    metric = "scan_to_mesh"

    def check(self, name, opts, spec_path):
        key = f"benchmarks.{name}"
        if opts["image_list"] is None and opts["dataset"] is None:
            raise _spec_error(spec_path, f"{key}.dataset", "missing", "give the NoW dataset folder (or image_list "
                              "with scans and scan_landmarks)")
        if opts["dataset"] is None and (opts["scans"] is None or opts["scan_landmarks"] is None):
            raise _spec_error(spec_path, f"{key}.scans", "without dataset, scans and scan_landmarks are needed",
                              "give dataset: NOW_DIR, or scans: and scan_landmarks:")
        if opts["metric"] and opts["pred_unit"] is None:
            raise _spec_error(spec_path, f"{key}.pred_unit", "metric evaluation needs the prediction unit",
                              "give pred_unit: m, cm or mm")

    def split(self, opts):
        if opts.get("split_label"):
            return str(opts["split_label"])
        base = Path(opts["image_list"]).stem if opts.get("image_list") else (
            "validation" if opts["split"] == "val" else "test")
        return base + ("-metric" if opts["metric"] else "")

    def settings(self, opts) -> dict:
        return {"metric": opts["metric"], "pred_unit": opts["pred_unit"], "clean_mesh": opts["clean_mesh"],
                "solver": opts["solver"]}

    def items(self, bench, method):
        from facenb.benchmarks import now

        o = bench.options
        images = now.list_images(o["dataset"], method.predictions[bench.name], split=o["split"],
                                 image_list=o["image_list"], challenge=o["challenge"], scans_dir=o["scans"],
                                 scan_landmarks_dir=o["scan_landmarks"])
        items = now.dataset_items(images)  # the NoW runner's items (missing predictions noted there)
        return [(it, {"challenge": img.challenge}) for it, img in zip(items, images)], self.settings(o)

    def aggregate(self, scored, n_total):
        from facenb.benchmarks import now

        rows, curves = [], []
        groups = {"all": scored}
        for ch in now.CHALLENGES:
            sel = [(meta, v) for meta, v in scored if meta["challenge"] == ch]
            if sel:
                groups[ch] = sel
        for g, sel in groups.items():
            dists = [np.asarray(v["distances"], dtype=np.float64) for _, v in sel]
            st = now.statistics(dists)
            total = n_total if g == "all" else None
            for stat, val in (("median", st.median_mm), ("mean", st.mean_mm), ("std", st.std_mm)):
                rows.append({"region": g, "statistic": stat, "value": float(val), "n_items": len(sel),
                             "n_total": total})
            allv = np.sort(np.concatenate(dists)) if dists else np.zeros(0)
            frac = np.searchsorted(allv, CURVE_X_MM, side="right") / max(len(allv), 1)
            curves += [{"region": g, "x_mm": float(x), "fraction": float(f)} for x, f in zip(CURVE_X_MM, frac)]
        return rows, curves


class _Realy(_Kind):
    name = "realy"
    options = _REALY_OPTIONS
    metric = "region_error"

    def split(self, opts):
        return opts["view"]

    def items(self, bench, method):
        from facenb.benchmarks import realy

        o = bench.options
        topo = method.topology or o["template"]
        tmpl = realy.load_template(topo, o["template_keypoints"] if method.topology is None else None)
        mask = method.template_mask or o["template_mask"]
        if mask is not None:
            realy._read_mask(mask, tmpl.n_vertices)  # a bad mask is a spec error, found before anything runs
        # JSON-able and path-only (workers may have no data mirror): the template travels as its files
        settings = {"version": realy.folder._CACHE_VERSION, "template": str(Path(tmpl.obj_path).resolve()),
                    "template_keypoints": str(Path(tmpl.keypoints_path).resolve()),
                    "template_fingerprint": tmpl.fingerprint(), "template_mask": None if mask is None else str(mask),
                    "view": o["view"]}
        kdir, rdir = Path(o["keypoints"]), Path(o["regions"])
        scales = realy._read_scale(o["scale"])
        out = []
        for pred in realy.list_predictions(method.predictions[bench.name]):
            try:
                sid = realy._subject_id(pred)
            except InputError as exc:
                out.append((Item(pred.stem, (), {}, str(exc)), {}))
                continue
            need = [kdir / f"{sid}.obj"] + [rdir / str(sid) / f"{r}.obj" for r in realy.REGIONS]
            absent = [p for p in need if not p.is_file()]
            if absent or not 1 <= sid <= len(scales):
                why = f"{absent[0]}: no ground truth for subject {sid}" if absent else \
                    f"{o['scale']}: no metrical scale line for subject {sid}"
                out.append((Item(pred.stem, (), {}, f"{why} (missing subject)"), {}))
                continue
            out.append((realy.folder_items([pred], kdir, rdir, scales)[0], {}))
        return out, settings

    def aggregate(self, scored, n_total):
        from facenb.benchmarks import realy

        written = {r: [float(realy.official_truncate(v[f"{r}_mm"])) for _, v in scored] for r in realy.REGIONS}
        stats = realy.official_statistics(written)
        rows = []
        for region, s in stats.items():
            for stat, val in (("mean", s.mean), ("median", s.median), ("std", s.std)):
                if region == "all" and stat != "mean":
                    continue
                rows.append({"region": region, "statistic": stat, "value": float(val), "n_items": len(scored),
                             "n_total": n_total})
        return rows, []


class _Stirling(_Kind):
    name = "stirling"
    options = _STIRLING_OPTIONS
    metric = "scan_to_mesh"

    def split(self, opts):
        return opts["subset"]

    def items(self, bench, method):
        from facenb.benchmarks import stirling

        o = bench.options
        images = stirling.list_images(o["dataset"], method.predictions[bench.name], o["subset"],
                                      scans_dir=o["scans"], annotations_dir=o["annotations"])
        items = stirling.build_items(images)
        settings = {**stirling._settings(stirling.StirlingOptions(o["reflection"], o["scaling"], o["mask_rule"]),
                                         None), "aggregate": o["aggregate"]}
        return [(it, {"subset": im.subset}) for it, im in zip(items, images)], settings

    def aggregate(self, scored, n_total, settings=None):
        """Per subset (``split`` HQ / LQ, and ``all`` when both): the FG2018 statistics of
        :func:`facenb.benchmarks.stirling.evaluate_dataset` -- pooled over all masked scan vertices (default) or
        the mean over images (``aggregate: per-image``); ``rmse`` is FG2018's 3D-RMSE."""
        from facenb.benchmarks import stirling

        agg = (settings or {}).get("aggregate", "pooled")
        groups = {}
        for sub in ("HQ", "LQ"):
            sel = [(m, v) for m, v in scored if m["subset"] == sub]
            if sel:
                groups[sub] = sel
        if len(groups) > 1:
            groups["all"] = scored
        rows = []
        for sub, sel in groups.items():
            recs = [{"key": str(i), "status": "ok", **{k: v[k] for k in ("mean_mm", "median_mm", "rmse_mm")}}
                    for i, (_, v) in enumerate(sel)]
            values = {str(i): v for i, (_, v) in enumerate(sel)}
            for stat in ("mean", "median", "rmse"):
                a = stirling._aggregate(recs, values, stat, agg)
                rows.append({"split": sub, "region": "all", "statistic": stat, "value": float(a["value_mm"]),
                             "n_items": len(sel), "n_total": None, "subset": sub})
            rows.append({"split": sub, "region": "all", "statistic": "std", "value": float(a["std_mm"]),
                         "n_items": len(sel), "n_total": None, "subset": sub})
        return rows, []


KINDS: dict[str, _Kind] = {"now": _Now(), "realy": _Realy(), "stirling": _Stirling()}


# ---------------------------------------------------------------------------------------- per-item scoring
# The benchmarks' own runner functions score an item (now.score_image, realy.score_subject); a campaign task
# carries the benchmark's JSON-able settings, and objects (a REALY template) are rebuilt from their files once per
# worker process.
def _score_now(item, settings: dict) -> dict:
    from facenb.benchmarks import now

    return now.score_image(item, settings)


@lru_cache(maxsize=8)
def _realy_template(obj: str, keypoints: str):
    from facenb.benchmarks import realy

    return realy.load_template(obj, keypoints)


@lru_cache(maxsize=8)
def _realy_mask(path: str, n_vertices: int):
    from facenb.benchmarks import realy

    return realy._read_mask(path, n_vertices)


def _score_realy(item, settings: dict) -> dict:
    from facenb.benchmarks import realy

    tmpl = _realy_template(settings["template"], settings["template_keypoints"])
    mask = None if settings["template_mask"] is None else _realy_mask(settings["template_mask"], tmpl.n_vertices)
    return realy.score_subject(item, {**settings, "_template": tmpl, "_mask": mask, "_region_jobs": 1,
                                      "_meshes_dir": None})


def _score_stirling(item, settings: dict) -> dict:
    from facenb.benchmarks import stirling

    return stirling.score_one(item, settings)


_SCORERS: dict[str, Callable] = {"now": _score_now, "realy": _score_realy, "stirling": _score_stirling}


def _score_task(item, settings: dict) -> dict:
    """The runner's ``score_one`` for campaign tasks: unwrap the benchmark's item and settings, dispatch.

    BLAS runs single-threaded, wherever the task runs: a multi-threaded BLAS reduction rounds differently (NoW
    statistics moved by ~1e-8 mm between a 2-thread client and single-threaded workers), and every worker is given
    one core anyway. So serial, processes and Dask give identical numbers.
    """
    from threadpoolctl import threadpool_limits

    p = item.params
    inner = Item(p["key"], tuple(item.inputs), p["item"], None)
    with threadpool_limits(limits=1):
        return _SCORERS[p["kind"]](inner, p["settings"])


# =============================================================================================================
# executors
# =============================================================================================================
def _run_batch(fn: Callable, batch: Sequence) -> list:
    """Run ``fn`` over a batch of tasks on a worker; returns the results in order."""
    return [fn(t) for t in batch]


def batch_size(n_tasks: int, n_threads: int, max_batch: int = MAX_BATCH) -> int:
    """Tasks per Dask batch: about four batches per worker thread, at most ``max_batch``, at least 1."""
    return int(max(1, min(max_batch, math.ceil(n_tasks / max(1, 4 * n_threads)))))


class DaskExecutor:
    """The runner's distributed executor slot (``submit_all``) on a ``distributed.Client``.

    Tasks are sent in batches (:func:`batch_size`) with ``retries``; the workers only compute and return
    (``fn`` and the tasks must be picklable and import on the workers), the caller writes every file. A worker lost
    mid-batch makes the scheduler run that batch again on another worker; a batch that cannot run at all (e.g.
    ``KilledWorker`` after repeated losses) yields the exception for each of its tasks (they fail, the others go on).

    Parameters
    ----------
    client : distributed.Client
    retries : int
        Retries of a batch whose task raised (a lost worker is rescheduled by the scheduler without using them).
    max_batch : int
    """

    def __init__(self, client, *, retries: int = 3, max_batch: int = MAX_BATCH):
        self.client = client
        self.retries = retries
        self.max_batch = max_batch
        self.batches = 0

    def n_threads(self) -> int:
        try:
            return max(1, int(sum(self.client.nthreads().values())))
        except Exception:  # pragma: no cover - scheduler unreachable: small batches, still correct
            return 1

    def submit_all(self, fn: Callable, tasks: Sequence) -> Iterable[tuple[int, Any]]:
        """Yield ``(index, fn(tasks[index]) or exception)`` as batches finish (any order)."""
        from distributed import as_completed

        tasks = list(tasks)
        if not tasks:
            return
        size = batch_size(len(tasks), self.n_threads(), self.max_batch)
        starts = list(range(0, len(tasks), size))
        self.batches += len(starts)
        futures = {}
        for s in starts:
            fut = self.client.submit(_run_batch, fn, tasks[s:s + size], pure=False, retries=self.retries)
            futures[fut] = s
        try:
            for fut in as_completed(list(futures)):
                s = futures[fut]
                n = min(size, len(tasks) - s)
                try:
                    results = fut.result()
                except Exception as exc:  # the batch could not run (KilledWorker, lost scheduler, ...)
                    results = [exc] * n
                for k, r in enumerate(results):
                    yield s + k, r
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)


def _dask_client(scheduler: str | None, jobs: int):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("the dask executor needs dask[distributed]", None,
                         "pip install 'facenb[distributed]'") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler {scheduler} ({type(exc).__name__})", None,
                             "start `dask scheduler` and workers, check the address (tcp://HOST:PORT)") from None
    cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=50)
    return Client(cluster), cluster


# =============================================================================================================
# running a campaign
# =============================================================================================================
class CampaignResult(NamedTuple):
    """What :func:`run_campaign` did.

    Attributes
    ----------
    out : Path
    results : DataFrame
        The tidy table (:data:`RESULT_COLUMNS`).
    items : DataFrame
        One row per task with status, reason, seconds and scalar results.
    run : facenb.runner.RunResult
    seconds : float
    """

    out: Path
    results: pd.DataFrame
    items: pd.DataFrame
    run: Any
    seconds: float

    def counts(self) -> dict:
        return self.run.counts()

    def summary(self) -> dict:
        return {"out": str(self.out), **self.counts(), "n_results": len(self.results), "seconds": self.seconds}

    def to_frame(self) -> pd.DataFrame:
        return self.results


def campaign_tasks(spec: CampaignSpec) -> tuple[list, dict]:
    """Every (method, benchmark, item) of ``spec`` as a runner :class:`~facenb.runner.Item`.

    Returns
    -------
    tasks : list of Item
        Keys ``<method>/<benchmark>/<item key>``; ``params`` hold the benchmark kind, its settings and the item's
        own parameters (all hashed into the cache key).
    pairs : dict
        ``(method, benchmark) -> (list of (benchmark item, campaign metadata), settings)``.
    """
    tasks, pairs = [], {}
    for method, bench in spec.pairs():
        kind = KINDS[bench.kind]
        items, settings = kind.items(bench, method)
        pairs[(method.name, bench.name)] = (items, settings)
        for it, meta in items:
            params = {"kind": bench.kind, "settings": settings, "key": it.key, "item": dict(it.params),
                      "meta": meta}
            tasks.append(Item(f"{method.name}/{bench.name}/{it.key}", tuple(it.inputs), params, it.missing))
    return tasks, pairs


def _scalars(value: Mapping | None) -> dict:
    if not value:
        return {}
    out = {}
    for k, v in value.items():
        if k == "seconds":  # the payload's own compute time; the table's `seconds` is this run's
            k = "compute_seconds"
        if isinstance(v, (bool, int, float, str, np.integer, np.floating)):
            out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def run_campaign(spec: CampaignSpec | str | Path, out: str | Path, *, executor: str = "serial",
                 scheduler: str | None = None, jobs: int = 1, progress: bool = True, retries: int = 3,
                 client=None, log: Callable[[str], None] | None = None) -> CampaignResult:
    """Score every (method, benchmark, item) of a campaign and write the tidy tables (module docstring).

    Parameters
    ----------
    spec : CampaignSpec or path of the YAML spec
    out : path
        Campaign folder (cache, results, status); a rerun scores only tasks whose inputs or settings changed.
    executor : ``serial`` | ``processes`` | ``dask``
    scheduler : ``tcp://HOST:PORT``, optional
        Dask scheduler; without it ``--executor dask`` starts a ``LocalCluster`` of ``jobs`` single-threaded
        worker processes.
    jobs : int
        Worker processes (``processes``; local Dask cluster).
    retries : int
        Dask retries per batch.
    client : distributed.Client, optional
        Use this client (``executor`` is then ``dask``).

    Raises
    ------
    InputError
        Bad spec, unreachable scheduler, a concurrent run on ``out`` (the runner's lock).
    """
    t0 = time.perf_counter()
    if not isinstance(spec, CampaignSpec):
        spec = load_spec(spec)
    if executor not in ("serial", "processes", "dask"):
        raise InputError(f"unknown executor {executor!r}", None, "use serial, processes or dask")
    if jobs < 1:
        raise InputError("--jobs must be at least 1", None, "pass --jobs 1 or more")
    if scheduler and executor != "dask" and client is None:
        raise InputError("--scheduler needs --executor dask", None, "add --executor dask")
    log = log or (lambda s: print(s, file=sys.stderr))
    out = Path(out)
    tasks, pairs = campaign_tasks(spec)
    if not tasks:
        raise InputError("the campaign has no items to score", spec.path, "check the predictions folders")
    out.mkdir(parents=True, exist_ok=True)
    own_client, cluster = None, None
    try:
        if client is not None or executor == "dask":
            if client is None:
                client, cluster = _dask_client(scheduler, jobs)
                own_client = client
            try:  # the link only when the scheduler serves a dashboard (needs bokeh)
                link = client.dashboard_link if "dashboard" in client.scheduler_info().get("services", {}) else None
            except Exception:  # pragma: no cover - an older scheduler without the info: no link
                link = None
            log(f"facenb: Dask scheduler {client.scheduler.address}, {len(client.nthreads())} worker(s)"
                + (f", dashboard {link}" if link else ""))
            ex: Any = DaskExecutor(client, retries=retries)
        else:
            ex = executor
        result = runner.run(tasks, _score_task, {"campaign": 1}, out, executor=ex, jobs=jobs, progress=progress,
                            desc=f"campaign {spec.name}")
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
    results, items, curves = _tables(spec, tasks, pairs, result.outcomes)
    _write_tables(out, spec, results, items, curves, time.perf_counter() - t0)
    return CampaignResult(out, results, items, result, time.perf_counter() - t0)


def _tables(spec: CampaignSpec, tasks: Sequence, pairs: Mapping, outcomes: Sequence):
    from facenb import __version__

    by_pair: dict[tuple[str, str], list] = {}
    item_rows = []
    for task, o in zip(tasks, outcomes):
        method, bench = task.key.split("/", 2)[:2]
        by_pair.setdefault((method, bench), []).append((task, o))
        item_rows.append({"method": method, "benchmark": bench, "kind": task.params["kind"],
                          "item": task.params["key"], "status": o.status, "reason": o.reason or "",
                          "seconds": float(o.seconds or 0.0), "challenge": task.params["meta"].get("challenge", ""),
                          **_scalars(o.value)})
    rows, curve_rows = [], []
    for (method, bname), lst in by_pair.items():
        bench = spec.benchmarks[bname]
        kind = KINDS[bench.kind]
        settings = pairs[(method, bname)][1]
        scored = [(t.params["meta"], o.value) for t, o in lst if o.status in ("ok", "cached")]
        n_total = len(lst)
        base = {"method": method, "benchmark": bname, "kind": bench.kind, "split": kind.split(bench.options),
                "metric": kind.metric, "unit": "mm", "settings_hash": _settings_hash(settings),
                "facenb_version": __version__}
        if not scored:
            continue
        agg, curves = kind.aggregate(scored, n_total, settings) if bench.kind == "stirling" else \
            kind.aggregate(scored, n_total)
        for r in agg:
            r = dict(r)
            group = r.pop("subset", None)
            if r["n_total"] is not None:
                n_tot = r["n_total"]
            elif group is not None:  # a Stirling subset (``all``: every item)
                n_tot = sum(1 for t, _ in lst if group == "all" or t.params["meta"].get("subset") == group)
            else:  # a NoW challenge
                n_tot = sum(1 for t, _ in lst if t.params["meta"].get("challenge") == r["region"])
            rows.append({**base, **r, "n_total": n_tot, "coverage": r["n_items"] / n_tot if n_tot else float("nan")})
        curve_rows += [{"method": method, "benchmark": bname, **c} for c in curves]
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    items = pd.DataFrame(item_rows)
    curves = pd.DataFrame(curve_rows, columns=["method", "benchmark", "region", "x_mm", "fraction"])
    return results, items, curves




def _write_tables(out: Path, spec: CampaignSpec, results: pd.DataFrame, items: pd.DataFrame,
                  curves: pd.DataFrame, seconds: float) -> None:
    from facenb import __version__

    # full precision (shortest round-trip text): the CSV is the same table as the Parquet copy, value for value
    atomic_write(out / "results.csv", lambda p: results.to_csv(p, index=False))
    atomic_write(out / "items.csv", lambda p: items.to_csv(p, index=False))
    atomic_write(out / "curves.csv", lambda p: curves.to_csv(p, index=False, float_format="%.6g"))
    try:
        import pyarrow  # noqa: F401

        atomic_write(out / "results.parquet", lambda p: results.to_parquet(p, index=False))
        atomic_write(out / "items.parquet", lambda p: items.to_parquet(p, index=False))
    except ImportError as exc:  # the CSV copies are complete; Parquet needs facenb[distributed] (pyarrow >= 26 needs
        # numpy >= 2: with numpy 1.26 pyarrow does not import and only the CSV copies are written)
        why = str(exc).splitlines()[0] if str(exc) else "not installed"
        print(f"facenb: warning: no Parquet copy, pyarrow unusable ({why}); the CSV copies are complete "
              "(pip install 'facenb[distributed]' with numpy >= 2 for Parquet)", file=sys.stderr)
    pairs = []
    for (m, b), g in items.groupby(["method", "benchmark"], sort=False):
        counts = g["status"].value_counts().to_dict()
        pairs.append({"method": m, "benchmark": b, "n_items": len(g),
                      **{k: int(counts.get(k, 0)) for k in ("ok", "cached", "missing", "failed")}})
    bad = items[items["status"].isin(["missing", "failed"])]
    status = {"campaign": spec.name, "spec": None if spec.path is None else str(spec.path.resolve()),
              "facenb_version": __version__, "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "seconds": round(seconds, 3), "pairs": pairs,
              "methods": {m.name: {"reported": m.reported, "topology": m.topology} for m in spec.methods.values()},
              "problems": [{"task": f"{r.method}/{r.benchmark}/{r.item}", "status": r.status, "reason": r.reason}
                           for r in bad.itertuples()]}
    atomic_write(out / _STATUS_FILE, lambda p: p.write_text(json.dumps(status, indent=1)))


# =============================================================================================================
# reading a campaign folder
# =============================================================================================================
def _campaign_file(folder: str | Path, name: str) -> Path:
    d = Path(folder)
    if not d.is_dir():
        raise InputError("campaign folder not found", d, "give the --out folder of `facenb campaign run`")
    p = d / name
    if not p.is_file():
        raise InputError(f"no {name} in this folder", d, "run `facenb campaign run SPEC --out DIR` first")
    return p


def _read_table(path: Path, empty_is_na: bool = True) -> pd.DataFrame:
    """A campaign CSV table, value for value: floats with the round-trip parser (pandas < 3's default misreads
    ~1 in 4 full-precision floats by an ulp; measured: pandas 2.1.0, 24,214 of 100,000 random floats); with
    ``empty_is_na`` only empty cells are missing (a text such as "NA" or "null" stays text)."""
    if empty_is_na:
        return pd.read_csv(path, keep_default_na=False, na_values=[""], float_precision="round_trip")
    return pd.read_csv(path, float_precision="round_trip")


def load_items(folder: str | Path) -> pd.DataFrame:
    """The per-task table of a campaign folder (``items.csv``)."""
    return _read_table(_campaign_file(folder, "items.csv"))


def load_curves(folder: str | Path) -> pd.DataFrame:
    """The NoW cumulative error curves of a campaign folder (``curves.csv``)."""
    return _read_table(_campaign_file(folder, "curves.csv"), empty_is_na=False)


def load_results(folder: str | Path, *, as_reported: bool = False) -> pd.DataFrame:
    """The tidy results table of a campaign folder (``results.parquet`` if readable, else ``results.csv``).

    Parameters
    ----------
    as_reported : bool
        Return the rows in the layout of :func:`facenb.results.load_reported` (its columns, plus ``tier = "R"``
        -- recomputed here -- and the campaign columns), with ``source_type = "facenb campaign"`` and
        ``source_ref`` the campaign folder; NoW ``split`` uses the published vocabulary (``validation``,
        ``test``, ``-metric``), a method's ``reported`` name (spec) becomes ``method`` and the campaign's own
        name goes to ``note``.
    """
    path = _campaign_file(folder, "results.csv")
    pq = path.with_suffix(".parquet")
    df = None
    if pq.is_file():
        try:
            df = pd.read_parquet(pq)
        except Exception:  # pyarrow absent or file damaged: the CSV is the same table
            df = None
    if df is None:
        df = _read_table(path)
    if not as_reported:
        return df
    status_file = Path(folder) / _STATUS_FILE
    alias = {}
    if status_file.is_file():
        try:
            alias = {m: v.get("reported") for m, v in json.loads(status_file.read_text())["methods"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            alias = {}
    rep = df.copy()
    rep["note"] = "campaign method " + rep["method"].astype(str)
    rep["method"] = [alias.get(m) or m for m in rep["method"]]
    rep["benchmark"] = rep["kind"]
    rep["source_type"] = "facenb campaign"
    rep["source_ref"] = str(Path(folder).resolve())
    rep["verified"] = "yes"
    rep["claim_id"] = ""
    rep["tier"] = "R"
    rep["value_text"] = rep["value"].map(lambda v: f"{v:.6f}")
    rep["decimals"] = 6
    front = ["method", "benchmark", "split", "region", "metric", "statistic", "value", "unit", "source_type",
             "source_ref", "verified", "claim_id", "note", "tier", "value_text", "decimals"]
    rest = [c for c in rep.columns if c not in front]
    return rep[front + rest]


def campaign_status(folder: str | Path) -> dict:
    """``status.json`` of a campaign folder plus ``running`` (the pid holding the runner's lock, if alive)."""
    d = Path(folder)
    running = _lock_pid(d) if d.is_dir() else None
    if running is not None and not (d / _STATUS_FILE).is_file():
        return {"campaign": d.name, "pairs": [], "problems": [], "running": running}
    text = _campaign_file(folder, _STATUS_FILE).read_text()
    try:
        st = json.loads(text)
    except ValueError:
        raise InputError(f"{_STATUS_FILE} is damaged", d, "rerun `facenb campaign run SPEC --out DIR`") from None
    st["running"] = running
    return st


def _lock_pid(folder: Path) -> int | None:
    lock = folder / ".facenb.lock"
    if not lock.is_file():
        return None
    try:
        pid = int(lock.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (ValueError, IndexError, OSError):
        return None


# =============================================================================================================
# notebook helpers (notebooks/30_campaign.ipynb)
# =============================================================================================================
def leaderboards(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One table per benchmark label: methods x columns, best first.

    NoW: ``median, mean, std`` over all images (mm) plus the median per challenge; REALY: the mean per region and
    ``all``; Stirling: mean and RMSE per subset. Rows sorted by the benchmark's headline number (NoW median, REALY
    ``all``, Stirling ``all`` mean).
    """
    out = {}
    for bench, g in results.groupby("benchmark", sort=False):
        kind = g["kind"].iloc[0]
        if kind == "now":
            t = g[g.region == "all"].pivot_table(index="method", columns="statistic", values="value",
                                                 aggfunc="first")[["median", "mean", "std"]]
            ch = g[(g.region != "all") & (g.statistic == "median")].pivot_table(
                index="method", columns="region", values="value", aggfunc="first")
            t = t.join(ch.add_prefix("median "))
            cov = g[g.region == "all"].groupby("method")["coverage"].first()
            t = t.join(cov).sort_values("median")
        elif kind == "stirling":
            t = g[g.statistic.isin(["mean", "rmse"])].pivot_table(index="method", columns=["split", "statistic"],
                                                                  values="value", aggfunc="first")
            t.columns = [f"{a} {b}" for a, b in t.columns]
            head = "all mean" if "all mean" in t.columns else t.columns[0]
            t = t.join(g.groupby("method")["coverage"].min()).sort_values(head)
        else:
            order = ["nose", "mouth", "forehead", "cheek", "all"]
            t = g[g.statistic == "mean"].pivot_table(index="method", columns="region", values="value",
                                                     aggfunc="first")
            t = t[[c for c in order if c in t.columns]]
            t = t.join(g[g.region == "all"].groupby("method")["coverage"].first()).sort_values("all")
        t.columns.name = None
        out[bench] = t
    return out


def compare_reported(folder: str | Path, reported: pd.DataFrame | None = None) -> pd.DataFrame:
    """Campaign numbers next to the published ones for the same (method, benchmark, split, region, statistic).

    Methods are matched by their spec ``reported:`` name (else their own name); the published row is the
    best-supported source (:func:`facenb.results.pick`). Columns: the key, ``campaign_method``, ``recomputed``,
    ``published`` (as printed), ``difference`` (recomputed - published), ``source_ref``. Empty when nothing
    matches.
    """
    from facenb import results as R

    rep = R.load_reported() if reported is None else reported
    mine = load_results(folder, as_reported=True)
    picked = R.pick(rep)
    key = ["method", "benchmark", "split", "region", "metric", "statistic"]
    m = mine.merge(picked[key + ["value", "value_text", "source_ref"]], on=key, suffixes=("", "_published"))
    cols = key + ["campaign_method", "recomputed", "published", "difference", "source_ref"]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m["campaign_method"] = m["note"].str.replace("campaign method ", "", regex=False)
    m["recomputed"] = m["value"]
    m["published"] = m["value_text_published"]
    m["difference"] = m["value"] - m["value_published"]
    m["source_ref"] = m["source_ref_published"]
    return m[cols].reset_index(drop=True)


def demo_campaign(conformance: str | Path, out: str | Path, *, progress: bool = False) -> Path:
    """Write and run a small campaign over the conformance cases (NoW ``challenge``: 4 images; REALY
    ``realy01_hifi3d_topology``: 1 subject, when the REALY templates are available) with one method, the cases'
    own predictions. Returns the campaign folder (``out/campaign``); the spec is ``out/demo_campaign.yaml``."""
    import yaml

    conf, out = Path(conformance), Path(out)
    ch = conf / "now" / "challenge"
    rc = conf / "realy" / "realy01_hifi3d_topology"
    if not (ch / "imagepathsvalidation.txt").is_file():
        raise InputError("no NoW conformance case 'challenge'", ch, "set FACENB_CONFORMANCE to the conformance folder")
    benches = {"now_challenge": {"kind": "now", "dataset": str(ch)}}
    preds = {"now_challenge": str(ch / "predictions")}
    try:
        from facenb.benchmarks import realy

        realy.load_template("HIFI3D")
        if rc.is_dir():
            benches["realy_hifi3d"] = {"kind": "realy", "keypoints": str(rc / "REALY_HIFI3D_keypoints"),
                                       "regions": str(rc / "REALY_scan_region"),
                                       "scale": str(rc / "metrical_scale.txt"), "template": "HIFI3D"}
            preds["realy_hifi3d"] = str(rc / "prediction")
    except InputError:  # no REALY templates here: the NoW part alone
        pass
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "demo_campaign.yaml"
    spec.write_text(yaml.safe_dump({"name": "conformance-demo", "benchmarks": benches,
                                    "methods": {"conformance": {"predictions": preds}}}, sort_keys=False))
    run_campaign(spec, out / "campaign", progress=progress)
    return out / "campaign"


def now_curves(folder: str | Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """NoW cumulative error curves of a campaign folder, per benchmark label and method: ``(x mm, percent of scan
    points within x)`` over all scored images (the input of :func:`facenb.plot.now_cumulative_matplotlib`)."""
    c = load_curves(folder)
    c = c[c.region == "all"]
    return {b: {m: (gm.x_mm.to_numpy(), 100.0 * gm.fraction.to_numpy()) for m, gm in g.groupby("method", sort=False)}
            for b, g in c.groupby("benchmark", sort=False)}


#: per-item value shown in the distributions of notebook 30, per benchmark kind: (column(s) of items.csv, label)
_ITEM_VALUE = {"now": (("median_mm",), "per-image median error (mm)"),
               "realy": (("nose_mm", "mouth_mm", "forehead_mm", "cheek_mm"), "per-subject mean of the 4 region "
                                                                              "errors (mm)"),
               "stirling": (("mean_mm",), "per-image mean error (mm)")}


def item_distributions(folder: str | Path) -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """Per benchmark label: ``(x label, {method: per-item values})`` of the scored items -- NoW: each image's
    median error; REALY: each subject's mean of its four region errors; Stirling: each image's mean error (mm)."""
    items = load_items(folder)
    items = items[items.status.isin(["ok", "cached"])]
    out = {}
    for bench, g in items.groupby("benchmark", sort=False):
        cols, label = _ITEM_VALUE[g["kind"].iloc[0]]
        vals = g[list(cols)].astype(float).mean(axis=1)
        out[bench] = (label, {m: vals[g.method == m].to_numpy() for m in g["method"].unique()})
    return out
