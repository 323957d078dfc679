"""FaceScape single-view reconstruction benchmark: the published tables recomputed from per-image errors.

The FaceScape benchmark (Zhu et al., "FaceScape: 3D Facial Dataset and Benchmark for Single-View 3D Face
Reconstruction", arXiv:2111.01082, Sec. 6) ships, for 14 methods, the pre-evaluated error of every test image:
``eval_result/{fswild,fslab}_<method>/{CD,MNE,CR}_full.txt`` (one number per line, ``nan`` = the method produced no
usable mesh for that image). This module turns those files into the benchmark's tables exactly as its own summary
scripts do:

* ``zhuhao-nju/facescape@3f1cb5ae benchmark/code/show.py`` -- the printed tables (``%f``, 6 decimals),
  reproduced byte for byte by :meth:`FaceScapeTables.format_show`;
* ``zhuhao-nju/facescape@3f1cb5ae benchmark/code/export_table.py`` -- the CSV tables the paper's tables are typeset
  from (CD 2 decimals, MNE 3, CR and done rate in percent with 1), reproduced byte for byte by
  :meth:`FaceScapeTables.format_export_tables`.

Metrics (per image, computed by the benchmark's ``evaluator.py``; this module only aggregates them)
------------------------------------------------------------------------------------------------------
``CD``  chamfer distance between predicted and ground-truth face, millimetres (ground truth scaled so that the
        pupil distance is 62.85 mm); lower is better.
``MNE`` mean normal error, radians; lower is better.
``CR``  completeness rate, fraction in [0, 1] of the ground-truth face covered by the prediction; higher is better.

Image index -> bin (verified against ``code/predef/*.npy`` of the benchmark)
-----------------------------------------------------------------------------
fswild (400 in-the-wild images, line ``i`` = image ``%03d``)
    Four consecutive blocks of 100: lines 0-99 -> ``0-5``, 100-199 -> ``5-30``, 200-299 -> ``30-60``,
    300-end -> ``60-90`` (degrees). The official script bins by position (``[0:100]``, ``[100:200]``, ``[200:300]``,
    ``[300:]``). The angle is the head's total rotation angle, yaw-dominated: the geodesic angle
    ``theta = arccos((trace R - 1) / 2)`` of the ground-truth rotations ``predef/wild_rotations.npy`` lies in
    [0.6, 5.5], [5.5, 30.1], [30.1, 56.4], [60.7, 84.1] degrees for the four blocks (5 images of the first block
    are slightly above 5 deg, one of the second slightly above 30 deg); ``|yaw|`` alone would put 27 images of the
    second block below 5 deg (their pitch makes up the rest).
fslab (660 in-the-lab renderings, 20 subjects x 3 focal lengths x 11 views)
    line ``i = 33 s + 11 f + v`` for subject ``s`` (0-19), focal index ``f`` (0 -> 1200, 1 -> 600, 2 -> 300 px)
    and view ``v`` (0-10). View 0 is frontal (``0``), views 1-8 are rotated by 30 deg (``30``), views 9-10 by
    60 deg (``60``) -- the geodesic angles of ``predef/lab_rotations.npy`` are 0, 30 (or 30.27), 60.

Aggregation (official)
----------------------
For every bin, ``value = np.mean(x[idx][~np.isnan(x[idx])])``: the mean over the images of the bin that have a
number; failed images are skipped, not penalised. ``all`` is the same over every line of the file.
``done_rate = (#non-NaN lines) / (#lines)`` of the whole file -- the same number is printed on every row of a method
(it is not a per-bin rate; per-bin counts are in :class:`BinValue`).

Quirks of the official scripts, reproduced by default (see :class:`FaceScapeOptions` for the alternatives)
-------------------------------------------------------------------------------------------------------------
=====================================  ==========================================  ================================
quirk                                  official behaviour (default)                option
=====================================  ==========================================  ================================
fslab angle table uses one focal       the ``0``/``30``/``60`` bins use only the   ``lab_angle_focals=(1200, 600,
length                                 f = 1200 images (220 of 660: 20 / 160 / 40  300)`` bins all 660 images
                                       per bin), but its ``all`` column is the
                                       mean over all 660 images
short result file                      ``fswild_DF2Net`` has 374 lines, not 400:   ``missing_as_failed=True`` pads
                                       the ``60-90`` bin holds 74 images and the   the file with NaN to 400 lines
                                       done rate is counted over 374 lines         (done rate 0.700000 for DF2Net)
                                       (0.748663)
empty bin                              fslab ``60`` bin with no valid image ->     ``empty_bin="nan"``: NaN
                                       ``-1`` (printed ``-1.000000``; fslab
                                       DF2Net); any other empty bin -> NaN
fswild bins by position                lines 0-99, 100-199, ... (the dataset's     ``wild_binning="rotation"``:
                                       design)                                     bins by the geodesic angle of
                                                                                   ``predef/wild_rotations.npy``
                                                                                   (<= 5, <= 30, <= 60, > 60 deg)
fslab angle header of export_table.py  the CSV header says ``$\\pm5$``,            (labels here are ``0``, ``30``,
                                       ``$\\pm30$``, ``$\\pm60$`` for bins 0, 30,  ``60`` as in ``show.py``)
                                       60 deg; the done column is the ``CR``
                                       file's done rate
=====================================  ==========================================  ================================

Published numbers
-----------------
The FaceScape repository holds no text copy of the result tables: ``benchmark/README.md`` (every stored version,
up to ``19a9fffd``) shows them only as the image ``figures/benchmark_eval.jpg``, and the numbers appear as PDF
tables in arXiv:2111.01082. facenb therefore ships no transcription; :func:`read_export_tables` reads tables in the
``export_table.py`` CSV layout (the official script's own output, or a transcription of the paper's tables in that
layout) and :func:`compare_export_tables` compares them digit for digit with the recomputation.
"""
from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np

