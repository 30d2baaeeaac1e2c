"""The event catalogue: every type has a valid schema, an example that passes (the catalogue's
own EXAMPLES), and named failures."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import hypothesis
import pytest
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from kades.errors import InvalidEventError, Problem
from kades.events import catalogue
from kades.events.catalogue import EXAMPLES, SCHEMAS, data_problems, derived_id, new_event

MINT = catalogue.EXAMPLE_MINT
TICK = EXAMPLES[catalogue.MARKET_FEED]["ticks"][0]
ANOMALY = EXAMPLES[catalogue.ANOMALY_DETECTED]["anomalies"][0]

# One broken example per type and the field the error must name.
BROKEN = {
    catalogue.PING: ({"job": "reboot"}, "data.job"),
    catalogue.CHAIN_BLOCK: ({**EXAMPLES[catalogue.CHAIN_BLOCK], "slot": -1}, "data.slot"),
    catalogue.MARKET_FEED: ({"ticks": []}, "data.ticks"),
    catalogue.MARKET_TICK: ({"ticks": [{**TICK, "price": 0}]}, "data.ticks[0].price"),
    catalogue.SOCIAL_POSTS: ({"posts": [{"id": "1"}]}, "data.posts[0]"),
    catalogue.ANOMALY_DETECTED: ({"anomalies": [{**ANOMALY, "score": 1.5}]}, "data.anomalies[0].score"),
    catalogue.SENTIMENT_SCORED: ({**EXAMPLES[catalogue.SENTIMENT_SCORED], "score": 2}, "data.score"),
    catalogue.RISK_SCORED: ({**EXAMPLES[catalogue.RISK_SCORED], "level": "severe"}, "data.level"),
    catalogue.ALERT: ({**EXAMPLES[catalogue.ALERT], "time": "yesterday"}, "data.time"),
    catalogue.TOKEN_TRACKED: ({"token_address": ""}, "data.token_address"),
}
BROKEN[catalogue.ALERT_V1_NAME] = BROKEN[catalogue.ALERT]


def test_every_type_has_an_example_and_a_broken_example():
    assert set(EXAMPLES) == set(SCHEMAS) == set(BROKEN)


def test_an_example_is_a_copy_to_change_freely():
    data = catalogue.example(catalogue.MARKET_TICK)
    data["ticks"][0]["price"] = -1
    assert catalogue.example(catalogue.MARKET_TICK) == EXAMPLES[catalogue.MARKET_TICK] != data
    assert EXAMPLES[catalogue.MARKET_TICK]["ticks"][0]["price"] > 0


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_schema_is_a_valid_json_schema(event_type):
    Draft7Validator.check_schema(SCHEMAS[event_type])


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_example_passes(event_type):
    event = new_event(event_type, "/tests", EXAMPLES[event_type], subject=MINT)
    assert data_problems(event) == []
    assert event["partitionkey"] == MINT


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_broken_example_names_the_field(event_type):
    data, field = BROKEN[event_type]
    event = new_event(event_type, "/tests", data)
    with pytest.raises(InvalidEventError) as caught:
        catalogue.validate_data(event)
    assert field in [p.field for p in caught.value.problems]


def test_all_problems_of_the_data_are_listed():
    data = {"ticks": [{**TICK, "price": -1}, {"token": MINT}]}
    fields = [p.field for p in data_problems(new_event(catalogue.MARKET_TICK, "/t", data))]
    assert "data.ticks[0].price" in fields
    assert fields.count("data.ticks[1]") == 2  # time and price both missing


# Each matched the old pattern and then raised in a handler (a 500): risk-scoring, alert-dispatch
# and the database parse times as given, and a year outside 1..9999 once in UTC overflows.
NOT_INSTANTS = ["2026-12-31T23:59:60Z", "2026-13-26T08:00:00Z", "2026-02-30T00:00:00Z",
                "2026-11-26T08:00:00+24:00", "2026-11-26T08:00:00Z\n", "2026-11-26t08:00:00z",
                "0999-06-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                "1969-12-31T23:59:59Z", "8999-12-31T23:59:59Z"]


@pytest.mark.parametrize("text", NOT_INSTANTS)
def test_a_time_that_is_no_usable_instant_is_named(text):
    anomaly = new_event(catalogue.ANOMALY_DETECTED, "/t", {"anomalies": [{**ANOMALY, "time": text}]})
    block = new_event(catalogue.CHAIN_BLOCK, "/t", {**EXAMPLES[catalogue.CHAIN_BLOCK], "block_time": text})
    for event, field in ((anomaly, "data.anomalies[0].time"), (block, "data.block_time")):
        problems = data_problems(event)
        assert field in [p.field for p in problems], text
        assert any(p.message == catalogue.TIME_PROBLEM for p in problems), text


@pytest.mark.parametrize("text", ["2026-11-26T08:00:00Z", "2026-11-26 08:00:00.123456789+05:30",
                                  "1970-01-01T00:00:00Z"])
def test_a_usable_time_passes(text):
    assert data_problems(new_event(catalogue.ANOMALY_DETECTED, "/t", {"anomalies": [
        {**ANOMALY, "time": text}]})) == []


def nested(levels: int, leaf=1.0):
    """`levels` objects, each holding the next: {"a": {"a": ... leaf}}."""
    for _ in range(levels):
        leaf = {"a": leaf}
    return leaf


def test_data_nested_deeper_than_the_bound_is_one_problem_however_deep():
    # data, anomalies, the anomaly: three levels before its details
    at_bound = catalogue.MAX_DATA_DEPTH - 3
    for levels, problems in ((at_bound, []), (at_bound + 1, ["data"]), (900, ["data"])):
        event = new_event(catalogue.ANOMALY_DETECTED, "/t", {"anomalies": [
            {**ANOMALY, "details": nested(levels)}]})
        assert [p.field for p in data_problems(event)] == problems, levels
    # arrays count as objects do; siblings do not add up
    for lists, problems in ((at_bound - 1, []), (at_bound, ["data"])):
        inner = 1
        for _ in range(lists):
            inner = [inner, 2]
        event = new_event(catalogue.ANOMALY_DETECTED, "/t", {"anomalies": [
            {**ANOMALY, "details": {"a": inner, "b": nested(at_bound - 1)}}]})
        assert [p.field for p in data_problems(event)] == problems, lists


def test_a_time_ahead_of_the_clock_by_more_than_the_bound_is_named():
    """One tick stamped hours ahead (local time labelled Z) moved its token's watermark, and
    every true tick after it was dropped as too late: the contract stops it at the door."""
    now = datetime.now(timezone.utc)
    for ahead, fields in ((0, []), (catalogue.MAX_FUTURE_S / 2, []),
                          (catalogue.MAX_FUTURE_S + 5, ["data.ticks[0].time"]),
                          (8 * 3600, ["data.ticks[0].time"])):
        stamped = (now + timedelta(seconds=ahead)).astimezone(timezone(timedelta(hours=8)))
        event = new_event(catalogue.MARKET_TICK, "/t", {"ticks": [
            {**TICK, "time": stamped.isoformat()}]})
        problems = data_problems(event)
        assert [p.field for p in problems] == fields, ahead
        assert all(p.message == catalogue.TIME_PROBLEM for p in problems)


def test_a_time_refused_for_being_ahead_is_accepted_once_the_clock_reaches_it(monkeypatch):
    """Accepted times are remembered (a batch's ticks share them); refused ones are not."""
    stamped = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert not catalogue.is_event_time(stamped)
    later = catalogue.time.time() + 3600
    monkeypatch.setattr(catalogue.time, "time", lambda: later)
    assert catalogue.is_event_time(stamped)
    assert stamped in catalogue._ACCEPTED_TIMES
    monkeypatch.setattr(catalogue.time, "time", lambda: later - 7200)  # what was accepted stays
    assert catalogue.is_event_time(stamped)
    assert not catalogue.is_event_time("2026-13-01T00:00:00Z")  # and what never reads, never


def test_the_accepted_times_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(catalogue, "_ACCEPTED_TIMES", set())
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for n in range(catalogue.MAX_ACCEPTED_TIMES + 10):
        assert catalogue.is_event_time((start + timedelta(seconds=n)).isoformat())
    assert 0 < len(catalogue._ACCEPTED_TIMES) <= catalogue.MAX_ACCEPTED_TIMES


@pytest.mark.parametrize("part, fields", [
    ({"index": 1, "count": 2.0}, ["data.part.count"]),
    ({"index": 1.0, "count": 2}, ["data.part.index"]),
    ({"index": 1, "count": 1001}, ["data.part.count"]),  # MAX_PARTS + 1
    ({"index": 1, "count": 10 ** 8}, ["data.part.count"]),
    ({"index": 2, "count": 2}, [])])
def test_a_chain_blocks_part_counted_as_no_slot_is_named(part, fields):
    """A count of 2.0 passed (JSON Schema's integer) and failed the parts' assembly with a
    500 at every retry; one of 10**8 held a worker in it."""
    data = catalogue.example(catalogue.CHAIN_BLOCK)
    data["part"] = {"key": catalogue.EXAMPLE_MINT, "group": "g", **part}
    event = new_event(catalogue.CHAIN_BLOCK, "/t", data)
    assert [p.field for p in data_problems(event)] == fields


def test_a_slot_past_what_its_block_time_allows_is_named():
    """One block of slot 2**64 - 1 made every true slot of its mint "late" for as long as the
    mint traded: a slot is at most one per MIN_SLOT_S since Solana's genesis."""
    block = EXAMPLES[catalogue.CHAIN_BLOCK]
    at = datetime.fromisoformat(block["block_time"].replace("Z", "+00:00"))
    allowed = int((at - catalogue.SOLANA_GENESIS).total_seconds() / catalogue.MIN_SLOT_S)
    mainnet_then = int((at - catalogue.SOLANA_GENESIS).total_seconds() / 0.45)  # as it ran
    for slot, fields in ((mainnet_then, []), (allowed, []), (allowed + 1, ["data.slot"]),
                         (2**64 - 1, ["data.slot"])):
        event = new_event(catalogue.CHAIN_BLOCK, "/t", {**block, "slot": slot})
        assert [p.field for p in data_problems(event)] == fields, slot
    # without block_time the chain functions take the event's time: the slot is held to it
    for slot, fields in ((mainnet_then, []), (2**63, ["data.slot"])):
        untimed = new_event(catalogue.CHAIN_BLOCK, "/t", {**block, "slot": slot,
                                                           "block_time": None},
                            time=block["block_time"])
        assert [p.field for p in data_problems(untimed)] == fields, slot
    # beside another problem it is still named
    both = new_event(catalogue.CHAIN_BLOCK, "/t", {**block, "slot": 2**63, "swaps": 5})
    assert {p.field for p in data_problems(both)} == {"data.slot", "data.swaps"}


def test_bytes_data_or_no_data_is_a_problem_for_json_types():
    event = new_event(catalogue.MARKET_TICK, "/t", b"raw")
    assert data_problems(event)[0].field == "datacontenttype"
    event = new_event(catalogue.MARKET_TICK, "/t", None)
    assert data_problems(event)[0].field == "data"


def test_derived_ids_are_stable_and_distinct():
    cause = new_event(catalogue.MARKET_TICK, "/t", EXAMPLES[catalogue.MARKET_TICK])
    assert derived_id(cause, "reply") == derived_id(cause, "reply")
    assert derived_id(cause, "reply") != derived_id(cause, "other")


def test_derived_ids_of_causes_whose_source_and_id_join_alike_differ():
    one = new_event(catalogue.MARKET_TICK, "/a#b", {}, event_id="c")
    other = new_event(catalogue.MARKET_TICK, "/a", {}, event_id="b#c")
    assert derived_id(one, "reply") != derived_id(other, "reply")


@pytest.mark.parametrize("token", ["A\nB", "A\u0085B", "AB\n", "\u007f"])
def test_a_token_holding_a_control_character_is_named_whatever_the_body(token):
    """A token becomes its replies' subject and partitionkey, which the next function refuses
    when they hold one: refused here, on the compiled path a body decides on too."""
    import json
    data = {"ticks": [{"token": token, "time": "2026-01-01T00:00:00Z", "price": 1.0}]}
    event = new_event(catalogue.MARKET_TICK, "/t", data)
    body = json.dumps(data, ensure_ascii=False).encode()
    for given in (None, body, json.dumps(data).encode()):
        assert [p.field for p in data_problems(event, body=given)] == [
            "data.ticks[0].token"], given


def test_a_body_without_control_characters_takes_the_check_without_the_pattern():
    import json
    data = {"ticks": [{"token": " spaced Tok ", "time": "2026-01-01T00:00:00Z", "price": 1.0}]}
    event = new_event(catalogue.MARKET_TICK, "/t", data)
    assert data_problems(event, body=json.dumps(data).encode()) == []
    assert data_problems(event) == []


def test_what_a_chain_block_gives_its_replies_is_bounded_as_they_are():
    """A 76-character mint passed as an address (88) and its anomalies' token (64) did not;
    a program name became the tick source `solana:<program>` (128 at most)."""
    block = catalogue.example(catalogue.CHAIN_BLOCK)
    mint, sol = "M" * 44, "So11111111111111111111111111111111111111112"
    swap = {"signature": "s" * 88, "trader": "T" * 44, "pool": "P" * 44, "program": "raydium",
            "mint_in": sol, "mint_out": mint, "amount_in": 10, "amount_out": 5,
            "decimals_in": 9, "decimals_out": 6, "base_mint": mint, "quote_mint": sol,
            "side": "buy", "base_amount": 5, "quote_amount": 10}
    block["swaps"] = [swap, {**swap, "mint_out": "M" * 76, "program": "p" * 200}]
    event = new_event(catalogue.CHAIN_BLOCK, "/t", block, time=block["block_time"])
    assert {p.field for p in data_problems(event)} == {"data.swaps[1].mint_out",
                                                        "data.swaps[1].program"}


def test_every_event_kades_creates_names_its_schema():
    """`dataschema` on every type but Knative's PingSource type; one URI per type, so a
    breaking change (a new .vN type) is a new URI, as CloudEvents asks."""
    made = {t: new_event(t, "/t", EXAMPLES[t]).get("dataschema") for t in SCHEMAS}
    assert made.pop(catalogue.PING) is None
    assert made == {t: "urn:kades:schema:" + t for t in made}


def test_alerts_are_issued_under_the_noun_verb_name_and_the_old_one_still_validates():
    assert catalogue.ALERT == "ai.kades.alert.issued.v1"
    assert all(t.count(".") >= 4 for t in SCHEMAS if t.startswith("ai.kades.")
               and t != catalogue.ALERT_V1_NAME), "ai.kades.<noun>.<verb>.vN"
    old = new_event(catalogue.ALERT_V1_NAME, "/t", EXAMPLES[catalogue.ALERT])
    assert data_problems(old) == []
    assert [p.field for p in data_problems(new_event(catalogue.ALERT_V1_NAME, "/t", {}))]


def test_unknown_type_cannot_be_created():
    with pytest.raises(ValueError):
        new_event("ai.kades.unknown.v1", "/t", {})


@pytest.mark.parametrize("body", [b"", b'{"a":"plain"}', b'{"a":"\\n"}', b"x\x7fy", b"\xc2\x85",
                                  b"\xc2\xa0 no control", b"\xc2", b"\xc3\x85", b"a\xc2\x9f",
                                  b"\xc2\xc2\x80", b"\\"])
def test_may_hold_control_finds_what_the_one_pattern_finds(body):
    assert catalogue.may_hold_control(body) == (re.search(rb"[\\\x7f]|\xc2[\x80-\x9f]", body) is not None)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.binary(max_size=64).map(lambda b: b.replace(b"\x00", b"\xc2")))
