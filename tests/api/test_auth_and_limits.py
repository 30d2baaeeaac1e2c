"""API keys, JWT bearers and per-tier rate limits (real Redis, real database)."""
from __future__ import annotations

import time

import jwt
import pytest
from apiclient import api_client
from openapi_check import check_response

from kades.api import ratelimit
from kades.api.auth import issue_token
from kades.storage.apikeys import revoke_key

SECRET = "test-jwt-secret-of-enough-length-32b"


def test_no_key_bad_key_revoked_key(api, db_conn, make_key):
    for key in (None, "kades_short", "kades_" + "A" * 32):
        response = api.get("/v1/anomalies", key=key)
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
        check_response("GET", "/v1/anomalies", response)
    key_id, key = make_key()
    assert api.get("/v1/anomalies", key=key).status_code == 200
    assert revoke_key(db_conn, key_id)
    db_conn.commit()
    # A verified key is remembered by its process for auth.CACHE_S; a fresh one asks again.
    assert api.get("/v1/anomalies", key=key).status_code == 200
    assert api_client(key).get("/v1/anomalies").status_code == 401


def test_a_key_revoked_while_remembered_sets_nothing_up(api, db_conn, make_key, recording_sink):
    """A verified key is remembered for auth.CACHE_S: what it set up in that time outlived the
    revocation (which deletes its webhooks and trackings once), so signed alerts went on to
    its URL and its threshold governed everyone's alerts."""
    key_id, key = make_key()
    assert api.get("/v1/anomalies", key=key).status_code == 200  # verified, remembered
    assert revoke_key(db_conn, key_id)
    db_conn.commit()
    assert api.get("/v1/anomalies", key=key).status_code == 200  # reading: as before
    hook = api.post("/v1/webhooks", key=key, json={"url": "https://example.com/hook"})
    track = api.post("/v1/token/track", key=key,
                     json={"token_address": "So1anaMint1111111111111111111111111111111"})
    for response in (hook, track):
        assert response.status_code == 401 and response.headers["WWW-Authenticate"]
        assert response.get_json()["error"]["code"] == "unauthorized"
    counts = db_conn.execute("SELECT (SELECT count(*) FROM webhooks WHERE key_id = %s),"
                             " (SELECT count(*) FROM tracked_tokens WHERE key_id = %s)",
                             (key_id, key_id)).fetchone()
    assert counts == (0, 0)


def test_probes_and_document_need_no_key(api):
    for path in ("/v1/health", "/v1/ready", "/v1/metrics", "/v1/openapi.json", "/health"):
        assert api.get(path, key=None).status_code == 200, path


