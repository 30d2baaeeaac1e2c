"""Entry point of the `api` function: the REST API of KADES under /v1, WebSockets, dashboard."""
import flask
import functions_framework

from kades.api.app import api_entry_point, route_every_path
from kades.api.websocket import register_route

handle = functions_framework.http(api_entry_point())
# functions-framework imports this module inside its app's context: add the WebSocket rule,
# and one that takes the paths its catch-all misses.
register_route(flask.current_app)
route_every_path(flask.current_app)
