"""Time the official NoW scorer on one pair, in one process (run by run.py, under the official environment's
Python, with an official ``now_evaluation`` checkout -- its ``sbody``/``smpl_webuser`` in place and built, as its
README prescribes -- as the working directory).

usage: official_now_pair.py SCAN SCAN_LMKS PRED PRED_LMKS REPEAT [UNIT]

UNIT (m, cm or mm) selects the official metric mode. Imports the official, unmodified modules
(``soubhiksanyal/now_evaluation@7bd14985``): the scoring core is ``scan2mesh_computations.compute_errors`` (or
``scan2mesh_computations_metrical.compute_errors``) on meshes loaded by psbody and landmarks loaded by the official
``load_pp`` / ``load_txt``; files to distances is what its ``process_single_file`` does for one image (the
prediction read with psbody, its landmarks with ``load_txt``, then ``compute_error_metric``, which reads the scan),
without the shuffle. One untimed warm-up, then the best of REPEAT CPU times (``time.process_time``) of each, with
the official dogleg's printing silenced as its command line does. Prints one JSON line. One BLAS thread.
Written for Python 3.8 (the official environment).
"""
import os
import sys

for _k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_k] = "1"
sys.path.insert(0, os.getcwd())

import contextlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from psbody.mesh import Mesh  # noqa: E402

import compute_error as ce  # noqa: E402  (official)
import scan2mesh_computations as s2m  # noqa: E402  (official, nonmetric)
import scan2mesh_computations_metrical as s2m_metric  # noqa: E402  (official, metric)


@contextlib.contextmanager
def _quiet():
    with open(os.devnull, "w") as devnull:
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = devnull
        try:
            yield
        finally:
            sys.stdout, sys.stderr = out, err


def _best(fn, repeat):
    with _quiet():
        out = fn()
    best = float("inf")
    for _ in range(repeat):
        c = time.process_time()
        with _quiet():
            fn()
        best = min(best, time.process_time() - c)
    return best, out


def main(scan_path, scan_lmks, pred_path, pred_lmks, repeat, unit=None):
    repeat = int(repeat)
    scan, slm = Mesh(filename=scan_path), ce.load_pp(scan_lmks)
    pred, plm = Mesh(filename=pred_path), ce.load_txt(pred_lmks)
    if unit:
        core = lambda: s2m_metric.compute_errors(scan.v, scan.f, slm, pred.v, pred.f, plm, unit)  # noqa: E731
    else:
        core = lambda: s2m.compute_errors(scan.v, scan.f, slm, pred.v, pred.f, plm)  # noqa: E731

    def files():
        p = Mesh(filename=pred_path)
        return ce.compute_error_metric(scan_path, scan_lmks, p, ce.load_txt(pred_lmks), predicted_mesh_unit=unit,
                                       metrical_eval=bool(unit))

    t_core, d = _best(core, repeat)
    t_files, _ = _best(files, repeat)
    d = np.asarray(d, dtype=np.float64).ravel()
    print(json.dumps({"core": t_core, "files": t_files, "n_points": int(d.size), "mean_mm": float(d.mean())}))


if __name__ == "__main__":
    main(*sys.argv[1:])
