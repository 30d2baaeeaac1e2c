"""PingSources, run by the development broker: the cluster's periodic jobs, locally.

Knative's PingSource (sources.knative.dev/v1) sends a CloudEvent of type
`dev.knative.sources.ping`, source `/apis/v1/namespaces/<ns>/pingsources/<name>`, on a
cron schedule, with `spec.data` (or `spec.dataBase64`) as its data. Locally the broker
reads the same PingSource manifests and, each minute the schedule matches, puts that
event into the Broker its `sink` names. A Redis mark per (source, minute) makes sure a
minute fires once, whatever the number of restarts.
"""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kades.broker.config import ConfigError, read_manifests
from kades.events.envelope import CloudEvent

SOURCES_API = "sources.knative.dev/v1"
PING_TYPE = "dev.knative.sources.ping"
# minute, hour, day of month, month, day of week (0 or 7 = Sunday)
_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def parse_cron(expression: str) -> tuple[frozenset[int], ...]:
    """The five value sets of a standard cron expression (`*`, `a-b`, `*/n`, `a-b/n`, lists)."""
    parts = expression.split()
    if len(parts) != 5:
        raise ConfigError(f"a schedule has 5 fields (minute hour day month weekday): {expression!r}")
    fields = []
    for text, (low, high) in zip(parts, _FIELDS):
        values: set[int] = set()
        for item in text.split(","):
            span, _, step = item.partition("/")
            try:
                first, last = ((low, high) if span == "*" else
                               tuple(map(int, span.split("-"))) if "-" in span else (int(span),) * 2)
                stride = int(step) if step else 1
            except ValueError:
                raise ConfigError(f"bad schedule field {item!r} in {expression!r}") from None
            if step and "-" not in span and span != "*":
                last = high
            if not low <= first <= last <= high or stride < 1:
                raise ConfigError(f"schedule field {item!r} is outside {low}-{high}")
            values.update(range(first, last + 1, stride))
        fields.append(frozenset(values))
    if 7 in fields[4]:
        fields[4] = fields[4] | {0}
    return tuple(fields)


@dataclass(frozen=True)
class PingSource:
    namespace: str
    name: str
    schedule: tuple[frozenset[int], ...]
    zone: ZoneInfo
    broker_path: str
    content_type: str | None
    data: bytes | None

    @property
    def source(self) -> str:
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"

    def due(self, moment: datetime) -> bool:
        """Whether the schedule fires in the minute of `moment` (in the source's time zone)."""
        local = moment.astimezone(self.zone)
        minute, hour, day, month, weekday = self.schedule
        on_day = local.day in day
        on_weekday = (local.weekday() + 1) % 7 in weekday  # Python: Monday 0; cron: Sunday 0
        # cron: when both day fields are restricted, either one matching is enough
        if len(day) < 31 and len(weekday) < 7:
            day_matches = on_day or on_weekday
        else:
            day_matches = on_day and on_weekday
        return local.minute in minute and local.hour in hour and local.month in month and day_matches

    def event(self, moment: datetime) -> CloudEvent:
        minute = moment.astimezone(timezone.utc).replace(second=0, microsecond=0)
        attributes = {"specversion": "1.0", "type": PING_TYPE, "source": self.source,
                      "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.source}@{minute.isoformat()}")),
                      "time": minute.isoformat().replace("+00:00", "Z")}
        if self.content_type:
            attributes["datacontenttype"] = self.content_type
        data = self.data
        if data is not None and (self.content_type or "").endswith("json"):
            data = json.loads(data)
        return CloudEvent(attributes, data, _has_data=self.data is not None)


def load_pingsources(directory: str | Path) -> list[PingSource]:
    """Every PingSource of the eventing manifests whose sink is a Broker."""
    sources = []
    for file_name, doc in read_manifests(directory):
        if doc.get("kind") != "PingSource" or doc.get("apiVersion") != SOURCES_API:
            continue
        meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
        where = f"{file_name}: PingSource {meta.get('name')}"
        namespace = meta.get("namespace") or "default"
        ref = (spec.get("sink") or {}).get("ref") or {}
        if ref.get("kind") != "Broker":
            raise ConfigError(f"{where}: locally a PingSource's sink must be a Broker ref")
        try:
            zone = ZoneInfo(spec.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}: unknown timezone {spec.get('timezone')!r}") from None
        data = (base64.b64decode(spec["dataBase64"]) if spec.get("dataBase64")
                else spec["data"].encode() if spec.get("data") is not None else None)
        sources.append(PingSource(namespace, meta["name"], parse_cron(spec.get("schedule", "")),
                                  zone, f"/{ref.get('namespace') or namespace}/{ref['name']}",
                                  spec.get("contentType"), data))
    return sources
