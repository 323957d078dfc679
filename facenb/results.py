"""Reported-results database: published benchmark numbers, their sources, and consistency checks.

Every published number facenb knows is one row of a tidy table (``data/reported/*.csv``); the seed papers'
own claims live in ``seeds/*.yaml``. This module loads and validates both, lets you query them as a
:class:`pandas.DataFrame`, and checks them for internal and cross-source consistency.

Table schema (one row per number per source)
--------------------------------------------
=============  ===================================================================================
column         meaning
=============  ===================================================================================
method         method name as facenb spells it (a source's own label, if different, is in ``note``)
benchmark      ``now``, ``realy``, ``aflw2000_3d``, ``florence``, ``stirling``, ``aflw_lfpa``
split          split / view / annotation: see :data:`BENCHMARKS` (e.g. REALY ``frontal`` / ``side``)
region         REALY region, AFLW2000-3D yaw bin (``0-30``, ``30-60``, ``60-90``, ``balanced``,
               ``all``) or ``all``
metric         what is measured, e.g. ``scan_to_mesh`` (NoW), ``region_error`` (REALY), ``nme_2d_68``
statistic      ``mean``, ``median`` or ``std`` over the benchmark's images/scans
value          the number exactly as the source prints it (its decimals set the rounding tolerance)
unit           ``mm`` or ``percent``; fixed per metric
source_type    ``paper``, ``official leaderboard``, ``repository README`` or ``third party``
source_ref     where: ``owner/repo@commit path`` or a URL (or ``seeds/<paper>.yaml`` for seed pages)
verified       ``yes`` if the value was read in the cited source itself, ``no`` if it was transcribed
               from an extract whose source could not be read
claim_id       id of the seed claim this row records (seed-page rows only), else empty
note           free text
=============  ===================================================================================

The key of a row is ``(method, benchmark, split, region, metric, statistic, source_ref)``: two rows with
the same key are an error, two rows differing only in ``source_ref`` are two sources for one number (and
a :func:`check` finding if they disagree).

Consistency checks (:func:`check`)
----------------------------------
``realy_all_mismatch``
    REALY's ``all`` is the mean of the four region means (REALY, Chai et al. ECCV 2022; the leaderboard's
    "all avg."): ``|all - (nose + mouth + forehead + cheek) / 4| > tol`` within one source.
``aflw_balanced_mismatch``
    The AFLW2000-3D balanced NME is the mean of the three yaw-bin means (3DDFA benchmark protocol):
    ``|balanced - (b0_30 + b30_60 + b60_90) / 3| > tol`` within one source.
``seed_vs_source``
    A seed claim (``seeds/*.yaml``) differs from the same number given by another source.
``source_conflict``
    Two (or more) non-seed sources give different values for the same number.
``median_above_mean``
    Within one source, the median exceeds the mean by more than the standard deviation -- impossible,
    since ``|mean - median| <= std`` holds for every distribution -- or, when no std is given, by more
    than ``rel_margin`` (default 10 %) of the mean. Error distributions are right-skewed, so either is a
    likely typo.
``seed_missing``
    A seed claim has no row with its ``claim_id`` in the table, or that row holds another key or value.

Rounding tolerance: two printed values agree when ``|a - b| <= 0.5 * 10**-min(da, db)`` where ``da, db``
are their printed decimals; a derived mean agrees with its inputs when
``|reported - computed| <= 0.5 * 10**-d_reported + 0.5 * 10**-d_inputs`` (a group whose numbers all end in
``0`` after the decimal point is taken as zero-padded: ``3.780, 4.540, 7.930 -> 5.420`` counts 2 decimals).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import pandas as pd
import yaml

from facenb.errors import InputError
from facenb.vocabulary import AFLW_YAW_BINS, REALY_REGIONS, SEED_METHODS

__all__ = [
    "COLUMNS",
    "BENCHMARKS",
    "SOURCE_TYPES",
    "STATISTICS",
    "KEY",
    "SEED_METHODS",
    "SeedClaim",
    "SeedPaper",
    "Finding",
    "default_data_dir",
    "default_seeds_dir",
    "load_reported",
    "load_seeds",
    "seed_claims_frame",
    "query",
    "pick",
    "wide",
    "Leaderboard",
    "leaderboard",
    "check",
    "findings_frame",
    "write_findings_json",
    "provenance",
]

COLUMNS = (
    "method", "benchmark", "split", "region", "metric", "statistic", "value", "unit",
    "source_type", "source_ref", "verified", "claim_id", "note",
)
REQUIRED = ("method", "benchmark", "split", "region", "metric", "statistic", "value", "unit",
            "source_type", "source_ref", "verified")
#: Measurement key (without the source).
MEASURE = ("method", "benchmark", "split", "region", "metric", "statistic")
#: Row key: one row per number per source.
KEY = MEASURE + ("source_ref",)

STATISTICS = ("mean", "median", "std")
SOURCE_TYPES = ("official leaderboard", "paper", "repository README", "third party")
#: Order in which :func:`pick` prefers sources (verified rows first, then this order).
SOURCE_PRIORITY = {t: i for i, t in enumerate(SOURCE_TYPES)}
#: AFLW2000-3D yaw bins (``facenb.vocabulary.AFLW_YAW_BINS``).
AFLW_BINS = AFLW_YAW_BINS

#: Allowed vocabulary per benchmark: splits, regions, and metric -> unit.
BENCHMARKS: dict[str, dict] = {
    "now": {
        "splits": ("test", "validation", "test-metric", "validation-metric"),
        "regions": ("all",),
        "metrics": {"scan_to_mesh": "mm"},
    },
    "realy": {
        "splits": ("frontal", "side"),
        "regions": REALY_REGIONS + ("all",),
        "metrics": {"region_error": "mm"},
    },
    "aflw2000_3d": {
        "splits": ("original", "reannotated"),
        "regions": AFLW_BINS + ("balanced", "all"),
        "metrics": {"nme_2d_68": "percent", "nme_3d_68": "percent", "nme_2d_dense": "percent",
                    "nme_3d_dense": "percent", "nme_3d_reconstruction": "percent"},
    },
    "florence": {
        "splits": ("all",),
        "regions": ("all",),
        "metrics": {"nme_3d_reconstruction": "percent", "shape_error": "mm"},
    },
    "stirling": {
        "splits": ("HQ", "LQ"),
        "regions": ("all",),
        "metrics": {"scan_to_mesh": "mm"},
    },
    "aflw_lfpa": {
        "splits": ("test",),
        "regions": ("all",),
        "metrics": {"nme_2d_sparse": "percent"},
    },
}
#: Plausible open ranges per unit (a value outside is a typo or a unit mix-up).
RANGES = {"mm": (0.0, 50.0), "percent": (0.0, 100.0)}

def default_data_dir() -> Path:
    """The published-results table shipped with facenb (the repository's ``data/reported/``, package resource
    ``facenb._resources.reported``; see :func:`facenb.data.resource_dir`)."""
    from facenb.data import resource_dir

    return resource_dir("reported")


def default_seeds_dir() -> Path:
    """The seed papers shipped with facenb (the repository's ``seeds/``, one YAML per paper; package resource
    ``facenb._resources.seeds``)."""
    from facenb.data import resource_dir

    return resource_dir("seeds")


# ----------------------------------------------------------------------------------------- validation
def _decimals(text: str) -> int:
    t = text.strip().lower()
    if "e" in t:
        mant, exp = t.split("e", 1)
        return max(0, _decimals(mant) - int(exp))
    return len(t.split(".", 1)[1]) if "." in t else 0


def _check_measure(rec: dict, where: str, path: Path) -> None:
    """Validate one record's vocabulary, unit and range; raise InputError naming ``where`` and the fix."""
    b = rec["benchmark"]
    if b not in BENCHMARKS:
        raise InputError(f"{where}: unknown benchmark {b!r}", path, f"use one of {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[b]
    if rec["split"] not in spec["splits"]:
        raise InputError(f"{where}: split {rec['split']!r} is not a {b} split", path,
                         f"use one of {', '.join(spec['splits'])}")
    if rec["region"] not in spec["regions"]:
        raise InputError(f"{where}: region {rec['region']!r} is not a {b} region or bin", path,
                         f"use one of {', '.join(spec['regions'])}")
    if rec["metric"] not in spec["metrics"]:
        raise InputError(f"{where}: metric {rec['metric']!r} is not a {b} metric", path,
                         f"use one of {', '.join(spec['metrics'])}")
    unit = spec["metrics"][rec["metric"]]
    if rec["unit"] != unit:
        raise InputError(f"{where}: unit {rec['unit']!r} for {b} {rec['metric']}", path,
                         f"write the value in {unit} and set unit to {unit!r}")
    if rec["statistic"] not in STATISTICS:
        raise InputError(f"{where}: statistic {rec['statistic']!r}", path, f"use one of {', '.join(STATISTICS)}")
    v = rec["value"]
    lo, hi = RANGES[unit]
    if not (math.isfinite(v) and lo < v < hi):
        raise InputError(f"{where}: value {v!r} {unit} is outside the plausible range ({lo}, {hi})", path,
                         "check for a typo or a unit mix-up (mm vs cm, percent vs fraction)")


def _validate_row(raw: dict, rownum: int, path: Path) -> dict:
    where = f"row {rownum}"
    missing = [c for c in REQUIRED if not (raw.get(c) or "").strip()]
    if missing:
        raise InputError(f"{where}: empty {', '.join(missing)}", path, "fill in every required column")
    rec = {c: (raw.get(c) or "").strip() for c in COLUMNS}
    where = f"row {rownum} ({rec['method']} {rec['benchmark']} {rec['split']} {rec['region']} {rec['statistic']})"
    text = rec["value"]
    try:
        rec["value"] = float(text)
    except ValueError:
        raise InputError(f"{where}: value {text!r} is not a number", path,
                         "write a plain decimal number (no units, no '%', no '+-')") from None
    rec["value_text"] = text
    rec["decimals"] = _decimals(text)
    if rec["source_type"] not in SOURCE_TYPES:
        raise InputError(f"{where}: source_type {rec['source_type']!r}", path, f"use one of {', '.join(SOURCE_TYPES)}")
    if rec["verified"] not in ("yes", "no"):
        raise InputError(f"{where}: verified {rec['verified']!r}", path, "write 'yes' or 'no'")
    _check_measure(rec, where, path)
    rec["file"] = str(path)
    rec["row"] = rownum
    return rec


def load_reported(source: str | Path | Iterable[str | Path] | None = None) -> pd.DataFrame:
    """Load and validate the published-results table.

    Parameters
    ----------
    source : path, iterable of paths, or None
        A directory (all its ``*.csv`` files), one CSV file, or several. ``None``: :func:`default_data_dir`.

    Returns
    -------
    pandas.DataFrame
        One row per number per source: the :data:`COLUMNS` (``value`` as float) plus ``value_text`` (as
        printed), ``decimals``, ``file`` and ``row`` (the CSV line number, header = 1).

    Raises
    ------
    InputError
        Missing file/directory, wrong header, a malformed row (naming file, row number and the fix), or two
        rows with the same key ``(method, benchmark, split, region, metric, statistic, source_ref)``.
    """
    paths = _csv_paths(default_data_dir() if source is None else source)
    records: list[dict] = []
    seen: dict[tuple, tuple[str, int]] = {}
    for path in paths:
        raw_bytes = Path(path).read_bytes()
        if b"\x00" in raw_bytes:
            raise InputError("not a text file (it holds NUL bytes)", path, "give a UTF-8 CSV of reported results")
        try:
            raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (invalid byte at offset {exc.start})", path,
                             "save the CSV as UTF-8") from None
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            absent = [c for c in COLUMNS if c not in header]
            if absent:
                raise InputError(f"missing column(s) {', '.join(absent)}", path,
                                 f"the header must be: {','.join(COLUMNS)}")
            extra = [c for c in header if c not in COLUMNS]
            if extra:
                raise InputError(f"unknown column(s) {', '.join(extra)}", path,
                                 f"the header must be: {','.join(COLUMNS)}")
            for i, raw in enumerate(reader, start=2):
                if None in raw:
                    raise InputError(f"row {i}: more fields than columns", path,
                                     "quote fields that contain commas")
                if not any((v or "").strip() for v in raw.values()):
                    continue
                rec = _validate_row(raw, i, path)
                key = tuple(rec[c] for c in KEY)
                if key in seen:
                    f0, r0 = seen[key]
                    raise InputError(
                        f"row {i} repeats the key of {Path(f0).name} row {r0} ({', '.join(key[:6])}; same source)",
                        path, "keep one row per number per source (delete or correct the duplicate)")
                seen[key] = (str(path), i)
                records.append(rec)
    cols = list(COLUMNS) + ["value_text", "decimals", "file", "row"]
    return pd.DataFrame.from_records(records, columns=cols)


