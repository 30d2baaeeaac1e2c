"""The demo market: same seed, same stream; labels that match what was injected."""
from __future__ import annotations

import contextlib
import io
import json
import threading
from datetime import datetime

import pytest

from kades import exitcodes
from kades.events.catalogue import MARKET_FEED, data_problems
from kades.events.envelope import from_structured
from kades.simulate.cli import main_simulate
from kades.simulate.market import BASE58, feed_events, simulate_market
from terminal import Terminal


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_same_seed_same_stream_and_other_seed_other_stream():
    first, again = simulate_market(seed=7), simulate_market(seed=7)
    assert first.ticks == again.ticks and first.labels == again.labels
    other = simulate_market(seed=8)
    assert other.ticks != first.ticks


def test_shape_of_ticks_and_token_names():
    sim = simulate_market(seed=1, tokens=4, minutes=20, step_s=5)
    tokens = {tick["token"] for tick in sim.ticks}
    assert len(tokens) == 4
    assert all(32 <= len(t) <= 44 and set(t) <= set(BASE58) for t in tokens)
    assert len(sim.ticks) == 4 * 20 * 60 // 5
    assert [epoch(t["time"]) for t in sim.ticks] == sorted(epoch(t["time"]) for t in sim.ticks)
    assert all(t["price"] > 0 and t["volume"] > 0 and t["time"].endswith("Z") for t in sim.ticks)


def test_labels_are_separated_by_a_calm_warm_up():
    sim = simulate_market(seed=3, tokens=5, minutes=30, anomalies_per_token=2)
    assert len(sim.labels) == 10
    start = epoch(sim.ticks[0]["time"])
    for token in {label["token"] for label in sim.labels}:
        mine = sorted((epoch(l["start"]), epoch(l["end"])) for l in sim.labels if l["token"] == token)
        assert mine[0][0] - start >= 300
        assert all(b[0] > a[1] for a, b in zip(mine, mine[1:]))
    assert {label["kind"] for label in sim.labels} <= {"price_spike", "flash_crash", "volume_spike"}


def test_injected_anomalies_are_clear_events():
    sim = simulate_market(seed=5, tokens=5, minutes=30)
    for label in sim.labels:
        series = [t for t in sim.ticks if t["token"] == label["token"]]
        inside = [t for t in series if epoch(label["start"]) <= epoch(t["time"]) <= epoch(label["end"])]
        before = [t for t in series if epoch(t["time"]) < epoch(label["start"])][-1]
        if label["kind"] == "volume_spike":
            assert max(t["volume"] for t in inside) > 4 * before["volume"]
        elif label["kind"] == "price_spike":
            assert max(t["price"] for t in inside) > 1.15 * before["price"]
        else:
            assert min(t["price"] for t in inside) < 0.85 * before["price"]


def test_feed_events_one_per_step_valid_and_deterministic():
    sim = simulate_market(seed=2, tokens=3, minutes=5)
    events = feed_events(sim, source="/kades/simulator")
    assert len(events) == 5 * 60 // 5
    assert all(e.type == MARKET_FEED and not data_problems(e) for e in events)
    assert all(len(e.data["ticks"]) == 3 for e in events)
    assert [e.id for e in events] == [e.id for e in feed_events(sim, source="/kades/simulator")]
    assert len({e.id for e in events}) == len(events)


def test_cli_writes_structured_events_and_labels(tmp_path):
    output, labels = tmp_path / "feed.jsonl", tmp_path / "labels.json"
    assert main_simulate(["--seed", "7", "--tokens", "2", "--minutes", "12",
                          "--output", str(output), "--labels", str(labels)]) == 0
    lines = output.read_text().splitlines()
    assert len(lines) == 12 * 60 // 5
    events = [from_structured(json.loads(line)) for line in lines]
    assert events[0].type == MARKET_FEED
    assert json.loads(labels.read_text()) == simulate_market(seed=7, tokens=2, minutes=12).labels


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        simulate_market(seed=1, tokens=0)
    with pytest.raises(ValueError):  # shorter than one step: not one tick (an IndexError before)
        simulate_market(seed=1, minutes=0.05)


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "0"], "--minutes: expected minutes from 0.1 to 1440"),
    (["--minutes", "-5"], "--minutes: expected minutes"),
    (["--minutes", "nan"], "--minutes: expected minutes"),
    (["--minutes", "inf"], "--minutes: expected minutes"),
    (["--minutes", "0.05"], "--minutes: expected minutes"),
    (["--kind", "story", "--minutes", "0.01"], "--minutes: expected minutes"),
    (["--kind", "social", "--minutes", "-1"], "--minutes: expected minutes"),
    (["--kind", "chain", "--minutes", "-1"], "--minutes: expected minutes"),
    (["--kind", "chain", "--minutes", "nan"], "--minutes: expected minutes"),
    (["--tokens", "0"], "--tokens: expected a whole number from 1"),
    (["--step-s", "0"], "--step-s: expected seconds from 1"),
    (["--step-s", "1e-9", "--minutes", "1"], "--step-s: expected seconds from 1"),
    (["--anomalies-per-token", "-1"], "--anomalies-per-token: expected a whole number from 0"),
    (["--seed", "-1"], "--seed: expected a whole number from 0"),
    (["--rate", "-1"], "--rate: expected events per second"),
    (["--step-s", "60", "--minutes", "0.5"], "not one tick"),
    (["--tokens", "100", "--minutes", "1440"], "1,728,000 ticks is over 500,000"),
    # was exit 3, the broker "unreachable"
    (["--broker", "notaurl"], "--broker 'notaurl': expected an http:// or https:// URL"),
    (["--broker", "http://kades:s3cret@:8080/"],
     "--broker 'http://kades:***@:8080/': expected an http:// or https:// URL"),
])
def test_the_cli_refuses_what_cannot_be_simulated_as_a_usage_error(argv, message, capsys):
    # Each of these was a traceback, an endless loop using GBs, or (chain, -1) an exit 0.
    with pytest.raises(SystemExit) as stop:
        main_simulate(argv if "--broker" in argv else [*argv, "--output", "-"])
    assert stop.value.code == exitcodes.USAGE
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and captured.out == ""
    assert "s3cret" not in captured.err


