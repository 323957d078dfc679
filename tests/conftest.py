"""Shared test fixtures.

Tests that need the public data or the conformance cases read them in place:

* ``FACENB_DATA_MIRROR`` (default ``../shared/data``): the public data mirror, keyed ``dataset/file``.
* ``FACENB_CONFORMANCE`` (default ``../shared/conformance``): cases produced by the official scorers.

When a folder is absent the test is skipped with the reason, except under ``FACENB_REQUIRE_DATA=1`` (set by
``.ci/run``), where it fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests are deterministic (the brief: deterministic seeds): hypothesis derives its examples from the test.
settings.register_profile("facenb", derandomize=True, deadline=None)
settings.load_profile("facenb")

REPO = Path(__file__).resolve().parents[1]
# The download cache of the tests is the checkout's git-ignored data/cache (as the Makefile sets it), not ~/.cache.
os.environ.setdefault("FACENB_DATA", str(REPO / "data" / "cache"))


def _require() -> bool:
    return os.environ.get("FACENB_REQUIRE_DATA") == "1"


def need(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; otherwise skip (or fail under FACENB_REQUIRE_DATA=1)."""
    if path.exists():
        return path
    msg = f"{what} not found at {path}; set {'FACENB_CONFORMANCE' if 'conformance' in what else 'FACENB_DATA_MIRROR'}"
    if _require():
        pytest.fail(msg + " (FACENB_REQUIRE_DATA=1 forbids skipping)")
    pytest.skip(msg)


def conformance_root() -> Path:
    return Path(os.environ.get("FACENB_CONFORMANCE", REPO.parent / "shared" / "conformance"))


def mirror_root() -> Path:
    return Path(os.environ.get("FACENB_DATA_MIRROR", REPO.parent / "shared" / "data"))


@pytest.fixture
def conformance_dir() -> Path:
    return need(conformance_root(), "conformance cases")


@pytest.fixture
def data_mirror() -> Path:
    return need(mirror_root(), "public data mirror")


def seed_pages_root() -> Path:
    return Path(os.environ.get("FACENB_SEED_PAGES", REPO.parent / "shared" / "seeds"))


@pytest.fixture
def seed_pages() -> Path:
    """The five seed paper pages (``../shared/seeds/*.txt``); skip (fail under FACENB_REQUIRE_DATA=1) if absent."""
    path = seed_pages_root()
    if path.is_dir() and any(path.glob("*.txt")):
        return path
    msg = f"seed paper pages not found at {path}; set FACENB_SEED_PAGES"
    if _require():
        pytest.fail(msg + " (FACENB_REQUIRE_DATA=1 forbids skipping)")
    pytest.skip(msg)
