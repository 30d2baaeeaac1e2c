"""Every rendered object carries Kubernetes' recommended labels, and no selector moved."""
import re

import pytest
import yaml

from deploy_helpers import OVERLAYS, ROOT

RECOMMENDED = tuple(f"app.kubernetes.io/{key}" for key in
                    ("name", "instance", "version", "component", "part-of", "managed-by"))
# a label value: 63 characters at most, alphanumeric at both ends
VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_has_the_recommended_labels(rendered, overlay):
    missing = {f"{d['kind']}/{d['metadata']['name']}":
               [k for k in RECOMMENDED if k not in (d["metadata"].get("labels") or {})]
               for d in rendered[overlay]}
    assert {what: keys for what, keys in missing.items() if keys} == {}
    for doc in rendered[overlay]:
        labels = doc["metadata"]["labels"]
        assert all(VALUE.match(labels[k]) for k in RECOMMENDED), labels
        assert labels["app.kubernetes.io/part-of"] == "kades"
        assert labels["app.kubernetes.io/instance"] == f"kades-{overlay}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_version_is_the_images_tag(rendered, overlay):
    tags = {image["newTag"] for image in yaml.safe_load(
        (ROOT / "knative" / "overlays" / overlay / "kustomization.yaml").read_text())["images"]}
    versions = {d["metadata"]["labels"]["app.kubernetes.io/version"] for d in rendered[overlay]}
    assert versions == tags and len(tags) == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_functions_stores_and_jobs_are_named_for_themselves(rendered, overlay):
    by_kind = {}
    for doc in rendered[overlay]:
        labels = doc["metadata"]["labels"]
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = (
            labels["app.kubernetes.io/name"], labels["app.kubernetes.io/component"])
    knative_services = {d["metadata"]["name"] for d in rendered[overlay]
                        if d["apiVersion"] == "serving.knative.dev/v1"}
    assert knative_services and all(by_kind["Service"][n] == (n, "function") for n in knative_services)
    assert by_kind["StatefulSet"] == {"redis": ("redis", "state"),
                                      "timescaledb": ("timescaledb", "database")}
    assert by_kind["Job"]["kades-migrate"] == ("kades-migrate", "job")
    assert {n: v[0] for n, v in by_kind["CronJob"].items()} == {
        "kades-backup": "kades-backup", "kades-retention": "kades-retention"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_left_selectors_and_pod_templates_alone(rendered, overlay):
    """includeSelectors false: a StatefulSet's selector is immutable and a NetworkPolicy's
    would stop matching; a Knative Service's template label would make a new Revision. The
    labels only kustomize adds must not be found there."""
    added = {f"app.kubernetes.io/{key}" for key in ("instance", "version", "managed-by")}

    def walk(node, path=()):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("selector", "podSelector", "matchLabels") or path[-2:] == ("template", "metadata"):
                    text = yaml.safe_dump(value)
                    assert not any(k in text for k in added), (path, key, value)
                walk(value, path + (key,))
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    for doc in rendered[overlay]:
        walk(doc.get("spec") or {})
