"""Consumes every catalogue type and does nothing: the runtime's own checks are what is fuzzed."""
import functions_framework

from kades.events.catalogue import SCHEMAS
from kades.runtime import Function, http_function


def accept(event, ctx):
    return None


FUNCTION = Function("accept-all", tuple(SCHEMAS), accept)
handle = functions_framework.http(http_function(FUNCTION))
