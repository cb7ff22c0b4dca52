"""Flat key -> value tables and their differences: the shared core of metrics and params.

Nested mappings flatten to dotted keys (`scores.f1`), lists to indexed keys (`losses.0`). Metric
files parse by extension: JSON, YAML, CSV/TSV (one row: its columns; more: `<row>.<column>`).
Imports of Pivot: nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MISSING",
    "Change",
    "change_of",
    "csv_records",
    "diff_tables",
    "flatten",
    "format_value",
    "is_number",
    "parse_metric_file",
]

MISSING = "—"
"""How an absent value is shown (no lock, no file, or no such key at that revision)."""


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}, "c": [2]}` -> `{"a.b": 1, "c.0": 2}`; a scalar at top level -> `{"": v}`."""
    if isinstance(value, Mapping):
        items: Iterable[tuple[str, Any]] = ((str(key), item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        items = ((str(index), item) for index, item in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    return flat


def _number(text: str | None) -> Any:
    if text is None:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def csv_records(text: str, *, tabs: bool = False) -> list[dict[str, Any]]:
    """The rows of a CSV (or TSV) text as records, numbers parsed."""
    rows = csv.DictReader(io.StringIO(text), delimiter="\t" if tabs else ",")
    return [{key: _number(value) for key, value in row.items()} for row in rows]


def parse_metric_file(path: str, data: bytes) -> dict[str, Any]:
    """The flattened values of a metric file; ValueError naming the problem if unreadable."""
    text = data.decode("utf-8")
    lower = path.lower()
    if lower.endswith((".yaml", ".yml")):
        import yaml

        document: Any = yaml.safe_load(text)
    elif lower.endswith((".csv", ".tsv")):
        records = csv_records(text, tabs=lower.endswith(".tsv"))
        document = records[0] if len(records) == 1 else records
    else:
        document = json.loads(text)
    return flatten(document)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def change_of(old: Any, new: Any) -> float | None:
    """`new - old` when both are numbers, else None."""
    if is_number(old) and is_number(new):
        delta = new - old
        return round(delta, 12) if isinstance(delta, float) else delta
    return None


def format_value(value: Any, precision: int = 5, *, signed: bool = False) -> str:
    """A value for a table: floats rounded to `precision` decimals, None as "—"."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value if isinstance(value, str) else json.dumps(value)
    text = f"{value:+}" if signed else str(value)
    if isinstance(value, float):
        rounded = round(value, precision)
        text = f"{rounded:+}" if signed else str(rounded)
    return text


@dataclasses.dataclass(frozen=True)
class Change:
    """One key of one file (or stage) at two revisions; `old`/`new` None when absent there."""

    group: str  # the metric file path, or the stage name for params
    key: str
    old: Any
    new: Any
    change: float | None

    @property
    def changed(self) -> bool:
        return self.old != self.new or type(self.old) is not type(self.new)


def diff_tables(
    old: Mapping[str, Mapping[str, Any] | None],
    new: Mapping[str, Mapping[str, Any] | None],
    *,
    include_unchanged: bool,
) -> list[Change]:
    """Every key of every group in `old` or `new`, sorted, with its change."""
    changes = []
    for group in sorted(set(old) | set(new)):
        before, after = old.get(group) or {}, new.get(group) or {}
        for key in sorted(set(before) | set(after)):
            a, b = before.get(key), after.get(key)
            item = Change(group, key, a, b, change_of(a, b))
            if include_unchanged or item.changed:
                changes.append(item)
    return changes
