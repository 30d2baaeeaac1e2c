"""A plain HTTP function that tells what the garbage collector of its serving process looks like
(tests/runtime/test_collector.py)."""
import gc
import json

import functions_framework


@functions_framework.http
def handle(request):
    young, *_ = gc.get_threshold()
    return json.dumps({"young_threshold": young, "frozen": gc.get_freeze_count(),
                       "this_module_frozen": gc.is_tracked(handle) and _frozen(handle)})


def _frozen(obj) -> bool:
    """Whether `obj` is out of the collector's generations: gc.get_objects() lists every object
    it tracks in its three generations, never the frozen ones."""
    return all(o is not obj for generation in range(3) for o in gc.get_objects(generation))
