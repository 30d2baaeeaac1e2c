"""Every route of the api: happy path, bad inputs (every problem named), and the OpenAPI
document checked against each real response."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from apiclient import api_client
from openapi_check import check_response

from kades.events.catalogue import MAX_DATA_DEPTH
from kades.events.envelope import parse_json
from kades.keys import API_ANALYSIS, TRACKED_THRESHOLDS
from kades.storage import repository

MINT = "So11111111111111111111111111111111111111112"
OTHER = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"


def call(api, method: str, path: str, **kwargs):
    response = api.open(method, path, **kwargs)
    check_response(method, path, response)
    return response


@pytest.fixture
def stored(db_conn):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    metrics = [{"time": now - timedelta(minutes=50 - i), "token": MINT, "source": "test",
                "price": 1.0 + i / 100, "volume": 10.0 + i, "liquidity": 50_000.0}
               for i in range(50)]
    repository.insert_token_metrics(db_conn, metrics)
    repository.insert_anomalies(db_conn, [{"time": now - timedelta(minutes=5), "token": MINT,
                                           "anomaly_type": "price_spike", "score": 0.8,
                                           "detector": "t", "event_source": "/t", "event_id": "1"}])
    repository.insert_risk_score(db_conn, {"time": now - timedelta(minutes=5), "token": MINT,
                                           "score": 0.75, "level": "high",
                                           "components": {"temporal": 0.8}, "explanation": [],
                                           "event_source": "/t", "event_id": "1"})
    db_conn.commit()
    return now


def test_analysis_of_a_token(api, stored):
    response = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["risk_score"], body["risk_level"]) == (0.75, "high")
    assert [a["anomaly_type"] for a in body["anomalies"]] == ["price_spike"]
    assert body["metrics"]["price_change"] == pytest.approx(1.49 / 1.0 - 1)
    assert body["metrics"]["volume_change"] > 0 and 0 < body["metrics"]["liquidity_score"] < 1
    assert len(body["series"]["price"]) == 50
    # a second read inside 5 s is the cached document
    assert call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h").get_json() == body


def test_an_analysis_counts_every_row_and_halves_its_window_in_time(api, db_conn):
    """Volume and points summed the thinned sample (480 of 8,623 rows over 24 h), and the
    volume's change compared halves by rows: twice the trading in the second half made
    twice the rows, and read 0 %."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # an hour: 2 trades a minute in its first half, 4 in its second, 1 SOL each, and
    # 8,000 more rows earlier in the day for the 24 h window
    rows = [{"time": now - timedelta(seconds=3590 - 30 * k), "token": MINT, "source": "chain",
             "price": 1.0, "volume": 1.0} for k in range(60)]
    rows += [{"time": now - timedelta(seconds=1800 - 15 * k), "token": MINT, "source": "chain",
              "price": 1.0, "volume": 1.0} for k in range(1, 120)]
    rows += [{"time": now - timedelta(hours=3, seconds=k), "token": MINT, "source": "chain",
              "price": 1.0, "volume": 1.0} for k in range(8_000)]
    repository.insert_token_metrics(db_conn, rows)
    db_conn.commit()
    hour = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h").get_json()["metrics"]
    assert (hour["points"], hour["volume"]) == (179, 179.0)
    assert hour["volume_change"] == pytest.approx(119 / 60 - 1, abs=0.05)
    day = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=24h").get_json()
    assert (day["metrics"]["points"], day["metrics"]["volume"]) == (8_179, 8_179.0)
    assert len(day["series"]["price"]) <= 500


