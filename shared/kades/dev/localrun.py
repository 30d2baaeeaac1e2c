"""`kades up` / `kades down`: the whole system on one machine, the way `make run` shows it.

Starts real Redis and PostgreSQL (kades.dev.services), migrates, starts every function with
functions-framework on its own port and the development broker, feeds the seeded demo
stream and prints the anomalies the system found beside the ones the simulator injected.
Everything keeps running in the background until `kades down` (`make stop`).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from kades import clients
from kades.dev import services as devservices
from kades.audiences import namespace_subjects, service_audience
from kades.broker.tokens import oidc_subject, projected_token
from kades.cliutil import bounded, one_line, progress, report, report_error
from kades.manifests import BROKER, DEFAULT_SERVICE_ACCOUNT, server_threads
from kades.registry import FUNCTIONS, HTTP_FUNCTIONS
from kades.envfields import env_int
from kades.settings import DEFAULT_BROKER_PORT, Settings, function_port, redact_url


def _dirs(state_dir: Path) -> tuple[Path, Path]:
    """Where pid files and logs of the processes go."""
    run, logs = state_dir / "run", state_dir / "logs"
    run.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    return run, logs


def _spawn(name: str, command: list[str], env: dict, run: Path, logs: Path) -> None:
    log_file = open(logs / f"{name}.log", "ab")
    process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    (run / f"{name}.pid").write_text(str(process.pid))


def _wait_healthy(urls: dict[str, str], timeout_s: float, logs: Path) -> None:
    """Wait until every URL's /health answers 200 (a bar on a terminal); SystemExit naming the
    processes still unhealthy at the deadline, with the end of their logs."""
    deadline = time.monotonic() + timeout_s
    waiting = dict(urls)
    client = clients.http_client()
    with progress(total=len(urls), desc="healthy", unit="processes") as bar:
        while waiting and time.monotonic() < deadline:
            for name, url in list(waiting.items()):
                try:
                    if client.get(url + "/health", timeout=1.0).status_code == 200:
                        del waiting[name]
                        bar.update()
                except httpx.HTTPError:
                    pass  # not listening yet: keep waiting until the deadline
            if waiting:
                time.sleep(0.2)
    if waiting:
        tails = "\n".join(devservices.log_tail(logs / f"{n}.log", lines=15) for n in waiting)
        raise SystemExit(f"not healthy after {timeout_s:.0f}s: {', '.join(waiting)}\n{tails}")


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")  # each 1, as in the image


def process_env(config: Settings) -> dict[str, str]:
    """The environment of the broker and function processes."""
    # Two malloc arenas, not eight per core: these processes run many threads, and with an
    # arena per thread their resident memory kept growing for minutes (the soak measured
    # about half the growth with two). One BLAS thread, not one per CPU (numpy's matrix
    # products). The image sets the same (Dockerfile). Webhooks may point at private
    # addresses here: local receivers run on this machine.
    # The Redis URL goes with how to speak to it: alone it names one server, and a function
    # speaking so to a Redis Cluster's node got MOVED for most keys. Cluster or not is said
    # either way, as the URL is; the Sentinels only when set: the failover fault hands the
    # functions theirs through os.environ (tests/reliability/failover.py).
    mode = {"KADES_REDIS_CLUSTER": str(config.redis_cluster).lower()}
    if config.redis_sentinels:
        mode |= {"KADES_REDIS_SENTINELS": config.redis_sentinels,
                 "KADES_REDIS_SENTINEL_MASTER": config.redis_sentinel_master}
    return dict(os.environ, **mode, KADES_REDIS_URL=config.redis_url,
                KADES_DATABASE_URL=config.database_url, K_SINK=config.sink_url,
                PYTHONUNBUFFERED="1", MALLOC_ARENA_MAX=os.environ.get("MALLOC_ARENA_MAX", "2"),
                **{name: os.environ.get(name, "1") for name in BLAS_THREADS},
                KADES_WEBHOOK_ALLOW_PRIVATE=os.environ.get("KADES_WEBHOOK_ALLOW_PRIVATE", "true"))


def function_command(source: Path, port: int) -> list[str]:
    """How a function's process is started (as its image starts it)."""
    return [sys.executable, "-m", "kades.runtime.serve", "--target", "handle",
            "--source", str(source), "--host", "127.0.0.1", "--port", str(port)]


