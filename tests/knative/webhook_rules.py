"""Rules Knative enforces only in its admission webhooks (Go code), not in the CRD schemas.

From knative/serving pkg/apis/autoscaling (annotation validation), pkg/apis/serving
(containerConcurrency, timeoutSeconds, rollout-duration) and knative/eventing
pkg/apis/eventing/v1 (Trigger, filters) and pkg/apis/duck/v1 (DeliverySpec), with the
defaults of config-autoscaler and config-defaults. `problems(doc)` lists every violation.
"""
from __future__ import annotations

import re

AUTOSCALING = "autoscaling.knative.dev/"
SERVING_KINDS = ("Service", "Configuration", "Route")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")
ISO8601_DURATION = re.compile(
    r"^P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$")
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s|ms))+$")
FILTER_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
MAX_TIMEOUT_S = 600          # config-defaults max-revision-timeout-seconds
MAX_CONTAINER_CONCURRENCY = 1000


def go_duration_s(text: str) -> float | None:
    if not GO_DURATION.match(text):
        return None
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(h|ms|m|s)", text))


def _number(value: str, kind=float):
    try:
        return kind(value)
    except ValueError:
        return None


def _in_range(name, value, low, high, kind=float) -> list[str]:
    number = _number(value, kind)
    if number is None or not low <= number <= high:
        return [f"{name}={value!r} must be a{'n integer' if kind is int else ' number'} "
                f"in [{low}, {high}]"]
    return []


def _duration_range(name, value, low_s, high_s) -> list[str]:
    seconds = go_duration_s(value)
    if seconds is None or not low_s <= seconds <= high_s:
        return [f"{name}={value!r} must be a duration in [{low_s}s, {high_s}s]"]
    return []


def autoscaling_problems(annotations: dict) -> list[str]:
    a = {k[len(AUTOSCALING):]: str(v) for k, v in annotations.items() if k.startswith(AUTOSCALING)}
    out = []
    for key in ("min-scale", "max-scale", "initial-scale"):
        if key in a:
            out += _in_range(key, a[key], 0, 10**9, int)
    if "min-scale" in a and "max-scale" in a and not out:
        if int(a["max-scale"]) and int(a["min-scale"]) > int(a["max-scale"]):
            out.append(f"min-scale={a['min-scale']} is above max-scale={a['max-scale']}")
    if "metric" in a and a["metric"] not in ("concurrency", "rps"):
        out.append(f"metric={a['metric']!r} must be concurrency or rps (KPA)")
    if "target" in a:
        out += _in_range("target", a["target"], 0.01, float("inf"))
    if "target-utilization-percentage" in a:
        out += _in_range("target-utilization-percentage", a["target-utilization-percentage"], 1, 100)
    if "window" in a:
        out += _duration_range("window", a["window"], 6, 3600)
    if "panic-window-percentage" in a:
        out += _in_range("panic-window-percentage", a["panic-window-percentage"], 1, 100)
    if "panic-threshold-percentage" in a:
        out += _in_range("panic-threshold-percentage", a["panic-threshold-percentage"], 110, 1000)
    if "scale-to-zero-pod-retention-period" in a:
        out += _duration_range("scale-to-zero-pod-retention-period",
                               a["scale-to-zero-pod-retention-period"], 0, 3600)
    return out


def _serving_problems(doc: dict) -> list[str]:
    out = []
    top = (doc.get("metadata") or {}).get("annotations") or {}
    if any(k.startswith(AUTOSCALING) for k in top):
        out.append("autoscaling annotations are only allowed on spec.template.metadata.annotations")
    if "serving.knative.dev/rollout-duration" in top:
        out += _duration_range("rollout-duration", top["serving.knative.dev/rollout-duration"],
                               0, 10**6)
    template = (doc.get("spec") or {}).get("template") or {}
    out += autoscaling_problems((template.get("metadata") or {}).get("annotations") or {})
    spec = template.get("spec") or {}
    if "containerConcurrency" in spec:
        out += _in_range("containerConcurrency", str(spec["containerConcurrency"]),
                         0, MAX_CONTAINER_CONCURRENCY, int)
    if "timeoutSeconds" in spec:
        out += _in_range("timeoutSeconds", str(spec["timeoutSeconds"]), 0, MAX_TIMEOUT_S, int)
    return out


def delivery_problems(delivery: dict | None, where: str) -> list[str]:
    if not delivery:
        return []
    out = []
    if "retry" in delivery and not (isinstance(delivery["retry"], int) and delivery["retry"] >= 0):
        out.append(f"{where}.retry must be an integer >= 0")
    if delivery.get("backoffPolicy", "exponential") not in ("linear", "exponential"):
        out.append(f"{where}.backoffPolicy must be linear or exponential")
    if "backoffDelay" in delivery and not ISO8601_DURATION.match(str(delivery["backoffDelay"])):
        out.append(f"{where}.backoffDelay {delivery['backoffDelay']!r} is not an ISO 8601 duration")
    return out


def _filter_problems(entry: dict, where: str) -> list[str]:
    dialects = [k for k in entry if k in FILTER_DIALECTS]
    if len(dialects) != 1 or len(entry) != 1:
        return [f"{where} must have exactly one dialect of {FILTER_DIALECTS}, has {sorted(entry)}"]
    dialect, body = dialects[0], entry[dialects[0]]
    if dialect in ("all", "any"):
        return [p for i, sub in enumerate(body or []) for p in _filter_problems(sub, f"{where}.{dialect}[{i}]")]
    if dialect == "not":
        return _filter_problems(body or {}, f"{where}.not")
    if dialect == "cesql":
        return []
    return [f"{where}.{dialect}: attribute name {name!r} must match {ATTRIBUTE_NAME.pattern}"
            for name in body or {} if not ATTRIBUTE_NAME.match(name)]


def _trigger_problems(doc: dict) -> list[str]:
    spec = doc.get("spec") or {}
    out = [] if spec.get("broker") else ["spec.broker is required"]
    if not spec.get("subscriber"):
        out.append("spec.subscriber is required")
    attributes = (spec.get("filter") or {}).get("attributes") or {}
    out += [f"spec.filter.attributes: attribute name {name!r} must match {ATTRIBUTE_NAME.pattern}"
            for name in attributes if not ATTRIBUTE_NAME.match(name)]
    for i, entry in enumerate(spec.get("filters") or []):
        out += _filter_problems(entry, f"spec.filters[{i}]")
    return out + delivery_problems(spec.get("delivery"), "spec.delivery")


def problems(doc: dict) -> list[str]:
    """Every webhook-only rule `doc` breaks; [] for kinds these rules do not cover."""
    kind, group = doc.get("kind"), doc.get("apiVersion", "").split("/")[0]
    if group == "serving.knative.dev" and kind in SERVING_KINDS:
        return _serving_problems(doc)
    if group == "eventing.knative.dev" and kind == "Trigger":
        return _trigger_problems(doc)
    if group == "eventing.knative.dev" and kind == "Broker":
        return delivery_problems((doc.get("spec") or {}).get("delivery"), "spec.delivery")
    return []
