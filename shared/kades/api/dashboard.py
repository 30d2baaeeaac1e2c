"""The live dashboard: static files under static/, served at / and /assets/ (no build step).

Not under /static/: functions-framework's Flask app keeps that prefix for its own (empty)
static folder and would answer 404 before the function is called."""
from __future__ import annotations

import mimetypes
from pathlib import Path

import flask

STATIC = Path(__file__).with_name("static")
FILES = {"/": "index.html", "/index.html": "index.html", "/assets/app.js": "app.js",
         "/assets/chart.js": "chart.js", "/assets/style.css": "style.css"}


def static_response(path: str) -> flask.Response | None:
    """The static file at `path`, or None when `path` is not one of the dashboard's."""
    name = FILES.get(path)
    if name is None:
        return None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = flask.Response((STATIC / name).read_bytes(), status=200,
                              content_type=f"{content_type}; charset=utf-8")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'")
    return response
