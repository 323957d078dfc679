"""Time the official REALY scorer on one subject, in one process (run by bench_realy.py, under the official
environment's Python, with the official checkout as the working directory).

usage: official_realy_subject.py CASE_DIR TOPOLOGY SUBJECT_ID OUT_DIR

Imports the official, unmodified ``main.py`` (``czh-98/REALY@3f13e9ad``; its ``__main__`` block does not run) and
calls its ``REALY_eval_all`` on a prediction folder that holds only a link to this subject's ``.obj``. Each subject
is independent in the official loop (its metrical scale is indexed by its id), so this is the official per-subject
cost with the subject's files read, in one process. Prints one JSON line: CPU seconds (``time.process_time``), wall
seconds, and the ``REALY_error.txt`` line it wrote. Written for Python 3.7 (the official environment).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.getcwd())
import main as official  # noqa: E402  (the official main.py of the checkout in the working directory)


def run(case, topology, subject, out):
    pdir = os.path.join(out, "prediction")
    os.makedirs(pdir)
    os.symlink(os.path.abspath(os.path.join(case, "prediction", "%s.obj" % subject)), os.path.join(pdir, "%s.obj" % subject))
    mask = os.path.join(case, "template_mask.txt")
    args = argparse.Namespace(
        REALY_HIFI3D_keypoints=os.path.join(case, "REALY_HIFI3D_keypoints"),
        REALY_scan_region=os.path.join(case, "REALY_scan_region"), prediction=pdir,
        template_mask=mask if os.path.exists(mask) else None, template_topology=topology,
        scale_path=os.path.join(case, "metrical_scale.txt"), save=out)
    c0, w0 = time.process_time(), time.perf_counter()
    official.REALY_eval_all(args)
    c1, w1 = time.process_time(), time.perf_counter()
    with open(os.path.join(out, "REALY_error.txt")) as f:
        line = f.read()
    return {"cpu": c1 - c0, "wall": w1 - w0, "line": line}


if __name__ == "__main__":
    print(json.dumps(run(*sys.argv[1:5])))
