"""Fixtures of the security tests: the api in process (as tests/api serves it), a fresh
key per test, every `kades` log line of the test, and the rendered prod manifests."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
import yaml
from api.apifixtures import api, make_key  # noqa: F401 - fixtures

from kades.logs import JsonLineFormatter

ROOT = Path(__file__).resolve().parents[2]


class LogLines(logging.Handler):
    """Every record of the `kades` loggers, formatted as the deployed functions write them."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLineFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines():
    handler = LogLines()
    logger = logging.getLogger("kades")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def render(kubectl: str, overlay: str) -> list[dict]:
    done = subprocess.run([kubectl, "kustomize", str(ROOT / "knative" / "overlays" / overlay)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="session")
def prod_objects() -> list[dict]:
    import shutil
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (apt-get install kubernetes-client)")
    return render(kubectl, "prod")
