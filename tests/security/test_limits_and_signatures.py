"""Rate limits hold when many clients share one key at once; webhook signatures verify,
and a tampered body, another secret or an old timestamp fails."""
from __future__ import annotations

import math
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from api.apiclient import api_client
from kades.alerts.signing import (V1_SIGNATURE_HEADER, V1_TIMESTAMP_HEADER, as_whsec,
                                  signature_headers, verify_v1_headers as verify)

CLIENTS, REQUESTS_EACH = 8, 25  # 200 requests against a burst of 100
STANDARD_RATE_PER_MIN, STANDARD_BURST = 60, 100


def test_rate_limit_holds_under_concurrent_clients(api, make_key):
    _, key = make_key("standard")
    clients = [api_client(key) for _ in range(CLIENTS)]
    statuses: list[int] = []
    lock, start = threading.Lock(), threading.Barrier(CLIENTS)

    def hammer(client):
        start.wait()
        for _ in range(REQUESTS_EACH):
            status = client.get("/v1/anomalies?limit=1").status_code
            with lock:
                statuses.append(status)

    began = time.monotonic()
    threads = [threading.Thread(target=hammer, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed_s = time.monotonic() - began
    allowed = statuses.count(200)
    ceiling = STANDARD_BURST + math.ceil(elapsed_s * STANDARD_RATE_PER_MIN / 60) + 1
    print(f"\nrate limit: {allowed} of {len(statuses)} allowed in {elapsed_s:.1f} s "
          f"from {CLIENTS} concurrent clients (at most {ceiling})")
    assert set(statuses) <= {200, 429}
    assert STANDARD_BURST <= allowed <= ceiling
    refused = clients[0].get("/v1/anomalies?limit=1")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["code"] == "rate_limited"


SECRETS = st.text(min_size=16, max_size=64)
BODIES = st.text(min_size=1, max_size=200).map(str.encode)  # JSON is text


@given(SECRETS, BODIES, st.data())
@settings(max_examples=200, deadline=None, database=None)
def test_signatures_verify_and_tampering_fails(secret, body, data):
    now = 1_800_000_000
    headers = signature_headers(secret, body, delivery_id="1", timestamp=now)
    stamp, signature = headers[V1_TIMESTAMP_HEADER], headers[V1_SIGNATURE_HEADER]
    assert verify(secret, body, stamp, signature, now=now + 10)
    index = data.draw(st.integers(0, len(body) - 1))
    tampered = body[:index] + bytes([body[index] ^ data.draw(st.integers(1, 255))]) + body[index + 1:]
    assert not verify(secret, tampered, stamp, signature, now=now)
    assert not verify(secret, body + b" ", stamp, signature, now=now)
    other = data.draw(SECRETS.filter(lambda s: s != secret))
    assert not verify(other, body, stamp, signature, now=now)
    assert not verify(secret, body, str(now + 1), signature, now=now), "the timestamp is signed"
    assert not verify(secret, body, stamp, signature, now=now + 301), "replays are refused"
    assert not verify(secret, body, "not-a-number", signature, now=now)


@given(SECRETS, BODIES, st.data())
@settings(max_examples=100, deadline=None, database=None)
def test_standard_webhooks_signatures_verify_and_tampering_fails(secret, body, data):
    """The same through the Standard Webhooks verifier a receiver would use."""
    headers = signature_headers(secret, body, delivery_id=str(data.draw(st.integers(1, 10**12))))
    receiver = Webhook(as_whsec(secret))
    receiver.verify(body, headers, json_parse=False)
    index = data.draw(st.integers(0, len(body) - 1))
    tampered = body[:index] + bytes([body[index] ^ data.draw(st.integers(1, 127))]) + body[index + 1:]
    for changed, sent in ((tampered, headers), (body, {**headers, "webhook-id": "0"})):
        with pytest.raises((WebhookVerificationError, UnicodeDecodeError)):
            receiver.verify(changed, sent, json_parse=False)
