"""The one way a per-item benchmark runs over a folder: items, a content-hashed cache, a lock, outcomes, exit codes.

A benchmark plugs in with two things:

* a list of :class:`Item` (an image, a subject): a stable ``key``, the ``inputs`` files the score depends on
  (their *bytes* are hashed into the cache key, never their names or mtimes), JSON-able ``params``, and
  ``missing`` -- a one-line note when an input is absent (the item is then reported, never scored);
* a module-level (picklable) function ``score_one(item, settings) -> dict`` returning the item's payload:
  ``float | int | str | bool | None``, JSON-able lists/dicts, or :class:`numpy.ndarray`. It raises
  :class:`facenb.errors.InputError` for a bad item; any other exception also only fails that item
  (``"ExceptionType: message"``, never a traceback).

:func:`run` then

1. takes an exclusive lock on the output folder (``out/.facenb.lock``: ``O_CREAT | O_EXCL`` with the pid and
   host; a second concurrent run raises :class:`~facenb.errors.InputError` -- one line, exit 2 in the CLI; a stale
   lock of a dead process on this host is taken over with one warning);
2. looks every item up in the cache ``out/cache/<safe key>.npz``. The cache key is
   ``sha256(CACHE_VERSION, settings JSON, item.params JSON, sha256 of every input's bytes)`` (settings whose name
   starts with ``_`` are passed to ``score_one`` but not hashed: objects and paths that the hashed settings
   already identify by content). Each entry stores its item key, its cache key and a sha256 of its payload; an
   entry that is damaged, truncated, empty, edited or belongs to another item is recomputed with ONE warning line
   (never trusted, never a traceback); an entry of the same item with another cache key (inputs or settings
   changed) is silently recomputed;
3. scores the rest with the executor and writes each entry as its result arrives (only the calling process
   writes the cache: an interrupted run resumes where it stopped);
4. returns :class:`RunResult` with one :class:`Outcome` per item, in the order of ``items``: ``ok`` (computed),
   ``cached``, ``missing`` or ``failed`` (with its one-line ``reason``). A cached payload equals the computed one
   exactly (payloads are normalised to what the cache stores: numpy scalars become Python numbers).

Executors (``executor=``)
-------------------------
``"serial"``
    In this process, in order.
``"processes"``
    ``jobs`` local worker processes (:class:`concurrent.futures.ProcessPoolExecutor`, ``fork`` where available).
an object with ``submit_all(fn, tasks)``
    The slot for a distributed executor (e.g. Dask). ``fn(task)`` must be called once per task, anywhere;
    ``submit_all`` yields ``(index, result)`` pairs in any order, ``index`` being the task's position in
    ``tasks``; ``result`` is ``fn``'s return value, or an exception instance if the task could not run at all
    (``fn`` itself never raises: it returns the item's failure). Both ``fn`` and the tasks are picklable.
a :class:`concurrent.futures.Executor` or any object with ``map(fn, tasks)``
    Used as is (``map`` must return results in task order).

Exit codes (:func:`exit_code`): ``0`` every item scored; ``1`` some items failed or are missing; ``2`` nothing
scorable (a bad invocation raises :class:`~facenb.errors.InputError` earlier, also ``2``) -- the one rule for
every benchmark CLI. :func:`write_summary` writes strict JSON (NaN and infinities become ``null``) and a CSV,
atomically.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from facenb.errors import InputError

__all__ = ["CACHE_VERSION", "Item", "Outcome", "RunResult", "run", "exit_code", "write_summary", "STATUSES",
           "cache_path", "to_json"]

#: bump when the cache entry layout or hashing changes (old entries are then recomputed)
CACHE_VERSION = "facenb-runner-1"
STATUSES = ("ok", "cached", "missing", "failed")
LOCK_NAME = ".facenb.lock"
_META = "__facenb_meta__"


# =============================================================================================================
# types
# =============================================================================================================
@dataclass(frozen=True)
class Item:
    """One unit of work (an image, a subject).

    Attributes
    ----------
    key : str
        Unique, stable id within a run (``"subject/challenge/image"``, ``"7"``, ...).
    inputs : tuple of Path
        Every file the score depends on; their bytes are hashed into the cache key.
    params : dict
        JSON-able per-item parameters passed to ``score_one`` (hashed into the cache key).
    missing : str or None
        Set when the item cannot be scored because an input is absent: the one-line note saying which path was
        expected. The item gets status ``missing`` and is never scored.
    """

    key: str
    inputs: tuple = ()
    params: dict = field(default_factory=dict)
    missing: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one item: ``status`` in :data:`STATUSES`, the payload (ok/cached), or a one-line reason."""

    key: str
    status: str
    value: dict | None = None
    reason: str | None = None
    seconds: float = 0.0


