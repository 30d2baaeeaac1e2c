"""KADES's own senders present a token to the Broker (issue 13, item 5): with Knative's
authentication-oidc and the EventPolicy applied, the Broker ingress refuses a sender without
one. What the functions and the api post through kades.runtime.sink carries the token of
KADES_SINK_TOKEN_FILE (a projected service-account token on a cluster), and solana-source the
one its SinkBinding mounts (/oidc/token); both files rotate and are read again when they do.
The receiver is a real HTTP server that answers 401 without the expected bearer token."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kades import exitcodes
from kades.cli import main
from kades.errors import TemporaryFailure
from kades.events.catalogue import MARKET_TICK, new_event
from kades.events.envelope import decode
from kades.runtime import sink, tokenfile
from kades.solana import poll, source
from runtimetest import binary, tick_data


class Ingress:
    """A Broker ingress that takes events only with `Authorization: Bearer <expected>`."""

    def __init__(self):
        self.expected = ""
        self.accepted: list = []
        self.refused = 0
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/kades/kades"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @Request.application
    def _app(self, request):
        if request.headers.get("Authorization") != f"Bearer {self.expected}":
            self.refused += 1
            return Response('{"error": "no valid token for this Broker"}', status=401)
        self.accepted.extend((request.headers["Authorization"], event)
                             for event in decode(request.headers, request.get_data()))
        return Response(status=202)

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def ingress():
    receiver = Ingress()
    yield receiver
    receiver.close()


def projected(directory: Path, token: str) -> Path:
    """Write `token` as the kubelet's atomic writer does: token -> ..data/token, ..data -> a
    fresh timestamped folder, swapped with one rename (so a reader never sees half a file)."""
    directory.mkdir(exist_ok=True)
    version = directory / f"..2026_{len(list(directory.glob('..2026_*')))}"
    version.mkdir()
    (version / "token").write_text(token + "\n")
    (directory / "..data_tmp").symlink_to(version.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    if not (directory / "token").is_symlink():
        (directory / "token").symlink_to("..data/token")
    return directory / "token"


def tick(n: int):
    return new_event(MARKET_TICK, "/tests", tick_data(token=f"T{n}"), event_id=f"t{n}")


def test_the_token_is_sent_and_a_rotated_one_replaces_it(ingress, tmp_path):
    path = projected(tmp_path / "broker-token", "first-token")
    ingress.expected = "first-token"
    sink.send([tick(1), tick(2)], ingress.url, token_file=str(path))
    projected(tmp_path / "broker-token", "second-token")  # the kubelet renewed it
    ingress.expected = "second-token"
    sink.send([tick(3)], ingress.url, token_file=str(path))
    assert [auth for auth, _ in ingress.accepted] == ["Bearer first-token"] * 2 + ["Bearer second-token"]
    assert ingress.refused == 0


def test_without_the_token_the_ingress_refuses_and_the_sender_fails_for_a_retry(ingress):
    ingress.expected = "needed"
    with pytest.raises(TemporaryFailure, match="answered 401"):
        sink.send([tick(1)], ingress.url, token_file="")
    assert ingress.accepted == [] and ingress.refused == 1


@pytest.mark.parametrize("content", [None, "  \n"], ids=["missing", "empty"])
def test_a_missing_or_empty_token_file_is_a_temporary_failure_naming_it(ingress, tmp_path, content):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TemporaryFailure, match=str(path)):
        sink.send([tick(1)], ingress.url, token_file=str(path))
    assert ingress.accepted == [] and ingress.refused == 0  # nothing sent without it


def test_the_setting_is_the_default_token_file(ingress, tmp_path, fresh_settings):
    path = projected(tmp_path / "broker-token", "from-the-setting")
    ingress.expected = "from-the-setting"
    fresh_settings.setenv("KADES_SINK_TOKEN_FILE", str(path))
    sink.send([tick(1)], ingress.url)  # what the api's token.tracked does
    assert len(ingress.accepted) == 1


def test_a_functions_extra_events_carry_its_token(client_of, ingress, tmp_path, monkeypatch):
    """echo replies once per token: the first is the reply, the others go through the sink."""
    ingress.expected = "function-token"
    monkeypatch.setenv("KADES_SINK_URL", ingress.url)
    monkeypatch.setenv("KADES_SINK_TOKEN_FILE",
                       str(projected(tmp_path / "broker-token", "function-token")))
    client = client_of("echo")
    ticks = {"ticks": [tick_data(token=t)["ticks"][0] for t in ("A", "B", "C")]}
    headers, body = binary(data=ticks)
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200, response.data
    assert sorted(event.subject for _, event in ingress.accepted) == ["B", "C"]
    assert ingress.refused == 0


def _recording(tmp_path: Path) -> Path:
    system = "11111111111111111111111111111111"
    transactions = [{"slot": slot, "blockTime": 1_700_000_000 + slot,
                     "transaction": {"signatures": [f"sig{slot}"],
                                     "message": {"accountKeys": [system], "instructions": []}},
                     "meta": {"err": None, "preBalances": [0], "postBalances": [0],
                              "preTokenBalances": [], "postTokenBalances": []}}
                    for slot in (5, 6)]
    (tmp_path / "recorded.json").write_text(json.dumps(transactions))
    return tmp_path / "recorded.json"


def test_solana_source_sends_its_sinkbinding_token(ingress, tmp_path):
    token = projected(tmp_path / "oidc", "source-token")
    ingress.expected = "source-token"
    code = main(["solana-source", "--replay", str(_recording(tmp_path)), "--sink", ingress.url,
                 "--sink-token-file", str(token)])
    assert code == exitcodes.OK
    assert {auth for auth, _ in ingress.accepted} == {"Bearer source-token"}
    assert len(ingress.accepted) == 2 and ingress.refused == 0


def test_solana_source_without_a_token_is_refused_exit_code_1(ingress, tmp_path, capsys):
    # the ingress answered (401): a refusal to mend, not the sink away (3)
    ingress.expected = "source-token"
    code = main(["solana-source", "--replay", str(_recording(tmp_path)), "--sink", ingress.url,
                 "--sink-token-file", ""])
    assert code == exitcodes.FAILURE and "answered 401" in capsys.readouterr().err


class _Node:
    """A Solana node with slots 5 and 6, each one empty transaction."""

    def __init__(self, tmp_path):
        self.blocks = json.loads(_recording(tmp_path).read_text())

    def get_slot(self):
        return 6

    def get_block(self, slot):
        (found,) = [t for t in self.blocks if t["slot"] == slot]
        return {"slot": slot, "blockTime": found["blockTime"],
                "transactions": [{"transaction": found["transaction"], "meta": found["meta"]}]}


def test_solana_source_following_a_node_reads_each_rotation(ingress, tmp_path, kades_env,
                                                            redis_conn, monkeypatch):
    token = projected(tmp_path / "oidc", "before")
    sent, real_send = [], sink.send

    def rotating_send(events, url, *, token_file):  # rotate between the two slots' sends
        ingress.expected = tokenfile.bearer(token_file)
        real_send(events, url, token_file=token_file)
        sent.append(ingress.expected)
        projected(tmp_path / "oidc", "after")
    monkeypatch.setattr(poll, "SolanaRpc", lambda _url: _Node(tmp_path))
    monkeypatch.setattr(sink, "send", rotating_send)
    code = main(["solana-source", "--rpc", "http://node.invalid/", "--sink", ingress.url,
                 "--sink-token-file", str(token), "--start-slot", "5", "--max-slots", "2"])
    assert code == exitcodes.OK
    assert [auth for auth, _ in ingress.accepted] == ["Bearer before", "Bearer after"]
    assert sent == ["before", "after"]


def test_solana_source_defaults_to_the_setting_then_to_the_sinkbinding_file(fresh_settings):
    fresh_settings.delenv("KADES_SINK_TOKEN_FILE")
    assert source.sink_token_file("given") == "given"
    # No SinkBinding token here (authentication-oidc off, or not in a pod): none is sent.
    assert source.sink_token_file(None) == (
        tokenfile.SINKBINDING_TOKEN_FILE if os.path.isfile("/oidc/token") else "")
    fresh_settings.setenv("KADES_SINK_TOKEN_FILE", "/var/run/secrets/kades/broker/token")
    assert source.sink_token_file(None) == "/var/run/secrets/kades/broker/token"
    assert tokenfile.SINKBINDING_TOKEN_FILE == "/oidc/token"  # Knative's mount: /oidc, key token
