"""Dead-letter sinks as Knative resolves them: a Trigger without one uses its Broker's; with
none at all a failed event is lost (counted and logged here, dropped on a cluster), and
`kades manifests` refuses such a configuration."""
import time

import yaml
from prometheus_client import REGISTRY
from werkzeug.wrappers import Response

from brokertest import event_attrs, manifests, post_binary, trigger, wait_for
from kades.broker.classes import triggers_without_dead_letter_sink
from kades.deadletter.store import list_dead_letters
from kades.manifests import main_manifests


def failing(_request):
    return Response(b"nope", status=422)


def lost(trigger_name: str) -> float:
    return REGISTRY.get_sample_value("kades_broker_lost_total", {"trigger": trigger_name}) or 0.0


def test_a_trigger_without_a_sink_uses_the_brokers(run_broker, subscribers):
    dls, subscriber = subscribers(), subscribers(failing)
    broker = run_broker(manifests(trigger("own-delivery", subscriber.url, delivery={"retry": 0}),
                                  delivery={"retry": 3, "deadLetterSink": {"uri": dls.url}}))
    post_binary(broker.ingress_url(), event_attrs(id_="d1"))
    wait_for(lambda: dls.count() == 1, what="the dead letter at the Broker's sink")
    assert subscriber.count() == 1  # the Trigger's retry: 0, not the Broker's 3
    assert dls.requests[0]["headers"]["ce-knativeerrorcode"] == "422"


def test_with_no_sink_anywhere_the_event_is_lost_counted_and_logged(run_broker, subscribers,
                                                                     broker_redis, caplog):
    subscriber = subscribers(failing)
    before = lost("nowhere")
    broker = run_broker(manifests(trigger("nowhere", subscriber.url, delivery={"retry": 0}),
                                  delivery={"retry": 0}))
    post_binary(broker.ingress_url(), event_attrs(id_="gone"))
    wait_for(lambda: lost("nowhere") == before + 1, what="the lost count")
    assert any(r.getMessage().startswith("event lost") for r in caplog.records)
    time.sleep(0.2)
    assert list_dead_letters(broker_redis) == []  # dropped, as Knative drops it
    assert broker_redis.xlen("kades:{broker}:kades:kades:lane:nowhere/0") == 0


def _docs(trigger_delivery: dict | None, broker_delivery: dict | None) -> list[dict]:
    spec = {"delivery": trigger_delivery} if trigger_delivery else {}
    return list(yaml.safe_load_all(manifests(trigger("t", "http://x/", **spec),
                                             delivery=broker_delivery)))


def test_which_triggers_have_no_sink():
    sink = {"deadLetterSink": {"uri": "http://dls/"}}
    assert triggers_without_dead_letter_sink(_docs(None, None)) == ["kades/t"]
    assert triggers_without_dead_letter_sink(_docs({"retry": 1}, {"retry": 2})) == ["kades/t"]
    assert triggers_without_dead_letter_sink(_docs({"retry": 1}, sink)) == []
    assert triggers_without_dead_letter_sink(_docs(sink, None)) == []


def test_manifests_check_refuses_a_trigger_without_any_sink(tmp_path, capsys):
    (tmp_path / "eventing").mkdir()
    (tmp_path / "eventing" / "100-all.yaml").write_text(manifests(trigger("t", "http://x/")))
    assert main_manifests(["--root", str(tmp_path), "--check"]) == 1
    assert "Trigger kades/t has no deadLetterSink" in capsys.readouterr().err


def test_the_repositorys_eventing_gives_every_trigger_a_sink():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "eventing"
    docs = [d for p in sorted(root.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert triggers_without_dead_letter_sink(docs) == []