from facenb.errors import InputError
from facenb.vocabulary import SEED_METHODS as _SEED_METHODS

__all__ = [
    "OFFICIAL_METHODS",
    "SEED_METHODS",
    "METRICS",
    "DATASETS",
    "TABLES",
    "BIN_LABELS",
    "PROTOCOL",
    "FETCH_HINT",
    "FaceScapeOptions",
    "OFFICIAL",
    "INTENDED",
    "PerImageErrors",
    "FaceScapeResults",
    "BinValue",
    "TableRow",
    "FaceScapeTables",
    "resolve_results_dir",
    "default_results_dir",
    "load_results",
    "wild_rotation_angles",
    "bin_indices",
    "compute_tables",
    "facescape_tables",
    "diff_tables",
    "plot_frame",
    "per_image_errors",
    "read_export_tables",
    "compare_export_tables",
    "reported_comparison",
]

#: The 14 methods of the benchmark, in the order of ``show.py`` / ``export_table.py``.
OFFICIAL_METHODS: tuple[str, ...] = (
    "extreme3dface", "PRNet", "Deep3DFaceRec", "RingNet", "DFDN", "DF2Net", "UDL",
    "facescape_opti", "facescape_deep", "MGCNet", "3DDFA_V2", "SADRNet", "LAP", "DECA",
)
#: The seed papers' methods among them (:data:`facenb.vocabulary.SEED_METHODS` evaluated by the benchmark).
SEED_METHODS: tuple[str, ...] = tuple(m for m in OFFICIAL_METHODS if m in _SEED_METHODS)
#: Metric names as used in facenb (files are ``<metric>_full.txt``).
METRICS: tuple[str, ...] = ("CD", "MNE", "CR")
METRIC_UNITS: dict[str, str] = {"CD": "mm", "MNE": "rad", "CR": "fraction"}
DATASETS: tuple[str, ...] = ("fswild", "fslab")
#: The three published tables as (dataset, grouping).
TABLES: tuple[tuple[str, str], ...] = (("fswild", "yaw"), ("fslab", "angle"), ("fslab", "focal"))
#: Bin labels per grouping, in published order; ``all`` last.
BIN_LABELS: dict[str, tuple[str, ...]] = {
    "yaw": ("0-5", "5-30", "30-60", "60-90", "all"),
    "angle": ("0", "30", "60", "all"),
    "focal": ("1200", "600", "300", "all"),
}
PROTOCOL = "zhuhao-nju/facescape@3f1cb5aeb4b3c29d3ced2aa14c40a79ae0ce52dc benchmark/code/show.py"
FETCH_HINT = "run `facenb data fetch facescape_benchmark` or pass the folder holding eval_result/"

WILD_N = 400
WILD_BLOCK = 100
LAB_SUBJECTS = 20
LAB_FOCALS: tuple[int, ...] = (1200, 600, 300)
LAB_VIEWS = 11
LAB_VIEW_ANGLE: tuple[int, ...] = (0, 30, 30, 30, 30, 30, 30, 30, 30, 60, 60)
LAB_N = LAB_SUBJECTS * len(LAB_FOCALS) * LAB_VIEWS
WILD_ROTATION_EDGES: tuple[float, ...] = (5.0, 30.0, 60.0)


# ------------------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class FaceScapeOptions:
    """How the tables are binned; the defaults reproduce ``show.py`` (see the module docstring's quirk table).

    Attributes
    ----------
    lab_angle_focals : tuple of int
        Focal lengths (px, from 1200, 600, 300) whose images enter the fslab ``0``/``30``/``60`` angle bins.
        Official: ``(1200,)``.
    missing_as_failed : bool
        Pad an fswild file shorter than 400 lines with NaN (missing images count as failures, done rate over
        400). Official: ``False`` (bins by position in the short file, done rate over its length).
    empty_bin : {"official", "nan"}
        ``"official"``: the fslab ``60`` angle bin with no valid image is ``-1.0`` (``show.py``'s sentinel),
        other empty bins NaN. ``"nan"``: every empty bin is NaN.
    wild_binning : {"index", "rotation"}
        ``"index"`` (official): fswild bins are the blocks of 100 lines. ``"rotation"``: bin every image by the
        geodesic angle of its ground-truth rotation (needs ``code/predef/wild_rotations.npy``).
    """

    lab_angle_focals: tuple[int, ...] = (1200,)
    missing_as_failed: bool = False
    empty_bin: Literal["official", "nan"] = "official"
    wild_binning: Literal["index", "rotation"] = "index"

    def __post_init__(self):
        focals = tuple(int(f) for f in self.lab_angle_focals)
        if not focals or any(f not in LAB_FOCALS for f in focals) or len(set(focals)) != len(focals):
            raise InputError(f"lab_angle_focals must be distinct values from {LAB_FOCALS}, got {self.lab_angle_focals!r}",
                             None, "use (1200,) (official) or (1200, 600, 300)")
        object.__setattr__(self, "lab_angle_focals", focals)
        if self.empty_bin not in ("official", "nan"):
            raise InputError(f"empty_bin must be 'official' or 'nan', got {self.empty_bin!r}")
        if self.wild_binning not in ("index", "rotation"):
            raise InputError(f"wild_binning must be 'index' or 'rotation', got {self.wild_binning!r}")

    @property
    def is_official(self) -> bool:
        return self == OFFICIAL


#: ``show.py``'s behaviour.
OFFICIAL = FaceScapeOptions()
#: What the tables' labels suggest: all focal lengths in the angle bins, missing images as failures, NaN for empty.
INTENDED = FaceScapeOptions(lab_angle_focals=LAB_FOCALS, missing_as_failed=True, empty_bin="nan")


