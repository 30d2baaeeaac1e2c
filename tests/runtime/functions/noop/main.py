"""A function that does nothing: the runtime's own cost (tests and the benchmark baseline)."""
import functions_framework

from kades.events.catalogue import MARKET_TICK
from kades.runtime import Function, http_function

FUNCTION = Function("noop", (MARKET_TICK,), lambda event, ctx: None)
handle = functions_framework.http(http_function(FUNCTION))