def _csv_paths(source) -> list[Path]:
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():
            files = sorted(p.glob("*.csv"))
            if not files:
                raise InputError("no *.csv files in this directory", p, "point to data/reported")
            return files
        if not p.exists():
            raise InputError("reported-results table not found", p, "check the path (default: data/reported)")
        return [p]
    out = [Path(s) for s in source]
    for p in out:
        if not p.is_file():
            raise InputError("reported-results table not found", p, "check the path")
    return out


# ----------------------------------------------------------------------------------------------- seeds
@dataclass(frozen=True)
class SeedClaim:
    """One number on a seed paper's page.

    ``value`` in ``unit``; ``text`` is the value exactly as the page prints it; ``std`` is the std the page
    prints next to a mean (also recorded as its own ``std`` claim), else ``None``.
    """

    id: str
    paper: str
    method: str
    benchmark: str
    split: str
    region: str
    metric: str
    statistic: str
    value: float
    unit: str
    text: str
    page_label: str
    std: float | None = None
    note: str = ""
    file: str = ""


@dataclass(frozen=True)
class SeedPaper:
    """A seed paper's metadata and its claims."""

    paper: str
    method: str
    title: str
    authors: tuple[str, ...]
    year: int
    venue: str
    code: str | None
    seed_page: str
    page_source: str
    claims: tuple[SeedClaim, ...]
    file: str = ""
    arxiv: str | None = None


