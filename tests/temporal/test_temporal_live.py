"""temporal-analysis carries each token's monitor on between events (the codec's LiveDocument)
instead of rebuilding it from the state: the same verdicts and the same states, bit for bit,
as the monitor rebuilt at every event (from the very document, or from its JSON, as another
replica reads it); and a monitor is handed back only with its own bytes, once."""
from __future__ import annotations

import csv
import json
import random

import pytest
from benchmark import PUMP_DIR, trades_to_ticks
from shared_material import needs
from test_fused import drift_points, market_points

from kades.simulate.series import SERIES_KINDS, simulate_series
from kades.temporal.codec import LiveDocument, StateCodec
from kades.temporal.function import analyse_token, group_ticks
from kades.temporal.policy import new_monitor, step


def assert_carried_on_as_rebuilt(points: list[dict], seed: int, *, log_scale: bool = True) -> int:
    """Events of random sizes (mostly one point): every verdict, and every event's end state as
    JSON, the same three ways; the number of events."""
    rng = random.Random(seed)
    live, document, text, at, events = new_monitor(log_scale=log_scale), None, None, 0, 0
    while at < len(points):
        batch = points[at:at + rng.choice((1, 1, 1, 1, 2, 3, 7, 50))]
        at, events = at + len(batch), events + 1
        from_document = new_monitor(document, log_scale=log_scale)
        from_json = new_monitor(text and json.loads(text), log_scale=log_scale)
        for x in batch:
            assert step(live, x) == step(from_document, x) == step(from_json, x), (at, x)
        document, text = from_document.to_state(), json.dumps(from_json.to_state())
        assert json.dumps(live.to_state()) == json.dumps(document) == text, at
    return events


@needs(PUMP_DIR / "events.csv")
def test_carried_on_as_rebuilt_on_real_pump_tapes():
    with open(PUMP_DIR / "events.csv", newline="") as listing:
        files = [row["file"] for row in csv.DictReader(listing)]
    for seed, name in enumerate(files[:2]):
        assert_carried_on_as_rebuilt(trades_to_ticks(PUMP_DIR / name), seed)


@pytest.mark.parametrize("seed", [1, 2])
def test_carried_on_as_rebuilt_on_simulated_markets(seed):
    assert assert_carried_on_as_rebuilt(market_points(seed), seed) > 100


@pytest.mark.parametrize("kind", SERIES_KINDS)
def test_carried_on_as_rebuilt_on_every_simulated_series_kind(kind):
    series = simulate_series(kind, seed=3, jitter=True, points=1200)
    points = [{"time": t, "price": v} for t, v in zip(series.times, series.values)]
    assert_carried_on_as_rebuilt(points, 7, log_scale=False)
    if min(series.values) > 0:
        assert_carried_on_as_rebuilt(points, 8)


def test_carried_on_as_rebuilt_through_a_drift_the_level_range_member_alerts_on():
    assert_carried_on_as_rebuilt(drift_points(6), 9)


def test_analyse_token_with_its_monitor_gives_what_it_gives_from_the_state():
    ticks = [{"token": "A", "time": f"2026-01-01T00:{m:02d}:{s:02d}Z",
              "price": 1.0 + 0.01 * ((m * 7 + s) % 11), "volume": 10.0 + s}
             for m in range(20) for s in (0, 20, 40)]
    series = group_ticks(ticks)["A"]
    state, monitor = None, None
    for start in range(0, len(series), 5):
        piece = series[start:start + 5]
        expected = analyse_token("A", state and json.loads(json.dumps(state)), piece)
        if monitor is None:
            monitor = new_monitor()
        state, found = analyse_token("A", state, piece, monitor=monitor)
        assert json.dumps((state, found)) == json.dumps(expected)


def test_a_monitor_comes_back_with_its_own_bytes_only_and_once():
    codec, monitor = StateCodec(max_documents=2), new_monitor()
    document = LiveDocument({}, monitor, 0.0, [])
    raw = codec.dumps("A", document)
    assert codec.loads("A", bytes(bytearray(raw))) == json.loads(raw)  # equal: another replica's
    assert "reorder" in codec.loads("B", raw)                          # another key: JSON
    assert codec.loads("A", raw).monitor is monitor
    assert type(codec.loads("A", raw)) is dict                          # once
    for token in "ABC":
        codec.dumps(token, LiveDocument({}, monitor, 0.0, []))
    assert list(codec._kept) == ["B", "C"]                              # the newest only


def test_carried_on_as_rebuilt_through_a_flat_start_a_cadence_switch_and_burst_pumps():
    """The rules with state of their own: a price flat from the start (its restart), a new
    cadence (the clock's rescaling), a burst pump and its aftermath (run_peak)."""
    from test_burst_pumps import thin_token
    from test_cadence_change import MINUTE, cadence_series
    from test_flat_start import flat_then_moving

    flat, _, _ = flat_then_moving(0, 300.0, "level", flat_days=0.5, days=1.5, crashes=1)
    assert_carried_on_as_rebuilt(flat, 10)
    times, values, _, _ = cadence_series(0, "walk", [(MINUTE, 1), (15 * MINUTE, 2)], crashes=1)
    assert_carried_on_as_rebuilt([{"time": t, "price": v} for t, v in zip(times, values)], 11)
    pumps, _ = thin_token(0, 120.0, days=2.0, bursts=2, pumps=2)
    assert_carried_on_as_rebuilt(pumps, 12)
