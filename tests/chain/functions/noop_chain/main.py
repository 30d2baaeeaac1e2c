"""A no-op consumer of chain blocks: the runtime's own cost (decode, validate, dedup), for bench_chain."""
import functions_framework

from kades.events.catalogue import CHAIN_BLOCK
from kades.runtime import Function, http_function

handle = functions_framework.http(http_function(Function("noop-chain", (CHAIN_BLOCK,), lambda event, ctx: None)))
