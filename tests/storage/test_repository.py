"""Reads and writes against the real, migrated test database."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from kades.storage import repository as repo

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def anomaly(seconds: int = 0, **changes) -> dict:
    row = {"time": T0 + timedelta(seconds=seconds), "token": "MintA", "anomaly_type": "price_spike",
           "score": 0.8, "detector": "temporal.zscore", "details": {"z": 4.2},
           "event_source": "/kades/temporal", "event_id": f"evt-{seconds}"}
    return {**row, **changes}


def risk(seconds: int = 0, **changes) -> dict:
    row = {"time": T0 + timedelta(seconds=seconds), "token": "MintA", "score": 0.7,
           "level": "high", "components": {"chain": 0.9}, "explanation": ["mint authority"],
           "event_source": "/kades/risk", "event_id": f"risk-{seconds}"}
    return {**row, **changes}


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_token_metrics_batch_of_500_inserts_once(db_conn):
    rows = [{"time": T0 + timedelta(seconds=i), "token": f"Mint{i % 5}", "source": "raydium",
             "price": 1.0 + i, "volume": 10.0, "liquidity": 100.0,
             "event_source": "/kades/market", "event_id": "tick-1"} for i in range(500)]
    started = time.perf_counter()
    assert repo.insert_token_metrics(db_conn, rows) == 500
    elapsed_s = time.perf_counter() - started
    assert repo.insert_token_metrics(db_conn, rows) == 0  # redelivery
    db_conn.commit()
    assert count(db_conn, "token_metrics") == 500
    assert elapsed_s < 2.0, f"500 rows took {elapsed_s:.2f} s"


def test_token_metrics_optional_values_default_to_null(db_conn):
    assert repo.insert_token_metrics(db_conn, [{"time": T0, "token": "M", "source": "s"}]) == 1
    assert db_conn.execute("SELECT price, event_id FROM token_metrics").fetchone() == (None, "")


def test_token_metrics_keep_what_their_prices_are_in(db_conn):
    """market-aggregator's rows name their quote (migration 0012): the chain's ticks the
    wrapped SOL mint, a feed's what its ticks say, "" when they say nothing."""
    from types import SimpleNamespace

    from kades.market.function import metric_rows
    ticks = [{"time": T0, "token": "M", "source": "solana:pump", "price": 1e-6, "slot": 7,
              "quote": "So11111111111111111111111111111111111111112"},
             {"time": T0, "token": "M", "source": "feed", "price": 1.5, "quote": "USD"},
             {"time": T0, "token": "M", "source": "other", "price": 1.4}]
    rows = metric_rows(SimpleNamespace(source="/t", id="e1"), ticks)
    assert repo.insert_token_metrics(db_conn, rows) == 3
    assert db_conn.execute("SELECT source, quote FROM token_metrics ORDER BY source").fetchall() == [
        ("feed", "USD"), ("other", ""), ("solana:pump", "So11111111111111111111111111111111111111112")]


def test_a_feed_in_two_quotes_keeps_a_row_in_each(db_conn):
    """A feed pricing a token in USD and in SOL in one second: the key held (token, time,
    source) and kept whichever quote came first (migration 0014 adds the quote to it)."""
    usd = {"time": T0, "token": "M", "source": "feed", "quote": "USD", "price": 1.5, "volume": 3.0}
    sol = {**usd, "quote": "SOL", "price": 0.01, "volume": 0.02}
    assert repo.insert_token_metrics(db_conn, [usd, sol]) == 2
    assert repo.insert_token_metrics(db_conn, [sol, usd]) == 0  # redelivery
    chain = [chain_tick(7, 1.0, 2.0, token="M", source="feed", quote=q) for q in ("SOL", "USDC")]
    assert repo.insert_token_metrics(db_conn, chain) == 1  # a slot leaves a feed's row alone
    db_conn.commit()
    assert db_conn.execute("SELECT quote, price, volume, slots FROM token_metrics"
                           " WHERE token = 'M' ORDER BY quote").fetchall() == [
        ("SOL", 0.01, 0.02, []), ("USD", 1.5, 3.0, []), ("USDC", 1.0, 2.0, [7])]


