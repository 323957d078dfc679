"""Executing a notebook under papermill in the tests, and reading what it printed."""
from __future__ import annotations

from pathlib import Path


def run_notebook(notebook: Path, out: Path, params: dict, cwd: Path | None = None) -> tuple[str, int]:
    """Execute ``notebook`` into ``out`` with ``params``; fail on any error output.

    Returns the concatenated stream and ``text/plain`` outputs, and the number of PNG outputs.
    """
    import nbformat
    import papermill as pm

    pm.execute_notebook(str(notebook), str(out), parameters=params, kernel_name="python3",
                        cwd=str(cwd or out.parent), progress_bar=False)
    nb = nbformat.read(str(out), as_version=4)
    texts, pngs = [], 0
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o.get("output_type") != "error", o
            if o.get("output_type") == "stream":
                texts.append(o.get("text", ""))
            elif "data" in o:
                pngs += "image/png" in o["data"]
                texts.append(o["data"].get("text/plain", ""))
    return "\n".join(texts), pngs
