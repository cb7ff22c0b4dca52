"""What fingerprinting reads from a source file's syntax, as small values kept between runs.

A file's facts (its imports, top-level binding lines, import-time effects, and per function the
canonical text and the names it reads) depend only on its content, so they are stored with the
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
from collections.abc import Sequence

from pivot.fingerprint import syntax
from pivot.fingerprint.syntax import Chain, ImportRef, LocalImport, ModuleSyntax

__all__ = [
    "DefinitionReads",
    "EffectFacts",
    "FunctionFacts",
    "ModuleFacts",
    "code_positions",
    "definition_reads",
    "function_facts",
    "locate_function",
    "module_facts",
    "pack",
    "unpack",
]

FORMAT = 1  # bump whenever what the facts hold, or how they are computed, changes

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclasses.dataclass(frozen=True)
class DefinitionReads:
    """The names one def or lambda reads: where it is defined (`outer`: decorators, defaults),
    in its hints, when it is called (`body`), in strings a library evaluates, by literal import."""

    outer: tuple[Chain, ...]
    annotations: tuple[Chain, ...]
    body: tuple[Chain, ...]
    strings: tuple[str, ...]
    literal_imports: tuple[str, ...]


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


@dataclasses.dataclass
class ModuleFacts:
    """A source file's facts. `functions` fills as functions are fingerprinted (key: see
    `Sources.function_facts`); None marks a function whose definition the file lacks."""

    imports: tuple[ImportRef, ...]
    bindings: dict[str, int]  # top-level name -> line of its last binding
    lines: dict[str, int]  # qualified name -> line of its first definition
    effects: tuple[EffectFacts, ...]
    functions: dict[str, FunctionFacts | tuple[object, ...] | None]

    def function(self, key: str) -> FunctionFacts | bool | None:
        """The facts of a function by key: False when not known yet."""
        if key not in self.functions:
            return False
        found = self.functions[key]
        if isinstance(found, tuple):  # as unpacked: made a value on first use
            made = _function_from(found)
            if made is None:  # damaged: compute it again
                del self.functions[key]
                return False
            found = self.functions[key] = made
        return found


def module_facts(parsed: ModuleSyntax) -> ModuleFacts:
    """The facts of a parsed file that do not depend on which function is asked for."""
    lines = {
        name: first_line
        for name, nodes in parsed.definitions.items()
        if (first_line := getattr(nodes[0], "lineno", 0))
    }
    return ModuleFacts(
        imports=parsed.imports,
        bindings=dict(parsed.bindings),
        lines=lines,
        effects=tuple(_effect(s) for s in syntax.effect_statements(parsed.tree)),
        functions={},
    )


def _effect(statement: ast.stmt) -> EffectFacts:
    return EffectFacts(
        text=syntax.dump(statement),
        line=statement.lineno,
        chains=tuple(syntax.name_chains([statement])),
        strings=tuple(syntax.string_names([statement])),
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


def locate_function(parsed: ModuleSyntax, func_code: types.CodeType) -> list[ast.AST]:
    """The definitions in `parsed` that `func_code` was compiled from (by qualified name, then
    first line; lambdas on one line by the span of the code's positions)."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    named = parsed.definitions.get(func_code.co_qualname, ())
    candidates: list[ast.AST] = [d for d in named if isinstance(d, kinds)]
    if len(candidates) > 1:
        exact = [d for d in candidates if syntax.first_line(d) == func_code.co_firstlineno]
        candidates = exact or candidates
    if len(candidates) > 1:  # lambdas on one line: the one whose span holds the code
        positions = code_positions(func_code)
        inside = [d for d in candidates if _holds(d, positions)]
        candidates = inside[:1] or candidates
    return candidates


def code_positions(func_code: types.CodeType) -> list[tuple[int, int]]:
    """(line, column) of where each instruction of the code starts, for those that have one."""
    return [
        (p[0], p[2])
        for p in func_code.co_positions()
        if p[0] and p[2] is not None and (p[2], p[3]) != (0, 0)  # (0, 0): no real position
    ]


def _holds(node: ast.AST, positions: list[tuple[int, int]]) -> bool:
    start = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
    end = (getattr(node, "end_lineno", None) or 0, getattr(node, "end_col_offset", None) or 0)
    return bool(positions) and all(start <= p <= end for p in positions)


def function_facts(definitions: Sequence[ast.AST], *, stage: bool) -> FunctionFacts | None:
    """The facts of a function from its definitions; a stage's hints always count (they
    declare its files), a decorated function's too (a decorator may read them)."""
    if not definitions:
        return None
    hints = stage or any(getattr(d, "decorator_list", None) for d in definitions)
    bodies = [b for d in definitions for b in syntax.function_parts(d).body]
    return FunctionFacts(
        text="|".join(syntax.dump(d, annotations=hints) for d in definitions),
        hints=hints,
        line=getattr(definitions[0], "lineno", 0),
        reads=tuple(definition_reads(d, hints=hints) for d in definitions),
        local_imports=syntax.local_imports(bodies),
    )


def definition_reads(definition: ast.AST, *, hints: bool) -> DefinitionReads:
    parts = syntax.function_parts(definition)
    annotations = syntax.name_chains(parts.annotations, annotation=True) if hints else []
    return DefinitionReads(
        outer=tuple(syntax.name_chains(parts.outer)),
        annotations=tuple(annotations),
        body=tuple(syntax.name_chains(parts.body)),
        strings=tuple(syntax.string_names(parts.body)),
        literal_imports=tuple(syntax.literal_imports(parts.body)),
    )


# --- stored form ------------------------------------------------------------------------------


def pack(facts: ModuleFacts, stat: tuple[int, int]) -> bytes:
    """The stored bytes of a file's facts, valid while the file has `stat` (mtime_ns, size)."""
    functions = {
        key: _function_tuple(value) if isinstance(value, FunctionFacts) else value
        for key, value in facts.functions.items()
    }
    fields = (
        FORMAT,
        stat,
        tuple((i.module, i.names, i.level) for i in facts.imports),
        facts.bindings,
        facts.lines,
        tuple((e.text, e.line, e.chains, e.strings, e.call_roots) for e in facts.effects),
        functions,
    )
    return zlib.compress(marshal.dumps(fields), 1)


def unpack(data: bytes, stat: tuple[int, int]) -> ModuleFacts | None:
    """The facts stored for a file that still has `stat`; None if it changed, or `data` is
    from another format or damaged."""
    try:
        fields = marshal.loads(zlib.decompress(data))
        if not isinstance(fields, tuple) or len(fields) != 7 or fields[0] != FORMAT:
            return None
        if tuple(fields[1]) != stat:
            return None
        return ModuleFacts(
            imports=tuple(ImportRef(*i) for i in fields[2]),
            bindings=dict(fields[3]),
            lines=dict(fields[4]),
            effects=tuple(EffectFacts(*e) for e in fields[5]),
            functions=dict(fields[6]),
        )
    except (EOFError, ValueError, TypeError, zlib.error):
        return None


def _function_tuple(facts: FunctionFacts) -> tuple[object, ...]:
    reads = tuple(
        (r.outer, r.annotations, r.body, r.strings, r.literal_imports) for r in facts.reads
    )
    imports = tuple((i.name, i.module, i.attr, i.level, i.top) for i in facts.local_imports)
    return (facts.text, facts.hints, facts.line, reads, imports)


def _function_from(fields: tuple[object, ...]) -> FunctionFacts | None:
    """The value of stored function facts; None when they are damaged."""
    try:
        text, hints, line, reads, imports = fields
        return FunctionFacts(
            text=str(text),
            hints=bool(hints),
            line=int(line),  # type: ignore[call-overload]
            reads=tuple(DefinitionReads(*r) for r in reads),  # type: ignore[attr-defined]
            local_imports=tuple(LocalImport(*i) for i in imports),  # type: ignore[attr-defined]
        )
    except (TypeError, ValueError):
        return None