def test_an_analysis_keeps_a_token_s_quotes_apart(api, db_conn):
    """The chain's ticks of a mint are in SOL, a USD feed's of it in dollars: one series had
    both, prices a hundred times apart side by side and volumes of both summed as one. The
    analysis is of the quote most rows are in unless asked for another; `quotes` lists them."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [{"time": now - timedelta(seconds=30 * k), "token": MINT, "source": "solana:pump",
             "quote": MINT, "price": 0.01, "volume": 2.0} for k in range(1, 41)]
    rows += [{"time": now - timedelta(seconds=30 * k + 7), "token": MINT, "source": "feed",
              "quote": "USD", "price": 1.5, "volume": 300.0} for k in range(1, 11)]
    repository.insert_token_metrics(db_conn, rows)
    db_conn.commit()
    body = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h").get_json()
    assert body["quote"] == MINT and body["quotes"] == [{"quote": MINT, "points": 40},
                                                        {"quote": "USD", "points": 10}]
    assert {price for _, price in body["series"]["price"]} == {0.01}
    assert (body["metrics"]["points"], body["metrics"]["volume"]) == (40, 80.0)
    usd = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h&quote=USD").get_json()
    assert usd["quote"] == "USD" and {p for _, p in usd["series"]["price"]} == {1.5}
    assert (usd["metrics"]["points"], usd["metrics"]["volume"]) == (10, 3000.0)
    none = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h&quote=EUR").get_json()
    assert none["metrics"]["points"] == 0 and none["series"]["price"] == []


def test_the_chain_s_rows_from_before_quotes_were_stored_are_read_as_sol(api, db_conn):
    """Rows stored before migration 0012 have quote "": the chain's (a `solana:` source) were
    in SOL all along, and were a series of their own, the default while they were the most."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [{"time": now - timedelta(seconds=30 * k), "token": MINT, "source": "solana:pump",
             "price": 0.01, "volume": 1.0} for k in range(20, 50)]          # before: no quote
    rows += [{"time": now - timedelta(seconds=30 * k), "token": MINT, "source": "solana:pump",
              "quote": MINT, "price": 0.02, "volume": 1.0} for k in range(1, 11)]
    rows += [{"time": now - timedelta(seconds=30 * k + 7), "token": MINT, "source": "feed",
              "price": 1.5, "volume": 1.0} for k in range(1, 6)]             # a feed's: unknown
    repository.insert_token_metrics(db_conn, rows)
    db_conn.commit()
    body = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h").get_json()
    assert body["quotes"] == [{"quote": MINT, "points": 40}, {"quote": "", "points": 5}]
    assert body["quote"] == MINT and body["metrics"]["price"] == 0.02


def test_head_of_the_dashboard_is_served_as_its_get(api):
    for path in ("/", "/assets/app.js"):
        assert api.get(path).status_code == 200
        head = api.open("HEAD", path)
        assert head.status_code == 200 and head.data == b"", path


