"""Campaigns (facenb.campaign, `facenb campaign`): spec validation, tidy tables, rerun cache, and the Dask proof --
a real scheduler and two worker processes on 127.0.0.1 give the serial numbers, also with one worker killed
mid-run, and a rerun scores nothing."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import conformance_root, mirror_root, need
from facenb import campaign
from facenb.benchmarks import now
from facenb.cli import main
from facenb.errors import InputError
from facenb.results import COLUMNS

NOW_FAST = ["SUBJ_B_james/multiview_expressions/IMG_0003.jpg", "SUBJ_B_james/multiview_occlusions/IMG_0004.jpg"]


# ------------------------------------------------------------------------------------------------ helpers
def perturb_obj(src: Path, dst: Path, seed: int, sigma: float) -> None:
    """Copy an OBJ with Gaussian noise (``sigma`` x its bounding-box diagonal) on every ``v`` line; other lines
    kept (faces, quads, comments)."""
    rng = np.random.default_rng(seed)
    lines = src.read_text().splitlines()
    v = np.array([[float(t) for t in ln.split()[1:4]] for ln in lines if ln.startswith("v ")])
    scale = sigma * float(np.linalg.norm(v.max(0) - v.min(0)))
    out = []
    for line in lines:
        if line.startswith("v "):
            xyz = np.array([float(t) for t in line.split()[1:4]]) + rng.normal(scale=scale, size=3)
            line = "v " + " ".join(f"{x:.9g}" for x in xyz)
        out.append(line)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(out) + "\n")


def perturbed_predictions(src: Path, dst: Path, seed: int, sigma: float) -> Path:
    """A second method: every OBJ of ``src`` perturbed, every other file copied."""
    for f in sorted(src.rglob("*")):
        if f.is_file():
            t = dst / f.relative_to(src)
            t.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".obj":
                perturb_obj(f, t, seed, sigma)
            else:
                shutil.copy(f, t)
    return dst


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def values(res_or_df) -> pd.DataFrame:
    df = res_or_df.results if hasattr(res_or_df, "results") else res_or_df
    return df.set_index(["method", "benchmark", "region", "statistic"])["value"].sort_index()


def assert_identical(a, b) -> None:
    va, vb = values(a), values(b)
    assert list(va.index) == list(vb.index)
    np.testing.assert_array_equal(va.to_numpy(), vb.to_numpy())  # bit for bit (NaN == NaN)


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def now_small(conformance_dir, tmp_path):
    """A 2-image NoW campaign (the fast SUBJ_B images of the challenge case), methods A (the conformance
    predictions) and B (perturbed copy, one image removed)."""
    ch = conformance_dir / "now" / "challenge"
    lst = tmp_path / "two.txt"
    lst.write_text("\n".join(NOW_FAST) + "\n")
    b = perturbed_predictions(ch / "predictions", tmp_path / "B", seed=1, sigma=0.003)
    (b / "SUBJ_B_james" / "multiview_occlusions" / "IMG_0004.obj").unlink()
    spec = {"name": "small", "benchmarks": {"now2": {"kind": "now", "dataset": str(ch), "image_list": "two.txt"}},
            "methods": {"A": {"predictions": {"now2": str(ch / "predictions")}},
                        "B": {"predictions": {"now2": "B"}, "reported": "MICA"}}}
    return write_spec(tmp_path / "spec.yaml", spec), ch, lst


# ------------------------------------------------------------------------------------------------ spec
def _bad(tmp_path, mutate) -> str:
    spec = {"benchmarks": {"n": {"kind": "now", "dataset": str(tmp_path)}},
            "methods": {"m": {"predictions": {"n": str(tmp_path)}}}}
    mutate(spec)
    p = write_spec(tmp_path / "bad.yaml", spec)
    with pytest.raises(InputError) as ei:
        campaign.load_spec(p)
    msg = str(ei.value)
    assert msg.startswith(str(p)) and "\n" not in msg
    return msg


def test_spec_errors_name_file_and_key(tmp_path):
    assert "benchmarks.n.kind" in _bad(tmp_path, lambda s: s["benchmarks"]["n"].update(kind="nope"))
    assert "benchmarks.n.split" in _bad(tmp_path, lambda s: s["benchmarks"]["n"].update(split="train"))
    assert "benchmarks.n.colour" in _bad(tmp_path, lambda s: s["benchmarks"]["n"].update(colour=1))
    assert "benchmarks.n.pred_unit" in _bad(tmp_path, lambda s: s["benchmarks"]["n"].update(metric=True))
    assert "benchmarks.n.metric" in _bad(tmp_path, lambda s: s["benchmarks"]["n"].update(metric="yes"))
    assert "benchmarks.n.dataset" in _bad(tmp_path, lambda s: s["benchmarks"]["n"].update(dataset="nowhere"))
    assert "methods.m.predictions.x" in _bad(tmp_path, lambda s: s["methods"]["m"]["predictions"].update(
        x=str(tmp_path)))
    assert "methods.m.predictions.n" in _bad(tmp_path, lambda s: s["methods"]["m"]["predictions"].update(n="gone"))
    assert "methods.m.colour" in _bad(tmp_path, lambda s: s["methods"]["m"].update(colour="red"))
    assert "methods" in _bad(tmp_path, lambda s: s.pop("methods"))
    assert "benchmarks.r.keypoints" in _bad(tmp_path, lambda s: s["benchmarks"].update(r={"kind": "realy"}))
    assert "methods.a/b" in _bad(tmp_path, lambda s: s["methods"].update({"a/b": {"predictions": {"n": "."}}}))


def test_cli_bad_spec_one_line_exit_2(tmp_path, capsys):
    p = tmp_path / "s.yaml"
    p.write_text("benchmarks: [1, 2\n")
    assert main(["campaign", "run", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facenb: error:") and "not valid YAML" in err[0]
    assert main(["campaign", "run", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert main(["campaign", "status", str(tmp_path / "nothing")]) == 2
    assert "campaign folder not found" in capsys.readouterr().err
    assert main(["campaign", "results", str(tmp_path)]) == 2
    assert "no results.csv in this folder" in capsys.readouterr().err
    (tmp_path / "status.json").write_text("{")
    assert main(["campaign", "status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "status.json is damaged" in err and "Traceback" not in err


def test_batch_size_bounds():
    assert campaign.batch_size(2000, 16) == 32  # 63 batches, not 2000 round trips
    assert campaign.batch_size(100_000, 16) == campaign.MAX_BATCH
    assert campaign.batch_size(3, 2) == 1
    for n in (1, 7, 64, 999, 5000):
        for th in (1, 2, 16, 256):
            b = campaign.batch_size(n, th)
            assert 1 <= b <= campaign.MAX_BATCH and (n + b - 1) // b >= min(n, 4 * th, n // campaign.MAX_BATCH)


# ------------------------------------------------------------------------------------------------ serial
def test_now_campaign_matches_dataset_mode_and_reruns_only_new(now_small, tmp_path, capsys):
    spec, ch, lst = now_small
    out = tmp_path / "out"
    assert main(["campaign", "run", str(spec), "--out", str(out), "--no-progress"]) == 1  # B misses one image
    cap = capsys.readouterr()
    assert "3 scored, 0 cached, 1 missing, 0 failed" in cap.out
    assert "B/now2/SUBJ_B_james/multiview_occlusions/IMG_0004: missing" in cap.err
    res = campaign.load_results(out)
    assert set(res.columns) == set(campaign.RESULT_COLUMNS)
    # the CSV copy alone is the same table, value for value (pyarrow 26 does not import with numpy 1.26)
    pq = out / "results.parquet"
    if pq.exists():
        pq.rename(out / "results.parquet.bak")
        from_csv = campaign.load_results(out)
        (out / "results.parquet.bak").rename(pq)
        pd.testing.assert_frame_equal(from_csv[res.columns].reset_index(drop=True), res.reset_index(drop=True),
                                      check_dtype=False)
    # the campaign's numbers are the dataset mode's (the official aggregation over concatenated distances)
    for method, pred in (("A", ch / "predictions"), ("B", tmp_path / "B")):
        ds = now.evaluate_dataset(ch, pred, tmp_path / f"ds_{method}", image_list=lst, progress=False)
        row = res[(res.method == method) & (res.region == "all")].set_index("statistic")["value"]
        assert row["median"] == ds.overall.median_mm and row["mean"] == ds.overall.mean_mm
        assert row["std"] == ds.overall.std_mm
    b = res[(res.method == "B") & (res.region == "all")].iloc[0]
    assert (b.n_items, b.n_total, b.coverage) == (1, 2, 0.5)
    assert res[res.method == "A"].coverage.eq(1.0).all()
    sel = res.region == "multiview_expressions"
    assert (res[sel & (res.method == "A")].value.to_numpy() != res[sel & (res.method == "B")].value.to_numpy()).all()
    items = campaign.load_items(out)
    assert sorted(items.status) == ["missing", "ok", "ok", "ok"]
    curves = campaign.load_curves(out)
    a = curves[(curves.method == "A") & (curves.region == "all")]
    assert a.fraction.is_monotonic_increasing and a.fraction.iloc[-1] <= 1.0 and a.fraction.iloc[0] == 0.0
    try:
        import pyarrow  # noqa: F401  (pyarrow 26 does not import with numpy 1.26, the lowest pin)
    except ImportError:
        assert not (out / "results.parquet").exists() and "no Parquet copy, pyarrow unusable" in cap.err
    else:
        assert (out / "results.parquet").is_file()
        pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), res)

    # a third method: only its tasks are scored, everything else comes from the cache
    s = yaml.safe_load(spec.read_text())
    s["methods"]["C"] = {"predictions": {"now2": str(perturbed_predictions(ch / "predictions", tmp_path / "C", 2,
                                                                           0.002))}}
    write_spec(spec, s)
    r2 = campaign.run_campaign(spec, out, progress=False)
    assert r2.counts() == {"ok": 2, "cached": 3, "missing": 1, "failed": 0}
    assert_identical(r2.results[r2.results.method != "C"], res)
    capsys.readouterr()
    assert main(["campaign", "status", str(out)]) == 0
    st = capsys.readouterr().out
    assert "B" in st and "missing: B/now2/SUBJ_B_james/multiview_occlusions/IMG_0004" in st
    assert main(["campaign", "results", str(out), "--benchmark", "now2", "--statistic", "median", "--csv"]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    # A and C: all + 2 challenges; B: all + expressions (its occlusions image is missing)
    assert table[0].startswith("method,benchmark") and len(table) == 1 + 3 + 2 + 3


def test_results_as_reported_rows(now_small, tmp_path):
    spec, _, _ = now_small
    out = tmp_path / "out"
    campaign.run_campaign(spec, out, progress=False)
    rep = campaign.load_results(out, as_reported=True)
    assert list(rep.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert rep.tier.eq("R").all() and rep.source_type.eq("facenb campaign").all()
    assert set(rep.method) == {"A", "MICA"}  # B is compared as the published MICA (spec `reported:`)
    assert set(rep.split) == {"two"} and set(rep.benchmark) == {"now"}
    assert rep.note.str.contains("campaign method B").any()
    # next to published numbers: B is matched as MICA, A has no published row
    pub = pd.DataFrame([dict(zip(COLUMNS, ("MICA", "now", "two", "all", "scan_to_mesh", "median", 0.5, "mm", "paper",
                                           "example/repo@0 table", "yes", "", ""))) | {"value_text": "0.50"}])
    diff = campaign.compare_reported(out, pub)
    assert len(diff) == 1 and diff.campaign_method[0] == "B" and diff.published[0] == "0.50"
    mine = rep[(rep.method == "MICA") & (rep.region == "all") & (rep.statistic == "median")].value.iloc[0]
    assert diff.difference[0] == mine - 0.5 and diff.recomputed[0] == mine


def test_concurrent_run_refused(now_small, tmp_path, capsys):
    spec, _, _ = now_small
    out = tmp_path / "out"
    out.mkdir()
    (out / ".facenb.lock").write_text(f"{os.getpid()} {socket.gethostname()}\n")
    assert main(["campaign", "run", str(spec), "--out", str(out), "--no-progress"]) == 2
    assert "in use by another facenb run" in capsys.readouterr().err


def test_stirling_campaign_equals_dataset_mode(tmp_path):
    from facenb import synth
    from facenb.benchmarks import stirling

    sfm = need(mirror_root() / "surrey_face_model", "public data mirror")
    root = tmp_path / "st"
    synth.synth_stirling(root, subjects=2, images_per_subject=2, methods=["precise", "smooth"], sfm_dir=sfm)
    spec = write_spec(tmp_path / "spec.yaml", {
        "benchmarks": {"st": {"kind": "stirling", "dataset": str(root)}},
        "methods": {m: {"predictions": {"st": str(root / "predictions" / m)}} for m in ("precise", "smooth")}})
    res = campaign.run_campaign(spec, tmp_path / "camp", progress=False)
    assert res.counts()["ok"] == 8
    v = values(res)
    for m in ("precise", "smooth"):
        ds = stirling.evaluate_dataset(root, root / "predictions" / m, tmp_path / f"ds_{m}", progress=False)
        for sub, agg in ds.per_subset.items():
            row = res.results[(res.results.method == m) & (res.results.split == sub)].set_index("statistic")["value"]
            assert row["mean"] == agg["value_mm"] and row["median"] == agg["pooled_median_mm"]
            assert row["rmse"] == agg["pooled_rmse_mm"] and row["std"] == agg["std_mm"]
    assert v.index.get_level_values("benchmark").unique().tolist() == ["st"]
    board = campaign.leaderboards(res.results)["st"]
    assert list(board.index) == sorted(board.index, key=lambda m: board.loc[m, "all mean"])


# ------------------------------------------------------------------------------------------------ Dask proof
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def full_campaign(tmp_path_factory):
    """2 methods x 2 benchmarks: NoW challenge (4 images) and REALY HIFI3D (1 subject); method B perturbed."""
    conf = need(conformance_root(), "conformance cases")
    need(mirror_root() / "realy_templates", "public data mirror")
    tmp = tmp_path_factory.mktemp("campaign")
    ch = conf / "now" / "challenge"
    rc = conf / "realy" / "realy01_hifi3d_topology"
    nb = perturbed_predictions(ch / "predictions", tmp / "B_now", seed=3, sigma=0.003)
    rb = perturbed_predictions(rc / "prediction", tmp / "B_realy", seed=4, sigma=0.002)
    spec = {"name": "proof",
            "benchmarks": {"now_ch": {"kind": "now", "dataset": str(ch)},
                           "realy1": {"kind": "realy", "keypoints": str(rc / "REALY_HIFI3D_keypoints"),
                                      "regions": str(rc / "REALY_scan_region"),
                                      "scale": str(rc / "metrical_scale.txt"), "template": "HIFI3D"}},
            "methods": {"A": {"predictions": {"now_ch": str(ch / "predictions"), "realy1": str(rc / "prediction")}},
                        "B": {"predictions": {"now_ch": str(nb), "realy1": str(rb)}}}}
    path = write_spec(tmp / "spec.yaml", spec)
    serial = campaign.run_campaign(path, tmp / "serial", progress=False)
    assert serial.counts() == {"ok": 10, "cached": 0, "missing": 0, "failed": 0}
    return path, tmp, serial


@pytest.mark.slow
def test_serial_campaign_is_official(full_campaign):
    """Method A's numbers are the official scorers' conformance outputs."""
    import json

    _, _, serial = full_campaign
    v = values(serial)
    agg = json.loads((conformance_root() / "now" / "challenge" / "aggregate.json").read_text())
    for stat in ("median", "mean", "std"):  # the tolerances of test_now / test_realy
        assert abs(v[("A", "now_ch", "all", stat)] - agg[f"{stat}_mm"]) < 1e-6
    exp = json.loads((conformance_root() / "realy" / "realy01_hifi3d_topology" / "expected.json").read_text())
    for r in ("nose", "mouth", "forehead", "cheek"):
        assert abs(v[("A", "realy1", r, "mean")] - float(exp["subjects"][0]["written"][r])) < 1e-5
    assert v[("B", "realy1", "nose", "mean")] != v[("A", "realy1", "nose", "mean")]


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two single-threaded `dask worker` processes (no nanny) on 127.0.0.1."""
    pytest.importorskip("distributed")
    from distributed import Client

    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = []

    def start(args, name):
        log = open(tmp_path / f"{name}.log", "w")
        logs.append(log)
        return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path)

    procs = {"scheduler": start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                                 "--no-dashboard", "--no-show"], "scheduler")}
    workers = {}
    client = None
    try:
        for i in range(2):
            wport = _free_port()
            procs[f"w{i}"] = start(["distributed.cli.dask_worker", addr, "--host", "127.0.0.1", "--worker-port",
                                    str(wport), "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                    "--death-timeout", "60", "--name", f"w{i}"], f"w{i}")
            workers[f"tcp://127.0.0.1:{wport}"] = procs[f"w{i}"]
        client = Client(addr, timeout="60s")
        client.wait_for_workers(2, timeout=120)
        yield client, workers
    finally:
        if client is not None:
            client.close()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover - kill() does not fail on Linux
                pass
        for log in logs:
            log.close()


@pytest.mark.slow
def test_dask_cluster_equals_serial(full_campaign, dask_cluster, tmp_path, capsys):
    path, _, serial = full_campaign
    client, workers = dask_cluster
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        res = campaign.run_campaign(path, tmp_path / "dask", client=client, progress=False)
    assert res.counts() == {"ok": 10, "cached": 0, "missing": 0, "failed": 0}
    assert_identical(res, serial)
    # both workers computed (the batches were spread over the cluster)
    assert {t["worker"] for t in stream.data} == set(workers)
    # the CLI on the same cluster: everything cached now, exit 0
    assert main(["campaign", "run", str(path), "--out", str(tmp_path / "dask"), "--executor", "dask",
                 "--scheduler", client.scheduler.address, "--no-progress"]) == 0
    assert "0 scored, 10 cached" in capsys.readouterr().out


@pytest.mark.slow
def test_dask_worker_killed_mid_run(full_campaign, dask_cluster, tmp_path):
    path, _, serial = full_campaign
    client, workers = dask_cluster
    out = tmp_path / "killed"
    box: dict = {}

    def go():
        try:
            box["res"] = campaign.run_campaign(path, out, client=client, progress=False)
        except BaseException as exc:  # pragma: no cover - reported below
            box["exc"] = exc

    th = threading.Thread(target=go, daemon=True)
    th.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and th.is_alive():
        busy = {w: ts for w, ts in client.processing().items() if ts}
        # kill a worker while it is computing a REALY subject (several seconds long), so the loss is mid-task
        for w, ts in busy.items():
            if w in workers and any("_run_batch" in str(t) for t in ts):
                victim = w
                break
        time.sleep(0.05)
    assert victim is not None, "no worker was seen computing"
    time.sleep(0.5)
    assert client.processing().get(victim), "the victim finished before it was killed"
    workers[victim].kill()
    workers[victim].wait(timeout=20)
    th.join(timeout=600)
    assert not th.is_alive(), "campaign did not finish after a worker was killed"
    assert "exc" not in box, box.get("exc")
    res = box["res"]
    assert res.counts() == {"ok": 10, "cached": 0, "missing": 0, "failed": 0}
    assert_identical(res, serial)
    assert len(client.nthreads()) == 1  # the killed worker is gone for good (no nanny)
    # a rerun scores nothing: every task comes from the cache written by the client
    again = campaign.run_campaign(path, out, client=client, progress=False)
    assert again.counts() == {"ok": 0, "cached": 10, "missing": 0, "failed": 0}
    assert_identical(again, serial)


@pytest.mark.slow
def test_cli_local_dask_cluster(now_small, tmp_path, capsys):
    """`--executor dask` without a scheduler: a LocalCluster of --jobs workers, same numbers as serial."""
    pytest.importorskip("distributed")
    spec, _, _ = now_small
    serial = campaign.run_campaign(spec, tmp_path / "serial", progress=False)
    assert main(["campaign", "run", str(spec), "--out", str(tmp_path / "dask"), "--executor", "dask", "--jobs", "2",
                 "--no-progress"]) == 1  # B misses an image
    cap = capsys.readouterr()
    assert "Dask scheduler tcp://127.0.0.1:" in cap.err and "2 worker(s)" in cap.err
    assert "3 scored, 0 cached, 1 missing" in cap.out
    assert_identical(campaign.load_results(tmp_path / "dask"), serial)


@pytest.mark.slow
def test_processes_executor_equals_serial(full_campaign, tmp_path):
    path, _, serial = full_campaign
    res = campaign.run_campaign(path, tmp_path / "proc", executor="processes", jobs=2, progress=False)
    assert res.counts()["ok"] == 10
    assert_identical(res, serial)
