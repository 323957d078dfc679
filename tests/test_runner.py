"""facenb.runner: cache integrity, lock, outcomes, executors, exit codes, summary writer."""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facenb import runner
from facenb.errors import InputError
from facenb.runner import Item, exit_code, run, write_summary

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------- score functions
def score_sum(item: Item, settings: dict) -> dict:
    """Payload from the inputs' bytes: numbers, an array, a string (module level: picklable)."""
    data = np.concatenate([np.frombuffer(Path(p).read_bytes(), dtype=np.uint8) for p in item.inputs])
    if data.size and data[0] == ord("!"):
        raise InputError("starts with '!'", item.inputs[0], "remove it")
    if data.size and data[0] == ord("?"):
        np.linalg.svd(np.full((3, 3), np.nan))  # LinAlgError: SVD did not converge
    x = data.astype(np.float64) * settings["factor"] + item.params.get("offset", 0)
    return {"mean": np.float64(x.mean()) if x.size else float("nan"), "n": np.int64(x.size), "values": x,
            "name": item.key, "pid": os.getpid() * 0}


_CALLS: list = []


def score_counting(item: Item, settings: dict) -> dict:
    _CALLS.append(item.key)
    if settings.get("_interrupt_after") is not None and len(_CALLS) > settings["_interrupt_after"]:
        raise KeyboardInterrupt
    return score_sum(item, settings)


def _items(tmp: Path, n: int = 5, contents=None) -> list[Item]:
    d = tmp / "in"
    d.mkdir(exist_ok=True)
    items = []
    for i in range(n):
        p = d / f"f{i}.bin"
        p.write_bytes(contents[i] if contents else bytes([i + 1]) * (i + 3))
        items.append(Item(f"s{i}/img {i}", (p,), {"offset": i}))
    return items


def _same(a: runner.RunResult, b: runner.RunResult) -> None:
    assert [o.key for o in a.outcomes] == [o.key for o in b.outcomes]
    for x, y in zip(a.outcomes, b.outcomes):
        assert (x.value is None) == (y.value is None)
        if x.value is not None:
            assert x.value.keys() == y.value.keys()
            for k in x.value:
                if isinstance(x.value[k], np.ndarray):
                    assert x.value[k].dtype == y.value[k].dtype
                    np.testing.assert_array_equal(x.value[k], y.value[k])
                else:
                    assert x.value[k] == y.value[k] and type(x.value[k]) is type(y.value[k])


def _summary(res: runner.RunResult, out: Path) -> dict:
    rows = [{"key": o.key, "status": "ok" if o.status == "cached" else o.status,
             "mean": o.value["mean"] if o.value else None} for o in res.outcomes]
    write_summary(out, "summary", {"mean": float(np.mean([o.value["mean"] for o in res.scored()])),
                                   "counts_scored": len(res.scored())}, rows)
    return {n: (out / n).read_bytes() for n in ("summary.json", "summary.csv")}


# ------------------------------------------------------------------------------------------------ basics
def test_outcomes_in_order_then_cached(tmp_path):
    items = _items(tmp_path)
    first = run(items, score_sum, {"factor": 2.0}, tmp_path / "out", progress=False)
    assert [o.status for o in first.outcomes] == ["ok"] * 5
    assert first.counts() == {"ok": 5, "cached": 0, "missing": 0, "failed": 0}
    assert first.outcomes[2].value["values"].tolist() == [3.0 * 2 + 2] * 5
    assert type(first.outcomes[0].value["mean"]) is float and type(first.outcomes[0].value["n"]) is int
    again = run(items, score_sum, {"factor": 2.0}, tmp_path / "out", progress=False)
    assert [o.status for o in again.outcomes] == ["cached"] * 5 and not again.warnings
    _same(first, again)
    assert exit_code(first) == exit_code(again) == 0
    assert not (tmp_path / "out" / runner.LOCK_NAME).exists()  # released
    # keys with '/' and spaces map to distinct safe files
    names = sorted(p.name for p in (tmp_path / "out" / "cache").glob("*.npz"))
    assert len(names) == 5 and all("/" not in n and " " not in n for n in names)