def test_the_prediction_reads_the_history_its_window_needs(api, db_conn):
    """It read a week: every window of 4 h or more, the default 24 h among them, was the
    persistence forecast, and its note blamed the token's history."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [{"time": now - timedelta(hours=4 * k), "token": MINT, "source": "feed",
             "price": 1.0 + 0.01 * ((k * 7) % 5), "volume": 10.0 + k % 3} for k in range(4 * 60)]
    repository.insert_token_metrics(db_conn, rows)  # 40 days, a tick every 4 h
    db_conn.commit()
    body = call(api, "GET", f"/v1/analytics/prediction/{MINT}?prediction_window=4").get_json()
    # a week gave 37 steps of 4 h: "history too short", the last price as the forecast
    assert "too short" not in body["model"].get("note", ""), body["model"]
    assert body["model"]["kind"] != "persistence", body["model"]


def test_an_analysis_is_kept_a_second_by_its_process_then_read_from_redis(api, stored, redis_conn):
    """Each api process keeps what it served for LOCAL_CACHE_S (its own Context's cache);
    another process reads the shared copy in Redis."""
    body = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=1h").get_json()
    redis_conn.set(API_ANALYSIS.format(token=MINT, timeframe="1h"), '{"shared": true}')
    assert api.get(f"/v1/token/{MINT}/analysis?timeframe=1h").get_json() == body
    assert api_client(api.key).get(f"/v1/token/{MINT}/analysis?timeframe=1h").get_json() == {
        "shared": True}


def test_analysis_of_an_unknown_token_is_empty_not_an_error(api):
    body = call(api, "GET", f"/v1/token/{OTHER}/analysis").get_json()
    assert body["risk_score"] is None and body["anomalies"] == [] and body["metrics"]["points"] == 0


def test_analysis_bad_inputs_are_all_named(api):
    response = call(api, "GET", "/v1/token/not-an-address/analysis?timeframe=2h&x=1")
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    problem = response.get_json()  # RFC 9457; v1's `error` member carries the same list
    assert {d["field"] for d in problem["errors"]} == {"address", "timeframe", "x"}
    assert problem["error"]["details"] == problem["errors"]
    assert (problem["status"], problem["instance"]) == (400, "/v1/token/not-an-address/analysis")
    empty = call(api, "GET", f"/v1/token/{MINT}/analysis?timeframe=")  # found by schemathesis
    assert empty.status_code == 400
    assert [d["field"] for d in empty.get_json()["error"]["details"]] == ["timeframe"]


def test_track_token_sets_the_alert_threshold_and_lists_it(api, redis_conn, recording_sink):
    body = {"token_address": MINT, "tracking_parameters": {"alert_threshold": 0.55,
                                                           "update_interval": 30}}
    response = call(api, "POST", "/v1/token/track", json=body)
    assert response.status_code == 202, response.get_json()
    assert float(redis_conn.hget(TRACKED_THRESHOLDS, MINT)) == 0.55
    [event] = recording_sink  # ai.kades.token.tracked.v1 went to the broker
    assert event.type == "ai.kades.token.tracked.v1" and event.data["token_address"] == MINT
    tracked = call(api, "GET", "/v1/tokens/tracked").get_json()["tokens"]
    assert [(t["token"], t["alert_threshold"]) for t in tracked] == [(MINT, 0.55)]


def test_an_interval_written_as_30_0_is_the_interval_30(api, recording_sink):
    """JSON Schema counts 30.0 an integer, so the body passed; the reply, the tracked event
    and its id (derived from the data) then said 30.0 where a repeat of 30 said 30."""
    answers = [call(api, "POST", "/v1/token/track", json={
        "token_address": MINT, "tracking_parameters": {"update_interval": interval}}).get_json()
        for interval in (30.0, 30)]
    assert [a["tracking_parameters"]["update_interval"] for a in answers] == [30, 30]
    assert isinstance(answers[0]["tracking_parameters"]["update_interval"], int)
    assert answers[0]["event_id"] == answers[1]["event_id"]
    assert [type(e.data["tracking_parameters"]["update_interval"]) for e in recording_sink] == [
        int, int]


def test_untrack_leaves_the_lowest_threshold_left_and_then_none(api, make_key, redis_conn):
    """The thresholds hash holds only tracked tokens: untracking a token nobody else tracks
    drops it (it grew by every token ever tracked), and the default applies again."""
    other = api_client(make_key("enterprise")[1])
    for client, threshold in ((api, 0.3), (other, 0.6)):
        body = {"token_address": MINT, "tracking_parameters": {"alert_threshold": threshold}}
        assert call(client, "POST", "/v1/token/track", json=body).status_code == 202
    assert float(redis_conn.hget(TRACKED_THRESHOLDS, MINT)) == 0.3
    first = call(api, "DELETE", f"/v1/tokens/tracked/{MINT}")
    assert first.status_code == 200 and first.get_json()["effective_alert_threshold"] == 0.6
    assert float(redis_conn.hget(TRACKED_THRESHOLDS, MINT)) == 0.6
    assert call(api, "GET", "/v1/tokens/tracked").get_json()["tokens"] == []
    assert call(api, "DELETE", f"/v1/tokens/tracked/{MINT}").status_code == 404  # not twice
    last = call(other, "DELETE", f"/v1/tokens/tracked/{MINT}")
    assert last.get_json() == {"status": "untracked", "token_address": MINT,
                               "effective_alert_threshold": None}
    assert redis_conn.hget(TRACKED_THRESHOLDS, MINT) is None
    bad = call(api, "DELETE", "/v1/tokens/tracked/0OIl")
    assert [d["field"] for d in bad.get_json()["error"]["details"]] == ["address"]


def test_tracking_changes_publish_in_the_order_they_commit(api, make_key, redis_conn, db_conn,
                                                           monkeypatch):
    """An untrack held between its database change and its Redis write must not overwrite a
    track of another caller that came meanwhile: the track waits for the token's lock, so
    Redis ends with the threshold the database holds (0.5), not with none."""
    from kades.storage import tracking
    publish = tracking.publish_threshold
    held, track_done = threading.Event(), threading.Event()

    def held_publish(client, address, lowest):
        if lowest is None:  # the untrack: go on once the track waits for the lock, or is done
            held.set()
            deadline = time.monotonic() + 10
            while not track_done.is_set() and time.monotonic() < deadline and not db_conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    ).fetchone()[0]:
                time.sleep(0.01)
        publish(client, address, lowest)
    monkeypatch.setattr(tracking, "publish_threshold", held_publish)
    other = api_client(make_key("enterprise")[1])
    body = {"token_address": MINT, "tracking_parameters": {"alert_threshold": 0.3}}
    assert call(api, "POST", "/v1/token/track", json=body).status_code == 202
    answers = {}
    untrack = threading.Thread(target=lambda: answers.update(
        untrack=api.delete(f"/v1/tokens/tracked/{MINT}").status_code))

    def track():
        answers["track"] = other.post("/v1/token/track", json={
            "token_address": MINT, "tracking_parameters": {"alert_threshold": 0.5}}).status_code
        track_done.set()
    untrack.start()
    assert held.wait(10)
    tracker = threading.Thread(target=track)
    tracker.start()
    untrack.join(20), tracker.join(20)
    assert answers == {"untrack": 200, "track": 202}
    assert float(redis_conn.hget(TRACKED_THRESHOLDS, MINT)) == 0.5


def test_a_key_tracks_at_most_its_limit(kades_env, db_conn, redis_conn, make_key,
                                        recording_sink, monkeypatch):
    """The trackings of a key grew without bound (each one a row, a threshold in Redis and a
    token risk-scoring alerts on): past KADES_MAX_TRACKED_PER_KEY a new token is refused."""
    monkeypatch.setenv("KADES_MAX_TRACKED_PER_KEY", "2")
    client = api_client(make_key("enterprise")[1])  # its settings read now
    third = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    for token in (MINT, OTHER):
        assert call(client, "POST", "/v1/token/track", json={"token_address": token}).status_code == 202
    full = call(client, "POST", "/v1/token/track", json={"token_address": third})
    assert full.status_code == 409, full.get_json()
    assert full.get_json()["error"]["code"] == "tracking_limit"
    assert "tracks 2 tokens" in full.get_json()["detail"]
    assert redis_conn.hget(TRACKED_THRESHOLDS, third) is None
    again = {"token_address": MINT, "tracking_parameters": {"alert_threshold": 0.4}}
    assert call(client, "POST", "/v1/token/track", json=again).status_code == 202  # a change
    assert call(client, "DELETE", f"/v1/tokens/tracked/{OTHER}").status_code == 200
    assert call(client, "POST", "/v1/token/track", json={"token_address": third}).status_code == 202
    other_key = api_client(make_key("enterprise")[1])  # the limit is per key
    assert call(other_key, "POST", "/v1/token/track", json={"token_address": OTHER}).status_code == 202


def test_track_token_bad_body(api):
    response = call(api, "POST", "/v1/token/track", json={
        "token_address": "0OIl", "tracking_parameters": {"alert_threshold": 2,
                                                         "update_interval": 0, "x": 1}, "y": 2})
    assert response.status_code == 400
    assert {d["field"] for d in response.get_json()["error"]["details"]} == {
        "token_address", "tracking_parameters.alert_threshold",
        "tracking_parameters.update_interval", "tracking_parameters.x", "y"}
    assert call(api, "POST", "/v1/token/track", data="[1", content_type="application/json"
                ).status_code == 400
    assert call(api, "POST", "/v1/token/track", data="x" * 70_000,
                content_type="application/json").status_code == 413


def test_custom_analytics(api, stored):
    response = call(api, "POST", "/v1/analytics/custom", json={
        "token_address": MINT, "metrics": ["liquidity_depth", "wash_volume_share"],
        "timeframe": "1h"})
    assert response.status_code == 200
    metrics = response.get_json()["metrics"]
    assert metrics["liquidity_depth"]["value"] == 50_000.0
    assert metrics["wash_volume_share"]["value"] == 0.0
    bad = call(api, "POST", "/v1/analytics/custom", json={"token_address": MINT,
                                                         "metrics": ["colour"], "timeframe": 3})
    assert {d["field"] for d in bad.get_json()["error"]["details"]} == {"metrics[0]", "timeframe"}


def test_custom_analytics_finds_the_strongest_anomaly_of_the_whole_timeframe(api, db_conn):
    """Only the newest 1,000 anomalies of any type were read: behind 1,200 newer price spikes
    a busy token's wash trading of the day before said "no such anomaly"."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [{"time": now - timedelta(hours=30), "token": MINT, "anomaly_type": "wash_trading",
             "score": 0.9, "detector": "t", "event_source": "/t", "event_id": "wash"},
            {"time": now - timedelta(hours=31), "token": MINT, "anomaly_type": "wash_trading",
             "score": 0.6, "detector": "t", "event_source": "/t", "event_id": "wash-2"}]
    rows += [{"time": now - timedelta(minutes=n), "token": MINT, "anomaly_type": "price_spike",
              "score": 0.5, "detector": "t", "event_source": "/t", "event_id": f"spike-{n}"}
             for n in range(1_200)]
    repository.insert_anomalies(db_conn, rows)
    db_conn.commit()
    response = call(api, "POST", "/v1/analytics/custom", json={
        "token_address": MINT, "metrics": ["wash_volume_share", "whale_concentration"],
        "timeframe": "7d"})
    metrics = response.get_json()["metrics"]
    assert metrics["wash_volume_share"]["value"] == 0.9
    assert metrics["wash_volume_share"]["basis"] == "2 wash_trading anomalies"
    assert metrics["whale_concentration"] == {"value": 0.0, "basis": "no such anomaly in the timeframe"}


