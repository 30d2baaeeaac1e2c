"""Reading recorded transactions, the records expected of them (expected/*.json), and
projecting normalised records onto the fields a test checks."""
from __future__ import annotations

import json
from pathlib import Path

EXPECTED = Path(__file__).resolve().parent / "expected"


def load(folder: Path, name: str) -> dict:
    document = json.loads((folder / name).read_text())
    return document[0] if isinstance(document, list) else document


def expected(name: str) -> dict[str, dict[str, list]]:
    """expected/`name`: per recorded file, per kind, the projected records it must give."""
    return json.loads((EXPECTED / name).read_text())


def projected(records: dict[str, list], keep: dict[str, tuple]) -> dict[str, list]:
    """Per kind, each record's `keep` fields (a missing `native` is False, others None)."""
    return {kind: [{field: r.get(field, False if field == "native" else None) for field in keep[kind]}
                   for r in rows]
            for kind, rows in records.items() if rows}
