"""Delivery end to end: real broker, real Redis, real HTTP subscribers on ephemeral ports."""
import base64
import json
import threading
import time

from werkzeug.wrappers import Response

from brokertest import event_attrs, manifests, post_binary, post_structured, trigger, wait_for
from kades.dev.services import free_port
from kades.broker.routing import lane_number
from kades.deadletter.store import list_dead_letters

FAST = {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.1S"}


def reply_with(event_type: str, *, status: int = 200):
    def respond(request):
        headers = {"ce-specversion": "1.0", "ce-id": "reply-" + request.headers["ce-id"],
                   "ce-source": "/tests/replier", "ce-type": event_type,
                   "content-type": "application/json"}
        return Response(json.dumps({"from": request.headers["ce-type"]}), status=status,
                        headers=headers)
    return respond


def always(status: int, body: bytes = b""):
    return lambda _request: Response(body, status=status)


def ce(request: dict, name: str):
    return request["headers"].get(f"ce-{name}")


def test_fan_out_in_binary_mode_with_prefer_reply_and_without_ttl(run_broker, subscribers):
    a, b, other = subscribers(), subscribers(), subscribers()
    broker = run_broker(manifests(trigger("a", a.url, type="ai.kades.test.v1"),
                                  trigger("b", b.url),
                                  trigger("other", other.url, type="ai.kades.other.v1")))
    assert post_binary(broker.ingress_url(), event_attrs(partitionkey="So1"),
                       {"x": 1}).status_code == 202
    wait_for(lambda: a.count() == 1 and b.count() == 1, what="both deliveries")
    for sub in (a, b):
        request = sub.requests[0]
        assert request["headers"]["prefer"] == "reply"
        assert ce(request, "id") == "e1" and ce(request, "partitionkey") == "So1"
        assert ce(request, "knativearrivaltime")
        assert ce(request, "knativebrokerttl") is None  # the broker keeps its TTL to itself
        assert request["headers"]["content-type"] == "application/json"
        assert json.loads(request["body"]) == {"x": 1}
    time.sleep(0.2)
    assert other.count() == 0


def test_a_json_delivery_format_sends_structured_mode_to_the_dead_letter_sink_too(
        run_broker, subscribers):
    """Knative's dispatcher forces structured mode for a `delivery.format` of json (binary for
    binary, the default); the subscriber that reads only one of them meets it here first."""
    failing, dls, binary = subscribers(always(500)), subscribers(), subscribers()
    structured = {"retry": 1, "backoffDelay": "PT0.05S", "format": "json",
                  "deadLetterSink": {"uri": dls.url}}
    broker = run_broker(manifests(trigger("structured", failing.url, delivery=structured),
                                  trigger("binary", binary.url, delivery={"format": "binary"})))
    assert post_binary(broker.ingress_url(), event_attrs(partitionkey="So1"),
                       {"x": 1}).status_code == 202
    wait_for(lambda: dls.count() == 1 and binary.count() == 1, what="dead letter and delivery")
    assert failing.count() == 2
    for request in (*failing.requests, *dls.requests):
        assert request["headers"]["content-type"].startswith("application/cloudevents+json")
        assert ce(request, "id") is None  # the attributes are in the body, not in headers
        document = json.loads(request["body"])
        assert (document["id"], document["partitionkey"], document["data"]) == ("e1", "So1", {"x": 1})
    assert "knativebrokerttl" not in json.loads(failing.requests[0]["body"])
    assert json.loads(dls.requests[0]["body"])["knativeerrorcode"] == "500"
    assert ce(binary.requests[0], "id") == "e1"
    assert json.loads(binary.requests[0]["body"]) == {"x": 1}


def test_reply_is_filtered_again_and_delivered(run_broker, subscribers):
    b = subscribers()
    a = subscribers(reply_with("ai.kades.b.v1"))
    broker = run_broker(manifests(trigger("a", a.url, type="ai.kades.a.v1"),
                                  trigger("b", b.url, type="ai.kades.b.v1")))
    post_binary(broker.ingress_url(), event_attrs("ai.kades.a.v1", "first"))
    wait_for(lambda: b.count() == 1, what="the reply at B")
    reply = b.requests[0]
    assert ce(reply, "type") == "ai.kades.b.v1" and ce(reply, "id") == "reply-first"
    assert json.loads(reply["body"]) == {"from": "ai.kades.a.v1"}
    time.sleep(0.2)
    assert a.count() == 1 and b.count() == 1


def test_ttl_ends_a_reply_loop(run_broker, subscribers):
    dls = subscribers()
    looper = subscribers(reply_with("ai.kades.loop.v1"))
    broker = run_broker(manifests(trigger("loop", looper.url, type="ai.kades.loop.v1"),
                                  delivery={**FAST, "deadLetterSink": {"uri": dls.url}}))
    # Knative's ingress counts an incoming TTL down: 3 -> 2 (delivery 1), reply 2 -> 1
    # (delivery 2), reply 1 -> 0: refused, and the event that caused it is dead-lettered.
    post_binary(broker.ingress_url(), event_attrs("ai.kades.loop.v1", knativebrokerttl="3"))
    wait_for(lambda: dls.count() == 1, what="the dead letter that ends the loop")
    time.sleep(0.3)
    assert looper.count() == 2
    letter = dls.requests[0]
    assert ce(letter, "id") == "reply-e1" and ce(letter, "knativebrokerttl") == "1"
    assert ce(letter, "knativeerrordest") == broker.ingress_url()
    assert ce(letter, "knativeerrorcode") == "400"
    assert b"knativebrokerttl" in base64.b64decode(ce(letter, "knativeerrordata"))


def test_retries_back_off_exponentially_then_dead_letter(run_broker, subscribers):
    dls = subscribers()
    failing = subscribers(always(503, b"database away"))
    broker = run_broker(manifests(trigger("t", failing.url, delivery={
        **FAST, "deadLetterSink": {"uri": dls.url}})))
    post_binary(broker.ingress_url(), event_attrs(), {"x": 1})
    wait_for(lambda: dls.count() == 1, timeout_s=10, what="the dead letter")
    assert failing.count() == 4  # retry: 3 means 4 attempts
    gaps = [b - a for a, b in zip(failing.times, failing.times[1:])]
    for gap, expected in zip(gaps, (0.1, 0.2, 0.4)):
        assert expected - 0.01 <= gap <= expected + 0.6, gaps
    letter = dls.requests[0]
    assert ce(letter, "id") == "e1" and json.loads(letter["body"]) == {"x": 1}
    assert ce(letter, "knativebrokerttl") == "255" and ce(letter, "knativearrivaltime")
    assert ce(letter, "knativeerrordest") == failing.url
    assert ce(letter, "knativeerrorcode") == "503"
    assert base64.b64decode(ce(letter, "knativeerrordata")) == b"database away"
    assert "prefer" not in letter["headers"]


def test_linear_backoff(run_broker, subscribers):
    failing = subscribers(always(500))
    broker = run_broker(manifests(trigger("t", failing.url, delivery={
        "retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.15S"})))
    post_binary(broker.ingress_url(), event_attrs())
    wait_for(lambda: failing.count() == 4, what="4 attempts")
    gaps = [b - a for a, b in zip(failing.times, failing.times[1:])]
    # Knative's linear backoff starts at 0: 0, d, 2d (pkg/kncloudevents/retries.go).
    assert gaps[0] <= 0.1 and 0.14 <= gaps[1] <= 0.75 and 0.29 <= gaps[2] <= 0.9, gaps


def test_client_error_is_not_retried(run_broker, subscribers):
    dls = subscribers()
    rejecting = subscribers(always(400, b'{"error":"bad data"}'))
    broker = run_broker(manifests(trigger("t", rejecting.url, delivery={
        **FAST, "deadLetterSink": {"uri": dls.url}})))
    post_binary(broker.ingress_url(), event_attrs())
    wait_for(lambda: dls.count() == 1, what="the dead letter")
    time.sleep(0.3)
    assert rejecting.count() == 1
    assert ce(dls.requests[0], "knativeerrorcode") == "400"
    assert base64.b64decode(ce(dls.requests[0], "knativeerrordata")) == b'{"error":"bad data"}'


def test_a_2xx_that_is_not_an_event_fails_as_502(run_broker, subscribers):
    dls = subscribers()
    chatty = subscribers(always(200, b"OK"))
    broker = run_broker(manifests(trigger("t", chatty.url, delivery={
        "retry": 1, "backoffDelay": "PT0.05S", "deadLetterSink": {"uri": dls.url}})))
    post_binary(broker.ingress_url(), event_attrs())
    wait_for(lambda: dls.count() == 1, what="the dead letter")
    assert chatty.count() == 2
    assert ce(dls.requests[0], "knativeerrorcode") == "502"


def test_unreachable_subscriber_is_dead_lettered_as_500(run_broker, subscribers):
    dls = subscribers()
    gone = f"http://127.0.0.1:{free_port()}/"
    broker = run_broker(manifests(trigger("t", gone, delivery={
        "retry": 1, "backoffDelay": "PT0.05S", "deadLetterSink": {"uri": dls.url}})))
    post_binary(broker.ingress_url(), event_attrs())
    wait_for(lambda: dls.count() == 1, what="the dead letter")
    letter = dls.requests[0]
    assert ce(letter, "knativeerrordest") == gone and ce(letter, "knativeerrorcode") == "500"
    assert base64.b64decode(ce(letter, "knativeerrordata")).startswith(b"dispatch error: ")


def test_failing_dead_letter_sink_parks_the_event_in_redis(run_broker, subscribers, broker_redis):
    failing, broken_sink = subscribers(always(500)), subscribers(always(500))
    broker = run_broker(manifests(trigger("t", failing.url, delivery={
        "retry": 1, "backoffDelay": "PT0.05S", "deadLetterSink": {"uri": broken_sink.url}})))
    post_binary(broker.ingress_url(), event_attrs())
    [parked] = wait_for(lambda: list_dead_letters(broker_redis), what="the parked event")
    assert broken_sink.count() == 2  # the sink gets the same retries
    assert parked.event.id == "e1" and parked.error_code == "500"
    assert parked.error_dest == failing.url and broken_sink.url in parked.note




def test_a_slow_subscriber_does_not_hold_back_other_triggers(run_broker, subscribers):
    release = threading.Event()

    def slow(_request):
        release.wait(5)
        return Response(status=202)

    slow_sub, fast_sub = subscribers(slow), subscribers()
    broker = run_broker(manifests(trigger("slow", slow_sub.url), trigger("fast", fast_sub.url)),
                        workers=2)
    try:
        for i in range(5):
            post_binary(broker.ingress_url(), event_attrs(id_=f"e{i}"))
        wait_for(lambda: fast_sub.count() == 5, timeout_s=2, what="all 5 at the fast subscriber")
        assert slow_sub.count() == 2  # both of its workers are busy
    finally:
        release.set()
    wait_for(lambda: slow_sub.count() == 5, what="the slow subscriber to catch up")


def test_each_event_is_delivered_once_per_trigger(run_broker, subscribers):
    sub = subscribers()
    broker = run_broker(manifests(trigger("t", sub.url)), workers=4)
    for i in range(30):
        post_binary(broker.ingress_url(), event_attrs(id_=f"e{i}"))
    wait_for(lambda: sub.count() == 30, what="30 deliveries")
    time.sleep(0.3)
    assert sorted(ce(r, "id") for r in sub.requests) == sorted(f"e{i}" for i in range(30))


ORDERED = {"annotations": {"kafka.eventing.knative.dev/delivery.order": "ordered"}}


def test_ordered_trigger_delivers_in_arrival_order_even_across_a_retry(run_broker, subscribers):
    failed_once = []

    def flaky(request):
        if request.headers["ce-id"] == "e-3" and not failed_once:
            failed_once.append(True)
            return Response(status=503)
        time.sleep(0.005)  # slow enough that parallel workers would overtake each other
        return Response(status=202)

    ordered = subscribers(flaky)
    spec = trigger("ordered", ordered.url, delivery=FAST)
    spec["metadata"].update(ORDERED)
    broker = run_broker(manifests(spec, broker_class="Kafka"))
    sent = [f"e-{i}" for i in range(20)]
    for event_id in sent:
        assert post_binary(broker.ingress_url(), event_attrs(id=event_id, partitionkey="k"),
                           {}).status_code == 202
    wait_for(lambda: ordered.count() == len(sent) + 1, timeout_s=10, what="every delivery")
    received = [ce(r, "id") for r in ordered.requests]
    assert received == sent[:4] + sent[3:]  # e-3 failed once and was retried before e-4


def test_unordered_trigger_spreads_over_workers(run_broker, subscribers):
    in_flight, peak, lock, overlapped = [0], [0], threading.Lock(), threading.Event()

    def slow(_request):
        # Each delivery waits (up to 2 s) for another to be in flight: one worker at a time
        # would leave the peak at 1 however slowly the events are posted.
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            if in_flight[0] > 1:
                overlapped.set()
        overlapped.wait(2.0)
        with lock:
            in_flight[0] -= 1
        return Response(status=202)

    parallel = subscribers(slow)
    broker = run_broker(manifests(trigger("parallel", parallel.url)))
    for i in range(12):
        post_binary(broker.ingress_url(), event_attrs(id=f"p-{i}"), {})
    wait_for(lambda: parallel.count() == 12, timeout_s=10, what="every delivery")
    assert peak[0] > 1


def two_keys_in_different_lanes() -> tuple[str, str]:
    keys = [f"token-{i}" for i in range(50)]
    first = keys[0]
    return first, next(k for k in keys if lane_number({"partitionkey": k}, True)
                       != lane_number({"partitionkey": first}, True))


def test_ordered_trigger_orders_each_partition_key_and_runs_keys_in_parallel(run_broker,
                                                                           subscribers):
    slow_key, fast_key = two_keys_in_different_lanes()
    release = threading.Event()

    def hold_slow_key(request):
        if request.headers["ce-partitionkey"] == slow_key:
            release.wait(30)  # until the fast key's events are through, however slow the posts
        return Response(status=202)

    sub = subscribers(hold_slow_key)
    spec = trigger("ordered", sub.url, delivery=FAST)
    spec["metadata"].update(ORDERED)
    broker = run_broker(manifests(spec, broker_class="Kafka"))
    for i in range(6):
        for key in (slow_key, fast_key):
            post_binary(broker.ingress_url(), event_attrs(id_=f"{key}-{i}", partitionkey=key), {})
    try:
        # The slow key's first event is held; the other key's lane goes on meanwhile.
        wait_for(lambda: sub.count() == 7, timeout_s=25,
                 what="the fast key's 6 events and the held one")
        assert [ce(r, "id") for r in sub.requests if ce(r, "partitionkey") == fast_key] == [
            f"{fast_key}-{i}" for i in range(6)]
    finally:
        release.set()
    # The held delivery may time out and come again (at-least-once): the slow key's events
    # are judged by their first deliveries, which must come in order.
    def slow_ids() -> list[str]:
        return list(dict.fromkeys(ce(r, "id") for r in list(sub.requests)
                                  if ce(r, "partitionkey") == slow_key))
    wait_for(lambda: len(slow_ids()) == 6, timeout_s=25, what="the slow key's events")
    assert slow_ids() == [f"{slow_key}-{i}" for i in range(6)]


def test_ordered_lane_continues_its_retry_after_a_restart_and_keeps_the_order(
        run_broker, subscribers):
    failures = []

    def first_fails(request):
        if request.headers["ce-id"] == "first" and not failures:
            failures.append(time.monotonic())
            return Response(status=503)
        return Response(status=202)

    sub = subscribers(first_fails)
    spec = trigger("ordered", sub.url, delivery={"retry": 2, "backoffPolicy": "exponential",
                                                 "backoffDelay": "PT0.5S"})
    spec["metadata"].update(ORDERED)
    text = manifests(spec, broker_class="Kafka")
    first = run_broker(text)
    post_binary(first.ingress_url(), event_attrs(id_="first", partitionkey="k"))
    post_binary(first.ingress_url(), event_attrs(id_="second", partitionkey="k"))
    wait_for(lambda: sub.count() == 1, what="the failed first attempt")
    first.stop()
    run_broker(text)
    wait_for(lambda: sub.count() == 3, what="the retry and the next event")
    assert [ce(r, "id") for r in sub.requests] == ["first", "first", "second"]
    assert sub.times[1] - sub.times[0] >= 0.49  # the backoff was kept across the restart


def test_an_event_that_cannot_be_sent_as_binary_headers_fails_its_attempt(
        run_broker, subscribers, broker_redis):
    """A datacontenttype outside latin-1 (legal in a structured event) cannot be a binary-mode
    header: the attempt fails as a network error does, and so does the dead letter, so the
    event is parked; and it takes none of the Trigger's deliveries in flight with it: the
    event after three such is delivered."""
    sub, dls = subscribers(), subscribers()
    broker = run_broker(manifests(trigger("t", sub.url, delivery={
        "deadLetterSink": {"uri": dls.url}})), workers=2)
    for number in range(3):
        document = {"specversion": "1.0", "id": f"bad{number}", "source": "/test",
                    "type": "ai.kades.test.v1", "datacontenttype": 'text/plain; charset="日本"',
                    "data": "x"}
        assert post_structured(broker.ingress_url(), document).status_code == 202
    assert post_binary(broker.ingress_url(), event_attrs(id_="good")).status_code == 202
    parked = wait_for(lambda: len(list_dead_letters(broker_redis)) == 3
                      and list_dead_letters(broker_redis), what="3 parked events")
    wait_for(lambda: sub.count() == 1, what="the good event")
    assert ce(sub.requests[0], "id") == "good" and dls.count() == 0
    assert sorted(letter.event.id for letter in parked) == ["bad0", "bad1", "bad2"]
    assert {letter.error_code for letter in parked} == {"500"}


def test_a_slow_delivery_in_flight_does_not_keep_the_reader_polling(run_broker, subscribers,
                                                                     broker_redis):
    """While a delivery is in flight the reader reads without blocking between waits for
    answers; after reads that found nothing it waits longer (up to 20 ms), so one slow
    subscriber costs Redis tens of reads a second, not hundreds."""
    slow = subscribers(lambda _request: (time.sleep(2.0), Response(status=202))[1])
    broker = run_broker(manifests(trigger("t", slow.url)))
    assert post_binary(broker.ingress_url(), event_attrs()).status_code == 202
    wait_for(lambda: slow.count() == 1, what="the delivery under way")

    def reads() -> int:
        return broker_redis.info("commandstats").get("cmdstat_xreadgroup", {}).get("calls", 0)

    before = reads()
    time.sleep(1.0)
    during = reads() - before
    print(f"XREADGROUP calls in 1 s with one delivery in flight: {during}")
    assert 5 <= during <= 100
