"""risk-scoring: stores anomalies, keeps each token's evidence, replies one risk score per token
and emits alerts on changes of level (with hysteresis, see alerting).

Sentiment scores feed the sentiment component too: only extreme sentiment (|score| > 0.5,
hype as much as panic) adds to it, and a token's newest report is the one that counts, so a
calm one ends an extreme one before it; they are not stored as anomalies.

Results do not depend on delivery order nor on duplicates (within KADES_REORDER_LATENESS_S):
- A token's state holds the SET of its contributing anomalies (kades.risk.scoring: keyed by
  identity, so one anomaly counts once however it comes) and its risk as of a time T is a
  function of that set alone.
- Each event stores and replies one risk score per token, as of the event's latest anomaly
  time (the decay job: as of its own time). An anomaly that comes after a later one of its
  token (out of order) rescores the stored rows of that token from its time on, so every
  row ends as the risk at its time from every anomaly up to it, whatever the order; rows
  older than the lateness are left as they are. The reply says what was known when sent.
- Alerts are decided in event time: each scored time of a token goes through a reorder
  buffer (kades.runtime.reorder) and is judged once every anomaly up to it is in (the
  token's newest time has passed it by the lateness), or once it has waited the lateness of
  wall clock (KADES_REORDER_IDLE_S if shorter), in time order. Tokens with scored times
  waiting are listed in RISK_WAITING (in the same MULTI as their state), so what waited that
  long is judged at the next event of ANY token (at most DUE_PER_EVENT of them) or at the
  next `stream-flush` ping (every minute), whichever comes first. An alert therefore comes
  at most lateness + 60 s (the flush period) after its evidence reached risk-scoring, and
  about the lateness after it while any token's anomalies keep coming (it was up to 60 s +
  5 min when only the decay job released quiet tokens). Waiting less would break the
  contract: an anomaly delivered up to the lateness after a later one of its token keeps
  its place, in event time and in wall clock alike. An alert's id derives from (token,
  episode, kind, level), the episode being the time it was raised, so reordered or
  duplicated input yields the same alerts with the same ids, once (alert-dispatch publishes
  an id once). The decay job clears a standing alert at the time its risk fell below the
  clearing level, once that time is older than the lateness (so a clearing comes within
  the 5 minutes of the decay job). A scored time older than what was judged already is
  late: counted in kades_late_inputs_total; its anomalies still count from then on.

Per-token state lives in Redis (WATCH/MULTI: two replicas may score the same token; one
replica's threads take turns per token, `key_turns`). The
database rows are written first, the Redis update is EXECuted inside the database
transaction (a conflict rolls the rows back and the whole thing is recomputed). What an
event scored and announced is kept in its outbox (kades.keys.outbox_key), committed
with the state: a retry after a failure past the commit stores and replies those very risk
scores and alerts, once.
"""
from __future__ import annotations

import json
import random
import time

import redis

from kades.errors import BadRequestError, Problem, TemporaryFailure
from kades.events.catalogue import (ALERT, ANOMALY_DETECTED, PING, RISK_SCORED,
                                    SENTIMENT_SCORED, TIME_PROBLEM, derived_id, is_event_time,
                                    new_event)
from kades.events.envelope import CloudEvent
from kades.keys import (RISK_LIVE, RISK_LIVE_SWEPT, RISK_STATE, RISK_WAITING, TRACKED_THRESHOLDS,
                        outbox_key)
from kades.metrics import LATE_INPUTS
from kades.risk.alerting import clears_below, decide
from kades.risk.scoring import (SNAPSHOT_KIND, absorb, details_digest, epoch_s, evidence_key,
                                pruned, rfc3339, risk_at, time_below)
from kades.runtime import Context, Function, faults
from kades.runtime.reorder import ReorderBuffer, queue_waiting, quiet_keys
from kades.runtime.state import KeyTurns, outbox_ttl
from kades.storage import tracking
from kades.storage.repository import (insert_anomalies, insert_risk_score, lock_risk_scores,
                                      risk_score_times, update_risk_scores)

DUE_PER_EVENT = 32                  # waited tokens an anomaly event judges besides its own
# Tokens one risk-decay ping scores, least recently scored first (the rest at the next ping):
# one WATCH over thousands of keys took Redis seconds, all other clients waiting.
DECAY_PER_PING = 500
DECAY_JOB, FLUSH_JOB = "risk-decay", "flush"   # the PingSources' jobs (eventing/400-*)
STATE_TTL_S = 30 * 24 * 3600  # risk decays to nothing long before a month of silence
MAX_ATTEMPTS = 8


