"""Every pod of both overlays passes the `restricted` Pod Security Standard's container rules
that the manifests decide, so that a namespace labelled
`pod-security.kubernetes.io/enforce: restricted` admits them all: seccomp RuntimeDefault (on
the pod or on each container), non-root, no privilege escalation, every capability dropped.
Init containers count. (queue-proxy is Knative's: it sets its own.)"""
from __future__ import annotations

import pytest

from deploy_helpers import OVERLAYS

SECCOMP_ALLOWED = ("RuntimeDefault", "Localhost")


def pod_templates(docs):
    """(kind/name, pod spec) of every workload the render holds."""
    for doc in docs:
        kind, spec = doc["kind"], doc.get("spec", {})
        if kind == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        template = spec.get("template", {}).get("spec") if isinstance(spec, dict) else None
        if template and "containers" in template:
            yield f"{kind}/{doc['metadata']['name']}", template


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_admitted_by_the_restricted_level(rendered, overlay):
    pods = dict(pod_templates(rendered[overlay]))
    assert {"StatefulSet/timescaledb", "StatefulSet/redis", "CronJob/kades-backup",
            "Job/kades-migrate", "ContainerSource/solana-source", "Service/api"} <= set(pods)
    for where, pod in pods.items():
        context = pod.get("securityContext", {})
        for container in pod.get("initContainers", []) + pod["containers"]:
            own = container.get("securityContext", {})
            name = f"{where} {container['name']}"
            seccomp = own.get("seccompProfile", context.get("seccompProfile", {}))
            assert seccomp.get("type") in SECCOMP_ALLOWED, f"{name}: no seccompProfile"
            assert own.get("runAsNonRoot", context.get("runAsNonRoot")) is True, name
            assert own.get("allowPrivilegeEscalation") is False, name
            assert own.get("capabilities", {}).get("drop") == ["ALL"], name
