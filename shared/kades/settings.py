"""Every setting KADES reads, in one frozen object built from the environment.

Read once per process: with `settings()`, and by a function's Context when its entry point makes
it (kades.runtime.function), so a fresh app reads the environment afresh; tests build their own
with `Settings.from_env(env)`.
Units are in the names (`_s` seconds, `_bytes`). A malformed value is a `SettingsError` naming
every bad variable; an unknown KADES_* variable (a typo) is logged once per process when the
environment is first read (`report_unknown_variables`).
"""
from __future__ import annotations

import difflib
import functools
import logging
import os
import re
from dataclasses import dataclass, field, fields
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from kades.chain.thresholds import PREFIX as CHAIN_PREFIX, ChainThresholds
from kades.envfields import SettingsError, bounded, fields_from_env, parse_value

logger = logging.getLogger("kades.settings")

# Local development defaults: non-default ports so a system Redis/PostgreSQL is never touched.
DEFAULT_REDIS_PORT = 6390
DEFAULT_POSTGRES_PORT = 5440
DEFAULT_BROKER_PORT = 8090
DEFAULT_BROKER_OIDC_PORT = 8091  # the development broker's OIDC issuer (--oidc)
DEFAULT_API_PORT = 8000
FIRST_FUNCTION_PORT = 8101
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# What the clients can connect to (redis-py's from_url, libpq's URIs); anything else would
# fail later, as a traceback, and a value not meant as a URL would be read as a file name.
REDIS_SCHEMES = ("redis", "rediss", "unix")
DATABASE_SCHEMES = ("postgresql", "postgres")
HTTP_SCHEMES = ("http", "https")

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


def port_variable(name: str) -> str:
    """The variable that overrides function `name`'s local port: KADES_PORT_<NAME>."""
    return "KADES_PORT_" + name.upper().replace("-", "_")


