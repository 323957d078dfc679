"""`make bench`: campaign throughput (facenb.campaign) with 1 and 2 local processes and 1 and 2 Dask workers, and an
estimate of a checkpoint sweep from the measured per-item costs.

Workload: the conformance cases (``FACENB_CONFORMANCE``; REALY also needs the templates, ``FACENB_DATA_MIRROR``):
``N_METHODS`` copies of the NoW ``challenge`` predictions (4 images each) and of the REALY HIFI3D subject, every
copy in its own folder (so nothing is shared through the cache); every configuration scores into a fresh folder.
The configurations run interleaved, ``ROUNDS`` times, and the best wall time of each is kept (the machine is shared:
the load average is printed). Dask runs use a ``LocalCluster`` of single-threaded worker processes (the test suite
runs a real scheduler and worker subprocesses); its start-up is not timed.

Estimate: 50 checkpoints x (NoW validation ~410 images -- 20 of NoW's 100 subjects, 2054 images -- + REALY 100
subjects + Stirling/ESRC 2000 images). Per-item seconds: NoW and REALY as measured here (mean over the items of
each item's best serial time; the conformance NoW images have 50k and 2k cropped scan points, a real NoW scan has
~120k vertices before cropping); Stirling on a synthetic release (``facenb.synth.synth_stirling``, 2 subjects x 2
images; needs ``surrey_face_model`` in the data mirror, else costed like a NoW image) -- its scans are smaller than
real Stirling/ESRC scans, so this is a lower bound. Time on W workers: total / W (one free core per worker), and
total / (W x efficiency) with the 2-worker Dask efficiency measured here (pessimistic on a shared machine); each
at least the client's serial cost per task (cache lookup and write, measured by a cached rerun) times the task
count, and at least the longest item.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
N_METHODS = 2
ROUNDS = 2
SWEEP = {"checkpoints": 50, "now_val": 410, "realy": 100, "stirling": 2000}


def _spec(conf: Path, work: Path) -> Path | None:
    import yaml

    from facenb.benchmarks import realy
    from facenb.errors import InputError

    ch = conf / "now" / "challenge"
    rc = conf / "realy" / "realy01_hifi3d_topology"
    if not (ch / "imagepathsvalidation.txt").is_file():
        return None
    benches = {"now": {"kind": "now", "dataset": str(ch)}}
    try:
        realy.load_template("HIFI3D")
        benches["realy"] = {"kind": "realy", "keypoints": str(rc / "REALY_HIFI3D_keypoints"),
                            "regions": str(rc / "REALY_scan_region"), "scale": str(rc / "metrical_scale.txt"),
                            "template": "HIFI3D"}
    except InputError:
        print("campaign | REALY templates not found (FACENB_DATA_MIRROR): NoW only")
    sfm = Path(os.environ.get("FACENB_DATA_MIRROR", REPO.parent / "shared" / "data")) / "surrey_face_model"
    if sfm.is_dir():
        from facenb import synth

        synth.synth_stirling(work / "stirling", subjects=2, images_per_subject=2, methods=["precise"], sfm_dir=sfm)
        benches["stirling"] = {"kind": "stirling", "dataset": str(work / "stirling")}
    else:
        print("campaign | surrey_face_model not in the data mirror: no synthetic Stirling benchmark")
    methods = {}
    for k in range(N_METHODS):
        preds = {"now": str(shutil.copytree(ch / "predictions", work / f"m{k}" / "now"))}
        if "realy" in benches:
            preds["realy"] = str(shutil.copytree(rc / "prediction", work / f"m{k}" / "realy"))
        if "stirling" in benches:
            preds["stirling"] = str(shutil.copytree(work / "stirling" / "predictions" / "precise",
                                                    work / f"m{k}" / "stirling"))
        methods[f"m{k}"] = {"predictions": preds}
    spec = work / "spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "bench", "benchmarks": benches, "methods": methods}))
    return spec


def _fmt_hours(s: float) -> str:
    return f"{s / 3600:8.2f} h" if s >= 3600 else f"{s / 60:8.1f} min"


def main() -> int:
    from facenb import campaign

    conf = Path(os.environ.get("FACENB_CONFORMANCE", REPO.parent / "shared" / "conformance"))
    with tempfile.TemporaryDirectory(prefix="facenb_bench_campaign_") as tmp:
        work = Path(tmp)
        spec = _spec(conf, work)
        if spec is None:
            print(f"campaign | conformance cases not found at {conf}: skipped (set FACENB_CONFORMANCE)")
            return 0
        n_tasks = len(campaign.campaign_tasks(campaign.load_spec(spec))[0])
        t0 = time.perf_counter()
        campaign.campaign_tasks(campaign.load_spec(spec))  # listing the items (fixed cost, not per task)
        listing = time.perf_counter() - t0
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("campaign | dask[distributed] not installed: Dask rows skipped (pip install 'facenb[distributed]')")
            Client = None
        load0 = os.getloadavg()[0]
        walls: dict[str, list[float]] = {}
        serial_items = []
        client_per_task = float("inf")
        for r in range(ROUNDS):  # configurations interleaved, best of ROUNDS: robust to other jobs on the machine
            t0 = time.perf_counter()
            serial = campaign.run_campaign(spec, work / f"serial{r}", progress=False)
            walls.setdefault("1 process", []).append(time.perf_counter() - t0)
            serial_items.append(serial.items)
            t0 = time.perf_counter()
            again = campaign.run_campaign(spec, work / f"serial{r}", progress=False)
            client_per_task = min(client_per_task, max(0.0, time.perf_counter() - t0 - listing) / n_tasks)
            assert again.counts()["cached"] == n_tasks
            t0 = time.perf_counter()
            campaign.run_campaign(spec, work / f"proc{r}", executor="processes", jobs=2, progress=False)
            walls.setdefault("2 processes", []).append(time.perf_counter() - t0)
            for w in (1, 2) if Client is not None else ():
                with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, Client(cluster) as client:
                    client.run(lambda: None)  # workers up and importable before timing
                    t0 = time.perf_counter()
                    res = campaign.run_campaign(spec, work / f"dask{w}_{r}", client=client, progress=False)
                    walls.setdefault(f"{w} Dask worker{'s' * (w > 1)}", []).append(time.perf_counter() - t0)
                    assert res.counts()["ok"] == n_tasks
        walls = {k: min(v) for k, v in walls.items()}
        n = n_tasks
        # per-item cost: each item's best time over the serial rounds
        items = serial_items[0].copy()
        items["seconds"] = pd.concat([it["seconds"] for it in serial_items], axis=1).min(axis=1)
        print(f"campaign | load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores; best of "
              f"{ROUNDS} interleaved rounds)")
        per = items.groupby("kind")["seconds"].mean().to_dict()
        print(f"campaign | {N_METHODS} methods x (NoW challenge case, 4 images + REALY HIFI3D case, 1 subject + "
              f"synthetic Stirling set, 4 images) = "
              f"{n} tasks; per-item CPU: " + ", ".join(f"{k} {v:.2f} s" for k, v in per.items())
              + f"; client per cached task {client_per_task * 1000:.1f} ms")
        base = walls["1 process"]
        for name, s in walls.items():
            ref = walls["1 Dask worker"] if "Dask" in name and "1 Dask worker" in walls else base
            print(f"  {name:16s} {s:8.2f} s  {n / s:6.2f} tasks/s  speed-up vs 1 of its kind {ref / s:5.2f}x")
        if "2 Dask workers" in walls:
            eff = min(1.0, walls["1 Dask worker"] / walls["2 Dask workers"] / 2)
        else:
            eff = min(1.0, walls["1 process"] / walls["2 processes"] / 2)
        now_s = per.get("now", 0.0)
        realy_s = per.get("realy", 0.0)
        stirling_s = per.get("stirling", now_s)
        c = SWEEP["checkpoints"]
        tasks = c * (SWEEP["now_val"] + SWEEP["realy"] + SWEEP["stirling"])
        total = c * (SWEEP["now_val"] * now_s + SWEEP["realy"] * realy_s + SWEEP["stirling"] * stirling_s)
        longest = float(items["seconds"].max())
        costed = "" if "stirling" in per else " [costed as NoW images]"
        print(f"  sweep estimate: {c} checkpoints x (NoW val {SWEEP['now_val']} + REALY {SWEEP['realy']} + Stirling "
              f"{SWEEP['stirling']}{costed}) = {tasks:,} tasks, {total / 3600:.1f} CPU-hours; "
              f"2-worker efficiency {eff:.2f}")
        floor = max(tasks * client_per_task, longest)
        for w in (1, 16, 256):
            ideal = max(total / w, floor)
            measured = max(total / (w * (eff if w > 1 else 1.0)), floor)
            print(f"    {w:4d} worker(s) {_fmt_hours(ideal)} with one free core per worker; {_fmt_hours(measured)} at "
                  f"the 2-worker efficiency measured here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
