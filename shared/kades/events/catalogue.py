"""The KADES event contract: every event type and the JSON Schema (draft-07) of its `data`.

This is the only place event types are defined. Types are reverse-DNS and versioned; a
breaking change of a schema is a new `.vN` type. Where one token is concerned the mint
address is the CloudEvent `subject` and the `partitionkey` extension.
"""
from __future__ import annotations

import copy
import functools
import itertools
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import fastjsonschema
from jsonschema import Draft7Validator, FormatChecker

from kades.ecmapattern import with_ecma_patterns
from kades.errors import InvalidEventError, Problem
from kades.events.envelope import CloudEvent, deeper_than

CHAIN_BLOCK = "ai.kades.chain.block.v1"
MARKET_FEED = "ai.kades.market.feed.v1"
MARKET_TICK = "ai.kades.market.tick.v1"
SOCIAL_POSTS = "ai.kades.social.posts.v1"
ANOMALY_DETECTED = "ai.kades.anomaly.detected.v1"
SENTIMENT_SCORED = "ai.kades.sentiment.scored.v1"
RISK_SCORED = "ai.kades.risk.scored.v1"
# An alert of a token was issued: raised, escalated or cleared (its data's `kind`; not
# `alert.raised`, which one of the three kinds would then contradict).
ALERT = "ai.kades.alert.issued.v1"
# ALERT's name before it followed the noun.verb pattern of the others: the same data,
# accepted by alert-dispatch (its Triggers filter on both) through v1, never sent any more.
ALERT_V1_NAME = "ai.kades.alert.v1"
TOKEN_TRACKED = "ai.kades.token.tracked.v1"
# Every event KADES produces stays under this size in binary mode (data plus attribute
# headers: what a Kafka record holds). Producers split batches (kades.events.chunking) or
# refuse; Settings.max_event_bytes is only what the ingress and functions accept.
MAX_EVENT_BYTES = 256 * 1024
# The parts a chain block's slot may come in (kades.solana.parts: a mint's records of one
# slot, MAX_EVENT_BYTES a part; a whole block is a few MB). A count of 10**8 held a worker
# in the group's assembly (chunking.assemble) at every retry.
MAX_PARTS = 1000
# How deep objects and arrays may nest in data: far more than any type needs (a chain block's
# records are 3 levels down, free-form details a few more). Deeper data is refused, as what
# uses it (validators, encoders, the api's answers) recurses once per level and Python stops
# near 1,000: an anomaly whose details nested 900 deep was stored, and GET /v1/anomalies
# answered 500 from then on.
MAX_DATA_DEPTH = 32
# Knative's PingSource type (not ours to name): the periodic jobs of eventing/400-pingsources.yaml.
PING = "dev.knative.sources.ping"
# The `dataschema` of an event KADES creates: a URI naming its type's schema in SCHEMAS
# (a new `.vN` type, so a new URI, for every breaking change). Not set on PING (Knative's).
DATASCHEMA_PREFIX = "urn:kades:schema:"

# RFC 3339 date-time (upper-case T or a space, Z or an offset): the pattern says its shape,
# the format (is_event_time) that it is a real instant every part of KADES can compute with
# (no 23:59:60, month 13, +24:00, or year 10000 once in UTC), from EARLIEST_TIME to at most
# MAX_FUTURE_S after the checking process's clock. Data comes in time order within a bounded
# lateness (kades.runtime.reorder): one tick stamped hours ahead (local time labelled Z) made
# every true tick of its token after it "too late", unanalysed, for those hours.
_TIME = {"type": "string", "format": "date-time",
         "pattern": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"}
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=timezone.utc)  # what stays in range in any zone
MAX_FUTURE_S = 60.0  # clocks differ by less; twice the default reorder lateness
TIME_PROBLEM = (f"not an RFC 3339 time from {EARLIEST_TIME.year} to {MAX_FUTURE_S:g} s past "
                "this process's clock (e.g. 2026-01-01T00:00:00Z)")
