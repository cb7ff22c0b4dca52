"""What fingerprinting reads from a source file's syntax, as small values kept between runs.

A file's facts (its imports, top-level binding lines, import-time effects, what importing it
runs, and per function the canonical text and the names it reads) depend only on its content, so they are stored with the
file's (mtime_ns, size) and reused while it is unchanged: a module is not parsed again because
a module it imports changed, only the names its code reads are resolved again.
Imports nothing of ours but the sibling `syntax` module.
"""

from __future__ import annotations

import ast
import dataclasses
import marshal
import types
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pivot.fingerprint import syntax
from pivot.fingerprint.syntax import Chain, ImportRef, LocalImport, ModuleSyntax
from pivot.fingerprint.values import short_digest

__all__ = [
    "DefinitionFacts",
    "DefinitionReads",
    "EffectFacts",
    "FunctionFacts",
    "ModuleFacts",
    "SurfaceFacts",
    "definition_reads",
    "function_facts",
    "import_uses",
    "module_facts",
    "module_uses",
    "pack",
    "pack_uses",
    "unpack",
    "unpack_uses",
]

FORMAT = 4  # bump whenever what the facts hold, or how they are computed, changes


@dataclasses.dataclass(frozen=True)
class DefinitionReads:
    """The names one def or lambda reads: where it is defined (`outer`: decorators, defaults),
    in its hints, when it is called (`body`), in strings a library evaluates, by literal import;
    and the names imports inside it bind."""

    outer: tuple[Chain, ...]
    annotations: tuple[Chain, ...]
    body: tuple[Chain, ...]
    strings: tuple[str, ...]
    literal_imports: tuple[str, ...]
    local_imports: tuple[LocalImport, ...]  # names bound by imports inside it
    calls: tuple[Chain, ...] = ()  # what `outer` and `annotations` call (`syntax.COMPUTED`...)


@dataclasses.dataclass(frozen=True)
class DefinitionFacts:
    """One def or lambda: where it is (`first_line` counts decorators, as `co_firstlineno`
    does; `span` is (line, column, end line, end column)), whether it is decorated, its
    canonical text with and without hints, what it reads."""

    first_line: int
    line: int
    span: tuple[int, int, int, int]
    decorated: bool
    text: str
    bare_text: str
    reads: DefinitionReads


@dataclasses.dataclass(frozen=True)
class FunctionFacts:
    """A function's definitions (one or more with its qualified name): their canonical text,
    whether hints count (`hints`), the line of the first, what each reads, the imports inside."""

    text: str
    hints: bool
    line: int
    reads: tuple[DefinitionReads, ...]
    local_imports: tuple[LocalImport, ...]


@dataclasses.dataclass(frozen=True)
class EffectFacts:
    """One module-level statement that acts: its text, line, the names it reads, and the root
    names of its calls when it is only calls (Pivot's own objects' calls do not count)."""

    text: str
    line: int
    chains: tuple[Chain, ...]
    strings: tuple[str, ...]
    call_roots: tuple[str, ...] | None


@dataclasses.dataclass(frozen=True)
class SurfaceFacts:
    """The names module-level statements use while the module is imported, by how (see
    `syntax.SurfaceNames`); `call_roots`, when not None, are the root names of the calls
    those statements are only made of."""

    calls: tuple[Chain, ...]
    results: tuple[Chain, ...]
    named: tuple[Chain, ...]
    stores: tuple[Chain, ...]
    reads: tuple[Chain, ...]
    dynamic: bool
    call_roots: tuple[str, ...] | None


@dataclasses.dataclass
class ModuleFacts:
    """A source file's facts; `functions` holds every def and lambda by qualified name;
    `surface` is a digest of what importing the file runs (all but the bodies of its defs),
    `surface_names` what its module-level statements other than defs use on import (what a
    def statement uses, its decorators, defaults and hints, is in its `DefinitionReads`)."""

    imports: tuple[ImportRef, ...]
    bindings: dict[str, int]  # top-level name -> line of its last binding
    lines: dict[str, int]  # qualified name -> line of its first definition
    effects: tuple[EffectFacts, ...]
    functions: Mapping[str, tuple[DefinitionFacts, ...]]
    surface: str
    surface_names: tuple[SurfaceFacts, ...]


