"""Every rendered object is valid for the cluster: CRD schemas, core schemas, webhook rules."""
from __future__ import annotations

import copy

import pytest

import k8s_schemas
import webhook_rules
from deploy_helpers import OVERLAYS, of_kind

# Kinds with no schema offline: checked for the fields the operator needs.
PROMETHEUS_KINDS = {"PodMonitor"}


def _errors(doc: dict, schemas_dir) -> list[str]:
    if k8s_schemas.is_knative(doc):
        return k8s_schemas.knative_errors(doc, schemas_dir) + webhook_rules.problems(doc)
    return k8s_schemas.core_errors(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid(rendered, schemas_dir, overlay):
    docs = [d for d in rendered[overlay] if d["kind"] not in PROMETHEUS_KINDS]
    problems = {f"{d['kind']}/{d['metadata']['name']}": _errors(d, schemas_dir) for d in docs}
    assert {k: v for k, v in problems.items() if v} == {}
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Service", "StatefulSet", "NetworkPolicy", "ResourceQuota", "LimitRange",
            "CronJob", "Job", "ConfigMap", "Broker", "Trigger"} <= kinds


def test_secret_template_is_a_valid_secret_with_placeholders_only(secret_template):
    assert k8s_schemas.core_errors(secret_template) == []
    values = secret_template["stringData"].values()
    assert all("CHANGE_ME" in v or v.startswith("redis://") for v in values)


def test_pod_monitor_scrapes_function_metrics_in_prod_only(rendered):
    """Only prod has it (knative/components/monitoring): without the Prometheus Operator's
    CRDs `kubectl apply -k` stops on it and exits 1."""
    assert of_kind(rendered["dev"], "PodMonitor") == []
    (monitor,) = of_kind(rendered["prod"], "PodMonitor")
    assert monitor["metadata"]["namespace"] == "kades"
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/component": "function"}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["podMetricsEndpoints"]] == [
        ("user-port", "/metrics")]


def _service(rendered):
    return copy.deepcopy(next(d for d in rendered["prod"] if d["kind"] == "Service"
                              and d["apiVersion"].startswith("serving")))


def _trigger(rendered):
    return copy.deepcopy(of_kind(rendered["prod"], "Trigger")[0])


def _misspelt_container_field(doc):
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullSecret"] = "x"


def _scale_on_service_metadata(doc):
    doc["metadata"].setdefault("annotations", {})["autoscaling.knative.dev/min-scale"] = "1"


def _window_too_short(doc):
    doc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/window"] = "2s"


def _no_broker(doc):
    del doc["spec"]["broker"]


def _bad_attribute_name(doc):
    doc["spec"]["filter"]["attributes"]["Type"] = "x"


def _two_dialects(doc):
    doc["spec"]["filters"] = [{"exact": {"type": "a"}, "prefix": {"source": "/k"}}]


def _backoff_not_iso(doc):
    doc["spec"]["delivery"] = {"retry": 3, "backoffDelay": "200ms"}


@pytest.mark.parametrize("make, break_it, message", [
    (_service, _misspelt_container_field, "'imagePullSecret' was unexpected"),
    (_service, _scale_on_service_metadata, "only allowed on spec.template.metadata.annotations"),
    (_service, _window_too_short, "window='2s' must be a duration in [6s, 3600s]"),
    (_trigger, _no_broker, "spec.broker is required"),
    (_trigger, _bad_attribute_name, "attribute name 'Type' must match"),
    (_trigger, _two_dialects, "must have exactly one dialect"),
    (_trigger, _backoff_not_iso, "'200ms' is not an ISO 8601 duration"),
])
def test_broken_manifest_is_rejected_with_the_right_message(rendered, schemas_dir, make,
                                                            break_it, message):
    doc = make(rendered)
    assert _errors(doc, schemas_dir) == []
    break_it(doc)
    errors = _errors(doc, schemas_dir)
    assert any(message in e for e in errors), errors


def test_broken_core_object_is_rejected(rendered):
    job = copy.deepcopy(of_kind(rendered["prod"], "Job")[0])
    job["spec"]["template"]["spec"]["containers"][0]["comand"] = ["kades"]
    assert any("'comand' was unexpected" in e for e in k8s_schemas.core_errors(job))


@pytest.mark.parametrize("value, ok", [("PT0.2S", True), ("PT1M30S", True), ("P1D", True),
                                       ("PT", False), ("0.2s", False), ("P", False)])
def test_iso8601_durations(value, ok):
    assert bool(webhook_rules.ISO8601_DURATION.match(value)) is ok
