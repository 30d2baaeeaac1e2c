"""Verify the sender identity Knative Eventing attaches to every delivery (`authentication-oidc`).

With the feature on, the Broker's filter asks the cluster's OIDC issuer (the Kubernetes API
server) for a service-account token whose audience is the subscriber's (the Trigger's
`subscriber.audience`, kades.manifests.service_audience) and sends it as
`Authorization: Bearer <JWT>`. A function checks signature (the issuer's JWKS), issuer,
audience and expiry, as Knative's own receivers do (knative/eventing pkg/auth/verifier.go,
go-oidc's Verify; docs: knative.dev/docs/eventing/features/sender-identity/).
Enabled when KADES_OIDC_ISSUER is set; KADES_OIDC_AUDIENCE is then required.

The audience alone does not say who sent: any pod may have the kubelet project a token of its
own service account for any audience, a Service's included. So the token's subject must be one
of KADES_OIDC_SUBJECTS too (403 otherwise), in an EventPolicy's `from.sub` form: a trailing `*`
matches any rest. `kades.manifests` renders `system:serviceaccount:<namespace>:*` for every
Service: the Broker's Triggers sign as service accounts Eventing makes in their own namespace,
and that namespace is what Knative itself admits when no EventPolicy applies
(`allow-same-namespace`). An empty list admits every subject the issuer signed.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import jwt

from kades.errors import KadesError, TemporaryFailure
from kades.settings import Settings, SettingsError

ALGORITHMS = ["RS256", "ES256"]  # what Kubernetes signs service-account tokens with
# Clocks differ: as go-oidc (which Knative's verifier runs) the expiry is checked exactly, a
# `nbf` allowed 5 minutes ahead and `iat` not at all. PyJWT refused a token issued 0.3 s
# ahead of this pod's clock, a 401 the Broker does not retry: the event dead-lettered.
NOT_BEFORE_LEEWAY_S = 300
KEYS_REFETCH_S = 10.0  # an unknown key id fetches the keys again, at most this often
# JWT errors in the words a caller can act on; the first class that matches wins.
_PROBLEMS = [(jwt.ExpiredSignatureError, "token expired"),
             (jwt.InvalidIssuerError, "wrong issuer"),
             (jwt.InvalidAudienceError, "wrong audience"),
             (jwt.InvalidSignatureError, "bad signature"),
             (jwt.MissingRequiredClaimError, "missing claim"),
             (jwt.ImmatureSignatureError, "token not valid yet")]


class Unauthorized(KadesError):
    """The request carries no valid token for this function: answer 401."""


class Forbidden(KadesError):
    """A valid token of a sender not admitted (KADES_OIDC_SUBJECTS, an EventPolicy): answer 403."""


def subject_contained(subject: str, allowed: tuple[str, ...]) -> bool:
    """Knative's SubjectContained (pkg/auth/event_policy.go): equal ignoring case, or a prefix
    ending in `*`."""
    return any(subject.lower() == pattern.lower()
               or (pattern.endswith("*") and subject.startswith(pattern[:-1]))
               for pattern in allowed)


def subject_patterns(text: str) -> tuple[str, ...]:
    """KADES_OIDC_SUBJECTS's comma-separated patterns, blanks dropped."""
    return tuple(pattern.strip() for pattern in text.split(",") if pattern.strip())


