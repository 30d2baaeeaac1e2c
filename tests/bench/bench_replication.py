"""`make bench`, what acknowledging only once a replica has the event costs
(KADES_REDIS_WAIT_REPLICAS, kades.runtime.dedup): the runtime's claim and done mark per event
against a primary with one replica, with the wait (the claim's script reads the primary's
replication id; the done mark is pipelined with WAIT 1) and without it (SET NX, the plain
compare-and-set) as the baseline, alternated in one process. Wall time: a replica's answer is
latency, not CPU. Figures are printed, never asserted.
"""
from __future__ import annotations

import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

from kades.dev import services as devservices
from kades.events.catalogue import MARKET_TICK, new_event
from kades.runtime import dedup
from kades.runtime.ttlcache import TtlCache

EVENTS, ROUNDS = 500, 8


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pair(directory: str) -> tuple[redis.Redis, list[subprocess.Popen]]:
    """A primary and its replica on free ports; the primary's client once the replica syncs."""
    server, ports = devservices.redis_binary(), (_free_port(), _free_port())
    processes = [subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", directory, "--dbfilename", f"{port}.rdb", *follow], stdout=subprocess.DEVNULL)
        for port, follow in zip(ports, ([], ["--replicaof", "127.0.0.1", str(ports[0])]))]
    primary = redis.Redis(port=ports[0])
    deadline = time.monotonic() + 10
    while True:
        try:
            primary.set("ready", 1)
            if primary.wait(1, 500) == 1:
                return primary, processes
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the replica did not sync")
        time.sleep(0.1)


def _round(client: redis.Redis, replicas: int, first: int) -> float:
    """Seconds per event: claim then done mark, EVENTS new events."""
    abandoned = TtlCache(ttl_s=10)
    began = time.perf_counter()
    for number in range(first, first + EVENTS):
        event = new_event(MARKET_TICK, "/bench", {"ticks": []}, event_id=f"e-{number}")
        claim = dedup.claim(client, "bench", event, lease_s=10, abandoned=abandoned,
                            replicas=replicas, wait_s=1.0)
        dedup.complete(client, claim, [], ttl_s=60)
    return (time.perf_counter() - began) / EVENTS


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        try:
            primary, processes = _pair(directory)
        except devservices.DevServiceUnavailable as error:
            print(f"\nreplicated acknowledgement: skipped ({error})")
            return 0
        try:
            times = {0: [], 1: []}
            for number in range(ROUNDS):
                for replicas in ((0, 1) if number % 2 == 0 else (1, 0)):
                    times[replicas].append(_round(primary, replicas, len(times[0] + times[1])
                                                  * EVENTS))
        finally:
            for process in processes:
                process.send_signal(signal.SIGKILL)
                process.wait()
    plain, waited = (statistics.median(times[n]) * 1e6 for n in (0, 1))
    print(f"\nreplicated acknowledgement: the runtime's claim + done mark per event, a primary "
          f"with one replica ({ROUNDS} alternated rounds of {EVENTS}, medians, wall time)")
    print(f"{'what':<52}{'us/event':>10}{'ratio':>8}")
    print(f"{'SET NX + compare-and-set (baseline, no wait)':<52}{plain:>10.0f}{1:>7.2f}x")
    print(f"{'claim naming its primary + done mark with WAIT 1':<52}{waited:>10.0f}"
          f"{waited / plain:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
