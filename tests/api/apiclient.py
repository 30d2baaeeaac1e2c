"""A test client of the api that sends an API key by default."""
from __future__ import annotations

from pathlib import Path

from functions_framework import create_app

API_MAIN = Path(__file__).resolve().parents[2] / "functions/api/main.py"


class KeyedClient:
    """A Flask test client that sends `X-API-Key` unless told otherwise."""

    def __init__(self, client, key: str):
        self.client, self.key = client, key

    def open(self, method: str, path: str, *, key: str | None = "default", **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if key == "default":
            key = self.key
        if key is not None:
            headers["X-API-Key"] = key
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.open("POST", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.open("DELETE", path, **kwargs)


def api_client(key: str | None) -> KeyedClient:
    """A fresh app (settings read now) behind a KeyedClient."""
    return KeyedClient(create_app("handle", str(API_MAIN), "http").test_client(), key)