_SEED_FIELDS = ("paper", "method", "title", "authors", "year", "venue", "code", "seed_page", "page_source", "claims")
_CLAIM_FIELDS = ("id", "benchmark", "split", "region", "metric", "statistic", "value", "unit", "text", "page_label")


def load_seeds(source: str | Path | None = None) -> list[SeedPaper]:
    """Load and validate the seed papers (``seeds/*.yaml``).

    Parameters
    ----------
    source : path or None
        A directory of ``*.yaml`` files or one file. ``None``: :func:`default_seeds_dir`.

    Returns
    -------
    list of SeedPaper
        In file-name order.

    Raises
    ------
    InputError
        Missing fields, a claim outside the benchmark vocabulary, ``text`` that does not read as ``value``,
        or a claim id used twice.
    """
    p = default_seeds_dir() if source is None else Path(source)
    if p.is_dir():
        files = sorted(p.glob("*.yaml"))
        if not files:
            raise InputError("no *.yaml seed files in this directory", p, "point to seeds/")
    elif p.is_file():
        files = [p]
    else:
        raise InputError("seed file or directory not found", p, "check the path (default: seeds/)")
    papers: list[SeedPaper] = []
    ids: dict[str, str] = {}
    for f in files:
        try:
            d = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML ({str(exc).splitlines()[0]})", f, "fix the YAML syntax") from None
        if not isinstance(d, dict):
            raise InputError("a seed file must be a mapping", f, f"give the fields {', '.join(_SEED_FIELDS)}")
        absent = [k for k in _SEED_FIELDS if k not in d]
        if absent:
            raise InputError(f"missing field(s) {', '.join(absent)}", f, "add them (code may be null)")
        claims = []
        for i, c in enumerate(d["claims"] or [], start=1):
            where = f"claim {i} ({c.get('id', '?') if isinstance(c, dict) else '?'})"
            if not isinstance(c, dict):
                raise InputError(f"{where} is not a mapping", f, "write each claim as a mapping")
            absent = [k for k in _CLAIM_FIELDS if c.get(k) in (None, "")]
            if absent:
                raise InputError(f"{where}: missing {', '.join(absent)}", f, "fill in every claim field")
            rec = {k: c[k] for k in _CLAIM_FIELDS}
            rec = {k: (v if k == "value" else str(v)) for k, v in rec.items()}
            try:
                rec["value"] = float(rec["value"])
                printed = float(rec["text"].strip().rstrip("%"))
            except (TypeError, ValueError):
                raise InputError(f"{where}: value or text is not a number", f, "give value as a number and text as printed") from None
            if printed != rec["value"]:
                raise InputError(f"{where}: text {rec['text']!r} does not read as value {rec['value']}", f,
                                 "make value the number the page prints")
            _check_measure(rec, where, f)
            if rec["id"] in ids:
                raise InputError(f"{where}: claim id already used in {Path(ids[rec['id']]).name}", f, "make claim ids unique")
            ids[rec["id"]] = str(f)
            std = c.get("std")
            claims.append(SeedClaim(paper=str(d["paper"]), method=str(d["method"]),
                                    std=None if std is None else float(std), note=" ".join(str(c.get("note") or "").split()),
                                    file=str(f), **rec))
        papers.append(SeedPaper(
            paper=str(d["paper"]), method=str(d["method"]), title=str(d["title"]),
            authors=tuple(str(a) for a in d["authors"]), year=int(d["year"]), venue=str(d["venue"]),
            code=None if d["code"] is None else str(d["code"]), seed_page=str(d["seed_page"]),
            page_source=str(d["page_source"]), claims=tuple(claims), file=str(f),
            arxiv=None if d.get("arxiv") is None else str(d["arxiv"]),
        ))
    return papers


