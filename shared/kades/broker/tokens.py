"""A local OIDC issuer for the development broker: what the cluster's API server is to Knative.

With `authentication-oidc` on, Knative's Broker filter asks the API server for a
service-account token (RS256 JWT: iss, sub `system:serviceaccount:<ns>:<sa>`, aud [the
subscriber's audience], iat, nbf, exp) and sends it as `Authorization: Bearer`; receivers
verify it against the issuer's JWKS found through `/.well-known/openid-configuration`
(knative/eventing pkg/auth/token_provider.go and verifier.go). `kades broker --oidc` does the
same with a key it generates at start and a JWKS it serves on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

JWKS_PATH = "/openid/v1/jwks"  # where the Kubernetes API server serves its keys


def projected_token(directory: Path, namespace: str, broker: str, account: str) -> Path:
    """Where `kades broker --oidc-token-dir` keeps the token of service account `account` for
    Broker `namespace`/`broker` (what a pod of that account would find in its token volume)."""
    return Path(directory) / f"{namespace}.{broker}" / account


def oidc_subject(namespace: str, name: str, *, group: str, kind: str) -> str:
    """The `sub` of the OIDC service account Eventing makes for an object that sends (a
    Trigger, a source): knative/eventing pkg/auth/serviceaccount.go, <name>-oidc-<group>-<kind>
    in lower case; kmeta.ChildName's shortening of names over 63 characters is left out."""
    return f"system:serviceaccount:{namespace}:{name}-oidc-{group}-{kind}".lower()


def trigger_subject(namespace: str, trigger: str) -> str:
    """The `sub` of a Trigger's deliveries (and of the replies it takes back in)."""
    return oidc_subject(namespace, trigger, group="eventing.knative.dev", kind="Trigger")


class LocalIssuer:
    """Signs tokens with a fresh RSA key and serves discovery and JWKS over HTTP."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, token_ttl_s: float = 3600.0):
        """`port` 0: any free one (tests); `kades broker --oidc` uses a fixed one, which the
        functions of `kades up --oidc` are given as their KADES_OIDC_ISSUER."""
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.token_ttl_s = token_ttl_s
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self.issuer = f"http://{host}:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="kades-oidc-issuer").start()

    def jwks(self) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, audience: str, *, subject: str) -> str:
        """A token for `audience`, reused until 80 % of its life is gone (as Knative caches them)."""
        now = time.time()
        with self._lock:
            cached = self._cache.get((audience, subject))
            if cached and cached[1] > now:
                return cached[0]
            claims = {"iss": self.issuer, "sub": subject, "aud": [audience], "iat": int(now),
                      "nbf": int(now), "exp": int(now + self.token_ttl_s)}
            token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
            self._cache[(audience, subject)] = (token, now + 0.8 * self.token_ttl_s)
            return token

    def project(self, path: Path, audience: str, *, subject: str) -> bool:
        """Write a token for `audience` to `path` as the kubelet projects one into a pod
        (whole files swapped in, a new token before the old one expires); whether it changed."""
        token = self.token(audience, subject=subject)
        if path.exists() and path.read_text() == token:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".new")
        partial.write_text(token)
        os.replace(partial, path)
        return True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                documents = {"/.well-known/openid-configuration": lambda: {
                    "issuer": issuer.issuer, "jwks_uri": issuer.issuer + JWKS_PATH,
                    "id_token_signing_alg_values_supported": ["RS256"]},
                    JWKS_PATH: issuer.jwks}
                if self.path not in documents:
                    self.send_error(404)
                    return
                body = json.dumps(documents[self.path]()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # the broker logs JSON lines; these add nothing
                pass
        return Handler
