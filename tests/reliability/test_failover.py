"""The failover fault of `make reliability`, short: the whole mesh with its functions on a
primary, two replicas and three Sentinels (an event acknowledged once every replica in step
with the primary, at least one, has its done mark); the primary killed (SIGKILL) under load. Sentinel promotes a replica, the functions
follow it, and the books balance: every input the broker acknowledged handled once by every
Trigger it matched (or dead-lettered), nothing stuck, no duplicate rows."""
from __future__ import annotations

import pytest

from failover import failover_run
from kades.dev import services as devservices
from kades.simulate.story import demo_story

pytestmark = pytest.mark.slow


def test_a_killed_primary_is_replaced_and_nothing_acknowledged_is_lost(
        kades_env, redis_conn, db_conn, tmp_path):
    if kades_env.redis_cluster:
        pytest.skip("a Redis Cluster fails over by itself: no Sentinels beside it")
    try:
        devservices.redis_binary()
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))
    story = demo_story(seed=9, minutes=10)
    result = failover_run(tmp_path, iter(story.events), broker_redis_url=kades_env.redis_url,
                          database_url=kades_env.database_url, rate_per_s=25, before_s=5,
                          after_s=3)
    books = result["books"]
    print(f"\nprimary {result['killed']} killed, {result['promoted']} promoted after "
          f"{result['away_s']:.1f} s, recovered {result['recovery_s']} s later; /ready while "
          f"away {result['ready_while_away']}; refusals {result['refusals']}\n{books.summary()}")
    assert result["promoted"] not in (result["killed"], None)
    assert result["recovery_s"] is not None, "the service did not come back"
    assert books.posted >= 50 and books.handled > books.posted  # replies accounted too
    assert books.balanced, (books.summary(), books.unfinished[:5], books.lost_inputs[:5])
