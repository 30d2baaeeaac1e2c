"""The kades package; setuptools reads the rest from pyproject.toml.

Two modules are also compiled, by Cython from the same source (their locals' annotations give
their C types; Python ignores them): kades/temporal/fused.py, the temporal ensemble's one
pass, and kades/temporal/likelihood.py, the surprise every point's scores go through. A
compiled module shadows its source when both are there (an extension is found first), and
where one cannot be built (no C compiler) the build says so and the package installs without
it: the same results, slower (docs/performance.md).
"""
from Cython.Build import cythonize
from setuptools import setup

# Python 3 semantics; Cython's defaults keep Python's division (a float division by zero
# raises ZeroDivisionError, as the members' own way does).
COMPILED = cythonize(["kades/temporal/fused.py", "kades/temporal/likelihood.py"], quiet=True,
                     compiler_directives={"language_level": 3})
for extension in COMPILED:
    extension.optional = True  # no compiler: a warning, and the pure-Python module
    # Python's floats to the bit: no fused multiply-adds, and x ** 2 by libm's pow as CPython
    # computes it (gcc would write x * x, which differs in the last bit now and then)
    extension.extra_compile_args = ["-ffp-contract=off", "-fno-builtin-pow"]

setup(ext_modules=COMPILED)