def function_env(name: str, env: dict[str, str], *, oidc_issuer: str = "",
                 sink_token_file: str = "", threads: int | None = None) -> dict[str, str]:
    """The environment of function `name`; with `oidc_issuer` (the broker's, `--oidc`) it
    requires the broker's token for its audience on POST /, as on a cluster with
    authentication-oidc (api keeps its API keys: it takes no deliveries), and posts to the
    Broker with the token in `sink_token_file`, as its service account would. `threads`: its
    server's, as its Service runs it (gunicorn's default, 4 per core, let 8 WebSockets hold
    every thread of the local api, its health check's too)."""
    env = dict(env, K_SERVICE=name)
    if threads:
        env["THREADS"] = str(threads)
    if oidc_issuer and name in FUNCTIONS:
        env |= {"KADES_OIDC_ISSUER": oidc_issuer,
                "KADES_OIDC_AUDIENCE": service_audience("kades", name),
                "KADES_OIDC_SUBJECTS": namespace_subjects("kades")}
    if sink_token_file:
        env["KADES_SINK_TOKEN_FILE"] = sink_token_file
    return env


def service_account(root: Path, name: str) -> str:
    """The service account function `name` runs as (its knative.yaml, else the functions')."""
    extra = root / "functions" / name / "knative.yaml"
    declared = (yaml.safe_load(extra.read_text()) or {}) if extra.exists() else {}
    return declared.get("serviceAccountName", DEFAULT_SERVICE_ACCOUNT)


def sender_token_file(state_dir: Path, account: str) -> str:
    """Where `kades up --oidc` has the broker keep the Broker token of service account `account`."""
    return str(projected_token(state_dir / "tokens", *BROKER, account))


# The demo feed posts as the project's source (eventing/300-solana-source.yaml) would.
DEMO_SOURCE_ACCOUNT = oidc_subject("kades", "solana-source", group="sources.knative.dev",
                                   kind="ContainerSource").rsplit(":", 1)[1]


def parse_replicas(items: list[str], functions: tuple[str, ...] = tuple(FUNCTIONS)) -> dict[str, int]:
    """`--replicas NAME=N` items as {function: replicas}; ValueError naming what is wrong.
    Only functions the broker delivers to take replicas (the api takes no events)."""
    replicas: dict[str, int] = {}
    for item in items:
        name, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"--replicas takes NAME=N (N >= 1), got {item!r}")
        if name not in functions:
            raise ValueError(f"--replicas: {name!r} is not a function the broker delivers to "
                             f"({', '.join(functions)})")
        replicas[name] = int(count)
    return replicas


def replica_name(name: str, number: int) -> str:
    """The process name (pid file, log) of replica `number` (0-based) of function `name`."""
    return name if number == 0 else f"{name}-{number + 1}"


def replica_urls(name: str, count: int) -> list[str]:
    """Where the replicas of `name` listen: its own port, then free ones."""
    ports = [function_port(name)] + [devservices.free_port() for _ in range(count - 1)]
    return [f"http://127.0.0.1:{port}" for port in ports]


def broker_command(root: Path, config: Settings, *, broker_port: int, state_dir: Path,
                   oidc: bool, subscribers: dict[str, list[str]]) -> list[str]:
    """`kades broker` as `kades up` starts it; a function with several replicas is given as
    `--subscriber NAME=URL` once per replica (deliveries take them in turn)."""
    command = [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir",
               str(root / "eventing"), "--port", str(broker_port)]
    command += (["--oidc", "--oidc-port", str(config.broker_oidc_port), "--oidc-token-dir",
                 str(state_dir / "tokens")] if oidc else ["--no-oidc"])
    for name, urls in subscribers.items():
        if len(urls) > 1:
            command += [f"--subscriber={name}={url}" for url in urls]
    return command


