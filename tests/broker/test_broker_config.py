"""Reading eventing/ manifests: delivery, destinations, webhook rules, the project's own files."""
from pathlib import Path

import pytest
import yaml

from brokertest import manifests, trigger
from kades.broker.config import ConfigError, Delivery, load_eventing, parse_duration_s
from kades.broker.filters import matches
from kades.settings import function_url

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path, text: str, **kwargs):
    (tmp_path / "x.yaml").write_text(text)
    return load_eventing(tmp_path, **kwargs)


@pytest.mark.parametrize("text, seconds", [
    ("PT0.2S", 0.2), ("PT1S", 1.0), ("PT1M30S", 90.0), ("PT2H", 7200.0), ("P1D", 86400.0),
    ("P1DT1S", 86401.0), ("P1W", 604800.0)])
def test_iso8601_durations(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "0.2S", "PT0.2", "P1M", "1 second", "PT-1S",
                                  30, 0.2])  # YAML numbers: a TypeError, a traceback at start
def test_bad_durations(text):
    with pytest.raises(ConfigError):
        parse_duration_s(text)


def test_backoff_sequences():  # as Knative's dispatcher runs them: test_broker_retry_timing
    exponential = Delivery(retry=3, backoff_policy="exponential", backoff_delay_s=0.1)
    linear = Delivery(retry=3, backoff_policy="linear", backoff_delay_s=0.1)
    assert [exponential.backoff_s(a) for a in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])
    assert [linear.backoff_s(a) for a in (1, 2, 3)] == pytest.approx([0.0, 0.1, 0.2])


def test_broker_default_delivery_is_knatives(tmp_path):
    eventing = load(tmp_path, manifests(trigger("t", "http://x/")))
    delivery = eventing.triggers[0].delivery
    assert (delivery.retry, delivery.backoff_policy, delivery.backoff_delay_s) == (10, "exponential", 0.2)
    assert delivery.dead_letter_url is None


def test_trigger_delivery_replaces_the_brokers_as_a_whole(tmp_path):
    broker_delivery = {"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT1S",
                       "deadLetterSink": {"uri": "http://dls/"}}
    text = manifests(trigger("own", "http://x/", delivery={"retry": 2}),
                     trigger("inherits", "http://y/"), delivery=broker_delivery)
    own, inherits = load(tmp_path, text).triggers
    # Nothing merged from the Broker but its dead-letter sink, which a Trigger without one uses.
    assert own.delivery == Delivery(retry=2, dead_letter_url="http://dls/")
    assert inherits.delivery.retry == 5 and inherits.delivery.dead_letter_url == "http://dls/"
    assert inherits.delivery.backoff_policy == "linear"


def test_destinations(tmp_path):
    ref = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "risk-scoring"}
    text = manifests(
        trigger("by-ref", "unused", subscriber={"ref": ref}),
        trigger("by-uri", "http://example.test:9/hook"),
        trigger("ref-and-path", "unused", subscriber={"ref": ref, "uri": "/events?x=1"}),
        trigger("to-broker", "unused", subscriber={"ref": {
            "apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "other"}}))
    env = {"KADES_PORT_RISK_SCORING": "9999"}
    urls = {t.name: t.subscriber_url for t in load(tmp_path, text, env=env).triggers}
    assert urls == {"by-ref": "http://127.0.0.1:9999", "by-uri": "http://example.test:9/hook",
                    "ref-and-path": "http://127.0.0.1:9999/events?x=1",
                    "to-broker": "http://127.0.0.1:8090/kades/other"}


def test_subscriber_overrides_by_service_or_trigger_name(tmp_path):
    ref = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "risk-scoring"}
    text = manifests(trigger("a", "unused", subscriber={"ref": ref}),
                     trigger("b", "unused", subscriber={"ref": ref}))
    urls = {t.name: t.subscriber_url for t in load(
        tmp_path, text, overrides={"risk-scoring": "http://s/", "b": "http://t/"}).triggers}
    assert urls == {"a": "http://s/", "b": "http://t/"}


def test_an_override_naming_nothing_the_manifests_deliver_to_is_refused(tmp_path):
    """`--subscriber market-agregator=URL` (a typo) was ignored without a word."""
    ref = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "risk-scoring"}
    text = manifests(trigger("a", "unused", subscriber={"ref": ref}))
    with pytest.raises(ConfigError, match=r"\['risk-scorin'\]"):
        load(tmp_path, text, overrides={"risk-scoring": "http://s/", "risk-scorin": "http://t/"})


def test_other_kinds_are_ignored(tmp_path):
    source = {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource",
              "metadata": {"name": "p", "namespace": "kades"}, "spec": {"schedule": "* * * * *"}}
    text = manifests(trigger("t", "http://x/")) + "---\n" + yaml.safe_dump(source)
    eventing = load(tmp_path, text)
    assert [t.name for t in eventing.triggers] == ["t"]


@pytest.mark.parametrize("change, message", [
    ({"delivery": {"retry": -1}}, "retry"),
    ({"delivery": {"backoffPolicy": "fibonacci"}}, "backoffPolicy"),
    ({"delivery": {"backoffDelay": "0.2s"}}, "ISO-8601"),
    ({"delivery": {"format": "structured"}}, "delivery.format must be json or binary"),
    ({"broker": "nope"}, "no Broker kades/nope"),
    ({"subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                             "name": "unknown-svc"}}}, "--subscriber unknown-svc=URL"),
    ({"subscriber": {"uri": "/relative"}}, "absolute"),
    ({"filters": [{"exact": {"type": "a"}, "suffix": {"type": "b"}}]}, "one dialect"),
])
def test_invalid_manifests_are_refused(tmp_path, change, message):
    doc = trigger("t", "http://x/")
    doc["spec"].update(change)
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, manifests(doc))


def test_duplicate_trigger_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="twice"):
        load(tmp_path, manifests(trigger("t", "http://x/"), trigger("t", "http://y/")))


def test_project_eventing_routes_each_type_to_its_functions():
    eventing = load_eventing(REPO / "eventing", env={})
    broker = eventing.brokers[("kades", "kades")]
    assert broker.delivery.retry == 10 and broker.delivery.backoff_delay_s == pytest.approx(0.2)
    assert broker.delivery.dead_letter_url == function_url("dead-letter", {})

    def routed(event_type: str) -> set[str]:
        attrs = {"specversion": "1.0", "id": "1", "source": "/s", "type": event_type}
        return {t.subscriber_url for t in eventing.triggers if matches(t.filter, attrs)}

    expected = {
        "ai.kades.market.feed.v1": {"market-aggregator"},
        "ai.kades.chain.block.v1": {"market-aggregator", "chain-analysis", "whale-detection"},
        "ai.kades.market.tick.v1": {"temporal-analysis"},
        "ai.kades.social.posts.v1": {"sentiment-analysis"},
        "ai.kades.anomaly.detected.v1": {"risk-scoring"},
        "ai.kades.sentiment.scored.v1": {"risk-scoring"},
        "ai.kades.alert.issued.v1": {"alert-dispatch"},
        "ai.kades.alert.v1": {"alert-dispatch"},  # the old name, accepted through v1
        "ai.kades.risk.scored.v1": set(),
    }
    for event_type, functions in expected.items():
        assert routed(event_type) == {function_url(f, {}) for f in functions}, event_type