@pytest.mark.parametrize("kind", ["market", "chain", "social", "story"])
def test_the_shortest_minutes_allowed_make_events_of_every_kind(kind, tmp_path):
    out = tmp_path / "events.jsonl"
    assert main_simulate(["--kind", kind, "--minutes", "0.1", "--output", str(out)]) == 0
    assert out.read_text().count("\n") >= 1


def test_help_states_the_bounds(capsys):
    with pytest.raises(SystemExit):
        main_simulate(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "0.1 to 1440" in help_text and "at most 500,000 ticks in all" in help_text


@contextlib.contextmanager
def ingress(status: int = 202):
    """A stand-in broker ingress answering `status`: (its URL, the events it received)."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    from kades.events.envelope import decode

    received = []

    @Request.application
    def app(request):
        assert request.headers.get("ce-specversion") == "1.0"  # binary mode
        received.extend(decode(request.headers, request.get_data()))
        return Response("refused" if status >= 300 else "", status=status)

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/kades/kades", received
    finally:
        server.shutdown()


def test_cli_posts_binary_events_to_a_broker():
    with ingress() as (url, received):
        assert main_simulate(["--seed", "3", "--tokens", "2", "--minutes", "1", "--rate", "1000",
                              "--broker", url]) == 0
    expected = feed_events(simulate_market(seed=3, tokens=2, minutes=1), source="/kades/simulator")
    assert [e.id for e in received] == [e.id for e in expected]
    assert received[0].data == expected[0].data


def test_cli_reports_an_unreachable_broker_with_exit_code_3(capsys):
    code = main_simulate(["--minutes", "1",
                          "--broker", "http://kades:s3cret@127.0.0.1:1/kades/kades"])
    assert code == exitcodes.UNAVAILABLE
    err = capsys.readouterr().err
    assert "cannot post to http://kades:***@127.0.0.1:1/kades/kades" in err and "s3cret" not in err


def test_cli_reports_a_refusing_broker_as_a_failure(capsys):
    with ingress(status=400) as (url, received):
        assert main_simulate(["--minutes", "1", "--broker", url]) == exitcodes.FAILURE
    assert len(received) == 1  # it stopped at the first refusal
    assert "broker answered 400" in capsys.readouterr().err


def test_posting_shows_progress_on_a_terminal_only(monkeypatch):
    for stderr, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stderr)
        with ingress() as (url, received):
            assert main_simulate(["--tokens", "1", "--minutes", "1", "--rate", "1000",
                                  "--broker", url]) == exitcodes.OK
        frames = stderr.getvalue()
        assert ("\r" in frames and f"{len(received)}/{len(received)}" in frames) == drawn


def test_dash_writes_events_or_labels_to_stdout(tmp_path, capsys):
    assert main_simulate(["--seed", "7", "--tokens", "2", "--minutes", "12", "--output", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 * 60 // 5 and from_structured(json.loads(lines[0])).type == MARKET_FEED
    assert main_simulate(["--seed", "7", "--tokens", "2", "--minutes", "12",
                          "--output", str(tmp_path / "feed.jsonl"), "--labels", "-"]) == 0
    labels = json.loads(capsys.readouterr().out)
    assert labels == simulate_market(seed=7, tokens=2, minutes=12).labels and labels


def test_events_and_labels_cannot_both_go_to_stdout():
    with pytest.raises(SystemExit) as stop:
        main_simulate(["--labels", "-"])
    assert stop.value.code == exitcodes.USAGE