class RunResult(NamedTuple):
    """Outcomes of :func:`run`, in the order of the items, and the warnings it emitted (cache, lock)."""

    outcomes: list
    warnings: tuple = ()

    def counts(self) -> dict:
        """``{"ok": .., "cached": .., "missing": .., "failed": ..}``."""
        c = {s: 0 for s in STATUSES}
        for o in self.outcomes:
            c[o.status] += 1
        return c

    def scored(self) -> list:
        """The ``ok`` and ``cached`` outcomes, in item order."""
        return [o for o in self.outcomes if o.status in ("ok", "cached")]

    def problems(self) -> list:
        """One line per missing or failed item: ``"<key>: <reason>"``."""
        return [f"{o.key}: {o.reason}" for o in self.outcomes if o.status in ("missing", "failed")]


def exit_code(result: RunResult | Sequence[Outcome]) -> int:
    """The one exit-code rule: 0 all scored; 1 some items failed or missing; 2 nothing scorable."""
    outcomes = result.outcomes if isinstance(result, RunResult) else list(result)
    scored = sum(o.status in ("ok", "cached") for o in outcomes)
    if scored == 0:
        return 2
    return 0 if scored == len(outcomes) else 1


# =============================================================================================================
# payload normalisation and JSON
# =============================================================================================================
def _plain(x: Any) -> Any:
    """JSON-able Python value of ``x`` (numpy scalars -> Python numbers, tuples -> lists, Paths -> str)."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    return x


def to_json(x: Any) -> Any:
    """Like :func:`_plain`, but NaN and infinities become ``None`` (strict JSON)."""
    x = _plain(x)
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [to_json(v) for v in x]
    return x


def _normalise(payload: dict) -> tuple[dict, dict]:
    """Split a payload into (JSON-able scalars, arrays) -- what a cache entry stores."""
    if not isinstance(payload, dict):
        raise TypeError(f"score_one must return a dict, got {type(payload).__name__}")
    scalars, arrays = {}, {}
    for k, v in payload.items():
        if not isinstance(k, str) or "/" in k:
            raise TypeError(f"payload keys must be str without '/', got {k!r}")
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError(f"payload array {k!r} has dtype object")
            arrays[k] = np.ascontiguousarray(v)
        else:
            scalars[k] = _plain(v)
    json.dumps(scalars)  # raises TypeError for anything not JSON-able
    return scalars, arrays


def _payload_sha(scalars: dict, arrays: dict) -> str:
    h = hashlib.sha256(json.dumps(scalars, sort_keys=True).encode())
    for k in sorted(arrays):
        a = arrays[k]
        h.update(f"|{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _value(scalars: dict, arrays: dict) -> dict:
    out = dict(scalars)
    out.update(arrays)
    return out


# =============================================================================================================
# cache
# =============================================================================================================
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def cache_path(out: str | Path, key: str) -> Path:
    """``out/cache/<safe key>.npz``; ``/`` becomes ``__``; a key that had to be changed gets a short hash suffix."""
    safe = _SAFE.sub("_", key.replace("/", "__"))
    if safe != key.replace("/", "__") or len(safe) > 150 or safe in ("", ".", ".."):
        safe = safe[:120] + "-" + hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path(out) / "cache" / f"{safe}.npz"


class _FileHashes:
    """sha256 of file contents, memoised by (path, size, mtime) within one run (a scan shared by many images is
    read once)."""

    def __init__(self):
        self._memo: dict = {}

    def __call__(self, path: Path) -> str:
        st = os.stat(path)
        k = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
        if k not in self._memo:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            self._memo[k] = h.hexdigest()
        return self._memo[k]


def _hashed_settings(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if not str(k).startswith("_")}


def _cache_key(item: Item, settings_json: str, hashes: _FileHashes) -> str | None:
    """The content key of an item, or None when an input cannot be read (then score_one reports it)."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(b"\0settings\0" + settings_json.encode())
    h.update(b"\0params\0" + json.dumps(_plain(item.params), sort_keys=True).encode())
    for p in item.inputs:
        try:
            h.update(b"\0input\0" + hashes(Path(p)).encode())
        except OSError:
            return None
    return h.hexdigest()