def test_sentiment_route(api):
    response = call(api, "GET", f"/v1/analytics/sentiment/{MINT}?timeframe=1h")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["token"], body["timeframe"], body["mentions"]) == (MINT, "1h", 0)  # never seen
    assert call(api, "GET", f"/v1/analytics/sentiment/{MINT}?timeframe=1y").status_code == 400


def test_prediction_route(api, stored):
    response = call(api, "GET", f"/v1/analytics/prediction/{MINT}?prediction_window=6")
    assert response.status_code == 200
    body = response.get_json()
    assert body["prediction_window"] == 6 and body["horizon_minutes"] == 360
    assert body["forecast"]["price"] > 0 and "beats_persistence" in body["model"]
    bad = call(api, "GET", f"/v1/analytics/prediction/{MINT}?prediction_window=169")
    assert [d["field"] for d in bad.get_json()["error"]["details"]] == ["prediction_window"]


def test_webhooks_create_list_delete(api):
    created = call(api, "POST", "/v1/webhooks", json={"url": "https://example.org/hook",
                                                     "min_level": "critical"})
    assert created.status_code == 201 and created.get_json()["secret"].startswith("whsec_")
    hook_id = created.get_json()["id"]
    listed = call(api, "GET", "/v1/webhooks").get_json()["webhooks"]
    assert [h["id"] for h in listed] == [hook_id] and "secret" not in listed[0]
    assert call(api, "DELETE", f"/v1/webhooks/{hook_id}").status_code == 204
    assert call(api, "DELETE", f"/v1/webhooks/{hook_id}").status_code == 404
    not_an_id = call(api, "DELETE", "/v1/webhooks/nope")
    assert not_an_id.status_code == 400
    assert [d["field"] for d in not_an_id.get_json()["error"]["details"]] == ["webhook_id"]
    bad = call(api, "POST", "/v1/webhooks", json={"url": "ftp://x", "min_level": "huge",
                                                 "tokens": "all", "secret": "short"})
    assert {d["field"] for d in bad.get_json()["error"]["details"]} == {
        "url", "min_level", "tokens", "secret"}
    for url in ("http://[x/", "http://example.com:99999/", "http://xn--ls8h.la/"):  # were 500s
        refused = call(api, "POST", "/v1/webhooks", json={"url": url})
        assert refused.status_code == 400, url
        [problem] = refused.get_json()["error"]["details"]
        assert problem["field"] == "url" and "not a usable URL" in problem["message"], url


