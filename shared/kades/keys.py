"""The KADES Redis keyspace: every `kades:...` key pattern, defined once (the counterpart of
kades.events.catalogue for the state that outlives a request).

Patterns are `str.format` templates, imported by name as event types are from the catalogue;
keys that carry a digest are rendered by a function (`dedup_key`, `outbox_key`).
Each comment says what the key holds, who sets its TTL, and which function writes / reads it.
The strings are deployed state: a changed one orphans what Redis holds under the old one, so
tests/test_keys.py pins every rendered key; a new key is a new name, never an edited one.

Redis Cluster: a script, MULTI/EXEC or WATCH may only touch keys of one hash slot, and the
slot of a key with a `{tag}` is that of the tag alone. Every key that takes part in such an
operation carries its keyspace's tag, the segment after `kades:` in braces (`{risk}`: a
token's state, the tracked thresholds read in the same WATCH, the waiting set and the outbox
committed in the same MULTI). So a keyspace lives on one shard of a cluster and the
keyspaces spread over the shards; keys used alone (dedup marks, the api's cache, rate
limits, parts) carry no tag and spread by their whole name. In a template the braces are
doubled (`str.format`); fixed keys are written as they are stored.

>>> RISK_STATE.format(token="Mint1")
'kades:{risk}:state:Mint1'
>>> dedup_key("risk-scoring", "/src\\ne1")
'kades:dedup:risk-scoring:563bd3ce5b9c7e07c1fcc6e0e976a9acca34fccb'
"""
from __future__ import annotations

import hashlib


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


# --- the runtime, in every function --------------------------------------------------------

def dedup_key(function: str, identity: str) -> str:
    """Claim, then "done" mark with the replies, of one event (identity: source and id) in one
    function. TTL: the claim lease, then Settings.dedup_ttl_s (kades.runtime.dedup)."""
    return f"kades:dedup:{function}:{_digest(identity)}"


def sent_key(dedup: str) -> str:
    """Every reply of the event whose `dedup_key` is `dedup`, kept by the first attempt that
    sent any to the sink, so a retry sends the very same (kades.runtime.dedup.first_sent).
    Derived from the dedup key: no second digest for every event. TTL: Settings.dedup_ttl_s,
    as a done mark's: a dead-lettered event may be replayed days later (`kades dlq replay`).
    Deleted once the event is done: its done mark answers redeliveries then.

    >>> sent_key(dedup_key("f", "/src\\ne1"))
    'kades:sent:f:563bd3ce5b9c7e07c1fcc6e0e976a9acca34fccb'
    """
    return "kades:sent:" + dedup.removeprefix("kades:dedup:")


# The hash tag of each function's state (its keyspace); a function missing here (a test's)
# is its own keyspace.
KEYSPACES = {"temporal-analysis": "temporal", "chain-analysis": "chain",
             "whale-detection": "whales", "sentiment-analysis": "sentiment",
             "risk-scoring": "risk"}


def keyspace(function: str) -> str:
    """The hash tag `function`'s state keys carry (Redis Cluster: one slot per keyspace).

    >>> keyspace("temporal-analysis"), keyspace("f")
    ('temporal', 'f')
    """
    return KEYSPACES.get(function, function)


def outbox_key(function: str, event_source: str, event_id: str) -> str:
    """What one event's state update computed, committed with the states (CloudEvents
    §3.1.1: source and id identify it), so in their keyspace. TTL: OUTBOX_TTL_S
    (kades.runtime.state)."""
    identity = f"{event_source}\n{event_id}"
    return f"kades:{{{keyspace(function)}}}:outbox:{function}:{_digest(identity)}"


def unblocked_key(outbox: str) -> str:
    """The mints one event's commit took from the blocked set (kades.chain.slotlog), kept for
    its retries beside the watermark (the `-fundings` keyspace of its outbox's), under the
    outbox's digest. TTL: the outbox's.

    >>> unblocked_key(outbox_key("chain-analysis", "/s", "1")).startswith("kades:{chain-fundings}:unblocked:")
    True
    """
    keyspace_of = outbox.split("{", 1)[1].split("}", 1)[0]
    return f"kades:{{{keyspace_of}-fundings}}:unblocked:{outbox.rsplit(':', 1)[1]}"


# hash part index -> data of a numbered part, until its group is whole; TTL PARTS_TTL_S;
# written and read by kades.events.chunking.assemble (chain-analysis, whale-detection, market)
PARTS = "kades:parts:{consumer}:{source}:{group}"

