"""Redis and PostgreSQL clients: created lazily, once per process, never at import."""
from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import http.cookiejar
import threading
import time

from urllib.parse import urlsplit

import httpx
import psycopg
import redis
from psycopg_pool import ConnectionPool
from redis._parsers.base import BaseParser
from redis.backoff import NoBackoff
from redis.cluster import ClusterPipeline, NodesManager, RedisCluster
from redis.commands.core import BasicKeyCommands, HyperlogCommands
from redis.retry import Retry
from redis.sentinel import Sentinel

from kades.errors import TemporaryFailure
from kades.settings import Settings, SettingsError, settings, shown_url

# Process-wide on purpose, unlike a function's own state (Context.local): a connection pool
# holds no function's data, every Context with the same URL may share it, and one pool per
# process keeps the connections to Redis and PostgreSQL bounded however many Contexts exist.
_lock = threading.Lock()
_redis: dict[tuple, redis.Redis] = {}
_pools: dict[str, ConnectionPool] = {}
_http: list[httpx.Client] = []


class _SameSlotPipeline(ClusterPipeline):
    """redis-py's cluster pipeline, which refuses multi-key commands outright (MGET, PFCOUNT),
    with the reads KADES makes of keys that share a hash tag allowed again: within one slot
    they are valid, and the server answers CROSSSLOT to any that are not (kades.keys)."""

    mget = BasicKeyCommands.mget
    pfcount = HyperlogCommands.pfcount

    def watch(self, *names):
        """WATCH, after which no command of this transaction is sent again by redis-py itself.
        Its cluster transaction retries a command or the MULTI/EXEC that met a connection
        error (up to 10 times) on a new connection, where the WATCH is not: the EXEC then
        committed whatever another replica had written meanwhile (a lost update). A single
        Redis's pipeline raises WatchError there; here the ConnectionError is raised, a
        temporary error (503: the Broker sends the event again)."""
        strategy = self._execution_strategy  # redis-py 8.1's (pinned in requirements/*.lock)
        strategy._retry = copy.copy(strategy._retry)
        strategy._retry.update_retries(0)
        return super().watch(*names)


class ClusterUnreachable(redis.exceptions.RedisClusterException, redis.RedisError):
    """No node of a Redis Cluster answered when its client read the slots (made, or again
    after a failed command): a dependency away, as a single Redis's refused connection is,
    so one of TEMPORARY_ERRORS. redis-py raises its RedisClusterException there, the class it
    also raises for a program's errors (a command's keys in two slots), which must stay a 500.

    Still a RedisClusterException, not a ConnectionError: redis-py's cluster pipeline
    (PipelineStrategy.send_cluster_commands) retries whatever is a ConnectionError, 10 times
    and without a pause, each time connecting again and reading the slots again: a cluster
    away then took 11 slot reads to say so, and 11 times every node's timeouts where they
    hang rather than refuse (a hung one-node cluster: 44 s at 2 s, against 4 s). A RedisError
    too, which the broker's and the CLIs' Redis failures are caught as."""


def _cluster_away(error: redis.exceptions.RedisClusterException) -> bool:
    """Whether redis-py's RedisClusterException from reading the slots is the cluster's state:
    "cannot be connected" (every node refused or timed out) or "All slots are not covered"
    (mid-failover), not the request's nor the settings' (a node not in cluster mode)."""
    return isinstance(error.__cause__, (redis.ConnectionError, redis.TimeoutError)) or \
        str(error).startswith("All slots are not covered")


class RedisCannotPersist(redis.ResponseError):
    """MISCONF: Redis failed to write its snapshot or append-only file (a full disk) and
    refuses writes until it can again. redis-py raises a bare ResponseError for it."""


class RedisBusy(redis.ResponseError):
    """BUSY: a script ran past its time limit and Redis answers nothing else meanwhile."""


class RedisNoReplicas(redis.ResponseError):
    """NOREPLICAS: a primary with fewer good replicas than min-replicas-to-write (the prod
    overlay's 1) refuses writes, as in the seconds after a failover before a replica has
    attached to the new primary. Met by a plain write (a claim, a SET); in a script, Redis
    6.2 gives it inside the script's own error, which stays a plain ResponseError."""


