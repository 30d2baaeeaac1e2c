"""`kades broker --oidc`: the development broker signs every delivery as Knative's Broker
filter does with authentication-oidc (issue 13, item 5): a token from its own issuer for the
destination's audience, as the Trigger's OIDC service account. Real HTTP subscribers check
the tokens with the functions' own verifier (kades.runtime.oidc) against the served JWKS."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from werkzeug.wrappers import Response

from brokertest import event_attrs, manifests, post_binary, signed, trigger, wait_for
from kades.dev.services import free_port
from kades.audiences import broker_audience, service_audience
from kades.broker import load_eventing
from kades.broker.tokens import LocalIssuer, trigger_subject
from kades.runtime.oidc import Unauthorized, Verifier
from kades.settings import Settings


def test_every_destination_gets_the_audience_knative_would_get_a_token_for(tmp_path):
    dls = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "dead-letter"}}
    to_service = trigger("to-service", "unused", type="a")
    to_service["spec"]["subscriber"] = {"ref": {"apiVersion": "serving.knative.dev/v1",
                                                "kind": "Service", "name": "risk-scoring"}}
    named = trigger("named", "http://127.0.0.1:9/x", type="b")
    named["spec"]["subscriber"]["audience"] = "my-audience"
    to_broker = trigger("to-broker", "unused", type="c")
    to_broker["spec"]["subscriber"] = {"ref": {"apiVersion": "eventing.knative.dev/v1",
                                               "kind": "Broker", "name": "other"}}
    bare = trigger("bare", "http://127.0.0.1:9/y", type="d")
    (tmp_path / "all.yaml").write_text(manifests(to_service, named, to_broker, bare,
                                                 delivery={"deadLetterSink": dls}))
    triggers = {t.name: t for t in load_eventing(tmp_path, overrides={"dead-letter": "http://x"}).triggers}
    assert triggers["to-service"].subscriber_audience == service_audience("kades", "risk-scoring")
    assert triggers["named"].subscriber_audience == "my-audience"
    assert triggers["to-broker"].subscriber_audience == broker_audience("kades", "other")
    assert triggers["bare"].subscriber_audience is None  # Knative sends no token there
    # A Trigger without its own dead-letter sink uses the Broker's, audience and all.
    assert {t.delivery.dead_letter_audience for t in triggers.values()} == {
        service_audience("kades", "dead-letter")}


def test_the_repositorys_triggers_all_name_an_audience():
    eventing = load_eventing(Path(__file__).resolve().parents[2] / "eventing")
    for t in eventing.triggers:
        assert t.subscriber_audience and t.subscriber_audience.startswith(
            "serving.knative.dev/service/kades/"), t.name
        assert t.delivery.dead_letter_audience == service_audience("kades", "dead-letter")


def _signed_subscriber(subscribers, issuer: LocalIssuer, audience: str):
    """A subscriber that answers 401 unless the request carries a valid token for `audience`."""
    verifier = Verifier(issuer.issuer, audience)
    claims: list[dict] = []

    def respond(request):
        try:
            claims.append(verifier.verify(request.headers.get("Authorization")))
        except Unauthorized as error:
            return Response(str(error), status=401)
        return Response(status=202)
    return subscribers(respond), claims


def test_with_an_issuer_every_delivery_carries_the_triggers_token(run_broker, subscribers, issuer):
    subscriber, claims = _signed_subscriber(subscribers, issuer, "aud-orders")
    spec = trigger("orders", subscriber.url, type="ai.kades.test.v1")
    spec["spec"]["subscriber"]["audience"] = "aud-orders"
    broker = run_broker(manifests(spec), issuer=issuer)
    for n in range(3):
        assert post_binary(broker.ingress_url(), event_attrs(id_=f"e{n}"), {"n": n},
                           headers=signed(issuer)).status_code == 202
    wait_for(lambda: len(claims) == 3, 10, "three signed deliveries")
    assert {c["sub"] for c in claims} == {trigger_subject("kades", "orders")}
    assert all(c["aud"] == ["aud-orders"] and c["iss"] == issuer.issuer for c in claims)
    assert all(r["headers"]["authorization"].startswith("Bearer ") for r in subscriber.requests)


def test_without_an_issuer_no_token_is_sent_and_a_checking_subscriber_refuses(
        run_broker, subscribers, issuer):
    subscriber, claims = _signed_subscriber(subscribers, issuer, "aud-orders")
    dead, dead_claims = _signed_subscriber(subscribers, issuer, "aud-dls")
    spec = trigger("orders", subscriber.url, type="ai.kades.test.v1",
                   delivery={"retry": 1, "deadLetterSink": {"uri": dead.url, "audience": "aud-dls"}})
    spec["spec"]["subscriber"]["audience"] = "aud-orders"
    broker = run_broker(manifests(spec), issuer=None)
    post_binary(broker.ingress_url(), event_attrs(), {"n": 1})
    wait_for(lambda: dead.count() >= 1, 10, "the dead-letter sink to be tried")
    assert "authorization" not in subscriber.requests[0]["headers"]
    assert subscriber.count() == 1 and claims == []  # 401 is not retried
    assert dead_claims == []


def test_a_dead_letter_carries_a_token_for_the_sinks_audience(run_broker, subscribers, issuer):
    refusing = subscribers(lambda _request: Response(status=400))
    dead, claims = _signed_subscriber(subscribers, issuer, "aud-dls")
    spec = trigger("orders", refusing.url, type="ai.kades.test.v1",
                   delivery={"deadLetterSink": {"uri": dead.url, "audience": "aud-dls"}})
    broker = run_broker(manifests(spec), issuer=issuer)
    post_binary(broker.ingress_url(), event_attrs(), {"n": 1}, headers=signed(issuer))
    wait_for(lambda: len(claims) == 1, 10, "a signed dead letter")
    assert claims[0]["aud"] == ["aud-dls"]
    assert claims[0]["sub"] == trigger_subject("kades", "orders")
    # The subscriber named no audience (a bare uri): Knative sends it no token.
    assert "authorization" not in refusing.requests[0]["headers"]


@pytest.mark.slow
def test_kades_broker_oidc_serves_its_issuer_on_the_given_port(tmp_path, broker_redis_url):
    (tmp_path / "all.yaml").write_text(manifests())
    oidc_port, port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir", str(tmp_path),
         "--port", str(port), "--redis-url", broker_redis_url, "--oidc",
         "--oidc-port", str(oidc_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    issuer_url = f"http://127.0.0.1:{oidc_port}"
    try:
        def discovery():
            try:
                return httpx.get(issuer_url + "/.well-known/openid-configuration", timeout=1)
            except httpx.TransportError:
                return None
        document = wait_for(discovery, 20, "the broker's OIDC discovery").json()
        assert document["issuer"] == issuer_url
        keys = httpx.get(document["jwks_uri"], timeout=5).json()["keys"]
        assert [k["alg"] for k in keys] == ["RS256"]
    finally:
        process.terminate()
        process.wait(15)


def test_broker_oidc_is_off_unless_asked_for():
    assert Settings().broker_oidc is False
    assert Settings.from_env({"KADES_BROKER_OIDC": "true"}).broker_oidc is True
