"""`kades up`'s command-line parts: the health wait (a progress bar on a terminal only, a clear
end at the deadline), the summary it prints (addresses without passwords), replicas of a
function (`--replicas NAME=N`: N processes, the broker given each as `--subscriber`), and the
demo's replay of a seed (`--fresh`: on empty data; fed again, it says so instead)."""
from __future__ import annotations

import dataclasses
import io
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kades.dev.localrun import (_wait_healthy, broker_command, main_up, parse_replicas,
                                process_env, running_summary, start_system, stop_system)
from kades.dev.demo import fetch_anomalies, show_demo
from kades.dev.services import free_port, wipe_data
from kades.events.catalogue import MARKET_TICK, new_event
from kades.events.envelope import to_binary
from kades.registry import FUNCTIONS
from kades.settings import Settings
from kades.simulate.story import demo_story
from terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def healthy_url():
    """A process answering 200 on /health."""
    @Request.application
    def app(request):
        return Response("ok", status=200 if request.path == "/health" else 404)

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_health_wait_shows_a_bar_on_a_terminal_only(healthy_url, tmp_path, monkeypatch):
    urls = {"one": healthy_url, "two": healthy_url}
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    _wait_healthy(urls, 10, tmp_path)
    assert "\r" in terminal.getvalue() and "2/2" in terminal.getvalue()
    redirected = io.StringIO()
    monkeypatch.setattr("sys.stderr", redirected)
    _wait_healthy(urls, 10, tmp_path)
    assert redirected.getvalue() == ""


def test_the_health_wait_names_what_never_became_healthy(healthy_url, tmp_path):
    (tmp_path / "dead.log").write_text("boot\nTraceback: it broke\n")
    with pytest.raises(SystemExit) as stop:
        _wait_healthy({"fine": healthy_url, "dead": "http://127.0.0.1:1"}, 0.5, tmp_path)
    assert str(stop.value).startswith("not healthy after 0s: dead\n")  # exit code 1
    assert "Traceback: it broke" in str(stop.value)


def test_an_api_error_is_an_http_error_to_the_demo_not_a_json_one(healthy_url):
    # the api's 500 (then an HTML page) ended `make run` in a JSONDecodeError traceback;
    # main_up reports an httpx.HTTPError in one line and exits 1
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        fetch_anomalies(healthy_url)


def test_the_summary_shows_no_password():
    config = Settings.from_env({
        "KADES_REDIS_URL": "redis://:s3cret@127.0.0.1:6390/0",
        "KADES_DATABASE_URL": "postgresql://kades:s3cret@127.0.0.1:5440/kades",
        "KADES_SINK_URL": "http://kades:s3cret@127.0.0.1:8090/kades/kades"})
    urls = {name: f"http://127.0.0.1:{8101 + n}" for n, name in enumerate([*FUNCTIONS, "api"])}
    text = running_summary(urls, config, api_key="kades_demo_key", logs=Path(".local/logs"))
    assert "s3cret" not in text
    assert "redis://:***@127.0.0.1:6390/0" in text
    assert "postgresql://kades:***@127.0.0.1:5440/kades" in text
    assert "http://kades:***@127.0.0.1:8090/kades/kades" in text
    assert "kades_demo_key" in text  # the demo key is shown on purpose: it is how to log in


def test_replicas_are_parsed_and_refused_by_name():
    assert parse_replicas(["temporal-analysis=2", "chain-analysis=3"]) == {
        "temporal-analysis": 2, "chain-analysis": 3}
    assert parse_replicas([]) == {}
    for wrong, named in (("temporal-analysis", "NAME=N"), ("temporal-analysis=0", "NAME=N"),
                         ("temporal-analysis=two", "NAME=N"), ("api=2", "'api'"),
                         ("nobody=2", "'nobody'")):
        with pytest.raises(ValueError, match=re.escape(named)):
            parse_replicas([wrong])


def test_kades_up_refuses_bad_replicas_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        main_up(["--replicas", "api=2"])
    assert stopped.value.code == 2 and "'api'" in capsys.readouterr().err


def test_the_broker_gets_each_replica_as_a_subscriber(tmp_path):
    command = broker_command(tmp_path, Settings.from_env({}), broker_port=8090,
                             state_dir=tmp_path, oidc=False, subscribers={
                                 "temporal-analysis": ["http://127.0.0.1:1", "http://127.0.0.1:2"],
                                 "chain-analysis": ["http://127.0.0.1:3"]})
    given = [item for item in command if item.startswith("--subscriber=")]
    # One replica keeps the address the manifests resolve to: no override for it.
    assert given == ["--subscriber=temporal-analysis=http://127.0.0.1:1",
                     "--subscriber=temporal-analysis=http://127.0.0.1:2"]


TICK_TRIGGER = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: kades, namespace: kades}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: temporal-analysis, namespace: kades}
spec:
  broker: kades
  filter: {attributes: {type: ai.kades.market.tick.v1}}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: temporal-analysis}
