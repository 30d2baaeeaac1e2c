"""The Redis keyspace (kades.keys): every key renders as deployed state knows it, and no
module spells a `kades:` key of its own."""
from __future__ import annotations

import ast
from pathlib import Path

from redis.crc import key_slot

from kades import keys
from kades.events.chunking import group_id
from kades.risk.alerting import alert_id

PACKAGE = Path(keys.__file__).resolve().parent

# Each pattern with sample fields, and the key it renders: deployed Redis holds these strings.
# They are the literals the modules used before kades.keys, except the keys of multi-key
# operations, renamed once (issue 18) to carry their keyspace's hash tag for Redis Cluster
# (kades:temporal:state:X -> kades:{temporal}:state:X, kades:tracked:thresholds ->
# kades:{risk}:tracked:thresholds, kades:dlq -> kades:{broker}:dlq, the outbox likewise).
RENDERED = {
    "PARTS": ({"consumer": "chain-analysis", "source": "/solana", "group": "g1"},
              "kades:parts:chain-analysis:/solana:g1"),
    "SOLANA_LAST_SLOT": ({}, "kades:solana-source:last-slot"),
    "SOL_USD": ({}, "kades:market:sol-usd"),
    "MARKET_POOLS": ({"token": "Mint1"}, "kades:{market}:pools:Mint1"),
    "TEMPORAL_STATE": ({"token": "Mint1"}, "kades:{temporal}:state:Mint1"),
    "TEMPORAL_WAITING": ({}, "kades:{temporal}:waiting"),
    "CHAIN_TOKEN": ({"token": "Mint1"}, "kades:{chain}:token:Mint1"),
    "CHAIN_POOL": ({"pool": "Pool1"}, "kades:{chain}:pool:Pool1"),
    "CHAIN_LAUNCHES": ({"creator": "Dev1"}, "kades:{chain}:launches:Dev1"),
    "CHAIN_FUNDING_LOG": ({}, "kades:{chain-fundings}:log"),
    "CHAIN_FUNDING_SLOTS": ({}, "kades:{chain-fundings}:slots"),
    "CHAIN_WATERMARK": ({}, "kades:{chain-fundings}:watermark"),
    "CHAIN_WATERMARK_AHEAD": ({}, "kades:{chain-fundings}:ahead"),
    "CHAIN_WATERMARK_BLOCKED": ({}, "kades:{chain-fundings}:blocked"),
    "CHAIN_FUNDINGS_DOCUMENT": ({}, "kades:{chain}:fundings"),
    "CHAIN_WAITING": ({}, "kades:{chain}:waiting"),
    "WHALES_TOKEN": ({"token": "Mint1"}, "kades:{whales}:token:Mint1"),
    "WHALES_FUNDING_LOG": ({}, "kades:{whales-fundings}:log"),
    "WHALES_FUNDING_SLOTS": ({}, "kades:{whales-fundings}:slots"),
    "WHALES_WATERMARK": ({}, "kades:{whales-fundings}:watermark"),
    "WHALES_WATERMARK_AHEAD": ({}, "kades:{whales-fundings}:ahead"),
    "WHALES_WATERMARK_BLOCKED": ({}, "kades:{whales-fundings}:blocked"),
    "WHALES_FUNDINGS_DOCUMENT": ({}, "kades:{whales}:fundings"),
    "WHALES_WAITING": ({}, "kades:{whales}:waiting"),
    "SENTIMENT_STATE": ({"token": "$BONK"}, "kades:{sentiment}:state:$BONK"),
    "SENTIMENT_AUTHORS_5M": ({"token": "$BONK", "bucket": 5},
                             "kades:{sentiment}:authors:$BONK:5m:5"),
    "SENTIMENT_AUTHORS_1H": ({"token": "$BONK", "bucket": 7},
                             "kades:{sentiment}:authors:$BONK:1h:7"),
    "SENTIMENT_DIRECTORY": ({}, "kades:{sentiment}:directory"),
    "SENTIMENT_WAITING": ({}, "kades:{sentiment}:waiting"),
    "RISK_STATE": ({"token": "Mint1"}, "kades:{risk}:state:Mint1"),
    "RISK_WAITING": ({}, "kades:{risk}:waiting"),
    "TRACKED_THRESHOLDS": ({}, "kades:{risk}:tracked:thresholds"),
    "RISK_LIVE": ({}, "kades:{risk}:live"),
    "RISK_LIVE_SWEPT": ({}, "kades:{risk}:live:swept"),
    "ALERT_STREAM": ({}, "kades:{alerts}:stream"),
    "ALERT_PUBLISHED": ({"id": "/src#e1"}, "kades:{alerts}:published:/src#e1"),
    "API_ANALYSIS": ({"token": "Mint1", "timeframe": "1h"}, "kades:api:analysis:Mint1:1h"),
    "RATE_LIMIT": ({"key_id": "abcd1234", "scope": "http"}, "kades:ratelimit:abcd1234:http"),
    "WS_CONNECTIONS": ({"key_id": "abcd1234"}, "kades:ws:connections:abcd1234"),
    "BROKER_LANE": ({"namespace": "kades", "broker": "kades", "lane": "t/0"},
                    "kades:{broker}:kades:kades:lane:t/0"),
    "BROKER_STATE": ({"namespace": "ns", "broker": "b", "lane": "whale-detection/2"},
                     "kades:{broker}:ns:b:state:whale-detection/2"),
    "BROKER_DUE": ({"namespace": "ns", "broker": "b", "lane": "t/1"},
                   "kades:{broker}:ns:b:due:t/1"),
    "BROKER_PING": ({"source": "/apis/v1/namespaces/kades/pingsources/flush",
                     "minute": "2026-11-30T16:40"},
                    "kades:broker:ping:/apis/v1/namespaces/kades/pingsources/flush:2026-11-30T16:40"),
    "DLQ": ({}, "kades:{broker}:dlq"),
    "DLQ_REPLAYING": ({"id": "1-0"}, "kades:{broker}:dlq:replaying:1-0"),
    "ALERT_ID_NAME": ({"token": "Mint1", "episode": "2024-05-01T12:00:00Z", "kind": "raised",
                       "level": "high"}, "kades:alert:Mint1#2024-05-01T12:00:00Z#raised#high"),
    "PARTS_GROUP_NAME": ({"names": "/solana:42:Mint1"}, "kades:parts:/solana:42:Mint1"),
}


