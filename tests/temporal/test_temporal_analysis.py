"""The pure part of temporal-analysis: grouping, per-token runs, idempotence, speed."""
from __future__ import annotations

import json

import pytest

from kades.errors import BadRequestError
from kades.simulate.market import simulate_market
from kades.temporal.function import analyse_token, group_ticks


def test_group_ticks_sorts_each_token_by_instant():
    ticks = [{"token": "B", "time": "2024-01-01T00:00:10Z", "price": 1},
             {"token": "A", "time": "2024-01-01T00:00:10Z", "price": 1},
             {"token": "A", "time": "2024-01-01T01:00:05+01:00", "price": 2}]
    groups = group_ticks(ticks)
    assert list(groups) == ["B", "A"]
    assert [tick["price"] for _, tick in groups["A"]] == [2, 1]


def test_group_ticks_reports_every_bad_time():
    with pytest.raises(BadRequestError) as caught:  # a time read once is not a problem once
        group_ticks([{"token": "A", "time": "2024-01-01T00:00:00", "price": 1},
                     {"token": "A", "time": "2024-02-30T00:00:00Z", "price": 1},
                     {"token": "B", "time": "2024-01-01T00:00:00", "price": 1}])
    assert [problem.field for problem in caught.value.problems] == [
        "data.ticks[0].time", "data.ticks[1].time", "data.ticks[2].time"]


def test_ticks_sharing_a_time_share_its_instant():
    ticks = [{"token": f"T{n % 7}", "time": f"2024-01-01T00:00:{n // 7:02d}Z", "price": 1}
             for n in range(70)]
    groups = group_ticks(ticks)
    assert sum(map(len, groups.values())) == 70
    for series in groups.values():
        assert [moment for moment, _ in series] == [1704067200.0 + s for s in range(10)]


def token_series(seed: int = 4):
    sim = simulate_market(seed=seed, tokens=1, minutes=30, anomalies_per_token=2)
    return sim, group_ticks(sim.ticks)[sim.ticks[0]["token"]]


def test_batches_give_the_same_anomalies_as_one_run_and_replays_change_nothing():
    sim, series = token_series()
    token = sim.ticks[0]["token"]
    whole_state, whole = analyse_token(token, None, series)
    assert {a["anomaly_type"] for a in whole} >= {label["kind"] for label in sim.labels}
    state, pieces = None, []
    for start in range(0, len(series), 37):
        state, found = analyse_token(token, state, series[start:start + 37])
        state = json.loads(json.dumps(state))  # as it travels through Redis
        pieces += found
        replay_state, replayed = analyse_token(token, state, series[start:start + 37])
        assert replayed == [] and replay_state == state
    assert pieces == whole and state == json.loads(json.dumps(whole_state))


def test_anomalies_have_the_contract_shape():
    sim, series = token_series()
    _, found = analyse_token(sim.ticks[0]["token"], None, series)
    for anomaly in found:
        assert set(anomaly) == {"token", "time", "anomaly_type", "score", "detector", "details"}
        assert 0.0 <= anomaly["score"] <= 1.0 and anomaly["time"].endswith("Z")
        details = anomaly["details"]
        assert anomaly["detector"] == "temporal." + details["detector"]
        assert details["detector"] == details["contributors"][0]
        assert details["price"] > 0


def test_price_anomalies_carry_the_window_the_move_and_the_baseline():
    sim, series = token_series()
    _, found = analyse_token(sim.ticks[0]["token"], None, series)
    moves = [a for a in found if a["anomaly_type"] in ("price_spike", "flash_crash")]
    assert moves
    for anomaly in moves:
        details = anomaly["details"]
        assert details["window_s"] > 0 and details["baseline"] > 0
        assert (details["move"] > 0) == (anomaly["anomaly_type"] == "price_spike")
        assert {"rsi", "macd"} <= set(details["momentum"])


def test_a_state_left_by_the_first_detector_starts_the_token_afresh():
    sim, series = token_series()
    old = {"detector": {"version": 1, "returns_seen": 99, "last_time": 1.0}, "last_flag_time": {}}
    state, _ = analyse_token(sim.ticks[0]["token"], old, series[:10])
    assert state["detector"]["version"] == 2 and state["detector"]["members"]


def test_a_tick_id_is_its_time_and_a_digest_of_its_canonical_json():
    import hashlib

    from kades.temporal.function import tick_id
    for tick in ({"token": "A", "time": "2024-01-01T00:00:10Z", "price": 1.5, "volume": None},
                 {"price": 1e-9, "token": "Bé\u2603", "time": "t", "liquidity": 3, "extra": [1, {"b": 2, "a": 1}]}):
        digest = hashlib.sha1(json.dumps(tick, sort_keys=True).encode()).hexdigest()[:12]
        assert tick_id(12.5, tick) == f"12.500000|{digest}"


def test_ticks_of_one_second_go_in_slot_order():
    """Chain blocks share a second (2-3 slots to one): a pull in the block after the last
    trade's must come after it, whatever the digests say (policy.PULL_SHARE)."""
    from kades.temporal.function import tick_id
    trade = {"token": "A", "time": "2024-01-01T00:00:10Z", "price": 1.0, "slot": 10}
    pulled = {**trade, "liquidity": 1.0, "slot": 11}
    later = {**trade, "slot": 9, "time": "2024-01-01T00:00:11Z"}
    assert tick_id(10.0, trade) < tick_id(10.0, pulled) < tick_id(11.0, later)
    assert tick_id(10.0, {**trade, "slot": 2}) < tick_id(10.0, {**trade, "slot": 10})
