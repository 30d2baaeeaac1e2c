"""Everything KADES runs fits its ResourceQuota at once, in both overlays: every Knative Service
at its max-scale with its queue-proxy, every StatefulSet at its replicas, the jobs and the
source. Requests and limits of cpu and memory, and the number of pods.

How a pod is counted, as the quota admission does: a container without a request or limit
gets the LimitRange's defaultRequest / default; a pod counts the sum of its containers, or
its largest init container where that is more.

queue-proxy's share: Knative adds it to every function pod and sets only its cpu request
(config-deployment's `queue-sidecar-cpu-request`, 25m by default; the other
queue-sidecar-* settings are unset), so it is counted as a container with that request and
the LimitRange's defaults for everything else. A cluster that sets queue-sidecar-* in
config-deployment must count those instead.
"""
from __future__ import annotations

import re
from fractions import Fraction

import pytest

from deploy_helpers import OVERLAYS, QUEUE_PROXY, of_kind, workloads

UNITS = {"": 1, "m": Fraction(1, 1000), "k": 1000, "M": 1000**2, "G": 1000**3,
         "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


def quantity(text) -> Fraction:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi|Ti)?", str(text)).groups()
    return Fraction(number) * UNITS[unit or ""]


def _named(docs, kind, name):
    (doc,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def _container(container: dict, limit_range: dict) -> dict[str, Fraction]:
    resources = container.get("resources", {})
    out = {}
    for key in KEYS:
        kind, resource = key.split(".")
        value = resources.get(kind, {}).get(resource)
        if value is None:
            value = limit_range["defaultRequest" if kind == "requests" else "default"][resource]
        out[key] = quantity(value)
    return out


def _pod(pod: dict, limit_range: dict) -> dict[str, Fraction]:
    containers = [_container(c, limit_range) for c in pod["containers"]]
    inits = [_container(c, limit_range) for c in pod.get("initContainers", [])]
    return {key: max([sum(c[key] for c in containers)] + [c[key] for c in inits]) for key in KEYS}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_at_max_scale_fits_the_quota(rendered, overlay):
    docs = rendered[overlay]
    hard = _named(docs, "ResourceQuota", "kades-quota")["spec"]["hard"]
    (limit_range,) = _named(docs, "LimitRange", "kades-limits")["spec"]["limits"]
    found = workloads(docs)
    names = {w.split("/")[0] for w, _, _ in found}
    assert {"Service", "StatefulSet", "Job", "CronJob", "ContainerSource"} <= names
    total = dict.fromkeys(KEYS, Fraction(0))
    for _, count, pod in found:
        for key, value in _pod(pod, limit_range).items():
            total[key] += count * value
    summary = {k: f"{float(v) if k.endswith('cpu') else float(v) / 1024**3:.2f}"
               f"{'' if k.endswith('cpu') else 'Gi'} of {hard[k]}" for k, v in total.items()}
    assert all(total[key] <= quantity(hard[key]) for key in KEYS), summary
    assert sum(count for _, count, _ in found) <= int(hard["pods"])


def test_a_pod_counts_defaults_and_its_largest_init_container():
    limit_range = {"default": {"cpu": "500m", "memory": "512Mi"},
                   "defaultRequest": {"cpu": "25m", "memory": "64Mi"}}
    pod = {"containers": [{"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}},
                          QUEUE_PROXY],
           "initContainers": [{"resources": {"requests": {"cpu": "3"}}}]}
    counted = _pod(pod, limit_range)
    assert counted["requests.cpu"] == 3  # the init container's 3 > 1 + 0.025
    assert counted["requests.memory"] == 2 * 64 * 1024**2
    assert counted["limits.cpu"] == Fraction(5, 2) and counted["limits.memory"] == 1024**3
