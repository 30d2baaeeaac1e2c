"""Typed values from KADES_* environment variables, and the error that names every bad one.

Below kades.settings and kades.chain.thresholds, which both read their dataclasses' fields
through `fields_from_env`.
"""
from __future__ import annotations

import math
from dataclasses import field, fields
from typing import Mapping

from kades.errors import KadesError


class SettingsError(KadesError, ValueError):
    """KADES_* variables that cannot be read: every problem, each naming its variable."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _expected(variable: str, kind: type) -> str:
    """What `variable` should hold, in words: its type and the unit its name carries."""
    unit = " of seconds" if variable.endswith("_S") else (
        " of bytes" if variable.endswith("_BYTES") else "")
    if kind is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    return ("a whole number" if kind is int else "a number") + unit


def parse_value(variable: str, raw: str, kind: type):
    """`raw` as `kind` (int, float, bool or str); SettingsError naming `variable` if it is not."""
    if kind is str:
        return raw
    text = raw.strip().lower()
    if kind is bool and text in _TRUE + _FALSE:
        return text in _TRUE
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    raise SettingsError([f"{variable}={raw!r}: expected {_expected(variable, kind)}"])


def bounded(default, *, minimum=None, above=None, maximum=None):
    """A dataclass field whose value from the environment must be at least `minimum`, above
    `above` and at most `maximum` (`fields_from_env` names a value outside)."""
    limits = {"minimum": minimum, "above": above, "maximum": maximum}
    return field(default=default, metadata={k: v for k, v in limits.items() if v is not None})


def out_of_range(value, metadata: Mapping) -> str | None:
    """Which bound of a `bounded` field `value` misses, in words ("of at least 1"), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if "minimum" in metadata and value < metadata["minimum"]:
        return f"of at least {metadata['minimum']}"
    if "above" in metadata and value <= metadata["above"]:
        return f"above {metadata['above']}"
    if "maximum" in metadata and value > metadata["maximum"]:
        return f"of at most {metadata['maximum']}"
    return None


def env_int(env: Mapping[str, str], variable: str, default: int) -> int:
    """A whole number read from `variable` (a command's default), `default` when unset;
    SettingsError naming it when malformed: one line and exit 2, not a traceback."""
    return parse_value(variable, env[variable], int) if variable in env else default


def fields_from_env(cls, env: Mapping[str, str], prefix: str) -> dict:
    """The fields of dataclass `cls` that `env` sets as PREFIX + NAME (upper case), each
    typed as its default: int, float, bool (true/1/yes/on, false/0/no/off) or str, one of
    the field's metadata["choices"] when it has them (any case). Every malformed value is
    reported in one SettingsError."""
    values, problems = {}, []
    for spec in fields(cls):
        variable = prefix + spec.name.upper()
        raw = env.get(variable)
        if raw is None:
            continue
        try:
            value = parse_value(variable, raw, type(spec.default))
        except SettingsError as error:
            problems.extend(error.problems)
            continue
        choices = spec.metadata.get("choices")
        if choices and value.strip().upper() not in choices:
            problems.append(f"{variable}={raw!r}: expected one of {', '.join(choices)}")
            continue
        if bound := out_of_range(value, spec.metadata):
            problems.append(f"{variable}={raw!r}: expected {_expected(variable, type(value))} {bound}")
            continue
        values[spec.name] = value
    if problems:
        raise SettingsError(problems)
    return values