def group_by_token(anomalies: list[dict]) -> dict[str, list[dict]]:
    """Anomalies per token, tokens in order of first appearance."""
    groups: dict[str, list[dict]] = {}
    for anomaly in anomalies:
        groups.setdefault(anomaly["token"], []).append(anomaly)
    return groups


# What a chain anomaly says beside its details (how bad, how sure, over which slots, by which
# version), kept in the stored details: they were dropped, and the api could not show them.
KEPT_BESIDE_DETAILS = ("severity", "confidence", "window", "detector_version")


def anomaly_rows(event: CloudEvent, anomalies: list[dict]) -> list[dict]:
    rows = []
    for anomaly in anomalies:
        details = anomaly.get("details") or {}
        kept = {**{k: anomaly[k] for k in KEPT_BESIDE_DETAILS if k in anomaly}, **details}
        rows.append({"time": anomaly["time"], "token": anomaly["token"],
                     "anomaly_type": anomaly["anomaly_type"], "score": anomaly["score"],
                     "detector": anomaly["detector"], "details": kept,
                     # of the details as sent: a row stored before keeps its key
                     "anomaly_key": details_digest(details),
                     "event_source": event.source, "event_id": event.id})
    return rows


def score_token(stored: dict | None, token: str, anomalies: list[dict], *, at: str | None,
                threshold: float, hysteresis: float, half_life_s: float,
                buffer: ReorderBuffer, now_s: float, stored_row: bool = True
                ) -> tuple[dict, dict, list, dict]:
    """One token: (new state, risk document, [(alert id, alert)], notes) from its stored
    state and new evidence (none: a ping, scored as of `at`; nor `at`: only what waited is
    judged, the risk document is None). `stored_row`: whether the caller stores the risk
    document as a row (a flush judges and stores none).

    notes: `late` (new anomalies older than what was judged already), `rescore_from` (epoch
    s from which stored rows need rescoring, or None)."""
    # a state of the previous version (a running risk, no evidence set) starts afresh
    stored = stored if stored and stored.get("version") == 2 else {"version": 2}
    before = stored.get("risk")
    points = json.loads(json.dumps(stored.get("points", {})))  # admit changes it in place
    judged_to = points.get("released_to")
    known = set((before or {}).get("evidence", ()))
    fresh = [epoch_s(a["time"]) for a in anomalies if evidence_key(a) not in known]
    # the risks are of the whole set; the set kept drops what decayed by the newest time (an
    # anomaly a year older than the token's newest scored 0 at its own time)
    whole = absorb(before, anomalies, half_life_s=half_life_s, prune=False)
    state = pruned(whole, half_life_s=half_life_s, keep_s=buffer.lateness_s)
    moment = (max(epoch_s(a["time"]) for a in anomalies) if anomalies
              else epoch_s(at) if at else None)
    risk = risk_at(whole, token, moment, half_life_s=half_life_s) if moment is not None else None
    arrivals = [(moment, f"{moment:.6f}", None)] if anomalies else []
    released, _ = buffer.admit(points, arrivals, now_s=now_s)
    risks = [risk_at(whole, token, t, half_life_s=half_life_s) for t, _, _ in released]
    alert_state, alerts = decide(stored.get("alert"), risks, threshold=threshold,
                                 hysteresis=hysteresis)
    if (fresh and judged_to is not None and judged_to - buffer.lateness_s <= moment <= judged_to
            and not any(t == moment for t, _, _ in released)):
        # New evidence at a time already judged (a rug at the second of an anomaly before
        # it): the point is not judged again in order, so its risk is judged now, and so is
        # the risk at each later evidence's time judged since, which counted it not, in time
        # order (two removals, the later one judged first, escalated nothing: the risk after
        # both was judged with one). Each may raise or escalate, never clear (a critical risk
        # raised no alert, ever). Not what comes later than the lateness: a year-old rug
        # reported now is no news to alert on.
        since = sorted({entry[0] for entry in whole["evidence"].values()
                        if moment < entry[0] <= judged_to})
        for again in [risk] + [risk_at(whole, token, t, half_life_s=half_life_s) for t in since]:
            late_state, late = decide(alert_state, [again], threshold=threshold,
                                      hysteresis=hysteresis)
            if late and late[-1][1]["kind"] != "cleared":
                alert_state, alerts = late_state, alerts + late
    if (moment is not None and not anomalies and not alert_state["active"]
            and not points.get("pending")):
        # a ping's risk judged for a raise: a threshold lowered since (POST /v1/token/track)
        # was met by nothing until the token's next anomaly
        raised_state, raised = decide(alert_state, [risk], threshold=threshold,
                                      hysteresis=hysteresis)
        if raised:
            alert_state, alerts = raised_state, alerts + raised
    elif moment is not None and not anomalies and alert_state["active"] and not points.get("pending"):
        # quiet since: the alert clears when the risk fell low enough, once that is past. A
        # state with nothing released yet (kept before points were, or its points lost) is
        # judged from its newest evidence, or the lateness back: it raised KeyError at every
        # ping, and the token, ever among the least recently scored, failed every risk-decay
        # batch
        since = points.get("released_to")
        if since is None:
            since = state["latest"] if state["latest"] is not None else moment - buffer.lateness_s
        cleared_at = time_below(state, clears_below(threshold, hysteresis), since,
                                half_life_s=half_life_s)
        if cleared_at + buffer.lateness_s <= moment:
            points["released_to"] = cleared_at  # judged up to there: earlier input is late
            alert_state, more = decide(alert_state, [risk_at(state, token, cleared_at,
                                                             half_life_s=half_life_s)],
                                       threshold=threshold, hysteresis=hysteresis)
            alerts += more
    # the newest row stored: a ping's too (`row_to`), not only the newest anomaly's time (an
    # anomaly older than a ping's row left that row, the token's latest, without it)
    previous_row = stored.get("row_to", (before or {}).get("latest"))
    earliest = min(fresh, default=None)
    # not newer than all before it: rows at or after its time did not count it (two
    # anomalies of one second in two events, whichever comes first, are such a case)
    rescore = (earliest if earliest is not None and previous_row is not None
               and earliest <= previous_row else None)
    if rescore is not None:  # rows older than the lateness stay as they are
        rescore = max(rescore, previous_row - buffer.lateness_s)
    notes = {"late": sum(1 for t in fresh if judged_to is not None and t <= judged_to),
             "rescore_from": rescore}
    # (a row that is not stored moved it on: a late anomaly then rescored from there less the
    # lateness, and the rows before, which did not count it, stayed as they were)
    row_to = max((t for t in (previous_row, moment if stored_row else None) if t is not None),
                 default=None)
    return ({"version": 2, "risk": state, "points": points, "alert": alert_state,
             "row_to": row_to}, risk, alerts, notes)


