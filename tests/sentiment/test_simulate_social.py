"""The social simulator: seeded, valid events in time order, campaigns aligned when asked."""
from __future__ import annotations

from datetime import datetime, timezone

from kades.events.catalogue import SOCIAL_POSTS, data_problems
from kades.simulate.social import simulate_social

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_same_seed_same_events():
    one, two = simulate_social(seed=5), simulate_social(seed=5)
    assert [e.id for e in one.events] == [e.id for e in two.events]
    assert one.posts == two.posts and one.labels == two.labels
    assert simulate_social(seed=6).posts != one.posts


def test_events_are_valid_in_time_order_and_hold_every_post():
    sim = simulate_social(seed=2, minutes=20)
    assert all(e.type == SOCIAL_POSTS and not data_problems(e) for e in sim.events)
    times = [e["time"] for e in sim.events]
    assert times == sorted(times)
    assert sum(len(e.data["posts"]) for e in sim.events) == len(sim.posts)
    assert len({p["id"] for p in sim.posts}) == len(sim.posts)
    assert all(e.data["tracked"] == sim.tracked for e in sim.events)


def test_campaigns_follow_the_given_tokens_and_times():
    tokens = ["MintOfThePumpedToken111", "MintOfTheCrashedToken11"]
    campaigns = [{"token": tokens[0], "kind": "shill", "start": datetime(2026, 3, 1, 12, 14, tzinfo=timezone.utc)},
                 {"token": tokens[1], "kind": "fud", "start": datetime(2026, 3, 1, 12, 20, tzinfo=timezone.utc)}]
    sim = simulate_social(seed=1, tokens=tokens, start=START, minutes=30, campaigns=campaigns,
                          symbols={tokens[0]: "PUMP"})
    assert [(l["token"], l["campaign"], l["start"]) for l in sim.labels] == [
        (tokens[0], "shill", "2026-03-01T12:14:00Z"), (tokens[1], "fud", "2026-03-01T12:20:00Z")]
    assert sim.tracked[0] == {"token": tokens[0], "symbol": "PUMP", "name": "Pump Coin"}
    assert sim.posts[0]["time"] >= "2026-03-01T12:00:00Z" and sim.posts[-1]["time"] < "2026-03-01T12:30:00Z"
    shill = [p for p in sim.posts if p["author"].startswith("fresh")]
    assert len(shill) > 20 and all(p["author_meta"]["account_age_days"] < 10 for p in shill)
    assert all("12:14:00Z" <= p["time"][11:] <= "12:20:00Z" for p in shill)


def test_no_campaigns_when_asked():
    assert simulate_social(seed=3, campaigns=[]).labels == []