# ------------------------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class PerImageErrors:
    """One result file.

    Attributes
    ----------
    dataset, method, metric : str
        e.g. ``"fswild"``, ``"PRNet"``, ``"CD"``.
    values : (n,) float64
        Per-image errors in file order (NaN = failed). n = 400 (fswild; fewer if the file is short) or 660 (fslab).
    path : Path
        The file read.
    """

    dataset: str
    method: str
    metric: str
    values: np.ndarray = field(repr=False)
    path: Path

    @property
    def n_lines(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class FaceScapeResults:
    """All result files found under one results folder.

    Attributes
    ----------
    root : Path
        The folder holding ``eval_result/`` (``code/predef/`` is looked up beside it).
    files : tuple of PerImageErrors
        One per (dataset, method, metric).
    """

    root: Path
    files: tuple[PerImageErrors, ...]

    def methods(self, dataset: str) -> tuple[str, ...]:
        """Methods present for ``dataset``, official order first, then others alphabetically."""
        seen: list[str] = []
        for f in self.files:
            if f.dataset == dataset and f.method not in seen:
                seen.append(f.method)
        return tuple(seen)

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(d for d in DATASETS if any(f.dataset == d for f in self.files))

    def get(self, dataset: str, method: str, metric: str) -> PerImageErrors:
        for f in self.files:
            if (f.dataset, f.method, f.metric) == (dataset, method, metric):
                return f
        raise InputError(f"no {metric} results for {dataset}_{method}", self.root / "eval_result",
                         f"check that {dataset}_{method}/{metric}_full.txt exists")

    def errors(self, dataset: str, method: str, metric: str) -> np.ndarray:
        """Per-image errors ``(n,)`` of one file (a read-only view; NaN = failed)."""
        return self.get(dataset, method, metric).values


def default_results_dir() -> Path | None:
    """The ``facescape_benchmark`` folder :func:`facenb.data.locate` finds (the verified ``facenb data fetch`` cache,
    else ``$FACENB_DATA_MIRROR/facescape_benchmark``), or None."""
    from facenb import data

    return data.locate("facescape_benchmark")


def resolve_results_dir(path: str | Path | None) -> Path:
    """Return the benchmark folder holding ``eval_result/`` (accepts that folder or ``eval_result/`` itself).

    Raises
    ------
    InputError
        The folder does not exist or holds no ``eval_result/``; with ``path=None``, the dataset is neither in the
        ``facenb data fetch`` cache nor under ``$FACENB_DATA_MIRROR`` (:func:`facenb.data.require`).
    """
    if path is None:
        from facenb import data

        path = data.require("facescape_benchmark")
    p = Path(path)
    if not p.exists():
        raise InputError("FaceScape results folder not found", p, FETCH_HINT)
    if not p.is_dir():
        raise InputError("expected the FaceScape results folder, got a file", p, FETCH_HINT)
    if (p / "eval_result").is_dir():
        return p
    if p.name == "eval_result" or any(_dataset_dirs(p)):
        return p.parent if p.name == "eval_result" else p
    raise InputError("no eval_result/ folder (with fswild_<method>/ or fslab_<method>/) in it", p, FETCH_HINT)


def _eval_dir(root: Path) -> Path:
    return root / "eval_result" if (root / "eval_result").is_dir() else root


def _dataset_dirs(eval_dir: Path) -> Iterable[Path]:
    return (d for d in sorted(eval_dir.iterdir()) if d.is_dir() and d.name.split("_", 1)[0] in DATASETS
            and "_" in d.name)


KNOWN_SHORT_WILD = {"DF2Net": 374}
"""fswild result files known to be short in the official benchmark release (method -> line count): DF2Net's
``CD/MNE/CR_full.txt`` have 374 lines, and show.py bins and counts them as they are. Any other fswild file must
have 400 lines (or be padded: ``missing_as_failed=True``) -- a short file would otherwise report a done rate over
its own length (a 50-line file: 1.000000)."""

METRIC_RANGES = {"CD": (0.0, np.inf), "MNE": (0.0, np.pi), "CR": (0.0, 1.0)}
"""Valid range of a per-image value (NaN = failed image): chamfer distance (mm) >= 0; mean normal error, an
angle in radians, in [0, pi]; completeness rate, a fraction, in [0, 1]."""


def _read_errors(path: Path, dataset: str, method: str | None = None, allow_short: bool = False) -> np.ndarray:
    if not path.is_file():
        raise InputError("result file not found", path, "every method folder needs CD_full.txt, MNE_full.txt and CR_full.txt")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on an empty file; handled below
            values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as exc:
        raise InputError(f"not one number per line ({str(exc).splitlines()[0]})", path,
                         "each line must hold one per-image error or nan") from None
    if values.ndim != 1:
        raise InputError(f"expected one number per line, found {values.shape[1]} columns", path,
                         "each line must hold one per-image error or nan")
    if values.size == 0:
        raise InputError("empty result file", path, "re-run the benchmark's evaluator.py for this method")
    if dataset == "fswild" and values.size > WILD_N:
        raise InputError(f"{values.size} lines, fswild has {WILD_N} images", path, "give the fswild result file (400 lines)")
    if dataset == "fslab" and values.size != LAB_N:
        raise InputError(f"{values.size} lines, fslab has {LAB_N} images (20 subjects x 3 focal x 11 views)", path,
                         "give the complete fslab result file (660 lines)")
    if (dataset == "fswild" and values.size < WILD_N and not allow_short
            and KNOWN_SHORT_WILD.get(method or "") != values.size):
        raise InputError(f"{values.size} lines, fswild has {WILD_N} images (only the official DF2Net file is known to "
                         f"be short, {KNOWN_SHORT_WILD['DF2Net']} lines)", path,
                         "give the complete fswild result file (400 lines), or pass --missing-as-failed to count "
                         "the missing images as failures")
    metric = path.name.split("_", 1)[0]
    if metric in METRIC_RANGES:
        lo, hi = METRIC_RANGES[metric]
        bad = ~np.isnan(values) & ~((values >= lo) & (values <= hi))
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"line {i + 1} holds {values[i]!r}: {metric} must lie in [{lo:g}, {hi:g}]"
                             f" ({int(bad.sum())} such lines)", path,
                             "give the evaluator's output unchanged (nan marks a failed image)")
    values.setflags(write=False)
    return values


