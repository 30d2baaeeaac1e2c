"""JSON-lines logging on stdout, with the event being handled; configured once, never at import.

The handler sits on the root logger, so every library's records (psycopg's pool, werkzeug,
gunicorn through kades.runtime.serve, Flask's tracebacks) come out as JSON lines too, and a
URL's password (or key) never reaches a log line.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from datetime import datetime, timezone

from kades.cliutil import redact_text
from kades.settings import settings

current_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_event_id", default=None)
_handler: logging.Handler | None = None


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event_id = current_event_id.get()
        if event_id:
            line["event_id"] = event_id
        for key, value in getattr(record, "fields", {}).items():
            line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for key, value in line.items():  # a driver's error may quote a connection URL
            if isinstance(value, str):
                line[key] = redact_text(value)
        return json.dumps(line, default=str)


def configure_logging(level: str | None = None, *, whole_process: bool = False) -> None:
    """Send every logger to stdout as JSON lines: KADES's own from `level` (default: the
    KADES_LOG_LEVEL setting) up, other libraries' from WARNING up.

    Idempotent: the handler is installed once, a later call only sets the level.
    `whole_process`: uncaught exceptions (of any thread) and `warnings.warn` become JSON
    lines too; for a process's entry point, not for code imported into a test run.
    """
    global _handler
    if _handler is None:
        _handler = logging.StreamHandler(sys.stdout)
        _handler.setFormatter(JsonLineFormatter())
        logging.getLogger().addHandler(_handler)
        logging.getLogger("kades").propagate = True
    if whole_process:
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread
        logging.captureWarnings(True)
    if level is None:  # read after the handler exists: what reading reports is JSON too
        level = settings().log_level
    kades_level = logging.getLevelName(level.upper())
    logging.getLogger("kades").setLevel(kades_level)
    logging.getLogger().setLevel(max(logging.WARNING, kades_level))


def _log_uncaught(kind, value, traceback) -> None:
    logging.getLogger("kades.process").critical(
        f"uncaught {kind.__name__}: {value}", exc_info=(kind, value, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # what threading's own hook ignores too
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("kades.process").critical(
        f"uncaught {args.exc_type.__name__} in thread {name}: {args.exc_value}",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def log(logger: logging.Logger, level: int, message: str, **fields) -> None:
    """Log `message` with extra structured fields."""
    logger.log(level, message, extra={"fields": fields})
