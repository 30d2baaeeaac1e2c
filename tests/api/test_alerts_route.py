"""GET /v1/alerts: the alerts alert-dispatch stored, newest first, paged; every response
checked against the OpenAPI document."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from openapi_check import check_response

from kades.storage import alerts

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
MINT = "So11111111111111111111111111111111111111112"
OTHER = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"


def store(db_conn, count: int, token: str = MINT) -> None:
    for i in range(count):
        data = {"token": token, "time": (T0 + timedelta(minutes=i)).isoformat(), "score": 0.75,
                "level": "high", "kind": "raised", "threshold": 0.7, "message": f"alert {i}",
                "components": {"chain": 0.75}, "channels": ["anomalies", "patterns"],
                "explanation": [{"anomaly_type": "wash_trading", "component": "chain",
                                 "score": 0.75, "time": T0.isoformat(), "detector": "wash",
                                 "contribution": 0.75}]}
        assert alerts.insert_alert(db_conn, data, event_source="/t", event_id=f"{token}-{i}")
        assert not alerts.insert_alert(db_conn, data, event_source="/t", event_id=f"{token}-{i}")
    db_conn.commit()


def get(api, query: str):
    response = api.get("/v1/alerts" + query)
    check_response("GET", "/v1/alerts", response)
    return response


def test_pages_cover_every_alert_once_newest_first(api, db_conn):
    store(db_conn, 25)
    seen, cursor = [], None
    while True:
        page = get(api, f"?limit=10{'&cursor=' + cursor if cursor else ''}").get_json()
        seen += [row["alert_id"] for row in page["alerts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25
    assert seen[0] == f"{MINT}-24" and seen[-1] == f"{MINT}-0"  # newest first
    first = get(api, "?limit=1").get_json()["alerts"][0]
    assert first["message"] == "alert 24" and first["time"] == "2026-11-26T08:24:00Z"
    assert first["explanation"][0]["anomaly_type"] == "wash_trading"


def test_default_page_token_and_start_time(api, db_conn):
    store(db_conn, 60)
    store(db_conn, 3, token=OTHER)
    assert len(get(api, "").get_json()["alerts"]) == 50
    rows = get(api, f"?token={OTHER}").get_json()["alerts"]
    assert [r["alert_id"] for r in rows] == [f"{OTHER}-2", f"{OTHER}-1", f"{OTHER}-0"]
    rows = get(api, f"?token={MINT}&start_time=2026-11-26T08:58:00Z").get_json()["alerts"]
    assert [r["message"] for r in rows] == ["alert 59", "alert 58"]


def test_every_bad_parameter_is_named(api):
    response = get(api, "?limit=500&token=0xnot&start_time=soon&cursor=zzz&colour=red")
    assert response.status_code == 400
    fields = {d["field"] for d in response.get_json()["error"]["details"]}
    assert fields == {"limit", "token", "start_time", "cursor", "colour"}