# Error replies that name a state of the server, not a mistake of the command: redis-py's
# parsers (its own and hiredis's) turn each code into its class through this table.
BaseParser.EXCEPTION_CLASSES = {**BaseParser.EXCEPTION_CLASSES, "MISCONF": RedisCannotPersist,
                                "BUSY": RedisBusy, "NOREPLICAS": RedisNoReplicas}

# The exceptions that mean "a dependency is away", never "the request is bad". A cluster
# with a shard down or a slot moving answers CLUSTERDOWN / TRYAGAIN until it has failed over
# (a Sentinel-managed client turns READONLY from a demoted primary into a ConnectionError),
# and one wholly away is ClusterUnreachable. A slot moved (MOVED/ASK) reaches the caller only
# from a watched transaction, which is sent once (_SameSlotPipeline.watch); its client has
# read the slots again for the retry.
# Redis full (OOM under noeviction, which every overlay sets), unable to persist, busy, a
# demoted primary (READONLY) or one without its replicas (NOREPLICAS) is one too: the event
# waits for it, as for Redis away.
TEMPORARY_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError,
                    redis.exceptions.TryAgainError, redis.exceptions.MovedError,
                    redis.exceptions.AskError, redis.exceptions.OutOfMemoryError,
                    redis.exceptions.ReadOnlyError, RedisCannotPersist, RedisBusy, RedisNoReplicas,
                    ClusterUnreachable, psycopg.OperationalError,
                    psycopg.errors.AdminShutdown, TemporaryFailure)


class _Nodes(NodesManager):
    def initialize(self, *args, **kwargs):
        try:
            return super().initialize(*args, **kwargs)
        except redis.exceptions.RedisClusterException as error:
            if _cluster_away(error):
                raise ClusterUnreachable(f"Redis Cluster unreachable: {error}") from error
            raise