def _read_entry(path: Path, item_key: str, key: str) -> tuple[dict | None, str | None]:
    """``(value, None)`` for a valid entry of this item and key; ``(None, None)`` if absent or stale (same item,
    other key); ``(None, why)`` if damaged or foreign."""
    if not path.exists():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as z:
            if _META not in z.files:
                return None, "not a facenb cache entry"
            meta = json.loads(str(z[_META][()]))
            arrays = {k: z["p." + k] for k in meta["arrays"]}
        scalars = meta["scalars"]
        if meta.get("format") != CACHE_VERSION:
            return None, None  # an entry of an older facenb: recomputed like a stale one
        if meta.get("item") != item_key:
            return None, f"entry of another item ({meta.get('item')!r})"
        if meta.get("key") != key:
            return None, None
        if _payload_sha(scalars, arrays) != meta.get("payload_sha256"):
            return None, "checksum mismatch (edited or damaged)"
        return _value(scalars, arrays), None
    except Exception as exc:  # truncated, empty, not a zip, wrong types, missing fields: all "damaged"
        what = "empty file" if path.stat().st_size == 0 else f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
        return None, f"unreadable ({what})"


def _write_entry(path: Path, item_key: str, key: str, scalars: dict, arrays: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": CACHE_VERSION, "item": item_key, "key": key, "payload_sha256": _payload_sha(scalars, arrays),
            "arrays": sorted(arrays), "scalars": scalars}
    buf = io.BytesIO()
    np.savez(buf, **{_META: np.array(json.dumps(meta))}, **{"p." + k: a for k, a in arrays.items()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)


# =============================================================================================================
# lock
# =============================================================================================================
def _hostname() -> str:
    """``socket.gethostname()`` (on POSIX the kernel's node name, without importing socket)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


class _Lock:
    """Exclusive lock on an output folder (``out/.facenb.lock`` holding ``"<pid> <host>"``)."""

    def __init__(self, out: Path, warn: Callable[[str], None]):
        self.path = out / LOCK_NAME
        self.mine = f"{os.getpid()} {_hostname()}\n"
        self.warn = warn

    def acquire(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pass
            except OSError as exc:
                raise InputError(f"cannot create the output lock ({exc.strerror})", self.path,
                                 "give a writable --out folder") from None
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(self.mine)
                return
            try:
                text = self.path.read_text()
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile: try again
            parts = text.split()
            pid = int(parts[0]) if parts and parts[0].isdigit() else None
            host = parts[1] if len(parts) > 1 else None
            stale = pid is not None and host == _hostname() and not _pid_alive(pid) and pid != os.getpid()
            if not stale and not (pid is None and age > 60):
                who = f"process {pid}" + (f" on {host}" if host and host != _hostname() else "") \
                    if pid is not None else "another process"
                raise InputError(f"output folder is in use by another facenb run ({who})", self.path.parent,
                                 f"wait for it to finish, or give another --out (remove {self.path} only if no "
                                 "run is using the folder)")
            self.warn(f"{self.path}: stale lock of {'process ' + str(pid) if pid else 'an unknown process'} "
                      "(no longer running) taken over")
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        raise InputError("could not take the output folder lock", self.path, "retry, or give another --out")

    def release(self) -> None:
        try:
            if self.path.read_text() == self.mine:
                self.path.unlink()
        except OSError:
            pass


# =============================================================================================================
# execution
# =============================================================================================================
def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return " ".join(lines) if lines else ""


def _call(task: tuple) -> tuple:
    """Run ``score_one`` on one item in whatever process: never raises.

    Returns ``("ok", scalars, arrays, seconds)`` or ``("failed", reason, None, seconds)``.
    """
    score_one, item, settings = task
    t0 = time.perf_counter()
    try:
        payload = score_one(item, settings)
        scalars, arrays = _normalise(payload)
        return "ok", scalars, arrays, time.perf_counter() - t0
    except InputError as exc:
        return "failed", _one_line(str(exc)), None, time.perf_counter() - t0
    except Exception as exc:  # any failure of one item must not stop the others
        msg = _one_line(str(exc))
        reason = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
        return "failed", reason, None, time.perf_counter() - t0


def _mp_context():
    import multiprocessing as mp

    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None


def _execute(tasks: list, executor: Any, jobs: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result_of__call or exception)`` for every task."""
    if not tasks:
        return
    if executor == "serial" or (executor == "processes" and (jobs <= 1 or len(tasks) == 1)):
        for i, t in enumerate(tasks):
            yield i, _call(t)
        return
    import concurrent.futures as cf  # here: 5 ms of start-up that the serial run does not need

    if executor == "processes":
        with cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=_mp_context()) as ex:
            yield from _from_futures(ex, tasks)
        return
    if isinstance(executor, str):
        raise InputError(f"unknown executor {executor!r}", None, "use 'serial' or 'processes'")
    if hasattr(executor, "submit_all"):
        yield from executor.submit_all(_call, tasks)
        return
    if isinstance(executor, cf.Executor):
        yield from _from_futures(executor, tasks)
        return
    if hasattr(executor, "map"):
        yield from enumerate(executor.map(_call, tasks))
        return
    raise TypeError("executor must be 'serial', 'processes', or an object with submit_all(fn, tasks) or map(fn, tasks)")


