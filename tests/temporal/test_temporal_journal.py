"""temporal-analysis's state journal (kades.temporal.codec): a one-tick event appends its input to
the state instead of writing the state whole. On real Redis: replaying the journal gives the
states written whole, bit for bit, and the same anomalies and scores, on this replica and on
another that reads the journal; the journal stays smaller than the state written whole before
it; a reader that does not know the journal reads that state; duplicates write nothing."""
from __future__ import annotations

import json
import random

from kades.keys import TEMPORAL_STATE
from kades.runtime.reorder import ReorderBuffer
from kades.runtime.state import StateStore
from kades.simulate.market import simulate_market
from kades.temporal.codec import JOURNAL, StateCodec
from kades.temporal.function import analyse_batch, group_ticks, read_state
from kades.temporal.policy import new_monitor

BUFFER = ReorderBuffer(lateness_s=30.0, idle_s=60.0)


def deliveries(seed: int) -> list[list[dict]]:
    """A market's ticks as events of random sizes (mostly one tick, some of 50), neighbours
    swapped and some delivered twice, as the Broker may."""
    rng = random.Random(seed)
    ticks = simulate_market(seed=seed, tokens=2, minutes=60, anomalies_per_token=2).ticks
    events, at = [], 0
    while at < len(ticks):
        size = rng.choice((1, 1, 1, 1, 1, 1, 2, 3, 50))
        events.append(ticks[at:at + size])
        at += size
    for k in range(0, len(events) - 1, 3):
        if rng.random() < 0.3:
            events[k], events[k + 1] = events[k + 1], events[k]
    return [copy for event in events for copy in ([event] * (1 + (rng.random() < 0.1)))]


def run(redis_conn, events: list[list[dict]], stores: list[StateStore], score_floor: float = 0.0):
    """Each event through the next store in turn (several: replicas of one function sharing
    Redis); (every event's anomalies and scores, every event's stored bytes per token)."""
    keys = sorted({TEMPORAL_STATE.format(token=t["token"]) for event in events for t in event})
    redis_conn.delete(*keys)
    found, raws = [], []
    for n, event in enumerate(events):
        found.append(analyse_batch(redis_conn, group_ticks(event), store=stores[n % len(stores)],
                                   buffer=BUFFER, now_s=1000.0 + n, score_floor=score_floor))
        raws.append(redis_conn.mget(keys))
    return found, raws


def whole(raws: list[list[bytes | None]]) -> list[list[dict | None]]:
    return [[raw and read_state(raw, BUFFER) for raw in row] for row in raws]


def snapshot_of(raw: bytes) -> bytes:
    """The state written whole that a journaled state's bytes go on from."""
    cut = raw.find(b',"%s":[' % JOURNAL.encode())
    return raw if cut < 0 else raw[:cut] + b"}"


def test_a_journal_replays_to_the_states_written_whole_with_the_same_results(redis_conn):
    events = deliveries(seed=11)
    plain_found, plain_raws = run(redis_conn, events, [StateStore(ttl_s=600)])  # JSON, whole
    found, raws = run(redis_conn, events, [StateStore(ttl_s=600, codec=StateCodec())])
    assert found == plain_found and any(anomalies for anomalies, _ in found)
    assert whole(raws) == [[raw and json.loads(raw) for raw in row] for row in plain_raws]
    journaled = [raw for row in raws for raw in row if raw and JOURNAL.encode() in raw]
    assert len(journaled) > len(events) // 2  # most one-tick events appended to the journal
    assert all(JOURNAL.encode() not in raw for raw in plain_raws[-1] if raw)


def test_another_replica_carries_on_from_the_journal(redis_conn):
    events = deliveries(seed=12)
    one_found, one_raws = run(redis_conn, events, [StateStore(ttl_s=600, codec=StateCodec())])
    replicas = [StateStore(ttl_s=600, codec=StateCodec()) for _ in range(2)]
    found, raws = run(redis_conn, events, replicas)  # each reads what the other appended
    assert found == one_found and any(anomalies for anomalies, _ in found)
    assert whole(raws) == whole(one_raws)


def test_the_journal_stays_smaller_than_the_state_written_whole_before_it(redis_conn):
    events = deliveries(seed=13)
    _, raws = run(redis_conn, events, [StateStore(ttl_s=600, codec=StateCodec())])
    sizes = [(len(raw), len(snapshot_of(raw))) for row in raws for raw in row if raw]
    assert all(size <= 2 * snapshot for size, snapshot in sizes)
    assert max(size / snapshot for size, snapshot in sizes) > 1.5  # it did grow
    # ...and then the state was written whole again, the journal started afresh
    columns = list(zip(*raws))
    restarts = sum(1 for column in columns for before, after in zip(column, column[1:])
                   if before and JOURNAL.encode() in before and JOURNAL.encode() not in after)
    assert restarts >= 4


def test_each_events_entry_is_in_the_journal_once(redis_conn):
    """analyse_batch encodes a token's document itself (inside its bulkhead), and the store's
    commit takes the same bytes: encoding it again appended the event's entry twice."""
    ticks = [{"token": "T", "price": 1.0 + k / 100, "volume": 5.0,
              "time": f"2026-01-01T00:{k // 60:02d}:{k % 60:02d}Z"} for k in range(0, 240, 4)]
    store, key = StateStore(ttl_s=600, codec=StateCodec()), TEMPORAL_STATE.format(token="T")
    redis_conn.delete(key)
    events = [ticks[:50], *([tick] for tick in ticks[50:53])]
    for n, event in enumerate(events):
        analyse_batch(redis_conn, group_ticks(event), store=store, buffer=BUFFER, now_s=1000.0 + n)
    journal = json.loads(redis_conn.get(key))[JOURNAL]
    assert [[tick for _, tick in series] for _, series in journal] == events[1:]


