"""The analysis of a token says why: each explanation entry of its risk carries the stored
anomaly's evidence (`details`), found by type, time, detector and score."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from openapi_check import check_response

from kades.events.catalogue import ANOMALY_DETECTED, new_event
from kades.risk.function import handle_anomalies
from kades.runtime import Context
from kades.storage import analysis, repository

MINT = "So11111111111111111111111111111111111111112"


def entry(anomaly: dict, contribution: float) -> dict:
    """An explanation entry as risk-scoring writes it."""
    return {"anomaly_type": anomaly["anomaly_type"], "component": "chain",
            "score": anomaly["score"], "time": anomaly["time"].isoformat().replace("+00:00", "Z"),
            "detector": anomaly["detector"], "contribution": contribution}


def test_explanation_entries_carry_the_stored_evidence(api, db_conn):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    wash = {"time": now - timedelta(hours=3), "token": MINT, "anomaly_type": "wash_trading",
            "score": 0.81, "detector": "chain.wash", "event_source": "/t", "event_id": "1",
            "details": {"summary": "2 wallet(s) carried 64% of the volume",
                        "evidence": {"wallets": ["A", "B"], "volume_share": 0.64}}}
    # the same kind, time and detector for two wallets of one event: a row each
    whales = [{"time": now - timedelta(minutes=20), "token": MINT, "anomaly_type": "whale_movement",
               "score": 0.5, "detector": "whale", "event_source": "/t", "event_id": "2",
               "anomaly_key": wallet, "details": {"wallet": wallet}} for wallet in ("W1", "W2")]
    decoy = {**whales[0], "score": 0.3, "anomaly_key": "W3", "details": {"wallet": "W3"}}
    repository.insert_anomalies(db_conn, [wash, *whales, decoy])
    gone = {**wash, "anomaly_type": "cyclic_transfer", "time": now - timedelta(hours=1)}
    explanation = [entry(wash, 0.6), entry(whales[0], 0.45), entry(whales[1], 0.45),
                   entry(gone, 0.2), {"note": "names no anomaly"}]
    repository.insert_risk_score(db_conn, {"time": now, "token": MINT, "score": 0.9,
                                           "level": "critical", "components": {"chain": 0.9},
                                           "explanation": explanation, "event_source": "/t",
                                           "event_id": "3"})
    db_conn.commit()

    response = api.get(f"/v1/token/{MINT}/analysis?timeframe=1h")
    check_response("GET", f"/v1/token/{MINT}/analysis", response)
    got = response.get_json()["explanation"]
    assert [e.get("details", "kept as it was") for e in got] == [
        wash["details"], {"wallet": "W1"}, {"wallet": "W2"}, None, "kept as it was"]
    # the wash trade is 3 h old, outside the 1 h window, yet its evidence is there
    assert got[0]["contribution"] == 0.6 and got[0]["detector"] == "chain.wash"
    assert analysis.with_evidence(db_conn, MINT, []) == []


def test_evidence_of_what_risk_scoring_stored(api, kades_settings, db_conn):
    """The real producer: risk-scoring stores the anomalies and the explanation; every entry
    finds its anomaly's details (times with microseconds, two wallets alike but for details)."""
    at = datetime.now(timezone.utc) - timedelta(minutes=3)
    when = at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    anomalies = [{"token": MINT, "time": when, "anomaly_type": "whale_movement", "score": 0.6,
                  "detector": "whale", "details": {"wallet": wallet, "share": share}}
                 for wallet, share in (("W1", 0.12), ("W2", 0.09))]
    anomalies.append({"token": MINT, "time": when, "anomaly_type": "liquidity_removal",
                      "score": 0.9, "detector": "chain.liquidity",
                      "details": {"summary": "80% of the pool's quote liquidity removed"}})
    ctx = Context("risk-scoring", settings=dataclasses.replace(kades_settings, reorder_idle_s=0.0))
    handle_anomalies(new_event(ANOMALY_DETECTED, "/kades/chain-analysis",
                               {"anomalies": anomalies}, event_id="e1"), ctx)
    got = api.get(f"/v1/token/{MINT}/analysis?timeframe=1h").get_json()["explanation"]
    assert sorted((e["anomaly_type"], e["details"].get("wallet", "")) for e in got) == [
        ("liquidity_removal", ""), ("whale_movement", "W1"), ("whale_movement", "W2")]
    assert next(e for e in got if e["anomaly_type"] == "liquidity_removal")["details"] == \
        anomalies[2]["details"]