def test_cache_key_is_content_settings_and_params(tmp_path):
    items = _items(tmp_path)
    out = tmp_path / "out"
    run(items, score_sum, {"factor": 2.0}, out, progress=False)
    # same bytes, new mtime: still cached
    os.utime(items[0].inputs[0], (1, 1))
    r = run(items, score_sum, {"factor": 2.0}, out, progress=False)
    assert r.outcomes[0].status == "cached"
    # other bytes: recomputed silently (a stale entry is not damage)
    items[1].inputs[0].write_bytes(b"\x07\x07")
    r = run(items, score_sum, {"factor": 2.0}, out, progress=False)
    assert [o.status for o in r.outcomes] == ["cached", "ok", "cached", "cached", "cached"] and not r.warnings
    # other settings or params: recomputed; '_' settings are not hashed
    r = run(items, score_sum, {"factor": 3.0}, out, progress=False)
    assert {o.status for o in r.outcomes} == {"ok"}
    r = run(items, score_sum, {"factor": 3.0, "_unhashed": object()}, out, progress=False)
    assert {o.status for o in r.outcomes} == {"cached"}
    moved = [Item(it.key, it.inputs, {"offset": 100}) for it in items]
    r = run(moved, score_sum, {"factor": 3.0}, out, progress=False)
    assert {o.status for o in r.outcomes} == {"ok"}


def test_failures_and_missing_do_not_stop_the_others(tmp_path):
    items = _items(tmp_path, 4, [b"\x01\x02", b"!bad", b"?nan", b"\x05"])
    items.append(Item("gone", (tmp_path / "nope.bin",), missing=f"prediction not found: expected {tmp_path}/nope.bin"))
    items.append(Item("unreadable", (tmp_path / "absent.bin",)))  # no missing note: score_one reports it
    res = run(items, score_sum, {"factor": 1.0}, tmp_path / "out", progress=False)
    st = [o.status for o in res.outcomes]
    assert st == ["ok", "failed", "failed", "ok", "missing", "failed"]
    bad, linalg, _, gone, unreadable = res.outcomes[1:]
    assert bad.reason.startswith(str(items[1].inputs[0])) and "fix: remove it" in bad.reason
    assert linalg.reason == "LinAlgError: SVD did not converge"
    assert "expected" in gone.reason and gone.value is None
    assert unreadable.reason.startswith("FileNotFoundError:")
    assert all("\n" not in o.reason for o in res.outcomes if o.reason)
    assert len(res.problems()) == 4 and res.problems()[0].startswith("s1/img 1: ")
    assert exit_code(res) == 1
    # failures are not cached: a rerun tries them again
    again = run(items, score_sum, {"factor": 1.0}, tmp_path / "out", progress=False)
    assert [o.status for o in again.outcomes] == ["cached", "failed", "failed", "cached", "missing", "failed"]


def test_exit_code_rule(tmp_path):
    O = runner.Outcome
    assert exit_code([O("a", "ok"), O("b", "cached")]) == 0
    assert exit_code([O("a", "ok"), O("b", "missing")]) == 1
    assert exit_code([O("a", "cached"), O("b", "failed")]) == 1
    assert exit_code([O("a", "failed"), O("b", "missing")]) == 2
    assert exit_code([]) == 2
    res = run([Item("x", (), missing="not there")], score_sum, {"factor": 1}, tmp_path / "o", progress=False)
    assert exit_code(res) == 2


def test_duplicate_keys_are_refused(tmp_path):
    items = _items(tmp_path, 2)
    with pytest.raises(InputError, match="listed twice"):
        run([items[0], items[0]], score_sum, {"factor": 1}, tmp_path / "o", progress=False)


# ------------------------------------------------------------------------------------------------ damage
def _damage(path: Path, how: str, other: Path) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "foreign":  # a valid entry of another item
        path.write_bytes(other.read_bytes())
    elif how == "edited":  # a valid npz with the same metadata but another array
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        data["p.values"] = data["p.values"] + 1.0
        with open(path, "wb") as fh:
            np.savez(fh, **data)
    elif how == "not-npz":
        path.write_text('{"key": "x", "errors_mm": 3}')
    elif how == "plain-npy":  # another valid array saved in its place
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(5))


