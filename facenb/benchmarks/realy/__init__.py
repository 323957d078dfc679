"""REALY region metric (Chai et al., "REALY: Rethinking the Evaluation of 3D Face Reconstruction", ECCV 2022).

Reproduces the official scorer ``czh-98/REALY`` (``main.py`` with ``utils/gICP.py``, ``utils/rICP.py``,
``utils/eval.py``, ``utils/NICP.py``, ``utils/util.py``, ``utils/io_obj.py``) with numpy, scipy, libigl and the
CHOLMOD bundled in cvxopt's wheels (no scikit-sparse build, no trimesh in the loop). Per subject and region ``r`` in (nose, mouth, forehead,
cheek):

1. **Keypoints.** The 85 REALY keypoints of a prediction are barycentric combinations on the template's
   triangles (:func:`barycentric_keypoints`): row ``[t, w0, w1]`` of the template's keypoint file gives
   ``w0 v[f0] + w1 v[f1] + (1 - w0 - w1) v[f2]`` with ``(f0, f1, f2)`` = triangle ``t`` of the template OBJ
   as the official reader triangulates it (quad ``a b c d`` -> ``(a, b, c), (a, c, d)``).
2. **Global alignment** on the keypoints 36, 39, 42, 45, 33, 48, 54 (:func:`global_alignment`): the official
   ``fit_icp_RT``: ``R = U V^T`` from the SVD of ``W = T_c S_c^T`` *without a reflection guard*, scale
   ``s = Σ|T_c| / Σ|R S_c|`` (an L1 ratio, not Umeyama's), ``t = mean(T - s R S)``; the prediction (float32, as
   the official OBJ reader stores it) is multiplied by ``s`` *in float32* (numpy 1.x value-based casting), then
   rotated and translated in float64.
3. **Region rigid ICP** (:func:`region_rigid_icp`), separately for every region from the global pose: the
   correspondences are the closest points on the (whole, unmasked) prediction surface of the region's scan
   vertices, stacked with ``int(n_scan / n_kp)`` (cheek: ``int(n_scan / n_kp / 4)``) copies of the region's
   predicted and ground-truth keypoints (nose uses ``nose_part``); rigid ``fit_icp_RT`` without scale; the
   error ``mean(|R c + t - g|²)`` is evaluated in float32; stop when it changes by less than ``1e-6`` or after
   100 iterations -- and, as in the official loop, the transform computed in the last iteration is *not*
   applied. Vertices are rounded to float32 after every update.
4. **Bidirectional error** (:func:`region_error`): the scan region (trimesh ``process=True``: duplicate
   vertices merged, unreferenced ones dropped) is deformed onto the closest points ``c_i`` of its vertices on
   the region-aligned (and, with a template mask, masked) prediction by optimal-step non-rigid ICP
   (:func:`nonrigid_icp`): per vertex a 4x3 affine ``X_i``, stiffness ``α² ||(M ⊗ G) X||²`` over the scan's
   edges, data ``Σ w_i² |[v_i 1] X_i - c_nn(i)|²`` (nearest neighbour in the point set ``{c_i}``, inlier if
   closer than ``max(2 mean, 1)``) and keypoint terms. Stages: nose / mouth / forehead: ``α = 150``,
   ``G = diag(2, 2, 3, 2)``, keypoints only (weight 50), one step; then ``α = 50 e^{-k/2}`` (k = 0, 1, 2),
   ``G = I``, keypoint weight ``5 e^{-0.9 n}`` (``n`` = solves so far), until ``|X - X_prev|_F <= 2^{-k}`` or
   after 11 steps. Cheek: no keypoints, ``α = 50 e^{-k/2}``, threshold ``2^{-k}``, no step limit. The scan's
   vertices are rounded to float32 where the official code builds its sparse matrices. Finally the deformed
   scan's closest points ``q_i`` on the prediction give the error
   ``e_r = mean_i |q_i - v_i| × metrical_scale[id]`` in mm, measured from the *original* scan vertices.
5. **Aggregation** (:func:`official_statistics`): ``REALY_error.txt`` holds ``str(e)[:9]`` (truncated, not
   rounded); the printed average / median / standard deviation (ddof = 1) per region are computed from those
   truncated values, ``all`` = mean of the four region averages.

Closest points are exact (:class:`facenb.distance.SurfaceQuery`), with trimesh 3.12's choice between two candidate triangles whose
squared distances differ by less than ``1e-8`` (the one whose normal best faces the query point) reproduced
(:class:`facenb.distance.TrimeshSurface`), because the official numbers depend on it at the 1e-6 mm level.

Sparse solves: the official code factorises ``A^T A`` with CHOLMOD at every step; so does facenb (cvxopt's
CHOLMOD: the matrix assembled in one fill-reducing order per region, its pattern analysed once, a supernodal
factorisation per step). Without cvxopt every stage's first system is factorised with SuperLU (scipy) and the
stage's later systems are solved by preconditioned conjugate gradients with that factorisation, to a relative
energy-norm error of 1e-12. The first, keypoint-only stage is solved in closed form through the grounded scalar
Laplacian. The two paths agree to ~1e-11 relative, below the scorer's own sensitivity: perturbing the official pipeline's solves by 1e-10
moves a region error by up to ~5e-7 mm, so agreement with the official digits beyond ~1e-6 mm cannot be
expected from any independent solver (CHOLMOD builds included).

Layout: :mod:`~facenb.benchmarks.realy.template` (OBJ reader, templates, barycentric keypoints),
:mod:`~facenb.benchmarks.realy.protocol` (one subject: steps 2-5), :mod:`~facenb.benchmarks.realy.folder`
(official folders on :mod:`facenb.runner`). Every name of the former single module is importable from here.
"""
from __future__ import annotations

