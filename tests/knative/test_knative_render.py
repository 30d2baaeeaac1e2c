"""func.yaml is a valid Knative `func` file, and knative/ is exactly what it renders to."""
from __future__ import annotations

import json
import re
import shutil

import jsonschema
import pytest
import yaml

from deploy_helpers import ROOT
from kades import exitcodes, manifests
from kades.events.catalogue import MAX_EVENT_BYTES

FUNCTION_DIRS = manifests.function_dirs(ROOT)
NAMES = [d.name for d in FUNCTION_DIRS]
ALWAYS_WARM = {"api", "alert-dispatch"}  # api holds WebSockets; alert-dispatch retries webhooks


class _FuncLoader(yaml.SafeLoader):
    """YAML as func reads it: `created` stays a string (JSON has no timestamps)."""


_FuncLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _func(name):
    return yaml.load((ROOT / "functions" / name / "func.yaml").read_text(), Loader=_FuncLoader)


def test_every_function_folder_has_func_and_knative_yaml():
    folders = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))
    assert NAMES == folders
    assert all((d / "knative.yaml").is_file() for d in FUNCTION_DIRS)


@pytest.mark.parametrize("name", NAMES)
def test_func_yaml_is_valid_for_the_func_cli(schemas_dir, name):
    schema = json.loads((schemas_dir / "knative-func" / "func_yaml-schema.json").read_text())
    func = _func(name)
    errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(func)]
    assert errors == []
    assert func["name"] == name
    assert not {"registry", "image"} & func.keys() and "image" not in func.get("deploy", {})


@pytest.mark.parametrize("name", NAMES)
def test_func_yaml_says_how_the_function_is_invoked_and_built(name):
    """The entry point registers the HTTP signature and the image comes from the Dockerfile,
    so func.yaml says `invoke: http` and names no func builder (pack or s2i)."""
    func = _func(name)
    assert "functions_framework.http" in (ROOT / "functions" / name / "main.py").read_text()
    assert func["invoke"] == "http"
    assert "builder" not in func.get("build", {})
    assert "ARG FUNCTION" in (ROOT / "Dockerfile").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_scale_to_zero_except_api(name):
    expected = 1 if name in ALWAYS_WARM else 0
    assert _func(name)["deploy"]["options"]["scale"]["min"] == expected


def test_committed_manifests_equal_a_fresh_render():
    stale = manifests.stale_files(ROOT, manifests.render_all(ROOT))
    assert stale == [], "run `make manifests` and commit the result"


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    (tmp_path / "functions" / "f").mkdir(parents=True)
    (tmp_path / "functions" / "f" / "func.yaml").write_text(
        (ROOT / "functions" / "temporal-analysis" / "func.yaml").read_text().replace(
            "name: temporal-analysis", "name: f"))
    assert manifests.main_manifests(["--root", str(tmp_path), "--check"]) == 1
    assert "stale: knative/base/functions/f.yaml" in capsys.readouterr().err
    assert manifests.main_manifests(["--root", str(tmp_path)]) == 0
    assert manifests.main_manifests(["--root", str(tmp_path), "--check"]) == 0


def test_a_broken_knative_yaml_is_a_failure_not_a_usage_error(tmp_path, capsys):
    (tmp_path / "functions" / "f").mkdir(parents=True)
    (tmp_path / "functions" / "f" / "func.yaml").write_text(
        (ROOT / "functions" / "temporal-analysis" / "func.yaml").read_text().replace(
            "name: temporal-analysis", "name: f"))
    (tmp_path / "functions" / "f" / "knative.yaml").write_text("windw: 60s\n")
    assert manifests.main_manifests(["--root", str(tmp_path), "--check"]) == exitcodes.FAILURE
    assert "unknown key 'windw'" in capsys.readouterr().err


