"""A subscriber with several replicas: the broker takes them in turn, and a token's state stays
right when both replicas handle its events at once (real function processes, real Redis)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from brokertest import manifests, trigger, wait_for
from kades.dev.services import free_port
from kades.broker.config import load_eventing
from kades.events.catalogue import EXAMPLE_MINT, MARKET_TICK, new_event
from kades.events.envelope import to_binary

TOKEN_TOTAL = Path(__file__).parent / "functions/token_total/main.py"


def test_replicas_of_a_subscriber_are_taken_in_turn(run_broker, subscribers):
    first, second = subscribers(), subscribers()
    broker = run_broker(manifests(trigger("t", "http://unused/")), workers=1,
                        overrides={"t": [first.url, second.url]})
    assert broker.eventing.triggers[0].replica_urls == (first.url, second.url)
    for number in range(6):
        headers, body = to_binary(new_event(MARKET_TICK, "/tests", {"ticks": []},
                                            event_id=f"e{number}"))
        httpx.post(broker.ingress_url(), headers=headers, content=body).raise_for_status()
    wait_for(lambda: first.count() + second.count() == 6, 10, "six deliveries")
    assert (first.count(), second.count()) == (3, 3)  # one worker: strictly in turn


def test_a_repeated_subscriber_name_gives_replicas(tmp_path):
    (tmp_path / "all.yaml").write_text(manifests(trigger("t", "http://unused/")))
    single = load_eventing(tmp_path, overrides={"t": "http://a/"}).triggers[0]
    assert single.replica_urls == ("http://a/",) and single.replicas == ()
    double = load_eventing(tmp_path, overrides={"t": ["http://a/", "http://b/"]}).triggers[0]
    assert double.subscriber_url == "http://a/"
    assert double.replica_urls == ("http://a/", "http://b/")


@pytest.fixture
def token_total_replicas(broker_redis_url):
    """Two processes of tests/broker/functions/token_total on one Redis (database 1)."""
    redis_url = broker_redis_url.rsplit("/", 1)[0] + "/1"
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    processes, urls = [], []
    for name in ("a", "b"):
        port = free_port()
        env = dict(os.environ, KADES_REDIS_URL=redis_url, KADES_REPLICA=name, THREADS="4",
                   KADES_LOG_LEVEL="WARNING")
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "kades.runtime.serve", "--source", str(TOKEN_TOTAL),
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_for(lambda url=url: _answers(url + "/health"), 30, f"function at {url}")
        yield urls, client
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        client.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_two_replicas_keep_one_tokens_state_right(run_broker, token_total_replicas):
    """One token's 120 ticks go through the broker to two replicas at once (8 deliveries in
    flight, in turn); the token's state is then what handling them one by one gives."""
    urls, client = token_total_replicas
    broker = run_broker(manifests(trigger("totals", "http://unused/", type=MARKET_TICK)),
                        workers=8, overrides={"totals": urls})
    volumes = [float(1 + (number * 7) % 13) for number in range(120)]
    with httpx.Client(timeout=10) as http:
        for number, volume in enumerate(volumes):
            tick = {"token": EXAMPLE_MINT, "time": f"2026-11-26T08:{number // 60:02d}:"
                                                   f"{number % 60:02d}Z",
                    "price": 1.0, "volume": volume, "liquidity": 1e5}
            headers, body = to_binary(new_event(MARKET_TICK, "/tests", {"ticks": [tick]},
                                                subject=EXAMPLE_MINT, event_id=f"t{number}"))
            http.post(broker.ingress_url(), headers=headers, content=body).raise_for_status()

    def counted() -> int:
        raw = client.get(f"test:total:{EXAMPLE_MINT}")
        return 0 if raw is None else json.loads(raw)["count"]

    wait_for(lambda: counted() == len(volumes), 30, "every tick counted")
    state = json.loads(client.get(f"test:total:{EXAMPLE_MINT}"))
    sequential = {"count": 0, "total": 0.0, "ids": []}
    for number, volume in enumerate(volumes):  # the same ticks, one after another
        sequential = {"count": sequential["count"] + 1, "total": sequential["total"] + volume,
                      "ids": sorted([*sequential["ids"], f"t{number}"])}
    assert state == sequential
    served = {name: int(client.get(f"test:served:{name}") or 0) for name in ("a", "b")}
    assert served["a"] >= 40 and served["b"] >= 40, served  # both replicas took a share