def test_a_reader_that_does_not_know_the_journal_reads_the_state_before_it(redis_conn):
    events = deliveries(seed=14)
    _, raws = run(redis_conn, events, [StateStore(ttl_s=600, codec=StateCodec())])
    raw = next(raw for row in reversed(raws) for raw in row if raw and JOURNAL.encode() in raw)
    state = json.loads(raw)  # plain JSON, as an older version reads it
    assert state.pop(JOURNAL) and state == json.loads(snapshot_of(raw))
    state.pop("reorder")
    monitor = new_monitor(state)  # the monitor it carries on with, the journal's events unknown
    assert monitor.to_state() == state


def test_the_scores_returned_are_those_at_the_floor_or_over(redis_conn):
    """Rows under the floor are not built at all (most ticks): the rest are as they were."""
    events = deliveries(seed=12)
    every, _ = run(redis_conn, events, [StateStore(ttl_s=600, codec=StateCodec())])
    notable, _ = run(redis_conn, events, [StateStore(ttl_s=600, codec=StateCodec())], score_floor=0.3)
    assert [anomalies for anomalies, _ in notable] == [anomalies for anomalies, _ in every]
    assert [rows for _, rows in notable] == [[row for row in rows if row["score"] >= 0.3]
                                             for _, rows in every]
    kept, all_rows = sum(len(rows) for _, rows in notable), sum(len(rows) for _, rows in every)
    assert 0 < kept < all_rows / 4


def test_a_replica_with_other_reorder_settings_replays_the_journal_as_it_was_analysed(redis_conn):
    """A rolling update that changes KADES_REORDER_LATENESS_S: the new replica replayed the
    old one's journal under its own lateness, so ticks the old one had analysed (and whose
    spike it had sent) were pending again, analysed again and the spike sent again."""
    key = TEMPORAL_STATE.format(token="T")
    redis_conn.delete(key)

    def tick(i, price, volume=100.0):
        return {"token": "T", "time": f"2026-01-15T{i * 5 // 3600:02d}:{i * 5 // 60 % 60:02d}:"
                                      f"{i * 5 % 60:02d}Z", "price": price, "volume": volume}
    old, new = StateStore(ttl_s=600, codec=StateCodec()), StateStore(ttl_s=600, codec=StateCodec())
    wider = ReorderBuffer(lateness_s=90.0, idle_s=60.0)
    sent, now = [], 1000.0

    def deliver(store, buffer, ticks):
        nonlocal now
        now += 1
        anomalies, _ = analyse_batch(redis_conn, group_ticks(ticks), store=store, buffer=buffer,
                                     now_s=now)
        sent.extend((a["time"], a["anomaly_type"]) for a in anomalies)
    deliver(old, BUFFER, [tick(i, 1.0 + 0.002 * ((i * 7) % 5 - 2)) for i in range(400)])
    for k in range(12):  # one tick an event (journaled), a spike from the sixth
        deliver(old, BUFFER, [tick(400 + k, 1.0 if k < 5 else 1.6, 100.0 if k < 5 else 5000.0)])
    assert sent, "the spike is found"
    for k in range(30):  # the new replica takes over, with a wider lateness
        deliver(new, wider, [tick(412 + k, 1.6)])
    twice = {found for found in sent if sent.count(found) > 1}
    assert not twice, f"sent twice: {sorted(twice)}"


def test_a_feeds_prices_and_the_chains_of_one_mint_are_two_series(redis_conn):
    """A USD feed and the chain's SOL ticks of one mint were one series, jumping 150 times
    between neighbours: on calm tapes 222 false liquidity drops at score 1, and pumps missed.
    A tick's quote (the chain's: SOL's mint) makes a series of its own."""
    from kades.temporal.function import series_key, token_of
    redis_conn.delete(*redis_conn.keys("kades:{temporal}:state:Mixed*") or ["none"])
    store, ticks = StateStore(ttl_s=600, codec=StateCodec()), []
    def at(second: int) -> str:
        return f"2026-01-15T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    for i in range(600):
        wiggle = 1.0 + 0.002 * ((i * 7) % 5 - 2)
        ticks.append({"token": "Mixed", "time": at(10 * i), "price": 3.0 * wiggle, "volume": 50.0,
                      "liquidity": 500_000.0, "source": "usd-feed"})
        ticks.append({"token": "Mixed", "time": at(10 * i + 5), "price": 0.02 * wiggle, "volume": 0.3,
                      "liquidity": 3_300.0, "source": "solana:raydium_v4",
                      "quote": "So11111111111111111111111111111111111111112", "slot": 1000 + i})
    groups = group_ticks(ticks)
    assert len(groups) == 2 and {token_of(key) for key in groups} == {"Mixed"}
    assert series_key(ticks[1]) != series_key(ticks[0]) == "Mixed"
    anomalies = []
    for start in range(0, len(ticks), 40):  # as events of 20 seconds' ticks
        found, _ = analyse_batch(redis_conn, group_ticks(ticks[start:start + 40]), store=store,
                                 buffer=BUFFER, now_s=1000.0 + start)
        anomalies += found
    assert [(a["token"], a["anomaly_type"]) for a in anomalies] == []
