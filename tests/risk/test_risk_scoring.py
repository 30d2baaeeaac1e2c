"""Risk scoring: components, decay, weights, levels and the explanation's order."""
from __future__ import annotations

import json

import pytest

from kades.risk.scoring import (COMPONENTS, DEFAULT_WEIGHTS, EVIDENCE_KEPT, absorb, combine,
                                component_of, decay, epoch_s, level_of, risk_at, update_risk)


def anomaly(kind: str, score: float, time: str = "2024-01-01T00:00:00Z", token: str = "T"):
    return {"token": token, "time": time, "anomaly_type": kind, "score": score, "detector": "d"}


@pytest.mark.parametrize("kind, component", [
    ("price_spike", "temporal"), ("flash_crash", "temporal"), ("pump", "temporal"),
    ("liquidity_drop", "temporal"), ("volatility_regime", "temporal"),
    ("wash_trading", "chain"), ("cyclic_transfer", "chain"), ("liquidity_removal", "chain"),
    ("rug_price_dump", "chain"), ("sniper_bundle", "chain"), ("accumulation", "chain"),
    ("sentiment_shift", "sentiment"), ("mention_burst", "sentiment"),
    ("coordinated_promotion", "sentiment")])
def test_component_of(kind, component):
    assert component_of(kind) == component


def test_every_catalogued_kind_feeds_a_component_and_no_other_kind_exists():
    from kades.events.catalogue import ANOMALY_KINDS
    assert set(ANOMALY_KINDS.values()) == set(COMPONENTS)
    with pytest.raises(KeyError):
        component_of("something_new")


def test_levels():
    assert [level_of(s) for s in (0.0, 0.3, 0.49, 0.5, 0.69, 0.7, 0.89, 0.9, 1.0)] == [
        "low", "low", "low", "medium", "medium", "high", "high", "critical", "critical"]


def test_decay_halves_per_half_life():
    assert decay(0.8, 6 * 3600, 6 * 3600) == pytest.approx(0.4)
    assert decay(0.8, 0, 3600) == 0.8 and decay(0.8, -5, 3600) == 0.8  # never grows


def test_weights_chain_counts_most_and_a_certain_component_is_critical():
    assert combine({"chain": 0.6}) > combine({"temporal": 0.6}) == pytest.approx(
        combine({"sentiment": 0.6}))
    assert combine({"chain": 1.0}) == 1.0 and level_of(combine({"chain": 1.0})) == "critical"
    assert combine({}) == 0.0
    assert combine({"chain": 0.5, "temporal": 0.5}) > combine({"chain": 0.5})
    assert combine({"temporal": 0.6}) == pytest.approx(1 - 0.4 ** (0.3 / 0.4))
    assert combine({"temporal": 1.0}, {"chain": 1.0, "temporal": 0.0}) == 0.0


def test_evidence_accumulates_within_a_component_and_stays_below_one():
    state, first = update_risk(None, "T", [anomaly("flash_crash", 0.6)])
    state, second = update_risk(state, "T", [anomaly("price_spike", 0.6)])
    assert first["components"]["temporal"] == 0.6
    assert second["components"]["temporal"] == pytest.approx(1 - 0.4 * 0.4)
    assert second["score"] > first["score"] and second["score"] <= 1.0


def test_components_decay_with_the_half_life_setting():
    state, _ = update_risk(None, "T", [anomaly("wash_trading", 0.8)], half_life_s=3600)
    _, later = update_risk(state, "T", [], now="2024-01-01T02:00:00Z", half_life_s=3600)
    assert later["components"]["chain"] == pytest.approx(0.2)
    assert later["time"] == "2024-01-01T02:00:00Z"


def test_a_late_anomaly_scores_at_its_own_time_and_later_ones_do_not_count_there():
    state, _ = update_risk(None, "T", [anomaly("wash_trading", 0.5, "2024-01-01T06:00:00Z")])
    state, risk = update_risk(state, "T", [anomaly("flash_crash", 0.8, "2024-01-01T00:00:00Z")])
    assert risk["time"] == "2024-01-01T00:00:00Z"
    assert risk["components"] == {"chain": 0.0, "sentiment": 0.0, "temporal": 0.8}
    _, at_six = update_risk(state, "T", [], now="2024-01-01T06:00:00Z")
    assert at_six["components"]["temporal"] == pytest.approx(0.4)
    assert at_six["components"]["chain"] == 0.5


def test_the_same_anomaly_counts_once_and_order_does_not_matter():
    stream = [anomaly("flash_crash", 0.6, "2024-01-01T00:00:00Z"),
              anomaly("wash_trading", 0.5, "2024-01-01T01:00:00Z"),
              anomaly("price_spike", 0.4, "2024-01-01T02:00:00Z")]
    forward = absorb(None, stream)
    backward = absorb(absorb(None, stream[::-1]), stream)  # and every one of them twice
    assert forward == backward
    at = epoch_s("2024-01-01T03:00:00Z")
    assert risk_at(forward, "T", at) == risk_at(backward, "T", at)
    assert risk_at(forward, "T", at)["components"]["temporal"] == pytest.approx(
        1 - (1 - decay(0.6, 3 * 3600, 6 * 3600)) * (1 - decay(0.4, 3600, 6 * 3600)), abs=1e-4)


