"""The ``facenb`` command line.

Every subcommand is a pair: ``_add_<name>(subparsers)`` builds its parser and sets ``func`` to
``_run_<name>(args) -> int``. Bad input raises :class:`facenb.errors.InputError`; :func:`main` prints its one
line as ``facenb: error: ...`` on stderr and returns exit status 2 (never a traceback).

Threads: for the commands in :data:`SINGLE_THREADED_BLAS` (``facenb now``), :func:`main` sets
``OPENBLAS_NUM_THREADS=1`` and ``OMP_NUM_THREADS=1`` before numpy is imported, each only if the user has not set it
(and only when numpy is not imported yet, i.e. from the console script or ``python -m facenb``). Their scoring runs
BLAS single-threaded anyway (:func:`facenb.align.single_threaded_blas`), so no number changes; what goes is
OpenBLAS starting one thread per core at import (about 0.06 s of CPU for a one-pair ``facenb now``). Set the
variables yourself to choose otherwise; worker processes (``--jobs``) inherit them.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from facenb.errors import FacenbError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    command: str | None = None  # the subcommand on the command line (the top parser reports unknown options)

    def error(self, message: str):  # argparse's own usage errors: one line, exit 2
        words = self.prog.split()
        name = words[-1] if len(words) > 1 else _Parser.command
        see = f"facenb {name} --help" if name else "facenb --help"
        self.exit(EXIT_BAD_INPUT, f"facenb: error: {message} (see '{see}')\n")


# ----------------------------------------------------------------------------------------------- registry
_ADDERS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(adder: Callable[[argparse._SubParsersAction], None]):
    """Register a subcommand parser builder (decorator)."""
    _ADDERS.append(adder)
    return adder


def build_parser() -> argparse.ArgumentParser:
    from facenb import __version__

    parser = _Parser(prog="facenb", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"facenb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for adder in sorted(_ADDERS, key=lambda a: a.__module__):  # facenb/cli/<name>.py order, however loaded
        adder(sub)
    return parser


SINGLE_THREADED_BLAS = frozenset({"now"})
"""Commands whose scoring runs BLAS single-threaded: :func:`main` starts them with one OpenBLAS/OpenMP thread."""


def _single_threaded_blas(name: str | None) -> None:
    """``OPENBLAS_NUM_THREADS=1``, ``OMP_NUM_THREADS=1`` for the commands of :data:`SINGLE_THREADED_BLAS`, unless
    set by the user or numpy is already imported (then it is too late to matter)."""
    if name in SINGLE_THREADED_BLAS and "numpy" not in sys.modules:
        import os

        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            os.environ.setdefault(var, "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``facenb`` console script; returns the exit status."""
    name = _command_name(sys.argv[1:] if argv is None else argv)
    _single_threaded_blas(name)
    _load_commands(name)
    parser = build_parser()
    _Parser.command = name if name in parser._subparsers._group_actions[0].choices else None
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except FacenbError as exc:
        print(f"facenb: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("facenb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `facenb data list | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _command_name(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (its first non-option word), if any."""
    return next((str(a) for a in argv if not str(a).startswith("-")), None)


def _load_commands(name: str | None = None) -> None:
    """Import the modules that register subcommands (each ``facenb/cli/<name>.py`` module holds command ``name``).

    With ``name`` of an existing command, only its module is imported (``facenb now ...`` loads neither the
    other scorers nor pandas, the downloader or the notebook machinery); otherwise all of them (``--help``).
    """
    import importlib
    import importlib.util

    if name is not None and name.isidentifier():
        module = f"facenb.cli.{name}"
        if module in sys.modules or importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
            return
    if _ALL_LOADED:
        return
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _ALL_LOADED.append(True)


_ALL_LOADED: list[bool] = []
