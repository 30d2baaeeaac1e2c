"""The temporal modules shared/setup.py compiles (kades.temporal.COMPILED_TYPED: the one pass
and the likelihood; COMPILED_AS_PYTHON: the alert policy's path around them) are compiled
where they can be (Cython, when `make setup` finds a C compiler), and what runs is built from
the source beside it: a compiled module shadows its source, so one left from before an edit
would run the old code."""
from __future__ import annotations

import importlib
import shutil
import sysconfig
from pathlib import Path

import pytest
from compiled_source import compiled, source_path

from kades.temporal import COMPILED_AS_PYTHON, COMPILED_TYPED, running_from_source

MODULES = pytest.mark.parametrize("name", COMPILED_TYPED + COMPILED_AS_PYTHON)


@MODULES
def test_the_module_is_compiled_where_there_is_a_c_compiler(name):
    module = importlib.import_module(f"kades.temporal.{name}")
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler):
        assert compiled(module), f"{compiler} is here, yet {module.__name__} runs from source"
        assert name not in running_from_source()
    else:
        assert not compiled(module) and name in running_from_source()


@MODULES
def test_the_compiled_module_is_built_from_the_current_source(name):
    module = importlib.import_module(f"kades.temporal.{name}")
    source = source_path(module)
    assert source.is_file()
    declared = source.with_suffix(".pxd")  # the C layout of its classes, where it has one
    if compiled(module):
        for built_from in [source] + ([declared] if declared.is_file() else []):
            assert Path(module.__file__).stat().st_mtime >= built_from.stat().st_mtime, \
                f"{built_from.name} changed since it was compiled: `make setup` builds it again"
