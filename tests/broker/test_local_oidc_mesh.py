"""The local mesh with sender identity on (`kades up --oidc`): a real function process started
with the command and environment `kades up` gives it (kades.dev.localrun) requires the broker's
token: an unsigned POST, or one signed for another function, is refused with 401, and the
development broker's signed delivery is taken (issue 13, item 5)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from brokertest import event_attrs, manifests, post_binary, signed, wait_for
from kades.dev.services import free_port
from kades.audiences import service_audience
from kades.broker import DevBroker, load_eventing
from kades.broker.tokens import LocalIssuer, trigger_subject
from kades.deadletter.store import list_dead_letters
from kades.dev.localrun import function_command, function_env, process_env

pytestmark = pytest.mark.slow  # starts processes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def issuer():
    local = LocalIssuer()
    yield local
    local.close()


@pytest.fixture
def dead_letter_function(kades_settings, redis_conn, issuer, tmp_path):
    """functions/dead-letter (it keeps what it is sent in Redis) as `kades up --oidc` runs it."""
    port = free_port()
    env = function_env("dead-letter", process_env(kades_settings), oidc_issuer=issuer.issuer)
    assert env["KADES_OIDC_AUDIENCE"] == service_audience("kades", "dead-letter")
    log = open(tmp_path / "dead-letter.log", "ab")
    process = subprocess.Popen(function_command(ROOT / "functions/dead-letter/main.py", port),
                               env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        try:
            return httpx.get(url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False
    try:
        wait_for(healthy, 30, "the dead-letter function")
        yield url
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def test_a_function_kades_up_started_takes_only_the_brokers_signed_delivery(
        dead_letter_function, issuer, redis_conn, broker_redis, tmp_path):
    headers = {"ce-specversion": "1.0", "ce-id": "forged", "ce-source": "/outside",
               "ce-type": "ai.kades.alert.v1", "content-type": "application/json"}
    unsigned = httpx.post(dead_letter_function + "/", headers=headers, content=b"{}", timeout=10)
    assert unsigned.status_code == 401
    assert "missing bearer token" in unsigned.json()["error"]["message"]
    other = issuer.token(service_audience("kades", "alert-dispatch"),
                         subject=trigger_subject("kades", "alert-dispatch"))
    wrong = httpx.post(dead_letter_function + "/", headers={**headers, "authorization": f"Bearer {other}"},
                       content=b"{}", timeout=10)
    assert wrong.status_code == 401 and "wrong audience" in wrong.json()["error"]["message"]
    assert list_dead_letters(redis_conn) == []

    # A Trigger to the Service by its ref, as in eventing/: the audience follows from it.
    trigger = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
               "metadata": {"name": "to-dead-letter", "namespace": "kades"},
               "spec": {"broker": "kades", "filter": {"attributes": {"type": "ai.kades.test.v1"}},
                        "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1",
                                               "kind": "Service", "name": "dead-letter"}}}}
    (tmp_path / "eventing").mkdir()
    (tmp_path / "eventing/all.yaml").write_text(manifests(trigger))
    eventing = load_eventing(tmp_path / "eventing", overrides={"dead-letter": dead_letter_function})
    broker = DevBroker(eventing, broker_redis, port=0, workers_per_trigger=2, idle_wait_s=0.1,
                       issuer=issuer).start()
    try:
        accepted = post_binary(broker.ingress_url(), event_attrs(id_="signed"), {"n": 1},
                               headers=signed(issuer))
        assert accepted.status_code == 202
        letters = wait_for(lambda: list_dead_letters(redis_conn), 15, "the signed delivery")
    finally:
        broker.stop(timeout_s=5)
    assert [letter.event.id for letter in letters] == ["signed"]
    log = (tmp_path / "dead-letter.log").read_text()
    assert len(re.findall(r"sender refused", log)) == 2  # the two refusals, nothing else
