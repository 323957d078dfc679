"""Public datasets: the registry, the local cache, fetching and verification.

This is the only facenb module that touches the network (``urllib`` from the standard library).

The registry (``facenb/registry/datasets.yaml``, package data) lists every public dataset the notebooks use: its
files with size in bytes, SHA-256 digest and origin URL pinned to a commit of a public repository
(``https://raw.githubusercontent.com/<repo>/<commit>/<path>``), a description, what it makes possible and its
licence. It also lists the *licence-gated* datasets (NoW, REALY scans, Stirling/ESRC, Florence/MICC, full
FaceScape), which facenb never downloads: for each it says how to obtain it and which notebook parameter points a
notebook at a local copy.

Where files live
----------------
Cache
    ``cache_dir()/<dataset>/<file>`` (``<file>`` may contain ``/``, e.g. ``eval_result/fswild_DECA/CD_full.txt``).
    :func:`cache_dir` is ``$FACENB_DATA`` when set, otherwise ``$XDG_CACHE_HOME/facenb`` (default
    ``~/.cache/facenb``): never inside the installed package. (The Makefile and the tests set ``FACENB_DATA`` to
    the checkout's git-ignored ``data/cache``.) A cache folder has the mirror layout, so it can serve as a mirror.
Mirror
    A local folder with the same ``<dataset>/<file>`` layout (``--mirror DIR`` or ``$FACENB_DATA_MIRROR``).
    :func:`fetch` copies from it when it holds the file, and downloads from the origin URL otherwise.
Default locations
    Every default dataset folder goes through :func:`locate` (the folder or None) or :func:`require` (the folder,
    or :class:`InputError` saying ``run `facenb data fetch NAME```); the official-output conformance cases through
    :func:`conformance_root` (``$FACENB_CONFORMANCE``).
Package resources
    The published-results table, the seed papers and the notebooks ship inside the package
    (``facenb._resources``, mapped from the repository's ``data/reported/``, ``seeds/`` and ``notebooks/`` by
    ``setup.py``); :func:`resource_dir` gives their folder.

Guarantees
----------
* A file at its final cache path has been verified (size and SHA-256) when it was written: data are written to a
  hidden temporary file in the destination folder, verified, then moved into place with :func:`os.replace`; the
  temporary file is removed on any failure (interrupted download, checksum mismatch, Ctrl-C).
* :func:`path` and :func:`available` re-verify the SHA-256 of cached files (memoised per process on size,
  modification time and inode, for files older than 2 s), so a file damaged later is reported, not used.
* Bad input, a checksum mismatch or a network failure raises :class:`facenb.errors.InputError` with one line
  naming the file (or URL) and the fix.

Environment
-----------
``FACENB_DATA``            cache folder (see above).
``FACENB_DATA_MIRROR``     default mirror for :func:`fetch` and :func:`locate`.
``FACENB_DATA_BASE_URL``   replaces ``https://raw.githubusercontent.com`` in origin URLs (tests, proxies).
``FACENB_DATA_REGISTRY``   another registry YAML with the same schema (tests, private data).
``FACENB_CONFORMANCE``     folder of the official-output conformance cases (:func:`conformance_root`).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, NamedTuple

import yaml

from facenb.errors import InputError

__all__ = [
    "FileInfo",
    "DatasetInfo",
    "FileStatus",
    "ORIGIN_BASE",
    "cache_dir",
    "mirror_dir",
    "registry_path",
    "datasets",
    "dataset",
    "public_datasets",
    "gated_datasets",
    "status",
    "available",
    "path",
    "fetch",
    "locate",
    "require",
    "conformance_root",
    "resource_dir",
    "sha256_file",
    "human_size",
]

ORIGIN_BASE = "https://raw.githubusercontent.com"
DEFAULT_TIMEOUT = 60.0  # seconds per socket operation (connect, each read)
_CHUNK = 1 << 20
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NETWORK_FIX = "check the network or use --mirror DIR / set FACENB_DATA_MIRROR"


# ------------------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class FileInfo:
    """One file of a public dataset.

    Attributes
    ----------
    name : str
        Path relative to the dataset folder (``/``-separated; the key in a mirror is ``<dataset>/<name>``).
    bytes : int
        Size in bytes.
    sha256 : str
        SHA-256 digest, 64 lowercase hex digits.
    url : str
        Origin URL pinned to ``commit`` (``https://raw.githubusercontent.com/<repo>/<commit>/<path>``).
    repo, commit, path : str
        Public repository (``owner/name``), 40-hex commit and path of the file inside the repository.
    """

    name: str
    bytes: int
    sha256: str
    url: str
    repo: str
    commit: str
    path: str


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset in the registry.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"aflw2000_3d"``; what ``facenb data fetch NAME`` takes.
    files : tuple of FileInfo
        Empty for a licence-gated dataset.
    licence : str
        Short licence summary.
    description : str
        One line: what the dataset holds.
    gated : bool
        True for licence-gated datasets, which facenb never downloads.
    how_to_obtain : str
        For a gated dataset: how to obtain it (official website / request procedure, in words). Empty otherwise.
    notebook_parameter : str or None
        Notebook parameter that points a notebook at a local copy (gated datasets), e.g. ``"now_dataset_dir"``.
    enables : str
        What the dataset makes possible in facenb.
    licence_note : str
        The licence note recorded with the files' provenance (public datasets).
    predictions_parameter : str or None
        Notebook parameter for a method's predictions on this benchmark, e.g. ``"now_predictions_dir"``.
    """

    name: str
    files: tuple[FileInfo, ...]
    licence: str
    description: str
    gated: bool = False
    how_to_obtain: str = ""
    notebook_parameter: str | None = None
    enables: str = ""
    licence_note: str = ""
    predictions_parameter: str | None = None

    @property
    def total_bytes(self) -> int:
        """Sum of the files' sizes in bytes."""
        return sum(f.bytes for f in self.files)

    def file(self, name: str) -> FileInfo:
        """The :class:`FileInfo` called ``name``; :class:`InputError` listing the known files otherwise."""
        for f in self.files:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.files[:8]) + (", ..." if len(self.files) > 8 else "")
        raise InputError(f"dataset {self.name} has no file {name!r}", None,
                         f"choose one of: {known} (see `facenb data list`)")

    def gated_message(self) -> str:
        """One line: this dataset is licence-gated, how to obtain it and which parameter to set."""
        params = " / ".join(p for p in (self.notebook_parameter, self.predictions_parameter) if p)
        text = f"{self.name} is licence-gated and never downloaded by facenb: {self.how_to_obtain.rstrip('.')}"
        if params:
            text += f"; then point a notebook at it with the parameter {params}"
        return text


