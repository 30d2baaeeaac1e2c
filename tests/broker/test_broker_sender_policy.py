"""The development broker's ingress with sender identity on checks senders as Knative's does
(issue 13, item 5; knative/eventing pkg/auth/verifier.go): 401 without a valid token for the
Broker's audience, 403 from a subject the applying EventPolicies do not admit (or for an event
their filters refuse), allow-same-namespace when none applies. Real tokens from real issuers,
a real broker on a real Redis; what is refused never reaches a subscriber."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from brokertest import event_attrs, manifests, post_binary, trigger, wait_for
from kades.dev.services import free_port
from kades.audiences import broker_audience
from kades.broker import ConfigError, DevBroker, load_eventing
from kades.broker.policy import policies_for
from kades.runtime.oidc import subject_contained
from kades.broker.tokens import LocalIssuer, oidc_subject, projected_token, trigger_subject
from kades.dev.localrun import DEMO_SOURCE_ACCOUNT, sender_token_file, service_account
from kades.registry import FUNCTIONS, HTTP_FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
AUDIENCE = broker_audience("kades", "kades")
FUNCTION = "system:serviceaccount:kades:kades-function"
SOURCE = oidc_subject("kades", "solana-source", group="sources.knative.dev",
                      kind="ContainerSource")


def policy(*senders: dict, to: list | None = None, filters: list | None = None,
           name: str = "senders") -> dict:
    spec: dict = {"from": list(senders)}
    if to is not None:
        spec["to"] = to
    if filters:
        spec["filters"] = filters
    return {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "EventPolicy",
            "metadata": {"name": name, "namespace": "kades"}, "spec": spec}


TO_KADES = [{"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "kades"}}]
FROM_SOURCE = {"ref": {"apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource",
                       "name": "solana-source"}}


@pytest.fixture
def start(run_broker, subscribers, issuer):
    """A broker with sender identity on, under the policies among `documents`, and one
    subscriber that takes every event it is sent."""
    def run(*documents: dict):
        subscriber = subscribers()
        text = manifests(trigger("all", subscriber.url)) + "---\n" + yaml.safe_dump_all(documents)
        return run_broker(text, issuer=issuer), subscriber
    return run


def post(broker: DevBroker, token: str | None, id_: str, **attrs: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return post_binary(broker.ingress_url(), event_attrs(id_=id_, **attrs), {"n": 1},
                       headers=headers)


def test_only_the_senders_the_policy_names_may_post(start, issuer):
    broker, subscriber = start(policy({"sub": FUNCTION}, FROM_SOURCE,
                                      {"ref": {"apiVersion": "eventing.knative.dev/v1",
                                               "kind": "Trigger", "name": "all"}},
                                      {"sub": "system:serviceaccount:partner:*"}, to=TO_KADES))
    admitted = {"function": issuer.token(AUDIENCE, subject=FUNCTION),
                "source by ref": issuer.token(AUDIENCE, subject=SOURCE),
                "trigger by ref": issuer.token(AUDIENCE, subject=trigger_subject("kades", "all")),
                "pattern": issuer.token(AUDIENCE, subject="system:serviceaccount:partner:feed"),
                "case": issuer.token(AUDIENCE, subject=FUNCTION.upper())}
    for n, (who, token) in enumerate(admitted.items()):
        assert post(broker, token, f"ok{n}").status_code == 202, who

    other_issuer = LocalIssuer()
    expired_issuer = LocalIssuer(token_ttl_s=-60)
    try:
        unauthenticated = {
            "no token": None,
            "another audience": issuer.token(broker_audience("kades", "other"), subject=FUNCTION),
            "another issuer": other_issuer.token(AUDIENCE, subject=FUNCTION),
            "expired": expired_issuer.token(AUDIENCE, subject=FUNCTION),
            "not a JWT": "garbage"}
        for who, token in unauthenticated.items():
            answer = post(broker, token, f"401-{who}")
            assert answer.status_code == 401, who
            assert answer.json()["error"]["code"] == "unauthorized", who
    finally:
        other_issuer.close()
        expired_issuer.close()
    forbidden = {"same namespace, not named": "system:serviceaccount:kades:intruder",
                 "pattern is a prefix, case-sensitive": "system:serviceaccount:PARTNER:feed",
                 "another trigger": trigger_subject("kades", "other")}
    for who, subject in forbidden.items():
        answer = post(broker, issuer.token(AUDIENCE, subject=subject), f"403-{who}")
        assert answer.status_code == 403, who
        assert subject in answer.json()["error"]["message"], who

    # The event is read first: a malformed one is 400 whoever sends it, as in Knative.
    bad = httpx.post(broker.ingress_url(), headers={"ce-specversion": "1.0", "ce-id": "x"},
                     timeout=10)
    assert bad.status_code == 400
    wait_for(lambda: subscriber.count() >= len(admitted), 10, "the admitted events")
    delivered = sorted(r["headers"]["ce-id"] for r in subscriber.requests)
    assert delivered == [f"ok{n}" for n in range(len(admitted))]  # nothing refused got in


def test_policy_filters_and_which_policies_apply(start, issuer):
    typed = policy({"sub": FUNCTION}, to=TO_KADES, filters=[{"prefix": {"type": "ai.kades."}}])
    elsewhere = policy({"sub": "system:serviceaccount:kades:*"}, name="elsewhere",
                       to=[{"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                    "name": "other"}}])
    broker, _ = start(typed, elsewhere)
    token = issuer.token(AUDIENCE, subject=FUNCTION)
    assert post(broker, token, "typed", type_="ai.kades.test.v1").status_code == 202
    refused = post(broker, token, "untyped", type_="com.example.other")
    assert refused.status_code == 403 and "com.example.other" in refused.json()["error"]["message"]
    # The policy for Broker `other` does not open Broker `kades` to the whole namespace.
    intruder = issuer.token(AUDIENCE, subject="system:serviceaccount:kades:intruder")
    assert post(broker, intruder, "intruder").status_code == 403


def test_a_reply_is_sent_under_its_triggers_identity_and_checked_as_a_post(run_broker,
                                                                          subscribers, issuer):
    """Knative's filter sends a reply to the ingress with the Trigger's token, where the
    EventPolicies judge it: the broker took every reply in unchecked (kinder). Refused, it is
    dead-lettered at once with the ingress as destination and 403."""
    from werkzeug.wrappers import Response
    dead, echo_target = subscribers(), subscribers()

    def reply(_request):
        return Response(b'{"r": 1}', status=200, content_type="application/json", headers={
            "ce-specversion": "1.0", "ce-id": "r1", "ce-source": "/reply", "ce-type": "y"})
    replier = subscribers(reply)
    delivery = {"deadLetterSink": {"uri": dead.url}}
    text = manifests(trigger("t1", replier.url, type="x", delivery=delivery),
                     trigger("t2", echo_target.url, type="y", delivery=delivery)) + "---\n" + \
        yaml.safe_dump(policy({"sub": FUNCTION}, to=TO_KADES))
    broker = run_broker(text, issuer=issuer)
    assert post(broker, issuer.token(AUDIENCE, subject=FUNCTION), "e1",
                type_="x").status_code == 202
    wait_for(lambda: dead.count() == 1, what="the refused reply's dead letter")
    letter = dead.requests[0]["headers"]
    assert letter["ce-knativeerrorcode"] == "403" and letter["ce-type"] == "x"
    assert letter["ce-knativeerrordest"] == broker.ingress_url()
    assert echo_target.count() == 0 and replier.count() == 1


def test_without_an_applying_policy_the_namespace_may_post(start, issuer):
    selected = policy({"sub": FUNCTION}, to=[{"selector": {
        "apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
        "matchLabels": {"team": "nobody"}}}])
    broker, _ = start(selected)  # selects by a label Broker kades does not carry
    same = issuer.token(AUDIENCE, subject="system:serviceaccount:kades:anyone")
    other = issuer.token(AUDIENCE, subject="system:serviceaccount:elsewhere:anyone")
    assert post(broker, same, "same").status_code == 202
    assert post(broker, other, "other").status_code == 403


def test_a_selector_applies_by_label_and_an_empty_one_to_every_broker(tmp_path):
    broker = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
              "metadata": {"name": "kades", "namespace": "kades", "labels": {"team": "a"}}}
    select = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker"}
    documents = [broker, policy({"sub": "x"}, name="by-label",
                                to=[{"selector": {**select, "matchLabels": {"team": "a"}}}]),
                 policy({"sub": "y"}, name="other-label",
                        to=[{"selector": {**select, "matchLabels": {"team": "b"}}}]),
                 policy({"sub": "z"}, name="empty", to=[{"selector": select}])]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(documents))
    [found] = load_eventing(tmp_path).brokers.values()
    assert [p.name for p in policies_for(tmp_path, found)] == ["by-label", "empty"]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all([broker, policy(
        {"sub": "x"}, to=[{"selector": {**select, "matchExpressions": [
            {"key": "team", "operator": "In", "values": ["a"]}]}}])]))
    with pytest.raises(ConfigError, match="matchExpressions"):
        policies_for(tmp_path, found)


def test_the_repositorys_policy_admits_every_kades_sender(tmp_path):
    eventing = load_eventing(ROOT / "eventing")
    broker = eventing.brokers[("kades", "kades")]
    [found] = policies_for(ROOT / "eventing", broker)
    assert found.name == "kades-senders"
    senders = [FUNCTION, "system:serviceaccount:kades:kades-api", SOURCE,
               oidc_subject("kades", "stream-flush", group="sources.knative.dev",
                            kind="PingSource"),
               *(trigger_subject("kades", t.name) for t in eventing.triggers)]
    assert all(subject_contained(s, found.subjects) for s in senders)
    assert not subject_contained("system:serviceaccount:kades:default", found.subjects)
    # `kades up --oidc`: every process posts with the token of its service account, which the
    # broker keeps only for accounts the policy names one by one.
    accounts = {service_account(ROOT, name) for name in [*FUNCTIONS, *HTTP_FUNCTIONS]}
    assert accounts == {"kades-function", "kades-api"}
    named = {s.rsplit(":", 1)[1] for s in found.subjects if not s.endswith("*")}
    assert accounts | {DEMO_SOURCE_ACCOUNT} <= named
    assert sender_token_file(tmp_path, "kades-api") == str(
        projected_token(tmp_path / "tokens", "kades", "kades", "kades-api"))


@pytest.mark.slow
def test_kades_broker_oidc_keeps_a_token_for_each_named_sender(tmp_path, broker_redis_url):
    (tmp_path / "eventing").mkdir()
    (tmp_path / "eventing" / "all.yaml").write_text(
        manifests() + "---\n" + yaml.safe_dump(policy({"sub": FUNCTION}, FROM_SOURCE,
                                                       {"sub": "system:serviceaccount:x:*"})))
    port, tokens = free_port(), tmp_path / "tokens"
    process = subprocess.Popen(
        [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir", str(tmp_path / "eventing"),
         "--port", str(port), "--redis-url", broker_redis_url, "--oidc",
         "--oidc-port", str(free_port()), "--oidc-token-dir", str(tokens)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ingress = f"http://127.0.0.1:{port}/kades/kades"
    try:
        def answering():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        wait_for(answering, 20, "the broker")
        accounts = sorted(p.name for p in (tokens / "kades.kades").iterdir())
        assert accounts == ["kades-function", SOURCE.rsplit(":", 1)[1]]  # no file for a pattern
        token = projected_token(tokens, "kades", "kades", "kades-function").read_text()
        signed = post_binary(ingress, event_attrs(), {"n": 1},
                             headers={"authorization": f"Bearer {token}"})
        assert signed.status_code == 202
        assert post_binary(ingress, event_attrs(id_="e2"), {"n": 1}).status_code == 401
    finally:
        process.terminate()
        process.wait(15)


def test_dlq_replay_sends_a_token_once_sender_identity_is_on(start, issuer, broker_redis,
                                                             broker_redis_url, tmp_path, capsys):
    """With sender identity on, every replay was a 401 (`kades dlq replay` sent no token):
    the dead letters' documented way back was shut."""
    from kades.deadletter.cli import main_dlq
    from kades.deadletter.store import list_dead_letters, store_dead_letter
    from kades.events.envelope import CloudEvent
    broker, subscriber = start(policy({"sub": FUNCTION}, to=TO_KADES))
    store_dead_letter(broker_redis, CloudEvent(event_attrs(id_="dead-1"), {"n": 1}))
    replay = ["--redis-url", broker_redis_url, "replay", "--all", "--ingress", broker.ingress_url()]
    assert main_dlq(replay) == 1 and "ingress answered 401" in capsys.readouterr().err
    token = tmp_path / "token"
    token.write_text(issuer.token(AUDIENCE, subject=FUNCTION))
    assert main_dlq([*replay, "--token-file", str(token)]) == 0
    assert list_dead_letters(broker_redis) == []
    wait_for(lambda: [r["headers"].get("ce-id") for r in subscriber.requests] == ["dead-1"])
    with pytest.raises(SystemExit) as usage:
        main_dlq([*replay, "--token-file", str(tmp_path / "none")])
    assert usage.value.code == 2 and "cannot read the sink token file" in capsys.readouterr().err
