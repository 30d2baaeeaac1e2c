"""Send events to the sink (the Broker ingress, as Knative's SinkBinding injects K_SINK).

With a token file (KADES_SINK_TOKEN_FILE) every event carries `Authorization: Bearer` with
the token for the Broker's audience, as the Broker's EventPolicy requires once Knative's
authentication-oidc is on (kades.runtime.tokenfile)."""
from __future__ import annotations

import httpx

from kades import clients
from kades.errors import TemporaryFailure
from kades.events.chunking import check_sizes
from kades.events.envelope import CloudEvent, to_binary
from kades.runtime import faults, tokenfile
from kades.settings import settings


def send(events: list[CloudEvent], sink_url: str, *, token_file: str | None = None) -> None:
    """POST each event in binary mode; any failure is temporary (the caller answers 503).
    `token_file`: the sender's token for the Broker (None: KADES_SINK_TOKEN_FILE; "": none)."""
    check_sizes(events)  # over the limit: refused (EventTooLarge, logged) before any is sent
    faults.point("before_sink")  # tests only (KADES_FAULT_POINTS): a step of the handler
    client = clients.http_client()
    token_file = settings().sink_token_file if token_file is None else token_file
    for event in events:
        headers, body = to_binary(event)
        headers.update(tokenfile.authorization(token_file))  # per event: the file rotates
        try:
            response = client.post(sink_url, headers=headers, content=body)
        except httpx.HTTPError as error:
            raise TemporaryFailure(f"sink {sink_url} unreachable: {error}") from error
        if response.status_code >= 300:
            raise TemporaryFailure(
                f"sink {sink_url} answered {response.status_code}: {response.text[:200]}")
    faults.point("after_sink")
