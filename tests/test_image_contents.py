"""A function image holds the package without its tooling (.dockerignore): every function
must still load and answer its health check from what is left."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = ("shared/kades/dev/", "shared/kades/simulate/", "shared/kades/broker/")

# Run in a fresh interpreter: loads every functions/*/main.py against the trimmed copy.
PROBE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import kades
assert kades.__file__.startswith(sys.argv[1]), kades.__file__
from functions_framework import create_app
mains = sorted(Path(sys.argv[2]).glob("*/main.py"))
for main in mains:  # as the image's server loads it, then its liveness probe
    answer = create_app("handle", str(main), "http").test_client().get("/health")
    assert answer.status_code == 200, (main, answer.status_code)
left_out = ("kades.dev", "kades.simulate", "kades.broker")
leaked = sorted(name for name in sys.modules if name.startswith(left_out))
assert not leaked, leaked
Path(sys.argv[3]).write_text(f"imported {len(mains)}")  # not stdout: the logs go there
"""


def test_dockerignore_leaves_out_the_tooling():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert set(LEFT_OUT) <= set(ignored)


@pytest.mark.slow
def test_every_function_imports_without_the_tooling(tmp_path):
    trimmed = tmp_path / "site"
    shutil.copytree(ROOT / "shared" / "kades", trimmed / "kades",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in LEFT_OUT:
        shutil.rmtree(trimmed / "kades" / Path(folder).name)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    said = tmp_path / "said.txt"
    result = subprocess.run([sys.executable, str(probe), str(trimmed), str(ROOT / "functions"),
                             str(said)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    functions = len(list((ROOT / "functions").glob("*/main.py")))
    assert said.read_text() == f"imported {functions}"
