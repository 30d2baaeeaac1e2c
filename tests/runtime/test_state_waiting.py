"""StateStore.update keeps a waiting set (kades.runtime.reorder's) true in its own
compare-and-set script: with and without an outbox, never on a conflict, and a retry that
finds the outbox changes nothing."""
from __future__ import annotations

import pytest

from kades.errors import TemporaryFailure
from kades.runtime.state import StateStore, Waiting

# one hash tag, as on Redis Cluster (KADES_TEST_REDIS_CLUSTER=1 runs these there)
A, B, SET, OUTBOX = "{w}a", "{w}b", "{w}waiting", "{w}outbox"


def waits(value):
    """A compute giving every state `waits` = value (None: nothing waits)."""
    return lambda states: ([{"waits": value} for _ in states], [value])


def waiting() -> Waiting:
    return Waiting(SET, ["token-a", "token-b"], lambda state: state["waits"])


def test_the_set_lists_what_waits_and_drops_what_no_longer_does(redis_conn):
    store = StateStore(ttl_s=60)
    store.update(redis_conn, [A, B], waits(1234.5), waiting=waiting())
    assert redis_conn.zrange(SET, 0, -1, withscores=True) == [(b"token-a", 1234.5),
                                                               (b"token-b", 1234.5)]
    store.update(redis_conn, [A, B], lambda s: ([{"waits": None}, {"waits": 99.25}], None),
                 waiting=waiting())
    assert redis_conn.zrange(SET, 0, -1, withscores=True) == [(b"token-b", 99.25)]


def test_with_an_outbox_the_first_commit_sets_it_and_a_retry_changes_nothing(redis_conn):
    store = StateStore(ttl_s=60)
    assert store.update(redis_conn, [A, B], waits(7.0), outbox=OUTBOX, waiting=waiting()) == [7.0]
    assert StateStore(ttl_s=60).update(redis_conn, [A, B], waits(None), outbox=OUTBOX,
                                       waiting=waiting()) == [7.0]
    assert redis_conn.zscore(SET, "token-a") == 7.0 and redis_conn.zscore(SET, "token-b") == 7.0
    assert StateStore(ttl_s=60).current(redis_conn, [A]) == [{"waits": 7.0}]


def test_an_attempt_that_loses_the_race_leaves_the_set_alone(redis_conn):
    def one() -> Waiting:
        return Waiting(SET, ["token-a"], lambda state: state["waits"])
    stale, other = StateStore(ttl_s=60, max_attempts=1), StateStore(ttl_s=60)
    stale.update(redis_conn, [A], waits(1.0), waiting=one())
    other.update(redis_conn, [A], waits(2.0), waiting=one())
    with pytest.raises(TemporaryFailure):  # computed from its cached 1.0: refused
        stale.update(redis_conn, [A], waits(3.0), waiting=one())
    assert redis_conn.zscore(SET, "token-a") == 2.0
    assert StateStore(ttl_s=60).update(redis_conn, [A], waits(None), waiting=one()) == [None]
    assert redis_conn.zscore(SET, "token-a") is None


def test_a_state_without_a_member_is_committed_but_never_listed(redis_conn):
    """A shared document (whale-detection's fundings were one): in the update, not in the set."""
    shared = "{w}shared"
    store, listing = StateStore(ttl_s=60), Waiting(SET, ["token-a", None], lambda s: s["waits"])
    store.update(redis_conn, [A, shared], waits(5.0), waiting=listing)
    assert redis_conn.zrange(SET, 0, -1, withscores=True) == [(b"token-a", 5.0)]
    store.update(redis_conn, [A, shared], lambda s: ([{"waits": None}, {"waits": 6.0}], None),
                 waiting=listing)
    assert redis_conn.zcard(SET) == 0
    assert StateStore(ttl_s=60).current(redis_conn, [shared]) == [{"waits": 6.0}]


def test_an_outbox_holding_what_an_event_found_lives_as_long_as_its_done_mark(redis_conn):
    """An hour: an event dead-lettered while the database was away and replayed the next
    day found its analysis done (its ticks taken) and its outbox gone: the anomaly it had
    found was never sent. An empty outbox (a done mark alone) still goes after the hour."""
    from kades.runtime.state import EFFECTS_OUTBOX_TTL_S, OUTBOX_TTL_S
    from kades.settings import Settings
    store = StateStore(ttl_s=60)
    store.update(redis_conn, [A], lambda s: ([{"n": 1}], ([{"anomaly": 1}], [])), outbox=OUTBOX)
    assert EFFECTS_OUTBOX_TTL_S - 5 < redis_conn.ttl(OUTBOX) <= EFFECTS_OUTBOX_TTL_S
    assert EFFECTS_OUTBOX_TTL_S == Settings().dedup_ttl_s  # as long as the done mark
    empty = "{w}outbox-empty"
    store.update(redis_conn, [A], lambda s: ([{"n": 2}], ([], [])), outbox=empty, keep_empty=True)
    assert 0 < redis_conn.ttl(empty) <= OUTBOX_TTL_S