def seed_claims_frame(seeds: Sequence[SeedPaper]) -> pd.DataFrame:
    """All seed claims as a DataFrame (one row per claim, with ``paper``, ``id``, ``text``, ``file``)."""
    return pd.DataFrame([asdict(c) for p in seeds for c in p.claims])


# ----------------------------------------------------------------------------------------------- query
def query(df: pd.DataFrame, *, benchmark: str | Sequence[str] | None = None, method: str | Sequence[str] | None = None,
          split: str | Sequence[str] | None = None, region: str | Sequence[str] | None = None,
          metric: str | Sequence[str] | None = None, statistic: str | Sequence[str] | None = None,
          source_type: str | Sequence[str] | None = None, verified: bool | None = None) -> pd.DataFrame:
    """Rows of ``df`` matching every given filter (a string or a list of accepted values)."""
    mask = pd.Series(True, index=df.index)
    for col, want in (("benchmark", benchmark), ("method", method), ("split", split), ("region", region),
                      ("metric", metric), ("statistic", statistic), ("source_type", source_type)):
        if want is None:
            continue
        vals = [want] if isinstance(want, str) else list(want)
        mask &= df[col].isin(vals)
    if verified is not None:
        mask &= df["verified"].eq("yes" if verified else "no")
    return df[mask]