@pytest.fixture
def repository(tmp_path):
    """A copy of the repository's functions/, eventing/ and knative/: up to date, to break."""
    for folder in ("functions", "eventing", "knative"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    assert manifests.main_manifests(["--root", str(tmp_path), "--check"]) == exitcodes.OK
    return tmp_path


@pytest.mark.parametrize("file", ["func.yaml", "knative.yaml"])
@pytest.mark.parametrize("content, message", [
    (b"[unclosed", "not valid YAML: expected ',' or ']', but got '<stream end>' (line 1, column 10)"),
    (b": : :", "not valid YAML: expected <block end>, but found ':' (line 1, column 1)"),
    (b"42", "is a number, expected a mapping"),
    (b"a: 1\n---\nb: 2\n", "holds 2 YAML documents, expected one"),
    (b"name: \xff\xfe\n", "not UTF-8 text (invalid start byte at byte 6)"),
])
def test_a_file_that_is_no_yaml_mapping_is_a_failure_naming_it(repository, file, content,
                                                                message, capsys):
    # Each was a yaml ParserError, AttributeError or UnicodeDecodeError traceback.
    (repository / "functions" / "risk-scoring" / file).write_bytes(content)
    assert manifests.main_manifests(["--root", str(repository), "--check"]) == exitcodes.FAILURE
    err = capsys.readouterr().err
    assert err == f"kades manifests: functions/risk-scoring/{file}: {message}\n"


def test_an_eventing_file_that_is_no_yaml_is_a_failure_naming_it(repository, capsys):
    (repository / "eventing" / "broker.yaml").write_text("kind: Broker\n  bad: [indent\n")
    assert manifests.main_manifests(["--root", str(repository), "--check"]) == exitcodes.FAILURE
    assert capsys.readouterr().err.startswith("kades manifests: eventing/broker.yaml: not valid YAML")


@pytest.mark.parametrize("func, message", [
    ({"deploy": 5}, "functions/f: deploy is a number, expected a mapping"),
    ({"deploy": {"options": {"scale": [1]}}}, "deploy.options.scale is a list, expected a mapping"),
    ({"deploy": {"options": {"scale": {"minimum": 1}}}}, "deploy.options.scale: unknown key 'minimum'"),
    ({"run": {"envs": [5]}}, "run.envs 5: expected a mapping (name, value)"),
    ({"run": {"envs": "not a list"}}, "run.envs is a string, expected a list"),
    ({"deploy": {"options": {"resources": {"limits": {"concurrency": "16"}}}}},
     "limits.concurrency is required, a whole number of at least 1"),
    ({"deploy": {"options": {"resources": {"limits": {"concurrency": 0}}}}},
     "limits.concurrency is required, a whole number of at least 1"),
])
def test_a_section_of_the_wrong_shape_is_named(func, message):
    with pytest.raises(manifests.ManifestError, match=re.escape(message)):
        manifests.render_service(func, {}, where="functions/f")


@pytest.mark.parametrize("where", ["/nonexistent", "elsewhere"])
def test_a_root_that_is_no_kades_repository_is_a_usage_error(tmp_path, where, capsys):
    root = where if where.startswith("/") else str(tmp_path)  # absent, or holding no functions
    with pytest.raises(SystemExit) as stop:  # was exit 1 with every generated file "stale"
        manifests.main_manifests(["--root", root, "--check"])
    assert stop.value.code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert f"--root {root}: not a KADES repository" in err and "stale" not in err


@pytest.mark.parametrize("name", NAMES)
def test_service_follows_func_yaml(name):
    func = _func(name)
    service = yaml.safe_load((ROOT / "knative/base/functions" / f"{name}.yaml").read_text())
    template = service["spec"]["template"]
    spec, container = template["spec"], template["spec"]["containers"][0]
    scale = func["deploy"]["options"]["scale"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == str(scale["min"])
    assert annotations["autoscaling.knative.dev/max-scale"] == str(scale["max"])
    threads = {e["name"]: e.get("value") for e in container["env"]}["THREADS"]
    assert spec["containerConcurrency"] == \
        func["deploy"]["options"]["resources"]["limits"]["concurrency"]
    # queue-proxy lets in containerConcurrency requests at most; probes and the /metrics
    # scrape bypass it and need threads of their own, or a busy pod fails its liveness probe
    assert int(threads) == spec["containerConcurrency"] + manifests.SPARE_THREADS
    assert manifests.SPARE_THREADS >= 3  # readiness, liveness, /metrics at once
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    for probe in (container["readinessProbe"], container["livenessProbe"]):
        # not Kubernetes' 1 s default, which a busy pod can miss while alive
        assert 1 < probe["timeoutSeconds"] < probe["periodSeconds"]
    assert container["securityContext"]["runAsNonRoot"] is True
    # Values come from the ConfigMap or Secret; only the OIDC audience and senders, the path
    # of the Broker token volume and the event size its memory holds are rendered per Service.
    assert all("valueFrom" in e for e in container["env"] if e["name"].startswith("KADES_")
               and e["name"] not in ("KADES_OIDC_AUDIENCE", "KADES_OIDC_SUBJECTS",
                                     "KADES_SINK_TOKEN_FILE", "KADES_MAX_EVENT_BYTES"))
    # its requests' bodies, parsed at worst, fit in its memory beside the process
    env = {e["name"]: e.get("value") for e in container["env"]}
    limit = container["resources"]["limits"]["memory"]
    assert int(env["KADES_MAX_EVENT_BYTES"]) == manifests.event_bytes_budget(
        limit, spec["containerConcurrency"]) >= MAX_EVENT_BYTES
    limit_bytes = int(limit[:-2]) << {"Mi": 20, "Gi": 30}[limit[-2:]]
    assert (manifests.PROCESS_BYTES + spec["containerConcurrency"]
            * manifests.PARSED_BYTES_PER_BYTE * int(env["KADES_MAX_EVENT_BYTES"])) <= limit_bytes
    assert "serving.knative.dev/rollout-duration" in service["metadata"]["annotations"]


def test_one_knative_yaml_change_reaches_the_service():
    func, extra = _func("risk-scoring"), {"window": "90s", "timeoutSeconds": 30}
    service = manifests.render_service(func, extra)
    assert service["spec"]["template"]["metadata"]["annotations"][
        "autoscaling.knative.dev/window"] == "90s"
    assert service["spec"]["template"]["spec"]["timeoutSeconds"] == 30


@pytest.mark.parametrize("extra, envs, message", [
    ({"windw": "60s"}, None, "unknown key 'windw'"),
    ({"initialScale": "1"}, None, "initialScale has the wrong type"),
    ({}, [{"name": "KADES_LOG_LEVEL", "value": "DEBUG"}], "values belong in the ConfigMap"),
    ({}, [{"value": "{{ secret:kades-secrets:redis-url }}"}], "a KEY needs a name"),
])
def test_renderer_rejects_bad_input_naming_the_problem(extra, envs, message):
    func = _func("risk-scoring")
    if envs is not None:
        func["run"]["envs"] = envs
    with pytest.raises(manifests.ManifestError, match=message):
        manifests.render_service(func, extra, where="functions/risk-scoring")


def test_dockerfile_builds_any_function_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG FUNCTION" in dockerfile and "USER 10001" in dockerfile
    assert 'requirements/functions/${FUNCTION}.lock' in dockerfile
    assert all((ROOT / "requirements" / "functions" / f"{n}.txt").is_file() for n in NAMES)
    for name in NAMES:  # the image `make images` tags is the one the Service runs
        service = yaml.safe_load((ROOT / "knative/base/functions" / f"{name}.yaml").read_text())
        assert service["spec"]["template"]["spec"]["containers"][0]["image"] == f"kades/{name}"


@pytest.mark.parametrize("limit, concurrency, budget", [
    ("512Mi", 16, (352 << 20) // 640), ("1Gi", 4, (864 << 20) // 160),
    ("2G", 1, 16 << 20),            # never above the settings' default
    ("0.5Gi", 4, (352 << 20) // 160), ("1e9", 4, (10**9 - (160 << 20)) // 160),
    ("512mi", 4, None), ("", 4, None),  # no quantity (refused by render_service)
])
def test_a_services_event_limit_is_what_its_memory_holds(limit, concurrency, budget):
    assert manifests.event_bytes_budget(limit, concurrency) == budget


def test_a_memory_limit_that_is_no_quantity_is_refused_not_left_unbudgeted():
    func = _func("chain-analysis")
    func["deploy"]["options"]["resources"]["limits"]["memory"] = "512mi"
    with pytest.raises(manifests.ManifestError, match="'512mi' is no Kubernetes quantity"):
        manifests.render_service(func, {}, where="functions/chain-analysis")


def test_a_memory_limit_too_small_for_the_events_kades_sends_is_refused():
    """dead-letter's 256Mi at concurrency 16 held 150 KiB bodies: 16 of KADES's 256 KiB
    events parsed at once were an OOM kill."""
    func = _func("dead-letter")
    func["deploy"]["options"]["resources"]["limits"]["memory"] = "256Mi"
    with pytest.raises(manifests.ManifestError, match="under the 262,144 of an event"):
        manifests.render_service(func, {}, where="functions/dead-letter")
