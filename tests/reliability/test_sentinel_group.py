"""The replicated Redis the failover fault runs on (kades.dev.services.ensure_redis_sentinel):
a primary, a replica and three Sentinels that agree; a killed primary replaced by its replica;
the killed server back as a replica of the new primary; everything stopped at the end."""
from __future__ import annotations

import pytest
import redis

from failover import SentinelRedis
from kades.dev import services as devservices

pytestmark = pytest.mark.slow


def _role(port: int) -> tuple[str, int | None]:
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return info["role"], info.get("master_port")


def test_the_group_forms_fails_over_and_takes_the_killed_primary_back(tmp_path):
    try:
        devservices._redis_binary()
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))
    group = SentinelRedis(tmp_path)
    first, second = group.ports
    try:
        group.start()
        assert group.primary() == first
        assert _role(first) == ("master", None) and _role(second) == ("slave", first)
        client = redis.Redis(host="127.0.0.1", port=first)
        client.set("kept", "yes")
        assert client.wait(1, 2000) == 1  # the replica has it
        client.close()
        assert not devservices.ensure_redis_sentinel(  # all running: nothing to start
            data_dir=tmp_path, ports=group.ports, sentinel_ports=group.sentinel_ports)

        group.kill_primary()
        group.await_promotion()
        assert group.killed == first and group.primary() == second
        assert _role(second) == ("master", None)
        promoted = redis.Redis(host="127.0.0.1", port=second)
        assert promoted.get("kept") == b"yes"  # acknowledged by the replica: kept
        promoted.close()

        group.rejoin()
        assert _role(first) == ("slave", second)
    finally:
        group.stop()
    assert not any(devservices._port_open(p) for p in (*group.ports, *group.sentinel_ports))
