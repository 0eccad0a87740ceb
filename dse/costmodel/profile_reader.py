"""Reading the fields of one profile file: each a checked value, every error naming the
file, the dotted field and the fix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from dse.costmodel.devices import FORMAT_HINT, SOURCE_STATUS, physical_bound_error
from dse.costmodel.units import BASE_UNITS, Dimension, parse_quantity, toml_type
from dse.errors import InputError

STATUS_RE = re.compile(r"^[SDUEM](?:\s*/\s*[SDUEM])*\s*:\s*\S")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

Bound = Literal["positive", "nonnegative", "fraction"]


def dotted(prefix: str, key: str) -> str:
    """The dotted name of ``key`` inside the table ``prefix`` (the top level: ``""``)."""
    return f"{prefix}.{key}" if prefix else key


class Reader:
    """Reads fields of one profile file, naming the file and the dotted field on error.

    It records the dotted name of every numeric field it reads, so that the
    ``[sources]`` check can require a citation for each.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.numeric: list[str] = []

    def error(self, field_name: str, reason: str, fix: str | None = None) -> InputError:
        return InputError(self.where, field_name, reason, fix)

    def keys(
        self,
        table: Mapping[str, Any],
        prefix: str,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> None:
        """Refuse unknown keys and missing required keys of one table."""
        allowed = required + optional
        place = f" in [{prefix}]" if prefix else " at the top level"
        for key in table:
            if key not in allowed:
                raise self.error(
                    dotted(prefix, key), "unknown key", f"allowed{place}: {', '.join(allowed)}"
                )
        for key in required:
            if key not in table:
                raise self.error(
                    dotted(prefix, key),
                    "missing required field",
                    f"add {key}{place}; {FORMAT_HINT}",
                )

    def table(
        self, parent: Mapping[str, Any], prefix: str, key: str, *, optional: bool = False
    ) -> dict[str, Any]:
        name = dotted(prefix, key)
        if key not in parent:
            if optional:
                return {}
            raise self.error(name, "missing required table", f"add [{name}]; {FORMAT_HINT}")
        value = parent[key]
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {type_name(value)}", FORMAT_HINT)
        return value

    def string(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        *,
        choices: tuple[str, ...] | None = None,
    ) -> str:
        name = dotted(prefix, key)
        if key not in table:
            fix = f"one of: {', '.join(choices)}" if choices else FORMAT_HINT
            raise self.error(name, "missing required field", fix)
        value = table[key]
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {type_name(value)}")
        if not value.strip():
            raise self.error(name, "must not be empty")
        if choices is not None and value not in choices:
            raise self.error(name, f"{value!r} is not allowed", f"one of: {', '.join(choices)}")
        return value

    def integer(self, table: Mapping[str, Any], prefix: str, key: str, *, minimum: int) -> int:
        name = dotted(prefix, key)
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {type_name(value)}")
        if value < minimum:
            raise self.error(name, f"must be at least {minimum}, got {value}")
        return value

    def quantity(
        self,
        table: Mapping[str, Any],
        prefix: str,
        key: str,
        dimension: Dimension,
        bound: Bound,
    ) -> float:
        """A number with its unit converted to SI, checked against ``bound``."""
        name = dotted(prefix, key)
        value = parse_quantity(table[key], dimension, where=self.where, field=name)
        if bound == "positive" and not value > 0:
            raise self.error(name, f"must be positive, got {table[key]!r}")
        if bound == "nonnegative" and value < 0:
            raise self.error(name, f"must not be negative, got {table[key]!r}")
        if bound == "fraction" and not 0 < value <= 1:
            raise self.error(
                name, f"must lie in (0, 1], got {table[key]!r}", "a fraction of peak, e.g. 0.3"
            )
        bound_error = physical_bound_error(name, value)
        if bound_error:
            raise self.error(
                name,
                f"{table[key]!r}: {bound_error}",
                f"check the figure and its unit; a bare number is in {BASE_UNITS[dimension]}",
            )
        self.numeric.append(name)
        return value

    def header(self, data: Mapping[str, Any]) -> tuple[str, int, str, str]:
        """The fields every profile has: name, version, description, source."""
        name = self.string(data, "", "name")
        if not NAME_RE.match(name):
            raise self.error(
                "name", f"{name!r} is not a plain name", "letters, digits, '.', '_' and '-'"
            )
        version = self.integer(data, "", "version", minimum=1)
        return name, version, self.string(data, "", "description"), self.string(data, "", "source")

    def sources(self, data: Mapping[str, Any], *, tables: tuple[str, ...]) -> dict[str, str]:
        """Check ``[sources]``: one cited, status-marked entry for every numeric field.

        An entry may name a numeric field ("memory.bandwidth") or, for the per-dtype and
        per-kind tables in ``tables``, the whole table ("compute.efficiency").
        """
        flat = _flatten(self.table(data, "", "sources"), "")
        allowed = sorted(set(self.numeric) | set(tables))
        for key, text in flat.items():
            name = f'sources."{key}"'
            if key not in allowed:
                raise self.error(
                    name,
                    "names no numeric field of this profile",
                    f"keys must be one of: {', '.join(allowed)}",
                )
            if not isinstance(text, str) or not text.strip():
                raise self.error(name, "expected a non-empty citation string")
            if not STATUS_RE.match(text):
                letters = "; ".join(f"{k} = {v}" for k, v in SOURCE_STATUS.items())
                raise self.error(
                    name,
                    "citation does not start with its status",
                    f"begin it with S:, D:, U:, E: or M: ({letters})",
                )
        for numeric in self.numeric:
            parents = [numeric.rsplit(".", i)[0] for i in range(1, numeric.count(".") + 1)]
            if numeric not in flat and not any(p in tables and p in flat for p in parents):
                raise self.error(
                    numeric,
                    "has no entry in [sources]",
                    f'add "{numeric}" = "S: <where the figure comes from>" to [sources]',
                )
        return flat


def _flatten(table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``[sources]`` keys as dotted strings, whether quoted ("a.b") or nested (a.b)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = dotted(prefix, key)
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


_SCALAR_NAMES = {str: "a string", int: "an integer", float: "a number"}


def type_name(value: object) -> str:
    """A value's type for an error about a profile field: ``nothing`` for a missing one,
    the scalar kinds by name, else as :func:`~dse.costmodel.units.toml_type` says."""
    if value is None:
        return "nothing"
    return _SCALAR_NAMES.get(type(value)) or toml_type(value)
