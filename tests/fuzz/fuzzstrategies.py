"""Hypothesis strategies for bad (and good) input: JSON values, CloudEvent attributes,
headers, bodies in every HTTP content mode, and bytes that are not UTF-8."""
from __future__ import annotations

import json

from hypothesis import strategies as st

from kades.events.catalogue import SCHEMAS

EVENT_TYPES = sorted(SCHEMAS)
scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
           | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)
# Mostly plausible attribute names and values, sometimes anything at all.
attribute_names = st.sampled_from(["specversion", "id", "source", "type", "subject", "time",
                                   "dataschema", "datacontenttype", "partitionkey",
                                   "Bad-Name", "x_y", ""]) | st.text(max_size=10)
attribute_values = (st.sampled_from(["1.0", "0.3", "", "/src", "a b", "2026-11-26T08:00:00Z",
                                     "not-a-time", "%ZZ", "%C3%28", *EVENT_TYPES])
                    | st.text(max_size=30) | st.integers() | st.booleans() | st.none())
content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "text/json",
    "application/cloudevents+json", "application/cloudevents-batch+json",
    "application/octet-stream", "text/plain", "application/x+json", "bogus", "", "a/b; c"])
# Header values travel as latin-1 text: keep them encodable.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30)
binary_headers = st.dictionaries(
    st.sampled_from(["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject",
                     "ce-time", "ce-datacontenttype", "ce-partitionkey", "ce-Bad_Name",
                     "content-type", "x-other"]),
    header_text | st.sampled_from(["1.0", "/src", *EVENT_TYPES]), max_size=9)
invalid_utf8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"])
# UTF-8 forbids encoded surrogates; Python's json.loads(bytes) decodes them ("surrogatepass").
ENCODED_SURROGATE = b"\xed\xa0\x80"


@st.composite
def structured_documents(draw):
    """A structured-mode event object, valid-ish or broken in one or more ways."""
    document = {"specversion": "1.0", "id": draw(st.text(min_size=1, max_size=8)),
                "source": "/fuzz", "type": draw(st.sampled_from(EVENT_TYPES))}
    document.update(draw(st.dictionaries(attribute_names, attribute_values, max_size=4)))
    if draw(st.booleans()):
        document["data"] = draw(json_values)
    if draw(st.integers(0, 4)) == 0:
        document["data_base64"] = draw(st.sampled_from(["e30=", "!!!", "", "bm90IGpzb24="]))
    return document


@st.composite
def request_bodies(draw):
    """(headers, body) in binary, structured or batch mode, sometimes mangled into bytes
    that are not JSON or not UTF-8 at all."""
    mode = draw(st.sampled_from(["binary", "structured", "batch", "garbage"]))
    if mode == "binary":
        headers = draw(binary_headers)
        body = json.dumps(draw(json_values)).encode() if draw(st.booleans()) else draw(st.binary(max_size=40))
    elif mode == "structured":
        headers = {"content-type": "application/cloudevents+json"}
        body = json.dumps(draw(structured_documents())).encode()
    elif mode == "batch":
        headers = {"content-type": "application/cloudevents-batch+json"}
        body = json.dumps(draw(st.lists(structured_documents() | json_values, max_size=3))).encode()
    else:
        headers = {"content-type": draw(content_types)}
        body = draw(st.binary(max_size=60))
    if draw(st.integers(0, 5)) == 0:  # splice bytes that are not UTF-8 into the body
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(invalid_utf8) + body[cut:]
    return headers, body


def deep_json(depth: int, *, kind: str = "list") -> bytes:
    """`[[[…]]]` or `{"a":{"a":…}}` nested `depth` levels."""
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth
