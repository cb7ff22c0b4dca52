"""The values a walk over a stage's code is made of: items to visit, nodes found, scopes of names.

Imports nothing of ours but sibling modules.
"""

from __future__ import annotations

import dataclasses
import dis
import hashlib
import sys
import types
from collections.abc import Iterator, Mapping

from pivot.fingerprint.origin import is_pivot_name, module_file, top_level_name
from pivot.fingerprint.syntax import LocalImport

__all__ = [
    "Collector",
    "Item",
    "Node",
    "Scope",
    "digest_of",
    "function_entry_name",
    "global_names",
    "module_path",
    "package_of",
]


def digest_of(*parts: str) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(part.encode("utf-8", "surrogatepass"))
        hasher.update(b"\x00")
    return hasher.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class Item:
    """Something to fingerprint: kind is stage|func|class|method|value|module|extra."""

    kind: str
    obj: object
    owner: str = ""
    name: str = ""

    def key(self) -> tuple[str, int, str, str]:
        return (self.kind, id(self.obj), self.owner, self.name)


@dataclasses.dataclass(frozen=True)
class Node:
    """One manifest entry and what computing it read and found."""

    entry: str
    digest: str
    location: tuple[str, int] | None
    files: frozenset[str]
    children: tuple[Item, ...]
    packages: frozenset[str]
    warnings: tuple[str, ...]
    links: tuple[Item, ...] = ()
    failed: bool = False  # building it raised: usable, but not worth caching


@dataclasses.dataclass
class Collector:
    """What building one node found: items to visit, library packages, files read, warnings."""

    children: list[Item] = dataclasses.field(default_factory=list)
    packages: set[str] = dataclasses.field(default_factory=set)
    files: set[str] = dataclasses.field(default_factory=set)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def library(self, module_name: object) -> None:
        if isinstance(module_name, str) and module_name and not is_pivot_name(module_name):
            self.packages.add(top_level_name(module_name))

    def node(
        self,
        entry: str,
        digest: str,
        location: tuple[str, int] | None,
        links: tuple[Item, ...] = (),
        *,
        failed: bool = False,
    ) -> Node:
        return Node(
            entry=entry,
            digest=digest,
            location=location,
            files=frozenset(self.files),
            children=tuple(self.children),
            packages=frozenset(self.packages),
            warnings=tuple(dict.fromkeys(self.warnings)),
            links=links,
            failed=failed,
        )


@dataclasses.dataclass(frozen=True)
class Scope:
    """How names read by one piece of code resolve."""

    namespace: Mapping[str, object]
    module_name: str
    package: str
    closure: Mapping[str, object] = dataclasses.field(default_factory=dict)
    imports: Mapping[str, LocalImport] = dataclasses.field(default_factory=dict)
    global_names: frozenset[str] | None = None  # names the code reads as globals; None: any


def function_entry_name(func: types.FunctionType) -> str:
    """`module.qualname` of the code (not of `__qualname__`, which `functools.wraps` copies)."""
    module_name = func.__globals__.get("__name__") or func.__module__
    return f"{module_name}.{func.__code__.co_qualname}"


def global_names(func_code: types.CodeType) -> frozenset[str]:
    """Names a code object (and the code nested in it) reads as globals."""
    names: set[str] = set()
    pending = [func_code]
    while pending:
        current = pending.pop()
        names.update(_global_loads(current))
        pending.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return frozenset(names)


def _global_loads(func_code: types.CodeType) -> Iterator[str]:
    """The names of the global loads of one code object, straight from its bytecode (what
    `dis.get_instructions` reports as their `argval`, without building every instruction).

    `co_code` holds (opcode, arg) pairs, inline caches zeroed (opcode 0, never a load);
    EXTENDED_ARG prefixes widen the next arg; since 3.11 LOAD_GLOBAL's arg is the name
    index shifted left once (the low bit asks for a NULL push)."""
    raw = func_code.co_code
    names = func_code.co_names
    extended = 0
    for offset in range(0, len(raw), 2):
        opcode = raw[offset]
        arg = raw[offset + 1] | extended
        if opcode == _EXTENDED_ARG:
            extended = arg << 8
            continue
        extended = 0
        if opcode == _LOAD_GLOBAL:
            yield names[arg >> 1]
        elif opcode in _NAME_LOADS:
            yield names[arg]


_EXTENDED_ARG = dis.EXTENDED_ARG
_LOAD_GLOBAL = dis.opmap["LOAD_GLOBAL"]
_NAME_LOADS = frozenset(
    dis.opmap[name] for name in ("LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS") if name in dis.opmap
)


def package_of(module_name: str) -> str:
    module = sys.modules.get(module_name)
    package = getattr(module, "__package__", None)
    if isinstance(package, str):
        return package
    return module_name if hasattr(module, "__path__") else module_name.rpartition(".")[0]


def module_path(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    return module_file(module) if isinstance(module, types.ModuleType) else None
