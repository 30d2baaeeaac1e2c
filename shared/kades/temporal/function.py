"""temporal-analysis: per-token streaming detectors over market ticks; replies anomalies.

State lives in Redis, one JSON document per token, so any replica (or a fresh one after
scale-to-zero) carries on: the state written whole, then a journal of the events since, which
a reader replays (kades.temporal.codec; a one-tick event appends its input instead of writing
the state whole). Two replicas may get ticks of the same token at once: the update is
optimistic (kades.runtime.state: compare-and-set, recompute on conflict).

Ticks arrive in no order (the channel-based Broker delivers concurrently; retries overtake),
so each token's state holds a reorder buffer (kades.runtime.reorder): the detectors see the
ticks in time order, once each, whatever order they came in within the allowed lateness.
A tick later than that is counted (`kades_late_inputs_total`), not analysed. Tokens with
ticks waiting are listed in TEMPORAL_WAITING, and the `stream-flush` PingSource (every minute)
has their waiting ticks analysed once they waited past the idle timeout.

It takes no dedup claim (`Function.idempotent`): every event's update commits its result,
even an empty one, under the event's outbox in the same script as the states, so a
redelivery (or a copy handled at the same time on another replica) gets the first result
back and replies and stores the same; the outbox is the event's done mark. That is one
Redis round trip an event where the claim and its done mark made three (docs/performance.md).
Behind a primary with replicas (Settings.redis_wait_replicas, the prod overlay) the commit is
pipelined with a WAIT, in the same round trip, as a done mark would be: the answer waits until
every replica in step with the primary has it.
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from json.encoder import c_make_encoder, encode_basestring_ascii

import redis

from kades.errors import BadRequestError, Problem
from kades.events.catalogue import ANOMALY_DETECTED, MARKET_TICK, PING
from kades.events.chunking import per_token_replies
from kades.events.envelope import CloudEvent
from kades.jsontext import loads
from kades.keys import TEMPORAL_STATE, TEMPORAL_WAITING, outbox_key
from kades.metrics import LATE_INPUTS
from kades.runtime import Context, Function, faults
from kades.runtime.bulkhead import PASSED_ON, count_failures, log_failure
from kades.runtime.reorder import FLUSH_BATCH, ReorderBuffer, quiet_keys
from kades.runtime.state import StateStore, Waiting
from kades.storage.scores import insert_scores
from kades.temporal.codec import JOURNAL, LiveDocument, StateCodec
from kades.temporal.ensemble import STATE_VERSION as ENSEMBLE_STATE_VERSION
from kades.temporal.policy import NO_TRADE, new_monitor, pull_taken, step
from kades.temporal.pools import token_liquidity
from kades.temporal.threshold import ThresholdFilter

DETECTOR_PREFIX = "temporal."  # + the ensemble member behind the anomaly, e.g. temporal.pump
FLUSH_JOB = "flush"                       # the PingSource job that releases waiting ticks
STATE_TTL_S = 7 * 24 * 3600   # a token silent for a week starts afresh
MAX_ATTEMPTS = 8              # optimistic retries before answering 503 (the Broker retries)
# The states' bytes kept: as many tokens as the codec keeps documents (MAX_DOCUMENTS), their
# journals grown to the whole state's size (~3.7 kB each: 7.5 kB a token)
STATE_CACHE_BYTES = 8 << 20


def _canonical_json():
    """json.dumps(tick, sort_keys=True) without making an encoder per tick (ticks come from
    JSON: there is no cycle to look for)."""
    if c_make_encoder is None:  # a Python without the json accelerator
        return json.JSONEncoder(sort_keys=True).encode
    encode = c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None,
                            ": ", ", ", True, False, True)
    return lambda tick: "".join(encode(tick, 0))


_CANONICAL = _canonical_json()


def epoch_s(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    return moment.timestamp()


SERIES_SEPARATOR = "\x1f"  # no token holds a control character (the tick contract)


def series_key(tick: dict) -> str:
    """The series a tick belongs to: its token, and its quote when it names one. A feed's
    USD prices and the chain's SOL prices of one mint in one series jumped 150 times between
    neighbours: false liquidity drops at score 1 on calm tapes, and pumps missed."""
    quote = tick.get("quote")
    return f"{tick['token']}{SERIES_SEPARATOR}{quote}" if quote else tick["token"]


def token_of(key: str) -> str:
    return key.split(SERIES_SEPARATOR, 1)[0]


def group_ticks(ticks: list[dict]) -> dict[str, list[tuple[float, dict]]]:
    """Ticks per series (token and quote, series_key; in order of first appearance), each
    sorted by time: (epoch s, tick)."""
    groups: dict[str, list[tuple[float, dict]]] = {}
    problems = []
    # a batch's ticks share their times (a block's swaps its blockTime, a minute's bars of
    # many tokens): each time read once (0.65 us a parse, 0.05 a look-up)
    seconds: dict[str, float] = {}
    for index, tick in enumerate(ticks):
        text = tick["time"]
        try:
            moment = seconds.get(text)
            if moment is None:
                moment = seconds[text] = epoch_s(text)
            groups.setdefault(series_key(tick), []).append((moment, tick))
        except ValueError as error:
            problems.append(Problem(f"data.ticks[{index}].time", str(error)))
    if problems:
        raise BadRequestError("invalid tick times", problems)
    for series in groups.values():
        series.sort(key=lambda pair: pair[0])
    return groups


def monitor_of(state: dict | None) -> ThresholdFilter:
    """The token's monitor, carrying on from its state (None: a fresh one)."""
    if state and (state.get("detector") or {}).get("version") != ENSEMBLE_STATE_VERSION:
        state = None  # a state of an older detector: this token starts afresh (a warm-up)
    # a state without a likelihood (before it existed) keeps its detector; the likelihood
    # starts afresh and warms up (kades.temporal.likelihood)
    return new_monitor(state)