# A token becomes a CloudEvent's subject and partitionkey, Strings that hold no control
# character (core type system; the functions refuse one: a token "A\nB" was taken, and its
# replies refused by the next function). A mint in a chain block is one (_MINT).
NO_CONTROL = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
TOKEN_MAX_CHARS = 64
_TOKEN = {"type": "string", "minLength": 1, "maxLength": TOKEN_MAX_CHARS, "pattern": NO_CONTROL}
_SCORE = {"type": "number", "minimum": 0, "maximum": 1}
# Bounds no real amount reaches, so that sums, products and float() of them stay finite: a
# JSON number can be any size (10**400 is an int to Python, 1e400 an infinite float).
MAX_AMOUNT = 1e30
MAX_SOL_USD = 1e9
# Solana's slots are 400 ms by design and have averaged longer: no cluster is further on than
# a slot per MIN_SLOT_S since mainnet's genesis day.
SOLANA_GENESIS = datetime(2020, 3, 16, tzinfo=timezone.utc)
MIN_SLOT_S = 0.35
MIN_SOL_USD = 0.01  # SOL never traded under $0.2; a pool anyone can make priced it at 1e-30
_NONNEG = {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT}
_MAX_BATCH = 10_000

_TICK = {
    "type": "object",
    "required": ["token", "time", "price"],
    "properties": {
        "token": _TOKEN, "time": _TIME,
        "price": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_AMOUNT},
        "volume": _NONNEG, "liquidity": _NONNEG,
        "source": {"type": "string", "maxLength": 128},
        # a chain tick's slot: blocks share a second, and a second's ticks go in slot order
        "slot": {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
        # what the price is counted in (chain ticks: SOL's mint; a feed's: its own, e.g.
        # "USD"); temporal-analysis keeps one series per token and quote
        "quote": {"type": "string", "maxLength": 64, "pattern": NO_CONTROL},
    },
}
# A market tick of a chain block names the token's pools as market-aggregator knows them,
# each [slot, liquidity in SOL] of its newest state: temporal-analysis sums them in slot order
# (kades.temporal.pools), since what market-aggregator knew depended on which blocks came first
MAX_TICK_POOLS = 64  # a token's pools kept and named; a new one past them is not counted
_POOL_STATE = {"type": "array", "minItems": 2, "additionalItems": False,
               "items": [{"type": "integer", "minimum": 0, "maximum": 2**64 - 1}, _NONNEG]}
_MARKET_TICK = {**_TICK, "properties": {
    **_TICK["properties"],
    "pools": {"type": "object", "maxProperties": MAX_TICK_POOLS,
              "propertyNames": {"minLength": 1, "maxLength": 88},
              "additionalProperties": _POOL_STATE}}}
_COUNT = {"type": "integer", "minimum": 0, "maximum": 2**53}  # exact as a float
_POST = {
    "type": "object", "required": ["id", "platform", "author", "text", "time"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 256},
        "platform": {"type": "string", "minLength": 1, "maxLength": 32},
        # Where on the platform, for a platform whose ids are per place: a Telegram chat, by its
        # numeric id (message ids are small numbers per chat). Part of the post's identity.
        "channel": {"type": "string", "minLength": 1, "maxLength": 256},
        "author": {"type": "string", "minLength": 1, "maxLength": 256},
        "text": {"type": "string", "maxLength": 40_000},
        "time": _TIME,
        "author_meta": {"type": "object", "properties": {
            "followers": _COUNT, "account_age_days": _NONNEG, "verified": {"type": "boolean"}}},
        "engagement": {"type": "object", "properties": {
            "likes": _COUNT, "reposts": _COUNT, "replies": _COUNT, "views": _COUNT}},
        # Tokens the source already knows the post concerns (e.g. found by searching for it).
        "tokens": {"type": "array", "maxItems": 32, "items": _TOKEN},
    },
}
# Every kind of anomaly a KADES detector raises, and the risk component it feeds.
ANOMALY_KINDS: dict[str, str] = {
    # temporal-analysis
    "price_spike": "temporal", "flash_crash": "temporal", "volume_spike": "temporal",
    "pump": "temporal", "dump": "temporal", "liquidity_drop": "temporal",
    "volatility_regime": "temporal", "momentum_shift": "temporal",
    # chain-analysis and whale-detection
    "liquidity_removal": "chain", "rug_price_dump": "chain", "wash_trading": "chain",
    "cyclic_transfer": "chain", "risky_launch": "chain", "sniper_bundle": "chain",
    "whale_movement": "chain", "accumulation": "chain", "distribution": "chain",
    "wallet_splitting": "chain", "liquidity_unlocked": "chain",
    # sentiment-analysis
    "mention_burst": "sentiment", "sentiment_shift": "sentiment",
    "coordinated_promotion": "sentiment",
    # risk-scoring itself, from an extreme ai.kades.sentiment.scored.v1 score
    "sentiment_extreme": "sentiment",
}

