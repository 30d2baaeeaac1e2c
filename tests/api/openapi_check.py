"""Check a real response against the OpenAPI document (status documented, body matches)."""
from __future__ import annotations

import re

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from kades.api.openapi import document

_REGISTRY = Registry().with_resource("urn:kades-api", Resource.from_contents(
    {**document(), "$schema": "https://json-schema.org/draft/2020-12/schema"}))


def _operation(path: str, method: str) -> tuple[str, dict]:
    for template, operations in document()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return template, operations[method.lower()]
    raise AssertionError(f"{method} {path} is not documented")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def check_response(method: str, path: str, response) -> None:
    """AssertionError unless the response's status and JSON body are what the document says."""
    template, operation = _operation(path.split("?")[0], method)
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {template}: {status} not documented"
    pointer = "/".join(["#", "paths", _escape(template), method.lower(), "responses", status])
    described = operation["responses"][status]
    if "$ref" in described:
        pointer = described["$ref"]
        described = _REGISTRY.resolver().lookup("urn:kades-api" + pointer).contents
    media = response.mimetype  # application/json, or application/problem+json for errors
    if media not in described.get("content", {}):
        assert not described.get("content"), f"{method} {template} {status}: {media} not documented"
        return
    schema = {"$ref": "urn:kades-api" + pointer + "/content/" + _escape(media) + "/schema"}
    validator = Draft202012Validator(schema, registry=_REGISTRY)
    errors = [e.message for e in validator.iter_errors(response.get_json())]
    assert not errors, f"{method} {template} {status}: {errors}"