class _Cluster(RedisCluster):
    """A cluster client whose pipelines (and WATCH/MULTI transactions) run the same code as a
    single Redis's, and whose cluster, once wholly away, is a temporary error (_Nodes)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.nodes_manager.__class__ = _Nodes  # the same object; its later reads translated

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        pipe.__class__ = _SameSlotPipeline  # the same object, two commands unblocked
        return pipe


def redis_client(config: Settings | None = None) -> redis.Redis:
    """The process's Redis client for `config`: one server, a Redis Cluster
    (Settings.redis_cluster) or the primary Sentinels name (Settings.redis_sentinels), which
    the client asks for again when a connection fails, so it follows a failover. A cluster
    client (redis.cluster.RedisCluster) has the same commands, scripts and pipelines; the
    keys of one script or transaction share a hash tag (kades.keys)."""
    config = config or settings()
    identity = (config.redis_url, config.redis_cluster, config.redis_sentinels,
                config.redis_sentinel_master)
    with _lock:
        client = _redis.get(identity)
        if client is None:
            client = _redis[identity] = new_redis(config)
        return client


def new_redis(config: Settings, **options) -> redis.Redis:
    """A client of its own for `config` (redis_client's, not shared): one server, a Redis
    Cluster or Sentinels' primary alike. `options` (max_connections, socket_timeout, ...)
    go to its connection pools."""
    timeouts = {"socket_timeout": config.redis_timeout_s,
                "socket_connect_timeout": config.redis_timeout_s, **options}
    if config.redis_cluster and config.redis_sentinels:
        raise SettingsError(["KADES_REDIS_CLUSTER and KADES_REDIS_SENTINELS: set one of them "
                             "(a cluster fails over by itself)"])
    if config.redis_cluster and config.redis_wait_replicas:
        raise SettingsError(["KADES_REDIS_WAIT_REPLICAS with KADES_REDIS_CLUSTER: the wait runs "
                             "on the done mark's connection, which a cluster client does not "
                             "keep; use it with a primary and its replicas (KADES_REDIS_SENTINELS)"])
    if config.redis_cluster:
        try:  # the client reads the cluster's slots when it is made
            return _Cluster.from_url(config.redis_url, **timeouts)
        except redis.exceptions.RedisClusterException as error:
            if _cluster_away(error):  # no node answered
                raise ClusterUnreachable(f"Redis Cluster unreachable: {error}") from error
            # the settings' error (a database other than 0, a node not in cluster mode): said
            # as the settings' (one line and exit 2 in a CLI), not a traceback
            raise SettingsError([f"KADES_REDIS_CLUSTER with the Redis at "
                                 f"{shown_url(config.redis_url)!r}: {error}"]) from error
    if config.redis_sentinels:
        url = urlsplit(config.redis_url)
        # each Sentinel asked once: redis-py's default for their connections is 10 retries
        # with backoff, so a Sentinel whose pod was gone cost every discovery of the primary
        # 3.9 s (one that refuses) to over 20 s (one that never answers) before the next
        sentinel = Sentinel(sentinel_addresses(config.redis_sentinels),
                            sentinel_kwargs={"socket_timeout": config.redis_timeout_s,
                                             "socket_connect_timeout": config.redis_timeout_s,
                                             "retry": Retry(NoBackoff(), 0)},
                            **timeouts)
        return sentinel.master_for(config.redis_sentinel_master, db=int(url.path[1:] or 0),
                                   password=url.password, username=url.username,
                                   health_check_interval=30, **timeouts)
    return redis.Redis.from_url(config.redis_url, health_check_interval=30, **timeouts)


def broker_redis(config: Settings, url: str, **options) -> redis.Redis:
    """A client of the development broker's Redis at `url` (its queue, its dead letters): one
    server, or a Redis Cluster when `config` says so (a Broker's keys share a hash tag). Not
    the functions' Sentinels: the Broker it stands in for keeps its queue apart from their
    Redis, as the failover fault does (tests/reliability/failover.py)."""
    return new_redis(dataclasses.replace(config, redis_url=url, redis_sentinels="",
                                         redis_wait_replicas=0), **options)


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """"host:port,host:port" as (host, port) pairs (26379 when a port is left out).

    >>> sentinel_addresses("redis-sentinel.kades:26379, 10.0.0.7")
    [('redis-sentinel.kades', 26379), ('10.0.0.7', 26379)]
    """
    addresses = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        if not host or not port.isdigit():
            raise SettingsError([f"KADES_REDIS_SENTINELS={text!r}: expected host:port,host:port"])
        addresses.append((host, int(port)))
    return addresses


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))  # PostgreSQL reads 0 as "no limit"


# A database that falls silent without closing (its node lost, a network partition) left a
# handler waiting on its socket: for as long as TCP retransmits what was sent (~15 minutes),
# and for ever while it waited for a query's result, with nothing sent to go unanswered.
# Keepalive probes find a silent peer while waiting (after 10 s idle, 3 probes 5 s apart) and
# tcp_user_timeout one that leaves what was sent unacknowledged; the query then fails (a 503,
# which the Broker retries) and the pool drops the connection. A long query is not cut: the
# server's kernel answers the probes while it runs.
DATABASE_TCP = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                "keepalives_count": 3, "tcp_user_timeout": 20_000}


# ...but a database stopped without closing (its processes frozen, its disk stalled, its VM
# paused) left a query waiting for ever: its kernel acknowledges what is sent and answers the
# keepalive probes, and statement_timeout is the server's own, which it cannot enforce while
# stopped. The handler held its event past every retry of the Broker's (the claim renewed)
# and /ready said busy. So every wait for an answer is bounded here as well: the statement
# timeout and ANSWER_MARGIN_S more (by then a working server has answered, if only with the
# cancel), or the caller's own deadline where sooner (`answer_by`: /ready's).
ANSWER_MARGIN_S = 5.0
_answer_by: contextvars.ContextVar[float | None] = contextvars.ContextVar("kades_answer_by",
                                                                         default=None)


class DatabaseSilent(psycopg.OperationalError):
    """The database answered nothing within the deadline: the connection was closed (the pool
    drops it), and the caller answers 503 as for any database away."""


class AnswerBoundedConnection(psycopg.Connection):
    """A connection whose every wait for the server (a statement, a fetch, a commit, the
    pool's check) ends after `answer_within_s` (None: no bound) or at `answer_by`'s deadline,
    with DatabaseSilent. psycopg 3.3's `wait` is the one place all of them pass through."""

    answer_within_s: float | None = None  # set per pool (db_pool)

    def wait(self, gen, *args, timeout: float | None = None, **kwargs):
        limit, by = self.answer_within_s, _answer_by.get()
        if by is not None:
            left = max(0.0, by - time.monotonic())
            limit = left if limit is None else min(limit, left)
        if limit is None or (timeout is not None and timeout <= limit):
            return super().wait(gen, *args, timeout=timeout, **kwargs)  # the caller's own
        began = time.monotonic()
        try:
            return super().wait(gen, *args, timeout=limit, **kwargs)
        except psycopg.OperationalError as error:
            if time.monotonic() - began < limit:
                raise  # the connection failed otherwise
            self.pgconn.finish()  # cut off mid-answer: unusable
            raise DatabaseSilent(f"the database answered nothing in {limit:.1f} s") from error


@contextlib.contextmanager
def answer_by(deadline: float):
    """Within the block, database waits end at `deadline` (time.monotonic()) at the latest."""
    token = _answer_by.set(deadline)
    try:
        yield
    finally:
        _answer_by.reset(token)


def db_pool(config: Settings | None = None) -> ConnectionPool:
    config = config or settings()
    with _lock:
        pool = _pools.get(config.database_url)
        if pool is None:
            # reconnect_timeout: the pool retries a failed connect with doubling delays (1,
            # 2, 4, 8 s ...), so after an outage it could wait 8 s more before trying; giving
            # up after a few seconds lets the next request start a fresh attempt at once.
            pool = ConnectionPool(
                config.database_url, min_size=0, max_size=config.database_pool_size, open=True,
                timeout=config.database_timeout_s,
                reconnect_timeout=config.database_timeout_s,
                kwargs={"connect_timeout": max(1, int(config.database_timeout_s)),
                        **DATABASE_TCP, "autocommit": False,
                        "options": f"-c statement_timeout={_ms(config.database_statement_timeout_s)}"
                                   f" -c lock_timeout={_ms(config.database_lock_timeout_s)}"},
                check=ConnectionPool.check_connection,
                connection_class=AnswerBoundedConnection,
                configure=_answer_within(config.database_statement_timeout_s + ANSWER_MARGIN_S))
            _pools[config.database_url] = pool
        return pool


def _answer_within(seconds: float):
    def configure(conn: AnswerBoundedConnection) -> None:
        conn.answer_within_s = seconds
    return configure


def http_client() -> httpx.Client:
    """One pooled HTTP client per process (sink emission, webhooks, dead-letter replay, Solana
    RPC, `kades simulate --broker`, the demo, `kades up`'s health checks; per-request
    `timeout=` where a caller needs its own). Not for the OIDC key fetch, which trusts its issuer's CA (kades.runtime.oidc), nor
    the development broker's deliveries (kades.broker.transport). No cap on connections, so
    callers keep their own concurrency (a function's handler threads, the webhook worker),
    and enough kept alive that every thread reuses its connection, as Knative's dispatcher
    (Go's http.Transport) does.
    Its cookie jar refuses every cookie: one receiver's Set-Cookie must never ride along to
    later requests (Knative's dispatcher keeps no cookies either)."""
    with _lock:
        if not _http:
            _http.append(httpx.Client(
                timeout=httpx.Timeout(10.0, connect=2.0),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=1000),
                cookies=http.cookiejar.CookieJar(
                    http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))))
        return _http[0]


def close_all() -> None:
    """Close every client (tests, shutdown)."""
    with _lock:
        for pool in _pools.values():
            pool.close()
        for client in _redis.values():
            client.close()
        for client in _http:
            client.close()
        _http.clear()
        _pools.clear()
        _redis.clear()
