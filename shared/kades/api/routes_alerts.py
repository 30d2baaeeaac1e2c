"""GET /v1/alerts: the alerts raised lately, newest first, keyset-paginated (the dashboard's
feed on load; the WebSocket brings the ones that follow)."""
from __future__ import annotations

import flask

from kades.api.auth import Caller
from kades.api.openapi import Checked, parse_rfc3339
from kades.api.params import jsonable
from kades.runtime.endpoint import json_response
from kades.runtime.function import Context
from kades.storage import alerts


def list_alerts(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """The query is checked against openapi.yaml already (token, limits, formats)."""
    query = request.query
    start = parse_rfc3339(query["start_time"]) if "start_time" in query else None
    with ctx.db() as conn:
        rows, next_cursor = alerts.recent_alerts(conn, token=query.get("token"), start_time=start,
                                                 limit=query["limit"], cursor=query.get("cursor"))
    return json_response({"alerts": jsonable(rows), "next_cursor": next_cursor}, 200)
