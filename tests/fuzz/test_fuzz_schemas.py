"""Every schema of the catalogue under random and mutated data: `data_problems` never
crashes, agrees with the JSON Schema validator (and with the one rule beyond it, a chain
block's slot past its time), and names where each problem is."""
from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from fuzzstrategies import EVENT_TYPES, json_values
from kades.events.catalogue import (CHAIN_BLOCK, EXAMPLES, MIN_SLOT_S, SCHEMAS, SOLANA_GENESIS,
                                    data_problems, example, new_event)
from kades.events.envelope import CloudEvent

FUZZ = settings(max_examples=400, deadline=None, database=None)


def paths(value, prefix=()):
    """Every path into a JSON value (the root included)."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, prefix + (index,))


@st.composite
def mutated_examples(draw):
    """(type, data): a valid example with one value replaced, removed or added."""
    event_type = draw(st.sampled_from(EVENT_TYPES))
    data = example(event_type)
    path = draw(st.sampled_from(list(paths(data))[1:] or [()]))
    if not path:
        return event_type, draw(json_values)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(json_values)
    elif action == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(json_values)
    else:
        parent.append(draw(json_values))
    return event_type, data


def slot_too_late(event_type: str, data) -> bool:
    """The one rule beyond the schema (catalogue._slot_problems): a chain block's slot past
    what its block_time allows, a slot per MIN_SLOT_S since SOLANA_GENESIS."""
    if event_type != CHAIN_BLOCK or not isinstance(data.get("block_time"), str):
        return False
    try:
        since = (datetime.fromisoformat(data["block_time"]) - SOLANA_GENESIS).total_seconds()
    except ValueError:  # a time the rule cannot read: the functions refuse the block for it
        return False
    return data["slot"] > max(0.0, since) / MIN_SLOT_S


def check(event_type: str, data) -> list:
    event = CloudEvent({"specversion": "1.0", "id": "1", "source": "/fuzz", "type": event_type,
                        "datacontenttype": "application/json"}, data, _has_data=True)
    problems = data_problems(event)
    valid = Draft7Validator(SCHEMAS[event_type]).is_valid(data)
    valid = valid and not slot_too_late(event_type, data)
    assert (problems == []) == valid, (event_type, data, problems)
    assert all(p.field.startswith("data") and p.message for p in problems)
    return problems


def test_every_type_has_a_valid_example():
    assert set(EXAMPLES) == set(SCHEMAS)
    for event_type, data in EXAMPLES.items():
        assert check(event_type, data) == []


@FUZZ
@given(mutated_examples())
def test_mutated_data_is_judged_like_the_schema(case):
    check(*case)


@FUZZ
@given(st.sampled_from(EVENT_TYPES), json_values)
def test_random_data_is_judged_like_the_schema(event_type, data):
    check(event_type, data)


@given(st.sampled_from(EVENT_TYPES), st.binary(max_size=20))
@settings(max_examples=50, deadline=None, database=None)
def test_bytes_data_and_missing_data_are_named(event_type, raw):
    event = new_event(event_type, "/fuzz", None)
    event.attributes["datacontenttype"] = "application/octet-stream"
    assert [p.field for p in data_problems(event)] == ["data"]
    binary = CloudEvent(dict(event.attributes), raw, _has_data=True)
    assert [p.field for p in data_problems(binary)] == ["datacontenttype"]
