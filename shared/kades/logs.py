"""JSON-lines logging on stdout, with the event being handled; configured once, never at import."""
from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import datetime, timezone

current_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_event_id", default=None)
_configured = False


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
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the `kades` loggers to stdout as JSON lines (idempotent)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger("kades")
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    _configured = True


def log(logger: logging.Logger, level: int, message: str, **fields) -> None:
    """Log `message` with extra structured fields."""
    logger.log(level, message, extra={"fields": fields})