class FileStatus(NamedTuple):
    """State of one dataset file under a root folder (cache or mirror).

    Attributes
    ----------
    file : FileInfo
    path : Path
        Where the file is expected.
    state : str
        ``"verified"`` (size and SHA-256 match), ``"missing"`` or ``"corrupt"``.
    """

    file: FileInfo
    path: Path
    state: str


# ------------------------------------------------------------------------------------------------ locations
def cache_dir() -> Path:
    """The cache folder (not created here).

    Returns
    -------
    Path
        ``$FACENB_DATA`` if set, else ``$XDG_CACHE_HOME/facenb`` (``~/.cache/facenb`` by default); never a folder
        inside the installed package.
    """
    env = os.environ.get("FACENB_DATA")
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "facenb"


RESOURCES = ("reported", "seeds", "notebooks")


def resource_dir(kind: str) -> Path:
    """Folder of data shipped inside the package: ``"reported"`` (``*.csv`` of published results), ``"seeds"``
    (``*.yaml``, one per seed paper) or ``"notebooks"`` (``*.ipynb`` and ``params.yaml``).

    Read with :mod:`importlib.resources` from the subpackage ``facenb._resources.<kind>``: inside the installed
    package for a wheel, the repository's top-level ``data/reported/``, ``seeds/`` or ``notebooks/`` for an
    editable install (both mapped by ``setup.py``).
    """
    import importlib.resources

    if kind not in RESOURCES:
        raise InputError(f"unknown package resource {kind!r}", None, f"use one of {', '.join(RESOURCES)}")
    try:
        folder = importlib.resources.files(f"facenb._resources.{kind}")
    except ModuleNotFoundError:
        raise InputError(f"facenb's packaged {kind} folder is missing (facenb._resources.{kind})", None,
                         "reinstall facenb (`pip install .`, or `pip install -e .` in a checkout)") from None
    if not isinstance(folder, Path):
        raise InputError(f"facenb's packaged {kind} folder is not on the file system ({folder})", None,
                         "install facenb unzipped (pip does so by default)")
    return folder