_ANOMALY = {
    "type": "object",
    "required": ["token", "time", "anomaly_type", "score", "detector"],
    "properties": {
        "token": _TOKEN, "time": _TIME,
        "anomaly_type": {"enum": sorted(ANOMALY_KINDS)},
        "score": _SCORE,
        "detector": {"type": "string", "minLength": 1, "maxLength": 128},
        "details": {"type": "object"},
        # Optional, filled by the chain detectors: how bad (0-1), how sure (0-1), over which
        # span, and what a person can check on a block explorer.
        "severity": _SCORE, "confidence": _SCORE,
        "window": {"type": "object", "properties": {"start": _TIME, "end": _TIME,
                                                    "first_slot": {"type": "integer"},
                                                    "last_slot": {"type": "integer"}}},
        "evidence": {"type": "object"},
        "detector_version": {"type": "string", "maxLength": 32},
    },
}

# Chain records (kades.solana.normalise): raw integer amounts in base units beside decimals.
_ADDRESS = {"type": "string", "minLength": 1, "maxLength": 88}
_MINT = _TOKEN  # what the replies about it carry as their token (64 at most, no control)
_NAME = {"type": "string", "maxLength": 64}  # a program's or router's name (a tick's source)
_POOL = {"type": "string", "maxLength": 88}  # a swap's pool: an address, or "" when none is known
# A liquidity change's or a pool state's: what chain-analysis keys a pool's document by, so an
# address (every "" pool of every token was one document: a false 100 % liquidity removal)
_POOL_KNOWN = {"type": "string", "minLength": 1, "maxLength": 88}
_U64 = 2**64 - 1  # Solana's token amounts and slots are u64
_RAW = {"type": "integer", "minimum": 0, "maximum": _U64}
_DELTA = {"type": "integer", "minimum": -_U64, "maximum": _U64}
_DECIMALS = {"type": "integer", "minimum": 0, "maximum": 255}
_LAUNCH_KIND = {"enum": ["create", "initialize_mint", "set_authority"]}


# A record's transaction's place in its block: what orders a block's records (a `null` or a
# text sorted against a number raised a 500 in chain-analysis for the whole block)
_TX_INDEX = {"type": "integer", "minimum": 0, "maximum": _U64}


