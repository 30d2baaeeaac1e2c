"""Output accounting: every output a labelled stream should produce, present exactly once.

The books (accounting.py) show that every delivery was handled; this shows that handling it
left the right results. A seeded stream runs once through a clean mesh (no injected faults,
no chaos) and its outputs are the expected ones; then it runs again with faults injected at
a step of the handlers (kades.runtime.faults) and the broker's chaos switch on, and each
expected output must be there exactly once, and nothing else.

What is compared with the clean run: outputs that by design do not depend on delivery order
(the reorder buffers put every key's input in event time; rows insert idempotently):
- `token_metrics` rows by (token, time, source, quote); `temporal_scores` rows by (token, time,
  score); `anomaly_events` rows by (time, token, type, detector, anomaly key, score);
- anomalies in `ai.kades.anomaly.detected.v1` events by the same natural key, counted once
  per event carrying them (which input releases an anomaly, hence the event's id, depends
  on arrival order; that two events carry the same anomaly does not);
- `ai.kades.market.tick.v1` and `ai.kades.sentiment.scored.v1` events by id (ids derive
  from the input).
Not compared with the clean run, because they depend on the order in which risk-scoring
absorbs evidence (a decaying noisy-OR and an alert state machine with hysteresis), so no
reference can predict them under unordered delivery: risk scores and alerts. They are
accounted against their causes in the same run instead: every anomaly event, and every
sentiment score extreme enough to be evidence, owes one `risk_scores` row and one
`ai.kades.risk.scored.v1` event per token it concerns; every alert must be one risk score's
(same token, time, score) and no transition may be announced under two ids. An alert that
is never sent is not seen by this (nothing says it was due).
Left out of both runs (the mesh runs without PingSources): the stream-flush job, which
releases what waits in a quiet key after a wall-clock timeout, and risk-decay, which
re-scores every token "as of now". So each key's last `KADES_REORDER_LATENESS_S` of event
time stays in its buffer in both runs, and the idle timeout is set past the run's length.
The chain blocks go without the Solana source's links (`without_links`): with them a mint's
slot is released as soon as what came before it is committed, which depends on delivery
timing, so a mint's last slots would be analysed in one run and wait in the other
(tests/chain/test_order.py shows the links give the ordered feed's anomalies).
The comparison holds only when no input came later than the allowed lateness (those are
counted, not analysed, by design): the late inputs are reported beside the figures. Late inputs
of risk-scoring (its scored times wait in a reorder buffer before alerts are judged) are shown
apart: they do not void the comparison, since its outputs are accounted against their causes.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg

from accounting import Books, Ledger, broker_backlog, settle
from load import Load
from mesh import Mesh

from kades import clients
from kades.events.catalogue import (ALERT, ANOMALY_DETECTED, CHAIN_BLOCK, MARKET_TICK,
                                    RISK_SCORED, SENTIMENT_SCORED, derived_id)
from kades.events.envelope import CloudEvent
from kades.registry import load as load_function
from kades.risk.function import anomaly_rows, sentiment_evidence

# Outputs compared with the clean run: name -> query of their natural keys.
ROW_QUERIES = {
    "token_metrics rows": "SELECT token, time, source, quote FROM token_metrics",
    "temporal_scores rows": "SELECT token, time, round(score::numeric, 6) FROM temporal_scores",
    "anomaly_events rows": "SELECT time, token, anomaly_type, detector, anomaly_key,"
                           " round(score::numeric, 6) FROM anomaly_events",
}
EVENTS_BY_ID = {"market tick events": MARKET_TICK, "sentiment score events": SENTIMENT_SCORED}
OUTPUT_TABLES = ("token_metrics", "temporal_scores", "anomaly_events", "risk_scores")
BY_CAUSE = ("risk-scoring",)  # its outputs are accounted against their causes in the same run
LATE_METRIC = re.compile(r'^kades_late_inputs_total\{function="([^"]*)"\}\s+([0-9.e+]+)$',
                         re.MULTILINE)


@dataclass
class Tally:
    expected: int | None      # None: what is due cannot be known (alerts)
    once: int
    missing: int | None
    duplicated: int
    extra: int

    @property
    def exact(self) -> bool:
        return not self.missing and not self.duplicated and not self.extra


def tally(expected: set | None, found: Counter) -> Tally:
    """How `found` (output key -> times present) meets `expected` (None: any key may be due)."""
    due = set(found) if expected is None else expected
    return Tally(expected=None if expected is None else len(due),
                 once=sum(1 for key in due if found[key] == 1),
                 missing=None if expected is None else sum(1 for key in due if not found[key]),
                 duplicated=sum(1 for key in due if found[key] > 1),
                 extra=sum(1 for key in found if key not in due))


def anomaly_keys(event) -> list[tuple]:
    """The natural keys of an anomaly event's anomalies (as risk-scoring stores them)."""
    return [(row["time"], row["token"], row["anomaly_type"], row["detector"], row["anomaly_key"])
            for row in anomaly_rows(event, event.data["anomalies"])]


