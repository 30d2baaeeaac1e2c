"""CloudEvents over HTTP: binary, structured and batch mode, strictly validated."""
from __future__ import annotations

import json

import pytest
from jsonschema import Draft7Validator
from shared_material import SCHEMAS, require

from kades.errors import InvalidEventError
from kades.events import envelope
from kades.events.envelope import CloudEvent

SPEC_SCHEMA = SCHEMAS / "cloudevents/cloudevents-v1.0.2.schema.json"

VALID = {"specversion": "1.0", "id": "e-1", "source": "/tests", "type": "ai.kades.market.tick.v1",
         "time": "2026-11-26T08:00:00Z", "subject": "So11111111111111111111111111111111111111112",
         "partitionkey": "So11111111111111111111111111111111111111112",
         "datacontenttype": "application/json", "data": {"ticks": []}}


def structured(**changes):
    document = {**VALID, **changes}
    return {k: v for k, v in document.items() if v is not ...}


# (event, the fields the error must name)
INVALID_STRUCTURED = [
    (structured(id=...), ["id"]),
    (structured(source=...), ["source"]),
    (structured(type=...), ["type"]),
    (structured(specversion=...), ["specversion"]),
    (structured(specversion="0.3"), ["specversion"]),
    (structured(specversion="1.1"), ["specversion"]),
    (structured(id=""), ["id"]),
    (structured(type=7), ["type"]),
    (structured(source="has space"), ["source"]),
    (structured(datacontenttype="not a media type"), ["datacontenttype"]),
    (structured(datacontenttype="application/"), ["datacontenttype"]),
    # a CR or LF became header lines of the sender's in every delivery's request
    (structured(datacontenttype="application/json\n"), ["datacontenttype"]),
    (structured(datacontenttype='application/json; a="x\r\nX-Injected: 1\r\nX-Pad: "'),
     ["datacontenttype"]),
    (structured(dataschema="relative/path"), ["dataschema"]),
    (structured(subject=""), ["subject"]),
    (structured(time="yesterday"), ["time"]),
    (structured(time="2026-13-40T25:00:00Z"), ["time"]),
    (structured(Upper="x"), ["Upper"]),
    (structured(**{"bad_name": "x"}), ["bad_name"]),
    (structured(**{"bad-name": "x"}), ["bad-name"]),
    (structured(ext={"nested": 1}), ["ext"]),
    (structured(ext=1.5), ["ext"]),
    (structured(ext=2 ** 40), ["ext"]),
    (structured(data_base64="aGVsbG8="), ["data_base64"]),
    (structured(data=..., data_base64="%%%"), ["data_base64"]),
    # every problem at once, not only the first
    (structured(id=..., specversion="0.3", time="soon", Bad="x"), ["id", "specversion", "time", "Bad"]),
]


@pytest.mark.parametrize("document,fields", INVALID_STRUCTURED)
def test_invalid_structured_events_name_every_problem(document, fields):
    with pytest.raises(InvalidEventError) as caught:
        envelope.from_structured(document)
    assert sorted(p.field for p in caught.value.problems) == sorted(fields)


def test_the_official_schema_agrees_where_it_can_judge():
    """Every event the official JSON Schema rejects, we reject too; what we accept, it accepts."""
    official = Draft7Validator(json.loads(require(SPEC_SCHEMA).read_text()),
                               format_checker=Draft7Validator.FORMAT_CHECKER)
    rejected_by_official = 0
    for document, _ in INVALID_STRUCTURED:
        if not official.is_valid(document):
            rejected_by_official += 1
        with pytest.raises(InvalidEventError):
            envelope.from_structured(document)
    assert rejected_by_official >= 8  # the schema does judge many of them
    event = envelope.from_structured(structured())
    assert official.is_valid(envelope.to_dict(event))


def binary_headers(**changes):
    headers = {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/tests",
               "ce-type": "ai.kades.market.tick.v1", "content-type": "application/json"}
    headers.update(changes)
    return {k: v for k, v in headers.items() if v is not ...}


