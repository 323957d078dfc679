"""Data shipped inside the package: ``reported`` (``data/reported/*.csv``), ``seeds`` (``seeds/*.yaml``) and
``notebooks`` (``notebooks/*.ipynb``, ``params.yaml``).

The folders are the repository's top-level ones, mapped onto these subpackages by ``setup.py``; read them with
:func:`facenb.data.resource_dir`.
"""
