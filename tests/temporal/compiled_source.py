"""The temporal modules shared/setup.py compiles, run as Python from their source: what a
machine without a C compiler runs, to check the compiled ones against."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def compiled(module: ModuleType) -> bool:
    """Whether `module` runs as Cython built it (an extension found before its source)."""
    return not module.__file__.endswith(".py")


def source_path(module: ModuleType) -> Path:
    """The .py file `module` is built from (its own file when it is not compiled)."""
    return Path(module.__file__).with_name(module.__name__.rsplit(".", 1)[1] + ".py")


def source_module(module: ModuleType) -> ModuleType:
    """`module` run as Python from its source, whether or not it is compiled (the modules it
    imports as they are)."""
    spec = importlib.util.spec_from_file_location(f"{module.__name__}_source", source_path(module))
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    assert not compiled(loaded)
    return loaded
