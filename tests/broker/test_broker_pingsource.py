"""PingSources run by the development broker: cron schedules and events queued once a minute."""
from datetime import datetime, timezone

import pytest
import yaml

from brokertest import manifests, trigger, wait_for
from kades.broker.config import ConfigError
from kades.broker.pingsource import PING_TYPE, load_pingsources, parse_cron
from kades.broker.server import DevBroker


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("expression,moment,due", [
    ("*/5 * * * *", "2026-11-26T08:10:00", True),
    ("*/5 * * * *", "2026-11-26T08:11:00", False),
    ("17 3 * * *", "2026-11-26T03:17:30", True),
    ("17 3 * * *", "2026-11-26T04:17:00", False),
    ("0 9 * * 1-5", "2026-11-28T09:00:00", False),   # a Saturday
    ("0 9 * * 1-5", "2026-11-27T09:00:00", True),    # a Friday
    ("0 0 1 * 0", "2026-11-29T00:00:00", True),      # a Sunday: either day field matches
    ("0 0 1 * 7", "2026-11-01T00:00:00", True),      # 7 is Sunday too; the 1st matches anyway
    ("5/20 * * * *", "2026-11-26T08:45:00", True),
    ("1,2,3 * * * *", "2026-11-26T08:04:00", False),
    # the forms Knative's parser (robfig/cron) accepts beside the five numeric fields
    ("@hourly", "2026-11-26T08:00:00", True),
    ("@hourly", "2026-11-26T08:01:00", False),
    ("@daily", "2026-11-26T00:00:59", True),
    ("@weekly", "2026-11-29T00:00:00", True),        # a Sunday
    ("@monthly", "2026-12-01T00:00:00", True),
    ("@yearly", "2026-12-01T00:00:00", False),
    ("0 9 * * MON-FRI", "2026-11-27T09:00:00", True),  # a Friday
    ("0 9 * * mon-fri", "2026-11-28T09:00:00", False),  # a Saturday; names in any case
    ("0 9 ? * SUN", "2026-11-29T09:00:00", True),
    ("0 0 1 JAN *", "2027-01-01T00:00:00", True),
    ("0 0 1 JAN,JUL *", "2026-12-01T00:00:00", False),
    ("CRON_TZ=Europe/Berlin 0 9 * * *", "2026-11-26T08:00:00", True),   # 09:00 CET
    ("CRON_TZ=Europe/Berlin 0 9 * * *", "2026-11-26T09:00:00", False),
    ("TZ=America/New_York 30 0 * * *", "2026-11-26T05:30:00", True),    # 00:30 EST
])
def test_schedules(tmp_path, expression, moment, due):
    (tmp_path / "ping.yaml").write_text(yaml.safe_dump(ping_source("job", expression)))
    [source] = load_pingsources(tmp_path)
    assert source.due(at(moment)) is due


@pytest.mark.parametrize("expression", [
    "* * * *", "61 * * * *", "a * * * *", "*/0 * * * *", "@every 5m", "@fortnightly",
    "CRON_TZ=Mars/Olympus * * * * *", "0 0 L * *", "0 0 * * 5#2", "0 0 0 * * *",
    "CRON_TZ=UTC TZ=UTC * * * * *"])
def test_bad_schedules_are_refused(expression):
    with pytest.raises(ConfigError):
        parse_cron(expression)


def test_spec_timezone_is_the_schedules_zone(tmp_path):
    doc = ping_source("job", "0 9 * * *")
    doc["spec"]["timezone"] = "Asia/Tokyo"
    (tmp_path / "ping.yaml").write_text(yaml.safe_dump(doc))
    [source] = load_pingsources(tmp_path)
    assert source.due(at("2026-11-26T00:00:00")) and not source.due(at("2026-11-26T09:00:00"))
    doc["spec"]["schedule"] = "CRON_TZ=UTC 0 9 * * *"   # Knative refuses both together
    (tmp_path / "ping.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="one time zone"):
        load_pingsources(tmp_path)


def ping_source(name, schedule, data='{"job": "risk-decay"}'):
    return {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource",
            "metadata": {"name": name, "namespace": "kades"},
            "spec": {"schedule": schedule, "contentType": "application/json", "data": data,
                     "sink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                                      "name": "kades"}}}}


def test_a_due_ping_is_delivered_once_per_minute(tmp_path, run_broker, subscribers):
    receiver = subscribers()
    text = manifests(trigger("jobs", receiver.url, type=PING_TYPE))
    (tmp_path / "100.yaml").write_text(text + "---\n" + yaml.safe_dump(ping_source("decay", "* * * * *")))
    broker = run_broker(text, pingsources=load_pingsources(tmp_path))
    moment = at("2026-11-26T08:10:12")
    assert broker.fire_due_pings(moment) == ["/apis/v1/namespaces/kades/pingsources/decay"]
    assert broker.fire_due_pings(at("2026-11-26T08:10:40")) == []   # same minute: once
    wait_for(lambda: receiver.count() == 1, what="the ping delivery")
    headers = receiver.requests[0]["headers"]
    assert headers["ce-type"] == PING_TYPE
    assert headers["ce-source"] == "/apis/v1/namespaces/kades/pingsources/decay"
    assert headers["ce-time"] == "2026-11-26T08:10:00Z"
    assert receiver.requests[0]["body"] == b'{"job":"risk-decay"}'


def test_the_ping_loop_outlives_an_error_that_is_no_outage(tmp_path, run_broker, subscribers,
                                                           monkeypatch):
    """The loop is every PingSource of the broker: a round that fails for a reason other than
    Redis (here one made to) is logged, and the next second's round fires the ping."""
    receiver = subscribers()
    text = manifests(trigger("jobs", receiver.url, type=PING_TYPE))
    (tmp_path / "100.yaml").write_text(text + "---\n" + yaml.safe_dump(ping_source("decay", "* * * * *")))
    rounds, real = [], DevBroker.fire_due_pings

    def first_fails(self, moment):
        rounds.append(moment)
        if len(rounds) == 1:
            raise RuntimeError("a round that fails")
        return real(self, moment)

    monkeypatch.setattr(DevBroker, "fire_due_pings", first_fails)
    run_broker(text, pingsources=load_pingsources(tmp_path))
    wait_for(lambda: receiver.count() >= 1, what="the ping after the failed round")
    assert len(rounds) >= 2
