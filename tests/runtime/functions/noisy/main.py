"""Makes every kind of log line on demand, by the `source` of its tick: "crash" raises,
"database" uses the database (which the log test points at a closed port), "warn" calls
warnings.warn, "thread" crashes a thread, "url" logs a connection URL with its password."""
import logging
import threading
import warnings

import functions_framework

from kades.events.catalogue import MARKET_TICK
from kades.logs import log
from kades.runtime import Function, http_function

logger = logging.getLogger("kades.tests.noisy")


def make_noise(event, ctx):
    source = event.data["ticks"][0].get("source")
    if source == "crash":
        raise RuntimeError("forced crash for the log test")
    if source == "database":
        with ctx.db() as conn:
            conn.execute("SELECT 1")
    if source == "warn":
        warnings.warn("forced warnings.warn for the log test", UserWarning)
    if source == "thread":
        threading.Thread(target=lambda: 1 / 0, name="doomed").start()
    if source == "url":
        log(logger, logging.WARNING, f"connecting to {ctx.settings.database_url}",
            url=ctx.settings.database_url)


FUNCTION = Function("noisy", (MARKET_TICK,), make_noise, uses_database=True)
handle = functions_framework.http(http_function(FUNCTION))