# A window's sentiment counts in full from this many distinct authors (unique_authors, else
# mentions; a sender that counts neither is taken at its word), a share below. One post,
# "$QUIET to the moon 🚀", was a whole token's sentiment: on StockTwits' $ETH.X stream
# (../shared/data/social, 29 days, 531 tokens named) sentiment alone put 64 token-hours at a
# risk of 0.7 or more, the default alert threshold, every one of them one to two authors'. 3
# is the least that leaves none in the stream's first 15 days (25 before); its last 14,
# held out, had 39 and have none (tests/eval/eval_sentiment.py).
SENTIMENT_FULL_AUTHORS = 3


def sentiment_evidence(data: dict) -> list[dict]:
    """A sentiment score as an anomaly-like piece of evidence: a snapshot (SNAPSHOT_KIND),
    of strength 0 when the sentiment is not extreme, and a share of it when fewer than
    SENTIMENT_FULL_AUTHORS spoke. Only the newest snapshot counts
    (kades.risk.scoring.components_at), so a calm report ends an extreme one before it: left
    out, a token's last extreme report counted until it decayed, whatever came after it."""
    voices = data.get("unique_authors", data.get("mentions", SENTIMENT_FULL_AUTHORS))
    strength = (max(0.0, (abs(data["score"]) - 0.5) / 0.5)
                * min(1.0, max(0, voices) / SENTIMENT_FULL_AUTHORS))
    return [{"token": data["token"], "time": data["time"], "anomaly_type": SNAPSHOT_KIND,
             "score": round(min(1.0, strength), 4), "detector": "sentiment-analysis",
             "details": {"sentiment": data["score"], "window": data["window"]}}]


