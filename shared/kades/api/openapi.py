"""The OpenAPI 3.1 document of the API: written once (openapi.yaml beside this module),
served as JSON at /v1/openapi.json and checked against the real responses by the tests."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import yaml

DOCUMENT = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


@functools.cache
def document_json() -> bytes:
    return json.dumps(document()).encode()
