"""KADES's senders can present the token the Broker's EventPolicy requires (issue 13, item 5):
every Service (api and functions post extra events through KADES_SINK_TOKEN_FILE) mounts a
projected service-account token for the Broker's audience, checked against the Knative
Service CRD; solana-source's ContainerSource sinks to that Broker, so its SinkBinding mounts
the token for the same audience at /oidc/token (kades.runtime.tokenfile)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import k8s_schemas
from kades.audiences import broker_audience
from kades.manifests import BROKER_TOKEN_VOLUME, render_all

ROOT = Path(__file__).resolve().parents[2]
RENDERED = render_all(ROOT)
SERVICES = [d for path, text in RENDERED.items() if str(path).startswith("knative/base/functions")
            for d in yaml.safe_load_all(text) if d and d.get("kind") == "Service"]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s["metadata"]["name"])
def test_every_service_posts_with_a_token_for_the_brokers_audience(service, schemas_dir):
    spec = service["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == BROKER_TOKEN_VOLUME]
    (projection,) = volume["projected"]["sources"]
    token = projection["serviceAccountToken"]
    assert token["audience"] == broker_audience("kades", "kades")
    assert token["expirationSeconds"] >= 600  # the API server's minimum
    container = spec["containers"][0]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == BROKER_TOKEN_VOLUME]
    assert mount["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KADES_SINK_TOKEN_FILE"] == f"{mount['mountPath']}/{token['path']}"
    assert k8s_schemas.knative_errors(service, schemas_dir) == []


def test_the_token_is_for_the_broker_the_eventpolicy_guards():
    policy = next(d for d in yaml.safe_load_all((ROOT / "eventing/500-eventpolicy.yaml").read_text())
                  if d and d["kind"] == "EventPolicy")
    (target,) = policy["spec"]["to"]
    assert broker_audience(policy["metadata"]["namespace"], target["ref"]["name"]) == \
        broker_audience("kades", "kades")


def test_solana_sources_sinkbinding_token_is_for_the_same_broker():
    (container_source,) = [d for d in yaml.safe_load_all((ROOT / "eventing/300-solana-source.yaml").read_text())
                           if d and d["kind"] == "ContainerSource"]
    assert container_source["spec"]["sink"]["ref"] == {
        "apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "kades"}
    assert container_source["metadata"]["namespace"] == "kades"
