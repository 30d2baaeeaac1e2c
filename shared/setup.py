"""The kades package; setuptools reads the rest from pyproject.toml.

The modules each package names in its __init__.py (kades.temporal: COMPILED_TYPED,
COMPILED_AS_PYTHON; kades.chain: COMPILED_AS_PYTHON; kades.compiled) are also compiled by
Cython from the same source: what runs on every point of every token and on every record of
every block. A compiled module shadows its source when both are there (an extension is found
first), and where one cannot be built (no C compiler) the build says so and the package
installs without it: the same results, slower (docs/performance.md).
"""
import ast
from pathlib import Path

from Cython.Build import cythonize
from setuptools import setup


PACKAGES = ("temporal", "chain")  # kades.compiled.PACKAGES


def listed(package: str, name: str) -> list[str]:
    """The source files of a tuple of module names in kades/<package>/__init__.py (read, not
    imported: the package's dependencies need not be here to build it); none when the
    package has no such tuple."""
    source = Path(__file__).with_name("kades") / package / "__init__.py"
    for node in ast.parse(source.read_text()).body:
        targets = [getattr(target, "id", None) for target in getattr(node, "targets", ())]
        if targets == [name]:
            return [f"kades/{package}/{module}.py" for module in ast.literal_eval(node.value)]
    return []


# Python 3 semantics; Cython's defaults keep Python's division (a float division by zero
# raises ZeroDivisionError, as the members' own way does).
DIRECTIVES = {"language_level": 3}
# COMPILED_AS_PYTHON without annotation typing: there Cython would make a `float` argument a
# C double (an int time a float) and refuse a dict subclass where `dict` is written.
TYPED = [path for package in PACKAGES for path in listed(package, "COMPILED_TYPED")]
AS_PYTHON = [path for package in PACKAGES for path in listed(package, "COMPILED_AS_PYTHON")]
COMPILED = (cythonize(TYPED, quiet=True, compiler_directives=DIRECTIVES)
            + cythonize(AS_PYTHON, quiet=True,
                        compiler_directives={**DIRECTIVES, "annotation_typing": False}))
for extension in COMPILED:
    extension.optional = True  # no compiler: a warning, and the pure-Python module
    # Python's floats to the bit: no fused multiply-adds, and x ** 2 by libm's pow as CPython
    # computes it (gcc would write x * x, which differs in the last bit now and then)
    extension.extra_compile_args = ["-ffp-contract=off", "-fno-builtin-pow"]

setup(ext_modules=COMPILED)
