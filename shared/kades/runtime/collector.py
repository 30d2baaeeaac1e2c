"""The garbage collector of a function's process (kades.runtime.serve), tuned once the
function's module is imported."""
from __future__ import annotations

import gc

# The collector's young-generation threshold in a function's process (CPython's default: 700
# allocations). A 2,000-record chain block allocates ~100,000 objects; at 700 the collector ran
# ~130 times a block and now and then a full pass over every object of the process, ~15 % of
# the block's CPU. At 10,000 it still ran about once a block over tokens with history, in the
# middle of it, when the block's documents (lists of hundreds of rows each) were alive and each
# had to be walked: 13 ms of a 90 ms block. Past what one event holds alive at once, it runs
# over what events left behind only (docs/performance.md, "The garbage collector").
YOUNG_GENERATION_THRESHOLD = 100_000


def tune_garbage_collector() -> None:
    """Once the process has imported what it runs, before it serves: what the imports made and
    left alive (modules, classes, settings, compiled models) is moved out of the collector's
    sight (`gc.freeze`), so that a full collection no longer walks it, and young collections
    run every YOUNG_GENERATION_THRESHOLD allocations. Cycles made while serving are still
    collected, only less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