def _record(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {"type": "object", "required": ["signature", *required],
            "properties": {"signature": _ADDRESS, "tx_index": _TX_INDEX, **required, **optional}}


_CHAIN_BLOCK = {
    "type": "object",
    "required": ["slot", "transfers", "swaps", "liquidity", "launches"],
    "properties": {
        "slot": {"type": "integer", "minimum": 0, "maximum": _U64},
        "block_time": {**_TIME, "type": ["string", "null"]},
        "transfers": {"type": "array", "items": _record(
            {"mint": _MINT, "source": _ADDRESS, "destination": _ADDRESS, "amount": _RAW,
             "decimals": _DECIMALS})},
        "swaps": {"type": "array", "items": _record(
            {"trader": _ADDRESS, "pool": _POOL, "program": _NAME,
             "mint_in": _MINT, "mint_out": _MINT, "amount_in": _RAW, "amount_out": _RAW,
             "decimals_in": _DECIMALS, "decimals_out": _DECIMALS, "base_mint": _MINT,
             "quote_mint": _MINT, "side": {"enum": ["buy", "sell"]}, "base_amount": _RAW,
             "quote_amount": _RAW},
            price={"type": ["number", "null"], "minimum": 0, "maximum": MAX_AMOUNT},
            route={"type": "array", "items": _POOL}, aggregator=_NAME,
            # who signed when it was not the trader (a relayer, a router); what left the pools
            # when less reached the trader (a Token-2022 transfer fee, pool-side fees)
            signer=_ADDRESS, pool_amount_out=_RAW)},
        "liquidity": {"type": "array", "items": _record(
            {"pool": _POOL_KNOWN, "action": {"enum": ["create", "add", "remove"]},
             "provider": _ADDRESS, "base_mint": _MINT, "quote_mint": _MINT,
             "base_delta": _DELTA, "quote_delta": _DELTA,
             "base_reserve_before": _RAW, "quote_reserve_before": _RAW,
             "base_reserve_after": _RAW, "quote_reserve_after": _RAW},
            lp_mint={**_ADDRESS, "type": ["string", "null"], "minLength": 0}, lp_amount={**_DELTA, "type": ["integer", "null"]},
            program=_NAME,  # (what tells a concentrated-liquidity pool, its vaults no price)
            # a pool that took over a bonding curve (pump.fun's `migrate`, a launchpad's
            # migration), or on the curve's own removal, the pool it handed its reserves `to`
            migration={"type": "object", "required": ["program", "bonding_curve"],
                       "properties": {"program": _NAME, "bonding_curve": _ADDRESS, "to": _ADDRESS}})},
        "pool_states": {"type": "array", "items": _record(
            {"pool": _POOL_KNOWN, "base_mint": _MINT, "quote_mint": _MINT,
             "base_reserve": _RAW, "quote_reserve": _RAW, "base_decimals": _DECIMALS,
             "quote_decimals": _DECIMALS},
            virtual={"type": "boolean"}, program=_NAME,
            price={"type": ["number", "null"], "minimum": 0, "maximum": MAX_AMOUNT},
            complete={"type": "boolean"})},  # a pump.fun curve that is full (CompleteEvent)
        "launches": {"type": "array", "items": _record(
            {"mint": _MINT, "kind": _LAUNCH_KIND},
            creator=_ADDRESS, mint_authority={"type": ["string", "null"]},
            freeze_authority={"type": ["string", "null"]}, new_authority={"type": ["string", "null"]},
            field={"enum": ["mint_authority", "freeze_authority"]})},  # what set_authority set
        "stats": {"type": "object"},
        # Set when solana-source split a slot per mint (kades.solana.parts): part `index` of
        # `count` for `key` (a mint); `group` names the slot-and-mint the parts make up.
        "part": {"type": "object", "required": ["key", "index", "count", "group"],
                 "properties": {"key": _MINT,
                                "index": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS},
                                "count": {"type": "integer", "minimum": 1, "maximum": MAX_PARTS},
                                "group": {"type": "string", "minLength": 1}}},
        # What a source following the chain knows of the slots before this one
        # (kades.solana.parts.SlotLinks): the last slot it sent events of, none between having
        # any (null: not known); per mint of the event, the last slot with its records (or one
        # from which on there were none). Both before `slot` (_link_problems).
        "previous_slot": {"type": ["integer", "null"], "minimum": 0, "maximum": _U64},
        "previous_mint_slots": {"type": "object", "propertyNames": _MINT,
                                "additionalProperties": {"type": "integer", "minimum": 0,
                                                         "maximum": _U64}},
        # What the detectors need from the other mints of the slot, the same in every part.
        "context": {"type": "object", "required": ["fundings", "launches"], "properties": {
            "sol_usd": {"type": ["number", "null"], "minimum": MIN_SOL_USD, "maximum": MAX_SOL_USD},
            "fundings": {"type": "array", "items": {"type": "array", "items": _ADDRESS,
                                                    "minItems": 2, "maxItems": 2}},
            "fundings_dropped": {"type": "integer", "minimum": 0},
            "launches_dropped": {"type": "integer", "minimum": 0},
            "launches": {"type": "array", "items": {
                "type": "object", "required": ["mint", "kind"],
                "properties": {"mint": _MINT, "kind": _LAUNCH_KIND,
                               "creator": {"type": ["string", "null"]}}}}}},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    PING: {
        "type": "object", "required": ["job"],
        "properties": {"job": {"enum": ["risk-decay", "flush"]}},
    },
    CHAIN_BLOCK: _CHAIN_BLOCK,
    MARKET_FEED: {
        "type": "object", "required": ["ticks"],
        "properties": {"ticks": {"type": "array", "minItems": 1, "maxItems": _MAX_BATCH,
                                 "items": _TICK}},
    },
    MARKET_TICK: {
        "type": "object", "required": ["ticks"],
        "properties": {"ticks": {"type": "array", "minItems": 1, "maxItems": _MAX_BATCH,
                                 "items": _MARKET_TICK}},
    },
    SOCIAL_POSTS: {
        "type": "object", "required": ["posts"],
        "properties": {
            "posts": {"type": "array", "maxItems": _MAX_BATCH, "items": _POST},
            # Tokens the scraper follows: their symbols and names are recognised in the text.
            "tracked": {"type": "array", "maxItems": _MAX_BATCH, "items": {
                "type": "object", "required": ["token"],
                "properties": {"token": _TOKEN, "symbol": {"type": "string", "maxLength": 32},
                               "name": {"type": "string", "maxLength": 128}}}},
        },
    },
    ANOMALY_DETECTED: {
        "type": "object", "required": ["anomalies"],
        "properties": {"anomalies": {"type": "array", "minItems": 1, "maxItems": _MAX_BATCH,
                                     "items": _ANOMALY}},
    },
    SENTIMENT_SCORED: {  # a per-token aggregate (kades.sentiment.aggregates.summarise)
        "type": "object", "required": ["token", "time", "window", "score"],
        "properties": {
            "token": _TOKEN, "time": _TIME, "window": {"enum": ["1h", "24h", "7d"]},
            "score": {"type": "number", "minimum": -1, "maximum": 1},
            "label": {"enum": ["positive", "neutral", "negative"]},
            "mentions": _COUNT, "unique_authors": _COUNT,
            "breakdown": {"type": "object", "properties": {
                "positive": _COUNT, "neutral": _COUNT, "negative": _COUNT}},
            "engagement": {"type": "object"}, "velocity": {"type": "object"},
        },
    },
    RISK_SCORED: {
        "type": "object", "required": ["token", "time", "score", "level", "components"],
        "properties": {
            "token": _TOKEN, "time": _TIME, "score": _SCORE,
            "level": {"enum": ["low", "medium", "high", "critical"]},
            "components": {"type": "object", "additionalProperties": _SCORE},
            "explanation": {"type": "array", "items": {"type": "object"}},
        },
    },
    ALERT: {
        "type": "object", "required": ["token", "time", "level", "score", "message", "kind"],
        "properties": {"token": _TOKEN, "time": _TIME, "score": _SCORE,
                       "level": {"enum": ["low", "medium", "high", "critical"]},
                       "message": {"type": "string", "maxLength": 1000},
                       # raised: crossed the threshold; escalated: level rose while raised;
                       # cleared: fell below threshold - hysteresis
                       "kind": {"enum": ["raised", "escalated", "cleared"]},
                       # of a cleared alert: the level it stood at (webhooks wanting that
                       # level got its raise and get its clearing, whatever `level` is now)
                       "cleared_level": {"enum": ["low", "medium", "high", "critical"]},
                       "threshold": _SCORE,
                       "components": {"type": "object", "additionalProperties": _SCORE},
                       "explanation": {"type": "array", "items": {"type": "object"}},
                       "channels": {"type": "array", "items": {"type": "string"}}},
    },
    TOKEN_TRACKED: {
        "type": "object", "required": ["token_address"],
        "properties": {
            "token_address": _TOKEN,
            "tracking_parameters": {"type": "object", "properties": {
                "alert_threshold": _SCORE,
                "update_interval": {"type": "integer", "minimum": 1}}},
            "tracked_by": {"type": "string", "description": "id of the API key that asked"},
        },
    },
}
SCHEMAS[ALERT_V1_NAME] = SCHEMAS[ALERT]

# A valid `data` of every type, about one token at one time: what the tests, the fuzzing and
# readers start from. Take a copy with example() before changing one.
EXAMPLE_MINT = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
EXAMPLE_TIME = "2026-11-26T08:00:00Z"
_EXAMPLE_TICK = {"token": EXAMPLE_MINT, "time": EXAMPLE_TIME, "price": 0.000021, "volume": 1200.0,
                 "liquidity": 5.0e5}
EXAMPLES: dict[str, Any] = {
    PING: {"job": "risk-decay"},
    CHAIN_BLOCK: {"slot": 250_000_000, "block_time": EXAMPLE_TIME, "swaps": [], "liquidity": [],
                  "pool_states": [], "launches": [],
                  "transfers": [{"signature": "5UfD", "mint": EXAMPLE_MINT, "source": "A",
                                 "destination": "B", "amount": 3_000_000_000, "decimals": 6}]},
    MARKET_FEED: {"ticks": [_EXAMPLE_TICK]},
    MARKET_TICK: {"ticks": [_EXAMPLE_TICK, {**_EXAMPLE_TICK, "time": "2026-11-26T08:00:05Z"}]},
    SOCIAL_POSTS: {"posts": [{"id": "1", "platform": "x", "author": "a",
                              "text": "$BONK to the moon 🚀", "time": EXAMPLE_TIME,
                              "author_meta": {"followers": 12, "account_age_days": 3},
                              "engagement": {"likes": 4, "reposts": 1}, "tokens": [EXAMPLE_MINT]}],
                   "tracked": [{"token": EXAMPLE_MINT, "symbol": "BONK", "name": "Bonk"}]},
    ANOMALY_DETECTED: {"anomalies": [{"token": EXAMPLE_MINT, "time": EXAMPLE_TIME,
                                      "anomaly_type": "flash_crash", "score": 0.93,
                                      "detector": "return_spike", "details": {"return": -0.31}}]},
    SENTIMENT_SCORED: {"token": EXAMPLE_MINT, "time": EXAMPLE_TIME, "window": "1h", "score": -0.4,
                       "label": "negative", "mentions": 12, "unique_authors": 9,
                       "breakdown": {"positive": 2, "neutral": 3, "negative": 7}},
    RISK_SCORED: {"token": EXAMPLE_MINT, "time": EXAMPLE_TIME, "score": 0.72, "level": "high",
                  "components": {"chain": 0.1, "sentiment": 0.2, "temporal": 0.95}},
    ALERT: {"token": EXAMPLE_MINT, "time": EXAMPLE_TIME, "level": "high", "score": 0.72,
            "message": "risk rose to high", "kind": "raised", "threshold": 0.7,
            "channels": ["anomalies", "patterns", "wash_trading"]},
    TOKEN_TRACKED: {"token_address": EXAMPLE_MINT,
                    "tracking_parameters": {"alert_threshold": 0.7, "update_interval": 60}},
}
EXAMPLES[ALERT_V1_NAME] = EXAMPLES[ALERT]  # the old name, through v1


def example(event_type: str) -> Any:
    """A fresh copy of the valid example `data` of a catalogue type.

    >>> data = example(MARKET_TICK)
    >>> data_problems(new_event(MARKET_TICK, "/doc", data)), len(data["ticks"])
    ([], 2)
    """
    return copy.deepcopy(EXAMPLES[event_type])


def dataschema(event_type: str) -> str | None:
    """The `dataschema` URI of a catalogue type KADES creates (None for Knative's PING).

    >>> dataschema(MARKET_TICK)
    'urn:kades:schema:ai.kades.market.tick.v1'
    """
    if event_type not in SCHEMAS:
        raise ValueError(f"unknown event type {event_type!r}")
    return None if event_type == PING else DATASCHEMA_PREFIX + event_type


def is_event_time(value: object) -> bool:
    """`format: date-time` of the event contract: a time Python reads as given (upper-case T
    or a space, Z or an offset) that stays in range in UTC and is not in the future (beyond
    MAX_FUTURE_S). Formats apply to strings only."""
    if not isinstance(value, str) or value in _ACCEPTED_TIMES:
        return True
    try:
        moment = datetime.fromisoformat(value).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return False
    accepted = (EARLIEST_TIME <= moment < LATEST_TIME
                and moment.timestamp() <= time.time() + MAX_FUTURE_S)
    if accepted:
        if len(_ACCEPTED_TIMES) >= MAX_ACCEPTED_TIMES:
            _ACCEPTED_TIMES.clear()
        _ACCEPTED_TIMES.add(value)
    return accepted


# Times is_event_time accepted: an accepted time stays so (the clock only moves on), and a
# batch's items share their times (500 ticks of 10 tokens: 50), each read once (0.6 us a
# parse). A time refused for being ahead is asked again: it may be accepted later.
_ACCEPTED_TIMES: set[str] = set()
MAX_ACCEPTED_TIMES = 4096


# The time's `pattern` as fastjsonschema compiles it (an unescaped `$` read as \Z): 0.67 us a
# tick there, a regex search for every time, where the times of a batch are few
_TIME_SHAPE = re.compile(re.sub(r"(?<!\\)\$", r"\\Z", _TIME["pattern"])).search
_SHAPED_TIMES: set[str] = set()  # times is_shaped_event_time accepted (as _ACCEPTED_TIMES)


def is_shaped_event_time(value: object) -> bool:
    """A time's `pattern` and its `format` (is_event_time) in one, remembering the times it
    accepted: the fast check's `date-time`, where the pattern is left out (_fast_check).
    Formats and patterns apply to strings only."""
    if not isinstance(value, str) or value in _SHAPED_TIMES:
        return True
    if _TIME_SHAPE(value) is None or not is_event_time(value):
        return False
    if len(_SHAPED_TIMES) >= MAX_ACCEPTED_TIMES:
        _SHAPED_TIMES.clear()
    _SHAPED_TIMES.add(value)
    return True


_FORMATS = {"date-time": is_shaped_event_time}  # the fast check's: every time has _TIME's pattern
_CHECKER = FormatChecker(formats=())
_CHECKER.checks("date-time")(is_event_time)


@functools.cache
def _fast_check(event_type: str, controls: bool = True):
    """The schema compiled to Python (fastjsonschema): ~15x faster on a 500-tick batch, but
    it stops at the first error, so invalid data is looked at again by jsonschema. Without
    `controls` (data known to hold no control character) NO_CONTROL is not checked: it cost
    ~0.45 us a token, 2 ms a 2,000-record block. A time's pattern is checked by its format
    (is_shaped_event_time), once for each time a batch's items share: 0.33 ms of a 500-tick
    batch's 1.07 went to the pattern."""
    schema = _without(SCHEMAS[event_type], _TIME["pattern"])
    return fastjsonschema.compile(schema if controls else _without(schema, NO_CONTROL),
                                  formats=_FORMATS)


def _without(node: Any, pattern: str) -> Any:
    """A copy of the schema `node` with no `pattern: <pattern>`."""
    if isinstance(node, dict):
        return {key: _without(value, pattern) for key, value in node.items()
                if not (key == "pattern" and value == pattern)}
    if isinstance(node, list):
        return [_without(value, pattern) for value in node]
    return node


# Where a control character can be in JSON text: U+0000-U+001F only escaped (a backslash),
# U+007F and U+0080-U+009F also as themselves (0x7F, and 0xC2 0x80-0x9F in UTF-8)
_C1_CONTROL = re.compile(rb"\xc2[\x80-\x9f]")


def may_hold_control(body: bytes) -> bool:
    """Whether JSON text `body` may hold a control character: a backslash (an escape), the
    byte 0x7F, or a C1 control (0xC2 then 0x80-0x9F). One alternation of the three scanned
    by `re` tried every branch at every byte: 7 ms of a 2,000-record chain block's 722 kB,
    paid by every function on every event. Each byte looked for by bytes' own search, and a
    pattern that starts with its byte: 0.22 ms."""
    return b"\\" in body or b"\x7f" in body or _C1_CONTROL.search(body) is not None


# Problems named at most per event. A 16 MiB body of 5.6 million empty ticks (`{}`) gave 17
# million, each a jsonschema error: 13 GB of memory in the function for one request. A batch
# over its maxItems is named first (its keywords are checked in the schema's order).
MAX_PROBLEMS = 100


@functools.cache
def _full_check(event_type: str) -> Draft7Validator:
    return _Validator(SCHEMAS[event_type], format_checker=_CHECKER)


_Validator = with_ecma_patterns(Draft7Validator)  # `$` as fastjsonschema reads it


def data_problems(event: CloudEvent, *, body: bytes | None = None) -> list[Problem]:
    """Every way the event's data breaks its type's schema ([] when valid or type unknown).
    `body`: the JSON text the data was read from, when known (a faster check where it holds
    no control character)."""
    if event.type not in SCHEMAS:
        return []
    if not event.has_data:
        return [Problem("data", f"{event.type} requires data")]
    if isinstance(event.data, (bytes, bytearray)):
        return [Problem("datacontenttype", f"{event.type} carries JSON data")]
    if deeper_than(event.data, MAX_DATA_DEPTH):
        return [Problem("data", f"nested deeper than {MAX_DATA_DEPTH} levels")]
    try:
        _fast_check(event.type, body is None or may_hold_control(body))(event.data)
        return _chain_block_problems(event) if event.type == CHAIN_BLOCK else []
    except fastjsonschema.JsonSchemaValueException:
        pass  # invalid: collect every problem below
    errors = _full_check(event.type).iter_errors(event.data)
    problems = [Problem("data" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}"
                                         for p in error.absolute_path),
                        TIME_PROBLEM if error.validator == "format" else error.message)
                for error in itertools.islice(errors, MAX_PROBLEMS)]
    if next(errors, None) is not None:
        problems.append(Problem("data", f"more problems than the first {MAX_PROBLEMS} listed"))
    if event.type == CHAIN_BLOCK and not any(p.field in ("data.slot", "data.block_time", "data")
                                             for p in problems):
        problems += _slot_problems(event)
    if event.type == CHAIN_BLOCK and not any(p.field.startswith("data.part") for p in problems):
        problems += _part_problems(event)
    if event.type == CHAIN_BLOCK and not any(p.field.startswith(("data.slot", "data.previous"))
                                             or p.field == "data" for p in problems):
        problems += _link_problems(event)
    return problems


