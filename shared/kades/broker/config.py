"""Read the Knative Broker and Trigger manifests of `eventing/` into plain, frozen objects.

Only `eventing.knative.dev/v1` Broker and Trigger are read; every other kind in the files
(PingSource, SinkBinding, ...) is skipped. Rules that Knative's admission webhook enforces
(not the CRD schema) are checked here too, so a manifest the cluster would refuse never
runs locally: `retry` >= 0, `backoffPolicy` linear or exponential, ISO-8601 durations,
filter attribute names `^[a-z][a-z0-9]*$`, one dialect per `filters` entry.
Which Triggers are ordered follows the Broker class (`classes`).
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from kades.audiences import broker_audience, service_audience
from kades.broker.classes import CHANNEL_BASED, broker_class, is_ordered
from kades.broker.filters import Filter, compile_trigger_filter
from kades.errors import KadesError
from kades.settings import FUNCTION_PORTS, function_url

EVENTING_API = "eventing.knative.dev/v1"
SERVING_API = "serving.knative.dev/v1"
_DURATION = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


class ConfigError(KadesError, ValueError):
    """The eventing manifests are not something the development broker (or Knative) accepts."""


def parse_duration_s(text: str) -> float:
    """ISO-8601 duration (`PT0.2S`, `PT1M30S`, `P1D`) in seconds; years and months are ambiguous."""
    if not isinstance(text, str):  # YAML's `timeout: 30`, a number: a TypeError at start
        raise ConfigError(f"not an ISO-8601 duration (e.g. PT0.2S), a string: {text!r}")
    match = _DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ConfigError(f"not an ISO-8601 duration (e.g. PT0.2S): {text!r}")
    scale = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(v) * scale[k] for k, v in match.groupdict().items() if v)


@dataclass(frozen=True)
class Delivery:
    """Knative's DeliverySpec, resolved: `retry` N means N+1 attempts in all; `timeout_s`
    None means no per-attempt limit (Knative sets the client timeout only when given)."""

    retry: int = 0
    backoff_policy: str | None = None
    backoff_delay_s: float = 0.0
    timeout_s: float | None = None
    dead_letter_url: str | None = None
    dead_letter_audience: str | None = None  # what a token for the sink is for (`audience`)
    format: str | None = None  # "json": structured mode; "binary" or unset: binary mode

    def backoff_s(self, attempt: int) -> float:
        """Wait after failed attempt number `attempt` (1-based), as Knative's dispatcher runs
        it (pkg/kncloudevents/retries.go `RetryConfigFromDeliverySpec`, called by
        go-retryablehttp with the 0-based retry number): exponential d, 2d, 4d...; linear
        0, d, 2d...; no wait unless both backoffPolicy and backoffDelay are set."""
        retry_number = attempt - 1
        if self.backoff_policy == "exponential":
            return self.backoff_delay_s * 2 ** retry_number
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * retry_number
        return 0.0


@dataclass(frozen=True)
class Broker:
    namespace: str
    name: str
    delivery: Delivery
    broker_class: str = CHANNEL_BASED

    @property
    def path(self) -> str:
        return f"/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Trigger:
    namespace: str
    name: str
    broker: str
    subscriber_url: str
    delivery: Delivery
    filter: Filter = field(compare=False)
    # One partition key's events one at a time, in order (`classes.is_ordered`).
    ordered: bool = False
    # Keyless events of an ordered Trigger: spread over its lanes (Kafka) or all in lane 0.
    spread_keyless: bool = True
    # The audience of the subscriber's token with authentication-oidc (None: no token).
    subscriber_audience: str | None = None
    # The subscriber's replicas, when it has several (`--subscriber NAME=URL` given more than
    # once): deliveries take them in turn, one request each (`replica_urls`).
    replicas: tuple[str, ...] = ()

    @property
    def replica_urls(self) -> tuple[str, ...]:
        """Where deliveries go: every replica, else the one subscriber URL."""
        return self.replicas or (self.subscriber_url,)


@dataclass(frozen=True)
class Eventing:
    brokers: dict[tuple[str, str], Broker]
    triggers: list[Trigger]

    def triggers_of(self, broker: Broker) -> list[Trigger]:
        return [t for t in self.triggers
                if t.namespace == broker.namespace and t.broker == broker.name]


# The Broker default of Knative's config-br-defaults when a Broker declares no delivery.
DEFAULT_BROKER_DELIVERY = {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}


def load_eventing(directory: str | Path, *, overrides: Mapping[str, str] | None = None,
                  env: Mapping[str, str] | None = None,
                  broker_base_url: str = "http://127.0.0.1:8090",
                  faithful_order: bool = True) -> Eventing:
    """Every Broker and Trigger in `directory/*.yaml` (files in name order, i.e. apply order).

    `overrides` maps a Trigger name or a Service name to a URL (`--subscriber NAME=URL`), or
    to a sequence of URLs, one per replica of that subscriber;
    `broker_base_url` is where a destination that refers to a Broker is sent;
    `faithful_order` see `classes`.
    """
    documents = read_manifests(directory)
    resolver = _Resolver(overrides or {}, env, broker_base_url.rstrip("/"))
    brokers: dict[tuple[str, str], Broker] = {}
    for source, doc in documents:
        if _is(doc, "Broker"):
            broker = _broker(doc, resolver, source)
            brokers[(broker.namespace, broker.name)] = broker
    triggers = [_trigger(doc, brokers, resolver, source, faithful_order)
                for source, doc in documents if _is(doc, "Trigger")]
    names = [(t.namespace, t.name) for t in triggers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"Trigger names are used twice: {duplicates}")
    unused = sorted(set(resolver.overrides) - resolver.used)
    if unused:  # a typo's override would be ignored without a word
        raise ConfigError(f"--subscriber names no Trigger or Service these manifests deliver "
                          f"to: {unused}; Triggers: {sorted(t.name for t in triggers)}")
    return Eventing(brokers, triggers)


def read_manifests(directory: str | Path) -> list[tuple[str, dict]]:
    """(file name, object) of every YAML document in `directory/*.yaml`, in apply order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"eventing directory not found: {directory}")
    documents = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            documents += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
        except yaml.YAMLError as error:
            raise ConfigError(f"{path.name}: not valid YAML: {error}") from None
    return documents


