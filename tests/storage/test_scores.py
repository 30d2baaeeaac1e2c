"""temporal_scores: one row per (token, time), the higher score kept, against the real database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kades.storage.scores import insert_scores, score_history

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def score(value: float, detector: str, event_id: str) -> dict:
    return {"time": T0, "token": "MintA", "score": value, "top_detector": detector,
            "event_source": "/kades/market", "event_id": event_id}


def stored(conn) -> list[tuple]:
    return [(row["score"], row["top_detector"])
            for row in score_history(conn, "MintA", since=T0 - timedelta(days=1))]


def test_a_second_tick_of_one_second_keeps_the_higher_score_in_either_order(db_conn):
    """A trade and the pull in the next block share their second: the pull's score is kept
    whichever is stored first, and storing either again changes nothing."""
    trade, pull = score(0.55, "zscore", "e-trade"), score(0.97, "liquidity", "e-pull")
    assert insert_scores(db_conn, [trade]) == 1
    assert insert_scores(db_conn, [pull]) == 1
    assert insert_scores(db_conn, [trade, pull]) == 0
    assert stored(db_conn) == [(0.97, "liquidity")]
    db_conn.execute("DELETE FROM temporal_scores")
    assert insert_scores(db_conn, [pull, trade]) == 1  # one batch, the pull first
    assert stored(db_conn) == [(0.97, "liquidity")]
