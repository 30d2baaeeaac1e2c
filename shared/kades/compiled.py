"""The modules shared/setup.py has Cython compile where `make setup` finds a C compiler, and
which of them run from their source here instead (the same results, slower).

Each package names its own in its __init__.py (COMPILED_TYPED: locals' annotations made C
types; COMPILED_AS_PYTHON: the Python it is, compiled), where setup.py reads them without
importing the package: kades.temporal's alert policy on every point of every token, and
kades.chain's store and detectors on every record of every block (docs/performance.md).
"""
from __future__ import annotations

import importlib

PACKAGES = ("kades.temporal", "kades.chain")


def listed(package: str) -> tuple[str, ...]:
    """The compiled module names a package lists (both tuples, where it has them)."""
    module = importlib.import_module(package)
    return tuple(getattr(module, "COMPILED_TYPED", ())) + tuple(module.COMPILED_AS_PYTHON)


def from_source(package: str) -> list[str]:
    """The modules `package` lists that run from their source here (none where the build had
    a C compiler)."""
    return [name for name in listed(package)
            if importlib.import_module(f"{package}.{name}").__file__.endswith(".py")]


def running_from_source() -> list[str]:
    """Every listed module that runs from its source here, by its full name."""
    return [f"{package}.{name}" for package in PACKAGES for name in from_source(package)]