def alert_buffer(settings) -> ReorderBuffer:
    """The buffer scored times pass before their alerts are decided: released once the
    token's newest time passed them by the lateness, or once they waited the lateness of
    wall clock (the idle timeout if shorter)."""
    return ReorderBuffer(lateness_s=settings.reorder_lateness_s,
                         idle_s=min(settings.reorder_lateness_s, settings.reorder_idle_s))


def handle_anomalies(event: CloudEvent, ctx: Context) -> list[CloudEvent]:
    if event.type == PING:
        return handle_ping(event, ctx)
    is_sentiment = event.type == SENTIMENT_SCORED
    anomalies = sentiment_evidence(event.data) if is_sentiment else event.data["anomalies"]
    if not anomalies:
        return []
    stored = [] if is_sentiment else anomaly_rows(event, anomalies)
    return score_and_store(event, ctx, group_by_token(anomalies), stored)


def handle_ping(event: CloudEvent, ctx: Context) -> list[CloudEvent]:
    """The periodic jobs. `risk-decay` (every 5 minutes): the risk as of now of the tokens
    in RISK_LIVE (not faded to 0, or an alert standing; at most DECAY_PER_PING, least
    recently scored first), so that scores fade between anomalies; what waited is judged,
    and a standing alert clears once its token has calmed down; tracked thresholds Redis
    lost are published again from the database. `flush` (every minute):
    only the tokens listed as waiting, their scored times that waited long enough judged;
    no scores stored."""
    job, now = event.data.get("job"), _ping_time(event)
    if job == FLUSH_JOB:
        return score_and_store(event, ctx, {}, [], now=now, due_limit=None)
    if job != DECAY_JOB:
        raise BadRequestError("unknown job", [Problem(
            "data.job", f"risk-scoring runs '{DECAY_JOB}' and '{FLUSH_JOB}'")])
    _sweep_states_into_live(ctx.redis)
    with ctx.db() as conn:
        tracking.restore_thresholds(conn, ctx.redis)
    due = ctx.redis.zrangebyscore(RISK_LIVE, "-inf", f"({epoch_s(now)}", start=0, num=DECAY_PER_PING)
    return score_and_store(event, ctx, {token.decode(): [] for token in due}, [], now=now)


def _sweep_states_into_live(client) -> None:
    """Once: every token state into RISK_LIVE (states written before it are not listed), as
    last scored long ago; the decay then scores each and drops those whose risk is 0."""
    if client.exists(RISK_LIVE_SWEPT):
        return
    prefix = RISK_STATE.format(token="")
    with client.pipeline(transaction=False) as pipe:
        for key in client.scan_iter(prefix + "*", count=1000):
            pipe.zadd(RISK_LIVE, {key.decode()[len(prefix):]: 0}, nx=True)
        pipe.set(RISK_LIVE_SWEPT, 1)
        pipe.execute()


def _ping_time(event: CloudEvent) -> str:
    """When the PingSource sent the event (it always sets `time`): the job runs as of then."""
    moment = event.attributes.get("time")
    if not isinstance(moment, str) or not is_event_time(moment):
        raise BadRequestError("a ping without a usable time", [Problem(
            "time", f"a PingSource event carries the time it was sent: {TIME_PROBLEM}")])
    return moment


def key_turns(ctx: Context) -> KeyTurns:
    """The process's turns per token state, one per Context (`ctx.local`): its threads
    scoring one token take turns instead of colliding on the WATCH (8 threads of one replica
    on one token: 3.8 scorings an event and 21 503s in 160 events without them)."""
    return KeyTurns()