# --- solana-source --------------------------------------------------------------------------
# last slot sent, so a restart resumes there; no TTL; kades.solana.poll.follow
SOLANA_LAST_SLOT = "kades:solana-source:last-slot"

# --- market-aggregator ----------------------------------------------------------------------
# last SOL price in USD seen on chain, as "<price> <slot>" (the newest slot's kept); TTL 1 h
# (kades.market.chain.note_sol_usd); written by market-aggregator, read by it and by
# whale-detection (read_sol_usd)
SOL_USD = "kades:market:sol-usd"
# hash pool -> "<slot> <liquidity in SOL>" of each pool of a token, the newest slot's; TTL
# 7 days from its last pool state (kades.market.chain.merge_pool_liquidity)
MARKET_POOLS = "kades:{{market}}:pools:{token}"

# --- temporal-analysis ----------------------------------------------------------------------
# JSON detector state (with its reorder buffer); TTL STATE_TTL_S (temporal.function, StateStore)
TEMPORAL_STATE = "kades:{{temporal}}:state:{token}"
# sorted set token -> wall time its oldest tick came; no TTL (members leave when nothing waits)
TEMPORAL_WAITING = "kades:{temporal}:waiting"

# --- chain-analysis: JSON documents, TTL STATE_TTL_S (chain.function, via StateStore) -------
CHAIN_TOKEN = "kades:{{chain}}:token:{token}"      # trades, transfers, holders, launch, buffer
CHAIN_POOL = "kades:{{chain}}:pool:{pool}"         # last state, LP holders, removals, peaks
CHAIN_LAUNCHES = "kades:{{chain}}:launches:{creator}"  # (time, mint, slot) of a creator's launches
# stream of each slot's seeding SOL fundings, appended once per slot; sorted set of the slots
# appended (kades.chain.slotlog); TTL 2x (the funding hour + KEEP_S)
CHAIN_FUNDING_LOG = "kades:{chain-fundings}:log"
CHAIN_FUNDING_SLOTS = "kades:{chain-fundings}:slots"
# hash {"w": every slot up to it has a part committed, "newest", "newest_s"}; sorted set of the slots
# committed past it, each scored by its previous slot; sorted set mint -> the watermark its
# waiting slot needs (kades.chain.slotlog); the log's TTL
CHAIN_WATERMARK = "kades:{chain-fundings}:watermark"
CHAIN_WATERMARK_AHEAD = "kades:{chain-fundings}:ahead"
CHAIN_WATERMARK_BLOCKED = "kades:{chain-fundings}:blocked"
# the shared JSON document the log replaced (to 2026-12-06): read into the log once, deleted
CHAIN_FUNDINGS_DOCUMENT = "kades:{chain}:fundings"
# sorted set mint -> wall time its oldest slot came; no TTL (members leave when nothing waits)
CHAIN_WAITING = "kades:{chain}:waiting"

# --- whale-detection: JSON documents, TTL STATE_TTL_S (whales.function, via StateStore) -----
WHALES_TOKEN = "kades:{{whales}}:token:{token}"    # trades, sends, sizes, holders, buffer
# stream of each slot's seeding SOL fundings and SOL/USD, appended once per slot; sorted set
# of the slots appended (kades.chain.slotlog); TTL 2x (the whale window + KEEP_S)
WHALES_FUNDING_LOG = "kades:{whales-fundings}:log"
WHALES_FUNDING_SLOTS = "kades:{whales-fundings}:slots"
# the slots committed, as chain-analysis's (CHAIN_WATERMARK)
WHALES_WATERMARK = "kades:{whales-fundings}:watermark"
WHALES_WATERMARK_AHEAD = "kades:{whales-fundings}:ahead"
WHALES_WATERMARK_BLOCKED = "kades:{whales-fundings}:blocked"
# the shared JSON document the log replaced (to 2026-12-06): read into the log once, deleted
WHALES_FUNDINGS_DOCUMENT = "kades:{whales}:fundings"
# sorted set mint -> wall time its oldest slot came; no TTL (members leave when nothing waits)
WHALES_WAITING = "kades:{whales}:waiting"