def test_jwt_bearer(api, make_key, monkeypatch):
    key_id, _ = make_key("premium")
    token = issue_token(SECRET, key_id, ttl_s=60)
    bearer = {"Authorization": f"Bearer {token}"}
    # without a configured secret bearer tokens are refused
    assert api.get("/v1/anomalies", key=None, headers=bearer).status_code == 401
    monkeypatch.setenv("KADES_JWT_SECRET", SECRET)
    keyed = api_client(None)
    ok = keyed.get("/v1/anomalies", key=None, headers=bearer)
    assert ok.status_code == 200 and ok.headers["X-RateLimit-Limit"] == "300"  # premium
    # clocks a few seconds apart are the same time (auth.JWT_LEEWAY_S): a token issued on a
    # machine 5 s ahead was refused as "not yet valid (iat)"
    ahead = issue_token(SECRET, key_id, ttl_s=60, now=time.time() + 5)
    assert keyed.get("/v1/anomalies", key=None,
                     headers={"Authorization": f"Bearer {ahead}"}).status_code == 200
    expired = issue_token(SECRET, key_id, ttl_s=-60)  # past the leeway
    future = issue_token(SECRET, key_id, ttl_s=600, now=time.time() + 120)
    forged = issue_token("another-secret-of-enough-length-32b", key_id)
    for bad in (expired, future, forged, "not.a.jwt"):
        assert keyed.get("/v1/anomalies", key=None,
                         headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    # a subject that is no key id (a NUL in it was a 500 from PostgreSQL)
    for subject in ("a\x00b", 12345678, "x" * 9):
        odd = jwt.encode({"sub": subject, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
        refused = keyed.get("/v1/anomalies", key=None, headers={"Authorization": f"Bearer {odd}"})
        assert refused.status_code == 401, (subject, refused.text)


@pytest.mark.parametrize("secret, why", [("CHANGE_ME", "CHANGE_ME"), ("short", "5 bytes")])
def test_a_guessable_jwt_secret_is_refused_at_start(secret, why):
    """The Secret template's CHANGE_ME was taken: anyone knowing a key id could mint its
    bearer tokens."""
    from kades.settings import Settings, SettingsError
    with pytest.raises(SettingsError, match=why) as refused:
        Settings.from_env({"KADES_JWT_SECRET": secret})
    if secret != "CHANGE_ME":
        assert secret not in str(refused.value)  # a secret is never printed
    assert Settings.from_env({"KADES_JWT_SECRET": SECRET}).jwt_secret == SECRET


@pytest.mark.parametrize("tier, rate, burst", [("standard", 60, 100), ("premium", 300, 500)])
def test_tier_limits(api, make_key, redis_conn, tier, rate, burst):
    _, key = make_key(tier)
    allowed, started = 0, time.monotonic()
    while (last := api.get("/v1/anomalies?limit=1", key=key)).status_code == 200:
        allowed += 1
        assert allowed <= 2 * burst, "the limiter never refused"
    refilled = (time.monotonic() - started) * rate / 60  # what the rate gave back meanwhile
    print(f"\n{tier}: {allowed} allowed at once (burst {burst}), then 429")
    assert last.status_code == 429 and burst <= allowed <= burst + refilled + 1
    assert last.headers["X-RateLimit-Limit"] == str(rate)
    assert last.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(last.headers["Retry-After"]) <= 1 + 60 / rate
    check_response("GET", "/v1/anomalies", last)


def test_gcra_refills_at_the_rate_and_has_no_window_edge(redis_conn):
    limit = ratelimit.Limit(rate_per_min=60, burst=3)
    t0 = 1_000_000.0
    allowed = [ratelimit.check(redis_conn, "k", limit, now_s=t0).allowed for _ in range(4)]
    assert allowed == [True, True, True, False]
    assert ratelimit.check(redis_conn, "k", limit, now_s=t0 + 0.5).allowed is False
    assert ratelimit.check(redis_conn, "k", limit, now_s=t0 + 1.0).allowed is True  # 1/s back
    assert ratelimit.check(redis_conn, "k", limit, now_s=t0 + 1.0).allowed is False


def test_a_refused_request_counts_against_the_limit_and_says_so(api, make_key):
    _, key = make_key("standard")                                  # 60 a minute, burst 100
    started = time.monotonic()
    ok = api.get("/v1/anomalies?limit=1", key=key)
    bad = api.get("/v1/anomalies?limit=0", key=key)                # the query check's 400
    unknown = api.delete("/v1/webhooks/not-a-uuid", key=key)       # a handler's 400
    refilled = time.monotonic() - started                          # one a second came back
    assert ok.status_code == 200 and bad.status_code == unknown.status_code == 400
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in (ok, bad, unknown)]
    assert remaining[0] >= remaining[1] >= remaining[2] and remaining[2] <= 97 + refilled
    assert bad.headers["X-RateLimit-Limit"] == unknown.headers["X-RateLimit-Limit"] == "60"


def test_limiter_fails_closed_when_redis_is_away(api, kades_env, monkeypatch):
    monkeypatch.setenv("KADES_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setenv("KADES_REDIS_TIMEOUT_S", "0.2")
    away = api_client(api.key)
    started = time.monotonic()
    response = away.get("/v1/anomalies")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "unavailable"
    assert response.mimetype == "application/problem+json"
    check_response("GET", "/v1/anomalies", response)
    assert time.monotonic() - started < 10