INVALID_BINARY = [
    (binary_headers(**{"ce-specversion": ...}), b"{}", ["ce-specversion"]),
    (binary_headers(**{"ce-id": ...}), b"{}", ["id"]),
    (binary_headers(**{"ce-specversion": "0.3"}), b"{}", ["specversion"]),
    (binary_headers(**{"content-type": "garbage"}), b"{}", ["datacontenttype"]),
    (binary_headers(), b"{not json", ["data"]),
    (binary_headers(**{"ce-datacontenttype": "application/json"}), b"{}", ["datacontenttype"]),
    (binary_headers(**{"ce-time": "now", "ce-id": ""}), b"{}", ["time", "id"]),
]


@pytest.mark.parametrize("headers,body,fields", INVALID_BINARY)
def test_invalid_binary_events_name_every_problem(headers, body, fields):
    with pytest.raises(InvalidEventError) as caught:
        envelope.decode(headers, body)
    assert sorted(p.field for p in caught.value.problems) == sorted(fields)


def test_batch_reports_problems_of_every_item_with_its_index():
    body = json.dumps([structured(), structured(id=...), structured(specversion="2.0")]).encode()
    with pytest.raises(InvalidEventError) as caught:
        envelope.decode({"content-type": envelope.BATCH_TYPE}, body)
    assert sorted(p.field for p in caught.value.problems) == ["[1].id", "[2].specversion"]


@pytest.mark.parametrize("body", [b"{}", b"[1, 2]", b"\xff\xfe"])
def test_batch_that_is_not_an_array_of_objects_is_rejected(body):
    with pytest.raises(InvalidEventError):
        envelope.decode({"content-type": envelope.BATCH_TYPE}, body)


def test_structured_body_that_is_not_json_is_rejected():
    with pytest.raises(InvalidEventError) as caught:
        envelope.decode({"content-type": "application/cloudevents+json; charset=utf-8"}, b"{oops")
    assert caught.value.problems[0].field == "body"


def sample_events() -> list[CloudEvent]:
    json_event = envelope.from_structured(structured(subject="naïve/ünïcode % \"quoted\""))
    bytes_event = CloudEvent({"specversion": "1.0", "id": "raw", "source": "urn:kades:test",
                              "type": "ai.kades.test.raw.v1",
                              "datacontenttype": "application/octet-stream"}, b"\x00\x01binary")
    no_data = CloudEvent({"specversion": "1.0", "id": "empty", "source": "/t", "type": "t.v1"})
    return [json_event, bytes_event, no_data]


@pytest.mark.parametrize("event", sample_events(), ids=["json", "bytes", "no-data"])
def test_binary_round_trip(event):
    headers, body = envelope.to_binary(event)
    [decoded] = envelope.decode(headers, body)
    assert decoded.attributes == event.attributes
    assert decoded.data == event.data and decoded.has_data == event.has_data


@pytest.mark.parametrize("event", sample_events(), ids=["json", "bytes", "no-data"])
def test_structured_round_trip(event):
    headers, body = envelope.to_structured(event)
    [decoded] = envelope.decode(headers, body)
    assert decoded.attributes == event.attributes
    assert decoded.data == event.data and decoded.has_data == event.has_data


def test_batch_round_trip_keeps_order():
    events = sample_events()
    headers, body = envelope.to_batch(events)
    decoded = envelope.decode(headers, body)
    assert [e.id for e in decoded] == [e.id for e in events]
    assert [e.data for e in decoded] == [e.data for e in events]


def test_a_null_attribute_is_unset():
    """JSON format §2.2: null means unset (the spec's own example has "unsetextension":
    null). Found by hypothesis: null became the string "None", an invalid dataschema that
    broke the event's next hop in binary mode."""
    event = envelope.from_structured(structured(dataschema=None, subject=None, flag=None))
    assert not {"dataschema", "subject", "flag"} & set(event.attributes)
    assert envelope.decode(*envelope.to_binary(event))[0].attributes == {
        **event.attributes, "datacontenttype": "application/json"}
    with pytest.raises(InvalidEventError) as caught:
        envelope.from_structured(structured(id=None))
    assert [p.field for p in caught.value.problems] == ["id"]