def test_every_pattern_renders_the_key_deployed_state_uses():
    patterns = {name for name, value in vars(keys).items()
                if name.isupper() and isinstance(value, str)}
    assert patterns == set(RENDERED), "pin a new pattern here (and never edit an old one)"
    for name, (fields, expected) in RENDERED.items():
        pattern = getattr(keys, name)
        # a fixed key is used as it is written (its tag's braces are no format fields)
        assert (pattern.format(**fields) if fields else pattern) == expected, name


def test_digest_keys_render_as_before():
    # sha256 of "<source>\n<id>", first 40 hex digits, as kades.runtime.dedup and .state made them
    digest = "563bd3ce5b9c7e07c1fcc6e0e976a9acca34fccb"
    assert keys.dedup_key("risk-scoring", "/src\ne1") == f"kades:dedup:risk-scoring:{digest}"
    assert keys.outbox_key("f", "/src", "e1") == f"kades:{{f}}:outbox:f:{digest}"
    assert keys.outbox_key("risk-scoring", "/src", "e1") == \
        f"kades:{{risk}}:outbox:risk-scoring:{digest}"


# The keys each multi-key operation touches together (a script, MULTI/EXEC or WATCH), by the
# module that runs it: on Redis Cluster they must share one hash slot.
TOGETHER = {
    "runtime.state (temporal-analysis)": [
        keys.TEMPORAL_STATE.format(token="A"), keys.TEMPORAL_STATE.format(token="B"),
        keys.TEMPORAL_WAITING, keys.outbox_key("temporal-analysis", "/s", "1")],
    "runtime.state (chain-analysis)": [
        keys.CHAIN_TOKEN.format(token="A"), keys.CHAIN_TOKEN.format(token="B"),
        keys.CHAIN_POOL.format(pool="P"), keys.CHAIN_LAUNCHES.format(creator="C"),
        keys.CHAIN_WAITING, keys.outbox_key("chain-analysis", "/s", "1")],
    "chain.slotlog scripts (chain-analysis)": [keys.CHAIN_FUNDING_LOG, keys.CHAIN_FUNDING_SLOTS,
                                               keys.CHAIN_WATERMARK, keys.CHAIN_WATERMARK_AHEAD,
                                               keys.CHAIN_WATERMARK_BLOCKED],
    "runtime.state (whale-detection)": [
        keys.WHALES_TOKEN.format(token="A"), keys.WHALES_TOKEN.format(token="B"),
        keys.WHALES_WAITING, keys.outbox_key("whale-detection", "/s", "1")],
    "chain.slotlog scripts (whale-detection)": [keys.WHALES_FUNDING_LOG, keys.WHALES_FUNDING_SLOTS,
                                                keys.WHALES_WATERMARK, keys.WHALES_WATERMARK_AHEAD,
                                                keys.WHALES_WATERMARK_BLOCKED],
    "runtime.state and PFCOUNT (sentiment-analysis)": [
        keys.SENTIMENT_STATE.format(token="A"), keys.SENTIMENT_STATE.format(token="B"),
        keys.SENTIMENT_AUTHORS_5M.format(token="A", bucket=1),
        keys.SENTIMENT_AUTHORS_1H.format(token="B", bucket=2), keys.SENTIMENT_DIRECTORY,
        keys.SENTIMENT_WAITING, keys.outbox_key("sentiment-analysis", "/s", "1")],
    "risk.function WATCH/MULTI": [
        keys.RISK_STATE.format(token="A"), keys.RISK_STATE.format(token="B"),
        keys.TRACKED_THRESHOLDS, keys.RISK_WAITING, keys.outbox_key("risk-scoring", "/s", "1")],
    "alerts.stream script": [keys.ALERT_STREAM, keys.ALERT_PUBLISHED.format(id="x")],
    "broker.queue MULTI and script": [
        keys.BROKER_LANE.format(namespace="n", broker="b", lane="t/0"),
        keys.BROKER_LANE.format(namespace="n", broker="b", lane="u/1"),
        keys.BROKER_STATE.format(namespace="n", broker="b", lane="t/0"),
        keys.BROKER_DUE.format(namespace="n", broker="b", lane="t/0"), keys.DLQ],
}


