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
                 ("CronJob", "kades-backup", "backup")}
FUNCTION = {"app.kubernetes.io/component": "function"}
JOB = {"app.kubernetes.io/component": "job"}
SOURCE = {"app.kubernetes.io/component": "source"}
REDIS = {"app.kubernetes.io/name": "redis"}
TIMESCALEDB = {"app.kubernetes.io/name": "timescaledb"}
# policy -> (pods it protects, peers allowed in, ports): the only ingress paths there are.
ALLOWED_INGRESS = {
    "default-deny-ingress": ({}, None, None),
    "functions-from-knative": (FUNCTION, [("namespaces", ("knative-serving", "knative-eventing",
                                                          "kourier-system", "istio-system",
                                                          "monitoring"))], None),
    "redis-from-clients": (REDIS, [FUNCTION, JOB, SOURCE], [6379, 26379]),  # + Sentinels
    "timescaledb-from-clients": (TIMESCALEDB, [FUNCTION, JOB, TIMESCALEDB], [5432]),
}
CLIENTS = ("component", ("function", "job", "source"))
# policy -> (pods it lets out, [(peers, ports)]): the only egress paths there are.
ALLOWED_EGRESS = {
    "default-deny-egress": ({}, []),
    "dns-for-all": ({}, [([("namespaces", ("kube-system",))], [53, 53])]),
    "clients-to-stores": (CLIENTS, [([REDIS], [6379, 26379]), ([TIMESCALEDB], [5432]),
                                    ([("namespaces", ("knative-eventing",))], [8080])]),
    "timescaledb-replication": (TIMESCALEDB, [([TIMESCALEDB], [5432])]),
    "internet-for-webhooks-and-rpc": (("name", ("alert-dispatch", "solana-source")),
                                      [([("public", "0.0.0.0/0"), ("public", "::/0")],
                                        [443, 80])]),
}
# Prod's Redis group (replication, Sentinel gossip): both ways, among its own pods only.
REDIS_GROUP = ("redis-group", REDIS, [6379, 26379])
# What an ipBlock to the internet must leave out: private, shared, link-local (the cloud
# metadata endpoint) and loopback ranges.
NEVER_OUT = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
             "169.254.0.0/16", "127.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128"}

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
                if env["name"].endswith("_FILE"):  # where a mounted secret lies, not the secret
                    assert env.get("value", "/").startswith("/"), f"{kind}/{name}: {env['name']}"
                    continue
                if SECRET_NAME.search(env["name"]):
                    checked += 1
                    assert "value" not in env, f"{kind}/{name}: {env['name']} is inlined"
                    assert "secretKeyRef" in env["valueFrom"], f"{kind}/{name}: {env['name']}"
    assert checked >= 10


def selected(selector: dict):
    """A pod selector as the test tables write it: labels, or (short key, values)."""
    if "matchExpressions" in selector:
        (expression,) = selector["matchExpressions"]
        assert expression["operator"] == "In", expression
        return expression["key"].removeprefix("app.kubernetes.io/"), tuple(expression["values"])
    return selector.get("matchLabels", {})


def peers_of(peers: list[dict]) -> list:
    found = []
    for peer in peers:
        if "namespaceSelector" in peer:
            assert set(peer) == {"namespaceSelector"}, peer
            found.append(("namespaces", selected(peer["namespaceSelector"])[1]))
        elif "ipBlock" in peer:
            block = peer["ipBlock"]
            left_out = set(block["except"])
            assert {r for r in NEVER_OUT if (":" in r) == (":" in block["cidr"])} <= left_out, block
            found.append(("public", block["cidr"]))
        else:
            assert set(peer) == {"podSelector"}, peer
            found.append(peer["podSelector"]["matchLabels"])
    return found


def test_network_policies_deny_by_default_and_allow_only_the_listed_paths(prod_objects):
    policies = {o["metadata"]["name"]: o["spec"] for o in prod_objects
                if o["kind"] == "NetworkPolicy"}
    assert set(policies) == set(ALLOWED_INGRESS) | set(ALLOWED_EGRESS) | {REDIS_GROUP[0]}
    group_name, group, group_ports = REDIS_GROUP
    spec = policies[group_name]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and selected(spec["podSelector"]) == group
    ((into,), (out,)) = spec["ingress"], spec["egress"]
    assert peers_of(into["from"]) == [group] and peers_of(out["to"]) == [group]
    assert [p["port"] for p in into["ports"]] == [p["port"] for p in out["ports"]] == group_ports
    for name, kind in (("default-deny-ingress", "Ingress"), ("default-deny-egress", "Egress")):
        deny = policies[name]
        assert deny["podSelector"] == {} and deny["policyTypes"] == [kind]
        assert not deny.get("ingress") and not deny.get("egress"), "a default allows nothing"
    for name, (selector, peers, ports) in ALLOWED_INGRESS.items():
        spec = policies[name]
        assert spec["policyTypes"] == ["Ingress"], name
        assert selected(spec["podSelector"]) == selector, name
        if peers is None:
            continue
        (rule,) = spec["ingress"]
        assert rule["from"], f"{name}: an empty 'from' admits everyone"
        assert peers_of(rule["from"]) == peers, name
        assert [p["port"] for p in rule.get("ports", [])] == (ports or []), name
    for name, (selector, paths) in ALLOWED_EGRESS.items():
        spec = policies[name]
        assert spec["policyTypes"] == ["Egress"], name
        assert selected(spec["podSelector"]) == selector, name
        rules = spec.get("egress", [])
        assert len(rules) == len(paths), name
        for rule, (peers, ports) in zip(rules, paths):
            assert rule.get("to"), f"{name}: an empty 'to' lets out to everywhere"
            assert rule.get("ports"), f"{name}: a rule without ports opens every port"
            assert peers_of(rule["to"]) == peers, name
            assert [p["port"] for p in rule["ports"]] == ports, name


def labels_match(selector, labels: dict) -> bool:
    if isinstance(selector, tuple):
        key, values = selector
        return labels.get(f"app.kubernetes.io/{key}") in values
    return selector.items() <= labels.items()


def test_every_client_of_a_store_is_admitted_by_its_policy(prod_objects):
    """Structurally: a pod reading the Redis or database URL carries a label the store's
    ingress policy admits and the egress policy lets out."""
    admitted = {"redis": ALLOWED_INGRESS["redis-from-clients"][1],
                "database": ALLOWED_INGRESS["timescaledb-from-clients"][1]}
    let_out = ALLOWED_EGRESS["clients-to-stores"][0]
    for kind, name, template in pod_templates(prod_objects):
        labels = template.get("metadata", {}).get("labels", {})
        names = {e["name"] for c in containers(template) for e in c.get("env", [])}
        for store, variables in (("redis", {"KADES_REDIS_URL"}),
                                 ("database", {"KADES_DATABASE_URL", "DATABASE_URL"})):
            if names & variables:
                assert any(labels_match(peer, labels) for peer in admitted[store]), (
                    f"{kind}/{name} uses {store} but no policy admits it")
                assert labels_match(let_out, labels), f"{kind}/{name} may not reach {store}"


def test_only_webhooks_and_the_rpc_source_leave_the_cluster(prod_objects):
    """The pods let out to the internet are alert-dispatch and solana-source, and they are."""
    out = ALLOWED_EGRESS["internet-for-webhooks-and-rpc"][0]
    leaving = sorted(name for kind, name, template in pod_templates(prod_objects)
                     if labels_match(out, template.get("metadata", {}).get("labels", {})))
    assert leaving == ["alert-dispatch", "solana-source"]


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