def module_facts(parsed: ModuleSyntax) -> ModuleFacts:
    """The facts of a parsed file (every function's text and reads, read once)."""
    functions = {
        name: tuple(_definition(d) for d in nodes if isinstance(d, _CODE))
        for name, nodes in parsed.definitions.items()
    }
    return ModuleFacts(
        imports=parsed.imports,
        bindings=dict(parsed.bindings),
        lines={name: getattr(nodes[0], "lineno", 0) for name, nodes in parsed.definitions.items()},
        effects=tuple(_effect(s) for s in syntax.effect_statements(parsed.tree)),
        functions={name: found for name, found in functions.items() if found},
        surface=short_digest(syntax.surface_text(parsed)),
        surface_names=_surface_groups(parsed.tree.body),
    )


def import_uses(facts: ModuleFacts) -> tuple[SurfaceFacts, ...]:
    """What importing the file uses: its `surface_names`, and what its module-level defs use
    (decorators and defaults read and call, hints name and call)."""
    definitions = [
        d.reads
        for name, found in facts.functions.items()
        if "." not in name and name != "<lambda>"  # not in a class or def, not an expression
        for d in found
    ]
    if not definitions:
        return facts.surface_names
    defs = SurfaceFacts(
        calls=_union(r.calls for r in definitions),
        results=(),
        named=_union(r.annotations for r in definitions),
        stores=(),
        reads=_union(r.outer for r in definitions),
        dynamic=False,
        call_roots=None,
    )
    return (*facts.surface_names, defs)


def module_uses(
    statements: Iterable[ast.stmt | syntax.SurfaceNames],
) -> tuple[SurfaceFacts, ...]:
    """`import_uses` read straight from a module's statements (without the file's facts), each
    read once in order (the statements of a large module may come a part at a time, some as
    their surface names already: `syntax.statement_parts`)."""
    return _surface_groups(statements, definitions=True)


def _surface_groups(
    statements: Iterable[ast.stmt | syntax.SurfaceNames], *, definitions: bool = False
) -> tuple[SurfaceFacts, ...]:
    """What the statements use at import time, merged per kind of statement: those made only
    of calls on the same roots (`pipeline.register(...)` lines) together, the others together
    (a module is quiet when all its statements are, so the union is checked once). Module-level
    defs are left out unless `definitions` (their uses are in their `DefinitionReads`)."""
    groups: dict[tuple[str, ...] | None, tuple[dict[Chain, None], ...]] = {}
    dynamic: set[tuple[str, ...] | None] = set()
    for statement in statements:  # merged as they come: a module may have 100,000 of them
        roots: tuple[str, ...] | None
        if isinstance(statement, syntax.SurfaceNames):  # a call line (only a call)
            names, roots = statement, (statement.calls[0][0],)
        else:
            if isinstance(statement, _FUNCTIONS) and not definitions:
                continue
            read = syntax.surface_names(statement)
            if read is None:
                continue
            names = read
            roots = (names.calls[0][0],) if names.only_call else _call_roots(statement)
        group = groups.get(roots)
        if group is None:
            group = groups[roots] = ({}, {}, {}, {}, {})
        for kept, chains in zip(
            group, (names.calls, names.results, names.named, names.stores, names.reads)
        ):
            kept.update(dict.fromkeys(chains))
        if names.dynamic:
            dynamic.add(roots)
    found: list[SurfaceFacts] = []
    for roots, (calls, results, named, stores, reads) in groups.items():
        if calls or results or named or stores or reads or roots in dynamic:
            found.append(
                SurfaceFacts(
                    calls=tuple(calls),
                    results=tuple(results),
                    named=tuple(named),
                    stores=tuple(stores),
                    reads=tuple(reads),
                    dynamic=roots in dynamic,
                    call_roots=roots,
                )
            )
    return tuple(found)


def _union(lists: Iterable[Iterable[Chain]]) -> tuple[Chain, ...]:
    return tuple(dict.fromkeys(chain for chains in lists for chain in chains))


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_CODE = (*_FUNCTIONS, ast.Lambda)


def _definition(node: ast.AST) -> DefinitionFacts:
    text, bare_text = syntax.dump_both(node)
    span = (
        getattr(node, "lineno", 0),
        getattr(node, "col_offset", 0),
        getattr(node, "end_lineno", None) or 0,
        getattr(node, "end_col_offset", None) or 0,
    )
    return DefinitionFacts(
        first_line=syntax.first_line(node),
        line=span[0],
        span=span,
        decorated=bool(getattr(node, "decorator_list", None)),
        text=text,
        bare_text=bare_text,
        reads=definition_reads(node, hints=True),
    )


