"""chain-analysis's modules as Cython compiled them, Python semantics kept
(kades.chain.COMPILED_AS_PYTHON; shared/setup.py), against the source a machine without a C
compiler runs: each is compiled where there is a compiler and built from the current source,
its examples pass both ways, and over simulated blocks of every scenario chain-analysis and
whale-detection reply the same anomalies and keep the same states."""
from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from compiled_source import compiled, examples, source_path

import kades
from kades.chain import COMPILED_AS_PYTHON, running_from_source
from kades.compiled import PACKAGES

MODULES = {name: importlib.import_module(f"kades.chain.{name}") for name in COMPILED_AS_PYTHON}


@pytest.mark.parametrize("name", COMPILED_AS_PYTHON)
def test_the_module_is_compiled_where_there_is_a_c_compiler_from_its_current_source(name):
    module = MODULES[name]
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not shutil.which(compiler):
        assert not compiled(module) and name in running_from_source()
        return
    assert compiled(module), f"{compiler} is here, yet {module.__name__} runs from source"
    assert name not in running_from_source()
    assert Path(module.__file__).stat().st_mtime >= source_path(module).stat().st_mtime, \
        f"{source_path(module).name} changed since it was compiled: `make setup` builds it again"


def test_setup_compiles_the_packages_kades_compiled_names():
    """shared/setup.py cannot import kades (its dependencies need not be there to build it),
    so it names the packages again: the same ones."""
    setup = Path(kades.__file__).parent.parent / "setup.py"
    names = next(ast.literal_eval(node.value) for node in ast.parse(setup.read_text()).body
                 if [getattr(t, "id", None) for t in getattr(node, "targets", ())] == ["PACKAGES"])
    assert tuple(f"kades.{name}" for name in names) == PACKAGES


@pytest.mark.parametrize("how", ["compiled", "source"])
@pytest.mark.parametrize("name", COMPILED_AS_PYTHON)
def test_the_module_examples(name, how):
    """Each module's docstring examples (those that have some), every one found in the
    compiled module too."""
    module = MODULES[name]
    if how == "compiled" and not compiled(module):
        pytest.skip(f"{module.__name__} is not compiled here (no C compiler at `make setup`)")
    failed, attempted, lines = examples(module, how)
    assert attempted == lines and not failed


# Every scenario of the chain simulator through both functions' handlers, on a Redis database
# emptied first, the clock 0.4 s further at each event (the reorder buffer notes arrivals);
# printed: each reply's anomalies, then each state key's document as the function's store
# reads it back (not its bytes: a token's version is random).
RECORD = """
import json, sys, time
clock = [1.72e9]
time.time = lambda: clock[0]
from kades import clients
from kades.chain import function as chain, running_from_source
from kades.keys import CHAIN_TOKEN, CHAIN_POOL, WHALES_TOKEN
from kades.runtime import Context
from kades.settings import Settings
from kades.simulate.chain import simulate_chain
from kades.whales import function as whales
settings = Settings.from_env()
client = clients.redis_client(settings)
client.flushdb()
replies = []
for name, module in (("chain-analysis", chain), ("whale-detection", whales)):
    ctx = Context(name, settings=settings)
    for seed in (31, 32):
        for event in simulate_chain(seed=seed, minutes=20).events:
            clock[0] += 0.4
            for reply in module.handle_block(event, ctx) or []:
                replies.append([name, reply.data])
    store = module.start(None).states  # a store of its own: the documents read from Redis
    keys = sorted(k.decode() for k in client.keys("*") if k.decode().startswith(
        (CHAIN_TOKEN.format(token=""), CHAIN_POOL.format(pool=""), WHALES_TOKEN.format(token=""))))
    states = dict(zip(keys, store.current(client, keys)))
    replies.append([name, json.loads(json.dumps(states, sort_keys=True, default=lambda slot: slot.text))])
print(json.dumps({"from_source": running_from_source(), "package": chain.__file__, "record": replies}))
"""


def record(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", RECORD], env={**env, "PYTHONHASHSEED": "0"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_chain_and_whale_detection_say_the_same_compiled_and_from_their_source(tmp_path, kades_env):
    if running_from_source():
        pytest.skip(f"run from source here already: {running_from_source()}")
    package = Path(kades.__file__).parent
    shutil.copytree(package, tmp_path / "kades",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    ours = record(dict(os.environ))
    theirs = record({**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))})
    assert ours["from_source"] == [] and not ours["package"].endswith(".py")
    assert theirs["from_source"] == list(COMPILED_AS_PYTHON) and theirs["package"].endswith(".py")
    anomalies = [a for _, reply in ours["record"] if "anomalies" in reply for a in reply["anomalies"]]
    kinds = {a["anomaly_type"] for a in anomalies}
    print(f"\n{len(anomalies)} anomalies of {len(kinds)} kinds, the same compiled and from source")
    assert len(kinds) >= 8
    assert len(ours["record"]) == len(theirs["record"])
    for index, (mine, expected) in enumerate(zip(ours["record"], theirs["record"])):
        assert mine == expected, index