def test_webhooks_must_point_at_public_addresses(api, make_key, monkeypatch):
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/",
                "http://redis:6379/", "http://kades-api.kades.svc.cluster.local/x"):
        refused = call(api, "POST", "/v1/webhooks", json={"url": url})
        assert refused.status_code == 400, url
        [problem] = refused.get_json()["error"]["details"]
        assert problem["field"] == "url" and ("public address" in problem["message"]), url
    monkeypatch.setenv("KADES_WEBHOOK_ALLOW_PRIVATE", "true")  # local development
    local = api_client(make_key("enterprise")[1])  # a new api reads the new settings
    assert call(local, "POST", "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}
                ).status_code == 201


def test_openapi_document_is_served(api):
    response = api.get("/v1/openapi.json", key=None)
    assert response.status_code == 200 and response.get_json()["openapi"] == "3.1.0"
    # relative: the document names the server that served it, wherever that is
    assert [s["url"] for s in response.get_json()["servers"]] == ["/"]


def test_anomalies_route_matches_the_document(api, stored):
    assert call(api, "GET", "/v1/anomalies?limit=1").status_code == 200
    assert call(api, "GET", "/v1/anomalies?limit=0").status_code == 400


def test_details_as_deep_as_the_contract_allows_are_served_and_a_deeper_body_is_a_400(api, db_conn):
    """An anomaly whose details nested 900 deep was stored, and GET /v1/anomalies answered 500
    from then on; the functions now refuse data deeper than MAX_DATA_DEPTH, and the api a
    body deeper than that."""
    def nested(levels: int) -> dict:
        details: dict = {"leaf": 1}
        for _ in range(levels - 1):
            details = {"a": details}
        return details
    now = datetime.now(timezone.utc).replace(microsecond=0)
    # the deepest details a function now stores, and a row stored before the bound
    stored = [nested(MAX_DATA_DEPTH), nested(600)]
    repository.insert_anomalies(db_conn, [
        {"time": now - timedelta(seconds=n), "token": MINT, "anomaly_type": "pump", "score": 0.9,
         "detector": "t", "details": details, "event_source": "/t", "event_id": f"deep{n}"}
        for n, details in enumerate(stored)])
    db_conn.commit()
    response = call(api, "GET", f"/v1/anomalies?token={MINT}")
    assert response.status_code == 200
    assert [row["details"] for row in response.get_json()["anomalies"]] == stored
    body: object = MINT
    for _ in range(MAX_DATA_DEPTH + 1):
        body = [body]
    tracked = call(api, "POST", "/v1/token/track", json={"token_address": MINT,
                                                         "tracking_parameters": body})
    assert tracked.status_code == 400
    assert tracked.get_json()["error"]["details"] == [
        {"field": "body", "message": f"nested deeper than {MAX_DATA_DEPTH} levels"}]