@pytest.mark.parametrize("how", ["truncated", "empty", "foreign", "edited", "not-npz", "plain-npy"])
def test_damaged_entry_recomputed_with_one_warning(tmp_path, how):
    items = _items(tmp_path)
    out = tmp_path / "out"
    first = run(items, score_sum, {"factor": 2.0}, out, progress=False)
    s1 = _summary(first, out)
    entry = runner.cache_path(out, items[2].key)
    _damage(entry, how, runner.cache_path(out, items[3].key))
    seen = []
    again = run(items, score_sum, {"factor": 2.0}, out, progress=False, warn=seen.append)
    assert [o.status for o in again.outcomes] == ["cached", "cached", "ok", "cached", "cached"]
    assert len(seen) == 1 and seen == list(again.warnings)
    assert str(entry) in seen[0] and "damaged cache entry" in seen[0] and "\n" not in seen[0]
    _same(first, again)
    assert _summary(again, out) == s1
    # the entry was rewritten: the third run is all cached, silently
    third = run(items, score_sum, {"factor": 2.0}, out, progress=False, warn=seen.append)
    assert {o.status for o in third.outcomes} == {"cached"} and len(seen) == 1


def test_damage_warning_goes_to_stderr_as_one_line(tmp_path, capfd):
    items = _items(tmp_path, 2)
    out = tmp_path / "out"
    run(items, score_sum, {"factor": 2.0}, out, progress=False)
    runner.cache_path(out, items[0].key).write_bytes(b"")
    run(items, score_sum, {"factor": 2.0}, out, progress=False)
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facenb: warning: ") and "empty file" in err[0]


# ------------------------------------------------------------------------------------------------ resume
def test_interrupted_run_resumes_with_identical_summary(tmp_path):
    items = _items(tmp_path, 6)
    fresh = run(items, score_sum, {"factor": 1.5}, tmp_path / "fresh", progress=False)
    s_fresh = _summary(fresh, tmp_path / "fresh")
    out = tmp_path / "out"
    _CALLS.clear()
    with pytest.raises(KeyboardInterrupt):
        run(items, score_counting, {"factor": 1.5, "_interrupt_after": 2}, out, progress=False)
    assert not (out / runner.LOCK_NAME).exists()  # the lock is released on interrupt
    assert len(list((out / "cache").glob("*.npz"))) == 2
    _CALLS.clear()
    resumed = run(items, score_counting, {"factor": 1.5, "_interrupt_after": None}, out, progress=False)
    assert [o.status for o in resumed.outcomes] == ["cached"] * 2 + ["ok"] * 4
    assert _CALLS == [it.key for it in items[2:]]
    _same(fresh, resumed)
    assert _summary(resumed, out) == s_fresh


# ------------------------------------------------------------------------------------------------ executors
class SubmitAll:
    """A distributed-executor stand-in: runs tasks in reverse order, yields (index, result)."""

    def __init__(self):
        self.calls = 0

    def submit_all(self, fn, tasks):
        self.calls += 1
        for i in reversed(range(len(tasks))):
            yield i, fn(tasks[i])


def test_executors_give_identical_results(tmp_path):
    items = _items(tmp_path, 5, [b"\x01\x02", b"!bad", b"\x03" * 7, b"?x", b"\x05\x06\x07"])
    serial = run(items, score_sum, {"factor": 1.0}, tmp_path / "a", progress=False)
    procs = run(items, score_sum, {"factor": 1.0}, tmp_path / "b", executor="processes", jobs=2, progress=False)
    sub = SubmitAll()
    dist = run(items, score_sum, {"factor": 1.0}, tmp_path / "c", executor=sub, progress=False)
    with cf.ThreadPoolExecutor(2) as ex:
        threads = run(items, score_sum, {"factor": 1.0}, tmp_path / "d", executor=ex, progress=False)
    assert sub.calls == 1
    for other in (procs, dist, threads):
        assert [(o.status, o.reason) for o in other.outcomes] == [(o.status, o.reason) for o in serial.outcomes]
        _same(serial, other)
    # the processes' cache entries are written by the calling process and are read back by a serial run
    again = run(items, score_sum, {"factor": 1.0}, tmp_path / "b", progress=False)
    assert [o.status for o in again.outcomes] == ["cached", "failed", "cached", "failed", "cached"]