def _from_futures(ex, tasks: list) -> Iterator[tuple[int, Any]]:
    import concurrent.futures as cf

    futs = {ex.submit(_call, t): i for i, t in enumerate(tasks)}
    try:
        for fut in cf.as_completed(futs):
            try:
                yield futs[fut], fut.result()
            except Exception as exc:  # a crashed worker (BrokenProcessPool, ...): the item fails, others go on
                yield futs[fut], exc
    finally:
        for f in futs:
            f.cancel()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, enabled: bool, desc: str):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc or None, unit="item", file=sys.stderr, leave=False)


def _stderr_warning(msg: str) -> None:
    print(f"facenb: warning: {msg}", file=sys.stderr)


def run(items: Sequence[Item], score_one: Callable[[Item, dict], dict], settings: dict, out: str | Path, *,
        executor: Any = "serial", jobs: int = 1, progress: bool = True, desc: str = "",
        warn: Callable[[str], None] | None = None) -> RunResult:
    """Score ``items`` with ``score_one``, through the cache in ``out/cache`` and under the lock of ``out``.

    Parameters
    ----------
    items : sequence of Item
        Keys must be unique.
    score_one : callable ``(item, settings) -> dict``
        Module-level (picklable) function; see the module docstring for the payload types.
    settings : dict
        Passed to every ``score_one`` call. Keys not starting with ``_`` must be JSON-able and are hashed into
        every cache key; ``_``-keys are passed but not hashed.
    out : path
        Output folder (created). Holds ``.facenb.lock`` during the run and ``cache/``.
    executor : ``"serial"``, ``"processes"`` or an executor object
        See the module docstring.
    jobs : int
        Worker processes for ``"processes"``.
    progress : bool
        One tqdm bar on stderr over all items.
    desc : str
        Label of the progress bar.
    warn : callable, optional
        Receives each one-line warning (default: ``facenb: warning: ...`` on stderr).

    Returns
    -------
    RunResult
        Outcomes in the order of ``items``.

    Raises
    ------
    InputError
        Another run holds the lock of ``out``; ``out`` cannot be created; duplicate item keys.
    """
    items = list(items)
    out = Path(out)
    warnings: list[str] = []

    def _warn(msg: str) -> None:
        warnings.append(msg)
        (warn or _stderr_warning)(msg)

    seen: set = set()
    for it in items:
        if it.key in seen:
            raise InputError(f"item {it.key!r} is listed twice", None, "list every item once")
        seen.add(it.key)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder ({exc.strerror})", out, "give a writable --out") from None
    if not out.is_dir():
        raise InputError("output path is not a folder", out, "give a folder for --out")
    settings_json = json.dumps(_plain(_hashed_settings(settings)), sort_keys=True)
    lock = _Lock(out, _warn)
    lock.acquire()
    outcomes: list = [None] * len(items)
    bar = _bar(len(items), progress, desc)
    try:
        hashes = _FileHashes()
        todo: list[int] = []
        keys: dict[int, str | None] = {}
        for i, it in enumerate(items):
            if it.missing is not None:
                outcomes[i] = Outcome(it.key, "missing", None, _one_line(it.missing), 0.0)
                bar.update(1)
                continue
            t0 = time.perf_counter()
            ck = _cache_key(it, settings_json, hashes)
            keys[i] = ck
            if ck is not None:
                path = cache_path(out, it.key)
                value, why = _read_entry(path, it.key, ck)
                if why is not None:
                    _warn(f"{path}: damaged cache entry ({why}); recomputed")
                if value is not None:
                    outcomes[i] = Outcome(it.key, "cached", value, None, time.perf_counter() - t0)
                    bar.update(1)
                    continue
            todo.append(i)
        tasks = [(score_one, items[i], settings) for i in todo]
        for j, res in _execute(tasks, executor, jobs):
            i = todo[j]
            it = items[i]
            if isinstance(res, BaseException):
                msg = _one_line(str(res))
                outcomes[i] = Outcome(it.key, "failed", None,
                                      f"worker failed ({type(res).__name__}{': ' + msg if msg else ''})", 0.0)
            else:
                status, a, b, seconds = res
                if status == "ok":
                    if keys[i] is not None:
                        try:
                            _write_entry(cache_path(out, it.key), it.key, keys[i], a, b)
                        except OSError as exc:
                            _warn(f"{cache_path(out, it.key)}: cannot write cache entry ({exc.strerror})")
                    outcomes[i] = Outcome(it.key, "ok", _value(a, b), None, seconds)
                else:
                    outcomes[i] = Outcome(it.key, "failed", None, a, seconds)
            bar.update(1)
        for i in todo:  # an executor that dropped a task: the item fails rather than vanishing
            if outcomes[i] is None:
                outcomes[i] = Outcome(items[i].key, "failed", None, "the executor returned no result", 0.0)
    finally:
        bar.close()
        lock.release()
    return RunResult(outcomes, tuple(warnings))


