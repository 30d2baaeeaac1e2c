"""Local tooling, not part of any function: what `make run` and the test harness start.

- `vendor_timescale`: installs the prebuilt TimescaleDB from `../shared/vendor/` when present;
- `services`: local Redis (single, cluster) and PostgreSQL, `kades services`;
- `demo`: feeds the demo story to a running system and reads its detections back;
- `localrun`: `kades up` / `kades down`, every function and the broker as local processes.

Functions never import this package (tests/test_layout.py).
"""
