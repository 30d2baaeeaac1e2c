"""The development broker as one object (`DevBroker`) and as a command (`kades broker`)."""
from __future__ import annotations

import argparse
import ctypes
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import redis

from kades import clients, exitcodes
from kades.broker.chaos import NO_CHAOS, Chaos
from kades.broker.config import Broker, ConfigError, Eventing, load_eventing
from kades.broker.dispatcher import IDLE_WAIT_S, LaneReader, TriggerDispatcher
from kades.broker.httpserver import KeepAliveServer
from kades.audiences import broker_audience
from kades.broker.ingress import BROKER_MAX_EVENT_BYTES, IngressApp, admit
from kades.broker.pingsource import PingSource, load_pingsources
from kades.broker.policy import SERVICE_ACCOUNT, EventPolicy, SenderCheck, policies_for
from kades.broker.queue import BrokerQueue
from kades.broker.routing import ORDERED_LANES, Router
from kades.broker.tokens import LocalIssuer, projected_token
from kades.cliutil import bounded, redis_url, report, report_error
from kades.keys import BROKER_PING
from kades.logs import configure_logging, log
from kades.envfields import env_int
from kades.settings import DEFAULT_BROKER_PORT, Settings, SettingsError, http_url_problem, redact_url

logger = logging.getLogger("kades.broker")
# Deliveries in flight per unordered Trigger. Knative's channel dispatcher bounds them only by
# its HTTP connection pool; 16 is more than most functions' containerConcurrency (4-16 in
# functions/*/func.yaml), so events overtake each other and a subscriber's queue fills, as on
# a cluster, without hundreds of threads on a laptop.
DEFAULT_WORKERS = 16
# At least 2: one at a time, a Trigger's events would arrive in order, which no unordered
# Knative Trigger promises (the broker must be no kinder than a cluster's).
WORKERS_RANGE = (2, 1024)
HOUSEKEEPING_INTERVAL_S = 30.0
STUCK_WITHOUT_TIMEOUT_S = 600.0  # an attempt with no delivery timeout is presumed dead after
INGRESS_CONNECTIONS = 64  # Redis connections for ingress requests, beyond one per worker
ROLES = ("ingress", "delivery")  # the processes of `kades broker --ingress-process`


