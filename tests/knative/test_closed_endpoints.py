"""Closed endpoints in the manifests (issue 13, item 5): only api is reachable from outside,
every delivery names the audience its token is for, the EventPolicy names exactly the
project's senders, and the NetworkPolicy still admits Knative's data path."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import k8s_schemas
from kades.broker.config import load_eventing
from kades.manifests import VISIBILITY_LABEL, render_all, service_audience

ROOT = Path(__file__).resolve().parents[2]
RENDERED = render_all(ROOT)


def docs_of(folder: str) -> list[dict]:
    return [d for path, text in RENDERED.items() if str(path).startswith(folder)
            for d in yaml.safe_load_all(text) if d and "kind" in d and d["kind"] != "Kustomization"]


SERVICES = docs_of("knative/base/functions")
EVENTING = docs_of("knative/base/eventing")


def of_kind(kind: str) -> list[dict]:
    return [d for d in EVENTING if d["kind"] == kind]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s["metadata"]["name"])
def test_every_function_but_api_is_cluster_local(service):
    name, labels = service["metadata"]["name"], service["metadata"]["labels"]
    assert labels.get(VISIBILITY_LABEL) == (None if name == "api" else "cluster-local")
    env = {e["name"]: e.get("value") for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KADES_OIDC_AUDIENCE"] == service_audience("kades", name)
    # the Broker's Triggers sign as service accounts of their namespace (kades.runtime.oidc)
    assert env["KADES_OIDC_SUBJECTS"] == "system:serviceaccount:kades:*"
    assert of_kind("Trigger") and all(t["metadata"]["namespace"] == "kades"
                                      for t in of_kind("Trigger"))


def test_every_delivery_to_a_service_names_its_audience():
    destinations = [t["spec"]["subscriber"] for t in of_kind("Trigger")]
    destinations += [d["spec"]["delivery"]["deadLetterSink"] for d in EVENTING
                     if "deadLetterSink" in (d["spec"].get("delivery") or {})]
    assert destinations
    for dest in destinations:
        assert dest["audience"] == service_audience("kades", dest["ref"]["name"]), dest


def test_the_eventpolicy_names_exactly_the_projects_senders():
    (policy,) = of_kind("EventPolicy")
    assert policy["spec"]["to"] == [{"ref": {"apiVersion": "eventing.knative.dev/v1",
                                             "kind": "Broker", "name": "kades"}}]
    named = {(f["ref"]["kind"], f["ref"]["name"]) if "ref" in f else ("sub", f["sub"])
             for f in policy["spec"]["from"]}
    sources = {(d["kind"], d["metadata"]["name"]) for d in EVENTING
               if d["apiVersion"].startswith("sources.knative.dev/")
               and d["spec"]["sink"]["ref"] == {"apiVersion": "eventing.knative.dev/v1",
                                                "kind": "Broker", "name": "kades"}}
    replies = {("Trigger", t["metadata"]["name"]) for t in of_kind("Trigger")}
    accounts = {("sub", f"system:serviceaccount:kades:{s['spec']['template']['spec']['serviceAccountName']}")
                for s in SERVICES}
    assert named == sources | replies | accounts
    assert all("*" not in f.get("sub", "") for f in policy["spec"]["from"])  # no wildcards


def test_every_service_account_a_service_runs_as_exists():
    declared = {d["metadata"]["name"] for d in yaml.safe_load_all(
        (ROOT / "knative/base/320-serviceaccounts.yaml").read_text())}
    used = {s["spec"]["template"]["spec"]["serviceAccountName"] for s in SERVICES}
    assert used == declared == {"kades-api", "kades-function"}


def test_the_eventpolicy_matches_its_crd(schemas_dir):
    (policy,) = of_kind("EventPolicy")
    assert k8s_schemas.knative_errors(policy, schemas_dir) == []
    bad = {**policy, "spec": {**policy["spec"], "form": policy["spec"]["from"]}}
    assert k8s_schemas.knative_errors(bad, schemas_dir)  # a misspelt field is caught


@pytest.mark.parametrize("doc", [d for d in EVENTING if d["kind"] == "Trigger"] + SERVICES,
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_audience_and_visibility_are_valid_for_the_crds(doc, schemas_dir):
    assert k8s_schemas.knative_errors(doc, schemas_dir) == []


def test_the_development_broker_reads_the_eventing_folder_with_the_policy_in_it():
    config = load_eventing(ROOT / "eventing")
    assert config.triggers  # an EventPolicy is skipped, not an error


def test_network_policy_still_admits_knatives_data_path():
    policies = list(yaml.safe_load_all((ROOT / "knative/base/300-networkpolicies.yaml").read_text()))
    (functions,) = [p for p in policies if p["metadata"]["name"] == "functions-from-knative"]
    allowed = {v for rule in functions["spec"]["ingress"] for peer in rule["from"]
               for expr in peer["namespaceSelector"]["matchExpressions"] for v in expr["values"]}
    # activator (knative-serving), Broker filter (knative-eventing), internal gateway (kourier/istio)
    assert {"knative-serving", "knative-eventing"} <= allowed
    assert {"kourier-system", "istio-system"} & allowed
