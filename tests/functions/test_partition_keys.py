"""Every event a function produces about one token carries it as `subject` and `partitionkey`
(issue 13, item 1): the Kafka Broker keeps one token's events in order only by that key.

The demo story (market feeds, social posts, chain blocks) goes through the producing handlers
in-process, each reply on to the functions that consume it, on real Redis and PostgreSQL.
"""
from __future__ import annotations

from kades.chain import function as chain_function
from kades.events.catalogue import (ALERT, ALERT_V1_NAME, ANOMALY_DETECTED, CHAIN_BLOCK,
                                    MARKET_FEED, MARKET_TICK, RISK_SCORED, SCHEMAS,
                                    SENTIMENT_SCORED, SOCIAL_POSTS, TOKEN_TRACKED)
from kades.market import function as market_function
from kades.risk import function as risk_function
from kades.runtime import Context
from kades.sentiment import function as sentiment_function
from kades.simulate.story import demo_story
from kades.temporal import function as temporal_function
from kades.whales import function as whale_function

# what consumes what (as eventing/ routes it), producers of per-token events only
ROUTES = {MARKET_FEED: ["market-aggregator"], CHAIN_BLOCK: ["market-aggregator", "chain-analysis",
                                                            "whale-detection"],
          SOCIAL_POSTS: ["sentiment-analysis"], MARKET_TICK: ["temporal-analysis"],
          ANOMALY_DETECTED: ["risk-scoring"], SENTIMENT_SCORED: ["risk-scoring"]}
MODULES = {"market-aggregator": market_function, "chain-analysis": chain_function,
           "whale-detection": whale_function, "sentiment-analysis": sentiment_function,
           "temporal-analysis": temporal_function, "risk-scoring": risk_function}


def tokens_of(data: dict) -> set[str]:
    """The tokens an event's data concerns."""
    found = {data[name] for name in ("token", "token_address") if name in data}
    return found | {item["token"] for name in ("ticks", "anomalies") for item in data.get(name, [])}


def test_every_event_about_one_token_is_keyed_by_it(kades_settings, redis_conn, db_conn):
    contexts = {name: Context(name, settings=kades_settings) for name in MODULES}
    queue = list(demo_story(seed=5, minutes=20).events)
    produced = []
    while queue:
        event = queue.pop(0)
        for name in ROUTES.get(event.type, []):
            replies = MODULES[name].FUNCTION.handle(event, contexts[name]) or []
            produced += replies
            queue += replies
    seen = {event.type for event in produced}
    assert {MARKET_TICK, ANOMALY_DETECTED, SENTIMENT_SCORED, RISK_SCORED, ALERT} <= seen
    for event in produced:
        (token,) = tokens_of(event.data)  # every reply is about one token
        assert event.subject == event.attributes.get("partitionkey") == token, (event.type, event.id)
    # the types about a token: each produced above, or (token.tracked) by the api; the alert
    # type's old name is only accepted (through v1), never produced
    assert {t for t, schema in SCHEMAS.items() if {"token", "ticks", "anomalies", "token_address"}
            & set(schema.get("properties", {}))} - seen == {
                TOKEN_TRACKED, MARKET_FEED, ALERT_V1_NAME}
