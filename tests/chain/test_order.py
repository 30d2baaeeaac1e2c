"""chain-analysis and whale-detection give the same anomalies whatever the delivery order,
within the allowed lateness, and with redeliveries: a slot's per-mint events as the
channel-based Broker delivers them (concurrently, shuffled, some twice)."""
from __future__ import annotations

import json
import random
import time

import pytest

from kades.chain import function as chain
from kades.chain.blockview import block_time_s
from kades.chain.memory import MemoryStates
from kades.chain.ordering import IN_ORDER, Tally, admit
from kades.chain.thresholds import ChainThresholds
from kades.events.catalogue import PING, new_event
from kades.keys import CHAIN_WATERMARK, WHALES_WATERMARK
from kades.runtime import Context
from kades.runtime.reorder import ReorderBuffer
from kades.simulate.chain import simulate_chain
from kades.solana.parts import SlotLinks, split_block
from kades.whales import function as whales

SOURCE = "/kades/solana-source"
FLUSH_SOURCE = "/apis/v1/namespaces/kades/pingsources/stream-flush"
FUNCTIONS = {"chain-analysis": chain, "whale-detection": whales}
DELAY_S = 20.0   # the most an event is held back (the default lateness allows 30 s)
PING_EVERY_S = 60.0


def per_mint_events(sim) -> list[tuple[float, object]]:
    """(when it is sent: its block time, event) of every slot's per-mint events, in order."""
    return [(block_time_s(e.data, None), part) for e in sim.events
            for part in split_block(e.data, source=SOURCE)]


def linked_per_mint_events(sim) -> list[tuple[float, object]]:
    """per_mint_events as a source following the chain sends them: with their links."""
    links, timed = SlotLinks(sim.events[0].data["slot"]), []
    for event in sim.events:
        parts = split_block(event.data, source=SOURCE, links=links)
        timed += [(block_time_s(event.data, None), part) for part in parts]
        links.sent(event.data["slot"], {part.get("subject") for part in parts} - {None})
    return timed


def delivered(timed: list, seed: int, *, redelivered: int) -> list:
    """Each event held back up to DELAY_S, so they overtake each other; `redelivered` of them
    come again up to two minutes later (a retry after a lost reply)."""
    rng = random.Random(seed)
    arrivals = [(at + rng.uniform(0, DELAY_S), event) for at, event in timed]
    arrivals += [(at + rng.uniform(0, 120), event) for at, event in rng.sample(arrivals, redelivered)]
    return sorted(arrivals, key=lambda pair: pair[0])


def run(arrivals: list, settings, redis_conn, monkeypatch, *, at_once: list | None = None) -> list[str]:
    """Every anomaly both functions reply (a reply by its id: a redelivery's reply is the
    same event), the stream-flush pinging every minute of the arrival clock and once more
    long after the end (every mint gone quiet). `at_once` (a list) gets, per anomaly,
    whether the event of its own slot replied it (rather than a later event or a ping)."""
    redis_conn.flushdb()
    replies = {}
    at_once = [] if at_once is None else at_once
    for name, module in FUNCTIONS.items():
        ctx = Context(name, settings=settings)  # a fresh process: nothing cached
        clock = [0.0]
        monkeypatch.setattr(time, "time", lambda: clock[0])
        next_ping = arrivals[0][0]
        pings = 0

        def ping() -> None:
            nonlocal pings
            pings += 1
            flush = new_event(PING, FLUSH_SOURCE, {"job": "flush"}, event_id=f"flush-{pings}")
            replies.update({r.id: r.data["anomalies"]
                            for r in module.handle_block(flush, ctx) or []})

        for at, event in arrivals:
            while next_ping <= at:
                clock[0] = next_ping
                ping()
                next_ping += PING_EVERY_S
            clock[0] = at
            for reply in module.handle_block(event, ctx) or []:
                if reply.id not in replies:
                    at_once += [a["window"]["last_slot"] == event.data["slot"]
                                for a in reply.data["anomalies"]]
                replies[reply.id] = reply.data["anomalies"]
        clock[0] = arrivals[-1][0] + 10 * settings.reorder_idle_s
        ping()
    return sorted(json.dumps(a, sort_keys=True) for rows in replies.values() for a in rows)