def _chain_block_problems(event: CloudEvent) -> list[Problem]:
    """What a chain block's schema cannot say: its slot against its time, its part's index
    against its count, its links against its slot."""
    return _slot_problems(event) + _part_problems(event) + _link_problems(event)


def _link_problems(event: CloudEvent) -> list[Problem]:
    """A previous slot at or after the block's own: a mint's slot would wait on itself, or
    release a later one before it."""
    block = event.data
    links = [("data.previous_slot", block.get("previous_slot"))] + [
        (f"data.previous_mint_slots.{mint}", value)
        for mint, value in (block.get("previous_mint_slots") or {}).items()]
    return [Problem(field, f"{value}: not before the block's slot {block['slot']}")
            for field, value in links if value is not None and value >= block["slot"]]


def _part_problems(event: CloudEvent) -> list[Problem]:
    """A part past its group's count: "9 of 4" completed a group without its part 2, and the
    slot was analysed with 42 of its 60 swaps. An index or count written 2.0, which JSON
    Schema takes for an integer: the parts are counted with it (a 500 at every retry)."""
    part = event.data.get("part") if isinstance(event.data, dict) else None
    if not isinstance(part, dict):
        return []
    floats = [Problem(f"data.part.{name}", f"{part[name]!r}: a whole number, written without "
                                           "a fraction") for name in ("index", "count")
              if type(part.get(name)) is float]
    if floats:
        return floats
    if isinstance(part.get("index"), int) and isinstance(part.get("count"), int) \
            and part["index"] > part["count"]:
        return [Problem("data.part.index", f"part {part['index']} of {part['count']}: past "
                                           "the count")]
    return []


