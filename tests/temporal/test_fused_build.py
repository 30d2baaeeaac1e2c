"""The temporal modules shared/setup.py compiles (the one pass, kades.temporal.fused, and the
likelihood) are compiled where they can be (Cython, when `make setup` finds a C compiler),
and what runs is built from the source beside it: a compiled module shadows its source, so
one left from before an edit would run the old arithmetic."""
from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest
from compiled_source import source_path

from kades.temporal import fused, likelihood

MODULES = pytest.mark.parametrize("module", [fused, likelihood], ids=["fused", "likelihood"])


@MODULES
def test_the_module_is_compiled_where_there_is_a_c_compiler(module):
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler):
        assert module.COMPILED, f"{compiler} is here, yet {module.__name__} runs from source"
    else:
        assert not module.COMPILED


@MODULES
def test_the_compiled_module_is_built_from_the_current_source(module):
    source = source_path(module)
    assert source.is_file()
    if module.COMPILED:
        assert Path(module.__file__).stat().st_mtime >= source.stat().st_mtime, \
            f"{source.name} changed since it was compiled: `make setup` builds it again"
