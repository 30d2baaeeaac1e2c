"""The event catalogue: every type has a valid schema, an example that passes, and named failures."""
from __future__ import annotations

import pytest
from jsonschema import Draft7Validator

from kades.errors import InvalidEventError
from kades.events import catalogue
from kades.events.catalogue import SCHEMAS, data_problems, derived_id, new_event

MINT = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
NOW = "2026-11-26T08:00:00Z"
TICK = {"token": MINT, "time": NOW, "price": 0.000021, "volume": 1200.0, "liquidity": 5.0e5}
ANOMALY = {"token": MINT, "time": NOW, "anomaly_type": "flash_crash", "score": 0.93,
           "detector": "return_spike", "details": {"return": -0.31}}

EXAMPLES = {
    catalogue.PING: {"job": "risk-decay"},
    catalogue.CHAIN_BLOCK: {"slot": 250_000_000, "block_time": NOW, "swaps": [], "liquidity": [],
                            "pool_states": [], "launches": [],
                            "transfers": [{"signature": "5UfD", "mint": MINT, "source": "A", "destination": "B",
                                           "amount": 3_000_000_000, "decimals": 6}]},
    catalogue.MARKET_FEED: {"ticks": [TICK]},
    catalogue.MARKET_TICK: {"ticks": [TICK, {**TICK, "time": "2026-11-26T08:00:05Z"}]},
    catalogue.SOCIAL_POSTS: {"posts": [{"id": "1", "platform": "x", "author": "a",
                                        "text": "$BONK to the moon 🚀", "time": NOW,
                                        "author_meta": {"followers": 12, "account_age_days": 3},
                                        "engagement": {"likes": 4, "reposts": 1},
                                        "tokens": [MINT]}],
                             "tracked": [{"token": MINT, "symbol": "BONK", "name": "Bonk"}]},
    catalogue.ANOMALY_DETECTED: {"anomalies": [ANOMALY]},
    catalogue.SENTIMENT_SCORED: {"token": MINT, "time": NOW, "window": "1h", "score": -0.4,
                                 "label": "negative", "mentions": 12, "unique_authors": 9,
                                 "breakdown": {"positive": 2, "neutral": 3, "negative": 7}},
    catalogue.RISK_SCORED: {"token": MINT, "time": NOW, "score": 0.72, "level": "high",
                            "components": {"chain": 0.1, "sentiment": 0.2, "temporal": 0.95}},
    catalogue.ALERT: {"token": MINT, "time": NOW, "level": "high", "score": 0.72,
                      "message": "risk rose to high", "kind": "raised", "threshold": 0.7,
                      "channels": ["anomalies", "patterns", "wash_trading"]},
    catalogue.TOKEN_TRACKED: {"token_address": MINT,
                              "tracking_parameters": {"alert_threshold": 0.7, "update_interval": 60}},
}
EXAMPLES[catalogue.ALERT_V1_NAME] = EXAMPLES[catalogue.ALERT]  # the old name, through v1
# One broken example per type and the field the error must name.
BROKEN = {
    catalogue.PING: ({"job": "reboot"}, "data.job"),
    catalogue.CHAIN_BLOCK: ({**EXAMPLES[catalogue.CHAIN_BLOCK], "slot": -1}, "data.slot"),
    catalogue.MARKET_FEED: ({"ticks": []}, "data.ticks"),
    catalogue.MARKET_TICK: ({"ticks": [{**TICK, "price": 0}]}, "data.ticks[0].price"),
    catalogue.SOCIAL_POSTS: ({"posts": [{"id": "1"}]}, "data.posts[0]"),
    catalogue.ANOMALY_DETECTED: ({"anomalies": [{**ANOMALY, "score": 1.5}]}, "data.anomalies[0].score"),
    catalogue.SENTIMENT_SCORED: ({**EXAMPLES[catalogue.SENTIMENT_SCORED], "score": 2}, "data.score"),
    catalogue.RISK_SCORED: ({**EXAMPLES[catalogue.RISK_SCORED], "level": "severe"}, "data.level"),
    catalogue.ALERT: ({**EXAMPLES[catalogue.ALERT], "time": "yesterday"}, "data.time"),
    catalogue.TOKEN_TRACKED: ({"token_address": ""}, "data.token_address"),
}
BROKEN[catalogue.ALERT_V1_NAME] = BROKEN[catalogue.ALERT]


def test_every_type_has_an_example_and_a_broken_example():
    assert set(EXAMPLES) == set(SCHEMAS) == set(BROKEN)


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_schema_is_a_valid_json_schema(event_type):
    Draft7Validator.check_schema(SCHEMAS[event_type])


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_example_passes(event_type):
    event = new_event(event_type, "/tests", EXAMPLES[event_type], subject=MINT)
    assert data_problems(event) == []
    assert event["partitionkey"] == MINT


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_broken_example_names_the_field(event_type):
    data, field = BROKEN[event_type]
    event = new_event(event_type, "/tests", data)
    with pytest.raises(InvalidEventError) as caught:
        catalogue.validate_data(event)
    assert field in [p.field for p in caught.value.problems]


def test_all_problems_of_the_data_are_listed():
    data = {"ticks": [{**TICK, "price": -1}, {"token": MINT}]}
    fields = [p.field for p in data_problems(new_event(catalogue.MARKET_TICK, "/t", data))]
    assert "data.ticks[0].price" in fields
    assert fields.count("data.ticks[1]") == 2  # time and price both missing


def test_bytes_data_or_no_data_is_a_problem_for_json_types():
    event = new_event(catalogue.MARKET_TICK, "/t", b"raw")
    assert data_problems(event)[0].field == "datacontenttype"
    event = new_event(catalogue.MARKET_TICK, "/t", None)
    assert data_problems(event)[0].field == "data"


def test_derived_ids_are_stable_and_distinct():
    cause = new_event(catalogue.MARKET_TICK, "/t", EXAMPLES[catalogue.MARKET_TICK])
    assert derived_id(cause, "reply") == derived_id(cause, "reply")
    assert derived_id(cause, "reply") != derived_id(cause, "other")


def test_every_event_kades_creates_names_its_schema():
    """`dataschema` on every type but Knative's PingSource type; one URI per type, so a
    breaking change (a new .vN type) is a new URI, as CloudEvents asks."""
    made = {t: new_event(t, "/t", EXAMPLES[t]).get("dataschema") for t in SCHEMAS}
    assert made.pop(catalogue.PING) is None
    assert made == {t: "urn:kades:schema:" + t for t in made}


def test_alerts_are_issued_under_the_noun_verb_name_and_the_old_one_still_validates():
    assert catalogue.ALERT == "ai.kades.alert.issued.v1"
    assert all(t.count(".") >= 4 for t in SCHEMAS if t.startswith("ai.kades.")
               and t != catalogue.ALERT_V1_NAME), "ai.kades.<noun>.<verb>.vN"
    old = new_event(catalogue.ALERT_V1_NAME, "/t", EXAMPLES[catalogue.ALERT])
    assert data_problems(old) == []
    assert [p.field for p in data_problems(new_event(catalogue.ALERT_V1_NAME, "/t", {}))]


def test_unknown_type_cannot_be_created():
    with pytest.raises(ValueError):
        new_event("ai.kades.unknown.v1", "/t", {})
