"""Prod's Redis is replicated under Sentinel and every client follows it: three pods of
StatefulSet redis (a Redis and a Sentinel each, quorum 2), their Services and disruption
budget, the Sentinels in every function's settings, and nothing left pointing at the base's
single Redis. The init script that writes each pod's configuration runs here too."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy_helpers import ROOT, of_kind
from kades.clients import sentinel_addresses
from kades.dev import services as devservices

SCRIPT = ROOT / "knative" / "overlays" / "prod" / "redis" / "configure.sh"
DOMAIN = "redis-headless.kades.svc.cluster.local"


def _named(docs, kind, name):
    (doc,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def _pod(statefulset):
    return statefulset["spec"]["template"]["spec"]


def _containers(pod):
    return {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}


def _config(docs):
    return _named(docs, "ConfigMap", "kades-config")["data"]


def test_prod_runs_three_redis_pods_each_with_a_sentinel(rendered):
    redis = _named(rendered["prod"], "StatefulSet", "redis")
    pod = _pod(redis)
    containers = _containers(pod)
    assert redis["spec"]["replicas"] == 3 and redis["spec"]["serviceName"] == "redis-headless"
    assert set(containers) == {"configure", "redis", "sentinel"}
    assert [c["name"] for c in pod["initContainers"]] == ["configure"]
    assert containers["redis"]["args"] == ["/conf/redis.conf"]
    assert containers["sentinel"]["args"] == ["/data/sentinel/sentinel.conf", "--sentinel"]
    env = {e["name"]: e for e in containers["configure"]["env"]}
    assert env["REDIS_NODES"]["value"] == str(redis["spec"]["replicas"])
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # the script it runs is the one in the repository, in a ConfigMap of this render
    (volume,) = [v for v in pod["volumes"] if v["name"] == "scripts"]
    scripts = _named(rendered["prod"], "ConfigMap", volume["configMap"]["name"])
    assert scripts["data"]["configure.sh"] == SCRIPT.read_text()
    # the dev overlay keeps the base's one Redis, without Sentinels
    dev = _named(rendered["dev"], "StatefulSet", "redis")
    assert dev["spec"]["replicas"] == 1 and set(_containers(_pod(dev))) == {"redis"}
    assert "KADES_REDIS_SENTINELS" not in _config(rendered["dev"])


def test_the_quorum_is_a_majority_and_a_drain_keeps_it(rendered):
    redis = _named(rendered["prod"], "StatefulSet", "redis")
    replicas = redis["spec"]["replicas"]
    (quorum,) = re.findall(r"sentinel monitor \$\{MASTER\} \$\{primary\} 6379 (\d+)",
                           SCRIPT.read_text())
    assert replicas // 2 < int(quorum) < replicas
    budget = _named(rendered["prod"], "PodDisruptionBudget", "redis")
    assert budget["spec"]["maxUnavailable"] == 1 and replicas - 1 >= int(quorum)
    labels = redis["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_pods_have_stable_names_and_the_sentinels_a_service(rendered):
    redis = _named(rendered["prod"], "StatefulSet", "redis")
    labels = redis["spec"]["template"]["metadata"]["labels"]
    headless = _named(rendered["prod"], "Service", "redis-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    sentinels = _named(rendered["prod"], "Service", "redis-sentinel")
    for service in (headless, sentinels):
        assert service["spec"]["selector"].items() <= labels.items()
    ports = {c["name"]: {p["name"]: p["containerPort"] for p in c.get("ports", [])}
             for c in _containers(_pod(redis)).values()}
    assert ports["redis"] == {"redis": 6379} and ports["sentinel"] == {"sentinel": 26379}
    assert {p["targetPort"] for p in headless["spec"]["ports"]} == {"redis", "sentinel"}


def test_every_redis_container_is_locked_down_and_sized(rendered):
    pod = _pod(_named(rendered["prod"], "StatefulSet", "redis"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    for name, container in _containers(pod).items():
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name


def _workloads(docs):
    """(kind/name, containers) of everything that runs KADES code."""
    out = {}
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        pod = spec.get("template", {}).get("spec")
        if pod and doc["metadata"]["name"] != "redis" and doc["kind"] != "StatefulSet":
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = pod["containers"]
    return out


def _settings_of(container, config: dict, configmap: str = "kades-config") -> dict[str, str]:
    """The KADES_* variables a container gets, from its env and the ConfigMap it reads."""
    values = {}
    for source in container.get("envFrom", []):
        if source.get("configMapRef", {}).get("name") == configmap:
            values |= config
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("configMapKeyRef")
        if ref and ref["name"] == configmap:
            values[env["name"]] = config[ref["key"]]
        elif "valueFrom" in env:
            values[env["name"]] = "<secret>"
        else:
            values[env["name"]] = env.get("value", "")
    return values


def test_every_redis_client_in_prod_asks_the_sentinels(rendered):
    docs = rendered["prod"]
    config = _config(docs)
    redis = _named(docs, "StatefulSet", "redis")
    expected = [(f"redis-{i}.redis-headless.kades.svc", 26379)
                for i in range(redis["spec"]["replicas"])]
    assert sentinel_addresses(config["KADES_REDIS_SENTINELS"]) == expected
    assert re.search(rf"^MASTER={config['KADES_REDIS_SENTINEL_MASTER']}$", SCRIPT.read_text(),
                     re.M)
    clients = {what: [_settings_of(c, config) for c in containers]
               for what, containers in _workloads(docs).items()}
    using_redis = {what for what, settings in clients.items()
                   if any("KADES_REDIS_URL" in s for s in settings)}
    functions = {f"Service/{d['metadata']['name']}" for d in docs
                 if d["apiVersion"] == "serving.knative.dev/v1" and d["kind"] == "Service"}
    assert functions | {"ContainerSource/solana-source"} <= using_redis
    for what in using_redis:
        for settings in clients[what]:
            if "KADES_REDIS_URL" in settings:
                sentinels = settings.get("KADES_REDIS_SENTINELS")
                assert sentinels == config["KADES_REDIS_SENTINELS"], what
                assert settings.get("KADES_REDIS_SENTINEL_MASTER") == "kades", what
    # Functions acknowledge an event once a replica has it, and one of the two replicas may be
    # away (a drain, a restart) without every event turning into a 503.
    waits = int(config["KADES_REDIS_WAIT_REPLICAS"])
    assert 1 <= waits <= redis["spec"]["replicas"] - 2
    for what in functions:
        assert {s.get("KADES_REDIS_WAIT_REPLICAS") for s in clients[what]} == {str(waits)}, what


def test_nothing_in_prod_points_at_the_single_redis(rendered):
    docs = rendered["prod"]
    assert "redis" not in {s["metadata"]["name"] for s in of_kind(docs, "Service")}
    text = yaml.safe_dump_all(docs)
    # the base's Service by any of its names, as a host
    assert not re.search(r"(?<![-.\w])redis(\.kades(\.svc(\.cluster\.local)?)?)?:6379", text)
    assert not re.search(r"//redis(\.kades(\.svc(\.cluster\.local)?)?)?[:/]", text)


def _policy(docs, name):
    return _named(docs, "NetworkPolicy", name)["spec"]


def _ports(rules):
    return {p["port"] for rule in rules for p in rule.get("ports", [])}


def test_clients_reach_the_sentinels_and_the_group_reaches_itself(rendered):
    docs = rendered["prod"]
    inbound = _policy(docs, "redis-from-clients")
    assert {6379, 26379} <= _ports(inbound["ingress"])
    outbound = [rule for rule in _policy(docs, "clients-to-stores")["egress"]
                if any(t.get("podSelector", {}).get("matchLabels") ==
                       {"app.kubernetes.io/name": "redis"} for t in rule["to"])]
    assert {6379, 26379} <= _ports(outbound)
    group = _policy(docs, "redis-group")
    assert group["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "redis"}
    assert set(group["policyTypes"]) == {"Ingress", "Egress"}
    assert _ports(group["ingress"]) == _ports(group["egress"]) == {6379, 26379}


# --- the init script --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_cli() -> Path:
    """A directory holding redis-cli, for the script's PATH."""
    found = shutil.which("redis-cli")
    if found:
        return Path(found).parent
    try:
        folder = Path(devservices.redis_binary()).parent
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))
    if not (folder / "redis-cli").exists():
        pytest.skip(f"no redis-cli beside {folder / 'redis-server'}")
    return folder


