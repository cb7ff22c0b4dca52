"""Matrix stages of pivot.yaml: the cross product of dimensions, exclusions, per-value overrides,
generated names (`train@linear_1`) and `${dim}` / `${dim.key}` / `${var}` substitution.

Imports of Pivot: `pivot.pipeline_yaml.marks`, `pivot.errors`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping
from typing import Any

from pivot.pipeline_yaml.marks import Location, MarkedDocument

__all__ = ["REFERENCE", "Variant", "deep_merge", "expand_stage", "substitute"]

REFERENCE = re.compile(r"\$\{\s*([^}]*?)\s*\}")
_NAME_PART = re.compile(r"^[A-Za-z0-9_.+=-]+$")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One stage a pivot.yaml entry generates: its name and its body, substituted."""

    name: str
    body: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class _Value:
    """One value of a matrix dimension: the name it gives generated names, and what `${dim}`
    and `${dim.key}` read."""

    name: str
    value: Any
    keyed: bool  # given as `{name: value}`: `${dim}` is the name, `${dim.key}` reads the value


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` laid over it; nested mappings merge, everything else is replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- substitution ---------------------------------------------------------------------------


def _lookup(
    reference: str, context: Mapping[str, Any], doc: MarkedDocument, location: Location
) -> Any:
    head, *rest = reference.split(".")
    if head not in context:
        known = ", ".join(sorted(context)) or "none"
        raise doc.error(
            location,
            f"bad substitution ${{{reference}}}: '{head}' is not a matrix dimension or a var "
            f"(known: {known}). Fix the name, or add it to `matrix:` or `vars:`",
        )
    value = context[head]
    for depth, key in enumerate(rest):
        if isinstance(value, _Value):
            value = value.value
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, Mapping) and key in value:
            value = value[key]
        else:
            so_far = ".".join([head, *rest[:depth]])
            raise doc.error(
                location,
                f"bad substitution ${{{reference}}}: {so_far} has no key '{key}' (its value is "
                f"{_shown(value)}). Use a key it has, or give the dimension mapping values",
            )
    if isinstance(value, _Value):
        return value.name if value.keyed else value.value
    return value


def _shown(value: Any) -> str:
    if isinstance(value, _Value):
        value = value.value
    if isinstance(value, Mapping):
        return f"a mapping with keys {sorted(map(str, value))}"
    return repr(value)


def _substitute_text(
    text: str, context: Mapping[str, Any], doc: MarkedDocument, location: Location
) -> Any:
    whole = REFERENCE.fullmatch(text)
    if whole:  # the whole value: keep its type (`epochs: ${size}` gives an int)
        return _lookup(whole.group(1), context, doc, location)

    def replace(match: re.Match[str]) -> str:
        value = _lookup(match.group(1), context, doc, location)
        if isinstance(value, Mapping | list):
            raise doc.error(
                location,
                f"bad substitution ${{{match.group(1)}}} inside the text {text!r}: it is "
                f"{_shown(value)}, not a single value. Refer to one key, e.g. "
                f"${{{match.group(1)}.<key>}}",
            )
        return str(value).lower() if isinstance(value, bool) else str(value)

    return REFERENCE.sub(replace, text)


def substitute(
    value: Any, context: Mapping[str, Any], doc: MarkedDocument, location: Location
) -> Any:
    """`value` with every `${...}` in its strings (and mapping keys) replaced from `context`."""
    if isinstance(value, str):
        return _substitute_text(value, context, doc, location) if "${" in value else value
    if isinstance(value, Mapping):
        return {
            (
                substitute(key, context, doc, (*location, key)) if isinstance(key, str) else key
            ): substitute(item, context, doc, (*location, key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [substitute(item, context, doc, (*location, i)) for i, item in enumerate(value)]
    return value


# --- the matrix -----------------------------------------------------------------------------


def _name_part(value: Any, doc: MarkedDocument, location: Location) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, Mapping | list) or value is None or not _NAME_PART.match(text):
        raise doc.error(
            location,
            f"matrix value {value!r} cannot be part of a stage name (use letters, digits and "
            "_ . + = -). For structured values give each a `name` key, or write the dimension "
            "as a mapping of name -> value, e.g. `model: {small: {lr: 0.1}, large: {lr: 0.01}}`",
        )
    return text


def _list_value(value: Any, doc: MarkedDocument, location: Location) -> _Value:
    """A list item: a scalar, or a mapping whose `name` key names it (`{name: a, lr: 0.1}`)."""
    if isinstance(value, Mapping) and "name" in value:
        return _Value(_name_part(value["name"], doc, (*location, "name")), value, keyed=True)
    return _Value(_name_part(value, doc, location), value, keyed=False)


def _dimension(name: Any, values: Any, doc: MarkedDocument, where: Location) -> list[_Value]:
    if name in ("exclude", "include", "overrides"):
        raise doc.error(
            where,
            f"'{name}' is not a matrix dimension: write `{name}:` next to `matrix:` (at the "
            "stage level), not inside it",
        )
    if isinstance(values, Mapping) and values:
        return [
            _Value(_name_part(key, doc, (*where, key)), value, keyed=True)
            for key, value in values.items()
        ]
    if isinstance(values, list) and values:
        return [_list_value(value, doc, (*where, i)) for i, value in enumerate(values)]
    raise doc.error(
        where,
        f"matrix dimension '{name}' must list its values (`{name}: [a, b]`) or map names to "
        f"values (`{name}: {{a: ..., b: ...}}`), got {values!r}",
    )


def _matches(
    condition: Any, chosen: Mapping[str, _Value], doc: MarkedDocument, where: Location
) -> bool:
    if not isinstance(condition, Mapping) or not condition:
        raise doc.error(
            where,
            f"expected a mapping of dimension -> value, e.g. {{model: forest}}; got {condition!r}",
        )
    for dim, wanted in condition.items():
        if dim not in chosen:
            raise doc.error(
                (*where, dim),
                f"'{dim}' is not a dimension of this matrix (dimensions: {', '.join(chosen)})",
            )
        value = chosen[dim]
        if str(wanted) != value.name and wanted != value.value:
            return False
    return True


def _overrides(body: Mapping[str, Any], doc: MarkedDocument, where: Location) -> list[Any]:
    items = body.get("overrides", [])
    if not isinstance(items, list):
        raise doc.error((*where, "overrides"), "overrides must be a list of {when: ..., ...}")
    for index, item in enumerate(items):
        at = (*where, "overrides", index)
        if not isinstance(item, Mapping) or "when" not in item:
            raise doc.error(
                at, "each override needs `when: {dimension: value}` and the keys it changes"
            )
        unknown = set(item) - {"when", "params", "deps", "outs", "metrics", "plots", "cmd"}
        if unknown:
            raise doc.error(
                (*at, sorted(unknown)[0]),
                f"unknown key '{sorted(unknown)[0]}' in an override; it may set params, deps, "
                "outs, metrics, plots or cmd",
            )
    return items


def _combinations(
    matrix: Mapping[str, Any], doc: MarkedDocument, where: Location
) -> list[dict[str, _Value]]:
    dims = {
        dim: _dimension(dim, values, doc, (*where, "matrix", dim)) for dim, values in matrix.items()
    }
    return [dict(zip(dims, combo)) for combo in itertools.product(*dims.values())]


def expand_stage(
    base: str, body: Mapping[str, Any], variables: Mapping[str, Any], doc: MarkedDocument
) -> list[Variant]:
    """The stages one pivot.yaml entry stands for: itself, or one per matrix combination."""
    where: Location = ("stages", base)
    plain = {k: v for k, v in body.items() if k not in ("matrix", "exclude", "overrides")}
    matrix = body.get("matrix")
    if matrix is None:
        for key in ("exclude", "overrides"):
            if key in body:
                raise doc.error((*where, key), f"'{key}' only applies to a stage with `matrix:`")
        return [Variant(base, substitute(plain, variables, doc, where))]
    if not isinstance(matrix, Mapping) or not matrix:
        raise doc.error(
            (*where, "matrix"), "matrix must map each dimension to its values, e.g. `model: [a, b]`"
        )
    excludes = body.get("exclude", [])
    if not isinstance(excludes, list):
        raise doc.error((*where, "exclude"), "exclude must be a list of {dimension: value}")
    overrides = _overrides(body, doc, where)
    used = [False] * len(excludes)
    variants: list[Variant] = []
    names: dict[str, dict[str, _Value]] = {}
    for chosen in _combinations(matrix, doc, where):
        hits = [_matches(e, chosen, doc, (*where, "exclude", i)) for i, e in enumerate(excludes)]
        used = [u or hit for u, hit in zip(used, hits)]
        if any(hits):
            continue
        name = f"{base}@{'_'.join(value.name for value in chosen.values())}"
        if name in names:
            raise doc.error(
                (*where, "matrix"),
                f"duplicate generated stage name '{name}' (from {_describe(names[name])} and "
                f"{_describe(chosen)}); make the values' names distinct",
            )
        names[name] = chosen
        merged: dict[str, Any] = dict(plain)
        for index, item in enumerate(overrides):
            if _matches(item["when"], chosen, doc, (*where, "overrides", index, "when")):
                merged = deep_merge(merged, {k: v for k, v in item.items() if k != "when"})
        context = {**variables, **chosen}
        variants.append(Variant(name, substitute(merged, context, doc, where)))
    unused = next((i for i, u in enumerate(used) if not u), None)
    if unused is not None:
        raise doc.error(
            (*where, "exclude", unused),
            f"exclude entry {excludes[unused]!r} matches no combination of the matrix; fix the "
            "dimension or value (values are matched by name)",
        )
    if not variants:
        raise doc.error((*where, "exclude"), "exclude removes every combination of the matrix")
    return variants


def _describe(chosen: Mapping[str, _Value]) -> str:
    return "{" + ", ".join(f"{dim}: {value.name}" for dim, value in chosen.items()) + "}"
