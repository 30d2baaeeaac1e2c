"""Send events to the sink (the Broker ingress, as Knative's SinkBinding injects K_SINK)."""
from __future__ import annotations

import httpx

from kades import clients
from kades.errors import TemporaryFailure
from kades.events.chunking import check_sizes
from kades.events.envelope import CloudEvent, to_binary


def send(events: list[CloudEvent], sink_url: str) -> None:
    """POST each event in binary mode; any failure is temporary (the caller answers 503)."""
    check_sizes(events)  # over the limit: refused (EventTooLarge, logged) before any is sent
    client = clients.http_client()
    for event in events:
        headers, body = to_binary(event)
        try:
            response = client.post(sink_url, headers=headers, content=body)
        except httpx.HTTPError as error:
            raise TemporaryFailure(f"sink {sink_url} unreachable: {error}") from error
        if response.status_code >= 300:
            raise TemporaryFailure(
                f"sink {sink_url} answered {response.status_code}: {response.text[:200]}")