def order_free_outputs(tap_events: list, database_url: str) -> dict[str, Counter]:
    """Outputs that must equal the clean run's: name -> Counter(natural key -> count)."""
    found: dict[str, Counter] = {}
    with psycopg.connect(database_url) as conn:
        for name, query in ROW_QUERIES.items():
            found[name] = Counter(tuple(_plain(v) for v in row)
                                  for row in conn.execute(query).fetchall())
    sent = Counter()
    for event in tap_events:
        if event.type == ANOMALY_DETECTED:
            sent.update(set(anomaly_keys(event)))
    found["anomalies in events"] = sent
    for name, kind in EVENTS_BY_ID.items():
        found[name] = Counter(event.id for event in tap_events if event.type == kind)
    return found


def _plain(value):
    """Row values comparable across runs (timestamps as ISO text, decimals as floats)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return float(value) if hasattr(value, "as_tuple") else value


def caused_outputs(tap_events: list, database_url: str) -> dict[str, Tally]:
    """Risk scores and alerts, accounted against their causes within one run."""
    due = set()  # (cause source, cause id, token)
    for event in tap_events:
        if event.type == ANOMALY_DETECTED:
            due.update((event.source, event.id, a["token"]) for a in event.data["anomalies"])
        elif event.type == SENTIMENT_SCORED and sentiment_evidence(event.data):
            due.add((event.source, event.id, event.data["token"]))
    causes = {(e.source, e.id): e for e in tap_events}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT event_source, event_id, token, time, score"
                            " FROM risk_scores").fetchall()
    risk_rows = Counter((source, ident, token) for source, ident, token, _, _ in rows)
    risk_ids = {derived_id(causes[(source, ident)], f"risk:{token}")
                for source, ident, token in due}
    risk_events = Counter(e.id for e in tap_events if e.type == RISK_SCORED)
    scored = {(token, moment.timestamp(), round(score, 4)) for _, _, token, moment, score in rows}
    alerts = Counter()
    unexplained = 0
    for event in tap_events:
        if event.type == ALERT:
            data = event.data
            alerts[(data["token"], data["time"], data["kind"], data["level"])] += 1
            moment = datetime.fromisoformat(data["time"].replace("Z", "+00:00")).timestamp()
            unexplained += (data["token"], moment, round(data["score"], 4)) not in scored
    alert_tally = tally(None, alerts)
    alert_tally.extra = unexplained
    return {"risk_scores rows (per cause, token)": tally(due, risk_rows),
            "risk score events (per cause, token)": tally(risk_ids, risk_events),
            "alert events (per transition)": alert_tally}


def late_inputs(mesh) -> Counter:
    """Inputs each function counted as later than the allowed lateness (not analysed)."""
    late = Counter()
    for name, url in mesh.urls.items():
        if name == "broker":
            continue
        text = httpx.get(url + "/metrics", timeout=10).text
        for function, value in LATE_METRIC.findall(text):
            late[function] += int(float(value))
    return +late


def injected_faults(log_dir: Path) -> Counter:
    """(function, step) -> faults injected, from the functions' JSON log lines."""
    counts = Counter()
    for log in log_dir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"fault injected"' not in line:
                continue
            record = json.loads(line)
            fields = record.get("fields", record)
            counts[(fields.get("function", log.stem), fields.get("step", "?"))] += 1
    return counts


