"""CloudEvent decoding under random input: it either returns events or raises
InvalidEventError naming every problem; nothing else may escape (that would be a 500)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzstrategies import (ENCODED_SURROGATE, binary_headers, deep_json, invalid_utf8, request_bodies,
                            structured_documents)
from kades.errors import InvalidEventError
from kades.events.envelope import decode, from_structured, to_binary, to_structured

FUZZ = settings(max_examples=300, deadline=None, database=None)


def decode_or_reject(headers, body):
    """The events, or None when rejected with at least one named problem."""
    try:
        return decode(headers, body)
    except InvalidEventError as error:
        assert error.problems and all(isinstance(p.field, str) and p.message for p in error.problems)
        return None


@FUZZ
@given(request_bodies())
def test_any_request_decodes_or_is_rejected_with_named_problems(request):
    events = decode_or_reject(*request)
    for event in events or []:
        # whatever was accepted round-trips through both modes unchanged (binary mode names
        # the JSON content type that an absent datacontenttype means)
        expected = dict(event.attributes)
        if event.has_data:
            expected.setdefault("datacontenttype", "application/json")
        assert decode(*to_binary(event))[0].attributes == expected
        assert decode(*to_structured(event))[0].data == event.data


@FUZZ
@given(binary_headers, st.binary(max_size=50))
def test_random_binary_headers_and_bodies(headers, body):
    decode_or_reject(headers, body)


@FUZZ
@given(structured_documents())
def test_structured_documents_are_valid_or_rejected(document):
    try:
        event = from_structured(document)
    except InvalidEventError as error:
        assert error.problems
        return
    assert event.attributes["specversion"] == "1.0"


@FUZZ
@given(invalid_utf8, st.sampled_from(["application/json", "application/cloudevents+json",
                                      "application/cloudevents-batch+json"]))
def test_invalid_utf8_is_a_named_problem(junk, content_type):
    headers = {"content-type": content_type, "ce-specversion": "1.0", "ce-id": "1",
               "ce-source": "/fuzz", "ce-type": "t"}
    with pytest.raises(InvalidEventError):
        decode(headers, b'{"a":"' + junk + b'"}')


@pytest.mark.parametrize("raw", [b'"' + ENCODED_SURROGATE + b'"', b'"\\ud800"'])
def test_lone_surrogates_are_rejected(raw):
    headers = {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": "1",
               "ce-source": "/fuzz", "ce-type": "t"}
    try:
        event = decode(headers, b'{"text":' + raw + b'}')[0]
    except InvalidEventError:
        return
    to_binary(event)  # what every reply and the broker's delivery do with the event


def test_invalid_percent_encoding_in_a_header_is_a_named_problem():
    headers = {"ce-specversion": "1.0", "ce-id": "%C3%28", "ce-source": "/fuzz", "ce-type": "t"}
    with pytest.raises(InvalidEventError) as caught:
        decode(headers, b"")
    assert {p.field for p in caught.value.problems} == {"id"}


@pytest.mark.parametrize("content_type", [5, True, ["application/json"]])
def test_non_string_content_type_with_base64_data_is_rejected(content_type):
    document = {"specversion": "1.0", "id": "1", "source": "/fuzz", "type": "t",
                "datacontenttype": content_type, "data_base64": "e30="}
    with pytest.raises(InvalidEventError):
        from_structured(document)


@pytest.mark.parametrize("depth", [50, 500])
def test_moderately_deep_json_is_decoded(depth):
    headers = {"content-type": "application/json", "ce-specversion": "1.0", "ce-id": "1",
               "ce-source": "/fuzz", "ce-type": "t"}
    assert decode(headers, deep_json(depth))[0].has_data


@pytest.mark.parametrize("content_type", ["application/json", "application/cloudevents+json",
                                          "application/cloudevents-batch+json"])
def test_very_deep_json_is_rejected_not_crashed(content_type):
    headers = {"content-type": content_type, "ce-specversion": "1.0", "ce-id": "1",
               "ce-source": "/fuzz", "ce-type": "t"}
    with pytest.raises(InvalidEventError):
        decode(headers, deep_json(100_000))
