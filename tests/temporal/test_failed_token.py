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
from kades.temporal import function
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
    assert failed() == counted + 1
    assert {s["token"] for s in scores} == {"GOOD"} and {a["token"] for a in anomalies} <= {"GOOD"}
    keys = [TEMPORAL_STATE.format(token=t) for t in ("BAD", "GOOD")]
    bad, good = (read_state(raw, BUFFER) for raw in redis_conn.mget(keys))
    assert good["detector"]["last_time"] == pytest.approx(695.0 + 1767225600)
    assert bad["detector"]["last_time"] is None  # started afresh, the event's ticks dropped
    analyse_batch(redis_conn, ticks("BAD", range(700, 800, 5)), store=store, buffer=BUFFER, now_s=1200.0)
    bad = read_state(redis_conn.get(keys[0]), BUFFER)
    assert bad["detector"]["last_time"] == pytest.approx(795.0 + 1767225600)  # analysed again
    assert failed() == counted + 1