def key_facts(anomalies: list[str]) -> list[tuple]:
    return sorted({(a["token"], a["anomaly_type"], a["time"], a["window"]["last_slot"])
                   for a in map(json.loads, anomalies)})


def test_per_mint_events_in_no_order_and_twice_give_what_the_ordered_feed_gives(
        kades_settings, redis_conn, monkeypatch):
    sim = simulate_chain(seed=5, minutes=30)
    timed = per_mint_events(sim)
    ordered = run(timed, kades_settings, redis_conn, monkeypatch)
    kinds = {a["anomaly_type"] for a in map(json.loads, ordered)}
    assert {"liquidity_removal", "rug_price_dump", "wash_trading", "cyclic_transfer", "sniper_bundle",
            "accumulation", "wallet_splitting", "distribution"} <= kinds
    # What the functions find in order is what the eval finds on whole blocks in order.
    offline = []
    for module in FUNCTIONS.values():
        store = MemoryStates()
        for event in sim.events:
            offline += module.analyse_block(None, event.data, block_time_s(event.data, None),
                                            ChainThresholds(), store)
    assert key_facts(ordered) == key_facts([json.dumps(a) for a in offline])
    shuffled = delivered(timed, seed=7, redelivered=40)
    assert [e.id for _, e in shuffled] != [e.id for _, e in timed]
    assert run(shuffled, kades_settings, redis_conn, monkeypatch) == ordered  # evidence and all


def test_with_the_sources_links_a_slot_is_analysed_at_once_and_in_no_order_the_same(
        kades_settings, redis_conn, monkeypatch):
    """Events that carry a following source's links (kades.solana.parts.SlotLinks): in order,
    each anomaly comes in the reply to its own slot's event, not 75 slots (30 s) or a
    stream-flush later; shuffled and redelivered, the same anomalies, evidence and all."""
    sim = simulate_chain(seed=5, minutes=30)
    plain_at_once, linked_at_once = [], []
    ordered = run(per_mint_events(sim), kades_settings, redis_conn, monkeypatch,
                  at_once=plain_at_once)
    linked = linked_per_mint_events(sim)
    assert all("previous_mint_slots" in event.data for _, event in linked)
    assert run(linked, kades_settings, redis_conn, monkeypatch, at_once=linked_at_once) == ordered
    print(f"anomalies replied by their own slot's event: {sum(linked_at_once)}/{len(linked_at_once)}"
          f" with links, {sum(plain_at_once)}/{len(plain_at_once)} without")
    assert len(linked_at_once) == len(ordered) >= 10 and all(linked_at_once)
    assert sum(plain_at_once) < len(plain_at_once) / 2
    shuffled = delivered(linked, seed=7, redelivered=40)
    assert run(shuffled, kades_settings, redis_conn, monkeypatch) == ordered


def test_a_linked_slot_waits_for_its_mints_previous_slot_and_for_the_watermark():
    """kades.chain.ordering.admit with links: a slot goes once its mint's previous slot was
    released and every slot up to its previous slot is committed (the watermark); a slot
    without links waits out the lateness as before."""
    buffer, state, blocked = ReorderBuffer(lateness_s=75, idle_s=60), {}, {}

    def take(slot, links=None, watermark=None):
        item = None if slot is None else (slot, 1.7e9 + slot, {"records": None, "pools": {}})
        blocked.clear()
        return [s for s, _ in admit(buffer, state, item, now_s=0.0, function="chain-analysis",
                                    mint="M", tally=Tally(), links=links, watermark=watermark,
                                    blocked=blocked)]

    # a new mint: nothing of it since 9,000 (more than the lateness and the idle wait before)
    assert take(10_000, (9_999, 9_000), watermark=9_998) == []  # 9,999 may fund its trader
    assert blocked == {"M": 9_999}  # (the watermark alone holds it)
    assert take(None, watermark=9_999) == [10_000]
    assert take(10_002, (10_001, 10_001), watermark=20_000) == []  # the mint's 10,001 to come
    assert blocked == {}  # its own slot will release it
    assert take(10_001, (10_000, 10_000), watermark=20_000) == [10_001, 10_002]
    assert "links" not in state["reorder"]
    assert take(10_010, None, watermark=20_000) == []          # no links
    assert take(10_011, (10_010, 10_010), watermark=20_000) == []  # nor for what comes after it
    assert take(10_086, (10_085, 10_011), watermark=20_000) == [10_010, 10_011, 10_086]  # the lateness
    # the mint's previous slot later than the lateness: waited for, not taken as come
    assert take(10_250, (10_249, 10_150), watermark=20_000) == []
    assert take(10_150, (10_149, 10_086), watermark=20_000) == [10_150, 10_250]
    assert state["reorder"]["pending"] == []
    # a new mint whose source began lately: its first slot waits the lateness
    state.clear()
    assert take(10_000, (9_999, 9_950), watermark=20_000) == []


