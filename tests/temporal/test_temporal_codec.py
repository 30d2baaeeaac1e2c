"""temporal-analysis's state codec: compact JSON that reads back as the document (NaN and
Infinity too), its own documents back once, anything else as JSON, a bound on what it keeps;
and temporal-analysis on real Redis finds the same anomalies and keeps the same states with
it as with plain JSON."""
from __future__ import annotations

import json
import math

import pytest

from kades.keys import TEMPORAL_STATE
from kades.runtime.reorder import ReorderBuffer
from kades.runtime.state import StateStore
from kades.simulate.market import simulate_market
from kades.jsontext import compact_json
from kades.temporal.codec import StateCodec, _fitting_json
from kades.temporal.function import analyse_batch, group_ticks, read_state


def test_bytes_are_compact_json_and_a_document_comes_back_once():
    codec = StateCodec()
    doc = {"a": [1.5, -0.0, 1e-300, None, True, 0.1 + 0.2], "é": {"x": "\u2603"}, "n": 12}
    raw = codec.dumps("k", doc)
    assert json.loads(raw) == doc and b" " not in raw     # compact, and reads back as it
    assert codec.loads("k", raw) is doc                   # the bytes it wrote: the document
    again = codec.loads("k", raw)                         # a second read: decoded
    assert again is not doc and again == json.loads(raw)
    raw = codec.dumps("k", doc)
    # equal bytes from elsewhere (another attempt's, Redis's): decoded, the document kept
    assert codec.loads("k", bytes(bytearray(raw))) == json.loads(raw) and codec._kept["k"][1] is doc
    assert codec.loads("k", raw.replace(b"1.5", b"2.5"))["a"][0] == 2.5  # not ours: JSON
    assert codec.loads("other", raw) == json.loads(raw)
    # what the stdlib wrote (an older process's bytes) reads the same
    assert codec.loads("other", json.dumps(doc, separators=(",", ":")).encode()) == doc


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), -float("inf")])
def test_a_float_json_cannot_hold_comes_back_as_it_was(odd):
    """A state that overflowed must read back as it was, not as null (orjson writes NaN and
    Infinity as null: the codec then writes the stdlib's JSON, which reads them back)."""
    doc = {"detector": {"scale": odd, "average": None}, "reorder": {}}
    again = StateCodec().loads("k", StateCodec().dumps("k", doc))   # another process's read
    assert again["detector"]["average"] is None
    assert math.isnan(again["detector"]["scale"]) if math.isnan(odd) else again["detector"]["scale"] == odd


def test_what_orjson_cannot_write_or_would_change_is_written_as_the_stdlib_does():
    for doc in ({"big": 2 ** 70}, {"t": (1.0, 2.0)}):
        assert compact_json(doc) == json.dumps(doc, separators=(",", ":")).encode()


def test_it_keeps_the_newest_documents_only():
    codec = StateCodec(max_documents=2)
    raws = {key: codec.dumps(key, {"k": key}) for key in "abc"}
    assert codec.loads("a", raws["a"]) == {"k": "a"} and len(codec._kept) == 2


def test_the_function_commits_the_same_states_and_anomalies_as_with_plain_json(redis_conn):
    sim = simulate_market(seed=5, tokens=3, minutes=40, anomalies_per_token=2)
    buffer = ReorderBuffer(lateness_s=30.0, idle_s=60.0)
    keys = [TEMPORAL_STATE.format(token=token) for token in {t["token"] for t in sim.ticks}]
    runs = []
    for codec in (StateCodec(), None):
        redis_conn.delete(*keys)
        store = StateStore(ttl_s=600, **({"codec": codec} if codec else {}))
        found, states = [], []
        for start in range(0, len(sim.ticks), 7):  # events of 7 ticks, states read back
            found.append(analyse_batch(redis_conn, group_ticks(sim.ticks[start:start + 7]),
                                       store=store, buffer=buffer, now_s=1000.0 + start))
            states.append([raw and read_state(raw, buffer) for raw in redis_conn.mget(keys)])
        runs.append((found, states))
    assert runs[0] == runs[1]
    assert any(anomalies for anomalies, _ in runs[0][0])


def test_threads_replaying_the_same_ticks_never_share_a_document(redis_conn):
    """Duplicate ticks leave a state's bytes as they were read: a document still in one
    thread's attempt must not be handed to another that read equal bytes (it took the reorder
    buffer out of it: a KeyError in the first, and a 500, under the bench's load)."""
    import threading

    sim = simulate_market(seed=6, tokens=2, minutes=10)
    store, buffer = StateStore(ttl_s=600, max_attempts=50, codec=StateCodec()), ReorderBuffer(30.0, 60.0)
    groups = group_ticks(sim.ticks[:40])
    analyse_batch(redis_conn, groups, store=store, buffer=buffer, now_s=1000.0)
    before = redis_conn.mget([TEMPORAL_STATE.format(token=token) for token in groups])
    errors = []

    def replay():
        try:
            for _ in range(40):
                analyse_batch(redis_conn, groups, store=store, buffer=buffer, now_s=1001.0)
        except Exception as error:  # noqa: BLE001 -- reported by the assertion below
            errors.append(error)
    threads = [threading.Thread(target=replay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert redis_conn.mget([TEMPORAL_STATE.format(token=token) for token in groups]) == before


def test_a_journal_entry_is_written_only_when_orjsons_bytes_fit():
    """_fitting_json: compact_json's bytes when orjson's fit the room (exactly at its edge
    too), None past it; what orjson cannot write goes to compact_json, which falls back."""
    entry = [1.0, [[1.0, {"token": "T", "time": "2026-01-01T00:00:00Z", "price": 1e-05}]]]
    size = len(compact_json(entry))
    assert _fitting_json(entry, size) == compact_json(entry)
    assert _fitting_json(entry, size - 1) is None
    large = [1.0, [[1.0, {"n": 2 ** 70}]]]       # past 64 bits: orjson refuses it
    assert json.loads(_fitting_json(large, 10 ** 6)) == large
    odd = [1.0, [[1.0, {"price": float("nan")}]]]  # orjson would write null
    assert math.isnan(json.loads(_fitting_json(odd, 10 ** 6))[1][0][1]["price"])
