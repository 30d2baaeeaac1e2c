"""Every error the development broker's ingress answers is an RFC 9457 problem (issue 17):
Content-Type application/problem+json, the body `kades.errors.error_body` makes (type,
title, status, detail, instance, every problem in `errors`, and v1's `error` member), one
test per status, over real HTTP on a real Redis (503: test_broker_ingress's Redis-away test)."""
from __future__ import annotations

import socket

import httpx
import pytest
import yaml

from brokertest import event_attrs, manifests, post_binary, problem, trigger
from kades.audiences import broker_audience
from kades.broker import DevBroker
from kades.errors import PROBLEM_JSON

EVERYTHING = trigger("everything", "http://127.0.0.1:9/")


@pytest.fixture
def ingress(run_broker) -> DevBroker:
    return run_broker(manifests(EVERYTHING), dispatch=False, max_event_bytes=2048)


def test_400_names_every_problem_of_the_event(ingress):
    response = post_binary(ingress.ingress_url(), {"specversion": "1.0", "id": "",
                                                   "knativebrokerttl": "x"})
    fields = {p["field"] for p in problem(response, 400, "invalid_event")}
    assert {"id", "source", "type"} <= fields
    assert response.json()["instance"] == "/kades/kades"


def test_404_for_an_unknown_broker(ingress):
    response = post_binary(ingress.base_url + "/kades/no%20such", event_attrs())
    [named] = problem(response, 404, "not_found")
    assert named["field"] == "path" and "/kades/kades" in named["message"]
    assert response.json()["instance"] == "/kades/no%20such"


def test_405_for_another_method_on_the_ingress_and_the_probes(ingress):
    response = httpx.get(ingress.ingress_url())
    assert problem(response, 405, "method_not_allowed")[0]["field"] == "method"
    assert response.headers["allow"] == "POST, OPTIONS"
    probe = httpx.post(ingress.base_url + "/health")
    assert problem(probe, 405, "method_not_allowed")[0]["field"] == "method"
    assert probe.headers["allow"] == "GET, HEAD"


def test_413_above_the_size_limit(ingress):
    response = httpx.post(ingress.ingress_url(), content=b"x" * 3000,
                          headers={"content-type": "application/cloudevents+json"})
    [named] = problem(response, 413, "payload_too_large")
    assert named["field"] == "body" and "3000" in named["message"]


def test_415_for_a_structured_format_other_than_json(ingress):
    response = httpx.post(ingress.ingress_url(), content=b"<event/>",
                          headers={"content-type": "application/cloudevents+xml"})
    [named] = problem(response, 415, "unsupported_media_type")
    assert named["field"] == "content-type" and "application/cloudevents+xml" in named["message"]


def test_401_and_403_from_senders_refused(run_broker, issuer):
    policy = {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "EventPolicy",
              "metadata": {"name": "senders", "namespace": "kades"},
              "spec": {"from": [{"sub": "system:serviceaccount:kades:allowed"}]}}
    broker = run_broker(manifests(EVERYTHING) + "---\n" + yaml.safe_dump(policy), issuer=issuer)
    unsigned = post_binary(broker.ingress_url(), event_attrs())
    assert problem(unsigned, 401, "unauthorized")[0]["field"] == "authorization"
    other = issuer.token(broker_audience("kades", "kades"), subject="system:serviceaccount:x:y")
    refused = post_binary(broker.ingress_url(), event_attrs(),
                          headers={"authorization": f"Bearer {other}"})
    assert problem(refused, 403, "forbidden")[0]["field"] == "sender"


def test_a_request_the_server_cannot_read_is_a_problem_too(ingress):
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=5) as connection:
        connection.sendall(b"POST /kades/kades HTTP/1.1\r\nno colon here\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()
    response = httpx.Response(400, headers={"content-type": PROBLEM_JSON}, content=body)
    assert problem(response, 400, "bad_request")[0]["field"] == "request"
