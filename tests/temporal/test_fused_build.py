"""The temporal one pass is compiled where it can be (shared/setup.py: Cython, when `make
setup` finds a C compiler), and what runs is built from the source beside it: a compiled
module shadows fused.py, so one left from before an edit would run the old arithmetic."""
from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

from kades.temporal import fused


def test_the_one_pass_is_compiled_where_there_is_a_c_compiler():
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler):
        assert fused.COMPILED, f"{compiler} is here, yet kades.temporal.fused runs from source"
    else:
        assert not fused.COMPILED


def test_the_compiled_one_pass_is_built_from_the_current_source():
    source = Path(fused.__file__).with_name("fused.py")
    assert source.is_file()
    if fused.COMPILED:
        assert Path(fused.__file__).stat().st_mtime >= source.stat().st_mtime, \
            "fused.py changed since it was compiled: `make setup` builds it again"
