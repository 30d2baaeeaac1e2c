"""Every metric KADES declares (kades/metrics.py, the one place) is listed in
docs/operations.md, so the operations guide stays true to what /metrics serves."""
from __future__ import annotations

from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from kades import metrics

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def served_names() -> set[str]:
    """The names /metrics serves (a Counter's declared name gets `_total`)."""
    return {metric._name + ("_total" if isinstance(metric, Counter) else "")
            for metric in vars(metrics).values()
            if isinstance(metric, (Counter, Gauge, Histogram))}


def test_every_declared_metric_is_in_the_operations_guide():
    names = served_names()
    assert "kades_events_total" in names and "kades_in_flight" in names
    guide = GUIDE.read_text()
    assert sorted(name for name in names if f"`{name}" not in guide) == []
