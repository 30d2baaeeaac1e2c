"""Validators for rendered objects: Knative kinds against the handed-over CRD schemas,
core kinds with kubernetes-validate --strict.

A CRD's openAPIV3Schema is made strict the way the API server treats a structural schema:
an object with declared `properties` rejects undeclared keys unless it carries
`x-kubernetes-preserve-unknown-fields: true`.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.32.0"
ROOT_FIELDS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
               "metadata": {"type": "object"}}


def _strict(node):
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items()}
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        node["additionalProperties"] = False
    return node


@functools.lru_cache(maxsize=None)
def crd_validators(schemas_dir: Path) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> strict validator, for every CRD in schemas_dir/knative."""
    validators = {}
    for path in sorted((schemas_dir / "knative").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {})
            for name, sub in ROOT_FIELDS.items():
                schema["properties"].setdefault(name, sub)
            validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                _strict(schema))
    return validators


def knative_errors(doc: dict, schemas_dir: Path) -> list[str]:
    validator = crd_validators(schemas_dir)[(doc["apiVersion"], doc["kind"])]
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)]


def core_errors(doc: dict) -> list[str]:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '<root>'}: {error.message}"]
    return []


def is_knative(doc: dict) -> bool:
    return doc.get("apiVersion", "").split("/")[0].endswith("knative.dev")
