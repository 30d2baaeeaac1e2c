"""Redis and PostgreSQL clients: created lazily, once per process, never at import."""
from __future__ import annotations

import http.cookiejar
import threading

import httpx
import psycopg
import redis
from psycopg_pool import ConnectionPool

from kades.errors import TemporaryFailure
from kades.settings import Settings, settings

# Process-wide on purpose, unlike a function's own state (Context.local): a connection pool
# holds no function's data, every Context with the same URL may share it, and one pool per
# process keeps the connections to Redis and PostgreSQL bounded however many Contexts exist.
_lock = threading.Lock()
_redis: dict[str, redis.Redis] = {}
_pools: dict[str, ConnectionPool] = {}
_http: list[httpx.Client] = []

# The exceptions that mean "a dependency is away", never "the request is bad".
TEMPORARY_ERRORS = (redis.ConnectionError, redis.TimeoutError, psycopg.OperationalError,
                    psycopg.errors.AdminShutdown, TemporaryFailure)


def redis_client(config: Settings | None = None) -> redis.Redis:
    config = config or settings()
    with _lock:
        client = _redis.get(config.redis_url)
        if client is None:
            client = redis.Redis.from_url(
                config.redis_url, socket_timeout=config.redis_timeout_s,
                socket_connect_timeout=config.redis_timeout_s, health_check_interval=30)
            _redis[config.redis_url] = client
        return client


def db_pool(config: Settings | None = None) -> ConnectionPool:
    config = config or settings()
    with _lock:
        pool = _pools.get(config.database_url)
        if pool is None:
            # reconnect_timeout: the pool retries a failed connect with doubling delays (1,
            # 2, 4, 8 s ...), so after an outage it could wait 8 s more before trying; giving
            # up after a few seconds lets the next request start a fresh attempt at once.
            pool = ConnectionPool(
                config.database_url, min_size=0, max_size=8, open=True,
                timeout=config.database_timeout_s,
                reconnect_timeout=config.database_timeout_s,
                kwargs={"connect_timeout": max(1, int(config.database_timeout_s)),
                        "autocommit": False},
                check=ConnectionPool.check_connection)
            _pools[config.database_url] = pool
        return pool


def http_client() -> httpx.Client:
    """One pooled HTTP client per process (sink emission, webhooks, the development broker's
    deliveries and dead-letter replay). No cap on connections, so callers keep their own
    concurrency (a broker runs a worker per delivery in flight), and enough kept alive that
    every worker reuses its connection, as Knative's dispatcher (Go's http.Transport) does.
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