def chain_tick(slot: int, price: float, volume: float | None, **changes) -> dict:
    row = {"time": T0, "token": "MintS", "source": "solana:pump", "price": price,
           "volume": volume, "liquidity": 10.0 * slot, "slot": slot,
           "event_source": "/kades/market", "event_id": f"block-{slot}"}
    return {**row, **changes}


@pytest.mark.parametrize("order", [(100, 101, 102), (102, 100, 101), (101, 102, 100)])
def test_slots_of_one_second_merge_in_any_order_each_once(db_conn, order):
    # Block times are whole seconds: three slots' ticks of one token share a key. Every
    # order of arrival gives the newest slot's price and liquidity and the summed volume,
    # and a redelivered block changes nothing.
    ticks = {100: chain_tick(100, 1.0, 5.0), 101: chain_tick(101, 2.0, None),
             102: chain_tick(102, 3.0, 7.0)}
    assert [repo.insert_token_metrics(db_conn, [ticks[slot]]) for slot in order] == [1, 1, 1]
    assert [repo.insert_token_metrics(db_conn, [ticks[slot]]) for slot in order] == [0, 0, 0]
    db_conn.commit()
    row = db_conn.execute("SELECT price, volume, liquidity, event_id, slots FROM token_metrics"
                          " WHERE token = 'MintS'").fetchall()
    assert len(row) == 1
    price, volume, liquidity, event_id, slots = row[0]
    assert (price, volume, liquidity, event_id) == (3.0, 12.0, 1020.0, "block-102")
    assert sorted(slots) == [100, 101, 102]


def test_slot_rows_leave_feed_rows_and_nulls_alone(db_conn):
    feed = {"time": T0, "token": "MintS", "source": "feed", "price": 9.0, "volume": 1.0}
    assert repo.insert_token_metrics(db_conn, [feed, chain_tick(7, 1.0, None)]) == 2
    assert repo.insert_token_metrics(db_conn, [chain_tick(8, 2.0, None, source="feed")]) == 0
    assert repo.insert_token_metrics(db_conn, [chain_tick(6, 0.5, None)]) == 1
    assert repo.insert_token_metrics(db_conn, [chain_tick(2**63, 4.0, 1.0)]) == 0  # past bigint
    db_conn.commit()
    rows = db_conn.execute("SELECT source, price, volume, slots FROM token_metrics"
                           " WHERE token = 'MintS' ORDER BY source").fetchall()
    assert rows == [("feed", 9.0, 1.0, []), ("solana:pump", 1.0, None, [7, 6])]


def test_same_anomaly_twice_is_stored_once(db_conn):
    assert repo.insert_anomalies(db_conn, [anomaly()]) == 1
    assert repo.insert_anomalies(db_conn, [anomaly(), anomaly()]) == 0
    assert count(db_conn, "anomaly_events") == 1


def test_anomaly_key_tells_apart_anomalies_of_one_event(db_conn):
    rows = [anomaly(anomaly_type="whale_transfer", anomaly_key=wallet) for wallet in ("W1", "W2")]
    assert repo.insert_anomalies(db_conn, rows) == 2
    assert repo.insert_anomalies(db_conn, rows) == 0