# --- sentiment-analysis ---------------------------------------------------------------------
# JSON minute/hour buckets of a token; TTL STATE_TTL_S (sentiment.function); the api reads it
SENTIMENT_STATE = "kades:{{sentiment}}:state:{token}"
# HyperLogLogs of unique authors per 5 min / 1 h bucket; TTL AUTHORS_5M_TTL_S / AUTHORS_TTL_S
# (sentiment.function)
SENTIMENT_AUTHORS_5M = "kades:{{sentiment}}:authors:{token}:5m:{bucket}"
SENTIMENT_AUTHORS_1H = "kades:{{sentiment}}:authors:{token}:1h:{bucket}"
# hash token -> {"symbol", "name"} (JSON) recognised in posts; no TTL; written by
# sentiment.function.track_token, read by sentiment-analysis
SENTIMENT_DIRECTORY = "kades:{sentiment}:directory"
# sorted set token -> wall time its oldest post came; no TTL (members leave when nothing waits)
SENTIMENT_WAITING = "kades:{sentiment}:waiting"

# --- risk-scoring ---------------------------------------------------------------------------
# JSON evidence set, risk and alert state of a token; TTL STATE_TTL_S (risk.function)
RISK_STATE = "kades:{{risk}}:state:{token}"
# sorted set token -> wall time its oldest scored time came; no TTL (members leave when judged)
RISK_WAITING = "kades:{risk}:waiting"
# sorted set token -> event time (epoch s) it was last scored, of the tokens whose risk has
# not faded to 0 or whose alert stands: what the risk-decay job scores, least recent first;
# no TTL (members leave once scored at 0 with no alert)
RISK_LIVE = "kades:{risk}:live"
# set once risk-decay has put every token state in RISK_LIVE (states from before it)
RISK_LIVE_SWEPT = "kades:{risk}:live:swept"
# hash token -> alert threshold (the lowest tracker's); no TTL; written by the api when a
# token is tracked (api.routes_token), read by risk-scoring on each score (in its WATCH: so
# in risk's slot)
TRACKED_THRESHOLDS = "kades:{risk}:tracked:thresholds"

# --- alert-dispatch -> api ------------------------------------------------------------------
# stream of alert messages, trimmed to RETAIN_S at each append (alerts.stream); alert-dispatch
# appends, every api replica reads (WebSocket)
ALERT_STREAM = "kades:{alerts}:stream"
# "appended once" mark per alert event; TTL 24 h (alerts.stream.publish)
ALERT_PUBLISHED = "kades:{{alerts}}:published:{id}"

# --- api --------------------------------------------------------------------------------------
# a served token analysis (JSON); TTL ANALYSIS_CACHE_S (api.routes_token)
API_ANALYSIS = "kades:api:analysis:{token}:{timeframe}"
# GCRA theoretical arrival time of a key in a scope; TTL set by the script (api.ratelimit)
RATE_LIMIT = "kades:ratelimit:{key_id}:{scope}"
# sorted set connection -> last seen of a key's WebSockets; TTL CONNECTION_STALE_S (api.websocket)
WS_CONNECTIONS = "kades:ws:connections:{key_id}"

# --- the development broker (kades.broker; on a cluster Knative's Broker holds this) -----------
# stream of the events routed to one lane (consumer group `delivery`); entries leave when done
BROKER_LANE = "kades:{{broker}}:{namespace}:{broker}:lane:{lane}"
# hash entry id -> JSON retry state of a lane's entries; fields leave when done
BROKER_STATE = "kades:{{broker}}:{namespace}:{broker}:state:{lane}"
# sorted set entry id -> when its next attempt is due (unordered lanes); members leave when taken
BROKER_DUE = "kades:{{broker}}:{namespace}:{broker}:due:{lane}"
# "fired" mark of a PingSource in one minute (minute: %Y-%m-%dT%H:%M UTC); TTL 1 h (broker.server)
BROKER_PING = "kades:broker:ping:{source}:{minute}"
# stream of dead letters: the dead-letter function and the broker write, `kades dlq` lists and
# replays (kades.deadletter); no TTL, replay deletes what was accepted. In the broker's slot:
# the broker parks a dead letter in the MULTI that acknowledges its lane entry
DLQ = "kades:{broker}:dlq"
# a dead letter being replayed (kades dlq replay), so that one replay at a time sends it;
# TTL: kades.deadletter.store.REPLAY_LEASE_S
DLQ_REPLAYING = "kades:{{broker}}:dlq:replaying:{id}"

# --- not Redis keys: names hashed into uuid5 event ids --------------------------------------
# Just as fixed: a changed name changes the ids, and a redelivered input would no longer give
# the same event id (dropped downstream as a duplicate).
ALERT_ID_NAME = "kades:alert:{token}#{episode}#{kind}#{level}"   # risk.alerting.alert_id
PARTS_GROUP_NAME = "kades:parts:{names}"   # events.chunking.group_id, names joined by ":"