def test_may_hold_control_agrees_with_the_pattern_on_any_bytes(body):
    assert catalogue.may_hold_control(body) == (re.search(rb"[\\\x7f]|\xc2[\x80-\x9f]", body) is not None)


def test_problems_stop_at_a_hundred_and_a_batch_over_its_most_items_is_named_first():
    """20,000 empty ticks were 60,000 problems (13 GB at 5.6 million, in the function)."""
    event = new_event(catalogue.MARKET_TICK, "/t", {"ticks": [{}] * 20_000})
    problems = data_problems(event)
    assert len(problems) == catalogue.MAX_PROBLEMS + 1
    assert problems[0].field == "data.ticks" and "too long" in problems[0].message
    assert problems[-1] == Problem("data", f"more problems than the first "
                                           f"{catalogue.MAX_PROBLEMS} listed")
    few = new_event(catalogue.MARKET_TICK, "/t", {"ticks": [{}] * 3})
    assert len(data_problems(few)) == 9  # every one named while they are few


def _time_variants(rng) -> list[str]:
    """Times and near-times: valid ones, each character swapped, dropped or doubled, other
    digits (Unicode's too), lower case, a space, offsets, fractions, a trailing newline."""
    base = ["2026-11-26T08:00:00Z", "2026-11-26 08:00:00.123+05:30", "1970-01-01T00:00:00Z",
            "2026-02-28T23:59:59-14:00", "2026-12-31T23:59:60Z", "8999-12-31T23:59:59Z"]
    swaps = list("0123456789TtZz :+-.\n") + ["\u0662", "\uff11", "x", "", "00"]
    texts = list(base)
    for _ in range(1500):
        text = rng.choice(base)
        at = rng.randrange(len(text) + 1)
        texts.append(text[:at] + rng.choice(swaps) + text[at + rng.choice((0, 1)):])
    return texts


def test_the_fast_check_gives_the_verdict_of_the_time_pattern_and_format_both():
    """The fast check leaves a time's pattern to its format (is_shaped_event_time): on
    every kind of time text it accepts exactly what the schema with the pattern accepts,
    and where it refuses, the full check names the time."""
    import random

    import fastjsonschema
    reference = fastjsonschema.compile(SCHEMAS[catalogue.MARKET_TICK],
                                       formats={"date-time": catalogue.is_event_time})
    fast = catalogue._fast_check(catalogue.MARKET_TICK)
    accepted = refused = 0
    for text in _time_variants(random.Random(5)):
        data = {"ticks": [{**TICK, "time": text}, {**TICK, "time": text}]}
        try:
            reference(data)
            expected = True
        except fastjsonschema.JsonSchemaValueException:
            expected = False
        try:
            fast(data)
            got = True
        except fastjsonschema.JsonSchemaValueException:
            got = False
        assert got == expected, repr(text)
        problems = data_problems(new_event(catalogue.MARKET_TICK, "/t", data))
        assert (problems == []) == expected, repr(text)
        accepted, refused = accepted + expected, refused + (not expected)
    assert accepted > 50 and refused > 50
