"""JSON Schema's `pattern` as JSON Schema reads it (ECMA 262), for jsonschema's validators.

jsonschema matches a pattern with Python's `re.search`, whose `$` also matches before a
final newline; fastjsonschema, and ECMA 262, end the string there (fastjsonschema writes `$`
as `\\Z`). KADES checks a valid request or event on fastjsonschema's compiled path and an
invalid one again with jsonschema to name every problem, so the two must agree: "<mint>\\n"
passed jsonschema's `^...$` after fastjsonschema had refused it, and the answer named nothing.
"""
from __future__ import annotations

import functools
import re
from typing import Any

from jsonschema import ValidationError, validators

_DOLLAR = re.compile(r"(?<!\\)\$")  # an unescaped $, as fastjsonschema finds it


@functools.cache
def compiled(pattern: str) -> re.Pattern:
    """`pattern` compiled with each unescaped `$` as the end of the string."""
    return re.compile(_DOLLAR.sub(r"\\Z", pattern))


def _pattern(validator, pattern: str, instance: Any, schema: dict):
    if validator.is_type(instance, "string") and not compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def with_ecma_patterns(validator_class):
    """`validator_class` (a jsonschema validator) with `pattern` read as ECMA 262 reads it."""
    return validators.extend(validator_class, {"pattern": _pattern})