def _configure(tmp_path: Path, redis_cli: Path, pod: str, **more_env: str) -> tuple[str, str]:
    """Run configure.sh for `pod` (no peer answers here); its redis.conf and sentinel.conf."""
    conf, data = tmp_path / "conf", tmp_path / "data"
    conf.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    env = {"PATH": f"{redis_cli}:{os.environ['PATH']}", "POD_NAME": pod, "NAMESPACE": "kades",
           "REDIS_NODES": "3", "REDIS_MEMORY_LIMIT_MI": "1024", "CONF_DIR": str(conf),
           "DATA_DIR": str(data), "RESOLV_CONF": str(tmp_path / "no-resolv.conf"), **more_env}
    done = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return (conf / "redis.conf").read_text(), (data / "sentinel" / "sentinel.conf").read_text()


@pytest.mark.slow
def test_the_first_start_makes_redis_0_the_primary_with_the_append_only_file(tmp_path, redis_cli):
    redis_conf, sentinel_conf = _configure(tmp_path, redis_cli, "redis-0")
    assert "appendonly yes" in redis_conf.splitlines()
    assert {"maxmemory 768mb", "maxmemory-policy noeviction"} <= set(redis_conf.splitlines())
    assert "replicaof" not in redis_conf
    assert f"replica-announce-ip redis-0.{DOMAIN}" in redis_conf
    assert f"sentinel monitor kades redis-0.{DOMAIN} 6379 2" in sentinel_conf
    myid = hashlib.sha1(b"redis-0").hexdigest()
    assert f"sentinel myid {myid}" in sentinel_conf.splitlines()