def mirror_dir(mirror: str | Path | None = None) -> Path | None:
    """The mirror to use: ``mirror`` if given, else ``$FACENB_DATA_MIRROR`` if set (and non-empty), else None.

    An explicit ``mirror`` that does not exist raises :class:`InputError` (a typo should not silently fall back
    to the network); a ``$FACENB_DATA_MIRROR`` that does not exist is ignored (the Makefile sets it to
    ``../shared/data`` whether or not that folder exists).
    """
    if mirror is not None and str(mirror) != "":
        m = Path(mirror).expanduser()
        if not m.is_dir():
            raise InputError("mirror folder not found", m, "give a folder laid out as <dataset>/<file>")
        return m.absolute()
    env = os.environ.get("FACENB_DATA_MIRROR")
    if env:
        m = Path(env).expanduser()
        if m.is_dir():
            return m.absolute()
    return None


def registry_path() -> Path:
    """The registry YAML in use: ``$FACENB_DATA_REGISTRY`` or the packaged ``facenb/registry/datasets.yaml``."""
    env = os.environ.get("FACENB_DATA_REGISTRY")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent / "registry" / "datasets.yaml"


# ------------------------------------------------------------------------------------------------ registry
def _safe_name(name: object, where: Path) -> str:
    p = PurePosixPath(str(name))
    if not str(name) or p.is_absolute() or ".." in p.parts or "\\" in str(name) or str(p) != str(name):
        raise InputError(f"unsafe file name {name!r} in the registry", where, "use a relative path without '..'")
    return str(name)


def _parse_registry(path: Path) -> tuple[DatasetInfo, ...]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("dataset registry not found", path,
                         "reinstall facenb, or unset FACENB_DATA_REGISTRY") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the dataset registry ({type(exc).__name__})", path,
                         "restore the file from the facenb distribution") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), list):
        raise InputError("dataset registry has no 'datasets' list", path, "restore the file from facenb")
    out: list[DatasetInfo] = []
    seen: set[str] = set()
    for i, d in enumerate(doc["datasets"]):
        try:
            name = str(d["name"])
            gated = bool(d.get("gated", False))
            files = []
            for f in d.get("files") or []:
                info = FileInfo(name=_safe_name(f["name"], path), bytes=int(f["bytes"]), sha256=str(f["sha256"]),
                                url=str(f["url"]), repo=str(f["repo"]), commit=str(f["commit"]),
                                path=str(f["path"]))
                if info.bytes <= 0 or not _HEX64.match(info.sha256) or not _HEX40.match(info.commit):
                    raise ValueError(f"file {info.name}: size must be > 0, sha256 64 hex, commit 40 hex")
                if f"/{info.commit}/" not in info.url:
                    raise ValueError(f"file {info.name}: URL not pinned to commit {info.commit}")
                files.append(info)
            if len({f.name for f in files}) != len(files):
                raise ValueError("duplicate file names")
            if not gated and not files:
                raise ValueError("a public dataset needs files")
            info_d = DatasetInfo(
                name=name, files=tuple(files), licence=str(d.get("licence", "")),
                description=str(d.get("description", "")), gated=gated,
                how_to_obtain=str(d.get("how_to_obtain") or ""),
                notebook_parameter=d.get("notebook_parameter") or None, enables=str(d.get("enables") or ""),
                licence_note=str(d.get("licence_note") or ""),
                predictions_parameter=d.get("predictions_parameter") or None)
            if gated and not info_d.how_to_obtain:
                raise ValueError("a gated dataset needs how_to_obtain")
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"bad registry entry #{i} ({exc})", path, "regenerate it with make_registry.py") from None
        if name in seen or name == "all":
            raise InputError(f"duplicate or reserved dataset name {name!r}", path, "regenerate the registry")
        seen.add(name)
        out.append(info_d)
    return tuple(out)