def load_results(path: str | Path | None = None, methods: Sequence[str] | None = None,
                 datasets: Sequence[str] = DATASETS, allow_short: bool = False) -> FaceScapeResults:
    """Read the per-image result files.

    Parameters
    ----------
    path : str or Path, optional
        The benchmark folder (holding ``eval_result/``) or ``eval_result/`` itself. Default:
        :func:`facenb.data.require` ``("facescape_benchmark")`` (the fetch cache, else the mirror).
    methods : sequence of str, optional
        Methods to read; each must have a ``<dataset>_<method>/`` folder. Default: every folder found, the 14
        official methods first in the official order.
    datasets : sequence of str
        Subset of ``("fswild", "fslab")``.

    Returns
    -------
    FaceScapeResults

    Raises
    ------
    InputError
        Missing folder or file, a file that is not one number per line, a fslab file without 660 lines, a fswild
        file with more than 400 or -- unless it is listed in :data:`KNOWN_SHORT_WILD` (DF2Net, 374) or
        ``allow_short`` (set by ``missing_as_failed``) -- fewer than 400 lines, a value outside
        :data:`METRIC_RANGES` (negative CD, CR above 1, ...).
    """
    root = resolve_results_dir(path)
    eval_dir = _eval_dir(root)
    for d in datasets:
        if d not in DATASETS:
            raise InputError(f"unknown FaceScape dataset {d!r}", None, f"use one of {DATASETS}")
    files: list[PerImageErrors] = []
    for dataset in datasets:
        if methods is None:
            found = [p.name.split("_", 1)[1] for p in _dataset_dirs(eval_dir) if p.name.startswith(dataset + "_")]
            order = [m for m in OFFICIAL_METHODS if m in found] + sorted(m for m in found if m not in OFFICIAL_METHODS)
        else:
            order = list(dict.fromkeys(methods))
            for m in order:
                if not (eval_dir / f"{dataset}_{m}").is_dir():
                    raise InputError(f"no results folder for method {m!r}", eval_dir / f"{dataset}_{m}",
                                     f"check the method name (official: {', '.join(OFFICIAL_METHODS)})")
        for m in order:
            for metric in METRICS:
                p = eval_dir / f"{dataset}_{m}" / f"{metric}_full.txt"
                files.append(PerImageErrors(dataset, m, metric, _read_errors(p, dataset, m, allow_short), p))
    if not files:
        raise InputError("no <dataset>_<method>/ result folders", eval_dir, FETCH_HINT)
    return FaceScapeResults(root, tuple(files))


