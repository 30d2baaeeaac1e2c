"""Every setting KADES reads, in one frozen object built from the environment.

Read once per process with `settings()`; tests build their own with `Settings.from_env(env)`.
Units are in the names (`_s` seconds, `_bytes`).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, fields
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

# Local development defaults: non-default ports so a system Redis/PostgreSQL is never touched.
DEFAULT_REDIS_PORT = 6390
DEFAULT_POSTGRES_PORT = 5440
DEFAULT_BROKER_PORT = 8090
DEFAULT_API_PORT = 8000
FIRST_FUNCTION_PORT = 8101

# Where each function listens locally (the development broker resolves Trigger subscribers
# with it; on a cluster Knative resolves the Service names instead). Override one with
# KADES_PORT_<NAME> (upper case, dashes as underscores).
FUNCTION_PORTS = {
    "api": DEFAULT_API_PORT,
    "market-aggregator": FIRST_FUNCTION_PORT,
    "chain-analysis": FIRST_FUNCTION_PORT + 1,
    "whale-detection": FIRST_FUNCTION_PORT + 2,
    "temporal-analysis": FIRST_FUNCTION_PORT + 3,
    "sentiment-analysis": FIRST_FUNCTION_PORT + 4,
    "risk-scoring": FIRST_FUNCTION_PORT + 5,
    "alert-dispatch": FIRST_FUNCTION_PORT + 6,
    "dead-letter": FIRST_FUNCTION_PORT + 7,
}


def function_port(name: str, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    override = env.get("KADES_PORT_" + name.upper().replace("-", "_"))
    return int(override) if override else FUNCTION_PORTS[name]


def function_url(name: str, env: Mapping[str, str] | None = None) -> str:
    return f"http://127.0.0.1:{function_port(name, env)}"


@dataclass(frozen=True)
class Settings:
    redis_url: str = f"redis://127.0.0.1:{DEFAULT_REDIS_PORT}/0"
    database_url: str = f"postgresql://kades@127.0.0.1:{DEFAULT_POSTGRES_PORT}/kades"
    # Where a function sends events beyond its one reply (Knative's SinkBinding injects K_SINK).
    sink_url: str = f"http://127.0.0.1:{DEFAULT_BROKER_PORT}/kades/kades"
    function_name: str = "kades"
    event_source: str = "/kades/local"
    log_level: str = "INFO"
    dedup_ttl_s: int = 7 * 24 * 3600
    # A chain block of 20,000 records is about 9 MB of JSON; anything larger is refused unread.
    max_event_bytes: int = 16 * 1024 * 1024
    redis_timeout_s: float = 2.0
    database_timeout_s: float = 5.0
    # risk-scoring / alerts / api (issue 7)
    # temporal-analysis stores a tick's score from this level up (calm ticks score ~0, and
    # every tick is in token_metrics already): storage only where something happened.
    temporal_score_floor: float = 0.3
    risk_half_life_s: float = 6 * 3600.0
    alert_default_threshold: float = 0.7   # tokens nobody tracks alert from "high" on
    alert_hysteresis: float = 0.1          # an alert clears below threshold - hysteresis
    jwt_secret: str = ""                   # HS256 bearer tokens; empty: only API keys work
    # Webhooks to private addresses (127.0.0.1, 10/8, cluster names): local development only.
    webhook_allow_private: bool = False
    enterprise_rate_per_min: int = 3000
    enterprise_burst: int = 5000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values = fields_from_env(cls, env, "KADES_")
        if "sink_url" not in values and env.get("K_SINK"):
            values["sink_url"] = env["K_SINK"]
        if "function_name" not in values and env.get("K_SERVICE"):
            values["function_name"] = env["K_SERVICE"]
        return cls(**values)


def fields_from_env(cls, env: Mapping[str, str], prefix: str) -> dict:
    """The fields of dataclass `cls` that `env` sets as PREFIX + NAME (upper case), each
    typed as its default: int, float, bool (true/1/yes/on) or str."""
    values = {}
    for field in fields(cls):
        raw = env.get(prefix + field.name.upper())
        if raw is None:
            continue
        kind = type(field.default)
        if kind is bool:
            values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            values[field.name] = kind(raw) if kind in (int, float) else raw
    return values


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
