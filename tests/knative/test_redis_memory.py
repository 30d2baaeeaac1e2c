"""Every Redis server of both overlays has a maxmemory below its container's memory limit, so
that a full Redis refuses writes (noeviction: the functions answer 503, the Broker retries)
instead of growing until the kernel OOM-kills it.

The value is not read from the manifests as text: each server's start is run here as the
kubelet would run it. Its env is resolved (downward-API resourceFieldRefs from the rendered
limits), `$(VAR)` expanded as Kubernetes does, the init container's script run (prod writes
redis.conf in `configure`), and the container's command run with a `redis-server` that only
prints its arguments; maxmemory is what that command line or the config file it names says.
"""
from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest

from deploy_helpers import OVERLAYS, ROOT, of_kind

UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
REDIS_UNITS = {"b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3,
               "gb": 1024**3}  # redis.conf's units (1mb = 1024*1024 bytes, 1m = 10^6)


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kMG]i?)?", quantity).groups()
    return int(number) * UNITS[unit or ""]


def _redis_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([a-z]*)", value.lower()).groups()
    return int(number) * REDIS_UNITS[unit or "b"]


def _env(pod: dict, container: dict) -> dict[str, str]:
    """The container's plain and resourceFieldRef (memory) variables as the kubelet sets them."""
    by_name = {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}
    values = {}
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("resourceFieldRef")
        if ref:
            assert ref["resource"] == "limits.memory", env
            target = by_name[ref.get("containerName", container["name"])]
            values[env["name"]] = str(_bytes(target["resources"]["limits"]["memory"])
                                      // _bytes(ref.get("divisor", "1")))
        elif "value" in env:
            values[env["name"]] = env["value"]
        else:
            values[env["name"]] = "redis-0" if env["name"] == "POD_NAME" else "kades"
    return values


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of command and args: `$$` is a `$`, unknown names stay."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


@pytest.fixture
def stubs(tmp_path) -> Path:
    """redis-server that prints its arguments; redis-cli that finds no peer."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "redis-server").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (folder / "redis-cli").write_text("#!/bin/sh\nexit 1\n")
    for stub in folder.iterdir():
        stub.chmod(0o755)
    return folder


def _run(command: list[str], env: dict[str, str], stubs: Path, tmp_path: Path) -> str:
    mounts = {"/scripts/": f"{ROOT}/knative/overlays/prod/redis/", "/conf/": f"{tmp_path}/conf/",
              "/data/": f"{tmp_path}/data/"}  # the pod's volumes, here

    def local(word):
        mount = next((m for m in mounts if word.startswith(m)), None)
        return mounts[mount] + word.removeprefix(mount) if mount else word
    env = {**env, "PATH": f"{stubs}:/usr/bin:/bin", "CONF_DIR": f"{tmp_path}/conf",
           "DATA_DIR": f"{tmp_path}/data"}
    done = subprocess.run([local(_expand(w, env)) for w in command], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _servers(docs):
    """(name, pod, container) of every Redis server (not a Sentinel, not an init container)."""
    for statefulset in of_kind(docs, "StatefulSet"):
        pod = statefulset["spec"]["template"]["spec"]
        for container in pod["containers"]:
            command = container.get("command", []) + container.get("args", [])
            if container["image"].startswith("redis:") and "--sentinel" not in command:
                yield statefulset["metadata"]["name"], pod, container


def _settings(pod, container, stubs, tmp_path) -> dict[str, str]:
    """What the server runs with: its config file's settings, overridden by its arguments."""
    (tmp_path / "conf").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    for init in pod.get("initContainers", []):
        _run(init.get("command", []) + init.get("args", []), _env(pod, init), stubs, tmp_path)
    words = _run(container.get("command", []) + container.get("args", []), _env(pod, container),
                 stubs, tmp_path).splitlines()
    settings = {}
    if words and not words[0].startswith("--"):
        for line in Path(words.pop(0)).read_text().splitlines():
            key, _, value = line.partition(" ")
            settings[key] = value
    for key, value in zip(words[::2], words[1::2]):
        settings[key.removeprefix("--")] = value
    return settings


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_redis_server_refuses_writes_before_its_memory_limit(rendered, overlay, stubs,
                                                                   tmp_path):
    servers = list(_servers(rendered[overlay]))
    assert servers, "no Redis server found"
    for name, pod, container in servers:
        limit = _bytes(container["resources"]["limits"]["memory"])
        settings = _settings(pod, container, stubs, tmp_path / name)
        assert settings.get("maxmemory-policy") == "noeviction", name
        maxmemory = _redis_bytes(settings["maxmemory"])
        # below the limit by enough for fragmentation, buffers and a fork's copy-on-write
        assert 0.7 * limit <= maxmemory <= 0.8 * limit, (name, maxmemory, limit)


def test_a_larger_limit_raises_maxmemory_with_it(rendered, stubs, tmp_path):
    """Derived, not copied: raising the limit in an overlay cannot leave maxmemory behind."""
    (_, pod, _), = [s for s in _servers(copy.deepcopy(rendered["dev"])) if s[0] == "redis"]
    (container,) = pod["containers"]
    container["resources"]["limits"]["memory"] = "4Gi"
    assert _redis_bytes(_settings(pod, container, stubs, tmp_path)["maxmemory"]) == 3 * 1024**3