@lru_cache(maxsize=8)
def _registry_cached(path: str, mtime_ns: int) -> tuple[DatasetInfo, ...]:
    return _parse_registry(Path(path))


def datasets() -> list[DatasetInfo]:
    """Every dataset in the registry, public ones first (registry order)."""
    p = registry_path()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = -1
    return list(_registry_cached(str(p), mtime))


def public_datasets() -> list[DatasetInfo]:
    """The datasets facenb can fetch."""
    return [d for d in datasets() if not d.gated]


def gated_datasets() -> list[DatasetInfo]:
    """The licence-gated datasets (never downloaded)."""
    return [d for d in datasets() if d.gated]


def dataset(name: str) -> DatasetInfo:
    """The registry entry called ``name``; :class:`InputError` listing the known names otherwise."""
    for d in datasets():
        if d.name == name:
            return d
    raise InputError(f"unknown dataset {name!r}", None,
                     f"choose one of: {', '.join(d.name for d in datasets())} (see `facenb data list`)")


# ------------------------------------------------------------------------------------------------ verification
def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


_VERIFIED: dict[str, tuple[tuple[int, int, int], str]] = {}  # path -> ((size, mtime_ns, inode), sha256)


def _state(p: Path, f: FileInfo) -> str:
    """``"verified"`` / ``"missing"`` / ``"corrupt"`` for file ``f`` at ``p`` (SHA-256 memoised, see below)."""
    try:
        st = p.stat()
    except OSError:
        return "missing"
    if not p.is_file():
        return "corrupt"
    if st.st_size != f.bytes:
        return "corrupt"
    key = str(p)
    stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    memo = _VERIFIED.get(key)
    if memo is not None and memo[0] == stamp:
        digest = memo[1]
    else:
        try:
            digest = sha256_file(p)
        except OSError:
            return "corrupt"
        # Memoise only files last modified > 2 s ago: file-system timestamps are coarse, so a same-size rewrite
        # within the same tick would otherwise be mistaken for the verified content ("racy" entries, as in git).
        if time.time() - st.st_mtime > 2.0:
            _VERIFIED[key] = (stamp, digest)
    return "verified" if digest == f.sha256 else "corrupt"


def _public(name: str) -> DatasetInfo:
    d = dataset(name)
    if d.gated:
        raise InputError(d.gated_message())
    return d


def status(name: str, root: str | Path | None = None) -> list[FileStatus]:
    """Per-file state of a public dataset under ``root`` (default: :func:`cache_dir`).

    Returns
    -------
    list of FileStatus
        ``(file, path, state)`` with ``state`` in ``{"verified", "missing", "corrupt"}``.
    """
    d = _public(name)
    base = Path(root) if root is not None else cache_dir()
    return [FileStatus(f, base / d.name / f.name, _state(base / d.name / f.name, f)) for f in d.files]


