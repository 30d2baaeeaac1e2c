"""Paths and small helpers of the deployment tests (a plain module: conftest names clash)."""
from __future__ import annotations

from shared_material import ROOT, SCHEMAS, in_ci  # for the tests here

OVERLAYS = ("dev", "prod")


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


# Knative's queue-proxy in every function pod: only its cpu request is set by default
# (config-deployment's queue-sidecar-cpu-request; tests/knative/test_quota.py)
QUEUE_PROXY = {"name": "queue-proxy", "resources": {"requests": {"cpu": "25m"}}}


def workloads(docs) -> list[tuple[str, int, dict]]:
    """(kind/name, how many pods at most, pod spec) of everything that runs in the namespace."""
    out = []
    for doc in docs:
        kind, name, spec = doc["kind"], doc["metadata"]["name"], doc.get("spec", {})
        if kind == "Service" and doc["apiVersion"].startswith("serving.knative.dev"):
            template = spec["template"]
            scale = int(template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"])
            assert scale > 0, f"{name}: no max-scale, so no bound to fit a quota"
            pod = dict(template["spec"])
            pod["containers"] = pod["containers"] + [QUEUE_PROXY]
            out.append((f"{kind}/{name}", scale, pod))
        elif kind in ("StatefulSet", "Deployment"):
            out.append((f"{kind}/{name}", spec.get("replicas", 1), spec["template"]["spec"]))
        elif kind == "Job":
            out.append((f"{kind}/{name}", spec.get("parallelism", 1), spec["template"]["spec"]))
        elif kind == "CronJob":  # Forbid: one run at a time
            assert spec.get("concurrencyPolicy") == "Forbid", name
            job = spec["jobTemplate"]["spec"]
            out.append((f"{kind}/{name}", job.get("parallelism", 1), job["template"]["spec"]))
        elif kind == "ContainerSource":  # Eventing runs it as a Deployment of one pod
            out.append((f"{kind}/{name}", 1, spec["template"]["spec"]))
    return out