def test_extreme_stored_prices_give_valid_json_not_infinity(api, db_conn):
    """A token whose first tick in the window was priced 5e-324 (the contract allows any
    positive price) answered "price_change": Infinity, which no JSON parser reads (the
    dashboard's JSON.parse failed) for as long as that tick stayed in the window."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    repository.insert_token_metrics(db_conn, [
        {"time": now - timedelta(minutes=10 - i), "token": MINT, "source": "test",
         "price": 5e-324 if i == 0 else 1e9, "volume": 5e-324 if i < 5 else 1e30,
         "liquidity": 1e30} for i in range(10)])
    db_conn.commit()
    for path in (f"/v1/token/{MINT}/analysis?timeframe=1h",
                 f"/v1/analytics/prediction/{MINT}?prediction_window=168"):
        response = api.get(path)
        assert response.status_code == 200, path
        body = parse_json(response.data)  # strict: NaN and Infinity are refused
        if "metrics" in body:
            assert body["metrics"]["price_change"] is None
            assert body["metrics"]["volume_change"] is None


def test_a_bug_in_a_route_is_a_500_problem_in_json_with_its_traceback_logged(api, monkeypatch,
                                                                             caplog):
    # Flask's own 500 was an HTML page: `make run`'s demo stopped on a JSONDecodeError
    from kades.api import app

    def broken(ctx, caller, checked):
        raise RuntimeError("a bug in a route")
    monkeypatch.setitem(app.HANDLERS, "list_anomalies", broken)
    response = api.get("/v1/anomalies")  # not `call`: a bug's 500 is in no document
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "RuntimeError: a bug in a route" in caplog.text


def test_werkzeugs_own_http_errors_keep_their_status(api, monkeypatch):
    # a client gone mid-body (werkzeug's ClientDisconnected, a BadRequest) is no bug of ours
    from werkzeug.exceptions import ClientDisconnected

    from kades.api import app

    def disconnected(ctx, caller, checked):
        raise ClientDisconnected()
    monkeypatch.setitem(app.HANDLERS, "list_anomalies", disconnected)
    response = api.get("/v1/anomalies")
    assert response.status_code == 400 and response.mimetype == "application/problem+json"


def test_a_path_holding_a_newline_reaches_the_api(api):
    """Schemathesis found Flask's own HTML 404 for /v1/analytics/prediction/a%0Ab: the
    catch-all route of functions-framework matches no newline. The api's check answers."""
    for path, status in (("/v1/analytics/prediction/a%0Ab%0Dc?prediction_window=22", 400),
                         ("/v1/token/a%0Ab/analysis", 400), ("/no%0Asuch", 404),
                         ("/static/x.js", 404), ("/static/", 404)):  # Flask's static route
        response = api.get(path)
        assert response.status_code == status, path
        assert response.mimetype == "application/problem+json", path