def analyse_token(token: str, state: dict | None, series: list[tuple[float, dict]],
                  scores: list[dict] | None = None, *,
                  monitor: ThresholdFilter | None = None) -> tuple[dict, list[dict]]:
    """Run the token's detector over its ticks; its new state and the anomalies it flags.

    Every anomaly carries its evidence in `details`: the ensemble member behind it
    (`detector`), the window it looked at (`window_s`), the move and the baseline it was
    compared with, the other members that scored, and the momentum context.
    Ticks at or before the last processed time are skipped: a redelivered or late batch
    changes nothing, and the detector never sees time run backwards; but for a pull in the
    same second (`policy.pull_taken`), taken a second on. Each processed tick's
    score (the strongest kind, and the member behind it) is appended to `scores` if given.
    `monitor`: the one `state` came from (kades.temporal.codec.LiveDocument), carried on instead
    of rebuilt.
    """
    if monitor is None:
        monitor = monitor_of(state)
    anomalies = _analyse(token, monitor, series, scores)
    return monitor.to_state(), anomalies


def _analyse(token: str, monitor: ThresholdFilter, series: list[tuple[float, dict]],
             scores: list[dict] | None = None, score_floor: float = -1.0) -> list[dict]:
    """analyse_token's work on `monitor`, stepped in place: the anomalies it flags. Only
    scores (rounded as stored) of at least `score_floor` go to `scores`: most ticks score
    under temporal_score_floor, and their rows were built only to be dropped."""
    last_time = monitor.last_time
    before = None  # (time, slot) of the last tick taken here
    anomalies = []
    for moment, tick in series:
        pools = tick.get("pools")  # a chain tick's: its token's pools, summed in slot order
        summed = None if pools is None else token_liquidity(monitor.pools, pools, tick.get("slot"))
        x = {"time": moment, "price": tick["price"], "volume": tick.get("volume"),
             "liquidity": tick.get("liquidity") if summed is None else summed}
        if last_time is not None and moment <= last_time and not (
                pull_taken(monitor, x) and _after(before, moment, tick)):
            continue
        verdict = step(monitor, x)
        # a bar without a trade, left out, must not hide a trade at its time behind it
        if verdict.left_out != NO_TRADE:  # (a pull taken a second on: its time, as a state's)
            taken = monitor.last_time
            last_time = moment if taken is None else max(moment, taken)
            before = (moment, tick.get("slot"))
        # round(s, 6) is within 5e-7 of s: a score under the floor by more is not rounded
        if (scores is not None and verdict.score >= score_floor - 1e-6
                and (score := round(verdict.score, 6)) >= score_floor):
            scores.append({"time": tick["time"], "token": token, "score": score,
                           "top_detector": verdict.top_detector})
        for flag in verdict.flags:
            anomalies.append({"token": token, "time": tick["time"],
                              "anomaly_type": flag["anomaly_type"],
                              "score": min(1.0, max(0.0, flag["score"])),
                              "detector": DETECTOR_PREFIX + flag["details"]["detector"],
                              "details": flag["details"]})
    return anomalies


def _after(before: tuple | None, moment: float, tick: dict) -> bool:
    """Whether `tick` is known to come after the last tick taken, `before` ((time, slot); None:
    taken in an earlier batch, which the reorder buffer released up to a time before this
    one): a later time, or the same time and both with a slot. Two ticks of one second
    without a slot come in the order of their digests (tick_id), not the chain's: a pool's
    liquidity added in the second block of a second, sorted first, made the trade of the
    block before it look like a pull."""
    if before is None or before[0] < moment:
        return True
    slot = tick.get("slot")
    return isinstance(slot, int) and isinstance(before[1], int) and before[1] < slot