def _effect(statement: ast.stmt) -> EffectFacts:
    return EffectFacts(
        text=syntax.dump(statement),
        line=statement.lineno,
        chains=tuple(syntax.name_chains([statement])),
        strings=syntax.scan_body([statement]).string_names,
        call_roots=_call_roots(statement),
    )


def _call_roots(statement: ast.stmt) -> tuple[str, ...] | None:
    """The root names of the calls a statement is made of (`pipeline.register(...)`, also in a
    loop or block of nothing else), or None when it is something else too."""
    if isinstance(statement, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.If)):
        body = [s for s in statement.body if not isinstance(s, ast.Pass)]
        rest: list[ast.stmt] = getattr(statement, "orelse", [])
        if not body:
            return None
        roots: list[str] = []
        for inner in [*body, *rest]:
            found = _call_roots(inner)
            if found is None:
                return None
            roots += found
        return tuple(roots)
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return None
    chains = syntax.name_chains([statement.value.func])
    return (chains[0][0],) if chains else None


def function_facts(
    module: ModuleFacts, func_code: types.CodeType, *, stage: bool
) -> FunctionFacts | None:
    """The facts of the function compiled from `func_code`, None if `module` has no definition
    of it. Its definitions: by qualified name, then first line; lambdas on one line by the span
    of the code's positions. A stage's hints always count (they declare its files), a decorated
    function's too (a decorator may read them)."""
    candidates = list(module.functions.get(func_code.co_qualname, ()))
    if len(candidates) > 1:
        exact = [d for d in candidates if d.first_line == func_code.co_firstlineno]
        candidates = exact or candidates
    if len(candidates) > 1:  # lambdas on one line: the one whose span holds the code
        positions = _code_positions(func_code)
        inside = [d for d in candidates if _holds(d.span, positions)]
        candidates = inside[:1] or candidates
    if not candidates:
        return None
    hints = stage or any(d.decorated for d in candidates)
    return FunctionFacts(
        text="|".join(d.text if hints else d.bare_text for d in candidates),
        hints=hints,
        line=candidates[0].line,
        reads=tuple(d.reads for d in candidates),
        local_imports=tuple(i for d in candidates for i in d.reads.local_imports),
    )


def _code_positions(func_code: types.CodeType) -> list[tuple[int, int]]:
    """(line, column) of where each instruction of the code starts, for those that have one."""
    return [
        (p[0], p[2])
        for p in func_code.co_positions()
        if p[0] and p[2] is not None and (p[2], p[3]) != (0, 0)  # (0, 0): no real position
    ]


def _holds(span: tuple[int, int, int, int], positions: list[tuple[int, int]]) -> bool:
    start, end = span[:2], span[2:]
    return bool(positions) and all(start <= p <= end for p in positions)


def definition_reads(definition: ast.AST, *, hints: bool) -> DefinitionReads:
    parts = syntax.function_parts(definition)
    calls: list[Chain] = []
    outer = syntax.name_chains(parts.outer, calls=calls)
    annotations = (
        syntax.name_chains(parts.annotations, annotation=True, calls=calls) if hints else []
    )
    scan = syntax.scan_body(parts.body)
    return DefinitionReads(
        outer=tuple(outer),
        annotations=tuple(annotations),
        body=tuple(syntax.name_chains(parts.body)),
        strings=scan.string_names,
        literal_imports=scan.literal_imports,
        local_imports=scan.local_imports,
        calls=tuple(calls),
    )


# --- stored form ------------------------------------------------------------------------------


def pack(facts: ModuleFacts, stat: tuple[int, int]) -> bytes:
    """The stored bytes of a file's facts, valid while the file has `stat` (mtime_ns, size)."""
    fields = (
        tuple((i.module, i.names, i.level) for i in facts.imports),
        facts.bindings,
        facts.lines,
        tuple((e.text, e.line, e.chains, e.strings, e.call_roots) for e in facts.effects),
        {  # each function apart: a walk unpacks the few it reads (`_Definitions`)
            name: marshal.dumps(tuple(_definition_tuple(d) for d in found))
            for name, found in facts.functions.items()
        },
        facts.surface,
        tuple(_surface_tuple(n) for n in facts.surface_names),
    )
    return _seal(fields, stat)


