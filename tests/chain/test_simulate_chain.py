"""The chain simulator: deterministic, valid events, labels for every non-organic scenario."""
from __future__ import annotations

from datetime import datetime, timezone

from kades.events.catalogue import CHAIN_BLOCK, data_problems
from kades.simulate.chain import SCENARIO_KINDS, SCENARIOS, simulate_chain


def test_same_seed_same_events_and_every_event_valid():
    first, again = simulate_chain(seed=5, minutes=10), simulate_chain(seed=5, minutes=10)
    assert [e.id for e in first.events] == [e.id for e in again.events]
    assert [e.data for e in first.events] == [e.data for e in again.events]
    assert all(e.type == CHAIN_BLOCK and not data_problems(e) for e in first.events)
    slots = [e.data["slot"] for e in first.events]
    assert slots == sorted(set(slots))


def test_every_manipulation_is_labelled_and_organic_is_not():
    sim = simulate_chain(seed=6)
    required = {(l["scenario"], l["kind"]) for l in sim.labels if l["required"]}
    assert required == {(name, kind) for name in SCENARIOS for kind in SCENARIO_KINDS.get(name, [])}
    assert "organic" not in {l["scenario"] for l in sim.labels}


def test_a_later_start_gives_later_slots_and_new_ids():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    early, late = simulate_chain(seed=5, minutes=5), simulate_chain(seed=5, minutes=5, start=now)
    assert late.events[0].data["slot"] > early.events[-1].data["slot"]
    assert not {e.id for e in early.events} & {e.id for e in late.events}
