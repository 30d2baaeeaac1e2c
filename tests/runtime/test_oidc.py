"""Closed endpoints: with KADES_OIDC_ISSUER set a function takes events only with the Broker's
token for its audience (issue 13, item 5). Real keys, a real JWKS endpoint on localhost
(kades.broker.tokens.LocalIssuer, the development broker's issuer)."""
from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kades.broker.tokens import LocalIssuer
from kades.manifests import namespace_subjects, service_audience
from kades.runtime.oidc import Forbidden, Verifier, subject_patterns
from runtimetest import binary

AUDIENCE = service_audience("kades", "counter")
SUBJECT = "system:serviceaccount:kades:counter-oidc-eventing.knative.dev-trigger"


@pytest.fixture(scope="module")
def issuer():
    local = LocalIssuer()
    yield local
    local.close()


@pytest.fixture
def oidc_client(client_of, issuer, monkeypatch):
    monkeypatch.setenv("KADES_OIDC_ISSUER", issuer.issuer)
    monkeypatch.setenv("KADES_OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("KADES_OIDC_SUBJECTS", namespace_subjects("kades"))  # as rendered
    return client_of("counter")


def post(client, token: str | None):
    headers, body = binary()
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/", headers=headers, data=body)


def signed(issuer, key=None, algorithm="RS256", kid=None, **claims):
    now = int(time.time())
    payload = {"iss": issuer.issuer, "sub": SUBJECT, "aud": [AUDIENCE], "iat": now,
               "exp": now + 60} | claims
    return jwt.encode(payload, key or issuer.key, algorithm=algorithm,
                      headers={"kid": kid or issuer.kid})


def test_the_brokers_token_is_accepted(oidc_client, issuer):
    response = post(oidc_client, issuer.token(AUDIENCE, subject=SUBJECT))
    assert response.status_code == 200, response.data


@pytest.mark.parametrize("make, problem", [
    (lambda i: None, "missing bearer token"),
    (lambda i: "not-a-jwt", "malformed token"),
    (lambda i: signed(i, iss="https://elsewhere.example"), "wrong issuer"),
    (lambda i: signed(i, aud=[service_audience("kades", "risk-scoring")]), "wrong audience"),
    (lambda i: signed(i, exp=int(time.time()) - 5), "token expired"),
    (lambda i: signed(i, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
     "bad signature"),
    (lambda i: signed(i, kid="rotated-away"), "unknown signing key"),
])
def test_other_callers_get_401_naming_the_problem(oidc_client, issuer, redis_conn, make, problem):
    response = post(oidc_client, make(issuer))
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "unauthorized" and error["message"].startswith(problem), error
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert redis_conn.get("test:ticks") is None  # refused before anything was handled


@pytest.mark.parametrize("subject", [
    "system:serviceaccount:elsewhere:default",  # a pod of another namespace, its own token
    "system:serviceaccount:kades-other:default",  # a namespace whose name starts alike
    "system:node:worker-1",
])
def test_a_valid_token_of_another_sender_gets_403(oidc_client, issuer, redis_conn, subject):
    """Any pod may have the kubelet project a token of its service account for this
    function's audience: the audience alone does not make it the Broker."""
    response = post(oidc_client, issuer.token(AUDIENCE, subject=subject))
    assert response.status_code == 403, response.data
    error = response.get_json()["error"]
    assert error["code"] == "forbidden" and subject in error["message"], error
    assert namespace_subjects("kades") not in error["message"]  # who may send stays unsaid
    assert redis_conn.get("test:ticks") is None  # refused before anything was handled


def test_subject_patterns_as_an_eventpolicy_reads_them(issuer):
    verifier = Verifier(issuer.issuer, AUDIENCE, subjects=subject_patterns(
        " system:serviceaccount:kades:exact-one , ,system:serviceaccount:team:*"))
    assert verifier.subjects == ("system:serviceaccount:kades:exact-one",
                                 "system:serviceaccount:team:*")
    for subject in ("system:serviceaccount:kades:exact-one", "SYSTEM:serviceaccount:kades:Exact-One",
                    "system:serviceaccount:team:anything"):
        assert verifier.verify("Bearer " + issuer.token(AUDIENCE, subject=subject))["sub"] == subject
    for subject in ("system:serviceaccount:kades:exact-one-more", "system:serviceaccount:Team:x"):
        with pytest.raises(Forbidden):
            verifier.verify("Bearer " + issuer.token(AUDIENCE, subject=subject))


@pytest.mark.parametrize("value", [",", " , "])
def test_subjects_set_to_no_pattern_are_a_settings_error_not_an_open_door(value):
    from kades.settings import Settings, SettingsError
    with pytest.raises(SettingsError, match="KADES_OIDC_SUBJECTS"):
        Verifier.from_settings(Settings(oidc_issuer="https://kubernetes.default.svc",
                                        oidc_audience=AUDIENCE, oidc_subjects=value))


def test_no_subjects_admit_every_sender_the_issuer_signed(client_of, issuer, monkeypatch):
    monkeypatch.setenv("KADES_OIDC_ISSUER", issuer.issuer)
    monkeypatch.setenv("KADES_OIDC_AUDIENCE", AUDIENCE)
    token = issuer.token(AUDIENCE, subject="system:serviceaccount:elsewhere:default")
    assert post(client_of("counter"), token).status_code == 200


def test_a_clock_ahead_of_this_pods_is_allowed_as_knatives_verifier_allows_it(oidc_client,
                                                                                issuer):
    """PyJWT refused a token issued 0.3 s ahead of the pod's clock: a 401, not retried by the
    Broker, the event dead-lettered. As go-oidc: `iat` unchecked, `nbf` 5 minutes ahead,
    the expiry exact."""
    now = int(time.time())
    assert post(oidc_client, signed(issuer, iat=now + 2)).status_code == 200
    assert post(oidc_client, signed(issuer, nbf=now + 240)).status_code == 200
    too_soon = post(oidc_client, signed(issuer, nbf=now + 400))
    assert too_soon.status_code == 401
    assert too_soon.get_json()["error"]["message"].startswith("token not valid yet")
    assert post(oidc_client, signed(issuer, nbf="soon")).status_code == 401
    assert post(oidc_client, signed(issuer, exp=now - 1)).status_code == 401


def test_a_key_unknown_just_after_a_fetch_is_retried_not_refused(oidc_client, issuer):
    """A key id missing from keys fetched moments ago (a rotation, an API server replica
    serving the keys from before it) was a 401 for 10 s: every event dead-lettered."""
    assert post(oidc_client, signed(issuer)).status_code == 200  # the keys fetched
    response = post(oidc_client, signed(issuer, kid="rotated-in"))
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "unavailable"


def test_another_issuers_token_just_after_a_fetch_is_refused_not_retried(oidc_client, issuer):
    """Its key id is unknown too, but a retry cannot make another issuer's token valid."""
    assert post(oidc_client, signed(issuer)).status_code == 200  # the keys fetched
    response = post(oidc_client, signed(issuer, iss="https://elsewhere.example", kid="theirs"))
    assert response.status_code == 401
    assert response.get_json()["error"]["message"].startswith("wrong issuer")


def test_the_key_fetchs_token_file_missing_is_a_503_in_json(client_of, issuer, monkeypatch,
                                                           tmp_path):
    monkeypatch.setenv("KADES_OIDC_ISSUER", issuer.issuer)
    monkeypatch.setenv("KADES_OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("KADES_OIDC_JWKS_TOKEN_FILE", str(tmp_path / "not-projected-yet"))
    response = post(client_of("counter"), signed(issuer))
    assert response.status_code == 503 and response.mimetype.endswith("json"), response.data
    assert "not-projected-yet" in response.get_json()["error"]["message"]


def test_probes_stay_open(oidc_client):
    assert oidc_client.get("/health").status_code == 200
    assert oidc_client.get("/ready").status_code == 200
    assert oidc_client.get("/metrics").status_code == 200


def test_feature_off_checks_nothing(client_of):
    assert post(client_of("counter"), None).status_code == 200


def test_es256_keys_verify_too(issuer):
    """Kubernetes may sign with an EC key: the JWKS decides, not the code."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    verifier = Verifier(issuer.issuer, AUDIENCE, jwks_url="unused")
    verifier._keys = {"ec": jwt.PyJWK({**public, "kid": "ec", "alg": "ES256"})}
    verifier._fetched_at = time.monotonic()
    claims = verifier.verify("Bearer " + signed(issuer, key=key, algorithm="ES256", kid="ec"))
    assert claims["sub"] == SUBJECT


def test_an_unreachable_issuer_is_a_temporary_failure(client_of, monkeypatch):
    monkeypatch.setenv("KADES_OIDC_ISSUER", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("KADES_OIDC_AUDIENCE", AUDIENCE)
    assert post(client_of("counter"), "a.b.c").status_code == 401  # needs no keys to refuse
    response = post(client_of("counter"), jwt.encode({"iss": "http://127.0.0.1:9"}, "k" * 32,
                                                        headers={"kid": "x"}))
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def test_an_issuer_without_an_audience_is_a_settings_error():
    from kades.settings import Settings, SettingsError
    with pytest.raises(SettingsError, match="KADES_OIDC_AUDIENCE"):
        Verifier.from_settings(Settings(oidc_issuer="https://kubernetes.default.svc"))


def test_a_delivery_signed_by_the_local_issuer_passes_a_real_server(oidc_client, issuer):
    """The development broker's delivery (kades.broker.delivery.send) over real HTTP: with the
    issuer's token the function handles the event, without it the answer is 401 (no retry)."""
    import threading

    from werkzeug.serving import make_server

    from kades.broker.delivery import send
    from kades.events.envelope import decode
    server = make_server("127.0.0.1", 0, oidc_client.application, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        headers, body = binary(event_id="signed-1")
        (event,) = decode(headers, body.encode())
        refused = send(url, event, timeout_s=5, prefer_reply=True)
        assert (refused.kind, refused.code) == ("fail", 401)
        handled = send(url, event, timeout_s=5, prefer_reply=True,
                       token=issuer.token(AUDIENCE, subject=SUBJECT))
        assert handled.kind == "reply" and handled.reply.type == "ai.kades.anomaly.detected.v1"
    finally:
        server.shutdown()