def unpack(data: bytes, stat: tuple[int, int]) -> ModuleFacts | None:
    """The facts stored for a file that still has `stat`; None if it changed, or `data` is
    from another format or damaged."""
    fields = _opened(data, stat, 7)
    try:
        return (
            ModuleFacts(
                imports=tuple(ImportRef(*i) for i in fields[0]),
                bindings=dict(fields[1]),
                lines=dict(fields[2]),
                effects=tuple(EffectFacts(*e) for e in fields[3]),
                functions=_Definitions(fields[4]),
                surface=str(fields[5]),
                surface_names=tuple(SurfaceFacts(*n) for n in fields[6]),
            )
            if fields is not None
            else None
        )
    except (ValueError, TypeError, AttributeError):
        return None


def pack_uses(uses: tuple[SurfaceFacts, ...], stat: tuple[int, int]) -> bytes:
    """The stored bytes of a file's `import_uses`, valid while the file has `stat`."""
    return _seal((tuple(_surface_tuple(u) for u in uses),), stat)


def unpack_uses(data: bytes, stat: tuple[int, int]) -> tuple[SurfaceFacts, ...] | None:
    """The uses stored for a file that still has `stat`; None otherwise or if damaged."""
    fields = _opened(data, stat, 1)
    try:
        return tuple(SurfaceFacts(*u) for u in fields[0]) if fields is not None else None
    except (ValueError, TypeError):
        return None


def _seal(fields: tuple[Any, ...], stat: tuple[int, int]) -> bytes:
    return zlib.compress(marshal.dumps((FORMAT, stat, *fields)), 1)


def _opened(data: bytes, stat: tuple[int, int], count: int) -> tuple[Any, ...] | None:
    """The `count` fields `_seal` stored, if of this format and for a file that still has
    `stat`; None otherwise or if `data` is damaged."""
    try:
        fields = marshal.loads(zlib.decompress(data))
    except (EOFError, ValueError, TypeError, zlib.error):
        return None
    if not isinstance(fields, tuple) or len(fields) != count + 2 or fields[0] != FORMAT:
        return None
    try:
        return fields[2:] if tuple(fields[1]) == stat else None
    except TypeError:
        return None


def _surface_tuple(
    n: SurfaceFacts,
) -> tuple[tuple[Chain, ...] | bool | tuple[str, ...] | None, ...]:
    return (n.calls, n.results, n.named, n.stores, n.reads, n.dynamic, n.call_roots)


def _definition_tuple(facts: DefinitionFacts) -> tuple[Any, ...]:
    r = facts.reads
    imports = tuple((i.name, i.module, i.attr, i.level, i.top) for i in r.local_imports)
    reads = (r.outer, r.annotations, r.body, r.strings, r.literal_imports, imports, r.calls)
    return (
        facts.first_line,
        facts.line,
        facts.span,
        facts.decorated,
        facts.text,
        facts.bare_text,
        reads,
    )


class _Definitions(Mapping[str, tuple[DefinitionFacts, ...]]):
    """A module's stored definitions by qualified name (marshalled apart), each unpacked when
    first read: a walk reads a few of the thousand functions a generated module may hold."""

    __slots__ = ("_made", "_stored")

    def __init__(self, stored: dict[str, bytes]) -> None:
        if not isinstance(stored, dict):
            raise TypeError("stored definitions are not a dict")
        self._stored = stored
        self._made: dict[str, tuple[DefinitionFacts, ...]] = {}

    def __getitem__(self, name: str) -> tuple[DefinitionFacts, ...]:
        made = self._made.get(name)
        if made is None:
            stored = marshal.loads(self._stored[name])
            made = self._made[name] = tuple(_definition_from(d) for d in stored)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)


def _definition_from(fields: Any) -> DefinitionFacts:
    """A stored definition's facts (a damaged one raises TypeError or ValueError)."""
    first_line, line, span, decorated, text, bare_text, reads = fields
    outer, annotations, body, strings, literal, imports, calls = reads
    return DefinitionFacts(
        first_line=int(first_line),
        line=int(line),
        span=tuple(span),
        decorated=bool(decorated),
        text=str(text),
        bare_text=str(bare_text),
        reads=DefinitionReads(
            outer,
            annotations,
            body,
            strings,
            literal,
            tuple(LocalImport(*i) for i in imports),
            calls,
        ),
    )
