"""Schemathesis generates requests from the OpenAPI document and sends them to the api (in
process): no answer may be a 5xx, and every answer must match the document."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (negative_data_rejection, not_a_server_error,
                                 response_schema_conformance,
                                 status_code_conformance)

from kades.api.openapi import document

schema = schemathesis.openapi.from_dict(document()).exclude(path="/v1/ws")

pytestmark = pytest.mark.slow


@schema.parametrize()
@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_match_the_document(api, case):
    case.call_and_validate(app=api.client.application, headers={"X-API-Key": api.key},
                           checks=[not_a_server_error, status_code_conformance,
                                   response_schema_conformance, negative_data_rejection])