def test_extension_values_become_strings():
    event = envelope.from_structured(structured(knativebrokerttl=255, flag=True))
    assert event["knativebrokerttl"] == "255" and event["flag"] == "true"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(literal):
    body = b'{"ticks": [{"token": "T", "time": "2026-11-26T08:00:00Z", "price": ' + literal + b"}]}"
    with pytest.raises(InvalidEventError) as caught:
        envelope.decode(binary_headers(), body)
    assert [p.field for p in caught.value.problems] == ["data"]
    structured_body = b'{"specversion":"1.0","id":"1","source":"/t","type":"t","data":' + literal + b"}"
    with pytest.raises(InvalidEventError):
        envelope.decode({"content-type": envelope.STRUCTURED_TYPE}, structured_body)


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1" + b"0" * 400 + b".0", b"2E+308"])
def test_a_number_beyond_a_double_is_not_json_that_can_be_written_again(number):
    """1e400 was read as inf and written on as Infinity (the broker's queue, a reply): no
    JSON reader took it back, and the event was dead-lettered as unreadable, never replayed.
    Its problem is named; a number a double holds is read as before."""
    body = b'{"ticks": [{"token": "T", "time": "2026-11-26T08:00:00Z", "price": ' + number + b"}]}"
    with pytest.raises(InvalidEventError) as caught:
        envelope.decode(binary_headers(), body)
    assert [p.field for p in caught.value.problems] == ["data"]
    assert "beyond what a double holds" in caught.value.problems[0].message
    assert envelope.parse_json(b"[1.7976931348623157e308, 4.9e-324, 1e-400, -0.0]") == [
        1.7976931348623157e308, 5e-324, 0.0, -0.0]


def test_a_header_sent_as_utf8_not_percent_encoded_is_read_as_utf8():
    """Servers hand header bytes over as latin-1: "/sé" sent as UTF-8 was read "/sÃ©"."""
    sent = "/sé/ü".encode("utf-8").decode("latin-1")  # what gunicorn or the broker hands over
    [event] = envelope.decode(binary_headers(**{"ce-source": sent}), b"{}")
    assert event.source == "/sé/ü"
    [event] = envelope.decode(binary_headers(**{"ce-source": "/s%C3%A9"}), b"{}")
    assert event.source == "/sé"
    with pytest.raises(InvalidEventError) as caught:  # bytes that are no UTF-8
        envelope.decode(binary_headers(**{"ce-source": "/s\xe9x"}), b"{}")
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("source", "header value is not percent-encoded UTF-8")]


def test_a_nul_or_a_control_character_decodes_as_knative_passes_it_on():
    """The functions that store what they read refuse them (tests/functions), the dead-letter
    sink keeps them: decoding itself is no stricter than Knative's ingress."""
    body = b'{"ticks": [{"token": "T\\u0000x", "time": "2026-11-26T08:00:00Z", "price": 1}]}'
    [event] = envelope.decode(binary_headers(**{"ce-subject": "a%00b"}), body)
    assert envelope.holds_nul(event.data) and not envelope.holds_nul({"t": "\\u0000 as text"})
    assert [p.field for p in envelope.control_problems(event.attributes)] == ["subject"]


def test_spaces_quotes_and_percents_are_percent_encoded_in_headers_and_come_back():
    """HTTP binding §3.1.3.2. A space was sent as it is: a leading or trailing one was lost
    (HTTP trims header values) or refused by httpx, which made the sink a 503 for ever."""
    event = CloudEvent({"specversion": "1.0", "id": ' a "b" 100% ', "source": "/t", "type": "t.v1",
                        "subject": " Tok ", "partitionkey": "Tok ",
                        "datacontenttype": "application/json"}, {"x": 1})
    headers, body = envelope.to_binary(event)
    assert headers["ce-subject"] == "%20Tok%20" and headers["ce-id"] == "%20a%20%22b%22%20100%25%20"
    assert all(value == value.strip() for value in headers.values())
    [decoded] = envelope.decode(headers, body)
    assert decoded.attributes == event.attributes


@pytest.mark.parametrize("name", ["id", "type", "subject"])
def test_an_attribute_of_white_space_only_is_empty_as_sdk_go_reads_it(name):
    """Knative's ingress (sdk-go's Validate) trims id, type and subject: " " is empty there."""
    document = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t.v1", name: " "}
    with pytest.raises(InvalidEventError) as refused:
        envelope.from_structured(document)
    assert [p.field for p in refused.value.problems] == [name]


def _outcome(parse, raw):
    """What `parse` makes of `raw`: the value's repr (1 and 1.0, 0.0 and -0.0 told apart), or
    that it was refused."""
    try:
        return repr(parse(raw))
    except ValueError:  # (UnicodeDecodeError is one)
        return "refused"


