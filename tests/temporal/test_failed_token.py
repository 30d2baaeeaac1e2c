"""temporal-analysis's bulkhead: a token whose analysis raises an error no input should cause
(a bug) is logged, counted and started afresh; the event's other tokens are analysed, and the
token's later ticks too. Before, its ticks waiting in the reorder buffer failed every later
event of the token, and every flush, for ever (one such bug: a schema-valid rise that
overflowed, tests/temporal/test_young_series.py)."""
from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from kades.keys import TEMPORAL_STATE
from kades.runtime.reorder import ReorderBuffer
from kades.runtime.state import StateStore
from kades.temporal import codec, function
from kades.temporal.codec import StateCodec
from kades.temporal.function import analyse_batch, group_ticks, read_state

BUFFER = ReorderBuffer(lateness_s=0.0, idle_s=60.0)
POISON = 666.0  # the price the planted bug raises on


def ticks(token: str, seconds: range, price=lambda s: 1.0 + s / 1000) -> dict:
    return group_ticks([{"token": token, "price": price(s), "volume": 10.0,
                         "time": f"2026-01-01T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"}
                        for s in seconds])


def failed() -> float:
    return REGISTRY.get_sample_value("kades_failed_tokens_total", {"function": "temporal-analysis"}) or 0.0


def only_good_went_on(redis_conn, anomalies, scores, counted: float, good_last_s: float) -> None:
    """The BAD token was counted and started afresh, the event's ticks dropped; GOOD's were
    analysed up to `good_last_s` (seconds into 2026-01-01)."""
    assert failed() == counted + 1
    assert {s["token"] for s in scores} == {"GOOD"} and {a["token"] for a in anomalies} <= {"GOOD"}
    keys = [TEMPORAL_STATE.format(token=t) for t in ("BAD", "GOOD")]
    bad, good = (read_state(raw, BUFFER) for raw in redis_conn.mget(keys))
    assert good["detector"]["last_time"] == pytest.approx(good_last_s + 1767225600)
    assert bad["detector"]["last_time"] is None


@pytest.mark.parametrize("store", [lambda: StateStore(ttl_s=600),
                                   lambda: StateStore(ttl_s=600, codec=StateCodec())],
                         ids=["json", "deployed codec"])
def test_a_token_whose_analysis_raises_is_started_afresh_and_the_others_go_on(redis_conn, monkeypatch, store):
    real_step = function.step

    def step(monitor, x):  # a bug met by one price only
        if x["price"] == POISON:
            raise ZeroDivisionError("planted")
        return real_step(monitor, x)
    monkeypatch.setattr(function, "step", step)
    store = store()
    analyse_batch(redis_conn, {**ticks("BAD", range(0, 600, 5)), **ticks("GOOD", range(0, 600, 5))},
                  store=store, buffer=BUFFER, now_s=1000.0)
    counted = failed()
    poisoned = ticks("BAD", range(600, 700, 5), price=lambda s: POISON if s == 650 else 1.0)
    anomalies, scores = analyse_batch(redis_conn, {**poisoned, **ticks("GOOD", range(600, 700, 5))},
                                      store=store, buffer=BUFFER, now_s=1100.0)
    only_good_went_on(redis_conn, anomalies, scores, counted, good_last_s=695.0)
    analyse_batch(redis_conn, ticks("BAD", range(700, 800, 5)), store=store, buffer=BUFFER, now_s=1200.0)
    bad = read_state(redis_conn.get(TEMPORAL_STATE.format(token="BAD")), BUFFER)
    assert bad["detector"]["last_time"] == pytest.approx(795.0 + 1767225600)  # analysed again
    assert failed() == counted + 1


def test_a_token_whose_state_cannot_be_encoded_is_started_afresh_and_the_others_go_on(redis_conn, monkeypatch):
    """The deployed codec encodes a token's state (kades.temporal.codec.LiveDocument) after its
    analysis: an error there is the token's too, met inside the same bulkhead, not in the
    store's commit, where it failed the whole event on every delivery."""
    real_snapshot = codec.LiveDocument.snapshot

    def snapshot(document):  # a bug met by one token's state only
        if any(tick["token"] == "BAD" for _, tick in document.series):
            raise TypeError("planted")
        return real_snapshot(document)
    monkeypatch.setattr(codec.LiveDocument, "snapshot", snapshot)
    store, counted = StateStore(ttl_s=600, codec=StateCodec()), failed()
    anomalies, scores = analyse_batch(redis_conn, {**ticks("BAD", range(0, 600, 5)),
                                                   **ticks("GOOD", range(0, 600, 5))},
                                      store=store, buffer=BUFFER, now_s=1000.0)
    only_good_went_on(redis_conn, anomalies, scores, counted, good_last_s=595.0)