def test_score_outside_0_1_is_refused_by_the_database(db_conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        repo.insert_anomalies(db_conn, [anomaly(score=1.5)])


def test_missing_keys_are_all_named_and_naive_times_refused(db_conn):
    with pytest.raises(ValueError, match="anomaly 0: missing detector, event_source"):
        repo.insert_anomalies(db_conn, [{"time": T0, "token": "M", "anomaly_type": "x",
                                         "score": 0.1, "event_id": "e"}])
    with pytest.raises(ValueError, match="timezone-aware"):
        repo.insert_anomalies(db_conn, [anomaly(time=datetime(2026, 1, 1))])


def test_iso_strings_are_accepted_as_times(db_conn):
    assert repo.insert_anomalies(db_conn, [anomaly(time="2026-01-15T12:00:00Z")]) == 1
    assert repo.insert_anomalies(db_conn, [anomaly()]) == 0  # the same instant


def test_risk_score_is_idempotent_and_latest_is_newest(db_conn):
    assert repo.insert_risk_score(db_conn, risk(0)) is True
    assert repo.insert_risk_score(db_conn, risk(0)) is False
    assert repo.insert_risk_score(db_conn, risk(60, score=0.2, level="low")) is True
    latest = repo.latest_risk_score(db_conn, "MintA")
    assert latest["score"] == 0.2 and latest["level"] == "low"
    assert latest["components"] == {"chain": 0.9} and latest["explanation"] == ["mint authority"]
    assert repo.latest_risk_score(db_conn, "Unknown") is None


def test_of_two_risk_scores_of_one_instant_the_newest_is_the_higher_everywhere(db_conn):
    """Two events' scores of one token and instant: which one was "the newest" was the
    planner's pick, and the analysis, the tracked list and the riskiest tokens could differ."""
    from kades.storage import analysis
    for n, (score, level) in enumerate([(0.3, "low"), (0.9, "critical"), (0.6, "medium")]):
        assert repo.insert_risk_score(db_conn, risk(60, score=score, level=level,
                                                    event_id=f"tie-{n}", token="Tied"))
    repo.insert_risk_score(db_conn, risk(0, score=1.0, level="critical", token="Tied"))
    db_conn.commit()
    assert repo.latest_risk_score(db_conn, "Tied")["score"] == 0.9
    assert analysis.latest_risks(db_conn, ["Tied"])["Tied"]["score"] == 0.9
    assert [(r["token"], r["score"]) for r in analysis.riskiest_tokens(db_conn, T0)] == [("Tied", 0.9)]


def test_pages_cover_every_row_once_newest_first(db_conn):
    # pairs of rows share a timestamp, so the id tie-break matters
    rows = [anomaly(i // 2, event_id=f"e{i}") for i in range(25)]
    assert repo.insert_anomalies(db_conn, rows) == 25
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = repo.query_anomalies(db_conn, limit=10, cursor=cursor)
        pages += 1
        seen += page
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 25
    assert len({row["id"] for row in seen}) == 25
    keys = [(row["time"], row["id"]) for row in seen]
    assert keys == sorted(keys, reverse=True)


def test_rows_arriving_between_pages_do_not_shift_the_next_page(db_conn):
    repo.insert_anomalies(db_conn, [anomaly(i, event_id=f"e{i}") for i in range(6)])
    first, cursor = repo.query_anomalies(db_conn, limit=3)
    repo.insert_anomalies(db_conn, [anomaly(100, event_id="newer")])
    second, cursor = repo.query_anomalies(db_conn, limit=3, cursor=cursor)
    assert cursor is None
    assert [r["event_id"] for r in first + second] == [f"e{i}" for i in range(5, -1, -1)]


def test_exact_last_page_has_no_next_cursor(db_conn):
    repo.insert_anomalies(db_conn, [anomaly(i, event_id=f"e{i}") for i in range(4)])
    page, cursor = repo.query_anomalies(db_conn, limit=4)
    assert len(page) == 4 and cursor is None


def test_filters_combine(db_conn):
    repo.insert_anomalies(db_conn, [
        anomaly(0, event_id="a", score=0.3),
        anomaly(10, event_id="b", score=0.9),
        anomaly(20, event_id="c", score=0.95, token="MintB"),
        anomaly(30, event_id="d", score=0.99, anomaly_type="flash_crash"),
    ])

    def ids(**filters) -> list[str]:
        return [r["event_id"] for r in repo.query_anomalies(db_conn, **filters)[0]]

    assert ids() == ["d", "c", "b", "a"]
    assert ids(token="MintB") == ["c"]
    assert ids(anomaly_type="flash_crash") == ["d"]
    assert ids(min_score=0.9) == ["d", "c", "b"]
    assert ids(start_time=T0 + timedelta(seconds=10), end_time=T0 + timedelta(seconds=30)) \
        == ["c", "b"]
    assert ids(token="MintA", anomaly_type="price_spike", min_score=0.5) == ["b"]


def test_bad_cursor_and_limit_are_value_errors(db_conn):
    with pytest.raises(ValueError, match="invalid cursor"):
        repo.query_anomalies(db_conn, cursor="not-a-cursor")
    with pytest.raises(ValueError, match="limit"):
        repo.query_anomalies(db_conn, limit=0)


def test_cursor_round_trip():
    assert repo.decode_cursor(repo.encode_cursor(T0, 42)) == (T0, 42)


def test_a_cursor_nested_past_what_json_recurses_is_invalid_not_a_crash():
    """GET /v1/alerts?cursor=<base64 of 1,100 nested arrays>: a RecursionError, a 500."""
    import base64
    deep = base64.urlsafe_b64encode(b"[" * 1100 + b"]" * 1100).decode().rstrip("=")
    with pytest.raises(ValueError, match="invalid cursor"):
        repo.decode_cursor(deep)


def test_daily_view_gives_candles(db_conn):
    rows = [{"time": T0 + timedelta(hours=h), "token": "MintA", "source": "raydium",
             "price": price, "volume": 5.0, "liquidity": liquidity}
            for h, price, liquidity in ((0, 2.0, 10.0), (1, 9.0, 20.0), (2, 1.0, 30.0),
                                        (3, 4.0, 40.0))]
    repo.insert_token_metrics(db_conn, rows)
    candle = db_conn.execute(
        "SELECT bucket, open, high, low, close, volume, avg_liquidity FROM token_metrics_daily"
        " WHERE token = 'MintA'").fetchone()
    assert candle == (datetime(2026, 1, 15, tzinfo=timezone.utc), 2.0, 9.0, 1.0, 4.0, 20.0, 25.0)


def test_series_are_thinned_in_the_database_keeping_extremes_and_the_newest(db_conn):
    """A week of a busy token left PostgreSQL whole (600,000 rows) to be cut to 500 in the
    api, whose 512 Mi two such requests ran out of; and every n-th row left out a 3-second
    flash crash the dashboard marks, and the newest risk score. Now at most MAX_POINTS rows
    leave it: of each bucket of rows its first, last, lowest and highest."""
    from kades.storage import analysis
    prices = [1.0 + 0.001 * (i % 7) for i in range(5_003)]
    prices[2_500:2_503] = [0.4, 0.5, 0.45]  # a flash crash of three seconds
    rows = [{"time": T0 + timedelta(seconds=i), "token": "Busy", "source": "feed",
             "price": price, "volume": 1.0} for i, price in enumerate(prices)]
    repo.insert_token_metrics(db_conn, rows)
    repo.insert_token_metrics(db_conn, [{**rows[0], "token": "Calm", "time": T0}])
    for i in range(0, 1_204):
        repo.insert_risk_score(db_conn, risk(i, token="Busy", event_id=f"r{i}",
                                             score=0.95 if i == 1_203 else 0.2))
    db_conn.commit()
    fetched = []

    class Counting:  # a connection's cursors, counting the rows that leave the database
        def __init__(self, conn, cursor=None):
            self.conn, self.cur = conn, cursor

        def cursor(self, *args, **kwargs):
            return Counting(self.conn, self.conn.cursor(*args, **kwargs))

        def __enter__(self):
            self.cur.__enter__()
            return self

        def __exit__(self, *exc):
            return self.cur.__exit__(*exc)

        def execute(self, *args, **kwargs):
            self.cur.execute(*args, **kwargs)
            return self

        def fetchall(self):
            found = self.cur.fetchall()
            fetched.append(len(found))
            return found
    series = analysis.metric_series(Counting(db_conn), "Busy", T0, "")
    assert len(series) <= analysis.MAX_POINTS and fetched == [len(series)]
    times = [r["time"] for r in series]
    assert times == sorted(times) and series[0]["time"] == T0
    assert series[-1]["time"] == rows[-1]["time"]  # the newest
    assert min(r["price"] for r in series) == 0.4 and max(r["price"] for r in series) == 1.006
    assert set(series[0]) == {"time", "price", "volume", "liquidity"}
    assert [r["price"] for r in analysis.metric_series(db_conn, "Calm", T0, "")] == [1.0]
    assert analysis.metric_series(db_conn, "Busy", T0 + timedelta(days=1), "") == []
    risks = analysis.risk_series(db_conn, "Busy", T0)
    assert len(risks) <= analysis.MAX_POINTS and risks[-1]["score"] == 0.95  # the newest
    totals = analysis.metric_totals(db_conn, "Busy", T0, T0 + timedelta(seconds=1_000), "")
    assert totals == {"points": 5_003, "volume": 5_003.0, "first_half": 1_000.0,
                      "second_half": 4_003.0}
    assert set(risks[0]) == {"time", "score", "level"}