def test_a_nul_in_a_parameter_or_body_is_a_400_naming_it(api):
    """Schemathesis found GET /v1/anomalies?token=%00 a 500: PostgreSQL's text cannot hold it."""
    for path, field in (("/v1/anomalies?token=a%00b", "token"),
                        (f"/v1/token/{MINT}%00/analysis", "address")):
        response = call(api, "GET", path)
        assert response.status_code == 400, path
        assert field in [d["field"] for d in response.get_json()["error"]["details"]], path
    tracked = call(api, "POST", "/v1/token/track", json={"token_address": "a\u0000b"})
    assert tracked.status_code == 400
    assert "body" in [d["field"] for d in tracked.get_json()["error"]["details"]]


def test_a_400_names_the_nul_the_body_and_the_documents_problems_together(api):
    """A U+0000, or a body that was no JSON, was refused alone: the other problems of the
    request went unnamed until it was sent again."""
    response = call(api, "GET", "/v1/anomalies?token=%00&limit=abc&bogus=1")
    assert response.status_code == 400
    assert {d["field"] for d in response.get_json()["error"]["details"]} == {"token", "limit", "bogus"}
    tracked = call(api, "POST", "/v1/token/track?x=1", data="{bad",
                   headers={"Content-Type": "application/json"})
    assert tracked.status_code == 400
    assert [d["field"] for d in tracked.get_json()["error"]["details"]] == ["body", "x"]


