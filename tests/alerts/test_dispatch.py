"""alert-dispatch on real Redis and PostgreSQL, webhooks received by a real HTTP server."""
from __future__ import annotations

import json
import time

import httpcore
import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from standardwebhooks import Webhook, WebhookVerificationError

from kades.alerts import delivery, stream
from kades.alerts.delivery import RetryPolicy, deliver_due
from kades.alerts.function import handle_alert
from kades.alerts.signing import as_whsec, new_secret, verify_v1_headers
from kades.alerts.webhook_http import webhook_client
from kades.events.catalogue import ALERT, new_event
from kades.runtime import Context
from kades.storage import alerts
from kades.storage import webhooks as store
from kades.storage.apikeys import create_key
from receiver import Receiver

ALERT_DATA = {"token": "So1anaMint1111111111111111111111111111111", "time": "2026-11-26T08:00:00Z",
              "level": "critical", "score": 0.93, "kind": "raised", "threshold": 0.7,
              "message": "risk reached critical", "channels": ["anomalies", "patterns"]}
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.0, timeout_s=2.0)


@pytest.fixture
def ctx(kades_settings, redis_conn, db_conn):
    return Context("alert-dispatch", settings=kades_settings)


@pytest.fixture
def key_id(db_conn):
    the_id, _ = create_key(db_conn, tier="standard")
    db_conn.commit()
    return the_id


@pytest.fixture
def receivers():
    made = []
    yield lambda *a, **k: made.append(Receiver(*a, **k)) or made[-1]
    for receiver in made:
        receiver.close()


def hook(db_conn, key_id, url, *, secret="s3cret", **kwargs):
    row = store.create_webhook(db_conn, key_id=key_id, url=url, secret=secret, **kwargs)
    db_conn.commit()
    return row


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def drain(ctx, client, rounds=10):
    totals = {"delivered": 0, "retry": 0, "dead": 0}
    for _ in range(rounds):
        counts = deliver_due(ctx.db, client, policy=FAST)  # 127.0.0.1
        for name, value in counts.items():
            totals[name] += value
        if not any(counts.values()):
            break
    return totals


def test_alert_is_published_once_on_the_stream(ctx, redis_conn):
    event = new_event(ALERT, "/kades/risk-scoring", ALERT_DATA, subject=ALERT_DATA["token"])
    before = sample("kades_alerts_published_total", level="critical")
    handle_alert(event, ctx)
    handle_alert(event, ctx)  # redelivered
    entries = stream.since(redis_conn, "0-0")
    assert len(entries) == 1
    assert sample("kades_alerts_published_total", level="critical") == before + 1
    assert entries[0][1]["data"] == ALERT_DATA and entries[0][1]["type"] == "alert"


def test_alert_is_stored_once_for_the_api(ctx, db_conn):
    event = new_event(ALERT, "/kades/risk-scoring", ALERT_DATA, subject=ALERT_DATA["token"])
    handle_alert(event, ctx)
    handle_alert(event, ctx)  # redelivered
    rows, _ = alerts.recent_alerts(db_conn, token=ALERT_DATA["token"])
    assert [r["alert_id"] for r in rows] == [event.id]
    assert rows[0]["message"] == ALERT_DATA["message"] and rows[0]["level"] == "critical"


