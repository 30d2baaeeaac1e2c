"""The deployment, read structurally: no secret value in any manifest under knative/ or
eventing/, secrets reach containers only by reference, NetworkPolicies deny by default and
allow only the listed paths, containers run as non-root with a read-only root filesystem
where the image allows it."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|PEPPER|_KEY$|DATABASE_URL|REDIS_URL")
# RPC providers put their key in the URL's query: a ConfigMap may name only a keyless endpoint.
KEY_IN_QUERY = re.compile(r"[?&](api[-_]?key|token|key)=", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^/\s:@]*:([^@\s/]+)@")
PLACEHOLDER = "CHANGE_ME"
# Images that write below their root (PostgreSQL's run directory, pg_dump's temp files).
WRITABLE_ROOT = {("StatefulSet", "timescaledb", "timescaledb"),
                 ("StatefulSet", "timescaledb", "clone-standby"),
                 ("CronJob", "kades-backup", "backup")}
FUNCTION = {"app.kubernetes.io/component": "function"}
# policy -> (pods it protects, peers allowed in, ports): the only ingress paths there are.
ALLOWED_INGRESS = {
    "default-deny-ingress": ({}, None, None),
    "functions-from-knative": (FUNCTION, [("namespaces", ("knative-serving", "knative-eventing",
                                                          "kourier-system", "istio-system",
                                                          "monitoring"))], None),
    "redis-from-clients": ({"app.kubernetes.io/name": "redis"},
                           [FUNCTION, {"app.kubernetes.io/component": "job"},
                            {"app.kubernetes.io/component": "source"}], [6379]),
    "timescaledb-from-clients": ({"app.kubernetes.io/name": "timescaledb"},
                                 [FUNCTION, {"app.kubernetes.io/component": "job"},
                                  {"app.kubernetes.io/name": "timescaledb"}], [5432]),
}


def manifest_objects() -> list[tuple[Path, dict]]:
    out = []
    for folder in ("knative", "eventing"):
        for path in sorted((ROOT / folder).rglob("*.y*ml")):
            out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def strings(value):
    if isinstance(value, dict):
        for inner in value.values():
            yield from strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from strings(inner)
    elif isinstance(value, str):
        yield value


def pod_templates(objects):
    """(kind, name, pod template) of every workload."""
    for obj in objects:
        kind, spec = obj["kind"], obj.get("spec", {})
        if kind == "CronJob":
            yield kind, obj["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]
        elif kind in ("StatefulSet", "Deployment", "Job", "ContainerSource") or (
                kind == "Service" and obj["apiVersion"].startswith("serving.knative.dev")):
            yield kind, obj["metadata"]["name"], spec["template"]


def containers(template):
    spec = template["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_no_secret_value_in_any_manifest(prod_objects):
    objects = manifest_objects()
    assert len(objects) > 20
    for path, obj in objects + [(Path("rendered prod"), o) for o in prod_objects]:
        if obj.get("kind") == "Secret":
            assert path.name == "secret.template.yaml", f"a Secret is committed in {path}"
            for name, value in {**obj.get("stringData", {}), **obj.get("data", {})}.items():
                assert PLACEHOLDER in value or not URL_PASSWORD.search(value) and name.endswith(
                    "-url"), f"{path}: {name} holds a value, not a placeholder"
            continue
        for text in strings(obj):
            match = URL_PASSWORD.search(text)
            assert not match or match.group(1) == PLACEHOLDER, f"a password in a URL in {path}"
        if obj.get("kind") == "ConfigMap":
            data = obj.get("data", {})
            assert not any(SECRET_NAME.search(k.upper()) for k in data), path
            assert not any(KEY_IN_QUERY.search(str(v)) for v in data.values()), path


def test_secrets_reach_containers_only_by_reference(prod_objects):
    checked = 0
    for kind, name, template in pod_templates(prod_objects):
        for container in containers(template):
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    checked += 1
                    assert "value" not in env, f"{kind}/{name}: {env['name']} is inlined"
                    assert "secretKeyRef" in env["valueFrom"], f"{kind}/{name}: {env['name']}"
    assert checked >= 10


def test_network_policies_deny_by_default_and_allow_only_the_listed_paths(prod_objects):
    policies = {o["metadata"]["name"]: o["spec"] for o in prod_objects
                if o["kind"] == "NetworkPolicy"}
    assert set(policies) == set(ALLOWED_INGRESS)
    deny = policies["default-deny-ingress"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"]
    assert not deny.get("ingress"), "the default policy allows nothing"
    for name, spec in policies.items():
        selector, peers, ports = ALLOWED_INGRESS[name]
        assert spec["podSelector"].get("matchLabels", {}) == selector, name
        assert "Egress" not in spec["policyTypes"] or spec.get("egress"), name
        if peers is None:
            continue
        (rule,) = spec["ingress"]
        assert rule["from"], f"{name}: an empty 'from' admits everyone"
        found = []
        for peer in rule["from"]:
            if "namespaceSelector" in peer:
                (expression,) = peer["namespaceSelector"]["matchExpressions"]
                assert expression["operator"] == "In"
                found.append(("namespaces", tuple(expression["values"])))
            else:
                assert set(peer) == {"podSelector"}, f"{name}: {peer}"
                found.append(peer["podSelector"]["matchLabels"])
        assert found == peers, name
        assert [p["port"] for p in rule.get("ports", [])] == (ports or []), name


def test_every_client_of_a_store_is_admitted_by_its_policy(prod_objects):
    """Structurally: a pod reading the Redis or database URL carries a label the policy admits."""
    admitted = {"redis": ALLOWED_INGRESS["redis-from-clients"][1],
                "database": ALLOWED_INGRESS["timescaledb-from-clients"][1]}
    for kind, name, template in pod_templates(prod_objects):
        labels = template.get("metadata", {}).get("labels", {})
        names = {e["name"] for c in containers(template) for e in c.get("env", [])}
        for store, variables in (("redis", {"KADES_REDIS_URL"}),
                                 ("database", {"KADES_DATABASE_URL", "DATABASE_URL"})):
            if names & variables:
                assert any(peer.items() <= labels.items() for peer in admitted[store]), (
                    f"{kind}/{name} uses {store} but no policy admits it")


def test_containers_run_as_non_root_with_a_read_only_root(prod_objects):
    seen = 0
    for kind, name, template in pod_templates(prod_objects):
        pod = template["spec"].get("securityContext", {})
        for container in containers(template):
            seen += 1
            context = container.get("securityContext", {})
            where = (kind, name, container.get("name"))
            assert context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert pod.get("runAsUser", 1) != 0 and context.get("runAsUser", 1) != 0, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert context.get("privileged") is not True, where
            if where not in WRITABLE_ROOT:
                assert context.get("readOnlyRootFilesystem") is True, where
    assert seen >= 13
