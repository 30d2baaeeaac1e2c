"""Trigger filters, table-driven, as knative/eventing `pkg/eventfilter` evaluates them."""
import re

import pytest

from kades.broker.filters import compile_trigger_filter, matches

EVENT = {"specversion": "1.0", "id": "1", "source": "/solana/mainnet",
         "type": "ai.kades.chain.block.v1", "subject": "So11111", "partitionkey": "So11111"}


def passes(spec: dict, attrs: dict = EVENT) -> bool:
    return matches(compile_trigger_filter(spec), attrs)


@pytest.mark.parametrize("spec, expected", [
    # no filter / empty filters match everything
    ({}, True),
    ({"filter": {}}, True),
    ({"filter": {"attributes": {}}}, True),
    ({"filters": []}, True),
    # filter.attributes: exact, case-sensitive, every attribute must exist
    ({"filter": {"attributes": {"type": "ai.kades.chain.block.v1"}}}, True),
    ({"filter": {"attributes": {"type": "ai.kades.chain.block.V1"}}}, False),
    ({"filter": {"attributes": {"type": "ai.kades.chain.block"}}}, False),
    ({"filter": {"attributes": {"type": "ai.kades.chain.block.v1",
                                "source": "/solana/mainnet"}}}, True),
    ({"filter": {"attributes": {"type": "ai.kades.chain.block.v1", "source": "/other"}}}, False),
    ({"filter": {"attributes": {"partitionkey": "So11111"}}}, True),
    ({"filter": {"attributes": {"missingext": "x"}}}, False),
    ({"filter": {"attributes": {"dataschema": "x"}}}, False),  # optional core attribute unset
    ({"filter": {"attributes": {"subject": ""}}}, True),  # "" = any non-empty value
    ({"filter": {"attributes": {"missingext": ""}}}, False),
    # filters: exact / prefix / suffix
    ({"filters": [{"exact": {"type": "ai.kades.chain.block.v1"}}]}, True),
    ({"filters": [{"exact": {"type": "AI.kades.chain.block.v1"}}]}, False),
    ({"filters": [{"exact": {"missingext": "x"}}]}, False),
    ({"filters": [{"prefix": {"type": "ai.kades.chain."}}]}, True),
    ({"filters": [{"prefix": {"type": "ai.kades.market."}}]}, False),
    ({"filters": [{"prefix": {"missingext": "a"}}]}, False),
    ({"filters": [{"suffix": {"type": ".v1"}}]}, True),
    ({"filters": [{"suffix": {"type": ".v2"}}]}, False),
    # the list itself is an implicit all
    ({"filters": [{"prefix": {"type": "ai.kades."}}, {"suffix": {"type": ".v2"}}]}, False),
    ({"filters": [{"prefix": {"type": "ai.kades."}}, {"exact": {"subject": "So11111"}}]}, True),
    # all / any / not, nested
    ({"filters": [{"all": [{"prefix": {"type": "ai."}}, {"suffix": {"type": ".v1"}}]}]}, True),
    ({"filters": [{"all": [{"prefix": {"type": "ai."}}, {"suffix": {"type": ".v9"}}]}]}, False),
    ({"filters": [{"any": [{"exact": {"type": "x"}}, {"exact": {"type": "ai.kades.chain.block.v1"}}]}]}, True),
    ({"filters": [{"any": [{"exact": {"type": "x"}}, {"exact": {"type": "y"}}]}]}, False),
    ({"filters": [{"not": {"exact": {"type": "ai.kades.chain.block.v1"}}}]}, False),
    ({"filters": [{"not": {"exact": {"type": "ai.kades.market.tick.v1"}}}]}, True),
    ({"filters": [{"not": {"not": {"prefix": {"type": "ai.kades."}}}}]}, True),
    ({"filters": [{"not": {"any": [{"exact": {"source": "/a"}}, {"exact": {"source": "/b"}}]}}]}, True),
    ({"filters": [{"any": [{"not": {"exact": {"subject": "So11111"}}},
                           {"all": [{"suffix": {"source": "mainnet"}}, {"exact": {"id": "1"}}]}]}]},
     True),
])
def test_filter_table(spec, expected):
    assert passes(spec) is expected


