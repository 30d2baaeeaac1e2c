"""`python -m kades.runtime.serve`: how every function process starts (the image's command,
`kades up`); functions-framework's own command, with every line it writes a JSON line.

Takes the options and variables of `functions-framework` that KADES uses (--target /
FUNCTION_TARGET, --source / FUNCTION_SOURCE, --signature-type / FUNCTION_SIGNATURE_TYPE,
--host / HOST, --port / PORT; gunicorn's THREADS and WORKERS). What it adds: logging is set
up before the function's module is imported, so an import error, a malformed or unknown
KADES_* variable and a crash of any thread are JSON lines; and gunicorn's own loggers, which
have their own handlers with a plain-text format, get the JSON formatter; and a body left
unread by an early answer is not read into memory (bound_request_reads); and the garbage
collector is tuned once the function's module is imported (kades.runtime.collector); and
idle connections are kept as long as Knative's queue-proxy keeps them (KEEPALIVE_S).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import flask
import functions_framework
from functions_framework import create_app
from functions_framework._http import create_server
from gunicorn.glogging import Logger as GunicornLogger

from kades import exitcodes
from kades.logs import JsonLineFormatter, configure_logging, log
from kades.runtime.collector import tune_garbage_collector
from kades.settings import SettingsError

logger = logging.getLogger("kades.runtime")

# How long the rest of a body left unread by an early answer (401, 404, 413) is read on,
# and dropped, so that the client still sending gets the answer rather than a reset.
DRAIN_S = 5.0
# How long gunicorn keeps an idle connection open: past Knative's queue-proxy, whose Go
# http.Transport keeps idle connections to the container 90 s (IdleConnTimeout), so that the
# proxy closes them, not gunicorn under its feet. At gunicorn's default, 2 s, a request the
# proxy sent on a connection as gunicorn closed it failed (a 502 the Broker retried; Go
# resends a POST only when nothing of it was written).
KEEPALIVE_S = 120


class JsonGunicornLogger(GunicornLogger):
    """gunicorn.error and gunicorn.access (they do not propagate) with the JSON formatter."""

    def setup(self, cfg) -> None:
        super().setup(cfg)  # also on SIGHUP: the handlers are made anew each time
        for gunicorn_logger in (self.error_log, self.access_log):
            for handler in gunicorn_logger.handlers:
                handler.setFormatter(JsonLineFormatter())


def bound_request_reads(app: flask.Flask) -> None:
    """functions-framework reads the rest of every request's body into memory after the
    answer (its after_request hook `read_request`, so that an early answer does not reset a
    client still sending): a 1 GB POST answered 413 or 401 was then read whole. Its hook is
    replaced by one that reads on in chunks, dropping them, for DRAIN_S at most; then
    gunicorn closes the connection."""
    hooks = app.after_request_funcs.get(None, [])
    hooks[:] = [drain_request if hook is functions_framework.read_request else hook
                for hook in hooks]


def drain_request(response: flask.Response) -> flask.Response:
    if not response.is_streamed:  # as read_request: a streamed answer may read on
        stream, until = flask.request.stream, time.monotonic() + DRAIN_S
        while stream.read(1 << 16) and time.monotonic() < until:
            pass
    return response


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m kades.runtime.serve",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--target", default=env.get("FUNCTION_TARGET", "handle"),
                        help="the function's name in its module (FUNCTION_TARGET)")
    parser.add_argument("--source", default=env.get("FUNCTION_SOURCE", "main.py"),
                        help="the function's main.py (FUNCTION_SOURCE)")
    parser.add_argument("--signature-type", default=env.get("FUNCTION_SIGNATURE_TYPE", "http"),
                        choices=["http", "event", "cloudevent"],
                        help="functions-framework signature (FUNCTION_SIGNATURE_TYPE)")
    parser.add_argument("--host", default=env.get("HOST", "0.0.0.0"), help="address (HOST)")
    parser.add_argument("--port", type=int, default=int(env.get("PORT", "8080")),
                        help="port (PORT; Knative sets 8080)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configure_logging(whole_process=True)
        app = create_app(args.target, args.source, args.signature_type)
        bound_request_reads(app)
    except SettingsError as error:
        log(logger, logging.CRITICAL, "invalid settings: not started", problems=error.problems)
        return exitcodes.USAGE
    tune_garbage_collector()  # before gunicorn forks its worker
    # No control socket: nothing uses gunicornc, every gunicorn of a machine would share its
    # one default path ($HOME/.gunicorn/gunicorn.ctl), and the image's user has no home.
    create_server(app, False, logger_class=JsonGunicornLogger, keepalive=KEEPALIVE_S,
                  control_socket_disable=True).run(args.host, args.port)
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