def pick(df: pd.DataFrame, **filters) -> pd.DataFrame:
    """One row per measurement: the best-supported source for each number.

    Preference: verified rows first, then :data:`SOURCE_PRIORITY` (official leaderboard, paper, repository
    README, third party), then table order. ``filters`` are passed to :func:`query`.
    """
    q = query(df, **filters).copy()
    if q.empty:
        return q
    q["_v"] = q["verified"].ne("yes").astype(int)
    q["_p"] = q["source_type"].map(SOURCE_PRIORITY)
    q["_o"] = range(len(q))
    q = q.sort_values(["_v", "_p", "_o"]).drop_duplicates(list(MEASURE), keep="first")
    return q.sort_values("_o").drop(columns=["_v", "_p", "_o"])


def wide(picked: pd.DataFrame, columns: str = "region", index: str = "method", order: Sequence[str] | None = None) -> pd.DataFrame:
    """Pivot picked rows to ``index x columns`` values (e.g. method x region); ``order`` fixes the columns."""
    t = picked.pivot_table(index=index, columns=columns, values="value", aggfunc="first")
    if order is not None:
        t = t.reindex(columns=[c for c in order if c in t.columns])
    t.columns.name = None
    return t


class Leaderboard(NamedTuple):
    """A cross-method table and the rows (one source per number) it was built from."""

    table: pd.DataFrame  #: methods x columns (regions, bins or statistics), values in the metric's unit
    rows: pd.DataFrame  #: the picked rows, with their sources


_LAYOUT = {
    # benchmark: (default metric, pivot column, column order, default statistic filter)
    "now": ("scan_to_mesh", "statistic", ("median", "mean", "std"), None),
    "realy": ("region_error", "region", REALY_REGIONS + ("all",), "mean"),
    "aflw2000_3d": ("nme_2d_68", "region", AFLW_BINS + ("balanced",), "mean"),
}


def leaderboard(df: pd.DataFrame, benchmark: str, split: str, *, metric: str | None = None,
                statistic: str | None = None, methods: Sequence[str] | None = None) -> Leaderboard:
    """Cross-method table for one benchmark split, one best-supported source per number (see :func:`pick`).

    NoW: ``method x (median, mean, std)``; REALY: ``method x (nose, mouth, forehead, cheek, all)`` of the given
    ``statistic`` (default mean); AFLW2000-3D: ``method x (0-30, 30-60, 60-90, balanced)`` NME (default
    ``nme_2d_68``).
    """
    if benchmark not in _LAYOUT:
        raise InputError(f"no leaderboard layout for benchmark {benchmark!r}", None, f"use one of {', '.join(_LAYOUT)}")
    m0, col, order, st0 = _LAYOUT[benchmark]
    rows = pick(df, benchmark=benchmark, split=split, metric=metric or m0, statistic=statistic or st0, method=methods)
    rows = rows[rows[col].isin(order)]
    if rows.empty:
        return Leaderboard(pd.DataFrame(columns=list(order)), rows)
    return Leaderboard(wide(rows, columns=col, order=order), rows)