WRITTEN_BY = "by"  # the reorder settings (lateness, idle) of the state's writer, in "reorder"


def carry_on(state: dict | None, buffer: ReorderBuffer
             ) -> tuple[ThresholdFilter, dict, LiveDocument | None]:
    """(monitor, reorder buffer, live document) to analyse a token's next ticks from its
    stored state: a LiveDocument this process committed carries its monitor and buffer on
    (rebuilding the monitor from the state was 7 % of a one-tick event's CPU, docs/
    performance.md "Third pass"); a state read as JSON is rebuilt, and the events of its
    journal (kades.temporal.codec) are replayed through it, as they were analysed: the same
    monitor and buffer, bit for bit (tests/temporal/test_temporal_journal.py)."""
    if type(state) is LiveDocument:
        return state.monitor, state["reorder"], state
    journal = (state or {}).pop(JOURNAL, ())
    waiting = (state or {}).pop("reorder", {})
    monitor = monitor_of(state)
    # replayed under the settings it was analysed under (its writer's, WRITTEN_BY): under
    # another lateness a tick its writer analysed waited again, and was analysed and its
    # anomaly sent a second time, or one that waited was analysed here and never sent
    lateness_s, idle_s = waiting.get(WRITTEN_BY) or (buffer.lateness_s, buffer.idle_s)
    replay = ReorderBuffer(lateness_s=lateness_s, idle_s=idle_s)
    for now_s, series in journal:
        ready, _ = replay.admit(waiting, [(moment, None, tick) for moment, tick in series],
                                now_s=now_s, id_of=tick_id)
        _analyse("", monitor, [(moment, tick) for moment, _, tick in ready])
    return monitor, waiting, None


def read_state(raw: bytes, buffer: ReorderBuffer) -> dict:
    """A token's whole state from its stored bytes, its journal replayed: what temporal-analysis
    carries on from (tests; a state as it would be written whole)."""
    monitor, waiting, _ = carry_on(loads(raw), buffer)
    return {**monitor.to_state(), "reorder": waiting}


def start(ctx: Context) -> StateStore:
    """temporal-analysis's per-process state, one per Context (`ctx.local(start)`): the
    states it last committed, cached (as bytes, and as the documents it encoded). It takes no
    claim, so its commits wait for the replicas themselves (Settings.redis_wait_replicas)."""
    return StateStore(ttl_s=STATE_TTL_S, max_attempts=MAX_ATTEMPTS, codec=StateCodec(),
                      cache_bytes=STATE_CACHE_BYTES,
                      replicas=ctx.settings.redis_wait_replicas,
                      wait_s=ctx.settings.redis_wait_timeout_s)


def tick_id(moment: float, tick: dict) -> str:
    """A tick's identity: its time, its slot if it has one, then a digest of its content.
    Chain blocks are timed to the second and 2-3 slots share one, so one token can have two
    different ticks at the same time: the slot puts them in chain order (a pull after the
    block's trades, policy.PULL_SHARE), the digest the rest in the same order however they
    arrive, and the same tick twice is one."""
    digest = hashlib.sha1(_CANONICAL(tick).encode()).hexdigest()[:12]
    slot = tick.get("slot")
    if isinstance(slot, int):
        return f"{moment:.6f}|{slot:020d}|{digest}"
    return f"{moment:.6f}|{digest}"


