"""Fixtures of the deployment tests: the repository, the handed-over schemas, kubectl, renders.

Outside CI a missing tool or schema folder skips with the reason; in CI (CI=true) kubectl is
installed from Debian's `kubernetes-client` package and a missing schema folder fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy_helpers import OVERLAYS, ROOT, SCHEMAS, in_ci as _in_ci
from shared_material import require


def _install_kubectl() -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "kubernetes-client"], check=True)


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    for folder in ("knative", "knative-func"):
        require(SCHEMAS / folder)
    return SCHEMAS


@pytest.fixture(scope="session")
def kubectl() -> str:
    if shutil.which("kubectl") is None:
        if not _in_ci():
            pytest.skip("kubectl is not installed (apt-get install kubernetes-client)")
        _install_kubectl()
    return shutil.which("kubectl")


@pytest.fixture(scope="session")
def rendered(kubectl) -> dict[str, list[dict]]:
    """overlay -> every object `kubectl kustomize knative/overlays/<overlay>` renders."""
    out = {}
    for overlay in OVERLAYS:
        done = subprocess.run([kubectl, "kustomize", str(ROOT / "knative" / "overlays" / overlay)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        out[overlay] = [d for d in yaml.safe_load_all(done.stdout) if d]
    return out


@pytest.fixture(scope="session")
def secret_template() -> dict:
    return yaml.safe_load((ROOT / "knative" / "secret.template.yaml").read_text())