def test_a_slot_that_waited_for_the_watermark_is_released_by_the_event_that_moves_it(
        kades_settings, redis_conn, monkeypatch):
    """A rug's removal, its mint's last slot, comes before every part of the slot before it:
    it waits for the watermark. The part of that slot which moves the watermark past it
    releases it, and its reply carries the anomaly (it waited for the stream-flush before)."""
    redis_conn.flushdb()
    monkeypatch.setattr(time, "time", lambda: 1.75e9)  # 2025: no wall-clock wait runs out
    sim = simulate_chain(seed=21, minutes=10, scenarios=("organic", "soft_rug"))
    events = [event for _, event in linked_per_mint_events(sim)]
    rug = next(token for token, name in sim.tokens.items() if name == "soft_rug")
    removal = next(e for e in events if e.subject == rug
                   if any(r["action"] == "remove" for r in e.data["liquidity"]))
    before = [e for e in events if e.data["slot"] == removal.data["previous_slot"]]
    assert before and all(e.subject != rug for e in before)
    first = events.index(before[0])
    order = [e for e in events[:first] if e is not removal] + [removal] + before + \
        [e for e in events[first:] if e is not removal and e not in before]
    ctx = Context("chain-analysis", settings=kades_settings)
    found = {}  # anomaly type of the rug -> the slot of the event that replied it
    for event in order:
        for reply in chain.handle_block(event, ctx) or []:
            for anomaly in reply.data["anomalies"]:
                if anomaly["token"] == rug:
                    found.setdefault(anomaly["anomaly_type"], event.data["slot"])
    assert found.get("liquidity_removal") == removal.data["previous_slot"]
    # that event again, as the Broker retries one whose reply was lost: the same anomaly
    releasing = next(e for e in before if any(
        a["token"] == rug and a["anomaly_type"] == "liquidity_removal"
        for reply in chain.handle_block(e, ctx) or [] for a in reply.data["anomalies"]))
    assert releasing.data["slot"] == removal.data["previous_slot"]


@pytest.mark.parametrize("module", [chain, whales])
def test_a_slot_is_said_committed_only_once_it_is(module, kades_settings, redis_conn, monkeypatch):
    """The watermark says every slot up to it has a part committed: a block whose commit
    failed (Redis away: a 503, the Broker retries) says nothing; its retry does."""
    from kades.errors import TemporaryFailure
    watermark = {chain: CHAIN_WATERMARK, whales: WHALES_WATERMARK}[module]
    redis_conn.delete(watermark)
    event = simulate_chain(seed=5, minutes=5, scenarios=("organic",)).events[3]
    assert "previous_mint_slots" in event.data
    ctx = Context(module.FUNCTION.name, settings=kades_settings)
    store = ctx.local(module.start).states

    def away(*args, **kwargs):
        raise TemporaryFailure("Redis away")
    monkeypatch.setattr(store, "update", away)
    with pytest.raises(TemporaryFailure):
        module.handle_block(event, ctx)
    assert redis_conn.hget(watermark, "newest") is None
    monkeypatch.undo()
    module.handle_block(event, ctx)
    assert int(redis_conn.hget(watermark, "newest")) == event.data["slot"]