def start_system(root: Path, config: Settings, *, broker_port: int, state_dir: Path,
                 oidc: bool = False, replicas: dict[str, int] | None = None,
                 names: tuple[str, ...] = (*FUNCTIONS, *HTTP_FUNCTIONS)) -> dict[str, str]:
    """Start the broker and every function of `root` (`names`; `replicas` of some); return
    their base URLs by process name (a replica beyond the first: `<name>-2` and up).
    `oidc`: the broker signs its deliveries and the functions require its tokens."""
    run, logs = _dirs(state_dir)
    env = process_env(config)
    issuer = f"http://127.0.0.1:{config.broker_oidc_port}" if oidc else ""
    urls, subscribers = {}, {}
    for name in names:
        token = sender_token_file(state_dir, service_account(root, name)) if oidc else ""
        subscribers[name] = replica_urls(name, (replicas or {}).get(name, 1))
        for number, url in enumerate(subscribers[name]):
            port = int(url.rsplit(":", 1)[1])
            process = replica_name(name, number)
            _spawn(process, function_command(root / "functions" / name / "main.py", port),
                   function_env(name, env, oidc_issuer=issuer, sink_token_file=token,
                                threads=server_threads(root / "functions" / name / "func.yaml")),
                   run, logs)
            urls[process] = url
    _spawn("broker", broker_command(root, config, broker_port=broker_port, state_dir=state_dir,
                                    oidc=oidc, subscribers=subscribers), env, run, logs)
    urls["broker"] = f"http://127.0.0.1:{broker_port}"
    _wait_healthy(urls, 60, logs)
    return urls