def test_keys_used_together_share_a_hash_slot():
    for operation, together in TOGETHER.items():
        assert len({key_slot(key.encode()) for key in together}) == 1, operation


def test_keyspaces_spread_over_slots():
    # one slot per keyspace, not one for everything: a cluster spreads them over its shards
    slots = {key_slot(together[0].encode()) for together in TOGETHER.values()}
    assert len(slots) == len(TOGETHER)


def test_ids_made_from_kades_names_are_unchanged():
    # uuid5 of the old literal names: a replayed input must still get the ids it got before
    assert alert_id("Mint1", "2024-05-01T12:00:00Z", "raised", "high") == \
        "4655de23-2c9a-515c-a68e-2e6965ac5aeb"
    assert group_id("/solana", 42, "Mint1") == "b736e86c-cf04-5114-ad90-22ad393dee16"


def test_patterns_are_distinct():
    rendered = [expected for _fields, expected in RENDERED.values()]
    assert len(set(rendered)) == len(rendered)


def _kades_literals(path: Path) -> list[int]:
    """Lines of string literals (plain, or the start of an f-string's text) that begin a
    `kades:` name. A message such as "kades: unknown command" (a space after the colon) is
    no key."""
    lines = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith("kades:") and text[6:7] not in ("", " ", "\n"):
                lines.add(node.lineno)
    return sorted(lines)


def test_no_module_spells_a_kades_key_outside_keys_py():
    found = {str(path.relative_to(PACKAGE)): lines for path in sorted(PACKAGE.rglob("*.py"))
             if path.name != "keys.py" or path.parent != PACKAGE
             if (lines := _kades_literals(path))}
    assert found == {}, "define Redis keys (and kades: id names) in kades/keys.py"


def test_the_scan_sees_keys_py_itself():
    # the scan above would pass on a package it failed to read: keys.py must show its own
    assert len(_kades_literals(PACKAGE / "keys.py")) >= len(RENDERED)