def available(name: str) -> bool:
    """True when every file of public dataset ``name`` is in the cache and verified (False for gated ones)."""
    d = dataset(name)
    if d.gated:
        return False
    return all(s.state == "verified" for s in status(name))


def path(name: str, file: str | None = None) -> Path:
    """Local path of a cached dataset folder (``file=None``) or of one cached file; never downloads.

    Raises
    ------
    InputError
        When the dataset is licence-gated, unknown, or not (completely) cached and verified; the message says to
        run ``facenb data fetch <name>``.
    """
    d = _public(name)
    base = cache_dir() / d.name
    if file is not None:
        f = d.file(file)
        state = _state(base / f.name, f)
        if state != "verified":
            what = "is not in the cache" if state == "missing" else "in the cache fails its sha256 check"
            raise InputError(f"{d.name}/{f.name} {what}", base / f.name, f"run `facenb data fetch {d.name}`")
        return base / f.name
    states = [s.state for s in status(name)]
    ok, bad = states.count("verified"), states.count("corrupt")
    if ok != len(states):
        what = f"{bad} cached file(s) fail their sha256 check" if bad else "is not (completely) in the cache"
        raise InputError(f"dataset {d.name} {what} ({ok} of {len(states)} files verified)", base,
                         f"run `facenb data fetch {d.name}`")
    return base


def locate(name: str, parameter_value: str | Path | None = None) -> Path | None:
    """The folder a notebook should read dataset ``name`` from, or None.

    Order: ``parameter_value`` when given and existing; else the cached dataset folder when complete and verified;
    else ``$FACENB_DATA_MIRROR/<name>`` when it holds every file, verified. When this returns None a notebook
    should print ``run `facenb data fetch NAME``` (public) or :meth:`DatasetInfo.gated_message` (gated).

    Parameters
    ----------
    name : str
        Registry name (public or gated).
    parameter_value : str or Path, optional
        The notebook parameter (e.g. ``now_dataset_dir``). A value that does not exist is reported with a
        :class:`UserWarning` and the search goes on.
    """
    d = dataset(name)
    if parameter_value not in (None, ""):
        p = Path(parameter_value).expanduser()
        if p.exists():
            return p
        warnings.warn(f"{p}: not found; looking for {name} in the cache and the mirror instead", stacklevel=2)
    if d.gated:
        return None
    if available(name):
        return cache_dir() / name
    mirror = mirror_dir()
    if mirror is not None and all(s.state == "verified" for s in status(name, mirror)):
        return mirror / name
    return None


def raise_if_corrupt(name: str) -> None:
    """Raise :class:`InputError` naming the first file of public dataset ``name`` that is present in the cache or
    the mirror but fails its size/SHA-256 check (a damaged copy is not "not found": it needs a fresh fetch)."""
    if dataset(name).gated:
        return
    roots = [None] + ([mirror_dir()] if mirror_dir() is not None else [])
    bad = [s for r in roots for s in status(name, r) if s.state == "corrupt"]
    if bad:
        raise InputError(f"dataset {name}: {len(bad)} file(s) present but damaged (size or sha256 differ from the "
                         "registry)", bad[0].path, f"run `facenb data fetch {name} --force` (or repair the mirror)")


def require(name: str, parameter_value: str | Path | None = None) -> Path:
    """The folder to read dataset ``name`` from; :class:`InputError` with the fix when there is none.

    Like :func:`locate`, except that a given ``parameter_value`` must exist (a typo is an error, not a silent
    fall-back) and that a missing dataset raises instead of returning None.

    Parameters
    ----------
    name : str
        Registry name (public or gated).
    parameter_value : str or Path, optional
        A folder the user gave (CLI option, notebook parameter, function argument).

    Raises
    ------
    InputError
        ``parameter_value`` does not exist; or the dataset is in neither the cache nor ``$FACENB_DATA_MIRROR``
        (fix: ``run `facenb data fetch NAME``` for a public dataset, how to obtain it for a gated one).
    """
    d = dataset(name)
    if parameter_value not in (None, ""):
        p = Path(parameter_value).expanduser()
        if not p.exists():
            fix = d.gated_message() if d.gated else f"check the path, or omit it to use `facenb data fetch {name}`"
            raise InputError(f"{name} folder not found", p, fix)
        return p
    found = locate(name)
    if found is not None:
        return found
    if d.gated:
        raise InputError(f"no {name} folder given", None, d.gated_message())
    raise_if_corrupt(name)
    raise InputError(f"dataset {name} is not available: not in the facenb cache ({cache_dir() / name}) nor under "
                     f"FACENB_DATA_MIRROR", None, f"run `facenb data fetch {name}`")