def test_the_evidence_set_drops_what_has_decayed_to_nothing_and_is_capped():
    old = anomaly("wash_trading", 0.9, "2024-01-01T00:00:00Z")
    state = absorb(None, [old, anomaly("wash_trading", 0.9, "2024-01-05T00:00:00Z")])
    assert len(state["evidence"]) == 1  # 16 half-lives later 0.9 is below 1e-3
    many = [anomaly("price_spike", 0.5, f"2024-01-01T{h:02d}:{m:02d}:00Z")
            for h in range(10) for m in range(60)]
    assert len(absorb(None, many)["evidence"]) == EVIDENCE_KEPT


def test_explanation_lists_top_contributors_by_weighted_decayed_contribution():
    anomalies = [anomaly("mention_burst", 0.9, "2024-01-01T00:00:00Z"),
                 anomaly("wash_trading", 0.7, "2024-01-01T05:00:00Z"),
                 anomaly("flash_crash", 0.7, "2024-01-01T06:00:00Z"),
                 anomaly("price_spike", 0.2, "2024-01-01T06:00:00Z")]
    _, risk = update_risk(None, "T", anomalies, explanation_size=3)
    assert [e["anomaly_type"] for e in risk["explanation"]] == [
        "wash_trading", "flash_crash", "mention_burst"]
    assert risk["explanation"][0]["contribution"] == pytest.approx(0.7 * 0.5 ** (1 / 6), abs=1e-4)
    assert risk["explanation"][1]["contribution"] == pytest.approx(0.7 * 0.75, abs=1e-4)


def test_state_is_json_and_the_document_matches_the_contract():
    state, risk = update_risk(None, "T", [anomaly("liquidity_removal", 0.95)])
    assert json.loads(json.dumps(state)) == state
    assert set(risk) == {"token", "time", "score", "level", "components", "explanation"}
    assert set(risk["components"]) == set(COMPONENTS) and risk["level"] == "critical"
    assert sum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)


def test_input_state_is_not_modified():
    state, _ = update_risk(None, "T", [anomaly("wash_trading", 0.5)])
    snapshot = json.dumps(state)
    update_risk(state, "T", [anomaly("wash_trading", 0.5, "2024-01-01T01:00:00Z")])
    assert json.dumps(state) == snapshot


def test_nothing_to_score_at_is_an_error():
    with pytest.raises(ValueError):
        update_risk(None, "T", [])


@pytest.mark.parametrize("kind, score", [("wash_trading", 0.8235), ("liquidity_removal", 0.734021)])
def test_the_level_is_the_level_of_the_score_reported(kind, score):
    """The level came from the score before rounding: "0.7, medium" (0.69996), "0.9, high"."""
    _, risk = update_risk(None, "T", [anomaly(kind, score)])
    assert risk["level"] == level_of(risk["score"])
    assert risk["score"] in (0.7, 0.9)


def test_an_extreme_sentiment_reported_again_is_one_snapshot_not_new_evidence():
    """sentiment-analysis reports its rolling aggregate with every batch of posts: the same
    -0.8 three times was three pieces of evidence, and sentiment alone raised a high alert."""
    def sentiment(minute):
        return {**anomaly("sentiment_extreme", 0.6, f"2024-01-01T00:0{minute}:00Z"),
                "detector": "sentiment-analysis", "details": {"sentiment": -0.8, "window": "1h"}}
    state, once = update_risk(None, "T", [sentiment(1)])
    for minute in (2, 3, 4):
        state, again = update_risk(state, "T", [sentiment(minute)])
    assert again["components"]["sentiment"] == pytest.approx(once["components"]["sentiment"])
    assert again["score"] == once["score"]


def test_an_anomaly_a_year_older_than_the_newest_scores_at_its_own_time():
    """The evidence set is pruned by its newest time: the year-old rug was dropped before its
    own time was scored (0.0, low), though in the other order it scored critical."""
    from kades.risk.function import score_token
    from kades.runtime.reorder import ReorderBuffer
    buffer = ReorderBuffer(lateness_s=30, idle_s=0)
    kwargs = dict(at=None, threshold=0.7, hysteresis=0.1, half_life_s=6 * 3600, buffer=buffer,
                  now_s=0.0)
    state, _, _, _ = score_token(None, "T", [anomaly("price_spike", 0.3, "2024-05-31T23:59:00Z")],
                                 **kwargs)
    _, risk, alerts, notes = score_token(
        state, "T", [anomaly("liquidity_removal", 0.95, "2023-05-31T23:59:00Z")], **kwargs)
    assert risk["level"] == "critical" and notes["late"] == 1
    assert alerts == []  # a year late: counted late, no alert about it now
