"""eventing/*.yaml against the real Knative CRD schemas (openAPIV3Schema), read structurally.

Structural means what the API server does with `kubectl apply --validate=strict`: a field
not declared where the schema has no `x-kubernetes-preserve-unknown-fields` is an error.
"""
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from shared_material import SCHEMAS as SHARED, needs

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = SHARED / "knative"
CRDS = {"Broker": "eventing.knative.dev_brokers.yaml", "Trigger": "eventing.knative.dev_triggers.yaml"}
# The API server adds these to every object; the Eventing CRDs leave them out of the root.
ROOT_FIELDS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
               "metadata": {"type": "object"}}


def structural(schema: dict) -> dict:
    """The schema with undeclared fields refused wherever Kubernetes would refuse them."""
    schema = dict(schema)
    if "properties" in schema:
        schema["properties"] = {k: structural(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    if isinstance(schema.get("items"), dict):
        schema["items"] = structural(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = structural(schema["additionalProperties"])
    return schema


def validator(kind: str) -> Draft202012Validator:
    crd = yaml.safe_load((SCHEMAS / CRDS[kind]).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = structural(version["schema"]["openAPIV3Schema"])
    schema["properties"] = {**ROOT_FIELDS, **schema["properties"]}
    return Draft202012Validator(schema)


def documents():
    for path in sorted((REPO / "eventing").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in CRDS:
                yield pytest.param(doc, id=f"{path.name}:{doc['metadata']['name']}")


@needs(SCHEMAS)
@pytest.mark.parametrize("doc", list(documents()))
def test_manifest_matches_its_crd(doc):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator(doc["kind"]).iter_errors(doc)]
    assert not errors
    assert doc["apiVersion"] == "eventing.knative.dev/v1"
    assert doc["metadata"]["namespace"] == "kades"


@needs(SCHEMAS)
def test_structural_check_catches_a_misspelt_field():
    bad = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
           "metadata": {"name": "kades"}, "spec": {"delivry": {"retry": 1}}}
    assert list(validator("Broker").iter_errors(bad))


def test_files_are_numbered_in_apply_order():
    names = [p.name for p in sorted((REPO / "eventing").glob("*.yaml"))]
    assert names[0] == "100-broker.yaml"
    assert all(n.endswith("-trigger.yaml") and n[:3].isdigit() and n[0] == "2" for n in names[1:]
               if "trigger" in n)
