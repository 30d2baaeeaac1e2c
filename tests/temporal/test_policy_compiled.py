"""The alert policy's path as Cython compiled it, Python semantics kept
(kades.temporal.COMPILED_AS_PYTHON: policy, threshold, clock, young, ensemble; shared/setup.py),
against the source a machine without a C compiler runs: the same examples pass, and over
streams that take every path (policy_workload.py) the same verdicts, states and errors, to
the bit."""
from __future__ import annotations

import copy
import importlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import policy_workload
import pytest
from compiled_source import compiled, examples, source_module, source_path

import kades
from kades.temporal import COMPILED_AS_PYTHON, COMPILED_TYPED, running_from_source
from kades.temporal.policy import new_monitor, step

HERE = Path(__file__).parent
MODULES = {name: importlib.import_module(f"kades.temporal.{name}") for name in COMPILED_AS_PYTHON}


@pytest.mark.parametrize("how", ["compiled", "source"])
@pytest.mark.parametrize("name", COMPILED_AS_PYTHON)
def test_the_module_examples(name, how):
    """Each module's docstring examples, every one of them found in the compiled module too
    (pytest.ini keeps these files out of --doctest-modules)."""
    module = MODULES[name]
    if how == "compiled" and not compiled(module):
        pytest.skip(f"{module.__name__} is not compiled here (no C compiler at `make setup`)")
    failed, attempted, lines = examples(module, how)
    assert attempted == lines > 0 and not failed


def declared(pxd: Path, cls: str) -> set[str]:
    """The attributes a .pxd declares for `cls` (`cdef public object a, b, ...` lines)."""
    names, inside = set(), False
    for line in pxd.read_text().splitlines():
        if line.startswith("cdef class "):
            inside = line == f"cdef class {cls}:"
        elif inside and line.strip().startswith("cdef public object "):
            names |= {name.strip() for name in line.split("object ", 1)[1].split(",")}
    return names


def test_the_compiled_classes_declare_every_attribute_the_source_sets():
    """Compiled, ThresholdFilter and SeriesClock have no __dict__: an attribute the source sets
    and its .pxd leaves out would be an AttributeError in the compiled build only."""
    threshold = source_module(MODULES["threshold"])
    monitor = threshold.ThresholdFilter.from_state(
        None, detector_class=MODULES["ensemble"].TemporalEnsemble, likelihood_params={},
        young_points=60)
    assert vars(monitor) and declared(source_path(MODULES["threshold"]).with_suffix(".pxd"),
                                      "ThresholdFilter") == set(vars(monitor))
    clock = source_module(MODULES["clock"]).SeriesClock()
    clock.model_time(10.0, None)
    assert vars(clock) and declared(source_path(MODULES["clock"]).with_suffix(".pxd"),
                                    "SeriesClock") == set(vars(clock))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_monitor_pickled_or_copied_carries_on_alike(how):
    """Compiled, the monitor and its clock are extension types, pickled by the reduce Cython
    writes for them: a copy holds the same state and says the same of the points after."""
    points = [{key: value for key, value in point.items() if key != "token"}
              for point in policy_workload.odd_ticks(3)]
    monitor = new_monitor()
    for point in points[:700]:
        step(monitor, point)
    twin = (pickle.loads(pickle.dumps(monitor)) if how == "pickle" else copy.deepcopy(monitor))
    assert type(twin.clock) is type(monitor.clock) and twin.clock is not monitor.clock
    assert policy_workload.bits(twin.to_state()) == policy_workload.bits(monitor.to_state())
    alerts = 0
    for point in points[700:]:
        verdict, theirs = step(monitor, point), step(twin, point)
        assert policy_workload.bits(tuple(theirs)) == policy_workload.bits(tuple(verdict))
        alerts += bool(verdict.alert)
    assert alerts > 0
    assert policy_workload.bits(twin.to_state()) == policy_workload.bits(monitor.to_state())


def policy_record(env: dict) -> dict:
    """What policy_workload.py records, in a process of its own with `env`, with the modules
    it ran from source and where its kades package was."""
    script = ("import json, kades, policy_workload; from kades.temporal import running_from_source;"
              "print(json.dumps({'from_source': running_from_source(), 'package': kades.__file__,"
              " 'record': policy_workload.record()}))")
    done = subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONHASHSEED": "0"},
                          capture_output=True, text=True, timeout=300, cwd=HERE)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_policy_says_the_same_compiled_and_from_its_source(tmp_path):
    if running_from_source():
        pytest.skip(f"run from source here already: {running_from_source()}")
    package = Path(kades.__file__).parent
    shutil.copytree(package, tmp_path / "kades",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    ours = policy_record({**os.environ, "PYTHONPATH": path})
    theirs = policy_record({**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{path}"})
    assert ours["from_source"] == [] and Path(ours["package"]).parent == package
    assert theirs["from_source"] == list(COMPILED_TYPED + COMPILED_AS_PYTHON)
    assert Path(theirs["package"]).parent == tmp_path / "kades"
    verdicts = [json.loads(line.split("\t")[0]) for line in ours["record"] if line.startswith("[")]
    alerts = sum(bool(verdict[2]) for verdict in verdicts)
    print(f"\n{len(verdicts)} verdicts, {alerts} alerts, "
          f"{len(ours['record']) - len(verdicts)} states, the same compiled and from source")
    assert alerts > 50 and {verdict[4] for verdict in verdicts} == {"", "too soon", "no trade"}
    assert len(ours["record"]) == len(theirs["record"])
    for index, (line, expected) in enumerate(zip(ours["record"], theirs["record"])):
        assert line == expected, index
