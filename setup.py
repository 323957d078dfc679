"""Build step that puts the top-level data into the package (see pyproject.toml, "Package data").

``data/reported/*.csv``, ``seeds/*.yaml`` and ``notebooks/*.ipynb`` (+ ``params.yaml``) stay the source of truth at
the top of the repository; the build maps each folder onto a subpackage of :mod:`facenb._resources` with
``package_dir``, so a wheel carries them as ``facenb/_resources/{reported,seeds,notebooks}/`` and the code reads them
with :mod:`importlib.resources` (``facenb.data.resource_dir``). The same mapping is what an editable install
(``pip install -e .``) resolves, straight to the top-level folders: no copy, no symlink, nothing generated. Each
mapped folder holds an empty ``__init__.py`` because setuptools' editable finder resolves a mapped subpackage only
through its ``__init__.py``.
"""
from setuptools import Extension, find_namespace_packages, setup

RESOURCES = {
    "facenb._resources.reported": "data/reported",
    "facenb._resources.seeds": "seeds",
    "facenb._resources.notebooks": "notebooks",
}

setup(
    # as [tool.setuptools.packages.find] did (namespace folders such as facenb/registry included), plus the mapped ones
    packages=find_namespace_packages(include=["facenb", "facenb.*"], exclude=["*.__pycache__"]) + list(RESOURCES),
    package_dir=RESOURCES,
    package_data={
        "facenb.registry": ["*.csv", "*.yaml"],
        "facenb._resources.reported": ["*.csv"],
        "facenb._resources.seeds": ["*.yaml"],
        "facenb._resources.notebooks": ["*.ipynb", "params.yaml"],
    },
    # Optional C accelerator of facenb.distance.SurfaceQuery (exact closest points, float64). `optional=True`: where
    # no C compiler is available the build goes on without it and facenb uses libigl's AABB tree (same numbers to
    # rounding, slower). No numpy headers are needed (plain buffers).
    ext_modules=[Extension("facenb._closest", ["facenb/_closest.c"], optional=True)],
)
