"""OIDC audiences in Knative's form, `<group>/<kind>/<namespace>/<name>` in lower case
(knative/eventing pkg/auth/audience.go): what a token sent to that object must be for.
Used by the manifests (rendered audiences and token volumes) and the development broker; with
them, the subjects a function takes tokens from."""
from __future__ import annotations


def service_audience(namespace: str, name: str) -> str:
    """Knative Service `name`. Serving announces none in its status (knative/serving#14428,
    closed), so each Trigger names it in `subscriber.audience`."""
    return f"serving.knative.dev/service/{namespace}/{name}".lower()


def broker_audience(namespace: str, name: str) -> str:
    """Broker `name`, as its ingress announces it and checks on every event it takes in."""
    return f"eventing.knative.dev/broker/{namespace}/{name}".lower()


def namespace_subjects(namespace: str) -> str:
    """Every service account of `namespace`, as a KADES_OIDC_SUBJECTS pattern: where Eventing
    makes each Trigger's OIDC service account (its name varies between Eventing releases)."""
    return f"system:serviceaccount:{namespace}:*"