def test_webhook_is_signed_retried_and_matches_level_and_token(ctx, db_conn, key_id, receivers):
    flaky = receivers(statuses=[500, 503])  # fails twice, then accepts
    wrong_token = receivers()
    too_high = receivers()
    secret = new_secret()
    hook(db_conn, key_id, flaky.url, secret=secret)
    hook(db_conn, key_id, wrong_token.url, tokens=["AnotherMint"])
    hook(db_conn, key_id, too_high.url, min_level="critical")
    event = new_event(ALERT, "/kades/risk-scoring", {**ALERT_DATA, "level": "high"})
    handle_alert(event, ctx)
    before = {o: sample("kades_webhook_deliveries_total", outcome=o) for o in ("delivered", "retry")}
    with httpx.Client() as client:
        totals = drain(ctx, client)
    assert totals == {"delivered": 1, "retry": 2, "dead": 0}
    assert {o: sample("kades_webhook_deliveries_total", outcome=o) - before[o]
            for o in before} == {"delivered": 1, "retry": 2}
    assert len(flaky.received) == 3 and not wrong_token.received and not too_high.received
    headers, body, _ = flaky.received[-1]
    assert Webhook(secret).verify(body, headers)["data"]["level"] == "high"  # Standard Webhooks
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    # one webhook-id for every attempt of a delivery (the receiver's idempotency key)
    assert {h["webhook-id"] for h, _, _ in flaky.received} == {headers["X-KADES-Delivery"]}
    # and the headers of before, through v1
    assert verify_v1_headers(secret, body, headers["X-KADES-Timestamp"], headers["X-KADES-Signature"])
    assert not verify_v1_headers("other", body, headers["X-KADES-Timestamp"],
                                 headers["X-KADES-Signature"])


def test_a_clearing_reaches_the_webhooks_its_raise_reached(ctx, db_conn, key_id, receivers):
    """A `min_level: high` webhook got a critical alert's raise and never its clearing, whose
    level is by then below high: risk-scoring's decide names the level it stood at."""
    from kades.risk.alerting import decide
    high_only = receivers()
    hook(db_conn, key_id, high_only.url, min_level="high")
    risks = [{"token": ALERT_DATA["token"], "time": t, "score": s, "level": level}
             for t, s, level in (("2026-11-26T08:00:00Z", 0.95, "critical"),
                                 ("2026-11-26T09:00:00Z", 0.4, "medium"))]
    _, alerts = decide(None, risks, threshold=0.7)
    assert [(a["kind"], a.get("cleared_level")) for _, a in alerts] == [
        ("raised", None), ("cleared", "critical")]
    for alert_id, data in alerts:
        handle_alert(new_event(ALERT, "/kades/risk-scoring", data, event_id=alert_id), ctx)
    with httpx.Client() as client:
        assert drain(ctx, client)["delivered"] == 2
    kinds = [json.loads(body)["data"]["kind"] for _, body, _ in high_only.received]
    assert sorted(kinds) == ["cleared", "raised"]


def test_a_webhook_with_a_secret_of_before_is_signed_both_ways(ctx, db_conn, key_id, receivers):
    receiver = receivers()
    hook(db_conn, key_id, receiver.url, secret="a-secret-of-before-v1")
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with httpx.Client() as client:
        assert drain(ctx, client)["delivered"] == 1
    headers, body, _ = receiver.received[0]
    assert Webhook(as_whsec("a-secret-of-before-v1")).verify(body, headers)["id"]
    assert verify_v1_headers("a-secret-of-before-v1", body, headers["X-KADES-Timestamp"],
                             headers["X-KADES-Signature"])


def test_alerts_under_the_old_type_name_are_still_dispatched(ctx, db_conn):
    from kades.events.catalogue import ALERT_V1_NAME
    event = new_event(ALERT_V1_NAME, "/kades/risk-scoring", ALERT_DATA, subject=ALERT_DATA["token"])
    handle_alert(event, ctx)
    rows, _ = alerts.recent_alerts(db_conn, token=ALERT_DATA["token"])
    assert [r["alert_id"] for r in rows] == [event.id]