def score_and_store(event: CloudEvent, ctx: Context, groups: dict[str, list[dict]],
                    anomaly_rows_: list[dict], now: str | None = None,
                    due_limit: int | None = DUE_PER_EVENT) -> list[CloudEvent]:
    """Score `groups` (token -> new evidence) in one transaction, and judge what waited
    long enough in other tokens (at most `due_limit` of them; None: all); the replies (for
    `groups` only) and alerts."""
    default = ctx.settings.alert_default_threshold
    outbox = outbox_key(ctx.name, event.source, event.id)
    buffer = alert_buffer(ctx.settings)
    for attempt in range(MAX_ATTEMPTS):
        # Another delivery of the event (a retry that took over a claim left to lapse) may
        # commit meanwhile: recomputed from its states, this one found its evidence known and
        # nothing to alert, and its outbox overwrote the first's alerts. So the outbox is read
        # again under the WATCH, and watched: a commit before the WATCH is seen there, one
        # after it fails the EXEC. (This first read spares a plain redelivery the rest.)
        earlier = ctx.redis.get(outbox)
        if earlier is not None:
            return redo_outbox(event, ctx, anomaly_rows_, earlier)
        now_s, late = time.time(), 0
        # judged alongside: tokens whose scored times waited long enough (read before the
        # WATCH: a replica that judged them meanwhile changed their state, so we start again)
        due = [token for token in quiet_keys(ctx.redis, RISK_WAITING, now_s=now_s,
                                             idle_s=buffer.idle_s, limit=due_limit)
               if token not in groups]
        tokens = list(groups) + due
        if not tokens:
            return []
        keys = [RISK_STATE.format(token=token) for token in tokens]
        work = [*groups.items(), *((token, []) for token in due)]
        # other replicas still meet the WATCH; this one's threads wait their turn
        with ctx.local(key_turns).held(keys), ctx.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*keys, outbox)
                earlier = pipe.get(outbox)
                if earlier is not None:
                    break
                thresholds = [float(t) if t is not None else default
                              for t in pipe.hmget(TRACKED_THRESHOLDS, tokens)]
                states, risks, alerts, rescores, scored = [], [], [], [], []
                for raw, (token, anomalies), threshold in zip(pipe.mget(keys), work, thresholds):
                    state, risk, found, notes = score_token(
                        json.loads(raw) if raw else None, token, anomalies,
                        at=now, threshold=threshold,
                        hysteresis=ctx.settings.alert_hysteresis,
                        half_life_s=ctx.settings.risk_half_life_s, buffer=buffer, now_s=now_s,
                        stored_row=token in groups)
                    states.append(state)
                    scored.append(risk)
                    if token in groups:  # a waited token is judged only: no score of its own
                        risks.append(risk)
                    alerts += found
                    late += notes["late"]
                    if notes["rescore_from"] is not None:
                        rescores.append((token, state["risk"], notes["rescore_from"]))
                pipe.multi()
                for key, state in zip(keys, states):
                    pipe.set(key, json.dumps(state, separators=(",", ":")), ex=STATE_TTL_S)
                queue_waiting(pipe, RISK_WAITING, tokens, [state["points"] for state in states])
                _note_live(pipe, tokens, states, scored)
                # what was rescored too: Redis commits before the database, and a retry after
                # a failed database commit redid the rows from the outbox but not the rescoring
                rescored = [[token, since] for token, _, since in rescores]
                pipe.set(outbox, json.dumps([risks, alerts, rescored], separators=(",", ":")),
                         ex=outbox_ttl([risks, alerts]))
                with ctx.db() as conn:
                    lock_risk_scores(conn, [r["token"] for r in risks] + [t for t, _ in rescored])
                    store_rows(conn, event, anomaly_rows_, risks)
                    rescore_rows(conn, rescores, half_life_s=ctx.settings.risk_half_life_s)
                    pipe.execute()  # a WatchError here leaves the block: the rows roll back
                faults.point("after_db")  # tests only (KADES_FAULT_POINTS)
                break
            except redis.WatchError:
                # Another replica scored one of these tokens: start again from its state, after
                # a short random pause so that two replicas do not collide in lock step.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    else:
        raise TemporaryFailure(f"risk state kept changing under us ({MAX_ATTEMPTS} attempts)")
    if earlier is not None:
        return redo_outbox(event, ctx, anomaly_rows_, earlier)
    if late:
        LATE_INPUTS.labels(ctx.name).inc(late)
    return replies_of(event, ctx, risks, alerts)


def redo_outbox(event: CloudEvent, ctx: Context, anomaly_rows_: list[dict],
                earlier: bytes) -> list[CloudEvent]:
    """An event committed before: its effects redone from its outbox, nothing scored anew
    (rescored: the tokens and times the commit rescored from; none in an outbox written
    before they were kept)."""
    risks, alerts, *rescored = json.loads(earlier)
    rescored = rescored[0] if rescored else []
    own = [(risk["token"], epoch_s(risk["time"])) for risk in risks]
    with ctx.db() as conn:
        lock_risk_scores(conn, [token for token, _ in [*rescored, *own]])
        store_rows(conn, event, anomaly_rows_, risks)
        redo_rescoring(ctx, conn, rescored, own)
    return replies_of(event, ctx, risks, alerts)