# ---------------------------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class Finding:
    """One consistency finding.

    ``values`` and ``sources`` are parallel: ``values[i]`` is what ``sources[i]`` says (for within-source
    checks the last value is the one recomputed from the others and the sources repeat the one source).
    """

    kind: str
    method: str
    benchmark: str
    split: str
    key: str
    values: tuple[float, ...]
    sources: tuple[str, ...]
    detail: str
    verified: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["values"] = list(self.values)
        d["sources"] = list(self.sources)
        d["verified"] = list(self.verified)
        return d


def _agree(a: float, da: int, b: float, db: int) -> bool:
    return abs(a - b) <= 0.5 * 10.0 ** (-min(da, db)) + 1e-9


def _effective_decimals(reported: Sequence[str], inputs: Sequence[str]) -> tuple[int, int]:
    """Printed decimals of a derived value and of its inputs, undoing zero padding.

    A source that pads a whole row to a fixed width (``3.780, 4.540, 7.930 -> 5.420``) carries one
    decimal less than it prints: when every input has at least two decimals and ends in ``0``, one decimal is
    dropped from the inputs (and from the reported value if it ends in ``0`` too). Never more than one.
    """
    rep = [t.strip() for t in reported]
    inp = [t.strip() for t in inputs]
    if all("." in t and t.endswith("0") and _decimals(t) >= 2 for t in inp):
        inp = [t[:-1] for t in inp]
        rep = [t[:-1] if "." in t and t.endswith("0") and _decimals(t) >= 2 else t for t in rep]
    return min(_decimals(t) for t in rep), min(_decimals(t) for t in inp)


def _derived_tol(d_reported: int, d_inputs: int) -> float:
    return 0.5 * 10.0 ** (-d_reported) + 0.5 * 10.0 ** (-d_inputs) + 1e-9


def _mean_mismatch(df: pd.DataFrame, benchmark: str, parts: Sequence[str], total: str, kind: str,
                   what: str) -> list[Finding]:
    out = []
    q = df[(df["benchmark"] == benchmark) & (df["statistic"] == "mean")]
    for (method, split, metric, src), g in q.groupby(["method", "split", "metric", "source_ref"], sort=False):
        by = {r.region: r for r in g.itertuples()}
        if total not in by or not all(p in by for p in parts):
            continue
        vals = [by[p].value for p in parts]
        computed = sum(vals) / len(vals)
        rep = by[total]
        tol = _derived_tol(*_effective_decimals([rep.value_text], [by[p].value_text for p in parts]))
        if abs(rep.value - computed) > tol:
            out.append(Finding(
                kind=kind, method=method, benchmark=benchmark, split=split,
                key=f"region={total} metric={metric} statistic=mean",
                values=tuple(vals) + (rep.value, round(computed, 6)),
                sources=(src,) * (len(parts) + 2),
                verified=tuple(by[p].verified for p in parts) + (rep.verified, rep.verified),
                detail=(f"{what}: reported {total} {rep.value_text} but the mean of "
                        f"{', '.join(f'{p} {by[p].value_text}' for p in parts)} is {computed:.4f} "
                        f"(|diff| {abs(rep.value - computed):.4f} > rounding tolerance {tol:.4f}); within one source"),
            ))
    return out


def _seed_missing(df: pd.DataFrame, seeds: Sequence[SeedPaper]) -> list[Finding]:
    out = []
    for p in seeds:
        for c in p.claims:
            rows = df[df["claim_id"] == c.id]
            problem = None
            if rows.empty:
                problem = "no row of the table has this claim_id"
            else:
                r = rows.iloc[0]
                keys = ("method", "benchmark", "split", "region", "metric", "statistic", "unit")
                wrong = [k for k in keys if r[k] != (c.method if k == "method" else getattr(c, k))]
                if len(rows) > 1:
                    problem = f"{len(rows)} rows carry this claim_id"
                elif wrong:
                    problem = f"the table row differs in {', '.join(wrong)}"
                elif r["value"] != c.value:
                    problem = f"the table row holds {r['value_text']} but the claim is {c.text}"
            if problem:
                out.append(Finding(
                    kind="seed_missing", method=c.method, benchmark=c.benchmark, split=c.split,
                    key=f"region={c.region} metric={c.metric} statistic={c.statistic} claim={c.id}",
                    values=(c.value,) + tuple(rows["value"]), sources=(c.file,) + tuple(rows["source_ref"]),
                    verified=("yes",) + tuple(rows["verified"]), detail=problem))
    return out