def _gone(pid: int) -> bool:
    """Whether the process has exited (reaping it when it is our own child)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:  # not our child: `kades up` has exited and init reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def _ours(pid: int, log: Path) -> bool | None:
    """Whether process group `pid` is one `start_system` started writing to `log`: True;
    False when it runs but is not (another checkout's, another user's, or a process that took
    the pid of a stale pid file); None when it is gone. Every process started here (and what
    it starts) has its log as stdout, which no process of another checkout has."""
    members = devservices.process_group(pid)
    if not members:
        return False if devservices.process_alive(pid) else None
    return any(devservices.proc_link(member, "fd/1") == str(log.resolve()) for member in members)


def stop_system(state_dir: Path) -> list[str]:
    """Stop every process `start_system` started (by pid file); return the names of those
    that ran. A pid file naming no process of ours (garbled, or its pid taken by another
    process since) is removed with a line on stderr, and nothing is signalled."""
    run = state_dir / "run"
    pids = {}
    for pid_file in sorted(run.glob("*.pid")):
        pid = devservices.read_pid(pid_file)
        ours = None if pid is None else _ours(pid, state_dir / "logs" / f"{pid_file.stem}.log")
        if ours:
            pids[pid_file] = pid
        elif pid is None:
            devservices.drop_stale_pid_file(pid_file, "holds no pid")
        elif ours is False:
            devservices.drop_stale_pid_file(pid_file, f"pid {pid} is no process started in "
                                                      f"{state_dir}, left running")
        else:
            with contextlib.suppress(ChildProcessError):  # reaped, if our own child
                os.waitpid(pid, os.WNOHANG)
            pid_file.unlink()  # stale: the process is gone
    # All asked at once, then waited for together: each takes a second or more to finish.
    for pid in pids.values():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # already gone: that is what we wanted
    deadline = time.monotonic() + 5.0
    for pid_file, pid in pids.items():
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            if not _gone(pid):
                os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pid_file.unlink()
    return [pid_file.stem for pid_file in pids]


def main_up(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades up", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="the repository (holds functions/ and "
                        "eventing/; default: the one the current directory is in, as for "
                        "`kades services`)")
    parser.add_argument("--no-demo", action="store_true", help="start everything, feed nothing")
    parser.add_argument("--seed", type=int, default=None,
                        help="demo seed (default: a new one each run, so each run finds anew)")
    parser.add_argument("--fresh", action="store_true",
                        help="start on empty data: what Redis and PostgreSQL under .local hold "
                             "is removed first (to replay a seed this system was fed before)")
    parser.add_argument("--minutes", type=bounded(int, 1, 1440, "minutes from 1 to 1440"),
                        default=30, help="simulated market minutes to feed")
    parser.add_argument("--rate", type=bounded(float, 0.001, 1e6, "events per second from "
                                                                  "0.001 to 1e6"),
                        default=100.0, help="demo events per second")
    config = Settings.from_env()
    parser.add_argument("--oidc", action=argparse.BooleanOptionalAction,
                        default=config.broker_oidc,
                        help="sender identity on: the broker signs every delivery and the "
                             "functions refuse POSTs without its token, 401 (default: "
                             "KADES_BROKER_OIDC, else off)")
    parser.add_argument("--replicas", action="append", default=[], metavar="NAME=N",
                        help="start N replicas of function NAME (repeatable); the broker "
                             "delivers to them in turn, one request each, as Knative spreads "
                             "requests over a Service's pods (default: one of each)")
    args = parser.parse_args(argv)
    try:
        replicas = parse_replicas(args.replicas)
    except ValueError as error:
        parser.error(str(error))
    root = _root(args.root)
    broker_port = env_int(os.environ, "KADES_BROKER_PORT", DEFAULT_BROKER_PORT)
    local = root / ".local"
    stop_system(local)
    if args.fresh:
        try:
            print("removed:", ", ".join(devservices.wipe_data(local)) or "nothing")
        except devservices.DevServiceError as error:  # a server that would not stop
            return report("up", _first_line(error))
    code = devservices.main_services(["up", "--data-dir", str(local)], config=config)
    if code != 0:  # it said why on stderr (another checkout's servers, no binaries ...)
        return code
    import psycopg

    from kades.storage.migrate import migrate
    try:
        applied = migrate(config.database_url)
        print(f"database migrated ({len(applied)} new migrations)")
        api_key = create_demo_key(config)
    except psycopg.Error as error:
        return report_error("up", f"PostgreSQL at {redact_url(config.database_url)}", error)
    urls = start_system(root, config, broker_port=broker_port, state_dir=local, oidc=args.oidc,
                        replicas=replicas)
    print(running_summary(urls, config, api_key=api_key, logs=local / "logs"))
    if not args.no_demo:
        seed = args.seed if args.seed is not None else int(time.time()) % 100_000
        from kades.dev.demo import show_demo
        try:
            return show_demo(urls["api"], config.sink_url, seed=seed, minutes=args.minutes,
                             rate=args.rate, api_key=api_key,
                             token_file=sender_token_file(local, DEMO_SOURCE_ACCOUNT)
                             if args.oidc else "")
        except httpx.HTTPError as error:  # the broker refused an event, the api failed ...
            return report("up", f"the demo stopped: {one_line(error)}; KADES keeps running "
                                f"(`make stop` stops it), its logs are in {local / 'logs'}")
    return 0


def running_summary(urls: dict[str, str], config: Settings, *, api_key: str, logs: Path) -> str:
    """What `kades up` prints once everything is up: addresses (no password), the demo key."""
    lines = ["", "KADES is running:",
             f"  broker ingress   {redact_url(config.sink_url)}",
             f"  api              {urls['api']}/v1   (anomalies: {urls['api']}/v1/anomalies)",
             f"  dashboard        {urls['api']}/   (paste the API key there)",
             f"  demo API key     {api_key}   (send it as X-API-Key; `kades apikey` makes more)"]
    lines += [f"  {name:<16} {url}   (/health /ready /metrics)" for name, url in urls.items()
              if name not in ("broker", *HTTP_FUNCTIONS)]  # functions and their replicas
    lines += [f"  redis            {redact_url(config.redis_url)}",
              f"  postgres         {redact_url(config.database_url)}",
              f"  logs             {logs}   stop with: make stop"]
    return "\n".join(lines)


def create_demo_key(config: Settings) -> str:
    """A new enterprise-tier API key for this demo run (the API refuses calls without one)."""
    import psycopg

    from kades.storage.apikeys import create_key
    with psycopg.connect(config.database_url) as conn:
        return create_key(conn, tier="enterprise", name="kades up demo")[1]


def main_down(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades down",
                                     description="Stop everything `kades up` started.")
    parser.add_argument("--root", default=None,
                        help="the repository whose processes to stop (default: the one the "
                             "current directory is in, as for `kades services`)")
    root = _root(parser.parse_args(argv).root)
    print("stopped:", ", ".join(stop_system(root / ".local")) or "nothing")
    try:
        devservices.stop_all(root / ".local")
    except devservices.DevServiceError as error:  # Redis not stopping, pg_ctl stop failing
        return report("down", _first_line(error))
    return 0


def _root(given: str | None) -> Path:
    """The repository `--root` names, else the one `kades services` finds (from the current
    directory up, so that a subdirectory is no checkout of its own)."""
    return Path(given).resolve() if given else devservices.repo_root()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