class DevBroker:
    """Ingress (threaded HTTP server) plus delivery workers, all on one Redis.

    `dispatch=False` runs the ingress alone: events are accepted and wait in Redis for a
    broker that delivers; `ingress=False` the deliveries alone. With an `issuer`
    (authentication-oidc) every delivery carries the Trigger's token for its subscriber's
    audience, and the ingress takes an event only from a sender with a token of that issuer
    (or of `sender_issuer`, the URL of one in another process) whom `policies` (broker path ->
    the EventPolicies that apply to it; none: allow-same-namespace) admit; `token_dir` then
    receives a token for every service account they name (`projected_token`). The caller
    owns (and closes) the issuer.
    """

    def __init__(self, eventing: Eventing, client: redis.Redis, *, host: str = "127.0.0.1",
                 port: int = 0, workers_per_trigger: int = DEFAULT_WORKERS, dispatch: bool = True,
                 max_event_bytes: int = BROKER_MAX_EVENT_BYTES, idle_wait_s: float = IDLE_WAIT_S,
                 pingsources: tuple[PingSource, ...] = (), chaos: Chaos = NO_CHAOS,
                 issuer: LocalIssuer | None = None, sender_issuer: str | None = None,
                 policies: dict[str, list[EventPolicy]] | None = None,
                 token_dir: Path | None = None, ingress: bool = True):
        self.eventing, self.redis, self.issuer = eventing, client, issuer
        # whose tokens senders must show: this process's issuer, else one running elsewhere
        # (an ingress in a process of its own: `kades broker`)
        self.sender_issuer = issuer.issuer if issuer is not None else sender_issuer
        self.ingress = ingress
        self.policies, self.token_dir = dict(policies or {}), token_dir
        self.pingsources = tuple(pingsources)
        self.host, self.port = host, port
        self.workers_per_trigger, self.dispatch = workers_per_trigger, dispatch
        self.max_event_bytes, self.idle_wait_s = max_event_bytes, idle_wait_s
        self.chaos = chaos
        self._stop = threading.Event()
        self._dispatchers: list[TriggerDispatcher] = []
        self._readers: list[LaneReader] = []
        self._threads: list[threading.Thread] = []
        self._server = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ingress_url(self, namespace: str = "kades", name: str = "kades") -> str:
        return f"{self.base_url}/{namespace}/{name}"

    def start(self) -> "DevBroker":
        brokers = list(self.eventing.brokers.values())
        queues = {b.path: self.queue_of(b) for b in brokers}
        self._project_tokens()  # before the ingress opens: senders find them at once
        if self.ingress:
            senders = None if self.sender_issuer is None else {
                b.path: SenderCheck(b, self.sender_issuer, self.policies.get(b.path, []))
                for b in brokers}
            app = IngressApp(queues, self.redis, max_event_bytes=self.max_event_bytes,
                             senders=senders)
            self._server = KeepAliveServer(self.host, self.port, app,
                                           max_body=self.max_event_bytes)
            self.port = self._server.server_port
        # Events are routed only to the lanes of configured Triggers, so a new Trigger sees
        # what is accepted from now on; its groups read a lane from the start, so an
        # ingress-only broker (dispatch=False) needs no group.
        readers = {b.path: LaneReader(queues[b.path], self._stop, block_s=self.idle_wait_s)
                   for b in brokers}  # one per Broker: its unordered Triggers' lanes
        dispatchers = [TriggerDispatcher(trigger, queues[broker.path],
                                         ingress_url=self.base_url + broker.path, stop=self._stop,
                                         workers=self.workers_per_trigger,
                                         idle_wait_s=self.idle_wait_s, chaos=self.chaos,
                                         issuer=self.issuer, reader=readers[broker.path],
                                         policies=None if self.sender_issuer is None else
                                         self.policies.get(broker.path, []))
                       for broker in brokers for trigger in self.eventing.triggers_of(broker)]
        if self.dispatch:
            self._dispatchers = dispatchers
            self._readers = list(readers.values())
        for dispatcher in self._dispatchers:
            recovered = dispatcher.prepare(recover=True)
            if recovered:
                log(logger, logging.INFO, "recovered pending events",
                    trigger=dispatcher.trigger.name, count=recovered)
        for dispatcher in self._dispatchers:
            dispatcher.start()
        for reader in self._readers:
            reader.start()
        if self.dispatch:
            self._spawn(self._housekeeping, "broker-housekeeping")
        if self.dispatch and self.pingsources:
            self._spawn(self._ping_loop, "broker-pingsources")
        if self.issuer is not None and self.token_dir is not None:
            self._spawn(self._token_loop, "broker-tokens")
        if self._server is not None:
            self._spawn(lambda: self._server.serve_forever(poll_interval=0.05), "broker-http")
        log(logger, logging.INFO, "broker started", url=self.base_url, ingress=self.ingress,
            delivers=self.dispatch,
            brokers=[b.path for b in brokers], triggers=len(self.eventing.triggers),
            ordered=[t.name for t in self.eventing.triggers if t.ordered])
        return self

    def queue_of(self, broker: Broker) -> BrokerQueue:
        return BrokerQueue(self.redis, broker.namespace, broker.name,
                           Router(self.eventing.triggers_of(broker)))

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _housekeeping(self) -> None:
        """Now and then: recover entries of unordered lanes stuck pending (an attempt that
        hit a Redis outage half-way); an ordered lane's worker re-reads its own."""
        while not self._stop.wait(HOUSEKEEPING_INTERVAL_S):
            for dispatcher in self._dispatchers:
                t = dispatcher.trigger
                if t.ordered:
                    continue
                # An attempt (delivery, then dead-letter sink) takes at most 2 timeouts.
                timeout_s = t.delivery.timeout_s or STUCK_WITHOUT_TIMEOUT_S
                stuck_ms = int((2 * timeout_s + 60) * 1000)
                try:
                    if dispatcher.recover(dispatcher.lanes[0], min_idle_ms=stuck_ms):
                        log(logger, logging.WARNING, "recovered stuck entries", trigger=t.name)
                except redis.RedisError as error:
                    log(logger, logging.WARNING, "housekeeping skipped", error=str(error))
                except Exception:  # a bug must not end the recovery silently: log it, go on
                    logger.exception("housekeeping failed", extra={"fields": {"trigger": t.name}})

    def _project_tokens(self) -> None:
        """A token for each Broker's audience per service account its policies name (not a
        pattern), renewed by the issuer at 80 % of its life."""
        if self.issuer is None or self.token_dir is None:
            return
        for broker in self.eventing.brokers.values():
            subjects = {s for p in self.policies.get(broker.path, []) for s in p.subjects
                        if s.startswith(SERVICE_ACCOUNT) and not s.endswith("*")}
            for subject in sorted(subjects):
                account = subject.rsplit(":", 1)[1]
                self.issuer.project(projected_token(self.token_dir, broker.namespace,
                                                    broker.name, account),
                                    broker_audience(broker.namespace, broker.name),
                                    subject=subject)

    def _token_loop(self) -> None:
        while not self._stop.wait(HOUSEKEEPING_INTERVAL_S):
            try:
                self._project_tokens()
            except OSError as error:
                log(logger, logging.WARNING, "sender tokens not renewed", error=str(error))
            except Exception:  # a bug must not end the renewals silently: log it, go on
                logger.exception("sender tokens not renewed")

    def _ping_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.fire_due_pings(datetime.now(timezone.utc))
            except redis.RedisError as error:
                log(logger, logging.WARNING, "pingsources skipped", error=str(error))
            except Exception:  # a bug must not end the pings silently: log it, go on
                logger.exception("pingsources failed")

    def fire_due_pings(self, moment: datetime) -> list[str]:
        """Queue the event of every PingSource due in this minute, once; their sources."""
        fired = []
        minute = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M")
        for ping in self.pingsources:
            broker = next((b for b in self.eventing.brokers.values() if b.path == ping.broker_path), None)
            if broker is None or not ping.due(moment):
                continue
            if self.redis.set(BROKER_PING.format(source=ping.source, minute=minute), 1, nx=True, ex=3600):
                self.queue_of(broker).enqueue([admit(ping.event(moment))])
                fired.append(ping.source)
        return fired

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, let workers finish their current attempt, and return."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close()
        for dispatcher in self._dispatchers:
            dispatcher.join(timeout_s)
        for reader in self._readers:
            reader.join(timeout_s)
        for thread in self._threads:
            thread.join(timeout_s)

    def __enter__(self) -> "DevBroker":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def _wait_for_redis(connect: Callable[[], redis.Redis], timeout_s: float) -> redis.Redis:
    """The client `connect` makes, once it answers. Making it is tried again too: a cluster
    client reads the slots when it is made, so a cluster not up yet fails there."""
    deadline, client = time.monotonic() + timeout_s, None
    while True:
        try:
            if client is None:
                client = connect()
            client.ping()
            return client
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main_broker(argv: list[str]) -> int:
    """`kades broker`: run the development broker until SIGINT/SIGTERM."""
    # First, so that what reading the settings reports and a crash of any thread are JSON
    # lines like the rest of its log (.local/logs/broker.log).
    configure_logging(whole_process=True)
    config = Settings.from_env()
    env = os.environ
    parser = argparse.ArgumentParser(prog="kades broker", description=main_broker.__doc__)
    parser.add_argument("--ingress-process", action=argparse.BooleanOptionalAction, default=True,
                        help="run the ingress and the deliveries in two processes, as Knative "
                             "runs a Broker's ingress and its dispatcher as Deployments of "
                             "their own: neither waits on the other's threads for the "
                             "interpreter (default: on)")
    # how the two processes are started (_supervise): not for users
    parser.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sender-issuer", help=argparse.SUPPRESS)
    parser.add_argument("--eventing-dir", default=env.get("KADES_EVENTING_DIR", "eventing"),
                        help="the Broker, Trigger and PingSource manifests to serve "
                             "(default: KADES_EVENTING_DIR, else ./eventing)")
    parser.add_argument("--host", default=env.get("KADES_BROKER_HOST", "127.0.0.1"),
                        help="address the ingress listens on (default: KADES_BROKER_HOST, "
                             "else 127.0.0.1)")
    parser.add_argument("--port", type=bounded(int, 0, 65535, "a port from 0 (any free) to 65535"),
                        default=env_int(env, "KADES_BROKER_PORT", DEFAULT_BROKER_PORT),
                        help=f"port of the ingress (default: KADES_BROKER_PORT, "
                             f"else {DEFAULT_BROKER_PORT})")
    parser.add_argument("--redis-url", default=config.redis_url, type=redis_url,
                        help="the Redis holding the queues and dead letters "
                             "(default: KADES_REDIS_URL)")
    parser.add_argument("--redis-wait-s", type=bounded(float, 0, 3600, "seconds from 0 to 3600"),
                        default=15.0,
                        help="how long to wait for Redis to answer at start (default: 15)")
    parser.add_argument("--subscriber", action="append", default=[], metavar="NAME=URL",
                        help="send to URL what goes to the Trigger or Service NAME "
                             "(repeatable; the same NAME again adds a replica, and deliveries "
                             "take the replicas in turn)")
    low, high = WORKERS_RANGE
    workers_range = f"a whole number from {low} to {high}"
    parser.add_argument("--workers", type=bounded(int, low, high, workers_range),
                        default=env_int(env, "KADES_BROKER_WORKERS", DEFAULT_WORKERS),
                        help=f"deliveries in flight per unordered Trigger, at least {low} (an "
                             "ordered one has one per lane; default: KADES_BROKER_WORKERS, "
                             f"else {DEFAULT_WORKERS})")
    parser.add_argument("--oidc", action=argparse.BooleanOptionalAction,
                        default=config.broker_oidc,
                        help="sign every delivery as Knative's Broker does with "
                             "authentication-oidc: a token for the subscriber's audience from "
                             "an issuer of its own (default: KADES_BROKER_OIDC, else off)")
    parser.add_argument("--oidc-port", type=int, default=config.broker_oidc_port,
                        help="port of that issuer's discovery and JWKS on --host, the "
                             "functions' KADES_OIDC_ISSUER (default: KADES_BROKER_OIDC_PORT, "
                             f"else {config.broker_oidc_port})")
    parser.add_argument("--oidc-token-dir", default=config.broker_oidc_token_dir,
                        help="with --oidc, keep a token for the Broker here for every service "
                             "account its EventPolicy names, as <namespace>.<broker>/<account> "
                             "(the local senders' KADES_SINK_TOKEN_FILE; default: "
                             "KADES_BROKER_OIDC_TOKEN_DIR, else none)")
    args = parser.parse_args(argv)
    if not low <= args.workers <= high:  # the default, from KADES_BROKER_WORKERS: unchecked
        parser.error(f"KADES_BROKER_WORKERS={args.workers}: expected {workers_range}")
    overrides: dict[str, list[str]] = {}
    for item in args.subscriber:
        name, sep, url = item.partition("=")
        if not sep or not name or (problem := http_url_problem(url)):
            parser.error(f"--subscriber takes NAME=URL (an http(s) URL), got {item!r}"
                         + (f": {problem}" if sep and name else ""))
        overrides.setdefault(name, []).append(url)  # a name given twice: its replicas
    if args.ingress_process and args.role is None:
        return _supervise(argv)
    serves_ingress, delivers = args.role != "delivery", args.role != "ingress"
    try:
        eventing = load_eventing(args.eventing_dir, overrides=overrides,
                                 broker_base_url=f"http://{args.host}:{args.port}",
                                 faithful_order=config.broker_faithful_order)
        pingsources = load_pingsources(args.eventing_dir)
        policies = {b.path: policies_for(args.eventing_dir, b) for b in eventing.brokers.values()}
    except ConfigError as error:  # the manifests are wrong: a failure, not a usage error
        return report("broker", str(error))
    # Every worker holds a connection in its blocking read (redis-py's pool stops at 100).
    workers = (sum(ORDERED_LANES if t.ordered else args.workers for t in eventing.triggers)
               if delivers else 0)
    try:  # one server, or a Redis Cluster (KADES_REDIS_CLUSTER): clients.broker_redis
        client = _wait_for_redis(lambda: clients.broker_redis(
            config, args.redis_url, socket_timeout=max(config.redis_timeout_s, 5.0),
            max_connections=workers + INGRESS_CONNECTIONS), args.redis_wait_s)
    except SettingsError as error:
        return report("broker", str(error))
    except redis.RedisError as error:
        return report_error("broker", f"Redis at {redact_url(args.redis_url)}", error)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    chaos = Chaos.from_settings(config) if delivers else NO_CHAOS
    if chaos.active:
        log(logger, logging.WARNING, "chaos switched on: deliveries are shuffled, duplicated "
            "and delayed on purpose", **chaos.describe())
    try:
        issuer = LocalIssuer(host=args.host, port=args.oidc_port) if args.oidc and delivers else None
    except OSError as error:  # the port is taken: say which, as for the ingress port
        return report("broker", f"OIDC issuer on {args.host}:{args.oidc_port}: {error}")
    if issuer is not None:
        log(logger, logging.INFO, "deliveries are signed and senders checked "
            "(authentication-oidc)", issuer=issuer.issuer,
            policies={path: [p.name for p in found] for path, found in policies.items()})
    broker = DevBroker(eventing, client, host=args.host, port=args.port,
                       workers_per_trigger=args.workers,
                       max_event_bytes=min(config.max_event_bytes, BROKER_MAX_EVENT_BYTES),
                       pingsources=pingsources if delivers else (), chaos=chaos, issuer=issuer,
                       sender_issuer=args.sender_issuer or (  # (_supervise passes it)
                           f"http://{args.host}:{args.oidc_port}" if args.oidc else None),
                       policies=policies,
                       token_dir=Path(args.oidc_token_dir) if args.oidc_token_dir else None,
                       ingress=serves_ingress, dispatch=delivers)
    try:
        broker.start()
    except OSError as error:  # the ingress port is taken: one line, exit 1 (FAILURE)
        if issuer is not None:
            issuer.close()
        return report("broker", f"ingress on {args.host}:{args.port}: {error}")
    if serves_ingress:
        ingresses = ", ".join(broker.base_url + b.path for b in eventing.brokers.values())
        log(logger, logging.INFO,
            f"ingress {ingresses or '(no Broker in ' + args.eventing_dir + ')'}")
    if args.ready_fd is not None:  # started: tell _supervise, with the issuer's URL
        os.write(args.ready_fd, f"{issuer.issuer if issuer else ''}\n".encode())
        os.close(args.ready_fd)
    parent = os.getppid()
    while not stop.wait(0.5):
        if args.role and os.getppid() != parent:  # _supervise is gone: so are we
            break
    broker.stop()
    if issuer is not None:
        issuer.close()
    return exitcodes.OK