def wild_rotation_angles(path: str | Path) -> np.ndarray:
    """Geodesic head-rotation angle of every fswild image, degrees, ``(400,)``.

    ``theta_i = arccos(clip((trace R_i - 1) / 2, -1, 1))`` for the ground-truth rotations ``R_i`` of
    ``code/predef/wild_rotations.npy`` (400, 3, 3). ``path`` is that file, the benchmark folder or ``predef/``.
    """
    p = Path(path)
    for cand in (p, p / "wild_rotations.npy", p / "predef" / "wild_rotations.npy", p / "code" / "predef" / "wild_rotations.npy"):
        if cand.is_file():
            p = cand
            break
    else:
        raise InputError("wild_rotations.npy not found", p, "give the benchmark folder holding code/predef/ (facenb data fetch facescape_benchmark)")
    try:
        R = np.load(p)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"cannot read rotations ({exc})", p, "give the benchmark's code/predef/wild_rotations.npy") from None
    if R.shape != (WILD_N, 3, 3):
        raise InputError(f"expected shape (400, 3, 3), got {R.shape}", p, "give the benchmark's code/predef/wild_rotations.npy")
    cos = np.clip((np.trace(R, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


# ------------------------------------------------------------------------------------------------ binning
def bin_indices(dataset: str, grouping: str, n_lines: int, options: FaceScapeOptions = OFFICIAL,
                rotation_angles: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Line indices of every bin (``all`` excluded), in published order.

    Parameters
    ----------
    dataset, grouping : str
        One of :data:`TABLES`.
    n_lines : int
        Lines in the (possibly padded) result file.
    options : FaceScapeOptions
    rotation_angles : (400,) float, optional
        Needed with ``options.wild_binning == "rotation"`` (see :func:`wild_rotation_angles`).

    Returns
    -------
    dict str -> (k,) int64
        Bin label -> line indices (only indices < ``n_lines``; fswild's last block is ``[300, n_lines)`` as in
        ``this_list[300:]``).
    """
    if (dataset, grouping) == ("fswild", "yaw"):
        labels = BIN_LABELS["yaw"][:-1]
        if options.wild_binning == "rotation":
            if rotation_angles is None:
                raise InputError("wild_binning='rotation' needs the ground-truth rotations", None,
                                 "pass rotation_angles=wild_rotation_angles(<benchmark folder>)")
            ang = np.asarray(rotation_angles, dtype=np.float64)[:n_lines]
            which = np.searchsorted(np.asarray(WILD_ROTATION_EDGES), ang, side="left")  # <=5 -> 0, (5,30] -> 1, ...
            return {lab: np.flatnonzero(which == k) for k, lab in enumerate(labels)}
        starts = [k * WILD_BLOCK for k in range(4)]
        ends = starts[1:] + [max(n_lines, 3 * WILD_BLOCK)]
        return {lab: np.arange(min(s, n_lines), min(e, n_lines)) for lab, s, e in zip(labels, starts, ends)}
    if dataset == "fslab" and grouping == "angle":
        focal_idx = [LAB_FOCALS.index(f) for f in options.lab_angle_focals]
        out = {}
        for angle in (0, 30, 60):
            views = [v for v in range(LAB_VIEWS) if LAB_VIEW_ANGLE[v] == angle]
            idx = [s * 33 + f * LAB_VIEWS + v for s in range(LAB_SUBJECTS) for f in focal_idx for v in views]
            out[str(angle)] = np.asarray(idx, dtype=np.int64)
        return out
    if dataset == "fslab" and grouping == "focal":
        return {str(focal): np.asarray([s * 33 + f * LAB_VIEWS + v for s in range(LAB_SUBJECTS) for v in range(LAB_VIEWS)],
                                       dtype=np.int64)
                for f, focal in enumerate(LAB_FOCALS)}
    raise InputError(f"unknown FaceScape table {dataset}/{grouping}", None, f"use one of {TABLES}")


def _mean_valid(x: np.ndarray) -> float:
    """``np.mean(x[~np.isnan(x)])`` (NaN for no valid value, without numpy's RuntimeWarning)."""
    valid = x[~np.isnan(x)]
    if valid.size == 0:
        return float("nan")
    return float(np.mean(valid))


# ------------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class BinValue:
    """One cell of a table.

    Attributes
    ----------
    label : str
        Published bin label (``"0-5"``, ``"60"``, ``"1200"``, ``"all"``, ...).
    value : float
        Mean of the bin's non-NaN per-image errors (CD mm, MNE rad, CR fraction); NaN if the bin has none,
        ``-1.0`` for the official fslab ``60`` sentinel.
    n_images : int
        Images (lines) in the bin.
    n_valid : int
        Non-NaN images in the bin.
    """

    label: str
    value: float
    n_images: int
    n_valid: int

    @property
    def is_sentinel(self) -> bool:
        """True for ``show.py``'s ``-1`` placeholder of an empty bin (not a measurement)."""
        return self.n_valid == 0 and self.value == -1.0

    @property
    def bin_done_rate(self) -> float:
        """``n_valid / n_images`` (NaN for an empty bin)."""
        return self.n_valid / self.n_images if self.n_images else float("nan")


@dataclass(frozen=True)
class TableRow:
    """One method x metric row of a table.

    Attributes
    ----------
    dataset, grouping, method, metric : str
    bins : tuple of BinValue
        Published order, ``all`` last.
    done_rate : float
        Non-NaN lines / lines of the whole file (official; identical on every row of the method).
    n_lines : int
        Lines counted (file length, or 400 with ``missing_as_failed``).
    """

    dataset: str
    grouping: str
    method: str
    metric: str
    bins: tuple[BinValue, ...]
    done_rate: float
    n_lines: int

    def value(self, label: str) -> float:
        for b in self.bins:
            if b.label == label:
                return b.value
        raise KeyError(label)

    def bin(self, label: str) -> BinValue:
        for b in self.bins:
            if b.label == label:
                return b
        raise KeyError(label)


#: Columns of :meth:`FaceScapeTables.to_frame` (and of the CLI's CSV), documented once.
FRAME_COLUMNS: dict[str, str] = {
    "dataset": "fswild or fslab",
    "grouping": "yaw (fswild), angle or focal (fslab)",
    "method": "method name as in the eval_result folder",
    "metric": "CD (mm), MNE (rad) or CR (fraction)",
    "bin": "bin label as published: 0-5, 5-30, 30-60, 60-90, 0, 30, 60, 1200, 600, 300, all",
    "value": "mean of the bin's non-NaN per-image values (official; -1 = show.py's empty-bin sentinel, NaN = empty)",
    "done_rate": "non-NaN lines / lines of the whole result file (official done rate, same for every bin of a row)",
    "n_images": "images in the bin",
    "n_valid": "non-NaN images in the bin",
    "n_lines": "lines counted for the done rate",
}


@dataclass(frozen=True)
class FaceScapeTables:
    """The recomputed tables.

    Attributes
    ----------
    rows : tuple of TableRow
        Table order (:data:`TABLES`), then method order, then ``CD``, ``MNE``, ``CR``.
    options : FaceScapeOptions
    root : Path
        The results folder they were computed from.
    """

    rows: tuple[TableRow, ...]
    options: FaceScapeOptions
    root: Path

    def row(self, dataset: str, grouping: str, method: str, metric: str) -> TableRow:
        for r in self.rows:
            if (r.dataset, r.grouping, r.method, r.metric) == (dataset, grouping, method, metric):
                return r
        raise KeyError((dataset, grouping, method, metric))

    def methods(self, dataset: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.method for r in self.rows if r.dataset == dataset))

    @property
    def tables(self) -> tuple[tuple[str, str], ...]:
        return tuple(t for t in TABLES if any((r.dataset, r.grouping) == t for r in self.rows))

    def to_frame(self):
        """Long table, one row per (dataset, grouping, method, metric, bin); columns :data:`FRAME_COLUMNS`."""
        import pandas as pd

        recs = [
            (r.dataset, r.grouping, r.method, r.metric, b.label, b.value, r.done_rate, b.n_images, b.n_valid, r.n_lines)
            for r in self.rows for b in r.bins
        ]
        return pd.DataFrame.from_records(recs, columns=list(FRAME_COLUMNS))

    def summary(self) -> dict:
        """Flat dict of every cell: ``"<dataset>/<grouping>/<method>/<metric>/<bin>"`` -> value (``all`` included)
        and ``".../<metric>/done_rate"`` -> done rate, NaN as None (JSON-ready); plus ``protocol``, ``options``
        (``"official"`` or the deviations) and ``root``."""
        d: dict = {"protocol": PROTOCOL, "options": "official" if self.options.is_official else _describe(self.options),
                   "root": str(self.root)}
        for r in self.rows:
            key = f"{r.dataset}/{r.grouping}/{r.method}/{r.metric}"
            for b in r.bins:
                d[f"{key}/{b.label}"] = None if b.value != b.value else float(b.value)
            d[f"{key}/done_rate"] = None if r.done_rate != r.done_rate else float(r.done_rate)
        return d

    def printed(self) -> list[str]:
        """The lines the official ``show.py`` prints (:meth:`format_show`, one string per line)."""
        return self.format_show().splitlines()

    def wide(self, dataset: str, grouping: str):
        """One table as published: index (method, metric), columns = bins + ``done_rate``."""
        import pandas as pd

        recs = []
        for r in self.rows:
            if (r.dataset, r.grouping) == (dataset, grouping):
                recs.append({"method": r.method, "metric": r.metric, **{b.label: b.value for b in r.bins},
                             "done_rate": r.done_rate})
        if not recs:
            raise KeyError((dataset, grouping))
        return pd.DataFrame(recs).set_index(["method", "metric"])

    # ---------------------------------------------------------------------------------- official layouts
    def format_show(self) -> str:
        """The tables in ``show.py``'s stdout layout (``%f``); byte-identical to the official output for the
        14 official methods with the default options."""
        out: list[str] = []
        bar = "=" * 30
        metric_name = {m: f"{m}_full" for m in METRICS}
        for dataset, grouping in self.tables:
            if grouping == "yaw":
                out += [f"{bar} dataset: {dataset} {bar}", f"{bar} show in angle {bar}"]
                head = "angel\t\t0-5\t\t5-30\t\t30-60\t\t60-90\t  |  all\tdone_rate"
            elif grouping == "angle":
                out += [f"{bar} dataset: {dataset} {bar}", f"{bar} show in angle {bar}"]
                head = "angel\t\t0\t\t30\t\t60\t  |  all\tdone_rate"
            else:
                out += [f"{bar} dataset: {dataset} {bar}", f"{bar} show in focal length {bar}"]
                head = "focal length\t1200\t\t600\t\t300\t  |  all\tdone_rate"
            for method in self.methods(dataset):
                out += [f"{'=' * 10} {method} {'=' * 10}", head]
                for metric in METRICS:
                    r = self.row(dataset, grouping, method, metric)
                    cells = "\t".join("%f" % b.value for b in r.bins[:-1])
                    out.append("%s:\t%s  |  %f\t%f" % (metric_name[metric], cells, r.bins[-1].value, r.done_rate))
        return "\n".join(out) + "\n"

    def format_export_tables(self) -> dict[str, str]:
        """The three CSV tables of ``export_table.py`` (file name -> text), byte-identical to the official files.

        Layout: per bin ``CD %1.2f, MNE %1.3f, CR*100 %2.1f``, then ``done*100 %2.1f`` (the ``CR`` file's done
        rate); no ``all`` column; two header lines (the fslab angle header labels its bins ``$\\pm5$``,
        ``$\\pm30$``, ``$\\pm60$`` as the official script does).
        """
        cols = ",CD/$mm$,MNE/$rad$,CR/$\\%$"
        specs = {
            ("fswild", "yaw"): ("table_1_fswild_angle.csv", ",,$\\pm5$,,,$\\pm30$,,,$\\pm60$,,,$\\pm90$,,\n", 4),
            ("fslab", "angle"): ("table_2_fslab_angle.csv", ",,$\\pm5$,,,$\\pm30$,,,$\\pm60$,,\n", 3),
            ("fslab", "focal"): ("table_3_fslab_f.csv", ",,$1200$,,,$600$,,,$300$,,\n", 3),
        }
        files = {}
        for key in self.tables:
            name, head1, nbins = specs[key]
            buf = [head1, cols * nbins + ",done/$\\%$\n"]
            for method in self.methods(key[0]):
                rows = {m: self.row(key[0], key[1], method, m) for m in METRICS}
                cells = []
                for k in range(nbins):
                    cells.append("%1.2f,%1.3f,%2.1f," % (rows["CD"].bins[k].value, rows["MNE"].bins[k].value,
                                                         rows["CR"].bins[k].value * 100))
                buf.append("%s,%s%2.1f\n" % (method, "".join(cells), rows["CR"].done_rate * 100))
            files[name] = "".join(buf)
        return files

    def format_table(self, decimals: int = 6) -> str:
        """Plain aligned text tables (what ``facenb facescape`` prints)."""
        titles = {"yaw": "by head rotation (deg)", "angle": "by view angle (deg)", "focal": "by focal length (px)"}
        out = []
        for dataset, grouping in self.tables:
            labels = BIN_LABELS[grouping]
            out.append(f"FaceScape {dataset}, {titles[grouping]}  "
                       f"[{PROTOCOL.split('@')[0]} benchmark/code/show.py protocol"
                       f"{'' if self.options.is_official else ', NON-OFFICIAL options: ' + _describe(self.options)}]")
            w = max(14, *(len(m) for m in self.methods(dataset)))
            out.append(f"{'method':<{w}}  {'metric':<6}" + "".join(f"{lab:>{decimals + 6}}" for lab in labels)
                       + f"{'done_rate':>{decimals + 6}}")
            for method in self.methods(dataset):
                for metric in METRICS:
                    r = self.row(dataset, grouping, method, metric)
                    out.append(f"{method:<{w}}  {metric:<6}" + "".join(f"{b.value:>{decimals + 6}.{decimals}f}" for b in r.bins)
                               + f"{r.done_rate:>{decimals + 6}.{decimals}f}")
            out.append("")
        return "\n".join(out)


def _describe(o: FaceScapeOptions) -> str:
    parts = []
    if o.lab_angle_focals != OFFICIAL.lab_angle_focals:
        parts.append("lab_angle_focals=" + ",".join(map(str, o.lab_angle_focals)))
    if o.missing_as_failed:
        parts.append("missing_as_failed")
    if o.empty_bin != OFFICIAL.empty_bin:
        parts.append(f"empty_bin={o.empty_bin}")
    if o.wild_binning != OFFICIAL.wild_binning:
        parts.append(f"wild_binning={o.wild_binning}")
    return "; ".join(parts)


def compute_tables(results: FaceScapeResults, options: FaceScapeOptions = OFFICIAL,
                   rotation_angles: np.ndarray | None = None) -> FaceScapeTables:
    """Recompute the benchmark's tables from loaded per-image errors.

    Parameters
    ----------
    results : FaceScapeResults
    options : FaceScapeOptions
        Default :data:`OFFICIAL` (``show.py``'s behaviour).
    rotation_angles : (400,) float, optional
        fswild rotation angles for ``wild_binning="rotation"``; read from ``<root>/code/predef`` when omitted.

    Returns
    -------
    FaceScapeTables
        For each table of :data:`TABLES` whose dataset was loaded, every method x metric row:
        ``value = mean(x[idx][~isnan(x[idx])])`` per bin, ``all`` over the whole file,
        ``done_rate = #non-NaN / #lines``.
    """
    if options.wild_binning == "rotation" and rotation_angles is None and "fswild" in results.datasets:
        rotation_angles = wild_rotation_angles(results.root)
    rows: list[TableRow] = []
    for dataset, grouping in TABLES:
        if dataset not in results.datasets:
            continue
        for method in results.methods(dataset):
            for metric in METRICS:
                x = results.errors(dataset, method, metric)
                if dataset == "fswild" and options.missing_as_failed and x.size < WILD_N:
                    x = np.concatenate([x, np.full(WILD_N - x.size, np.nan)])
                bins = []
                for label, idx in bin_indices(dataset, grouping, x.size, options, rotation_angles).items():
                    sel = x[idx]
                    n_valid = int(np.count_nonzero(~np.isnan(sel)))
                    if n_valid == 0 and options.empty_bin == "official" and (dataset, grouping, label) == ("fslab", "angle", "60"):
                        value = -1.0
                    else:
                        value = _mean_valid(sel)
                    bins.append(BinValue(label, value, int(idx.size), n_valid))
                n_valid_all = int(np.count_nonzero(~np.isnan(x)))
                bins.append(BinValue("all", _mean_valid(x), int(x.size), n_valid_all))
                rows.append(TableRow(dataset, grouping, method, metric, tuple(bins), float(n_valid_all) / x.size, int(x.size)))
    return FaceScapeTables(tuple(rows), options, results.root)


def facescape_tables(path: str | Path | None = None, methods: Sequence[str] | None = None,
                     options: FaceScapeOptions = OFFICIAL, datasets: Sequence[str] = DATASETS) -> FaceScapeTables:
    """Load the results folder and recompute the tables (:func:`load_results` + :func:`compute_tables`)."""
    return compute_tables(load_results(path, methods, datasets, allow_short=options.missing_as_failed), options)


def diff_tables(a: FaceScapeTables, b: FaceScapeTables, decimals: int = 6):
    """Cells whose printed value (``decimals``) or done rate differs between two recomputations.

    Returns a DataFrame with the key columns, ``value_a``, ``value_b``, ``done_rate_a``, ``done_rate_b``,
    ``n_images_a``, ``n_images_b``.
    """
    fa, fb = a.to_frame(), b.to_frame()
    keys = ["dataset", "grouping", "method", "metric", "bin"]
    m = fa.merge(fb, on=keys, suffixes=("_a", "_b"))
    fmt = lambda s: s.map(lambda v: f"{v:.{decimals}f}")  # noqa: E731
    changed = (fmt(m["value_a"]) != fmt(m["value_b"])) | (fmt(m["done_rate_a"]) != fmt(m["done_rate_b"]))
    cols = keys + ["value_a", "value_b", "done_rate_a", "done_rate_b", "n_images_a", "n_images_b"]
    return m.loc[changed, cols].reset_index(drop=True)


def plot_frame(tables: FaceScapeTables, dataset: str, grouping: str, metric: str, include_all: bool = False):
    """The ``method, bin, value`` slice of one table for :func:`facenb.plot.bin_curves_plotly`.

    ``show.py``'s ``-1`` sentinel (an empty bin, not a measurement) becomes NaN, so it leaves a gap in the curve.
    """
    f = tables.to_frame()
    f = f[(f["dataset"] == dataset) & (f["grouping"] == grouping) & (f["metric"] == metric)]
    if not include_all:
        f = f[f["bin"] != "all"]
    if f.empty:
        raise KeyError((dataset, grouping, metric))
    sentinel = (f["n_valid"] == 0) & (f["value"] == -1.0)
    f = f.assign(value=f["value"].where(~sentinel, np.nan))
    return f[["method", "bin", "value"]].reset_index(drop=True)


def per_image_errors(results: FaceScapeResults, dataset: str, metric: str, options: FaceScapeOptions = OFFICIAL,
                     methods: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Method -> per-image values ``(n,)`` of one dataset and metric (for cumulative error curves).

    With ``options.missing_as_failed`` a short fswild file is padded with NaN to 400 images.
    """
    out = {}
    for m in (methods if methods is not None else results.methods(dataset)):
        x = results.errors(dataset, m, metric)
        if dataset == "fswild" and options.missing_as_failed and x.size < WILD_N:
            x = np.concatenate([x, np.full(WILD_N - x.size, np.nan)])
        out[m] = np.asarray(x, dtype=np.float64)
    return out


# ------------------------------------------------------------------------------------------------ published
_EXPORT_FILES = {
    "table_1_fswild_angle.csv": ("fswild", "yaw"),
    "table_2_fslab_angle.csv": ("fslab", "angle"),
    "table_3_fslab_f.csv": ("fslab", "focal"),
}
_EXPORT_FORMAT = {"CD": ("%1.2f", 1.0), "MNE": ("%1.3f", 1.0), "CR": ("%2.1f", 100.0), "done_rate": ("%2.1f", 100.0)}


def read_export_tables(path: str | Path | Mapping[str, str]) -> "object":
    """Read tables in the layout of the official ``export_table.py`` (published numbers to compare against).

    Parameters
    ----------
    path : str, Path or mapping
        A folder holding any of ``table_1_fswild_angle.csv``, ``table_2_fslab_angle.csv``,
        ``table_3_fslab_f.csv``; one such file (recognised by its name); or a mapping file name -> CSV text.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, grouping, method, metric, bin, published`` (the cell text exactly as written), with
        ``metric`` in CD / MNE / CR (CR in percent as printed) and ``done_rate`` (bin ``all``, percent).
    """
    import pandas as pd

    if isinstance(path, Mapping):
        texts = dict(path)
        where = Path("<memory>")
    else:
        p = Path(path)
        if p.is_dir():
            texts = {n: (p / n).read_text() for n in _EXPORT_FILES if (p / n).is_file()}
        elif p.is_file():
            texts = {p.name: p.read_text()}
        else:
            raise InputError("published tables not found", p, "give a folder with export_table.py's table_*.csv files")
        where = p
        if not texts:
            raise InputError("no table_1_fswild_angle.csv / table_2_fslab_angle.csv / table_3_fslab_f.csv in it", p,
                             "write the published tables in export_table.py's CSV layout")
    recs = []
    for name, text in texts.items():
        if name not in _EXPORT_FILES:
            raise InputError(f"unknown table file name {name!r}", where, f"name it one of {', '.join(_EXPORT_FILES)}")
        dataset, grouping = _EXPORT_FILES[name]
        labels = BIN_LABELS[grouping][:-1]
        rows = list(csv.reader(io.StringIO(text)))
        for lineno, row in enumerate(rows[2:], start=3):
            if not row or not "".join(row).strip():
                continue
            want = 1 + 3 * len(labels) + 1
            if len(row) != want:
                raise InputError(f"{name} line {lineno}: {len(row)} cells, expected {want}", where,
                                 "keep export_table.py's layout: method, (CD, MNE, CR%) per bin, done%")
            method = row[0].strip()
            for k, lab in enumerate(labels):
                for j, metric in enumerate(METRICS):
                    recs.append((dataset, grouping, method, metric, lab, row[1 + 3 * k + j].strip()))
            recs.append((dataset, grouping, method, "done_rate", "all", row[-1].strip()))
    return pd.DataFrame.from_records(recs, columns=["dataset", "grouping", "method", "metric", "bin", "published"])


def compare_export_tables(tables: FaceScapeTables, published) -> "object":
    """Compare recomputed tables with published ones at the published precision.

    Each recomputed value is printed the way ``export_table.py`` prints it (CD ``%1.2f``, MNE ``%1.3f``,
    CR and done rate ``%2.1f`` in percent) and compared as text with the published cell.

    Parameters
    ----------
    tables : FaceScapeTables
    published : pandas.DataFrame
        From :func:`read_export_tables`.

    Returns
    -------
    pandas.DataFrame
        ``published``'s columns plus ``recomputed`` (text, published precision), ``recomputed_value`` (unrounded,
        in the published unit), ``difference`` (``float(recomputed) - float(published)``, i.e. at the published
        precision; 0 where the digits agree) and ``match`` (text equality).
    """
    out = published.copy()
    rec_text, rec_val = [], []
    for row in out.itertuples(index=False):
        try:
            r = tables.row(row.dataset, row.grouping, row.method, "CR" if row.metric == "done_rate" else row.metric)
        except KeyError:
            rec_text.append(None)
            rec_val.append(float("nan"))
            continue
        fmt, scale = _EXPORT_FORMAT[row.metric]
        v = (r.done_rate if row.metric == "done_rate" else r.value(row.bin)) * scale
        rec_text.append(fmt % v)
        rec_val.append(v)
    out["recomputed"] = rec_text
    out["recomputed_value"] = rec_val
    out["difference"] = out["recomputed"].map(_to_float) - out["published"].map(_to_float)
    out["match"] = out["recomputed"] == out["published"]
    return out


def reported_comparison(tables: FaceScapeTables, published=None, methods: Sequence[str] | None = None):
    """Recomputed cells at published precision beside the published ones, with the source of each number.

    Parameters
    ----------
    tables : FaceScapeTables
    published : pandas.DataFrame, str, Path or None
        Published tables in ``export_table.py`` layout (see :func:`read_export_tables`). None: no published text
        is available; the ``published`` column is empty and ``source`` says so.
    methods : sequence of str, optional
        Keep only these methods.

    Returns
    -------
    pandas.DataFrame
        ``dataset, grouping, method, metric, bin, recomputed, published, difference, match, source``.
    """
    import pandas as pd

    if published is None:
        frame = compare_export_tables(tables, read_export_tables(tables.format_export_tables()))
        frame["published"] = None
        frame["difference"] = float("nan")
        frame["match"] = None
        frame["source"] = ("recomputed from per-image errors; published: no text copy available "
                           "(arXiv:2111.01082 Sec. 6 PDF tables / benchmark README figure)")
    else:
        if not isinstance(published, pd.DataFrame):
            published = read_export_tables(published)
        frame = compare_export_tables(tables, published)
        frame["source"] = "recomputed from per-image errors vs published table"
    if methods is not None:
        frame = frame[frame["method"].isin(list(methods))]
    cols = ["dataset", "grouping", "method", "metric", "bin", "recomputed", "published", "difference", "match", "source"]
    return frame[cols].reset_index(drop=True)


def _to_float(s: str) -> float:
    try:
        return float(s)
    except (TypeError, ValueError):
        return float("nan")