def function_port(name: str, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    variable = port_variable(name)
    override = env.get(variable)
    if not override:
        return FUNCTION_PORTS[name]
    port = parse_value(variable, override, int)
    if not 0 < port < 65536:
        raise SettingsError([f"{variable}={override!r}: expected a port number (1-65535)"])
    return port


def function_url(name: str, env: Mapping[str, str] | None = None) -> str:
    return f"http://127.0.0.1:{function_port(name, env)}"


@dataclass(frozen=True)
class Settings:
    redis_url: str = f"redis://127.0.0.1:{DEFAULT_REDIS_PORT}/0"
    database_url: str = f"postgresql://kades@127.0.0.1:{DEFAULT_POSTGRES_PORT}/kades"
    # Where a function sends events beyond its one reply (Knative's SinkBinding injects K_SINK).
    sink_url: str = f"http://127.0.0.1:{DEFAULT_BROKER_PORT}/kades/kades"
    function_name: str = "kades"
    log_level: str = field(default="INFO", metadata={"choices": LOG_LEVELS})
    dedup_ttl_s: int = bounded(7 * 24 * 3600, above=0)
    claim_lease_s: float = bounded(10.0, above=0)  # a dead handler's claim frees this soon, within Trigger retries
    # A chain block of 20,000 records is about 9 MB of JSON; anything larger is refused unread.
    max_event_bytes: int = bounded(16 * 1024 * 1024, above=0)
    redis_timeout_s: float = bounded(2.0, above=0)
    # Past one Redis (kades.clients.redis_client; docs/operations.md): with redis_cluster the
    # URL names any node of a Redis Cluster (its database is 0) and the client finds the rest;
    # with redis_sentinels ("host:port,host:port") the client asks those Sentinels for the
    # primary of redis_sentinel_master, and again after a failover (the URL then gives only
    # the database and the password).
    redis_cluster: bool = False
    redis_sentinels: str = ""
    redis_sentinel_master: str = "kades"
    # A primary's replication is asynchronous: an event is acknowledged (2xx) only once its
    # done mark, and so every write before it, is on every replica in step with the primary
    # and on at least this many (Redis WAIT, within redis_wait_timeout_s, else 503 and the
    # Broker retries), and only if the primary did not change while it was handled
    # (kades.runtime.dedup). 0: no wait (one Redis, or a cluster).
    redis_wait_replicas: int = bounded(0, minimum=0)
    redis_wait_timeout_s: float = bounded(0.5, above=0)
    database_timeout_s: float = bounded(5.0, above=0)
    # Connections one process keeps to PostgreSQL at most (its pool): every replica of every
    # function that stores adds this many at its max-scale, which the server's
    # max_connections must hold (tests/knative/test_connection_budget.py).
    database_pool_size: int = bounded(4, minimum=1)
    # A statement (or its wait for a lock) running this long is cancelled: a 503 that gives the
    # event's claim back, where a handler stuck on a migration's lock or an idle transaction
    # held it, renewed, until the Broker's retries ran out and dead-lettered the event. Below
    # every Trigger's delivery timeout (30 s and up, eventing/).
    database_statement_timeout_s: float = bounded(20.0, minimum=0)  # 0: none (PostgreSQL's)
    database_lock_timeout_s: float = bounded(10.0, minimum=0)
    # risk-scoring / alerts / api (issue 7)
    # temporal-analysis stores a tick's score from this level up (calm ticks score ~0, and
    # every tick is in token_metrics already): storage only where something happened.
    temporal_score_floor: float = bounded(0.3, minimum=0)
    # Order from unordered delivery (kades.runtime.reorder): a point may arrive this far
    # (event time) behind the newest one of its key and still be analysed in its place; one
    # waiting this long (wall clock) is analysed anyway, for a key that went quiet.
    reorder_lateness_s: float = bounded(30.0, minimum=0)
    reorder_idle_s: float = bounded(60.0, minimum=0)
    risk_half_life_s: float = bounded(6 * 3600.0, above=0)
    alert_default_threshold: float = bounded(0.7, minimum=0, maximum=1)  # tokens nobody tracks alert from "high" on
    alert_hysteresis: float = bounded(0.1, minimum=0, maximum=1)  # an alert clears below threshold - hysteresis
    max_tracked_per_key: int = bounded(1000, minimum=1)  # tokens one API key may track; more: 409
    jwt_secret: str = ""                   # HS256 bearer tokens; empty: only API keys work
    # Webhooks to private addresses (127.0.0.1, 10/8, cluster names): local development only.
    webhook_allow_private: bool = False
    enterprise_rate_per_min: int = bounded(3000, above=0)
    enterprise_burst: int = bounded(5000, above=0)
    # Sender identity (Knative's authentication-oidc; kades.runtime.oidc): set the issuer and
    # every function but api requires a Broker token for its audience on POST /.
    oidc_issuer: str = ""                  # e.g. https://kubernetes.default.svc; empty: off
    oidc_audience: str = ""                # rendered per Service: serving.knative.dev/service/kades/<name>
    # whose tokens (`sub`, comma-separated; a trailing * matches any rest); rendered per
    # Service: system:serviceaccount:<its namespace>:*. Empty: every subject the issuer signed.
    oidc_subjects: str = ""
    oidc_jwks_url: str = ""                # empty: the issuer's /.well-known/openid-configuration
    oidc_ca_file: str = ""                 # TLS trust for the JWKS; empty: the system's CAs
    oidc_jwks_token_file: str = ""         # bearer for fetching the JWKS (the API server wants one)
    oidc_jwks_ttl_s: float = bounded(300.0, minimum=0)
    # The sender's side: a file holding the token for the Broker's audience, sent as
    # `Authorization: Bearer` with every event posted to the sink (kades.runtime.tokenfile);
    # rendered into every Service (a projected service-account token). Empty: no token.
    sink_token_file: str = ""
    # The development broker signs every delivery with its own issuer (kades.broker.tokens),
    # served on 127.0.0.1 at this port: `kades broker --oidc`, `kades up --oidc`. Off by default.
    broker_oidc: bool = False
    broker_oidc_port: int = bounded(DEFAULT_BROKER_OIDC_PORT, minimum=1, maximum=65535)
    # ... and, if set, keeps a token for the Broker in this folder for every service account its
    # EventPolicy names (<namespace>.<broker>/<account>), as the kubelet projects them into pods.
    broker_oidc_token_dir: str = ""
    # Development broker (kades.broker): with faithful order it is as unordered as the Broker
    # class the manifests declare; off, every Trigger with the Kafka ordering annotation is
    # ordered per partition key and keyless events keep their arrival order (kinder).
    broker_faithful_order: bool = True
    # Chaos on top of the class (kades.broker.chaos), for tests: shuffle deliveries within
    # windows of this many events, deliver this fraction twice, hold this fraction of
    # deliveries back up to delay_max_s; one seed makes a run repeatable.
    broker_chaos_reorder_window: int = 0
    broker_chaos_duplicate_rate: float = 0.0
    broker_chaos_delay_rate: float = 0.0
    broker_chaos_delay_max_s: float = 0.0
    broker_chaos_seed: int = 0
    # Tests only (kades.runtime.faults): fail these steps of these functions with these
    # probabilities, "function:step:probability,..."; empty (always in production): none.
    fault_points: str = ""
    fault_seed: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        if env is None:  # the process's own environment: where a typo would go unnoticed
            env = os.environ
            report_unknown_variables(env)
        # Every bad variable in one error: the URLs' problems with the typed values'.
        problems = [f"{variable}={shown_url(env[variable])!r}: {problem}"
                    for variable, check in (("KADES_REDIS_URL", redis_url_problem),
                                            ("KADES_DATABASE_URL", database_url_problem))
                    if variable in env and (problem := check(env[variable]))]
        if problem := jwt_secret_problem(env.get("KADES_JWT_SECRET", "")):
            problems.append(f"KADES_JWT_SECRET: {problem}")  # (the secret itself not shown)
        try:
            values = fields_from_env(cls, env, "KADES_")
        except SettingsError as error:
            raise SettingsError(error.problems + problems) from None
        if problems:
            raise SettingsError(problems)
        if "sink_url" not in values and env.get("K_SINK"):
            values["sink_url"] = env["K_SINK"]
        if "function_name" not in values and env.get("K_SERVICE"):
            values["function_name"] = env["K_SERVICE"]
        return cls(**values)


# KADES_* variables read outside the Settings and ChainThresholds dataclasses, and by whom.
# With the fields of both and KADES_PORT_<NAME>, they are every name a process accepts
# (tests/runtime/test_settings.py checks that the repository reads no other).
OTHER_VARIABLES = {
    "KADES_BROKER_HOST": "kades broker --host",
    "KADES_BROKER_PORT": "kades broker --port, kades up",
    "KADES_BROKER_WORKERS": "kades broker --workers",
    "KADES_EVENTING_DIR": "kades broker --eventing-dir",
    # Set by the cluster ConfigMap (knative/base/100-configmap.yaml), read by no code yet.
    "KADES_ENVIRONMENT": "the cluster ConfigMap",
    # The test harness (tests/conftest.py, tests/api, tests/eval).
    "KADES_TEST_DATABASE": "tests: the test database's name",
    "KADES_TEST_REDIS_DB": "tests: the test Redis database number",
    "KADES_TEST_REDIS_CLUSTER": "tests: run on a local Redis Cluster instead",
    "KADES_REPLICA": "tests: a replica's name in tests/broker/functions/token_total",
    "KADES_TEST_API_LOG": "tests: where the api server of the API tests logs",
    "KADES_TEST_ARTIFACTS": "tests: where the browser test writes screenshots",
    "KADES_EVAL_REDIS_DB": "make eval: its Redis database number",
}


def known_variables() -> frozenset[str]:
    """Every KADES_* variable some process or test reads."""
    names = {"KADES_" + f.name.upper() for f in fields(Settings)}
    names |= {CHAIN_PREFIX + f.name.upper() for f in fields(ChainThresholds)}
    names |= {port_variable(name) for name in FUNCTION_PORTS}
    return frozenset(names | set(OTHER_VARIABLES))


def unknown_variables(env: Mapping[str, str]) -> dict[str, str | None]:
    """KADES_* names in `env` that nothing reads, each with the closest known name (or None)."""
    known = known_variables()
    # Compared without the prefix every name shares, which would make any two look alike.
    stems = {name.removeprefix("KADES_"): name for name in known}

    def closest(name: str) -> str | None:
        match = difflib.get_close_matches(name.removeprefix("KADES_"), stems, n=1)
        return stems[match[0]] if match else None
    return {name: closest(name) for name in sorted(env)
            if name.startswith("KADES_") and name not in known}


_reported: set[str] = set()


def report_unknown_variables(env: Mapping[str, str]) -> None:
    """Log a warning for each unknown KADES_* variable in `env`, once per process."""
    for name, closest in unknown_variables(env).items():
        if name in _reported:
            continue
        _reported.add(name)
        hint = f"; did you mean {closest}?" if closest else ""
        logger.warning(f"unknown setting {name} is ignored{hint}",
                       extra={"fields": {"variable": name, "closest": closest}})


# A libpq key=value connection string's password (quoted 'like this' or not), which the
# database URL may be instead of a URL: it was printed whole.
DSN_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` (or a key=value connection string) with its password replaced by `***`, safe
    to print or log."""
    if "://" not in url:
        return DSN_PASSWORD.sub(r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


MIN_JWT_SECRET_BYTES = 32  # HS256's key: whoever guesses it mints any key's bearer tokens


def jwt_secret_problem(secret: str) -> str | None:
    """Why a JWT signing secret may not be used (None: it may, or it is unset: tokens off).
    The Secret template's CHANGE_ME, or a short one, let anyone who knows a key id forge that
    key's bearer tokens."""
    if not secret:
        return None
    if secret.strip().upper() == "CHANGE_ME":
        return "still the template's CHANGE_ME: set a random secret (openssl rand -hex 32)"
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        return f"{len(secret.encode())} bytes; HS256 wants at least {MIN_JWT_SECRET_BYTES}"
    return None


def redis_url_problem(url: str) -> str | None:
    return url_problem(url, REDIS_SCHEMES)


def database_url_problem(url: str) -> str | None:
    """What libpq would not take in `url`: a URL of another scheme, or what is neither a URL
    nor a key=value connection string (a URL may name several hosts: host1:5432,host2:5432)."""
    if "://" in url and urlsplit(url).scheme not in DATABASE_SCHEMES:
        return url_problem(url, DATABASE_SCHEMES)
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # an image without a database client never connects to one
        return None
    try:
        conninfo_to_dict(url)
    except ProgrammingError as error:  # the message says what libpq found
        return f"not a PostgreSQL connection URL or string ({str(error).strip()})"
    return None


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What `url` lacks to be a URL of one of `schemes` ("expected ..."), None when nothing:
    the scheme, a port that is a number and, for Redis, a database that is one."""
    names = [scheme + "://" for scheme in schemes]
    expected = f"expected a {', '.join(names[:-1])} or {names[-1]} URL"
    parts, unreadable = _split_url(url)
    if unreadable:
        return f"{expected} ({unreadable})"
    if parts.scheme not in schemes:
        return expected
    if parts.scheme in REDIS_SCHEMES:
        # as redis-py reads it: ?db=N, else (not for a socket) the path
        path = "" if parts.scheme == "unix" else unquote(parts.path).replace("/", "")
        database = parse_qs(parts.query).get("db", [path])[-1]
        if database and not database.isdecimal():
            return f"expected a database number, got {database!r}"
    return None


def http_url_problem(url: str) -> str | None:
    """Why `url` is no http:// or https:// URL with a host (a sink, an ingress, an RPC node),
    None when it is one: given on a command line, it would otherwise fail as if the server
    were away."""
    expected = "expected an http:// or https:// URL"
    parts, unreadable = _split_url(url)
    if unreadable:
        return f"{expected} ({unreadable})"
    if parts.scheme not in HTTP_SCHEMES or not parts.hostname:
        return expected
    return None


def _split_url(url: str):
    """(the parts of `url`, None), or (None, why urlsplit cannot read it or its port)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is no number raises ValueError)
    except ValueError as error:
        return None, str(error)
    return parts, None


def shown_url(url: str) -> str:
    """`url` to print in an error: without its password, even when it cannot be read."""
    try:
        return redact_url(url)
    except ValueError:  # what urlsplit cannot read: all before the last @ but the scheme goes
        head, at, host = url.rpartition("@")
        scheme = head.split("://", 1)[0] + "://" if "://" in head else ""
        return f"{scheme}***@{host}" if at else url


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