def _supervise(argv: list[str]) -> int:
    """`kades broker` as two processes (--ingress-process): the deliveries, then, once they
    are started (the senders' tokens written, the OIDC issuer up), the ingress; both stop
    when this process is told to stop or either of them ends, and this one exits with the
    code of the one that ended first (a start that failed has said why)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # one Prometheus registry over both processes: /metrics (the ingress's) shows deliveries
    metrics_dir = tempfile.mkdtemp(prefix="kades-broker-metrics-")
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=metrics_dir)
    children: dict[str, subprocess.Popen] = {}
    try:
        issuer_url = ""
        for role in ("delivery", "ingress"):
            extra = ["--sender-issuer", issuer_url] if issuer_url else []
            child, ready = _start_role(argv + ["--role", role, *extra], env, stop)
            children[role] = child
            if ready is None:  # it ended before it was ready (it said why), or we were stopped
                return exitcodes.OK if stop.is_set() else child.wait()
            issuer_url = ready
        while not stop.wait(0.5):
            for role, child in children.items():
                if child.poll() is not None:
                    log(logger, logging.ERROR, "a broker process ended: stopping the other",
                        role=role, code=child.returncode)
                    return child.returncode or exitcodes.FAILURE
        return exitcodes.OK
    finally:
        for child in list(children.values())[::-1]:  # the ingress first: none accepted unqueued
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _start_role(argv: list[str], env: dict, stop: threading.Event
                ) -> tuple[subprocess.Popen, str | None]:
    """Start `kades broker` with `argv` and wait until it says it started: (the process, the
    line it wrote: its OIDC issuer's URL or ''); None for the line if it ended first."""
    read, write = os.pipe()
    try:
        child = subprocess.Popen([sys.executable, "-m", "kades.cli", "broker", *argv,
                                  "--ready-fd", str(write)], env=env, pass_fds=(write,),
                                 preexec_fn=_end_with_parent)
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        while not stop.is_set():
            if select.select([pipe], [], [], 0.5)[0]:
                line = pipe.readline()  # b"" when it ended without a word
                return child, line.decode().strip() if line else None
    return child, None


def _end_with_parent() -> None:
    """In a broker process started by _supervise: SIGTERM when _supervise's process dies,
    even by SIGKILL (Linux); its stop loop also watches for that, elsewhere."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
