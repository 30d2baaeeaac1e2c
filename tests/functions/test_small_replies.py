"""Replies under MAX_EVENT_BYTES (issue 13, item 6): a handler whose answer would be huge
answers with one event per token, a token's items in parts, each under the limit, nothing
lost or doubled, ids derived from the input; what no split brings under is refused whole.

Handlers are called directly on real Redis and PostgreSQL; the refusal through the runtime.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter

import pytest

from kades.chain.reply import anomalies_reply
from kades.errors import TemporaryFailure
from kades.events.catalogue import (ANOMALY_DETECTED, MARKET_FEED, MARKET_TICK, MAX_EVENT_BYTES,
                                    SOCIAL_POSTS, data_problems, new_event)
from kades.events.chunking import EventTooLarge, event_bytes
from kades.events.envelope import to_binary
from kades.market.function import handle_feed
from kades.runtime import Context, Function, sink
from kades.runtime.endpoint import handle_request
from kades.sentiment import function as sentiment
from kades.temporal import function as temporal

HOT = "HotToken1111111111111111111111111111111111"


@pytest.fixture
def ctx_of(kades_settings, redis_conn, db_conn):
    return lambda name: Context(name, settings=kades_settings)


def flood(token: str, count: int, *, kind: str = "price_spike") -> list[dict]:
    """`count` anomalies of one token, ~400 bytes each (evidence in details)."""
    return [{"token": token, "time": f"2024-06-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
             "anomaly_type": kind, "score": 0.9, "detector": "test.flood",
             "details": {"n": i, "evidence": "e" * 300}} for i in range(count)]


def key_of(item: dict) -> str:
    return json.dumps(item, sort_keys=True)


def assert_split_per_token(replies, items: list[dict], field: str, event_type: str) -> None:
    """Every reply valid, single-token, keyed and under the limit; every item exactly once,
    each token's items in their order; ids distinct."""
    assert all(r.type == event_type and not data_problems(r) for r in replies)
    assert all(event_bytes(r) <= MAX_EVENT_BYTES for r in replies)
    for reply in replies:
        assert {item["token"] for item in reply.data[field]} == {reply.subject}
        assert reply.attributes["partitionkey"] == reply.subject
    assert len({r.id for r in replies}) == len(replies)
    sent = [item for r in replies for item in r.data[field]]
    assert Counter(map(key_of, sent)) == Counter(map(key_of, items))
    for token in {item["token"] for item in items}:
        assert [i for i in sent if i["token"] == token] == [i for i in items if i["token"] == token]


