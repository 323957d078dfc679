"""Errors raised for bad input.

Every error facenb raises for bad input is an :class:`InputError` whose message is one line that names
the offending file (or argument) and says how to fix it. The CLI prints that line and exits with status 2.
"""
from __future__ import annotations

from pathlib import Path


class FacenbError(Exception):
    """Base class of facenb's own errors."""


class InputError(FacenbError, ValueError):
    """Bad user input: one line naming the file and the fix.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or Path, optional
        The file the problem is in; prefixed to the message.
    fix : str, optional
        How to fix it; appended to the message.
    """

    def __init__(self, message: str, path: str | Path | None = None, fix: str | None = None):
        self.path = None if path is None else str(path)
        self.fix = fix
        text = message.strip().replace("\n", " ")
        if self.path is not None:
            text = f"{self.path}: {text}"
        if fix:
            text = f"{text} (fix: {fix.strip()})"
        super().__init__(text)