def _is(doc: Any, kind: str) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == kind and doc.get("apiVersion") == EVENTING_API


def _meta(doc: dict, source: str) -> tuple[str, str]:
    meta = doc.get("metadata") or {}
    if not meta.get("name"):
        raise ConfigError(f"{source}: {doc.get('kind')} without metadata.name")
    return meta.get("namespace") or "default", meta["name"]


def _broker(doc: dict, resolver: "_Resolver", source: str) -> Broker:
    namespace, name = _meta(doc, source)
    spec = doc.get("spec") or {}
    delivery = spec.get("delivery") or DEFAULT_BROKER_DELIVERY
    return Broker(namespace, name, _delivery(delivery, namespace, resolver, f"{source}: Broker {name}"),
                  broker_class((doc.get("metadata") or {}).get("annotations")))


def _trigger(doc: dict, brokers: dict, resolver: "_Resolver", source: str,
             faithful_order: bool) -> Trigger:
    namespace, name = _meta(doc, source)
    where = f"{source}: Trigger {name}"
    spec = doc.get("spec") or {}
    broker_name = spec.get("broker") or (spec.get("brokerRef") or {}).get("name")
    if not broker_name:
        raise ConfigError(f"{where}: spec.broker is required")
    broker = brokers.get((namespace, broker_name))
    if broker is None:
        raise ConfigError(f"{where}: no Broker {namespace}/{broker_name} in the eventing directory")
    if not spec.get("subscriber"):
        raise ConfigError(f"{where}: spec.subscriber is required")
    urls = resolver.destinations(spec["subscriber"], namespace, where, trigger=name)
    # A Trigger's delivery replaces the Broker's as a whole (no field-by-field merge), but
    # one without a deadLetterSink still uses the Broker's (DESIGN.md, from Knative's code).
    delivery = (_delivery(spec["delivery"], namespace, resolver, where)
                if spec.get("delivery") else broker.delivery)
    if delivery.dead_letter_url is None and broker.delivery.dead_letter_url:
        delivery = replace(delivery, dead_letter_url=broker.delivery.dead_letter_url,
                           dead_letter_audience=broker.delivery.dead_letter_audience)
    try:
        compiled = compile_trigger_filter(spec)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    annotations = (doc.get("metadata") or {}).get("annotations")
    ordered = is_ordered(broker.broker_class, annotations, faithful=faithful_order)
    return Trigger(namespace, name, broker_name, urls[0], delivery, compiled, ordered,
                   spread_keyless=faithful_order,
                   subscriber_audience=destination_audience(spec["subscriber"], namespace),
                   replicas=urls if len(urls) > 1 else ())