PIECES = [b"1e400", b"-1e400", b"NaN", b"Infinity", b"-0", b"-0.0", b"1e-400", b"4.9e-324",
          b"123456789012345678901", b"-9223372036854775809", b"18446744073709551616",
          b"18446744073709551615", b'"\\ud800"', b'"\\ud83d\\ude00"', b'"\\udc00\\ud800"',
          b'"\xed\xa0\x80"', b'"\xc2\x80"', b'"\xff"', b"\xef\xbb\xbf", b'"\x01"', b'"\\u0000"',
          b"[1,]", b"{,}", b"01", b"1.", b".5", b"+1", b"\x0c", b"\t", b" ", b"true", b"nul",
          b'{"a":1,"a":2}', b"[" * 600 + b"]" * 600, b"[" * 400 + b"]" * 400, b"]", b"}", b'"',
          b"],[", b"]]", b"[[", b"1],[2", b"",
          b"1.00000000000000011102230246251565404236316680908203125" + b"0" * 715]


def test_bytes_are_read_as_the_strict_stdlib_reading_reads_them():
    """parse_json reads bytes with orjson, and a text with the stdlib's json and its strict
    hooks: every text, valid or not, gets the same value (its types too) or is refused on
    both. Tricky pieces (numbers past a double or 64 bits, surrogates, control characters,
    deep nesting) are put into a valid document at random places, 3,000 times."""
    import random
    rng = random.Random(7)
    document = json.dumps({"ticks": [{"token": "T", "time": "2026-11-26T08:00:00Z",
                                      "price": 1.5, "volume": 0, "pools": {"p": [1, 2.5]}}],
                           "n": [-0.0, 1e-300, 2**63 - 1]}).encode()
    texts = [piece for piece in PIECES] + [b"[" + piece + b"]" for piece in PIECES]
    for _ in range(3000):
        at, cut = rng.randrange(len(document)), rng.choice((0, 0, 1, 2))
        texts.append(document[:at] + rng.choice(PIECES) + document[at + cut:])
    refused = 0
    for text in texts:
        stdlib = "refused" if not _utf8(text) else _outcome(envelope.parse_json, text.decode())
        assert _outcome(envelope.parse_json, text) == stdlib, text
        refused += stdlib == "refused"
    assert 0 < refused < len(texts)  # both kinds were tried
    assert envelope.parse_json(b"[123456789012345678901234]") == [123456789012345678901234]


def _utf8(text: bytes) -> bool:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_nesting_past_the_bound_is_refused_on_every_path():
    """orjson takes 1,024 levels, the stdlib's json as many as the caller's stack leaves
    (~900 under Flask): both refuse what is deeper than MAX_JSON_DEPTH, so what a function
    takes does not depend on which read it."""
    deep = b"[" * (envelope.MAX_JSON_DEPTH + 1) + b"]" * (envelope.MAX_JSON_DEPTH + 1)
    fits = b"[" * envelope.MAX_JSON_DEPTH + b"]" * envelope.MAX_JSON_DEPTH
    for text in (deep, deep.decode(), b'{"a": ' + deep + b', "n": 12345678901234567890123}'):
        with pytest.raises(ValueError, match="nested too deeply"):
            envelope.parse_json(text)
    assert envelope.parse_json(fits) == envelope.parse_json(fits.decode())
    assert envelope._orjson_within_depth(fits) is not envelope._UNREAD  # orjson's path


def test_an_event_without_data_keeps_its_datacontenttype_in_binary_mode():
    """Its content-type was written only with data: a delivery of such an event reached the
    subscriber (or the dead-letter sink) without the attribute, where sdk-go writes it."""
    event = envelope.from_structured({k: v for k, v in structured(
        datacontenttype="text/plain").items() if k != "data"})
    assert not event.has_data
    assert envelope.decode(*envelope.to_binary(event))[0].attributes == event.attributes
    # but not one naming structured mode: its empty body read as a structured event, no JSON
    structured_type = envelope.from_structured({k: v for k, v in structured(
        datacontenttype="application/cloudevents+json").items() if k != "data"})
    decoded = envelope.decode(*envelope.to_binary(structured_type))[0]
    assert decoded.id == structured_type.id and not decoded.has_data
