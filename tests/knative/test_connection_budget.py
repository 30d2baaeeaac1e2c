"""PostgreSQL holds every connection KADES may open at once, in both overlays: each Knative
Service that stores, at its max-scale, times its processes' pool (KADES_DATABASE_POOL_SIZE),
and one per pod of the jobs (migrate, retention, backup), under the server's max_connections
less its superuser reserve. PostgreSQL's default of 100 held a third of what the manifests
allowed: a scale-out's new pods then failed /ready, and the Broker's retries grew the burst."""
from __future__ import annotations

import dataclasses

import pytest

from deploy_helpers import OVERLAYS, of_kind, workloads
from kades.settings import Settings

DEFAULT_MAX_CONNECTIONS = 100  # PostgreSQL's, where the server's args do not set one
SUPERUSER_RESERVED = 3         # PostgreSQL's superuser_reserved_connections
MARGIN = 10                    # psql by an operator, a monitoring agent, a second migrate run
POOL_DEFAULT = next(f.default for f in dataclasses.fields(Settings) if f.name == "database_pool_size")
DATABASE_VARIABLES = {"KADES_DATABASE_URL", "DATABASE_URL"}


def _config(docs) -> dict[str, str]:
    (config,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "kades-config"]
    return config["data"]


def _env(container: dict, config: dict[str, str]) -> dict[str, str]:
    """A container's variables: those of its envFrom ConfigMap, then its own."""
    env = {}
    for source in container.get("envFrom", []):
        if source.get("configMapRef", {}).get("name") == "kades-config":
            env.update(config)
    env.update({e["name"]: e.get("value", "<from a secret>") for e in container.get("env", [])})
    return env


def _max_connections(docs) -> int:
    (server,) = [s for s in of_kind(docs, "StatefulSet") if s["metadata"]["name"] == "timescaledb"]
    (container,) = [c for c in server["spec"]["template"]["spec"]["containers"]
                    if c["name"] == "timescaledb"]
    args = container.get("args", [])
    settings = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-c"]
    found = [int(s.split("=", 1)[1]) for s in settings if s.startswith("max_connections=")]
    return found[-1] if found else DEFAULT_MAX_CONNECTIONS


def connections_at_most(docs) -> dict[str, int]:
    """What each workload may hold open at once."""
    config, out = _config(docs), {}
    for what, pods, pod in workloads(docs):
        for container in pod["containers"]:
            env = _env(container, config)
            if not DATABASE_VARIABLES & set(env):
                continue
            per_pod = int(env.get("KADES_DATABASE_POOL_SIZE", POOL_DEFAULT)) \
                if what.startswith("Service/") else 1  # a job: one connection
            out[what] = out.get(what, 0) + pods * per_pod
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_holds_every_connection_at_max_scale(rendered, overlay):
    docs = rendered[overlay]
    wanted = connections_at_most(docs)
    assert {"Service/api", "Service/temporal-analysis", "Job/kades-migrate"} <= set(wanted)
    room = _max_connections(docs) - SUPERUSER_RESERVED - MARGIN
    print(f"\n{overlay}: {sum(wanted.values())} connections at most, room for {room}: "
          + ", ".join(f"{what} {n}" for what, n in sorted(wanted.items())))
    assert sum(wanted.values()) <= room


def test_the_pool_size_is_the_settings_and_bounds_the_pool(fresh_settings):
    from kades import clients
    from kades.settings import settings
    fresh_settings.setenv("KADES_DATABASE_POOL_SIZE", "3")
    try:
        assert clients.db_pool(settings()).max_size == 3
    finally:
        clients.close_all()  # the next test's pool is made anew, of its own size
