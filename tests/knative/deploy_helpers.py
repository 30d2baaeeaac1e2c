"""Paths and small helpers of the deployment tests (a plain module: conftest names clash)."""
from __future__ import annotations

from shared_material import ROOT, SCHEMAS, in_ci  # for the tests here

OVERLAYS = ("dev", "prod")


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]
