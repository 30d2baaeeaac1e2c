"""Where the real material handed to the team lives: `../shared`, beside the clone.

It holds recorded data (`data/`: Solana transactions, Uniswap pools, pump-and-dump tapes,
labelled finance tweets), official schemas (`schemas/`: CloudEvents, Knative CRDs, func.yaml)
and vendor builds. It is not part of the repository, and a plain clone has none of it: every
test that reads it names its path here and skips with the reason when it is absent. CI
always has it, so there an absence fails instead of skipping. `make eval` leaves the real
corpora out and says so.

Tests locate the material only through this module (tests/test_shared_material.py checks).
A plain module, not a conftest: `make eval` and `make bench` import it too.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
SCHEMAS = SHARED / "schemas"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shown(path: Path) -> str:
    """`path` as the clone sees it: `../shared/...`."""
    return str(Path("..", path.relative_to(ROOT.parent)))


def absent(path: Path, *, plain_clone: str = "skips this test") -> str | None:
    """Why `path` cannot be read (None when it is there), saying what a plain clone does."""
    if path.exists():
        return None
    return (f"{shown(path)} is not beside this clone (real material handed to the team; "
            f"a plain clone {plain_clone})")


def require(path: Path) -> Path:
    """`path`, for a test or fixture that reads it; skip when absent (fail in CI)."""
    __tracebackhide__ = True  # the skip is reported at the test's line, not here
    reason = absent(path)
    if reason is None:
        return path
    if in_ci():
        pytest.fail(f"{reason}; CI must have it")
    pytest.skip(reason)


def needs(path: Path) -> pytest.MarkDecorator:
    """A mark (a module's `pytestmark` or a test's decorator): skip when `path` is absent.

    Never in CI: there the test runs, and fails on the missing file.
    """
    reason = absent(path)
    return pytest.mark.skipif(reason is not None and not in_ci(), reason=reason or "present")