def analyse_batch(client: redis.Redis, groups: dict[str, list[tuple[float, dict]]], *,
                  store: StateStore, buffer: ReorderBuffer, now_s: float, outbox: str | None = None,
                  score_floor: float = 0.0) -> tuple[list[dict], list[dict]]:
    """Take every token's ticks into its reorder buffer and analyse what it releases, all
    tokens committed atomically; (anomalies, tick scores of at least `score_floor`) of the
    attempt that committed -- under `outbox`, of the first attempt of that event that
    committed (so the outbox keeps only the scores that are stored). Under an outbox every
    result is kept, an empty one too, and an event without tokens commits its outbox alone:
    the outbox is the event's done mark. A token with no ticks only releases what waited past
    the idle timeout. With a StateCodec store the states are LiveDocuments (carried on, and
    journaled, kades.temporal.codec); with any other, whole JSON documents."""
    if not groups and outbox is None:
        return [], []
    keys = [TEMPORAL_STATE.format(token=token) for token in groups]
    late, failed = [0], [0]
    live = isinstance(store.codec, StateCodec)

    def take(state: dict | None, token: str, series: list, anomalies: list, scores: list):
        """The token's new state; its anomalies and scores added to the lists."""
        monitor, waiting, before = carry_on(state, buffer)
        waiting[WRITTEN_BY] = [buffer.lateness_s, buffer.idle_s]  # (for carry_on)
        waited = len(waiting.get("pending", ()))
        ready, too_late = buffer.admit(  # ids made where kept or compared (tick_id)
            waiting, [(moment, None, tick) for moment, tick in series], now_s=now_s,
            id_of=tick_id)
        scored = []
        anomalies.extend(_analyse(token_of(token), monitor, [(m, t) for m, _, t in ready],
                                  scored, score_floor))
        if live:  # nothing released and nothing came to wait: every tick a duplicate
            new_state = LiveDocument(waiting, monitor, now_s, series, after=before,
                                     unchanged=not ready and len(waiting.get("pending", ())) == waited)
            new_state.encode()  # here, not in the store's commit: an error in it is the token's
        else:
            new_state = {**monitor.to_state(), "reorder": waiting}
        scores.extend(scored)  # (the token's scores and late ticks once it has a state)
        late[0] += len(too_late)
        return new_state

    def compute(states: list[dict | None]) -> tuple[list[dict], tuple[list[dict], list[dict]]]:
        new_states, anomalies, scores = [], [], []
        late[0] = failed[0] = 0
        for state, (token, series) in zip(states, groups.items()):
            found: list[dict] = []
            try:
                new_states.append(take(state, token, series, found, scores))
            except PASSED_ON:  # the process's trouble, not the token's: the event is retried
                raise
            except Exception:  # noqa: BLE001 - a bulkhead (kades.runtime.bulkhead)
                # An error no input should cause (a bug; one was a schema-valid tick whose rise
                # overflowed), in its analysis or in its state's encoding (`take` encodes it).
                # Its state starts afresh (a warm-up) without its waiting ticks and this
                # event's; the event's other tokens go on.
                log_failure("temporal-analysis", token)
                failed[0] += 1
                waiting = {WRITTEN_BY: [buffer.lateness_s, buffer.idle_s]}
                monitor = monitor_of(None)
                new_states.append(LiveDocument(waiting, monitor, now_s, []) if live
                                  else {**monitor.to_state(), "reorder": waiting})
                continue
            anomalies.extend(found)
        return new_states, (anomalies, scores)

    # the tokens with ticks waiting listed in the commit's own script: no round trip more
    waiting = None if not groups else Waiting(
        TEMPORAL_WAITING, list(groups), lambda state: ReorderBuffer.oldest_wait_s(state["reorder"]))

    def count_late(states: list[dict]) -> None:
        # only when this computation committed: one the outbox answered instead (a
        # redelivery) found the first delivery's ticks already taken, not late
        if late[0]:
            LATE_INPUTS.labels("temporal-analysis").inc(late[0])
        count_failures("temporal-analysis", failed[0])

    return store.update(client, keys, compute, outbox=outbox, waiting=waiting, keep_empty=True,
                        on_commit=count_late)



def handle_ticks(event: CloudEvent, ctx: Context) -> list[CloudEvent]:
    if event.type == PING:  # the stream-flush PingSource: release ticks of quiet tokens
        now = time.time()  # (the FLUSH_BATCH longest-waiting: the rest at the next minute)
        groups = {token: [] for token in quiet_keys(ctx.redis, TEMPORAL_WAITING, now_s=now,
                                                    idle_s=ctx.settings.reorder_idle_s,
                                                    limit=FLUSH_BATCH)}
    else:
        now, groups = time.time(), group_ticks(event.data["ticks"])
    # A retry after a failure past the state commit (the database away) gets the first
    # attempt's anomalies and scores back from the outbox, so they are stored and replied.
    floor = ctx.settings.temporal_score_floor
    anomalies, scores = analyse_batch(ctx.redis, groups, store=ctx.local(start),
                                      buffer=ReorderBuffer.from_settings(ctx.settings),
                                      now_s=now, outbox=outbox_key(ctx.name, event.source, event.id),
                                      score_floor=floor)
    notable = [{**row, "event_source": event.source, "event_id": event.id}
               for row in scores if row["score"] >= floor]
    if notable:  # stored after the state committed; inserting twice stores once
        with ctx.db() as conn:
            insert_scores(conn, notable)
    faults.point("after_db")  # tests only (KADES_FAULT_POINTS)
    anomalies.sort(key=lambda a: (epoch_s(a["time"]), a["token"], a["anomaly_type"]))
    # one event per token, in parts under the size limit
    return per_token_replies(event, ctx.source, ANOMALY_DETECTED, "anomalies", anomalies,
                             purpose="anomalies", time_of=lambda part: _utc(part[-1]["time"]))


def _utc(text: str) -> str:
    moment = datetime.fromtimestamp(epoch_s(text), tz=timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


# idempotent: the state's outbox makes every delivery of an event give the same (module doc)
FUNCTION = Function("temporal-analysis", (MARKET_TICK, PING), handle_ticks, uses_database=True,
                    idempotent=True)
