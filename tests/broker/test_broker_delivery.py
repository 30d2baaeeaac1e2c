"""What a subscriber's answer means (pure: no server), and the dead-letter extensions."""
import base64
import json

import pytest

from kades.broker.delivery import Response, classify, error_extensions, send
from kades.dev.services import free_port
from kades.events.envelope import CloudEvent


def answer(status: int, body: bytes = b"", **headers) -> Response:
    return Response(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


@pytest.mark.parametrize("status, kind", [
    (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"),
    (404, "retry"), (408, "retry"), (409, "retry"), (429, "retry"),
    (400, "fail"), (401, "fail"), (403, "fail"), (405, "fail"), (413, "fail"), (422, "fail"),
    (301, "fail"), (302, "fail")])
def test_failure_statuses(status, kind):
    outcome = classify(answer(status, b"why"))
    assert (outcome.kind, outcome.code, outcome.body) == (kind, status, b"why")


@pytest.mark.parametrize("status", [200, 202, 204])
def test_empty_2xx_is_done(status):
    assert classify(answer(status)).kind == "done"


def test_2xx_with_a_body_that_is_not_an_event_is_a_502_failure():
    outcome = classify(answer(200, b"OK", content_type="text/plain"))
    assert (outcome.kind, outcome.code, outcome.body) == ("retry", 502, b"OK")


def test_binary_reply():
    outcome = classify(answer(200, b'{"a":1}', ce_specversion="1.0", ce_id="r", ce_source="/s",
                              ce_type="reply.v1", content_type="application/json"))
    assert outcome.kind == "reply"
    assert outcome.reply.type == "reply.v1" and outcome.reply.data == b'{"a":1}'  # passed on unread


def test_structured_reply():
    body = json.dumps({"specversion": "1.0", "id": "r", "source": "/s", "type": "t"}).encode()
    outcome = classify(answer(200, body, content_type="application/cloudevents+json"))
    assert outcome.kind == "reply" and outcome.reply.id == "r"


def test_a_batch_reply_even_of_one_event_is_a_502_failure():
    body = json.dumps([{"specversion": "1.0", "id": "r", "source": "/s", "type": "t"}]).encode()
    outcome = classify(answer(200, body, content_type="application/cloudevents-batch+json"))
    assert (outcome.kind, outcome.code) == ("retry", 502)


def test_a_reply_read_as_an_event_the_ingress_refuses_is_a_400_not_retried():
    """Knative's filter reads the reply without checking it and posts it to the ingress,
    whose 400 is not retried: it was a 502, retried against the subscriber."""
    outcome = classify(answer(200, b"", ce_specversion="1.0", ce_id="r"))  # no source, type
    assert (outcome.kind, outcome.code) == ("refused", 400)


def test_a_reply_that_cannot_be_read_as_an_event_is_a_502_failure():
    outcome = classify(answer(200, b"{not json", content_type="application/cloudevents+json"))
    assert (outcome.kind, outcome.code) == ("retry", 502)


def test_dead_letter_sink_answers_need_no_event():
    assert classify(answer(200, b"stored", content_type="text/plain"), expect_reply=False).kind == "done"


def test_network_error_is_retried_and_recorded_as_500():
    event = CloudEvent({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"})
    outcome = send(f"http://127.0.0.1:{free_port()}/", event, timeout_s=2, prefer_reply=True)
    assert (outcome.kind, outcome.code) == ("retry", 500)
    assert outcome.body.startswith(b"dispatch error: ")


def test_error_extensions_truncate_the_base64_body_at_1024_chars():
    ext = error_extensions("http://svc/", 500, b"x" * 2000)
    assert ext["knativeerrordest"] == "http://svc/" and ext["knativeerrorcode"] == "500"
    assert len(ext["knativeerrordata"]) == 1024
    assert base64.b64decode(ext["knativeerrordata"]) == b"x" * 768
    assert error_extensions("http://svc/", 400, b"bad")["knativeerrordata"] == "YmFk"


def test_deliveries_share_a_pooled_client_that_keeps_no_cookies(subscribers):
    """One pool of kept-alive connections per process makes every delivery
    (kades.broker.transport); a subscriber's Set-Cookie must not come back on the next
    delivery (Knative's dispatcher keeps no cookies)."""
    from werkzeug.wrappers import Response as WerkzeugResponse

    def respond(_request):
        answer = WerkzeugResponse(status=202)
        answer.set_cookie("session", "from-the-subscriber")
        return answer

    receiver = subscribers(respond)
    event = CloudEvent({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"})
    for _ in range(2):
        assert send(receiver.url, event, timeout_s=2, prefer_reply=True).kind == "done"
    assert [r["headers"].get("cookie") for r in receiver.requests] == [None, None]
    assert receiver.requests[1]["headers"]["prefer"] == "reply"