def _slot_problems(event: CloudEvent) -> list[Problem]:
    """A slot past what its block's time allows (MIN_SLOT_S per slot since SOLANA_GENESIS;
    without `block_time`, the event's `time`, which the chain functions then use): they
    analyse a mint's slots in order, and one block of slot 2**64 - 1 made every true slot of
    its mint "late", unanalysed, for as long as the mint traded."""
    block = event.data
    moment = block.get("block_time") or event.get("time")
    try:
        since = datetime.fromisoformat(moment) - SOLANA_GENESIS
    except (TypeError, ValueError):  # no usable time: the functions refuse the block for it
        return []
    latest = max(0.0, since.total_seconds()) / MIN_SLOT_S
    if block["slot"] <= latest:
        return []
    return [Problem("data.slot", f"later than its block's time allows (at most {latest:.0f}: "
                                 f"a slot per {MIN_SLOT_S:g} s since {SOLANA_GENESIS:%Y-%m-%d})")]


def validate_data(event: CloudEvent) -> None:
    problems = data_problems(event)
    if problems:
        raise InvalidEventError(f"data does not match the schema of {event.type}", problems)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def new_event(event_type: str, source: str, data: Any, *, subject: str | None = None,
              event_id: str | None = None, time: str | None = None) -> CloudEvent:
    """A valid event of a catalogue type; `subject` also becomes the `partitionkey`.

    Pass a deterministic `event_id` (see `derived_id`) when the event answers another one,
    so that a redelivered input produces the very same output and is dropped downstream.
    """
    attributes = {"specversion": "1.0", "id": event_id or str(uuid.uuid4()), "source": source,
                  "type": event_type, "time": time or now_rfc3339(),
                  "datacontenttype": "application/json"}
    if schema := dataschema(event_type):
        attributes["dataschema"] = schema
    if subject:
        attributes["subject"] = subject
        attributes["partitionkey"] = subject
    return CloudEvent(attributes, data)


def derived_id(cause: CloudEvent, purpose: str) -> str:
    """A stable id for an event caused by `cause`: the same input always yields the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, joined(cause.source, cause.id, purpose)))


def joined(*parts: str) -> str:
    """The parts joined by '#', each part's '%' and '#' escaped (%25, %23): one text for each
    tuple of parts ("a#b" + "c" and "a" + "b#c" were one alert, and one reply id), and the
    text of parts holding neither is the plain join it always was.

    >>> joined("/src", "id-1"), joined("a#b", "c") != joined("a", "b#c")
    ('/src#id-1', True)
    """
    return "#".join(part.replace("%", "%25").replace("#", "%23") for part in parts)
