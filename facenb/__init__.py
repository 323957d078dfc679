"""facenb: monocular 3D face reconstruction benchmarks, reproduced to the official scorers' numbers.

Geometry convention (stated once, used everywhere)
--------------------------------------------------
* Points are ``(n, 3)`` ``float64`` rows, in **millimetres** unless a function says otherwise.
* Triangles are ``(m, 3)`` integer rows of 0-based vertex indices.
* Transforms are ``4 x 4`` homogeneous matrices acting on column vectors: ``x' = T @ [x, 1]``;
  for row-stacked points ``apply_transform(T, points)``.
"""
from facenb.errors import FacenbError, InputError

__version__ = "0.1.0"
__all__ = ["FacenbError", "InputError", "__version__"]