def test_unknown_executor(tmp_path):
    with pytest.raises(InputError, match="unknown executor"):
        run(_items(tmp_path, 2), score_sum, {"factor": 1}, tmp_path / "o", executor="threads", progress=False)


# ------------------------------------------------------------------------------------------------ lock
def test_lock_of_a_live_process_refuses(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / runner.LOCK_NAME).write_text(f"{holder.pid} {__import__('socket').gethostname()}\n")
        with pytest.raises(InputError, match="in use by another facenb run") as exc:
            run(_items(tmp_path, 2), score_sum, {"factor": 1}, out, progress=False)
        assert "\n" not in str(exc.value) and str(holder.pid) in str(exc.value)
        assert (out / runner.LOCK_NAME).exists()  # not ours: left alone
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its stale lock is taken over with one warning
    seen = []
    res = run(_items(tmp_path, 2), score_sum, {"factor": 1}, out, progress=False, warn=seen.append)
    assert exit_code(res) == 0 and len(seen) == 1 and "stale lock" in seen[0]
    assert not (out / runner.LOCK_NAME).exists()


_HOLD = """
import sys, time
from pathlib import Path
from facenb import runner

def slow(item, settings):
    Path(settings["_started"]).write_text("x")
    while not Path(settings["_release"]).exists():
        time.sleep(0.05)
    return {"v": 1.0}

if __name__ == "__main__":
    out, started, release = sys.argv[1:4]
    res = runner.run([runner.Item("a")], slow, {"_started": started, "_release": release}, out, progress=False)
    sys.exit(runner.exit_code(res))
"""


def test_two_concurrent_runs_second_exits_2_with_one_line(tmp_path):
    """A real second process (the `facenb now` CLI) on an output folder another run is writing."""
    from test_now import synthetic_now_folder

    ds = synthetic_now_folder(tmp_path / "ds", n_images=2)
    out = tmp_path / "out"
    script = tmp_path / "hold.py"
    script.write_text(_HOLD)
    started, release = tmp_path / "started", tmp_path / "release"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, str(script), str(out), str(started), str(release)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not started.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() - t0 < 120, "the first run did not start"
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "facenb", "now", "--dataset", str(ds), "--predictions",
                                 str(ds / "predictions"), "--out", str(out), "--no-progress"],
                                env=env, capture_output=True, text=True, timeout=300)
    finally:
        release.write_text("go")
        first_out, first_err = first.communicate(timeout=300)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facenb: error: ") and "in use by another facenb run" in lines[0]
    assert "Traceback" not in second.stderr and second.stdout == ""
    assert first.returncode == 0, first_err
    assert not (out / "summary.json").exists()  # the refused run wrote nothing
    assert not (out / runner.LOCK_NAME).exists()


# ------------------------------------------------------------------------------------------------ summary
def test_write_summary_is_strict_json_and_csv(tmp_path):
    import pandas as pd

    write_summary(tmp_path, "s", {"a": float("nan"), "b": [np.float32(1.5), float("inf")], "c": {"d": np.int64(3)},
                                  "p": tmp_path}, [{"x": 1.0, "y": float("nan")}, {"x": None, "z": "t"}])
    text = (tmp_path / "s.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": {"d": 3}, "p": str(tmp_path)}
    assert (tmp_path / "s.csv").read_text().splitlines() == ["x,y,z", "1.0,,", ",,t"]
    write_summary(tmp_path, "f", {}, pd.DataFrame({"u": [1, 2], "v": [0.5, float("nan")]}))
    assert (tmp_path / "f.csv").read_text().splitlines() == ["u,v", "1,0.5", "2,"]
    assert not list(tmp_path.glob(".*.tmp"))