def conformance_root(given: str | Path | None = None) -> Path | None:
    """Folder of the official-output conformance cases (``<benchmark>/<case>/``), or None.

    ``given`` when set (it must exist), else ``$FACENB_CONFORMANCE`` when set and existing, else None (the
    notebooks then skip their conformance sections).
    """
    if given not in (None, ""):
        p = Path(given).expanduser()
        if not p.is_dir():
            raise InputError("conformance folder not found", p, "give the folder holding <benchmark>/<case>/")
        return p
    env = os.environ.get("FACENB_CONFORMANCE")
    if env and Path(env).expanduser().is_dir():
        return Path(env).expanduser()
    return None


# ------------------------------------------------------------------------------------------------ fetching
class _NetworkError(InputError):
    """A download failed for a network reason (not a checksum problem).

    ``unreachable`` is True when the origin could not be reached at all (connection refused, DNS, timeout), in
    which case :func:`fetch` does not try further origin downloads in the same call.
    """

    def __init__(self, url: str, reason: str, unreachable: bool = False):
        super().__init__(f"cannot download {url} ({reason}); {_NETWORK_FIX}")
        self.url, self.reason, self.unreachable = url, reason, unreachable


def _cache_error(where: Path, exc: OSError) -> InputError:
    return InputError(f"cannot write to the cache ({exc.strerror or exc})", where,
                      "free some space or set FACENB_DATA to a writable folder")


def _origin_url(f: FileInfo, base_url: str | None) -> str:
    base = base_url if base_url is not None else os.environ.get("FACENB_DATA_BASE_URL")
    if base and f.url.startswith(ORIGIN_BASE):
        return base.rstrip("/") + f.url[len(ORIGIN_BASE):]
    return f.url


def _check(f: FileInfo, d: DatasetInfo, source: str, digest: str, size: int, fix: str) -> None:
    if size != f.bytes:
        raise InputError(f"size mismatch for {d.name}/{f.name}: expected {f.bytes} bytes, got {size}", source, fix)
    if digest != f.sha256:
        raise InputError(f"sha256 mismatch for {d.name}/{f.name}: expected {f.sha256}, got {digest}", source, fix)


class _Sink:
    """Writes chunks to the temporary file, hashing and counting them; write errors become InputError."""

    def __init__(self, fh, where: Path, advance: Callable[[int], None]):
        self.fh, self.where, self.advance = fh, where, advance
        self.hash = hashlib.sha256()
        self.n = 0

    def write(self, chunk: bytes) -> None:
        try:
            self.fh.write(chunk)
        except OSError as exc:
            raise _cache_error(self.where, exc) from None
        self.hash.update(chunk)
        self.n += len(chunk)
        self.advance(len(chunk))


def _copy_into(sink: _Sink, src: Path) -> None:
    try:
        fh = open(src, "rb")
    except OSError as exc:
        raise InputError(f"cannot read the mirror copy ({exc.strerror or exc})", src, "check the mirror folder") from None
    with fh:
        while True:
            try:
                chunk = fh.read(_CHUNK)
            except OSError as exc:
                raise InputError(f"cannot read the mirror copy ({exc.strerror or exc})", src,
                                 "check the mirror folder") from None
            if not chunk:
                break
            sink.write(chunk)