# =============================================================================================================
# summary writer
# =============================================================================================================
def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Write ``path`` all or nothing: ``write(tmp)`` fills a hidden temporary file beside it
    (``.<name>.<pid>.tmp<suffix>``; ``suffix`` for writers that append one, like ``numpy.save``'s ``.npy``), which
    then replaces ``path`` (:func:`os.replace`). Every output file of a folder run is written this way."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    write(tmp)
    os.replace(tmp, path)


def _atomic_write(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            fh.write(text)

    atomic_write(path, write)


def _csv_cell(v: Any) -> Any:
    v = _plain(v)
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    if isinstance(v, (list, dict)):
        return json.dumps(to_json(v))
    return v


def write_summary(out: str | Path, name: str, summary: dict, rows: Iterable[dict] | Any,
                  columns: Sequence[str] | None = None) -> None:
    """Write ``out/<name>.json`` (strict JSON: NaN/inf -> null, ``allow_nan=False``, indent 1) and
    ``out/<name>.csv`` (``rows``: dicts or a DataFrame; ``columns``, default: in order of first appearance;
    NaN and None as empty cells; the header is written even without rows when ``columns`` is given), each
    atomically.
    """
    out = Path(out)
    _atomic_write(out / f"{name}.json", json.dumps(to_json(summary), indent=1, allow_nan=False))
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        rows = rows.to_dict(orient="records")
    rows = list(rows)
    cols: list = list(columns or [])
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in cols])
    _atomic_write(out / f"{name}.csv", buf.getvalue())
