"""The bearer token a sender presents to the Broker, read from a file that rotates.

With Knative's `authentication-oidc` on, the Broker ingress takes an event only with a token
for its audience (eventing.knative.dev/broker/<ns>/<name>) from a sender the EventPolicy
names. Where the token lies:
- a function or the api (a Knative Service): a projected service-account token volume
  (`kades manifests` renders it; KADES_SINK_TOKEN_FILE points at it); the kubelet writes a
  new token when 80 % of its life is gone;
- solana-source (a ContainerSource): its SinkBinding mounts Secret `<name>-oidc-token` at
  /oidc, key `token`, for the sink's audience; Eventing renews the Secret before expiry
  (knative/eventing pkg/apis/sources/v1/sinkbinding_lifecycle.go, pkg/reconciler/sinkbinding).
Both swap the file in place, so it is looked at (stat) on every send and read again when it
changed; a token is never kept past its file.
"""
from __future__ import annotations

import os
import threading

from kades.errors import TemporaryFailure

SINKBINDING_TOKEN_FILE = "/oidc/token"  # where a SinkBinding mounts the sink's token

# Process-wide, like the connection pools: it mirrors a file of the process's filesystem, the
# same for every Context, and is checked against the file (stat) on every use.
_lock = threading.Lock()
_read: dict[str, tuple[tuple, str]] = {}  # path -> (what stat said, the token then)


def bearer(path: str) -> str:
    """The token in `path` (stripped), read again whenever the file changed; TemporaryFailure
    naming the file when it is missing, unreadable or empty (the caller answers 503)."""
    try:
        status = os.stat(path)  # follows the ..data symlink Kubernetes swaps on rotation
        seen = (status.st_ino, status.st_mtime_ns, status.st_size)
        with _lock:
            cached = _read.get(path)
        if cached and cached[0] == seen:
            return cached[1]
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as error:
        raise TemporaryFailure(f"sink token file {path}: {error.strerror or error}") from error
    if not token:
        raise TemporaryFailure(f"sink token file {path} is empty")
    with _lock:
        _read[path] = (seen, token)
    return token


def authorization(path: str) -> dict[str, str]:
    """The Authorization header for a send with the token in `path`; none when `path` is empty."""
    return {"authorization": f"Bearer {bearer(path)}"} if path else {}


def token_file_problem(path: str) -> str | None:
    """Why the token file cannot be sent with, or None; checked before the first event, which
    would otherwise fail as if the sink were away."""
    try:
        bearer(path)
    except TemporaryFailure as error:
        cause = error.__cause__
        if isinstance(cause, OSError):
            return f"cannot read the sink token file {path}: {cause.strerror or cause}"
        return f"the sink token file {path} is empty"
    except ValueError:  # not UTF-8
        return f"cannot read the sink token file {path}: not UTF-8 text"
    return None