def _seed_vs_source(df: pd.DataFrame, seeds: Sequence[SeedPaper]) -> list[Finding]:
    out = []
    index = {k: g for k, g in df[df["claim_id"] == ""].groupby(list(MEASURE), sort=False)}
    for p in seeds:
        for c in p.claims:
            g = index.get((c.method, c.benchmark, c.split, c.region, c.metric, c.statistic))
            if g is None:
                continue
            dc = _decimals(c.text.rstrip("%"))
            bad = g[[not _agree(c.value, dc, r.value, r.decimals) for r in g.itertuples()]]
            if bad.empty:
                continue
            others = "; ".join(f"{r.value_text} in {r.source_ref}" for r in bad.itertuples())
            out.append(Finding(
                kind="seed_vs_source", method=c.method, benchmark=c.benchmark, split=c.split,
                key=f"region={c.region} metric={c.metric} statistic={c.statistic} claim={c.id}",
                values=(c.value,) + tuple(bad["value"]),
                sources=(f"{Path(c.file).name}#{c.id}",) + tuple(bad["source_ref"]),
                verified=("yes",) + tuple(bad["verified"]),
                detail=f"the {p.paper} seed page says {c.text}; {others}"))
    return out


def _source_conflict(df: pd.DataFrame) -> list[Finding]:
    out = []
    q = df[df["claim_id"] == ""]
    for key, g in q.groupby(list(MEASURE), sort=False):
        if g["source_ref"].nunique() < 2:
            continue
        rows = list(g.itertuples())
        conflict = any(not _agree(a.value, a.decimals, b.value, b.decimals)
                       for i, a in enumerate(rows) for b in rows[i + 1:])
        if not conflict:
            continue
        method, bench, split, region, metric, stat = key
        out.append(Finding(
            kind="source_conflict", method=method, benchmark=bench, split=split,
            key=f"region={region} metric={metric} statistic={stat}",
            values=tuple(r.value for r in rows), sources=tuple(r.source_ref for r in rows),
            verified=tuple(r.verified for r in rows),
            detail="; ".join(f"{r.value_text} ({r.source_type}{'' if r.verified == 'yes' else ', unverified'})"
                             for r in rows)))
    return out


def _median_above_mean(df: pd.DataFrame, rel_margin: float) -> list[Finding]:
    out = []
    for (method, bench, split, region, metric, src), g in df.groupby(
            ["method", "benchmark", "split", "region", "metric", "source_ref"], sort=False):
        by = {r.statistic: r for r in g.itertuples()}
        if "mean" not in by or "median" not in by:
            continue
        mean, med = by["mean"], by["median"]
        diff = med.value - mean.value
        tol = 0.5 * 10.0 ** (-mean.decimals) + 0.5 * 10.0 ** (-med.decimals)
        std = by.get("std")
        if std is not None:
            if diff <= std.value + tol + 0.5 * 10.0 ** (-std.decimals):
                continue
            detail = (f"median {med.value_text} exceeds mean {mean.value_text} by {diff:.3f}, more than the std "
                      f"{std.value_text}: impossible, |mean - median| <= std for every distribution (likely typo)")
            vals = (mean.value, med.value, std.value)
        else:
            if diff <= rel_margin * mean.value + tol:
                continue
            detail = (f"median {med.value_text} exceeds mean {mean.value_text} by {diff:.3f} "
                      f"(> {rel_margin:.0%} of the mean) with no std given: implausible for right-skewed errors")
            vals = (mean.value, med.value)
        out.append(Finding(
            kind="median_above_mean", method=method, benchmark=bench, split=split,
            key=f"region={region} metric={metric} statistic=median-vs-mean",
            values=vals, sources=(src,) * len(vals), verified=tuple(by[s].verified for s in ("mean", "median", "std")[:len(vals)]),
            detail=detail + "; within one source"))
    return out


