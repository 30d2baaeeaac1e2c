"""The modules shared/setup.py compiles (kades.compiled), run as Python from their source: what
a machine without a C compiler runs, to check the compiled ones against."""
from __future__ import annotations

import doctest
import importlib.util
import sys
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
    sys.modules[spec.name] = loaded  # as an import does: a dataclass looks its module up there
    spec.loader.exec_module(loaded)
    assert not compiled(loaded)
    return loaded


def examples(module: ModuleType, how: str) -> tuple[int, int, int]:
    """(examples failed, examples run, `>>> ` lines in the source) of `module`'s docstrings, run
    on the compiled module (`how` "compiled") or on its source ("source"): a compiled module's
    examples must all be found in it too (pytest.ini keeps these files out of
    --doctest-modules, whose plugin would find the compiled module at the source's path)."""
    target = module if how == "compiled" else source_module(module)
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(target, target.__name__):
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    lines = sum(line.lstrip().startswith(">>> ")
                for line in source_path(module).read_text().splitlines())
    return failed, attempted, lines