@dataclass
class Verifier:
    issuer: str
    audience: str
    jwks_url: str = ""            # empty: discovered from the issuer's openid-configuration
    ca_file: str = ""             # TLS trust for the issuer (in a pod: the service account's ca.crt)
    fetch_token_file: str = ""    # the API server serves its JWKS to authenticated callers only
    jwks_ttl_s: float = 300.0
    subjects: tuple[str, ...] = ()  # who may send (subject_contained); empty: every subject
    _keys: dict = field(default_factory=dict, repr=False)
    _fetched_at: float = field(default=-1e18, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Verifier | None":
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_audience:
            raise SettingsError(["KADES_OIDC_AUDIENCE: required when KADES_OIDC_ISSUER is set"])
        subjects = subject_patterns(settings.oidc_subjects)
        if settings.oidc_subjects.strip() and not subjects:  # "," would admit every sender
            raise SettingsError([f"KADES_OIDC_SUBJECTS={settings.oidc_subjects!r}: no subject "
                                 "pattern in it (leave it empty to admit every subject)"])
        return cls(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url,
                   settings.oidc_ca_file, settings.oidc_jwks_token_file, settings.oidc_jwks_ttl_s,
                   subjects)

    def verify(self, authorization: str | None) -> dict:
        """The token's claims; Unauthorized naming the problem, Forbidden for a sender not in
        `subjects`, TemporaryFailure if the JWKS is away."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token (Authorization: Bearer <JWT>)")
        try:  # the issuer first, as go-oidc: another issuer's token is a 401, not a key to fetch
            unverified = jwt.decode(token.strip(), options={"verify_signature": False})
            if unverified.get("iss") != self.issuer:
                raise jwt.InvalidIssuerError(f"issued by {unverified.get('iss')!r}")
            key = self._key(jwt.get_unverified_header(token.strip()).get("kid"))
            claims = jwt.decode(token.strip(), key, algorithms=ALGORITHMS, audience=self.audience,
                                issuer=self.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"],
                                         "verify_iat": False, "verify_nbf": False})
            not_before = claims.get("nbf")
            if not_before is not None and not (
                    isinstance(not_before, (int, float)) and not isinstance(not_before, bool)
                    and not_before <= time.time() + NOT_BEFORE_LEEWAY_S):
                raise jwt.ImmatureSignatureError(f"the token is not valid before {not_before!r}")
        except jwt.PyJWTError as error:
            problem = next((text for kind, text in _PROBLEMS if isinstance(error, kind)),
                           "malformed token")
            raise Unauthorized(f"{problem}: {error}") from error
        subject = claims["sub"]
        if self.subjects and not (isinstance(subject, str)
                                  and subject_contained(subject, self.subjects)):
            raise Forbidden(f"sender {subject!r} may not send events here")
        return claims

    def _key(self, kid: str | None):
        with self._lock:
            stale = time.monotonic() - self._fetched_at > self.jwks_ttl_s
            fetched = False
            if stale or kid not in self._keys:  # an unknown kid: the issuer may have rotated keys
                if stale or time.monotonic() - self._fetched_at > KEYS_REFETCH_S:
                    self._keys, self._fetched_at = self._fetch(), time.monotonic()
                    fetched = True
            if kid in self._keys:
                return self._keys[kid]
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
        if not fetched:  # keys fetched moments ago, perhaps from before a rotation: retried
            raise TemporaryFailure(f"signing key {kid!r} not among the keys fetched in the "
                                   f"last {KEYS_REFETCH_S:g} s; fetched again on a retry")
        raise Unauthorized(f"unknown signing key {kid!r}: not in the issuer's JWKS")

    def _fetch(self) -> dict:
        headers = {}
        try:  # not the pooled client (kades.clients): this one trusts the issuer's own CA (ca_file)
            if self.fetch_token_file:  # (a projected token: a file missing for now is temporary)
                with open(self.fetch_token_file, encoding="utf-8") as handle:
                    headers["Authorization"] = "Bearer " + handle.read().strip()
            with httpx.Client(verify=self.ca_file or True, timeout=5.0, headers=headers) as client:
                url = self.jwks_url or _discover(client, self.issuer)
                answer = client.get(url)
                answer.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(answer.json()).keys
        except (httpx.HTTPError, OSError, ValueError, KeyError, jwt.PyJWTError) as error:
            raise TemporaryFailure(f"OIDC keys unavailable: {error}") from error
        return {key.key_id: key for key in keys}


def _discover(client: httpx.Client, issuer: str) -> str:
    answer = client.get(issuer.rstrip("/") + "/.well-known/openid-configuration")
    answer.raise_for_status()
    return answer.json()["jwks_uri"]
