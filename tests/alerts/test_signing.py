"""Webhook signatures by the Standard Webhooks scheme: the scheme's published test vector,
and the scheme's own verifier (the `standardwebhooks` package a receiver would use) accepts
what alert-dispatch sends and refuses any change to the body, the id or the time."""
from __future__ import annotations

import base64
import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from kades.alerts.signing import (ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, V1_SIGNATURE_HEADER,
                                  V1_TIMESTAMP_HEADER, as_whsec, new_secret, secret_problem,
                                  signature_headers, signing_key, verify_v1_headers)

# The test vector every Standard Webhooks library checks (its `test_sign_function`).
VECTOR = {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
          "timestamp": 1614265330, "body": b'{"test": 2432232314}',
          "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
BODY = json.dumps({"type": "alert", "id": "e1", "data": {"level": "high"}},
                  separators=(",", ":")).encode()


def test_the_published_test_vector():
    headers = signature_headers(VECTOR["secret"], VECTOR["body"], delivery_id=VECTOR["id"],
                                timestamp=VECTOR["timestamp"])
    assert headers[SIGNATURE_HEADER] == VECTOR["signature"]
    assert (headers[ID_HEADER], headers[TIMESTAMP_HEADER]) == (VECTOR["id"], "1614265330")


@pytest.mark.parametrize("secret", [new_secret(), "a-secret-of-before-v1"], ids=["whsec", "v1-form"])
def test_the_standard_verifier_accepts_what_is_sent_and_refuses_changes(secret):
    headers = signature_headers(secret, BODY, delivery_id="42")
    receiver = Webhook(as_whsec(secret))
    assert receiver.verify(BODY, headers) == json.loads(BODY)
    changed = [(BODY.replace(b"high", b"HIGH"), headers),
               (BODY, {**headers, ID_HEADER: "43"}),  # the delivery id is signed
               (BODY, {**headers, TIMESTAMP_HEADER: str(int(headers[TIMESTAMP_HEADER]) + 1)})]
    for body, sent in changed:
        with pytest.raises(WebhookVerificationError):
            receiver.verify(body, sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    old = signature_headers(secret, BODY, delivery_id="42", timestamp=int(time.time()) - 301)
    with pytest.raises(WebhookVerificationError, match="too old"):
        receiver.verify(BODY, old)


def test_the_headers_of_before_are_still_sent_through_v1():
    secret = "a-secret-of-before-v1"
    headers = signature_headers(secret, BODY, delivery_id="7", timestamp=1_800_000_000)
    stamp, signature = headers[V1_TIMESTAMP_HEADER], headers[V1_SIGNATURE_HEADER]
    assert signature.startswith("sha256=") and stamp == headers[TIMESTAMP_HEADER]
    assert verify_v1_headers(secret, BODY, stamp, signature, now=1_800_000_010)
    assert not verify_v1_headers(secret, BODY + b" ", stamp, signature, now=1_800_000_010)


def test_secrets_are_whsec_and_the_form_of_before_is_still_accepted():
    made = new_secret()
    assert made.startswith("whsec_") and len(base64.b64decode(made[6:])) == 32
    assert secret_problem(made) is None and made != new_secret()
    assert secret_problem("sixteen-chars-ok") is None  # v1's form: any 16 to 256 characters
    refused = ["short", "x" * 257, 42, "whsec_not base64!", "whsec_" + "é" * 16,  # not ASCII
               "whsec_" + base64.b64encode(b"x" * 23).decode(),   # under the spec's 24 bytes
               "whsec_" + base64.b64encode(b"x" * 65).decode()]
    assert [secret_problem(s) is not None for s in refused] == [True] * len(refused)


def test_a_secret_of_before_beginning_whsec_and_not_ascii_signs_with_its_bytes():
    """base64's decoder raises a plain ValueError on a character outside ASCII (not
    binascii.Error): a webhook's registration answered 500, its deliveries raised."""
    secret = "whsec_" + "é" * 16
    assert signing_key(secret) == secret.encode()
    assert as_whsec(secret) == "whsec_" + base64.b64encode(secret.encode()).decode()