from facenb.benchmarks.realy import template  # noqa: F401
from facenb.benchmarks.realy import protocol  # noqa: F401
from facenb.benchmarks.realy import folder  # noqa: F401
from facenb.benchmarks.realy.template import (  # noqa: F401 -- the names of the former realy.py module
    REGIONS,
    KEYPOINT_REGIONS,
    TEMPLATE_NAMES,
    N_KEYPOINTS,
    RealyMesh,
    read_obj,
    RealyTemplate,
    _template_dir,
    _CANONICAL_7,
    _layout_residual,
    load_template,
    barycentric_keypoints,
)
from facenb.benchmarks.realy.protocol import (  # noqa: F401 -- the names of the former realy.py module
    _RIGID_KEYPOINTS,
    _NONRIGID_KEYPOINTS,
    _RICP_MAX_ITER,
    _RICP_TOL,
    _NICP_EPSILON,
    _NICP_GAMMA,
    _NICP_ALPHA,
    _NICP_ALPHA_KP,
    _NICP_KP_WEIGHT,
    _NICP_MAX_STEP,
    _official_fit,
    GlobalAlignment,
    global_alignment,
    RigidICPResult,
    region_rigid_icp,
    process_scan,
    OFFICIAL_NICP_SCHEDULE,
    OFFICIAL_NICP_SCHEDULE_KEYPOINTS,
    nonrigid_icp,
    RegionResult,
    SubjectInputs,
    SubjectResult,
    official_truncate,
    error_line,
    _check_prediction,
    _read_mask,
    _read_scale,
    load_subject,
    region_error,
    _FORK_CONTEXT,
    _REGION_COST_ORDER,
    _region_task,
    evaluate_subject,
    _evaluate_subject,
    RegionStatistics,
    official_statistics,
    format_statistics,
    load_case_subject,
    load_conformance_subject,
    conformance_rows,
    conformance_summary,
    reproduced_vs_reported,
    parse_error_file,
    alignment_distances,
)
from facenb.distance import (  # noqa: F401 -- trimesh 3.12 closest points, formerly defined here
    _TRIMESH_MERGE_TOL,
    _TRIMESH_ZERO,
    TrimeshSurface,
    _closest_on_triangles,
    _face_rings,
    _trimesh_face_normals,
)
from facenb.nicp import (  # noqa: F401 -- the non-rigid ICP, formerly defined here
    NICPStage,
    NonRigidResult,
    _BlockSystem,
    _edges,
    _factor,
    _keypoint_stage_solve,
    _pcg,
    official_keypoint_weight,
    optimal_step_nicp,
)
from facenb.benchmarks.realy.folder import (  # noqa: F401 -- the names of the former realy.py module
    _CACHE_VERSION,
    _subject_sort_key,
    list_predictions,
    write_error_map_ply,
    read_error_map_ply,
    SubjectOutcome,
    FolderResult,
    _subject_id,
    _mask_check,
    validate_folder,
    folder_items,
    score_subject,
    evaluate_folder,
    _write_outputs,
)

__all__ = [
    "REGIONS",
    "KEYPOINT_REGIONS",
    "TEMPLATE_NAMES",
    "RealyMesh",
    "RealyTemplate",
    "read_obj",
    "load_template",
    "barycentric_keypoints",
    "GlobalAlignment",
    "global_alignment",
    "TrimeshSurface",
    "RigidICPResult",
    "region_rigid_icp",
    "process_scan",
    "NonRigidResult",
    "nonrigid_icp",
    "RegionResult",
    "SubjectResult",
    "SubjectInputs",
    "load_subject",
    "evaluate_subject",
    "official_truncate",
    "error_line",
    "RegionStatistics",
    "official_statistics",
    "parse_error_file",
    "FolderResult",
    "evaluate_folder",
    "N_KEYPOINTS",
    "alignment_distances",
    "format_statistics",
    "load_case_subject",
    "load_conformance_subject",
    "conformance_rows",
    "conformance_summary",
    "reproduced_vs_reported",
    "list_predictions",
    "write_error_map_ply",
    "read_error_map_ply",
    "SubjectOutcome",
    "validate_folder",
    "folder_items",
    "score_subject",
    "NICPStage",
    "optimal_step_nicp",
    "OFFICIAL_NICP_SCHEDULE",
    "OFFICIAL_NICP_SCHEDULE_KEYPOINTS",
]