def test_whole_blocks_in_no_order_give_what_the_ordered_blocks_give(kades_settings, redis_conn,
                                                                    monkeypatch):
    sim = simulate_chain(seed=6, minutes=20, scenarios=("organic", "cycle", "wash_ring", "dump",
                                                        "split_accumulation", "distribution"))
    timed = [(block_time_s(e.data, None), e) for e in sim.events]
    ordered = run(timed, kades_settings, redis_conn, monkeypatch)
    assert len(key_facts(ordered)) >= 5
    assert run(delivered(timed, seed=3, redelivered=20), kades_settings, redis_conn,
               monkeypatch) == ordered


def test_a_slot_later_than_the_lateness_is_counted_and_not_analysed(caplog):
    """A mint's slot arriving after slots past the lateness were analysed: counted in
    kades_late_inputs_total and logged; its redelivery is a duplicate, dropped."""
    from kades.metrics import LATE_INPUTS
    sim = simulate_chain(seed=5, minutes=10, scenarios=("organic",))
    blocks = [e.data for e in sim.events]
    late_block = next(b for b in blocks if b["swaps"])
    rest = [b for b in blocks if b is not late_block]
    store, buffer = MemoryStates(), ReorderBuffer(lateness_s=5, idle_s=1e9)
    before = LATE_INPUTS.labels("whale-detection")._value.get()
    for block in rest + [late_block, rest[-1]]:
        whales.analyse_block(None, block, block_time_s(block, None), ChainThresholds(), store,
                             buffer=buffer, now_s=0.0)
    assert LATE_INPUTS.labels("whale-detection")._value.get() == before + 1
    assert f"slot {late_block['slot']} of" in caplog.text
    (token,) = {s["base_mint"] for s in late_block["swaps"]}
    state = json.loads(store.documents[whales.TOKEN_KEY.format(token=token)])
    assert late_block["slot"] not in {row[-1] for row in state["trades"]}
    assert IN_ORDER.lateness_s == 0


@pytest.mark.parametrize("module", [chain, whales])
def test_a_slot_days_ahead_of_its_block_time_does_not_blind_its_mints(module, caplog):
    """A block a million slots (4.6 days) ahead at its true block time passes the contract's
    slot-since-genesis bound; each of its mints' records is counted and not analysed, and the
    true slots after it give what they give without it (they were all "late" before)."""
    from kades.metrics import IMPOSSIBLE_SLOTS, LATE_INPUTS
    sim = simulate_chain(seed=6, minutes=20, scenarios=("organic", "wash_ring", "dump", "distribution"))
    blocks = [e.data for e in sim.events]
    at = next(i for i, b in enumerate(blocks) if b["swaps"])
    ahead = {**blocks[at], "slot": blocks[at]["slot"] + 1_000_000}
    name = module.FUNCTION.name

    def anomalies(feed: list[dict]) -> list[tuple]:
        store, buffer = MemoryStates(), ReorderBuffer(lateness_s=75, idle_s=60)
        found = []
        for block in feed:  # as deployed: 75 slots of lateness, a minute's wait at most
            time_s = block_time_s(block, None)
            found += module.analyse_block(None, block, time_s, ChainThresholds(), store,
                                          buffer=buffer, now_s=time_s)
        return key_facts([json.dumps(a) for a in found])

    clean = anomalies(blocks)
    late, refused = LATE_INPUTS.labels(name)._value.get(), IMPOSSIBLE_SLOTS.labels(name)._value.get()
    with_jump = anomalies(blocks[:at] + [ahead] + blocks[at:])
    assert len(clean) >= 3 and with_jump == clean
    assert LATE_INPUTS.labels(name)._value.get() == late
    assert IMPOSSIBLE_SLOTS.labels(name)._value.get() > refused
    assert f"slot {ahead['slot']} of" in caplog.text
    print(f"{name}: {len(clean)} anomalies with and without the block ahead")


@pytest.mark.parametrize("module", [chain, whales])
def test_both_functions_take_the_stream_flush(module):
    assert module.FUNCTION.consumes[-1] == PING