def _download_into(sink: _Sink, url: str, limit: int, timeout: float) -> None:
    """Stream ``url`` into ``sink``, reading at most ``limit + 1`` bytes (one more reveals an oversized body)."""
    from facenb import __version__

    req = urllib.request.Request(url, headers={"User-Agent": f"facenb/{__version__} (data fetch)"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            eof = False
            while sink.n <= limit:
                chunk = resp.read(min(_CHUNK, limit + 1 - sink.n))
                if not chunk:
                    eof = True
                    break
                sink.write(chunk)
            # http.client returns a short body without complaint when the peer closes early: compare with the
            # announced length (a body longer than the registry's size is reported as a size mismatch instead)
            if eof and expected is not None and expected.isdigit() and sink.n < int(expected):
                raise http.client.IncompleteRead(b"", int(expected) - sink.n)
    except urllib.error.HTTPError as exc:
        raise _NetworkError(url, f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise _NetworkError(url, text, unreachable=True) from None
    except http.client.IncompleteRead as exc:
        got = sink.n
        raise _NetworkError(url, f"connection closed after {got} of {got + (exc.expected or 0)} bytes") from None
    except (TimeoutError, socket.timeout):
        raise _NetworkError(url, f"timed out after {timeout:g} s", unreachable=sink.n == 0) from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _NetworkError(url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    except OSError as exc:
        raise _NetworkError(url, exc.strerror or str(exc)) from None


def _remove_stale_parts(dest: Path, older_than_s: float = 3600.0) -> None:
    """Remove temporary files of ``dest`` left by a killed process (older than an hour; never valid anyway)."""
    now = time.time()
    for p in dest.parent.glob(f".{dest.name}.*.part"):
        try:
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()
        except OSError:
            pass


def _fetch_file(d: DatasetInfo, f: FileInfo, dest: Path, mirror: Path | None, base_url: str | None,
                timeout: float, advance: Callable[[int], None], offline: list[_NetworkError]) -> str:
    """Put a verified copy of ``f`` at ``dest``; return where it came from (``"mirror"`` or ``"origin"``)."""
    src = mirror / d.name / f.name if mirror is not None else None
    use_mirror = src is not None and src.is_file()
    url = _origin_url(f, base_url)
    if not use_mirror and offline:  # the origin was unreachable a moment ago: do not wait for it again
        raise _NetworkError(url, f"not tried: {offline[0].reason} for the previous download", unreachable=True)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(dest)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise _cache_error(dest.parent, exc) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            sink = _Sink(fh, tmp, advance)
            if use_mirror:
                _copy_into(sink, src)
                source = str(src)
                fix = ("the mirror copy is damaged or from another version; replace it, or fetch from the origin "
                       "without --mirror / FACENB_DATA_MIRROR")
            else:
                try:
                    _download_into(sink, url, f.bytes, timeout)
                except _NetworkError as exc:
                    if exc.unreachable:
                        offline.append(exc)
                    raise
                source = url
                fix = "the download was corrupted or the origin changed; retry with --force, or use --mirror DIR"
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise _cache_error(tmp, exc) from None
        digest = sink.hash.hexdigest()
        _check(f, d, source, digest, sink.n, fix)
        try:
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except OSError as exc:
            raise _cache_error(dest, exc) from None
        return "mirror" if use_mirror else "origin"
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def human_size(n: float) -> str:
    """Decimal size for humans: ``2768640 -> "2.8 MB"``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _fetch_dataset(d: DatasetInfo, mirror: Path | None, force: bool, progress: bool, base_url: str | None,
                   timeout: float, offline: list[_NetworkError]) -> list[Path]:
    base = cache_dir() / d.name
    todo = [f for f in d.files if force or _state(base / f.name, f) != "verified"]
    paths = [base / f.name for f in d.files]
    if not todo:
        _say(progress, f"{d.name}: {len(d.files)} files already cached and verified ({base})")
        return paths
    total = sum(f.bytes for f in todo)
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=d.name, file=sys.stderr, leave=True)
    advance = bar.update if bar is not None else (lambda n: None)
    sources: dict[str, int] = {}
    try:
        for f in todo:
            src = _fetch_file(d, f, base / f.name, mirror, base_url, timeout, advance, offline)
            sources[src] = sources.get(src, 0) + 1
    finally:
        if bar is not None:
            bar.close()
    how = ", ".join(f"{n} from {'the mirror ' + str(mirror) if s == 'mirror' else 'the origin'}"
                    for s, n in sources.items())
    _say(progress, f"{d.name}: fetched {len(todo)} of {len(d.files)} files ({human_size(total)}; {how}), "
                   f"sha256 verified -> {base}")
    return paths


def fetch(name: str | Iterable[str], mirror: str | Path | None = None, force: bool = False, progress: bool = True,
          base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> list[Path]:
    """Fetch public dataset(s) into the cache, verifying size and SHA-256 of every file.

    For each file: if it is cached and verified (and not ``force``), it is kept; otherwise it is copied from the
    mirror when the mirror holds ``<dataset>/<file>``, else downloaded from its origin URL. Data go to a hidden
    temporary file in the destination folder, are verified, then moved into place; nothing partial is ever left
    under the final name.

    Parameters
    ----------
    name : str or iterable of str
        A dataset name, several, or ``"all"`` (every public dataset; licence-gated ones are skipped with a note,
        and a failing dataset does not stop the others).
    mirror : str or Path, optional
        Local mirror folder laid out as ``<dataset>/<file>``; default ``$FACENB_DATA_MIRROR``.
    force : bool
        Fetch again even if the cached copy verifies.
    progress : bool
        Report progress on stderr (a byte progress bar on a terminal, one line per dataset otherwise).
    base_url : str, optional
        Replaces ``https://raw.githubusercontent.com`` in origin URLs; default ``$FACENB_DATA_BASE_URL``.
    timeout : float
        Seconds allowed for connecting and for each read.

    Returns
    -------
    list of Path
        Cached paths of every file of the fetched datasets.

    Raises
    ------
    InputError
        Unknown or licence-gated dataset named explicitly (with how to obtain it); checksum or size mismatch
        (naming the file, expected vs got); network failure (``cannot download <url> (<reason>); ...``).
        With ``"all"``, raised after every dataset was tried, naming the failed ones and the first error.
    """
    names = [name] if isinstance(name, str) else list(name)
    if not names:
        raise InputError("no dataset named", None, "give a dataset name or 'all' (see `facenb data list`)")
    mirror_path = mirror_dir(mirror)
    everything = "all" in names
    if everything:
        targets = datasets()
    else:
        targets = [dataset(n) for n in dict.fromkeys(names)]
        for d in targets:
            if d.gated:
                raise InputError(d.gated_message())
    offline: list[_NetworkError] = []  # origin unreachable: later origin downloads are not attempted
    out: list[Path] = []
    failed: list[tuple[str, str]] = []
    for d in targets:
        if d.gated:
            param = d.notebook_parameter or "its notebook parameter"
            _say(progress, f"{d.name}: skipped (licence-gated, never downloaded; obtain it yourself and set {param};"
                           f" see `facenb data list`)")
            continue
        try:
            out.extend(_fetch_dataset(d, mirror_path, force, progress, base_url, timeout, offline))
        except InputError as exc:
            if not everything:
                raise
            failed.append((d.name, str(exc)))
            _say(progress, f"{d.name}: FAILED: {exc}")
    if failed:
        raise InputError(f"could not fetch {len(failed)} dataset(s) ({', '.join(n for n, _ in failed)}); "
                         f"first error: {failed[0][1]}")
    return out
