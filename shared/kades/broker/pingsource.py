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
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from kades.broker.config import ConfigError, read_manifests
from kades.events.envelope import CloudEvent

SOURCES_API = "sources.knative.dev/v1"
PING_TYPE = "dev.knative.sources.ping"
# robfig/cron's descriptors, which Knative's PingSource accepts (cron.ParseStandard)
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_NAMES = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class Schedule:
    """A PingSource schedule as Knative reads it: five fields or a descriptor, and a zone."""
    expression: str
    zone: ZoneInfo

    def due(self, moment: datetime) -> bool:
        """Whether the schedule fires in the minute of `moment` (in the schedule's zone)."""
        minute = moment.astimezone(self.zone).replace(second=0, microsecond=0)
        return next(CronSim(self.expression, minute - timedelta(seconds=1))) == minute


def parse_cron(text: str, timezone_name: str | None = None) -> Schedule:
    """A schedule as Knative's PingSource validates it (robfig/cron's standard parser): five
    fields with names (`MON-FRI`, `JAN`) and `?`, a descriptor (`@hourly`), an optional
    `CRON_TZ=`/`TZ=` prefix; `spec.timezone` goes in front as a prefix, as Knative does."""
    parts = text.split()
    if timezone_name:
        parts.insert(0, f"CRON_TZ={timezone_name}")
    zone_names = [p.split("=", 1)[1] for p in parts if p.startswith(("CRON_TZ=", "TZ="))]
    parts = [p for p in parts if not p.startswith(("CRON_TZ=", "TZ="))]
    if len(zone_names) > 1:
        raise ConfigError(f"a schedule has one time zone (spec.timezone or CRON_TZ=): {text!r}")
    try:
        zone = ZoneInfo(zone_names[0] if zone_names else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {zone_names[0]!r} in {text!r}") from None
    if len(parts) == 1 and parts[0].startswith("@"):
        if parts[0] not in _DESCRIPTORS:  # @every runs from when it was added: no fixed minute
            raise ConfigError(f"unsupported schedule descriptor {parts[0]!r}")
        parts = _DESCRIPTORS[parts[0]].split()
    if len(parts) != 5:
        raise ConfigError(f"a schedule has 5 fields (minute hour day month weekday): {text!r}")
    # robfig reads `?` as `*`; cronsim's extensions (L, W, #) are not robfig's
    parts = ["*" if p == "?" else p.upper() for p in parts]
    if any(re.search(r"[A-Z#]", _NAMES.sub("", p)) for p in parts):
        raise ConfigError(f"bad schedule {text!r}: L, W and # are not cron's standard fields")
    expression = " ".join(parts)
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as error:
        raise ConfigError(f"bad schedule {text!r}: {error}") from None
    return Schedule(expression, zone)


@dataclass(frozen=True)
class PingSource:
    namespace: str
    name: str
    schedule: Schedule
    broker_path: str
    content_type: str | None
    data: bytes | None

    @property
    def source(self) -> str:
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"

    def due(self, moment: datetime) -> bool:
        return self.schedule.due(moment)

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
            schedule = parse_cron(spec.get("schedule", ""), spec.get("timezone"))
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        data = (base64.b64decode(spec["dataBase64"]) if spec.get("dataBase64")
                else spec["data"].encode() if spec.get("data") is not None else None)
        broker_path = f"/{ref.get('namespace') or namespace}/{ref['name']}"
        sources.append(PingSource(namespace, meta["name"], schedule, broker_path,
                                  spec.get("contentType"), data))
    return sources