def test_head_is_get_without_the_body(api, stored):
    """HEAD (which the 405s list) was a 500: the document has no `head` operations."""
    for path in ("/v1/anomalies", "/v1/alerts", f"/v1/token/{MINT}/analysis", "/v1/webhooks"):
        got, head = api.get(path), api.open("HEAD", path)
        assert head.status_code == got.status_code == 200, path
        assert head.get_data() == b"" and got.get_data(), path
        assert head.headers["X-RateLimit-Limit"], path
    assert api.open("HEAD", "/v1/anomalies?limit=0").status_code == 400


def test_a_method_not_served_is_a_405_with_allow_and_a_doubled_slash_a_404(api):
    refused = api.open("PUT", "/v1/alerts")
    assert refused.status_code == 405
    assert set(refused.headers["Allow"].split(", ")) == {"GET", "HEAD"}
    # werkzeug merged the slashes into a 308 problem with no Location
    doubled = api.get("/v1//alerts")
    assert doubled.status_code == 404 and doubled.mimetype == "application/problem+json"


def test_a_body_sent_as_another_media_type_is_a_415(api):
    body = json.dumps({"token_address": MINT})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        response = call(api, "POST", "/v1/token/track", data=body, content_type=content_type)
        assert response.status_code == 415, content_type
        assert response.get_json()["errors"][0]["field"] == "Content-Type"
    assert call(api, "POST", "/v1/token/track", data=body,
                content_type="application/json; charset=utf-8").status_code == 202


def test_a_routes_own_problems_come_with_the_documents(api):
    """The window's order, a webhook's public host and its id were checked only once the
    document's checks had passed, so an answer named one kind of problem at a time."""
    window = call(api, "GET", "/v1/anomalies?start_time=2026-01-02T00:00:00Z"
                              "&end_time=2026-01-01T00:00:00Z&min_risk_score=5")
    assert {d["field"] for d in window.get_json()["errors"]} == {"start_time", "min_risk_score"}
    hook = call(api, "POST", "/v1/webhooks", json={"url": "http://127.0.0.1/x", "min_level": "x",
                                                  "secret": "whsec_!!"})
    assert {d["field"] for d in hook.get_json()["errors"]} == {"url", "min_level", "secret"}
    gone = call(api, "DELETE", "/v1/webhooks/not-a-uuid?x=1")
    assert {d["field"] for d in gone.get_json()["errors"]} == {"webhook_id", "x"}


def test_numeric_host_forms_of_private_addresses_are_refused(api):
    """127.1 and its kin: ip_address refuses them, a resolver reads them as 127.0.0.1."""
    for url in ("https://127.1/x", "https://0x7f.1/x", "https://2130706433/x",
                "https://10.1/x"):
        refused = call(api, "POST", "/v1/webhooks", json={"url": url})
        assert refused.status_code == 400, url
        assert "public address" in refused.get_json()["errors"][0]["message"], url


def test_an_analysis_s_quote_with_control_characters_or_too_long_is_named(api):
    for quote in ("%00", "a%0Ab", "x" * 65):
        response = call(api, "GET", f"/v1/token/{MINT}/analysis?quote={quote}")
        assert response.status_code == 400, quote
        assert "quote" in json.dumps(response.get_json()), response.get_json()


@pytest.mark.parametrize("query, field", [
    ("limit=%D9%A1%D9%A2", "limit"),          # Arabic-Indic digits, which int() reads
    ("limit=%EF%BC%92%EF%BC%94", "limit"),    # fullwidth digits
    ("limit=5%20%0A", "limit"),                # int() strips the white space
    ("min_risk_score=0.2_5", "min_risk_score"),  # float() reads underscores
    ("min_risk_score=1_0", "min_risk_score"),  # was refused as 10.0, a value never sent
    ("min_risk_score=%200.5", "min_risk_score"),
    ("limit=" + "9" * 5000, "limit"),  # past int()'s 4,300 digits: a ValueError
])
def test_a_query_number_is_ascii_digits_as_written(api, query, field):
    response = call(api, "GET", f"/v1/anomalies?{query}")
    assert response.status_code == 400, query
    (detail,) = response.get_json()["error"]["details"]
    assert detail["field"] == field and "10.0" not in detail["message"], detail