def test_exhausted_delivery_is_dead_lettered(ctx, db_conn, key_id, receivers):
    down = receivers(statuses=[500] * 10)
    hook(db_conn, key_id, down.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with httpx.Client() as client:
        totals = drain(ctx, client)
    assert totals == {"delivered": 0, "retry": 2, "dead": 1} and len(down.received) == 3
    [dead] = store.deliveries(db_conn, status="dead")
    assert dead["attempts"] == 3 and dead["last_status"] == 500


def test_a_slow_receiver_does_not_hold_back_the_others(ctx, db_conn, key_id, receivers):
    slow = receivers(delay_s=1.5)
    quick = [receivers() for _ in range(3)]
    for receiver in [slow, *quick]:
        hook(db_conn, key_id, receiver.url)
    started = time.monotonic()
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with httpx.Client() as client:
        deliver_due(ctx.db, client, policy=FAST)
    arrivals = [r.received[0][2] - started for r in quick]
    slow_done = slow.received[0][2] - started + slow.delay_s
    # the quick ones were all sent before the slow one answered (sent in parallel)
    assert all(arrival < slow_done for arrival in arrivals)


def test_a_delivery_answered_is_recorded_before_the_rounds_slowest_answers(ctx, db_conn, key_id,
                                                                           receivers):
    """Recorded once the round's slowest receiver had answered, a delivery answered at once
    could outlive its lease and be claimed and sent again by another replica."""
    import threading
    slow, quick = receivers(delay_s=1.5), receivers()
    hook(db_conn, key_id, slow.url)
    hook(db_conn, key_id, quick.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    seen = {}

    def watch():  # what the table says while the slow receiver still holds its answer
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline and "delivered" not in seen:
            with psycopg.connect(ctx.settings.database_url) as conn:
                for row in store.deliveries(conn, status="delivered"):
                    seen["delivered"] = row["id"]
            time.sleep(0.05)
    watcher = threading.Thread(target=watch)
    watcher.start()
    with httpx.Client() as client:
        assert deliver_due(ctx.db, client, policy=FAST)["delivered"] == 2
    watcher.join()
    assert "delivered" in seen  # the quick one, recorded while the slow one was answering


def test_redelivered_alert_queues_nothing_new(ctx, db_conn, key_id, receivers):
    receiver = receivers()
    hook(db_conn, key_id, receiver.url)
    event = new_event(ALERT, "/kades/risk-scoring", ALERT_DATA)
    handle_alert(event, ctx)
    handle_alert(event, ctx)
    assert len(store.deliveries(db_conn)) == 1


def test_a_webhook_resolving_to_a_private_address_is_never_contacted(ctx, db_conn, key_id,
                                                                     receivers):
    local = receivers()
    hook(db_conn, key_id, local.url.replace("127.0.0.1", "localhost"))
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with webhook_client() as client:  # the client alert-dispatch delivers with
        totals = {"delivered": 0, "retry": 0, "dead": 0}
        for _ in range(5):
            for name, value in deliver_due(ctx.db, client, policy=FAST).items():
                totals[name] += value
    assert totals == {"delivered": 0, "retry": 2, "dead": 1} and not local.received
    [dead] = store.deliveries(db_conn, status="dead")
    assert "refused: localhost resolves to a non-public address" in dead["last_error"]


def test_a_webhook_no_client_can_use_fails_alone_and_the_others_are_delivered(
        ctx, db_conn, key_id, receivers):
    """Rows registered before registration refused them: urllib and httpx raise on these
    URLs, which ended the whole round (every other delivery claimed with them) each time."""
    good = receivers()
    hook(db_conn, key_id, good.url)
    unusable = {hook(db_conn, key_id, url)["id"] for url in (
        "http://example.com:99999/x", "http://xn--ls8h.la/", "http://[x/")}
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with httpx.Client() as client:
        totals = drain(ctx, client)
    assert totals == {"delivered": 1, "retry": 6, "dead": 3} and len(good.received) == 1
    dead = store.deliveries(db_conn, status="dead")
    assert {d["webhook_id"] for d in dead} == unusable
    assert all(d["last_error"].startswith("refused: not a usable URL") for d in dead)


def test_live_webhooks_are_read_once_per_context_within_their_ttl(ctx, db_conn, key_id, receivers):
    """One database read of the webhooks per WEBHOOKS_TTL_S and Context: a hook made after
    the read is not seen by that Context yet, and is by a fresh one (a new process)."""
    from kades.alerts.function import matching_webhooks
    first = hook(db_conn, key_id, receivers().url)
    assert [h["id"] for h in matching_webhooks(ctx, token="T", level="high")] == [first["id"]]
    later = hook(db_conn, key_id, receivers().url)
    assert [h["id"] for h in matching_webhooks(ctx, token="T", level="high")] == [first["id"]]
    fresh = Context(ctx.name, settings=ctx.settings)
    assert {h["id"] for h in matching_webhooks(fresh, token="T", level="high")} == {
        first["id"], later["id"]}


def test_the_entry_point_starts_the_worker_the_handler_wakes(ctx, db_conn, key_id, receivers):
    """The delivery worker lives on the handler's own Context: the entry point's first
    request starts it there, and an alert that queues a delivery wakes that very worker."""
    import flask
    from kades.alerts.function import FUNCTION, start, with_delivery_worker
    from kades.runtime import http_function
    receiver = receivers()
    hook(db_conn, key_id, receiver.url)
    entry = with_delivery_worker(http_function(FUNCTION, ctx))
    assert ctx.local(start).worker is None
    with flask.Flask(__name__).test_request_context("/health"):
        assert entry(flask.request).status_code == 200
    running = ctx.local(start).worker
    try:
        assert running is not None
        handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
        assert len(store.deliveries(db_conn)) == 1
    finally:
        delivery.stop_all()  # as the test session's end does
    assert not running.running


def test_the_worker_outlives_an_error_that_is_no_outage(ctx, db_conn, key_id, receivers):
    """The worker's thread is the process's webhook deliveries: an error it did not expect
    (here its tables out of its connection's search path: UndefinedTable) is logged and the
    round tried again, never the thread's end."""
    receiver = receivers()
    hook(db_conn, key_id, receiver.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    broken = [True]

    def connect():
        if broken[0]:
            return psycopg.connect(ctx.settings.database_url, options="-c search_path=pg_catalog")
        return ctx.db()

    worker = delivery.DeliveryWorker(connect, httpx.Client(), interval_s=0.05)
    try:
        time.sleep(0.5)  # its rounds fail meanwhile
        assert worker.running
        broken[0] = False
        worker.wake()
        deadline = time.monotonic() + 5
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(receiver.received) == 1
    finally:
        worker.stop()


def test_alerts_handled_at_the_same_time_are_each_published_and_stored_once(ctx, redis_conn,
                                                                            db_conn):
    """16 requests at once, each alert delivered twice (a Broker retry overlapping the
    first delivery): one stream entry and one row per alert, counted once."""
    import threading
    events = [new_event(ALERT, "/kades/risk-scoring", {**ALERT_DATA, "message": f"m{i}"})
              for i in range(8)]
    before = sample("kades_alerts_published_total", level="critical")
    threads = [threading.Thread(target=handle_alert, args=(event, ctx))
               for event in events + events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    entries = stream.since(redis_conn, "0-0")
    assert sorted(m["id"] for _, m in entries) == sorted(e.id for e in events)
    rows, _ = alerts.recent_alerts(db_conn, token=ALERT_DATA["token"])
    assert sorted(r["alert_id"] for r in rows) == sorted(e.id for e in events)
    assert sample("kades_alerts_published_total", level="critical") == before + 8


def test_through_the_entry_point_a_redelivery_changes_nothing_and_nothing_is_claimed(
        ctx, redis_conn, db_conn, key_id, receivers):
    """alert-dispatch is idempotent by itself, so the runtime takes no claim (no dedup key in
    Redis): a redelivered alert is answered 202 again and adds no entry, row nor delivery."""
    import flask
    from kades.alerts.function import FUNCTION
    from kades.events.envelope import to_binary
    from kades.runtime import http_function
    hook(db_conn, key_id, receivers().url)
    entry = http_function(FUNCTION, ctx)
    headers, body = to_binary(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA))
    for _ in range(2):
        with flask.Flask(__name__).test_request_context("/", method="POST", headers=headers,
                                                         data=body):
            assert entry(flask.request).status_code == 202
    assert len(stream.since(redis_conn, "0-0")) == 1
    assert len(alerts.recent_alerts(db_conn, token=ALERT_DATA["token"])[0]) == 1
    assert len(store.deliveries(db_conn)) == 1
    assert not redis_conn.keys("kades:dedup:*")


def test_a_redelivery_is_counted_a_duplicate_not_handled_again(ctx, redis_conn, db_conn):
    """docs/operations.md: every function counts a redelivery as outcome="duplicate"; alert-
    dispatch, which takes no claim, counted each as handled."""
    import flask
    from kades.alerts.function import FUNCTION
    from kades.events.envelope import to_binary
    from kades.runtime import http_function
    entry = http_function(FUNCTION, ctx)
    headers, body = to_binary(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA))
    labels = {"function": "alert-dispatch", "type": ALERT}
    handled = sample("kades_events_total", **labels, outcome="handled")
    duplicate = sample("kades_events_total", **labels, outcome="duplicate")
    for _ in range(3):
        with flask.Flask(__name__).test_request_context("/", method="POST", headers=headers,
                                                         data=body):
            assert entry(flask.request).status_code == 202
    assert sample("kades_events_total", **labels, outcome="handled") == handled + 1
    assert sample("kades_events_total", **labels, outcome="duplicate") == duplicate + 2


def test_alerts_whose_source_and_id_join_alike_are_two_alerts(ctx, redis_conn, db_conn):
    """The alert id was f"{source}#{id}": ("/rt/x#y", "z") and ("/rt/x", "y#z") were one
    alert, the second never published nor delivered."""
    first = new_event(ALERT, "/rt/x#y", ALERT_DATA, event_id="z")
    second = new_event(ALERT, "/rt/x", {**ALERT_DATA, "level": "high"}, event_id="y#z")
    handle_alert(first, ctx)
    handle_alert(second, ctx)
    assert [entry["data"]["level"] for _, entry in stream.since(redis_conn, "0-0")] == [
        "critical", "high"]


def test_a_database_fault_is_a_503_and_the_retry_stores_what_was_missed(ctx, redis_conn,
                                                                        db_conn):
    """The stream entry is written before the database fails: the Broker's retry stores the
    row and appends nothing twice."""
    import dataclasses

    import flask
    from kades.alerts.function import FUNCTION
    from kades.events.envelope import to_binary
    from kades.runtime import Context, http_function
    broken = Context(ctx.name, settings=dataclasses.replace(  # a socket nobody listens on
        ctx.settings, database_timeout_s=1.0,
        database_url="postgresql://kades@/nowhere?host=/nonexistent-kades-socket-dir"))
    headers, body = to_binary(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA))
    statuses = []
    for entry in (http_function(FUNCTION, broken), http_function(FUNCTION, ctx)):
        with flask.Flask(__name__).test_request_context("/", method="POST", headers=headers,
                                                         data=body):
            response = entry(flask.request)
            statuses.append((response.status_code, response.headers.get("Retry-After")))
    assert statuses == [(503, "1"), (202, None)]
    assert len(stream.since(redis_conn, "0-0")) == 1
    assert len(alerts.recent_alerts(db_conn, token=ALERT_DATA["token"])[0]) == 1


class RawReceiver:
    """A TCP server answering every connection with `answer(conn)`, for receivers no HTTP
    server library would play: one that trickles its head, one whose body never ends."""

    def __init__(self, answer):
        import socket
        import threading
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.connections, self.sent = 0, 0
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import threading
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            conn.recv(65536)  # the request (small: one read)
            self.answer(self, conn)
        except OSError:  # the client gave up on us: what the test wants
            pass
        finally:
            conn.close()

    def close(self):
        self.listener.close()


def trickle(receiver, conn):  # a status line, then a header byte every 0.2 s for 20 s
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(100):
        time.sleep(0.2)
        conn.sendall(b"a")


def endless(receiver, conn):  # 200, then a body of 10 GB, 1 MB at a time
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
    chunk = b"x" * 2**20
    for _ in range(10_000):
        conn.sendall(chunk)
        receiver.sent += len(chunk)


def test_a_trickling_receiver_costs_one_deadline_and_holds_no_one_back(ctx, db_conn, key_id,
                                                                      receivers):
    """httpx's timeout bounds each read alone: a receiver trickling its answer held its
    attempt (30 s for 15 bytes) and the whole round behind it, every other webhook's too."""
    slow, honest = RawReceiver(trickle), receivers()
    try:
        hook(db_conn, key_id, slow.url)
        hook(db_conn, key_id, honest.url)
        handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
        policy = RetryPolicy(max_attempts=3, base_delay_s=60.0, timeout_s=1.0)
        with webhook_client(allow_private=True) as client:
            began = time.monotonic()
            counts = deliver_due(ctx.db, client, policy=policy)
            took = time.monotonic() - began
    finally:
        slow.close()
    assert counts == {"delivered": 1, "retry": 1, "dead": 0} and len(honest.received) == 1
    assert took < 3.0, took
    (retried,) = store.deliveries(db_conn, status="pending")
    assert "Timeout" in retried["last_error"]


def test_an_answers_body_is_never_read(ctx, db_conn, key_id):
    """A receiver answering 200 with a 1 GB body took the process from 49 MB to 1 GB (the
    pod's limit is 512 Mi): its status is all a delivery needs."""
    big = RawReceiver(endless)
    try:
        hook(db_conn, key_id, big.url)
        handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
        with webhook_client(allow_private=True) as client:
            counts = deliver_due(ctx.db, client, policy=FAST)
        time.sleep(0.2)
    finally:
        big.close()
    assert counts == {"delivered": 1, "retry": 0, "dead": 0}
    assert big.sent < 64 * 2**20, big.sent  # what the socket buffers took, not 10 GB


def test_a_delivery_whose_attempts_never_ended_is_dead_not_claimed_for_ever(ctx, db_conn,
                                                                          key_id, receivers):
    """An attempt that killed its process (out of memory) was never recorded: claimed again
    after each lease, past max_attempts, killing the process each time."""
    receiver = receivers()
    hook(db_conn, key_id, receiver.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    db_conn.execute("UPDATE webhook_deliveries SET attempts = %s", (FAST.max_attempts,))
    db_conn.commit()
    with httpx.Client() as client:
        assert deliver_due(ctx.db, client, policy=FAST) == {
            "delivered": 0, "retry": 0, "dead": 1}
    assert not receiver.received
    (dead,) = store.deliveries(db_conn, status="dead")
    assert dead["last_error"] == "attempts ended without an outcome recorded"


def test_a_name_rebound_to_a_private_address_after_the_check_is_never_contacted(
        ctx, db_conn, key_id, receivers, monkeypatch):
    """A check resolved the name, and the client resolved it again to connect: a name with
    TTL 0 answering a public address, then 127.0.0.1, reached the cluster's own services. An
    attempt resolves the name once, where it connects, and connects to what it judged: the
    public answer (unreachable here) in the first, the private one refused in the next."""
    import socket
    inside = receivers()
    port = int(inside.url.rsplit(":", 1)[1].split("/")[0])
    real, answers = socket.getaddrinfo, iter(["93.184.216.34", "127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        if host != "rebind.example":
            return real(host, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    hook(db_conn, key_id, f"http://rebind.example:{port}/hook")
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    errors = []
    with webhook_client() as client:
        for _ in range(2):
            assert deliver_due(ctx.db, client, policy=FAST) == {"delivered": 0, "retry": 1, "dead": 0}
            errors += [d["last_error"] for d in store.deliveries(db_conn, status="pending")]
    assert not inside.received
    assert "non-public" not in errors[0]  # 93.184.216.34 judged, and tried
    assert "refused: rebind.example resolves to a non-public address (127.0.0.1)" in errors[1]


def test_a_rounds_lease_outlasts_its_last_attempt(ctx, db_conn, key_id, receivers):
    """50 claimed for 16 senders, each attempt up to its deadline: the last ones were sent
    after a lease of two deadlines and 5 s had run out, when another replica had claimed and
    sent them too. The lease holds until the round's last attempt has ended."""
    receiver = receivers()
    for _ in range(delivery.SENDERS + 4):
        hook(db_conn, key_id, receiver.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    claimed = store.claim_due(db_conn, limit=50, lease_s=delivery.lease_s(FAST, 50))
    db_conn.commit()
    rounds_of_senders = -(-len(claimed) // delivery.SENDERS)  # 2: 20 deliveries, 16 senders
    held = db_conn.execute("SELECT min(next_attempt_at) - now() FROM webhook_deliveries"
                           ).fetchone()[0].total_seconds()
    assert held > rounds_of_senders * FAST.timeout_s
    assert delivery.lease_s(delivery.RetryPolicy(), 50) > 4 * delivery.RetryPolicy().timeout_s


def test_an_attempt_recorded_after_another_claim_took_its_delivery_changes_nothing(
        ctx, db_conn, key_id, receivers):
    """A late "retry" written over the other claim's "delivered" had it sent a third time."""
    receiver = receivers()
    hook(db_conn, key_id, receiver.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    [first] = store.claim_due(db_conn, limit=1, lease_s=0.0)  # a lease that has run out
    db_conn.commit()
    [second] = store.claim_due(db_conn, limit=1, lease_s=60.0)  # another replica's claim
    assert store.record_attempt(db_conn, second["id"], second["attempts"], status="delivered",
                                http_status=200, error=None, retry_in_s=None)
    assert not store.record_attempt(db_conn, first["id"], first["attempts"], status="pending",
                                    http_status=None, error="timed out", retry_in_s=0.0)
    db_conn.commit()
    [row] = store.deliveries(db_conn)
    assert (row["status"], row["last_status"]) == ("delivered", 200)


def test_a_receivers_retry_after_is_honoured_within_the_policys_cap(ctx, db_conn, key_id,
                                                                    receivers):
    """A receiver answering 429 with Retry-After: 120 was tried again after 1 s, 2 s ... and
    its delivery was dead within about 2 minutes, before the receiver would take it."""
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=600.0, timeout_s=2.0)
    asked = {"120": 120.0, "3600": 600.0, "soon": 1.0}  # 600: the cap; unreadable: the backoff
    urls = {}
    for value in asked:
        urls[hook(db_conn, key_id, receivers([429], headers={"Retry-After": value}).url)["id"]] = value
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with httpx.Client() as client:
        assert deliver_due(ctx.db, client, policy=policy)["retry"] == 3
    db_conn.commit()  # a fresh snapshot
    waits = {urls[webhook]: wait.total_seconds() for webhook, wait in db_conn.execute(
        "SELECT webhook_id, next_attempt_at - now() FROM webhook_deliveries")}
    for value, expected in asked.items():
        assert expected - 5 < waits[value] <= expected, (value, waits)
    assert policy.delay_after(1, None) == 1.0 and policy.delay_after(4, 0.5) == 8.0


def test_the_default_policy_retries_for_hours_not_minutes():
    """8 attempts, 1 s doubling, capped at 10 minutes: dead 127 s after the first, so a
    receiver down through a deploy lost its alerts."""
    policy = RetryPolicy()
    window = sum(policy.delay_after(attempts) for attempts in range(1, policy.max_attempts))
    assert 3 * 3600 < window < 6 * 3600, window
    assert delivery.retry_after_s("Sun, 06 Dec 2026 08:00:00 GMT", now=1796544000.0 - 30) == 30.0


def test_a_gone_receiver_is_dead_at_once(ctx, db_conn, key_id, receivers):
    gone = receivers([410])
    hook(db_conn, key_id, gone.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with httpx.Client() as client:
        assert deliver_due(ctx.db, client, policy=FAST) == {"delivered": 0, "retry": 0, "dead": 1}
    [dead] = store.deliveries(db_conn, status="dead")
    assert (dead["last_status"], dead["attempts"]) == (410, 1)


def test_a_secret_of_before_that_begins_whsec_signs_and_fails_no_round(ctx, db_conn, key_id,
                                                                       receivers, monkeypatch):
    """Through v1 any 16-256 characters were a secret, `whsec_my-own-password` too: its
    signing raised in every attempt, and the exception ended the round, whose other
    deliveries went unrecorded and were sent again. It signs with its UTF-8 bytes; and an
    attempt that raises (a bug) fails alone."""
    old, other = receivers(), receivers()
    hook(db_conn, key_id, old.url, secret="whsec_my-own-password-123456")
    hook(db_conn, key_id, other.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    with httpx.Client() as client:
        assert deliver_due(ctx.db, client, policy=FAST) == {"delivered": 2, "retry": 0, "dead": 0}
    [(headers, body, _)] = old.received
    assert Webhook(as_whsec("whsec_my-own-password-123456")).verify(body, headers)["id"]

    real = delivery.signature_headers

    def broken(secret, body, **kwargs):  # a bug in one delivery's attempt
        if secret == "s3cret":
            raise RuntimeError("a bug")
        return real(secret, body, **kwargs)
    monkeypatch.setattr(delivery, "signature_headers", broken)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", {**ALERT_DATA, "score": 0.95}), ctx)
    with httpx.Client() as client:
        assert deliver_due(ctx.db, client, policy=FAST) == {"delivered": 1, "retry": 1, "dead": 0}
    [retried] = store.deliveries(db_conn, status="pending")
    assert retried["last_error"] == "internal error: RuntimeError"


def test_a_slow_name_server_costs_an_attempt_its_deadline_not_more(ctx, db_conn, key_id,
                                                                    monkeypatch):
    """getaddrinfo takes no timeout: a webhook's name whose server answered in 3 s held an
    attempt 3 s past its 1 s deadline (and the check before it resolved the name again)."""
    import socket
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow.example":
            time.sleep(3.0)
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", slow)
    hook(db_conn, key_id, "http://slow.example/hook")
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.0, timeout_s=1.0)
    began = time.monotonic()
    with webhook_client() as client:
        assert deliver_due(ctx.db, client, policy=policy)["retry"] == 1
    assert time.monotonic() - began < 2.0
    [retried] = store.deliveries(db_conn, status="pending")
    assert "no address within the attempt's deadline" in retried["last_error"]


def test_slow_names_hold_no_other_webhooks_lookup(monkeypatch):
    """Lookups the attempts stopped waiting for ran on in a pool of 16 threads: 16 slow
    names filled it, and every other webhook's lookup waited behind them and failed. Each
    lookup runs on a thread of its own, one per name at a time."""
    import socket
    from kades.alerts import webhook_http
    real, started = socket.getaddrinfo, []

    def slow(host, *args, **kwargs):
        if host.endswith(".slow.example"):
            started.append(host)
            time.sleep(1.5)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", slow)
    for n in range(20):
        for _ in range(2):  # the second attempt finds the first's lookup under way
            with pytest.raises(httpcore.ConnectTimeout):
                webhook_http._resolve(f"n{n}.slow.example", 443, 0.01)
    assert len(started) == 20
    began = time.monotonic()
    assert webhook_http._resolve("localhost", 443, 1.0)  # not behind the slow ones
    assert time.monotonic() - began < 1.0


def test_a_retry_after_no_float_reads_is_no_error_and_a_2xx_is_delivered(ctx, db_conn, key_id,
                                                                        receivers):
    """"²".isdigit() is true and float("²") raises: read for every answer, a 200 with that
    header was an internal error, re-sent for hours."""
    odd = receivers([200, 503], headers={"Retry-After": "\u00b2"})
    hook(db_conn, key_id, odd.url)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", ALERT_DATA), ctx)
    handle_alert(new_event(ALERT, "/kades/risk-scoring", {**ALERT_DATA, "score": 0.95}), ctx)
    with httpx.Client() as client:
        assert deliver_due(ctx.db, client, policy=FAST) == {"delivered": 1, "retry": 1, "dead": 0}
    [retried] = store.deliveries(db_conn, status="pending")
    assert retried["last_error"] == "answered 503"