def test_a_feed_of_many_tokens_and_one_hot_token_replies_per_token_in_parts(ctx_of, db_conn):
    ctx = ctx_of("market-aggregator")
    hot = [{"token": HOT, "time": f"2024-06-01T0{i // 3600}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "price": 1.0 + i / 1e4, "volume": 10.0 + i, "liquidity": 5e4, "source": "s" * 60}
           for i in range(6000)]  # ~800 KB of ticks for one token alone
    many = [{"token": f"Token{n:04d}", "time": "2024-06-01T00:00:00Z", "price": 2.0, "volume": 1.0}
            for n in range(1500)]
    feed = new_event(MARKET_FEED, "/feed", {"ticks": hot + many}, event_id="big-feed")
    assert event_bytes(feed) > 3 * MAX_EVENT_BYTES
    replies = handle_feed(feed, ctx)
    sent = [t for r in replies for t in r.data["ticks"]]
    assert len(sent) == len(hot) + len(many)
    assert_split_per_token(replies, sent, "ticks", MARKET_TICK)
    assert {(t["token"], t["time"]) for t in sent} == {(t["token"], t["time"]) for t in hot + many}
    hot_parts = [r for r in replies if r.subject == HOT]
    assert len(hot_parts) >= 3 and len(replies) == len(hot_parts) + 1500
    assert hot_parts[-1].attributes["time"] == max(t["time"] for t in hot)  # a part: its latest tick
    again = handle_feed(feed, ctx)  # the Broker's retry: the very same events
    assert [(r.id, r.data) for r in again] == [(r.id, r.data) for r in replies]
    db_conn.rollback()
    assert db_conn.execute("SELECT count(*) FROM token_metrics").fetchone()[0] == len(sent)


def with_flood(real, extra: list[dict], *, at: int):
    """`analyse_batch` returning what the real one found plus `extra` anomalies (in the
    result's element `at`)."""
    def analyse(*args, **kwargs):
        result = list(real(*args, **kwargs))
        result[at] = result[at] + extra
        return tuple(result)
    return analyse


def test_a_flood_of_temporal_anomalies_is_replied_per_token_in_parts(ctx_of, monkeypatch):
    ctx = ctx_of("temporal-analysis")
    extra = flood(HOT, 3000) + flood("QuietToken", 3, kind="volume_spike")
    monkeypatch.setattr(temporal, "analyse_batch", with_flood(temporal.analyse_batch, extra, at=0))
    tick = {"token": "QuietToken", "time": "2024-06-01T00:00:00Z", "price": 1.0}
    event = new_event(MARKET_TICK, "/kades/market-aggregator", {"ticks": [tick]}, event_id="t1")
    replies = temporal.handle_ticks(event, ctx)
    assert len(replies) >= 5 and sum(r.subject == HOT for r in replies) >= 4
    assert_split_per_token(replies, extra, "anomalies", ANOMALY_DETECTED)
    assert [r.id for r in temporal.handle_ticks(event, ctx)] == [r.id for r in replies]


def test_a_flood_of_sentiment_anomalies_is_replied_per_token_in_parts(ctx_of, monkeypatch):
    ctx = ctx_of("sentiment-analysis")
    extra = flood("$BONK", 2000, kind="mention_burst")
    monkeypatch.setattr(sentiment, "analyse_batch", with_flood(sentiment.analyse_batch, extra, at=1))
    post = {"id": "p1", "platform": "x", "author": "a", "text": "$BONK gm",
            "time": "2024-06-01T00:00:00Z"}
    event = new_event(SOCIAL_POSTS, "/scraper", {"posts": [post]}, event_id="p-1")
    replies = sentiment.handle_posts(event, ctx)
    anomalies = [r for r in replies if r.type == ANOMALY_DETECTED]
    assert len(anomalies) >= 3
    assert_split_per_token(anomalies, extra, "anomalies", ANOMALY_DETECTED)
    assert all(event_bytes(r) <= MAX_EVENT_BYTES for r in replies)


def test_chain_anomaly_replies_are_per_mint_in_parts_with_ids_from_the_block(kades_settings):
    ctx = Context("chain-analysis", settings=kades_settings)
    block = new_event("ai.kades.chain.block.v1", "/solana", {}, event_id="slot-1")
    anomalies = flood("MintA", 1500, kind="wash_trading") + flood("MintB", 2, kind="accumulation")
    replies = anomalies_reply(block, ctx, anomalies, "chain-anomalies")
    assert_split_per_token(replies, anomalies, "anomalies", ANOMALY_DETECTED)
    assert [r.id for r in anomalies_reply(block, ctx, anomalies, "chain-anomalies")] == [r.id for r in replies]
    other = new_event("ai.kades.chain.block.v1", "/solana", {}, event_id="slot-2")
    assert not {r.id for r in anomalies_reply(other, ctx, anomalies, "chain-anomalies")} & {r.id for r in replies}
    assert anomalies_reply(block, ctx, [], "chain-anomalies") == []


def test_a_reply_over_the_limit_is_refused_whole_logged_and_retried(kades_settings, redis_conn, caplog):
    """No split can shrink it (one record too big): a 500 naming the limit, logged; no event
    sent, none kept as the reply, the claim released so the Broker's retry runs again."""
    calls = []

    def handle(event, ctx):
        calls.append(event.id)
        small = new_event(ANOMALY_DETECTED, ctx.source, {"anomalies": flood("A", 1)}, subject="A")
        huge = new_event(ANOMALY_DETECTED, ctx.source, {"anomalies": flood("B", 1000)}, subject="B")
        return [small, huge]

    function = Function("too-large", (MARKET_TICK,), handle)
    ctx = Context("too-large", settings=dataclasses.replace(kades_settings,
                                                            sink_url="http://127.0.0.1:9/closed"))
    event = new_event(MARKET_TICK, "/feed", {"ticks": [{"token": "A", "time": "2024-06-01T00:00:00Z",
                                                        "price": 1.0}]}, event_id="big-reply")
    headers, body = to_binary(event)
    with caplog.at_level(logging.ERROR, logger="kades.events"):
        response = handle_request(function, ctx, headers, body)
    assert response.status_code == 500
    error = json.loads(response.get_data())["error"]
    assert error["code"] == "event_too_large" and f"{MAX_EVENT_BYTES}-byte limit" in error["message"]
    assert any("event too large" in r.getMessage() for r in caplog.records)
    # a closed sink would have made it a 503: nothing was sent before the refusal
    assert handle_request(function, ctx, headers, body).status_code == 500 and len(calls) == 2


def test_the_sink_refuses_an_event_over_the_limit_before_sending_any():
    small = new_event(ANOMALY_DETECTED, "/x", {"anomalies": flood("A", 1)}, subject="A")
    huge = new_event(ANOMALY_DETECTED, "/x", {"anomalies": flood("B", 1000)}, subject="B")
    with pytest.raises(EventTooLarge, match="over the 262144-byte limit"):
        sink.send([small, huge], "http://127.0.0.1:9/closed")  # a POST would be TemporaryFailure
    with pytest.raises(TemporaryFailure):
        sink.send([small], "http://127.0.0.1:9/closed")