def reset(client, database_url: str) -> None:
    """Empty the run's Redis database and output tables (between the clean and faulty runs)."""
    client.flushdb()
    with psycopg.connect(database_url) as conn:
        conn.execute(f"TRUNCATE {', '.join(OUTPUT_TABLES)}")


def recent_start(minutes: float) -> datetime:
    """Where a story of `minutes` should start: just before now. Stories start in 2024 by
    default, and TimescaleDB's retention policies (90 days) drop such chunks when their job
    first runs, ~5 minutes after a database is made: make reliability's last steps lost
    1006 token_metrics and 37-51 risk_scores rows that way, whatever the step injected."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    return now - timedelta(minutes=minutes + 1)


# Both runs: no wall-clock release (no PingSource, an idle timeout past the run), so what
# each key analyses depends only on its inputs.
def stream_settings(*, lateness_s: float) -> dict[str, str]:
    return {"KADES_REORDER_LATENESS_S": str(lateness_s), "KADES_REORDER_IDLE_S": "86400"}


@dataclass
class Run:
    outputs: dict[str, Counter]
    caused: dict[str, Tally]
    books: Books
    late: Counter  # function -> inputs it counted as late
    injected: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    conflicting: int = 0  # events that came again with other content (mesh.Tap.conflicts)

    @property
    def late_inputs(self) -> int:
        """Late inputs of the functions whose outputs are compared with the clean run."""
        return sum(n for function, n in self.late.items() if function not in BY_CAUSE)

    @property
    def late_by_cause(self) -> dict[str, int]:
        """Late inputs of risk-scoring: its outputs are accounted against their causes, which a
        late input does not change (it may change which alerts are sent, which is not seen)."""
        return {function: n for function, n in self.late.items() if function in BY_CAUSE}


def run_stream(work: Path, events: list, *, client, redis_url: str, database_url: str,
               env: dict[str, str], rate_per_s: float, settle_timeout_s: float = 180,
               kills: tuple[str, ...] = (), redis_cluster: bool = False) -> Run:
    """`events` through a fresh mesh with `env`, from an empty Redis database and empty output
    tables, until the books balance; what it produced. `kills`: functions killed while they
    handle an event, one after another while the stream is posted (`kill_victims`)."""
    reset(client, database_url)
    began = time.monotonic()
    mesh = Mesh(work, redis_url=redis_url, database_url=database_url, env=env,
                pingsources=False, redis_cluster=redis_cluster)
    try:
        mesh.start()
        ledger = Ledger(mesh)
        load = Load(mesh.ingress, iter(events), rate_per_s=rate_per_s).start()
        killed = kill_victims(mesh, load, kills, inputs=len(events))
        load.wait(timeout_s=settle_timeout_s)
        books, _ = settle(ledger, client, database_url, events, timeout_s=settle_timeout_s)
        tapped = [event for event, _ in mesh.tap.snapshot().values()]
        return Run(order_free_outputs(tapped, database_url), caused_outputs(tapped, database_url),
                   books, late_inputs(mesh), injected_faults(mesh.state_dir / "logs") + killed,
                   time.monotonic() - began, len(mesh.tap.conflicts))
    finally:
        mesh.stop()


KILLED = "killed mid-event"  # the step of a kill in Run.injected: (function, KILLED) -> claims
CAUGHT_UP = 10  # entries in a victim's lanes: well under the lateness's worth of its inputs


def drain_lanes(mesh: Mesh, load: Load, function: str, *, timeout_s: float = 60) -> None:
    """Pause the source until the broker's lanes to `function` (its Triggers are named after
    it) hold fewer than CAUGHT_UP entries (or `timeout_s` passed), then resume it."""
    client = clients.new_redis(mesh.config)
    load.pause()
    try:
        deadline = time.monotonic() + timeout_s
        while broker_backlog(client, function) >= CAUGHT_UP and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()
        load.resume()


def lanes_empty(mesh: Mesh, function: str) -> bool:
    """Whether the broker's lanes to `function` are empty: every event delivered and done."""
    client = clients.new_redis(mesh.config)
    try:
        return broker_backlog(client, function) == 0
    finally:
        client.close()


