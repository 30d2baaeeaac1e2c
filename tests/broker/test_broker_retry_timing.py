"""Retry timing exactly as Knative's dispatcher computes it (knative/eventing
pkg/kncloudevents/retries.go, whose Backoff go-retryablehttp calls with the 0-based retry
number): exponential d*2^n, linear d*n, no wait without both policy and delay, `retry: N`
= N+1 attempts, a per-attempt timeout only when set."""
import pytest

from brokertest import manifests, trigger
from kades.broker.config import Delivery, load_eventing


def waits(delivery: Delivery) -> list[float]:
    """The wait after every failed attempt that is followed by another."""
    return [delivery.backoff_s(attempt) for attempt in range(1, delivery.retry + 1)]


def test_exponential_waits_d_2d_4d():
    # Knative's own table: PT0.5S exponential -> 1 s, 2 s, 4 s... for Backoff(1..); the
    # first retry is Backoff(0) = 0.5 s.
    assert waits(Delivery(retry=5, backoff_policy="exponential", backoff_delay_s=0.5)) == \
        pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0])


def test_linear_waits_0_d_2d():
    assert waits(Delivery(retry=5, backoff_policy="linear", backoff_delay_s=2.5)) == \
        pytest.approx([0.0, 2.5, 5.0, 7.5, 10.0])


@pytest.mark.parametrize("policy, delay", [(None, 1.0), ("exponential", 0.0), ("linear", 0.0)])
def test_no_wait_without_both_policy_and_delay(policy, delay):
    assert waits(Delivery(retry=3, backoff_policy=policy, backoff_delay_s=delay)) == [0, 0, 0]


def load(tmp_path, text):
    (tmp_path / "all.yaml").write_text(text)
    return load_eventing(tmp_path)


def test_the_broker_default_spans_about_200_s(tmp_path):
    # config-br-defaults: retry 10, exponential, PT0.2S: 11 attempts, 0.2 * (2^10 - 1) s.
    [t] = load(tmp_path, manifests(trigger("t", "http://x/"))).triggers
    assert t.delivery.retry + 1 == 11
    assert sum(waits(t.delivery)) == pytest.approx(204.6)


def test_the_chain_triggers_linear_span(tmp_path):
    # eventing/210 and 220: retry 10, linear PT1S: 0 + 1 + ... + 9 = 45 s between 11 attempts.
    [t] = load(tmp_path, manifests(trigger("t", "http://x/", delivery={
        "retry": 10, "backoffPolicy": "linear", "backoffDelay": "PT1S"}))).triggers
    assert sum(waits(t.delivery)) == pytest.approx(45.0)


def test_timeout_only_when_set(tmp_path):
    text = manifests(trigger("bounded", "http://x/", delivery={"retry": 1, "timeout": "PT30S"}),
                     trigger("unbounded", "http://y/", delivery={"retry": 1}))
    bounded, unbounded = load(tmp_path, text).triggers
    assert bounded.delivery.timeout_s == 30.0
    assert unbounded.delivery.timeout_s is None  # Knative sets no client timeout then


def test_retry_absent_means_one_attempt(tmp_path):
    [t] = load(tmp_path, manifests(trigger("t", "http://x/", delivery={
        "backoffPolicy": "exponential", "backoffDelay": "PT1S"}))).triggers
    assert t.delivery.retry == 0 and waits(t.delivery) == []
