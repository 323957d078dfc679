"""Build ``facenb/registry/datasets.yaml`` from a data manifest (run once, by hand, when the manifest changes).

Usage::

    python facenb/registry/make_registry.py PATH/TO/MANIFEST.csv [--out facenb/registry/datasets.yaml]

The manifest (``dataset,file,bytes,sha256,repo,commit,path,url,licence``; one row per file) supplies the facts:
file names, sizes, SHA-256 digests, the public repository, the pinned commit, the path inside the repository and
the origin URL (``https://raw.githubusercontent.com/<repo>/<commit>/<path>``), plus each dataset's licence note.
This script adds what a manifest does not hold: a one-line description of each dataset, what it makes possible,
a short licence summary, and the licence-gated datasets that facenb never downloads (how to obtain them and which
notebook parameter points a notebook at them).

This file is a maintainer's tool, not part of the installed package (``facenb/registry`` has no ``__init__.py``).
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import yaml

RAW_BASE = "https://raw.githubusercontent.com"
HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")

# ---------------------------------------------------------------------------------------- public datasets
# name -> (description, enables, licence summary). Facts about files come from the manifest only.
PUBLIC = {
    "aflw2000_3d": (
        "AFLW2000-3D ground truth for all 2000 test images: 68 original 3D landmarks (x, y, z in image pixels), "
        "the re-annotated 2D landmarks, the benchmark's crop boxes and the yaw angles (two pose files).",
        "The AFLW2000-3D 68-point NME protocol (yaw bins 0-30, 30-60, 60-90 degrees and their balanced mean) "
        "on any method's predicted landmarks (facenb aflw2000).",
        "MIT (3DDFA repository); annotations derived from AFLW / AFLW2000-3D, research use",
    ),
    "aflw2000_3d_samples": (
        "16 real AFLW2000-3D images (450x450 JPEG) with their official .mat annotations (pt3d_68, roi, pose, "
        "shape and expression parameters).",
        "An end-to-end run of a real method (3DDFA_V2) on real benchmark images, scored with the NME protocol.",
        "MIT (PRNet repository); images from AFLW (Flickr), research use",
    ),
    "tddfa_v2": (
        "3DDFA_V2 MobileNetV1 x0.5 weights (mb05_120x120.pth) and the 68-keypoint BFM bases and parameter "
        "statistics used with them.",
        "Running 3DDFA_V2 on 120x120 crops to predict 68 3D landmarks without PyTorch (facenb.methods.tddfa_v2).",
        "MIT code; BFM2009-derived bases, academic use only",
    ),
    "facescape_benchmark": (
        "FaceScape single-view benchmark: pre-evaluated per-image errors (CD, MNE, CR) of 14 methods on the "
        "in-the-wild (400 images) and in-the-lab (660 images) sets, plus the benchmark's predefined arrays.",
        "Recomputing the FaceScape benchmark tables exactly from per-image errors (facenb facescape).",
        "code MIT; data under the FaceScape licence agreement, research use",
    ),
    "james_scan": (
        "A real textured 3D face scan (james.obj with material and texture) and its 68 3D landmarks "
        "(james.ljson, iBUG order).",
        "Real geometry for alignment and scan-to-mesh tests, demos and per-vertex error heatmaps.",
        "BSD-3-Clause (menpo3d)",
    ),
    "surrey_face_model": (
        "The public shape-only Surrey Face Model (3448 vertices, PCA shape model), 6 expression blendshapes, "
        "the iBUG-68-to-model vertex mapping, contour definitions and reference meshes.",
        "Sampling realistic face shapes with known ground truth for tests and heatmap demos.",
        "Surrey Face Model: free for non-commercial use (see its readme.txt)",
    ),
    "realy_templates": (
        "REALY topology templates (BFM09, Deep3D, 3DDFA_v2, FLAME, HIFI3D .obj), the 85 REALY keypoints as "
        "barycentric coordinates on each template (.txt) and the 100 per-subject metrical scales.",
        "The REALY protocol for predictions in those topologies (the scans themselves are licence-gated).",
        "no licence file in the repository; templates derive from BFM / FLAME / HIFI3D, research use",
    ),
    "prnet_uv": (
        "PRNet UV position-map data: the mean face (43867 vertices), the 68 landmark UV coordinates and the "
        "face-region UV indices.",
        "A realistic dense prediction topology (PRNet output) for tests and demos.",
        "MIT (PRNet repository)",
    ),
    "aflw2000_3d_2dasl40": (
        "40 real AFLW2000-3D test images with their official .mat annotations, and three methods' released "
        "predictions on exactly these images as the 2DASL repository publishes them: PRNet's 68 3D landmarks "
        "(image pixels), 3DDFA's and 2DASL's dense BFM reconstructions (vertex (3, 53215), image pixels), and "
        "keypoints.txt, the 68 BFM landmark indices as 204 flattened xyz offsets that 2DASL's evaluation uses.",
        "Scoring real released predictions of a seed method (PRNet) and two peers with the AFLW2000-3D NME "
        "protocol on 40 images (a public subset of the 2000, not a confirmation of a 2000-image mean).",
        "MIT (2DASL repository); images and annotations from AFLW / AFLW2000-3D, research use",
    ),
    "stirling_fg2018": (
        "The 147 ground-truth landmark files of the Stirling/ESRC scans used by the FG2018 dense 3D face "
        "reconstruction challenge (annotations/{F,M}_3D_N/*.lnd: 7 lines 'id x y z' in mm) and the picture of "
        "the evaluated face area.",
        "The FG2018 (Stirling/ESRC HQ and LQ) protocol's landmark input, given a licensed copy of the scans "
        "(facenb stirling).",
        "MIT (fg2018-competition repository); annotations of the licence-gated Stirling/ESRC scans",
    ),
    "florence_micc_landmarks": (
        "Manually labelled iBUG-68 landmarks (menpo LJSON) of the MICC Florence frontal scans "
        "(MICC_landmarks/subject_NN/Model/frontal{1,2}/obj/*.ljson, 53 subjects) and landmark_ids.pkl.",
        "Landmark-based cropping, interocular normalisation and alignment for the Florence (MICC) protocols, "
        "given a licensed copy of the scans (facenb florence).",
        "GPL-3.0 (GANFit repository); landmarks of the licence-gated MICC Florence scans, research use",
    ),
}

# ------------------------------------------------------------------------------- licence-gated datasets
# Never downloaded by facenb. Websites are named only where the official repositories name them.
GATED = [
    {
        "name": "now",
        "description": "NoW benchmark (RingNet project): 2054 images of 100 subjects with neutral-expression "
                       "3D scans and 7 scan landmarks each; validation ground truth is released, test ground "
                       "truth is held by the organisers.",
        "enables": "The NoW scan-to-mesh error (median / mean / std in mm) computed for real on the validation "
                   "split; test-split numbers can only be quoted (the organisers score submissions).",
        "licence": "NoW / RingNet licence agreement (non-commercial research)",
        "how_to_obtain": "Register on the NoW challenge pages of the RingNet project website (MPI for Intelligent "
                         "Systems; the official now_evaluation repository links it), accept the licence, and "
                         "download the images, image lists, scans and scan landmarks; put a method's predicted "
                         "meshes and 7 landmarks in the layout the NoW challenge describes.",
        "notebook_parameter": "now_dataset_dir",
        "predictions_parameter": "now_predictions_dir",
    },
    {
        "name": "realy",
        "description": "REALY benchmark data: the 100 region-cropped ground-truth scans (REALY_scan_region) and "
                       "their HIFI3D keypoints (REALY_HIFI3D_keypoints), derived from the LYHM (Headspace) data.",
        "enables": "The REALY region-aware NMSE (nose, mouth, forehead, cheek) computed for real on a method's "
                   "predictions (templates and scales are public: dataset realy_templates).",
        "licence": "REALY / LYHM terms (research use, by request)",
        "how_to_obtain": "Follow the participation guideline on the REALY project page (realy3dface.com, linked "
                         "from the official czh-98/REALY repository) to request the benchmark data from its "
                         "authors; the scans derive from the LYHM (Headspace) dataset of the University of York.",
        "notebook_parameter": "realy_dir",
        "predictions_parameter": "realy_predictions_dir",
    },
    {
        "name": "stirling",
        "description": "Stirling/ESRC 3D face database: 3D face scans with 2D photographs of the same people, the "
                       "basis of the Stirling/ESRC single-image 3D reconstruction benchmark (FG 2018).",
        "enables": "Stirling/ESRC (FG 2018) HQ and LQ scan-to-mesh errors computed for real instead of quoted.",
        "licence": "University of Stirling database licence (research use, by request)",
        "how_to_obtain": "Request access to the ESRC 3D face database from the University of Stirling (its "
                         "psychology department's face image collection) and accept its licence terms.",
        "notebook_parameter": "stirling_dir",
        "predictions_parameter": None,
    },
    {
        "name": "florence",
        "description": "Florence (MICC) 2D/3D face dataset: high-resolution 3D scans of 53 subjects with indoor "
                       "and outdoor videos.",
        "enables": "MICC Florence scan-to-mesh errors computed for real instead of quoted.",
        "licence": "MICC, University of Florence dataset licence (research use, by request)",
        "how_to_obtain": "Request the dataset from the Media Integration and Communication Center (MICC) of the "
                         "University of Florence through its dataset request procedure (signed agreement).",
        "notebook_parameter": "florence_dir",
        "predictions_parameter": None,
    },
    {
        "name": "facescape",
        "description": "Full FaceScape data: the benchmark's images, ground-truth meshes and parameters (about "
                       "207 MB), the 14 methods' predicted meshes (about 14.3 GB), and the FaceScape models.",
        "enables": "Re-running the FaceScape evaluator on meshes (CD / MNE / CR per image) rather than "
                   "recomputing tables from the published per-image errors (dataset facescape_benchmark).",
        "licence": "FaceScape licence agreement (non-commercial research)",
        "how_to_obtain": "Register on the FaceScape website (facescape.nju.edu.cn, named in the official "
                         "zhuhao-nju/facescape repository) and accept the FaceScape licence agreement; then "
                         "download the benchmark data and predictions as its benchmark README describes.",
        "notebook_parameter": "facescape_dir",
        "predictions_parameter": None,
    },
]


def _fail(msg: str) -> None:
    sys.exit(f"make_registry: {msg}")


def build(manifest: Path) -> dict:
    """Read ``manifest`` and return the registry as a plain dict (validated)."""
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"dataset", "file", "bytes", "sha256", "repo", "commit", "path", "url", "licence"}
    if not rows or not need <= set(rows[0]):
        _fail(f"{manifest}: expected columns {sorted(need)}")
    by_name: dict[str, list[dict]] = {}
    for r in rows:
        by_name.setdefault(r["dataset"], []).append(r)
    unknown = sorted(set(by_name) - set(PUBLIC))
    if unknown:
        _fail(f"{manifest}: no description for dataset(s) {unknown}; add them to PUBLIC in {__file__}")
    missing = sorted(set(PUBLIC) - set(by_name))
    if missing:
        _fail(f"{manifest}: dataset(s) {missing} described here but absent from the manifest")

    datasets = []
    for name in PUBLIC:  # fixed, readable order
        description, enables, summary = PUBLIC[name]
        notes = {r["licence"] for r in by_name[name]}
        if len(notes) != 1:
            _fail(f"{name}: files carry different licence notes {sorted(notes)}")
        files = []
        for r in sorted(by_name[name], key=lambda r: r["file"]):
            size = int(r["bytes"])
            url = f"{RAW_BASE}/{r['repo']}/{r['commit']}/{r['path']}"
            if size <= 0 or not HEX64.match(r["sha256"]) or not HEX40.match(r["commit"]) or r["url"] != url:
                _fail(f"{name}/{r['file']}: bad size, sha256, commit or URL in the manifest")
            files.append({
                "name": r["file"], "bytes": size, "sha256": r["sha256"],
                "repo": r["repo"], "commit": r["commit"], "path": r["path"], "url": url,
            })
        datasets.append({
            "name": name, "gated": False, "description": description, "enables": enables,
            "licence": summary, "licence_note": notes.pop(), "files": files,
        })
    for g in GATED:
        datasets.append({"name": g["name"], "gated": True, "description": g["description"],
                         "enables": g["enables"], "licence": g["licence"],
                         "how_to_obtain": g["how_to_obtain"], "notebook_parameter": g["notebook_parameter"],
                         "predictions_parameter": g["predictions_parameter"], "files": []})
    return {"schema": 1, "url_base": RAW_BASE, "datasets": datasets}


HEADER = """\
# facenb dataset registry (facts: names, sizes, sha256, origin URLs pinned to a commit, licence notes).
# Generated by facenb/registry/make_registry.py from the data manifest; edit that script, not this file.
# Public datasets are fetched with `facenb data fetch NAME`; `gated: true` ones are never downloaded.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path, help="MANIFEST.csv (dataset,file,bytes,sha256,repo,commit,path,url,licence)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("datasets.yaml"))
    args = ap.parse_args(argv)
    registry = build(args.manifest)
    text = HEADER + yaml.safe_dump(registry, sort_keys=False, width=110, allow_unicode=True)
    args.out.write_text(text, encoding="utf-8")
    n_files = sum(len(d["files"]) for d in registry["datasets"])
    print(f"wrote {args.out}: {len(registry['datasets'])} datasets, {n_files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
