"""The replicated Redis the failover fault runs on (kades.dev.redisgroups.ensure_redis_sentinel):
a primary, two replicas and three Sentinels that agree; a killed primary replaced by one of
its replicas, which the other then follows; the killed server back as a replica of the new
primary; everything stopped at the end."""
from __future__ import annotations

import time

import pytest
import redis

from failover import SentinelRedis
from kades.dev import redisgroups, services as devservices

pytestmark = pytest.mark.slow


def _role(port: int) -> tuple[str, int | None]:
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return info["role"], info.get("master_port")


def _eventually(condition, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_the_group_forms_fails_over_and_takes_the_killed_primary_back(tmp_path):
    try:
        devservices.redis_binary()
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))
    group = SentinelRedis(tmp_path)
    first, *replicas = group.ports
    problem = redisgroups.sentinel_group_problem  # what a start that timed out reports
    assert problem(group.ports, group.sentinel_ports, redisgroups.SENTINEL_MASTER) == \
        "no Sentinel names a primary"
    try:
        group.start()
        assert problem(group.ports, group.sentinel_ports, redisgroups.SENTINEL_MASTER) is None
        assert group.primary() == first
        assert _role(first) == ("master", None)
        assert [_role(port) for port in replicas] == [("slave", first)] * 2
        client = redis.Redis(host="127.0.0.1", port=first)
        client.set("kept", "yes")
        assert client.wait(2, 2000) == 2  # both replicas have it
        client.close()
        assert not redisgroups.ensure_redis_sentinel(  # all running: nothing to start
            data_dir=tmp_path, ports=group.ports, sentinel_ports=group.sentinel_ports)

        group.kill_primary()
        group.await_promotion()
        assert group.killed == first

        def settled() -> bool:
            # With the harness's 1 s down-after a loaded machine may see a second failover
            # (a Sentinel missing the new primary's replies for a second): whichever replica
            # the Sentinels name in the end, the other must follow it.
            now = group.primary()
            return (now in replicas and _role(now) == ("master", None)
                    and all(_role(port) == ("slave", now) for port in replicas if port != now))
        _eventually(settled, "a replica promoted and the other following it")
        new_primary = redis.Redis(host="127.0.0.1", port=group.primary())
        assert new_primary.get("kept") == b"yes"  # acknowledged by the replicas: kept
        new_primary.close()

        group.rejoin()
        # Sentinel turns a returning primary into a replica only after its INFO (every 10 s
        # for a replica in its tables) has reported "master" for 8 s (four publish periods,
        # against flapping): up to ~18 s after the start by design. 20 s was missed by 64 ms
        # in a CI run; a second failover on a loaded machine would add its own wait.
        _eventually(lambda: _role(first) == ("slave", group.primary()),
                    "the killed primary to come back as a replica of the current one",
                    timeout_s=60)
    finally:
        group.stop()
    assert not any(devservices.port_open(p) for p in (*group.ports, *group.sentinel_ports))
