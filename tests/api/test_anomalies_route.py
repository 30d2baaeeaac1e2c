"""GET /v1/anomalies through functions-framework's test client, on the real test database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import yaml

from kades.api.app import ROUTES
from kades.api.openapi import DOCUMENT as OPENAPI
from kades.storage import repository

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)


def store(db_conn, count: int, token="TokenA", anomaly_type="price_spike"):
    rows = [{"time": T0 + timedelta(minutes=i), "token": token, "anomaly_type": anomaly_type,
             "score": round(0.05 + 0.9 * i / max(1, count - 1), 3), "detector": "test",
             "event_source": "/tests", "event_id": f"{token}-{anomaly_type}-{i}"} for i in range(count)]
    assert repository.insert_anomalies(db_conn, rows) == count
    db_conn.commit()


def test_pages_cover_every_row_once_newest_first(api, db_conn):
    store(db_conn, 25)
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/anomalies", query_string=params).get_json()
        seen += [row["event_id"] for row in page["anomalies"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25
    assert seen[0] == "TokenA-price_spike-24"  # newest first


def test_filters(api, db_conn):
    store(db_conn, 10)
    store(db_conn, 4, token="TokenB", anomaly_type="flash_crash")
    rows = api.get("/v1/anomalies?token=TokenB").get_json()["anomalies"]
    assert {r["token"] for r in rows} == {"TokenB"} and len(rows) == 4
    rows = api.get("/v1/anomalies?type=price_spike&min_risk_score=0.5").get_json()["anomalies"]
    assert rows and all(r["score"] >= 0.5 and r["anomaly_type"] == "price_spike" for r in rows)
    window = {"start_time": "2026-11-26T08:02:00Z", "end_time": "2026-11-26T08:04:00+00:00"}
    rows = api.get("/v1/anomalies", query_string=window).get_json()["anomalies"]
    # the window is half-open: [start_time, end_time)
    assert sorted(r["time"] for r in rows) == ["2026-11-26T08:02:00Z", "2026-11-26T08:02:00Z",
                                               "2026-11-26T08:03:00Z", "2026-11-26T08:03:00Z"]


def test_every_bad_parameter_is_named(api):
    response = api.get("/v1/anomalies?limit=0&min_risk_score=abc&start_time=yesterday"
                       "&cursor=zzz&colour=red")
    assert response.status_code == 400
    fields = {d["field"] for d in response.get_json()["error"]["details"]}
    assert fields == {"limit", "min_risk_score", "start_time", "cursor", "colour"}


def test_unknown_route_and_method(api):
    assert api.get("/v1/nothing").status_code == 404
    response = api.post("/v1/anomalies")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"


def test_probes_under_v1_and_root(api):
    for path in ("/health", "/v1/health"):
        assert api.get(path).status_code == 200
    ready = api.get("/v1/ready").get_json()
    assert ready["checks"] == {"redis": "ok", "database": "ok"}
    metrics = api.get("/v1/metrics")
    assert metrics.status_code == 200 and metrics.content_type.startswith("text/plain")
    assert b"process_resident_memory_bytes" in metrics.data


def test_openapi_document_lists_exactly_the_routes():
    document = yaml.safe_load(OPENAPI.read_text())
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    served = {(rule.rule.replace("<", "{").replace(">", "}"), method)
              for rule in ROUTES.iter_rules() for method in rule.methods
              if method not in ("HEAD", "OPTIONS")}
    served |= {(f"/v1/{probe}", "GET") for probe in ("health", "ready", "metrics")}
    assert documented == served