@pytest.mark.slow
def test_a_replica_follows_redis_0_and_a_restart_follows_the_last_known_primary(
        tmp_path, redis_cli):
    redis_conf, _ = _configure(tmp_path / "one", redis_cli, "redis-1")
    assert f"replicaof redis-0.{DOMAIN} 6379" in redis_conf.splitlines()
    # The whole group restarts after a failover had made redis-2 the primary: redis-0 finds
    # no Sentinel answering and follows what its own Sentinel last monitored.
    data = tmp_path / "zero" / "data" / "sentinel"
    data.mkdir(parents=True)
    (data / "sentinel.conf").write_text(f"port 26379\nsentinel monitor kades redis-2.{DOMAIN} "
                                        "6379 2\nsentinel config-epoch kades 1\n")
    redis_conf, sentinel_conf = _configure(tmp_path / "zero", redis_cli, "redis-0")
    assert f"replicaof redis-2.{DOMAIN} 6379" in redis_conf.splitlines()
    assert f"sentinel monitor kades redis-2.{DOMAIN} 6379 2" in sentinel_conf


@pytest.mark.slow
def test_the_names_use_the_cluster_domain_of_the_pod(tmp_path, redis_cli):
    """A cluster whose DNS domain is not cluster.local: the names come from the search list
    the kubelet writes into every pod's resolv.conf."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search kades.svc.corp.example svc.corp.example corp.example\n"
                      "nameserver 10.96.0.10\noptions ndots:5\n")
    redis_conf, sentinel_conf = _configure(tmp_path, redis_cli, "redis-1",
                                           RESOLV_CONF=str(resolv))
    domain = "redis-headless.kades.svc.corp.example"
    assert f"replica-announce-ip redis-1.{domain}" in redis_conf.splitlines()
    assert f"replicaof redis-0.{domain} 6379" in redis_conf.splitlines()
    assert f"sentinel announce-ip redis-1.{domain}" in sentinel_conf.splitlines()


def _gib(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi|Ti)", quantity).groups()
    return float(number) * {"Mi": 1 / 1024, "Gi": 1, "Ti": 1024}[unit]


def test_the_volumes_of_prod_fit_its_quota(rendered):
    """Three Redis volumes more: the claims still fit the quota's count and storage."""
    docs = rendered["prod"]
    quota = _named(docs, "ResourceQuota", "kades-quota")["spec"]["hard"]
    claims = [c["spec"]["resources"]["requests"]["storage"]
              for c in of_kind(docs, "PersistentVolumeClaim")]
    for statefulset in of_kind(docs, "StatefulSet"):
        claims += [t["spec"]["resources"]["requests"]["storage"]
                   for t in statefulset["spec"].get("volumeClaimTemplates", [])
                   for _ in range(statefulset["spec"]["replicas"])]
    assert len(claims) >= 3 + 2  # redis-0..2, timescaledb-0..1
    assert len(claims) <= int(quota["persistentvolumeclaims"])
    assert sum(map(_gib, claims)) <= _gib(quota["requests.storage"])
