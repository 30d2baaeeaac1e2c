"""Who may post to a Broker with sender identity on: Knative's EventPolicy at the ingress.

With `authentication-oidc`, Knative's Broker ingress (knative/eventing
`pkg/broker/ingress/ingress_handler.go`, `pkg/auth/verifier.go` VerifyRequest) checks, after
the event was read and found valid:
- authentication: a bearer token for the Broker's audience, signed by the cluster's issuer,
  not expired; none, or a bad one: 401;
- authorization: when EventPolicies apply to the Broker, the token's subject must be one of
  theirs and the event must pass their `filters`; when none applies, the default mode
  `allow-same-namespace` admits any service account of the Broker's namespace; else 403.
A policy applies to a Broker when its `spec.to` is empty (everything in its namespace),
names the Broker (`ref`) or selects it by label (`selector`, matchLabels). Its subjects
(`pkg/auth/event_policy.go`): a `from.sub` as written, where a trailing `*` matches any rest,
compared without regard to case (SubjectContained); a `from.ref` is the OIDC service account
Eventing makes for that object (`kades.broker.tokens.oidc_subject`), in the ref's namespace,
else the policy's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kades.audiences import broker_audience
from kades.broker.config import Broker, ConfigError, read_manifests
from kades.broker.filters import Filter, compile_trigger_filter, matches
from kades.broker.tokens import oidc_subject
from kades.events.envelope import CloudEvent
from kades.runtime.oidc import Forbidden, Verifier, subject_contained

POLICY_API = "eventing.knative.dev/v1alpha1"
SERVICE_ACCOUNT = "system:serviceaccount:"


@dataclass(frozen=True)
class EventPolicy:
    namespace: str
    name: str
    subjects: tuple[str, ...]
    filter: Filter | None  # spec.filters; None: every event passes

    def admits(self, subject: str, event: CloudEvent) -> bool:
        return subject_contained(subject, self.subjects) and (
            self.filter is None or matches(self.filter, event.attributes))


def same_namespace(subject: str, namespace: str) -> bool:
    """`allow-same-namespace`, the default mode when no policy applies."""
    return subject.startswith(f"{SERVICE_ACCOUNT}{namespace}:")


def policies_for(directory: str | Path, broker: Broker) -> list[EventPolicy]:
    """The EventPolicies of `directory/*.yaml` that apply to `broker`."""
    documents = [doc for _, doc in read_manifests(directory) if isinstance(doc, dict)]
    labels = next((((doc.get("metadata") or {}).get("labels") or {}) for doc in documents
                   if doc.get("kind") == "Broker" and _named(doc, broker.namespace, broker.name)),
                  {})
    found = []
    for doc in documents:
        if doc.get("kind") != "EventPolicy" or doc.get("apiVersion") != POLICY_API:
            continue
        meta = doc.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        spec = doc.get("spec") or {}
        where = f"EventPolicy {namespace}/{meta.get('name', '?')}"
        if namespace == broker.namespace and _applies(spec.get("to") or [], broker.name, labels,
                                                      where):
            found.append(_policy(meta.get("name", "?"), namespace, spec))
    return found


def _named(doc: dict, namespace: str, name: str) -> bool:
    meta = doc.get("metadata") or {}
    return meta.get("name") == name and (meta.get("namespace") or "default") == namespace


def _applies(targets: list[dict], name: str, labels: dict, where: str) -> bool:
    if not targets:
        return True  # an empty `to`: every resource of the namespace
    for target in targets:
        ref, selector = target.get("ref") or {}, target.get("selector") or {}
        if _is_broker(ref) and ref.get("name", "").lower() == name.lower():
            return True
        if selector.get("matchExpressions"):
            raise ConfigError(f"{where}: to.selector.matchExpressions is not read by the "
                              "development broker; select by matchLabels")
        wanted = selector.get("matchLabels") or {}  # none: every Broker (an empty selector)
        if _is_broker(selector) and all(labels.get(k) == v for k, v in wanted.items()):
            return True
    return False


def _is_broker(ref: dict) -> bool:
    group = (ref.get("apiVersion") or "").rpartition("/")[0]
    return group.lower() == "eventing.knative.dev" and (ref.get("kind") or "").lower() == "broker"


def _policy(name: str, namespace: str, spec: dict) -> EventPolicy:
    where = f"EventPolicy {namespace}/{name}"
    subjects = []
    for entry in spec.get("from") or []:
        ref, sub = entry.get("ref"), entry.get("sub")
        if ref:
            group = (ref.get("apiVersion") or "").rpartition("/")[0]
            if not ref.get("kind") or not ref.get("name"):
                raise ConfigError(f"{where}: from.ref needs kind and name, got {ref}")
            subjects.append(oidc_subject(ref.get("namespace") or namespace, ref["name"],
                                         group=group, kind=ref["kind"]))
        elif sub:
            subjects.append(sub)
        else:
            raise ConfigError(f"{where}: a from entry needs ref or sub, got {entry}")
    try:
        compiled = compile_trigger_filter({"filters": spec["filters"]}) if spec.get("filters") else None
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    return EventPolicy(namespace, name, tuple(subjects), compiled)


class SenderCheck:
    """The ingress's check of one Broker: its audience, its issuer, its policies."""

    def __init__(self, broker: Broker, issuer: str, policies: list[EventPolicy]):
        self.namespace, self.policies = broker.namespace, policies
        self.verifier = Verifier(issuer, broker_audience(broker.namespace, broker.name))

    def check(self, authorization: str | None, events: list[CloudEvent]) -> str:
        """The sender's subject; Unauthorized (401), Forbidden (403), or TemporaryFailure
        when the issuer's keys cannot be read (503)."""
        subject = str(self.verifier.verify(authorization)["sub"])
        refuse(subject, events, self.namespace, self.policies)
        return subject


def refuse(subject: str, events: list[CloudEvent], namespace: str,
           policies: list[EventPolicy]) -> None:
    """Forbidden (403) unless the Broker's EventPolicies admit `subject` sending `events`
    (none applying: a service account of the Broker's namespace only). A Trigger's reply is
    checked so too, under the Trigger's own identity (Knative's filter sends it to the
    ingress with the Trigger's token)."""
    if not policies:
        if not same_namespace(subject, namespace):
            raise Forbidden(f"no EventPolicy applies to this Broker and {subject!r} is not "
                            f"a service account of namespace {namespace!r} "
                            "(allow-same-namespace)")
        return
    for event in events:  # every event of a batch, as each would be posted alone
        if not any(policy.admits(subject, event) for policy in policies):
            names = ", ".join(p.name for p in policies)
            raise Forbidden(f"{subject!r} may not send {event.type!r} here: not admitted "
                            f"by the EventPolicies of this Broker ({names})")