def _delivery(spec: dict, namespace: str, resolver: "_Resolver", where: str) -> Delivery:
    retry = spec.get("retry", 0)
    if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
        raise ConfigError(f"{where}: delivery.retry must be an integer >= 0, got {retry!r}")
    policy = spec.get("backoffPolicy")
    if policy not in (None, "linear", "exponential"):
        raise ConfigError(f"{where}: delivery.backoffPolicy must be linear or exponential")
    try:
        delay = parse_duration_s(spec["backoffDelay"]) if spec.get("backoffDelay") else 0.0
        timeout = parse_duration_s(spec["timeout"]) if spec.get("timeout") else None
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    form = spec.get("format")
    if form not in (None, "json", "binary"):
        raise ConfigError(f"{where}: delivery.format must be json or binary, got {form!r}")
    sink = spec.get("deadLetterSink")
    dead_letter = resolver.destination(sink, namespace, f"{where} deadLetterSink") if sink else None
    return Delivery(retry, policy, delay, timeout, dead_letter,
                    destination_audience(sink, namespace) if sink else None, form)


def destination_audience(dest: dict, namespace: str) -> str | None:
    """The audience Knative gets a token for when it sends to `dest`: its own `audience`, else
    the one its ref announces (a Broker; a Knative Service announces none, but `kades
    manifests` names it on every destination, so the same is assumed here); a bare uri: none."""
    if dest.get("audience"):
        return dest["audience"]
    ref = dest.get("ref") or {}
    kind, api, name = ref.get("kind"), ref.get("apiVersion"), ref.get("name")
    ref_namespace = ref.get("namespace") or namespace
    if kind == "Service" and api == SERVING_API and name:
        return service_audience(ref_namespace, name)
    if kind == "Broker" and api == EVENTING_API and name:
        return broker_audience(ref_namespace, name)
    return None


class _Resolver:
    """Knative destinations (`ref`, `uri`, or both) to local URLs."""

    def __init__(self, overrides: Mapping[str, str | Sequence[str]],
                 env: Mapping[str, str] | None, broker_base: str):
        self.overrides = {name: (url,) if isinstance(url, str) else tuple(url)
                          for name, url in overrides.items()}
        self.env, self.broker_base = env, broker_base
        self.used: set[str] = set()  # the overrides some destination took

    def destination(self, dest: dict, namespace: str, where: str) -> str:
        return self.destinations(dest, namespace, where)[0]

    def destinations(self, dest: dict, namespace: str, where: str, *,
                     trigger: str | None = None) -> tuple[str, ...]:
        """The destination's URL, or one per replica when an override names several."""
        if trigger and trigger in self.overrides:
            self.used.add(trigger)
            return self.overrides[trigger]
        ref, uri = dest.get("ref"), dest.get("uri")
        if not ref and not uri:
            raise ConfigError(f"{where}: a destination needs ref or uri")
        if not ref:
            if not urllib.parse.urlsplit(uri).scheme:
                raise ConfigError(f"{where}: uri without ref must be absolute, got {uri!r}")
            return (uri,)
        bases = self._ref(ref, namespace, where)
        # Knative resolves a relative uri against the ref's address.
        return tuple(urllib.parse.urljoin(base.rstrip("/") + "/", uri.lstrip("/")) if uri
                     else base for base in bases)

    def _ref(self, ref: dict, namespace: str, where: str) -> tuple[str, ...]:
        kind, api, name = ref.get("kind"), ref.get("apiVersion"), ref.get("name")
        if kind == "Service" and api == SERVING_API and name:
            if name in self.overrides:
                self.used.add(name)
                return self.overrides[name]
            if name not in FUNCTION_PORTS:
                raise ConfigError(f"{where}: no local port for Service {name!r}; "
                                  f"pass --subscriber {name}=URL")
            return (function_url(name, self.env),)
        if kind == "Broker" and api == EVENTING_API and name:
            return (f"{self.broker_base}/{ref.get('namespace') or namespace}/{name}",)
        raise ConfigError(f"{where}: cannot resolve ref {kind} {api} {name!r} locally "
                          "(only serving.knative.dev/v1 Service and eventing.knative.dev/v1 Broker)")