"""


def events_handled(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("kades_events_total{"))


@pytest.mark.slow
def test_up_starts_replicas_and_the_broker_delivers_to_each(kades_env, fresh_settings, tmp_path):
    """Two real temporal-analysis processes and a real broker, started as `kades up
    --replicas temporal-analysis=2` starts them: both serve, and ticks reach both."""
    root, state = tmp_path / "root", tmp_path / "state"
    (root / "eventing").mkdir(parents=True)
    (root / "functions").symlink_to(ROOT / "functions")
    (root / "eventing" / "all.yaml").write_text(TICK_TRIGGER)
    broker_port = free_port()
    fresh_settings.setenv("KADES_PORT_TEMPORAL_ANALYSIS", str(free_port()))
    fresh_settings.setenv("KADES_SINK_URL", f"http://127.0.0.1:{broker_port}/kades/kades")
    config = Settings.from_env()
    try:
        urls = start_system(root, config, broker_port=broker_port, state_dir=state,
                            replicas={"temporal-analysis": 2}, names=("temporal-analysis",))
        assert set(urls) == {"temporal-analysis", "temporal-analysis-2", "broker"}
        assert {p.stem for p in (state / "run").glob("*.pid")} == set(urls)
        # each server runs the threads its Service gives it (gunicorn's default, 8 here,
        # let 8 WebSockets hold every thread of the local api, its health check's too)
        service = yaml.safe_load((ROOT / "knative/base/functions/temporal-analysis.yaml").read_text())
        wanted = next(e["value"] for e in service["spec"]["template"]["spec"]["containers"][0]["env"]
                      if e["name"] == "THREADS")
        for process in ("temporal-analysis", "temporal-analysis-2"):
            pid = int((state / "run" / f"{process}.pid").read_text())
            environ = dict(item.split("=", 1) for item in
                           Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in item)
            assert environ["THREADS"] == wanted == "20"
        for number in range(8):
            headers, body = to_binary(new_event(MARKET_TICK, "/tests/localrun", {"ticks": []},
                                                event_id=f"replica-{number}"))
            httpx.post(config.sink_url, headers=headers, content=body).raise_for_status()
        replicas = [urls["temporal-analysis"], urls["temporal-analysis-2"]]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(map(events_handled, replicas)) < 8:
            time.sleep(0.2)
        handled = [events_handled(url) for url in replicas]
        # Deliveries take the replicas in turn: each got some, and every event was handled.
        assert sum(handled) == 8 and min(handled) >= 1, handled
    finally:
        stopped = stop_system(state)
    assert sorted(stopped) == ["broker", "temporal-analysis", "temporal-analysis-2"]


def test_the_processes_are_told_how_to_speak_to_redis_not_only_where(monkeypatch):
    # the URL alone names one server: a function so told, on a Redis Cluster, got MOVED
    for name in ("KADES_REDIS_SENTINELS", "KADES_REDIS_SENTINEL_MASTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KADES_REDIS_CLUSTER", "true")  # the caller's own: the config's wins
    base = Settings.from_env({"KADES_REDIS_URL": "redis://127.0.0.1:7392/0"})
    for config in (base, dataclasses.replace(base, redis_cluster=True),
                   dataclasses.replace(base, redis_sentinels="127.0.0.1:26390",
                                       redis_sentinel_master="primary")):
        told = Settings.from_env(process_env(config))
        assert ((told.redis_url, told.redis_cluster, told.redis_sentinels,
                 told.redis_sentinel_master)
                == (config.redis_url, config.redis_cluster, config.redis_sentinels,
                    config.redis_sentinel_master))


def test_a_seed_fed_before_is_not_fed_again_and_the_demo_says_how_to_replay_it(capsys):
    """Fed again, a seed's events come after its tokens' states (late: dropped, as they must
    be), and the table matched the first run's detections: 2/21 "detected", all old."""
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    token = demo_story(seed=7, minutes=5, start=start).labels[0]["token"]
    posted = []

    @Request.application
    def app(request):
        if request.path == "/v1/anomalies":  # the api: one anomaly of the story's tokens stored
            return Response(f'{{"anomalies": [{{"token": "{token}"}}], "next_cursor": null}}',
                            content_type="application/json")
        posted.append(request.path)  # the broker ingress
        return Response("", status=202)

    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        code = show_demo(url, url + "/kades/kades", seed=7, minutes=5, rate=1000.0)
    finally:
        server.shutdown()
    assert code == 1 and posted == []
    assert "kades up --fresh --seed 7" in capsys.readouterr().out


def test_fresh_removes_the_data_of_the_redis_and_postgres_kades_up_runs_on_only(tmp_path):
    for folder in ("redis", "postgres", "postgres-plain", "redis-cluster", "logs", "run"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data").write_text("x")
    assert sorted(wipe_data(tmp_path)) == ["postgres", "redis"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "postgres-plain", "redis-cluster", "run"]
    assert wipe_data(tmp_path) == []


def test_functions_run_one_blas_thread_here_and_in_the_image():
    """numpy's BLAS started a thread per CPU of the node, not of the container's limit: a
    matrix product spent the whole CPU quota at once, and the container was throttled."""
    import subprocess
    import sys

    from kades.dev.localrun import BLAS_THREADS, process_env
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert all(re.search(rf"^\s+{name}=1 ", dockerfile, re.M) for name in BLAS_THREADS)
    env = process_env(Settings())
    probe = ("import numpy, threadpoolctl; print(max(p['num_threads'] for p in "
             "threadpoolctl.threadpool_info() if p['user_api'] == 'blas'))")
    threads = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert int(threads) == 1
