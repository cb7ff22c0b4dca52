"""Nodes for data: a module-level value, a user module used as a value, a caller's extra object.

Values are fingerprinted from their canonical text (`values`), code they hold by name (their
code gets nodes of its own). Imports nothing of ours but sibling modules.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from pivot.fingerprint import syntax
from pivot.fingerprint.model import (
    Collector,
    Item,
    Node,
    Scope,
    digest_of,
    module_path,
    package_of,
)
from pivot.fingerprint.origin import is_pivot_name, module_file

if TYPE_CHECKING:
    from pivot.fingerprint.reach import Reach

__all__ = ["effects_node", "extra_node", "module_node", "value_node"]


def module_node(reach: Reach, item: Item) -> Node:
    """A user module used as a value (not `module.attr`): all of it counts."""
    module = item.obj
    assert isinstance(module, types.ModuleType)
    found = Collector()
    path = module_file(module)
    found.files.update(reach.sources.closure(module.__name__))
    parsed = reach.sources.syntax(path) if path is not None else None
    text = syntax.module_text(parsed.tree) if parsed is not None else "nosource"
    bound: list[str] = []
    for name, value in list(vars(module).items()):
        if name.startswith("__") and name.endswith("__"):
            continue
        target = reach.describe(value, found)
        if target is None:
            found.children.append(Item("value", value, module.__name__, name))
            target = f"const:{module.__name__}.{name}"
        bound.append(f"{name}={target}")
    digest = digest_of(text, *sorted(bound))
    return found.node(f"module:{module.__name__}", digest, (path, 1) if path else None)


def effects_node(reach: Reach, item: Item) -> Node:
    """What a user module does at import time besides defining: calls, loops, attribute and
    item assignments (`Base.PRECISION = settings.DIGITS`), with the names they read."""
    module = item.obj
    assert isinstance(module, types.ModuleType)
    found = Collector()
    name = module.__name__
    statements = reach.effects(module)
    found.files.update(reach.sources.closure(name))
    scope = Scope(namespace=vars(module), module_name=name, package=package_of(name))
    chains = [chain for s in statements for chain in s.chains]
    bound = reach.bindings(scope, chains, found, call_time=False)
    strings = sorted({n for s in statements for n in s.strings})
    bound |= reach.string_bindings(scope, strings, found)
    text = "|".join(s.text for s in statements)
    path = module_file(module)
    line = statements[0].line if statements else 0
    return found.node(
        f"effects:{name}", digest_of(text, *sorted(bound)), (path, line) if path else None
    )


def value_node(reach: Reach, item: Item) -> Node:
    found = Collector()
    entry = f"const:{item.owner}.{item.name}"
    found.files.update(reach.sources.closure(item.owner))
    reach.module_effects(item.owner, found)
    text = reach.encode(item.obj, found, f"global {item.owner}.{item.name}")
    path = module_path(item.owner)
    facts = reach.sources.facts(path) if path is not None else None
    line = facts.bindings.get(item.name, 0) if facts is not None else 0
    return found.node(entry, digest_of(text), (path, line) if path else None)


def extra_node(reach: Reach, item: Item) -> Node:
    """A caller-given object (a loader instance, a params class): its values plus its class code."""
    found = Collector()
    obj = item.obj
    cls = obj if isinstance(obj, type) else type(obj)
    label = f"{item.name} ({cls.__qualname__})"
    text = [reach.encode(obj, found, label)]
    if isinstance(obj, type):
        text.append(reach.encode(_field_defaults(obj), found, f"a default of {label}"))
    location: tuple[str, int] | None = None
    links: tuple[Item, ...] = ()
    if is_pivot_name(cls.__module__):
        text.append(f"pivot=={reach.origins.pivot_version()}")
        location = _library_location(reach, cls, found)
    elif reach.is_user_class(cls):
        links = (Item("class", cls),)
    return found.node(item.name, digest_of(*text), location, links)


def _field_defaults(cls: type) -> list[tuple[str, object, object]]:
    """Defaults of a pydantic model's fields (a StageParams class), computed values included."""
    fields = cls.__dict__.get("__pydantic_fields__") or getattr(cls, "model_fields", None)
    if not isinstance(fields, dict):
        return []
    out = []
    for name, info in fields.items():
        default = getattr(info, "default", None)
        if type(default).__name__ == "PydanticUndefinedType":
            default = "<required>"
        out.append((name, default, getattr(info, "default_factory", None)))
    return out


def _library_location(reach: Reach, cls: type, found: Collector) -> tuple[str, int] | None:
    """Where a Pivot built-in is defined; its file is a source, so upgrades are noticed."""
    module = sys.modules.get(cls.__module__)
    path = module_file(module) if isinstance(module, types.ModuleType) else None
    if path is None:
        return None
    found.files.add(path)
    facts = reach.sources.facts(path)
    return path, (facts.lines.get(cls.__qualname__, 0) if facts is not None else 0)
