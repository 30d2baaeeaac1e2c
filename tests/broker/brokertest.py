"""Helpers of the broker tests: real HTTP subscribers, manifests, polling."""
from __future__ import annotations

import json
import threading
import time
from typing import Callable

import httpx
import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kades.errors import PROBLEM_JSON, PROBLEM_TYPE


def wait_for(predicate: Callable[[], object], timeout_s: float = 15.0, what: str = "condition"):
    # Generous: a passing test never waits it out, and 2 shared cores at a load of 15-20
    # made 5 s too short for a first delivery (the broker's and the posting's start).
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class Subscriber:
    """A real HTTP server recording every request; `respond(request)` decides the answer."""

    def __init__(self, respond: Callable[[Request], Response] | None = None):
        self.respond = respond or (lambda _request: Response(status=202))
        self.requests: list[dict] = []
        self.times: list[float] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def _app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.requests.append({"headers": {k.lower(): v for k, v in request.headers.items()},
                                  "body": body, "path": request.path})
            self.times.append(time.monotonic())
        return self.respond(request)(environ, start_response)

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def manifests(*triggers: dict, delivery: dict | None = None, broker_class: str | None = None) -> str:
    """YAML of Broker kades/kades (with `delivery`, else Knative's default; of `broker_class`,
    else the default channel-based one) and the Triggers."""
    broker = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
              "metadata": {"name": "kades", "namespace": "kades"}, "spec": {}}
    if broker_class:
        broker["metadata"]["annotations"] = {"eventing.knative.dev/broker.class": broker_class}
    if delivery is not None:
        broker["spec"]["delivery"] = delivery
    return yaml.safe_dump_all([broker, *triggers], sort_keys=False)


def trigger(name: str, url: str, *, type: str | None = None, **spec) -> dict:
    """A Trigger on kades/kades sending to `url`, with an exact type filter if given."""
    body = {"broker": "kades", "subscriber": {"uri": url}, **spec}
    if type is not None:
        body["filter"] = {"attributes": {"type": type}}
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": name, "namespace": "kades"}, "spec": body}


def event_attrs(type_: str = "ai.kades.test.v1", id_: str = "e1", **extra: str) -> dict:
    return {"specversion": "1.0", "id": id_, "source": "/tests/broker", "type": type_, **extra}


def post_binary(url: str, attrs: dict, data=None, *, headers: dict | None = None) -> httpx.Response:
    """POST one event in binary mode (ce-* headers, JSON data)."""
    sent = {f"ce-{k}": str(v) for k, v in attrs.items()}
    sent.update(headers or {})
    body = b""
    if data is not None:
        sent["content-type"] = "application/json"
        body = json.dumps(data).encode()
    return httpx.post(url, headers=sent, content=body, timeout=10)


def post_structured(url: str, document, *, content_type: str = "application/cloudevents+json"):
    return httpx.post(url, headers={"content-type": content_type},
                      content=json.dumps(document).encode(), timeout=10)


def signed(issuer, subject: str = "system:serviceaccount:kades:kades-function") -> dict:
    """Headers of a sender with a token of `issuer` for Broker kades/kades (sender identity on:
    the ingress refuses an event without one)."""
    token = issuer.token("eventing.knative.dev/broker/kades/kades", subject=subject)
    return {"authorization": f"Bearer {token}"}


def problem(response: httpx.Response, status: int, code: str) -> list[dict]:
    """Check an RFC 9457 problem answer (kades.errors.error_body's shape); its problems,
    each with a field and a message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == PROBLEM_TYPE.format(code=code)
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["errors"], "every problem is named"
    assert all(p["field"] and p["message"] for p in body["errors"])
    assert body["error"] == {"code": code, "message": body["detail"], "details": body["errors"]}
    return body["errors"]