KINDS = ("realy_all_mismatch", "aflw_balanced_mismatch", "seed_vs_source", "source_conflict",
         "median_above_mean", "seed_missing")


def check(df: pd.DataFrame, seeds: Sequence[SeedPaper] | None = None, *, rel_margin: float = 0.10,
          kinds: Iterable[str] | None = None) -> list[Finding]:
    """Run the consistency checks (see the module docstring) and return every finding.

    Parameters
    ----------
    df : DataFrame
        From :func:`load_reported`.
    seeds : list of SeedPaper, optional
        From :func:`load_seeds`; without it the seed checks are skipped.
    rel_margin : float
        ``median_above_mean`` margin, as a fraction of the mean, used when no std is given.
    kinds : iterable of str, optional
        Run only these kinds (default: all of :data:`KINDS`).

    Returns
    -------
    list of Finding
        Ordered by kind, then table order. An empty list means the data are consistent.
    """
    want = set(KINDS if kinds is None else kinds)
    unknown = want - set(KINDS)
    if unknown:
        raise InputError(f"unknown check kind(s) {', '.join(sorted(unknown))}", None, f"use {', '.join(KINDS)}")
    out: list[Finding] = []
    if "realy_all_mismatch" in want:
        out += _mean_mismatch(df, "realy", REALY_REGIONS, "all", "realy_all_mismatch",
                              "REALY 'all' must be the mean of the four region means")
    if "aflw_balanced_mismatch" in want:
        out += _mean_mismatch(df, "aflw2000_3d", AFLW_BINS, "balanced", "aflw_balanced_mismatch",
                              "the balanced NME must be the mean of the three yaw-bin means")
    if seeds is not None and "seed_vs_source" in want:
        out += _seed_vs_source(df, seeds)
    if "source_conflict" in want:
        out += _source_conflict(df)
    if "median_above_mean" in want:
        out += _median_above_mean(df, rel_margin)
    if seeds is not None and "seed_missing" in want:
        out += _seed_missing(df, seeds)
    return out


def findings_frame(findings: Sequence[Finding]) -> pd.DataFrame:
    """Findings as a DataFrame (one row per finding; values and sources joined for display)."""
    rows = []
    for f in findings:
        d = f.to_dict()
        d["values"] = ", ".join(f"{v:g}" for v in f.values)
        d["sources"] = " | ".join(dict.fromkeys(f.sources))
        d.pop("verified")
        rows.append(d)
    cols = ["kind", "method", "benchmark", "split", "key", "values", "sources", "detail"]
    return pd.DataFrame(rows, columns=cols)


def write_findings_json(findings: Sequence[Finding], path: str | Path) -> Path:
    """Write findings as a JSON list of objects (kind, method, benchmark, split, key, values, sources, ...)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise InputError("output directory does not exist", p.parent, "create it first")
    p.write_text(json.dumps([f.to_dict() for f in findings], indent=2) + "\n", encoding="utf-8")
    return p


def provenance(shown: pd.DataFrame, findings: Sequence[Finding]) -> pd.DataFrame:
    """Where each shown number came from, and whether a consistency check flags it.

    Returns one row per row of ``shown`` with ``method, benchmark, split, region, statistic, value,
    source_type, source_ref, status``; status is ``quoted with source`` (verified), ``quoted with source
    (unverified transcription)``, plus ``; flagged: <kinds>`` when a finding involves that number's
    method/benchmark/split/region and source.
    """
    flags: dict[tuple, set] = {}
    for f in findings:
        region = f.key.split()[0].split("=", 1)[1]
        for s in f.sources:
            flags.setdefault((f.method, f.benchmark, f.split, s), set()).add((f.kind, region))
    rows = []
    for r in shown.itertuples():
        status = "quoted with source" + ("" if r.verified == "yes" else " (unverified transcription)")
        kinds = sorted({k for k, reg in flags.get((r.method, r.benchmark, r.split, r.source_ref), set())
                        if reg == r.region or k in ("realy_all_mismatch", "aflw_balanced_mismatch") and
                        r.region in REALY_REGIONS + AFLW_BINS + ("all", "balanced")})
        if kinds:
            status += "; flagged: " + ", ".join(kinds)
        rows.append(dict(method=r.method, benchmark=r.benchmark, split=r.split, region=r.region,
                         statistic=r.statistic, value=r.value_text, source_type=r.source_type,
                         source_ref=r.source_ref, status=status))
    return pd.DataFrame(rows)
