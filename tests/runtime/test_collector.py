"""A function's process, started as the image starts it (`python -m kades.runtime.serve`), has
its collector tuned once the module is imported (kades.runtime.collector,
docs/performance.md "The garbage collector")."""
from __future__ import annotations

import re

import httpx
import pytest

from runtimetest import start_function, stop, wait_for_line
from kades.runtime.collector import YOUNG_GENERATION_THRESHOLD


@pytest.mark.slow
def test_the_served_process_freezes_what_its_import_made_and_collects_young_objects_less_often(tmp_path):
    log_path = tmp_path / "collector.log"
    process = start_function("collector", log_path, GUNICORN_LOG_LEVEL="info")
    try:
        listening = wait_for_line(log_path, lambda l: "Listening at" in l["message"], process=process)
        url = re.search(r"http://[\d.]+:\d+", listening["message"]).group(0)
        seen = httpx.get(url + "/", timeout=10).json()
    finally:
        stop(process)
    assert seen["young_threshold"] == YOUNG_GENERATION_THRESHOLD != 700  # CPython's default
    # the imported modules (flask, gunicorn, kades, ...): tens of thousands of objects
    assert seen["frozen"] > 10_000
    assert seen["this_module_frozen"] is True
