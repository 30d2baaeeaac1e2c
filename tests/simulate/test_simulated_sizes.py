"""The simulators' events stay under MAX_EVENT_BYTES (issue 13, item 6): a window too big
for one event is sent in consecutive parts, nothing lost, ids still from the seed."""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timezone

from kades.events.catalogue import MAX_EVENT_BYTES
from kades.events.chunking import event_bytes
from kades.simulate import chain as chain_simulator
from kades.simulate.market import feed_events, simulate_market
from kades.simulate.social import post_events

START = datetime(2024, 6, 1, tzinfo=timezone.utc)


def test_a_market_window_of_many_tokens_is_sent_in_parts():
    sim = simulate_market(seed=3, tokens=2500, minutes=0.2, step_s=5.0, anomalies_per_token=0)
    events = feed_events(sim, source="/sim")
    assert all(event_bytes(e) <= MAX_EVENT_BYTES for e in events)
    sent = [(t["token"], t["time"]) for e in events for t in e.data["ticks"]]
    assert Counter(sent) == Counter((t["token"], t["time"]) for t in sim.ticks)
    assert len(events) > len({t["time"] for t in sim.ticks})  # some windows took several events
    again = feed_events(sim, source="/sim")
    assert [e.id for e in again] == [e.id for e in events] and len({e.id for e in events}) == len(events)


def test_a_window_that_fits_keeps_its_id():
    sim = simulate_market(seed=3, tokens=3, minutes=1)
    first = feed_events(sim, source="/sim")[0]
    origin = datetime.fromisoformat(sim.ticks[0]["time"].replace("Z", "+00:00")).timestamp()
    assert first.id == str(uuid.uuid5(uuid.NAMESPACE_URL, f"kades-simulate:3:{origin}:0"))


def test_a_social_window_of_many_posts_is_sent_in_parts_each_with_the_tracked_tokens():
    posts = [{"id": f"p{i}", "platform": "x", "author": f"a{i}", "text": f"$BONK to the moon {i} " * 20,
              "time": "2024-06-01T00:00:01Z"} for i in range(2000)]
    tracked = [{"token": "BonkMint", "symbol": "BONK"}]
    events = post_events(posts, tracked, seed=1, start=START, batch_s=10.0, source="/sim")
    assert len(events) > 2 and all(event_bytes(e) <= MAX_EVENT_BYTES for e in events)
    assert [p for e in events for p in e.data["posts"]] == posts
    assert all(e.data["tracked"] == tracked for e in events)
    assert len({e.id for e in events}) == len(events)


def test_a_simulated_slot_over_the_limit_goes_per_mint_in_parts(monkeypatch):
    whole = chain_simulator.simulate_chain(seed=23, minutes=10).events
    monkeypatch.setattr(chain_simulator, "MAX_EVENT_BYTES", 1)  # every slot "too big"
    split = chain_simulator.simulate_chain(seed=23, minutes=10).events
    assert any(e.data.get("part") for e in split) and all(e.subject == e.attributes["partitionkey"] == e.data["part"]["key"]
               for e in split if e.data.get("part"))
    kinds = ("transfers", "swaps", "liquidity", "pool_states", "launches")
    signatures = lambda events: Counter((k, r["signature"], r.get("tx_index")) for e in events  # noqa: E731
                                        for k in kinds for r in e.data.get(k, []))
    assert signatures(split) == signatures(whole) and len(split) > len(whole)