def test_filters_win_over_filter():
    spec = {"filter": {"attributes": {"type": "something.else"}},
            "filters": [{"prefix": {"type": "ai.kades."}}]}
    assert passes(spec)
    spec = {"filter": {"attributes": {"type": "ai.kades.chain.block.v1"}},
            "filters": [{"exact": {"type": "something.else"}}]}
    assert not passes(spec)


def test_empty_filters_list_falls_back_to_filter():
    assert not passes({"filter": {"attributes": {"type": "other"}}, "filters": []})


def test_filters_never_look_at_data():
    with_data = {**EVENT, "data": {"type": "other"}}
    spec = {"filters": [{"exact": {"type": "ai.kades.chain.block.v1"}}]}
    assert passes(spec, with_data)
    assert not passes({"filters": [{"exact": {"data": "x"}}]}, {**EVENT})


@pytest.mark.parametrize("spec, message", [
    ({"filters": [{"exact": {"type": "a"}, "prefix": {"type": "b"}}]}, "exactly one dialect"),
    ({"filters": [{}]}, "exactly one dialect"),
    ({"filters": [{"regex": {"type": "a"}}]}, "unknown filter dialect"),
    ({"filters": [{"exact": {"type": ""}}]}, "must not be empty"),
    ({"filters": [{"all": []}]}, "non-empty list"),
    ({"filters": [{"cesql": "type = 'a'"}]}, "cesql"),
    ({"filter": {"attributes": {"Type": "a"}}}, "^[a-z][a-z0-9]*$"),
    ({"filters": [{"prefix": {"my-ext": "a"}}]}, "^[a-z][a-z0-9]*$"),
    # Knative's webhook: "Exact can have only one key-value" (trigger_validation.go)
    ({"filters": [{"exact": {"type": "a", "source": "s"}}]}, "exactly one attribute"),
    ({"filters": [{"suffix": {"type": "a", "source": "s"}}]}, "exactly one attribute"),
    # the CRD's values are strings: `true` was taken as "True" and never matched
    ({"filter": {"attributes": {"flag": True}}}, "values are strings"),
    ({"filters": [{"exact": {"flag": 1}}]}, "values are strings"),
])
def test_invalid_filters_are_refused(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_trigger_filter(spec)


@pytest.mark.parametrize("spec, attrs, expected", [
    # Knative's LookupAttribute always defines these, some derived from others
    ({"filters": [{"not": {"exact": {"datamediatype": "application/json"}}}]},
     {**EVENT, "datacontenttype": "application/json; charset=utf-8"}, False),
    ({"filters": [{"exact": {"datamediatype": "application/json"}}]},
     {**EVENT, "datacontenttype": "application/json; charset=utf-8"}, True),
    ({"filters": [{"exact": {"schemaurl": "https://s/x"}}]}, {**EVENT, "dataschema": "https://s/x"}, True),
    ({"filters": [{"exact": {"dataschema": "https://s/x"}}]},
     {**EVENT, "specversion": "0.3", "schemaurl": "https://s/x"}, True),
    ({"filter": {"attributes": {"datacontentencoding": ""}}}, EVENT, False),  # exists, but ""
    ({"filters": [{"not": {"prefix": {"datacontentencoding": "b"}}}]}, EVENT, True),
    # the time as Go writes it: nanoseconds, trailing zeros dropped, a zero offset as Z
    ({"filters": [{"exact": {"time": "2024-05-01T10:00:00Z"}}]},
     {**EVENT, "time": "2024-05-01T10:00:00.000+00:00"}, True),
    ({"filters": [{"exact": {"time": "2024-05-01T10:00:00.5+02:00"}}]},
     {**EVENT, "time": "2024-05-01T10:00:00.500+02:00"}, True),
    ({"filters": [{"exact": {"time": "0001-01-01T00:00:00Z"}}]}, EVENT, True),  # none: Go's zero
])
def test_attributes_are_looked_up_as_knative_does(spec, attrs, expected):
    assert passes(spec, attrs) is expected