def kill_victims(mesh: Mesh, load: Load, victims: tuple[str, ...], *, inputs: int,
                 takeover_timeout_s: float = 120) -> Counter:
    """Kill each victim (SIGKILL) with an event in hand, spread over the stream, and start it
    again as Knative starts a new pod; (victim, KILLED) -> claims it left behind (0: it was
    caught with none in hand). Inputs of its keys handled after the kill and before the
    broker's retries take its events over (a claim lease later) would be late by design
    (counted, not analysed), which is not what this step measures. So before each kill the
    source pauses until the victim's lanes are nearly empty (a victim behind by more than
    the lateness has that much of its keys' later inputs queued), and again from the kill
    until the orphaned events are handled (their claims done). Only the victim's lanes: a
    mesh drained whole leaves the later victims idle, and the story ends before their turn."""
    killed = Counter()
    for index, victim in enumerate(victims):
        while len(load.accepted) < inputs * (index + 1) / (len(victims) + 1) and load.running:
            time.sleep(0.05)
        drain_lanes(mesh, load, victim)
        orphans = mesh.kill_mid_event(victim)
        if orphans:
            load.pause()
        mesh.restart(victim)
        killed[(victim, KILLED)] += len(orphans)
        deadline = time.monotonic() + takeover_timeout_s
        # a victim without claims: its events in hand are done once its lanes are empty
        claim_free = load_function(victim).idempotent
        while (not (lanes_empty(mesh, victim) if claim_free else mesh.claims_done(orphans))
               and time.monotonic() < deadline):
            time.sleep(0.2)
        load.resume()
    return killed


def compare(reference: Run, faulty: Run) -> dict[str, Tally]:
    """Each output of the faulty run against the clean run's (and the caused ones)."""
    return {**{name: tally(set(expected), faulty.outputs[name])
               for name, expected in reference.outputs.items()}, **faulty.caused}


def reference_problems(reference: Run) -> list[str]:
    """Why the clean run cannot serve as the expected outputs (empty: it can)."""
    problems = [f"{name}: {sum(1 for n in found.values() if n > 1)} present more than once"
                for name, found in reference.outputs.items() if any(n > 1 for n in found.values())]
    problems += [f"{name}: {t.missing} missing, {t.duplicated} duplicated, {t.extra} extra"
                 for name, t in reference.caused.items() if not t.exact]
    if not reference.books.balanced:
        problems.append(f"books: {reference.books.summary()}")
    if reference.late_inputs:
        problems.append(f"{reference.late_inputs} inputs later than the allowed lateness")
    if reference.conflicting:
        problems.append(f"{reference.conflicting} events sent again with other content")
    return problems


# `make reliability`: each step of a handler, on every function that has it.
STEPS = {
    "none (chaos only)": (),  # tells what delivery order alone changes from what faults do
    "after_state": ("temporal-analysis", "sentiment-analysis", "chain-analysis", "whale-detection"),
    "after_db": ("temporal-analysis", "risk-scoring", "market-aggregator"),
    "before_sink": ("sentiment-analysis", "risk-scoring", "temporal-analysis", "market-aggregator",
                    "chain-analysis"),
    "after_sink": ("sentiment-analysis", "risk-scoring", "temporal-analysis", "market-aggregator",
                   "chain-analysis"),
}
CHAOS = {"KADES_BROKER_CHAOS_REORDER_WINDOW": "8", "KADES_BROKER_CHAOS_DUPLICATE_RATE": "0.05",
         "KADES_BROKER_CHAOS_DELAY_RATE": "0.05", "KADES_BROKER_CHAOS_DELAY_MAX_S": "0.3",
         "KADES_BROKER_CHAOS_SEED": "3"}
# The kill step: these die with an event in hand, one after another (the claim lease of the
# default settings frees the event for the broker's retry in the new process).
KILL_VICTIMS = ("market-aggregator", "temporal-analysis", "chain-analysis", "sentiment-analysis",
                "risk-scoring")
KILL_STEP = "process killed mid-event"


LINKS = ("previous_slot", "previous_mint_slots")


def without_links(events: list) -> list:
    """The events, chain blocks without the source's links (the module's doc)."""
    return [CloudEvent(e.attributes, {k: v for k, v in e.data.items() if k not in LINKS})
            if e.type == CHAIN_BLOCK else e for e in events]


def account_steps(work: Path, events: list, *, client, redis_url: str, database_url: str,
                  rate_per_s: float, lateness_s: float, fault_rate: float) -> dict:
    """A clean run, then one run per step with that step failing at `fault_rate` on every
    function that has it and the chaos switch on; the figures of each, for the report."""
    events = without_links(events)
    base = stream_settings(lateness_s=lateness_s)
    where = dict(client=client, redis_url=redis_url, database_url=database_url,
                 rate_per_s=rate_per_s)
    reference = run_stream(work / "clean", events, env=base, **where)
    result = {"inputs": len(events), "lateness_s": lateness_s, "fault_rate": fault_rate,
              "chaos": CHAOS, "kill_victims": KILL_VICTIMS, "kill_step": KILL_STEP,
              "caught_up": CAUGHT_UP,
              "reference_problems": reference_problems(reference),
              "expected": {name: len(found) for name, found in reference.outputs.items()},
              "steps": []}
    print(f"  clean run: {result['expected']}", flush=True)
    for step, functions in [*STEPS.items(), (KILL_STEP, KILL_VICTIMS)]:
        killing = step == KILL_STEP
        points = "" if killing else ",".join(f"{function}:{step}:{fault_rate}"
                                             for function in functions)
        faulty = run_stream(work / step.replace(" ", "-"), events, **where,
                            env={**base, **CHAOS, "KADES_FAULT_POINTS": points,
                                 "KADES_FAULT_SEED": "1"},
                            kills=functions if killing else ())
        tallies = compare(reference, faulty)
        injected = ({f: f"killed, {n} in hand" for (f, _), n in faulty.injected.items()}
                    if killing else {f: n for (f, _), n in faulty.injected.items()})
        # Every fault step must have injected something; every victim must have died mid-event.
        struck = (all(faulty.injected[(f, KILLED)] for f in functions) if killing
                  else not functions or sum(faulty.injected.values()) > 0)
        entry = {"step": step, "injected": injected,
                 "late_inputs": faulty.late_inputs, "late_by_cause": faulty.late_by_cause,
                 "conflicting": faulty.conflicting, "balanced": faulty.books.balanced,
                 "tallies": {name: vars(t) for name, t in tallies.items()},
                 "exact": all(t.exact for t in tallies.values()) and faulty.books.balanced
                 and not faulty.late_inputs and not faulty.conflicting and struck}
        print(f"  {step}: injected {entry['injected']}, late {dict(faulty.late)}, "
              f"sent again with other content {faulty.conflicting}, exact {entry['exact']}",
              flush=True)
        for name, t in tallies.items():
            if not t.exact:
                print(f"    {name}: {t}", flush=True)
        result["steps"].append(entry)
    result["exact"] = not result["reference_problems"] and all(s["exact"] for s in result["steps"])
    return result