def _note_live(pipe, tokens: list[str], states: list[dict], scored: list[dict | None]) -> None:
    """Keep RISK_LIVE true for the tokens of a commit, the decay job's list. A token scored
    leaves once its risk is 0 with no alert standing, nothing of it waiting to be judged and
    no evidence after the time scored; else its scored time is noted (a ping's tokens are
    scored as of the ping, stored or not). One judged only (None: another token's event
    judged what waited) is listed while an alert of it stands. Else a
    calm report stamped before a rug still waiting took the token off the list, and the rug's
    alert, raised when judged, stood for good: nothing scored the token again."""
    faded, live, standing = set(), {}, {}
    for token, state, risk in zip(tokens, states, scored):
        active, latest = state["alert"]["active"], state["risk"]["latest"]
        if risk is None:
            if active:
                standing[token] = latest or 0.0
            continue
        moment = epoch_s(risk["time"])
        if (risk["score"] == 0 and not active and not state["points"].get("pending")
                and (latest is None or latest <= moment)):
            faded.add(token)
        else:
            live[token] = moment
    if faded:
        pipe.zrem(RISK_LIVE, *faded)
    if live:
        pipe.zadd(RISK_LIVE, live, gt=True)  # out-of-order evidence does not move it back
    if standing:
        pipe.zadd(RISK_LIVE, standing, nx=True)


def store_rows(conn, event: CloudEvent, anomaly_rows_: list[dict], risks: list[dict]) -> None:
    """The event's anomalies and risk scores (inserting twice stores once)."""
    if anomaly_rows_:
        insert_anomalies(conn, anomaly_rows_)
    for risk in risks:
        insert_risk_score(conn, {**risk, "event_source": event.source, "event_id": event.id})


def redo_rescoring(ctx: Context, conn, rescored: list, own: list = ()) -> None:
    """A retry's rescoring of (token, since) pairs a commit rescored from, by the tokens'
    states as they are now: the state the commit had may have been passed by another event's
    commit since, whose rows it would lower again (a state counts every anomaly up to each
    row's time, so the newest gives each row what a rescore in order would). `own`: (token,
    time) of the retried event's own rows, rescored from their time too (a late anomaly
    committed since its Redis commit rescored the token's rows without them: its database
    commit had failed), unless older than the lateness behind the token's newest row: rows
    older than that are left as they are, as a commit's rescoring leaves them (a replay days
    later rewrote them from a state whose weakest evidence had since been dropped)."""
    pairs = [*rescored, *own]
    if not pairs:
        return
    raws = ctx.redis.mget([RISK_STATE.format(token=token) for token, _ in pairs])
    todo = []
    for index, ((token, since), raw) in enumerate(zip(pairs, raws)):
        if not raw:
            continue
        state = json.loads(raw)
        newest = state.get("row_to")
        if (index >= len(rescored) and newest is not None
                and since < newest - ctx.settings.reorder_lateness_s):
            continue
        todo.append((token, state["risk"], since))
    rescore_rows(conn, todo, half_life_s=ctx.settings.risk_half_life_s)


def rescore_rows(conn, rescores: list[tuple[str, dict, float]], *, half_life_s: float) -> None:
    """Stored risk scores of each token from a time on, as of their time from its evidence now
    (an anomaly came after later ones: those rows did not count it)."""
    for token, state, since in rescores:
        times = risk_score_times(conn, token, rfc3339(since))
        update_risk_scores(conn, [risk_at(state, token, moment.timestamp(),
                                          half_life_s=half_life_s) for moment in times])


def replies_of(event: CloudEvent, ctx: Context, risks: list[dict],
               alerts: list) -> list[CloudEvent]:
    """One risk.scored per token (ids derived from the event), then the alerts (ids from
    their token, episode, kind and level)."""
    replies = [new_event(RISK_SCORED, ctx.source, risk, subject=risk["token"], time=risk["time"],
                         event_id=derived_id(event, f"risk:{risk['token']}"))
               for risk in risks]
    return replies + [new_event(ALERT, ctx.source, alert, subject=alert["token"],
                                time=alert["time"], event_id=ident)
                      for ident, alert in alerts]


FUNCTION = Function("risk-scoring", (ANOMALY_DETECTED, SENTIMENT_SCORED, PING), handle_anomalies,
                    uses_database=True)
