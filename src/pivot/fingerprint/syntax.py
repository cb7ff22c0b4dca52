"""Syntax of user source without cosmetics: normalised dumps, a definition index, name chains, imports.

Pure functions over `ast`; imports nothing of ours. Line numbers are read only to locate a
definition or report where it is, never put into a dump.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib.util
import keyword
import re
from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "COMPUTED",
    "DYNAMIC_CALLS",
    "BodyScan",
    "ClassParts",
    "FunctionParts",
    "ImportRef",
    "LocalImport",
    "ModuleSyntax",
    "class_parts",
    "dump",
    "dump_both",
    "effect_statements",
    "first_line",
    "function_parts",
    "module_text",
    "name_chains",
    "parse_module",
    "scan_body",
    "statement_parts",
    "surface_names",
    "surface_text",
]

_SKIPPED_FIELDS = frozenset({"ctx", "type_comment", "kind"})
_STATEMENT_LISTS = frozenset({"body", "orelse", "finalbody"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)

Chain = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ImportRef:
    """One imported module as written: `import a.b` -> ("a.b", (), 0); `from .x import y` -> ("x", ("y",), 1)."""

    module: str
    names: tuple[str, ...]
    level: int


@dataclasses.dataclass(frozen=True)
class LocalImport:
    """A name bound by an import inside a function: `name` is module `module`, or its attribute
    `attr`; `import a.b.c` imports all of `a.b.c` and binds `a` (`top`)."""

    name: str
    module: str
    attr: str | None
    level: int
    top: bool = False


@dataclasses.dataclass(frozen=True)
class ModuleSyntax:
    """A parsed module: its definitions by qualified name, its top-level binding lines, its imports."""

    definitions: Mapping[str, tuple[ast.AST, ...]]
    bindings: Mapping[str, int]
    imports: tuple[ImportRef, ...]
    tree: ast.Module
    source: bytes = b""


def parse_module(source: bytes, filename: str) -> ModuleSyntax:
    """Parse `source`; raises SyntaxError/ValueError like `ast.parse`."""
    tree = ast.parse(source, filename)
    definitions: dict[str, list[ast.AST]] = {}
    imports: list[ImportRef] = []
    # without a lambda, expressions hold no definition: the walk skips them
    skipped = _NO_DEFINITIONS_INSIDE if b"lambda" in source else _NO_STATEMENTS_INSIDE
    _index(tree, "", definitions, imports, skipped)
    return ModuleSyntax(
        definitions={name: tuple(nodes) for name, nodes in definitions.items()},
        bindings=_top_level_bindings(tree),
        imports=tuple(imports),
        tree=tree,
        source=source,
    )


_PART_BYTES = 25_000  # parsed at once: a syntax tree of about 4 MB at its peak
_PART_LINES = 500
_NOT_STARTS = ("else", "elif", "except", "finally")


def statement_parts(source: bytes, filename: str) -> Iterator[list[ast.stmt | SurfaceNames]]:
    """The module's top-level statements, a part at a time: a file larger than `_PART_BYTES`
    is cut before lines that start a statement at column 0, where what comes before parses on
    its own (a cut inside a string, brackets or a block does not); the tree of a 100,000-line
    pipeline module parsed at once would hold about 400 MB. In such a file, a line that is a
    whole registration-like call (`pipeline.register(stages.s1, name="s1")`, see `_call_line`)
    comes as its `surface_names`, unparsed: parsing is most of the cost of a large pipeline
    module. Raises like `ast.parse`."""
    if len(source) <= _PART_BYTES:
        yield list(ast.parse(source, filename).body)
        return
    lines = importlib.util.decode_source(source).splitlines(keepends=True)
    start = 0
    while start < len(lines):
        size = _PART_LINES
        while True:
            end = min(start + size, len(lines))
            while end < len(lines) and not _starts_statement(lines[end]):
                end += 1
            body = _with_call_lines(lines[start:end], filename)
            if body is not None:
                break
            try:
                body = list(ast.parse("".join(lines[start:end]), filename).body)
            except SyntaxError:
                if end >= len(lines):
                    raise
                size *= 2  # cut inside a statement: a larger part (never quadratic)
                continue
            break
        yield body
        start = end


_NAME_TEXT = r"[A-Za-z_][A-Za-z0-9_]*"
_CHAIN_TEXT = rf"{_NAME_TEXT}(?:\.{_NAME_TEXT})*"
_CONSTANT_TEXT = r"\"[^\"\\\n]*\"|'[^'\\\n]*'|0|[1-9][0-9]*"  # no escapes, no prefixes
_ARGUMENT_TEXT = rf"(?:{_NAME_TEXT} *= *)?(?:{_CHAIN_TEXT}|{_CONSTANT_TEXT})"
_CALL_LINE = re.compile(rf"({_CHAIN_TEXT})\(((?:{_ARGUMENT_TEXT})(?: *, *{_ARGUMENT_TEXT})*)?\)\n?")
_ARGUMENT = re.compile(rf" *(?:({_NAME_TEXT}) *= *)?({_CHAIN_TEXT}|{_CONSTANT_TEXT}) *,?")
_CONSTANT_NAMES = frozenset({"None", "True", "False"})


def _call_line(line: str) -> SurfaceNames | None:
    """`surface_names` of a line that is, on its own, one call of a name chain with name chains
    and plain constants as arguments (what `_simple_call` reads), without parsing it; None for
    any other line (or one that would not parse: a keyword as a name, a keyword argument given
    twice or before a positional one)."""
    found = _CALL_LINE.fullmatch(line)
    if found is None:
        return None
    callee = tuple(found[1].split("."))
    if callee[-1] in DYNAMIC_CALLS or any(keyword.iskeyword(name) for name in callee):
        return None
    reads: list[Chain] = []
    given: set[str] = set()
    text, at = found[2] or "", 0
    while at < len(text):
        argument = _ARGUMENT.match(text, at)
        if argument is None:  # (cannot be: the whole line matched)
            return None
        at = argument.end()
        name, value = argument[1], argument[2]
        if name is not None:
            if keyword.iskeyword(name) or name in given:
                return None
            given.add(name)
        elif given:
            return None  # a positional argument after a keyword one
        if value[0] in "\"'0123456789" or value in _CONSTANT_NAMES:
            continue
        chain = tuple(value.split("."))
        if any(keyword.iskeyword(part) for part in chain):
            return None
        reads.append(chain)
    return SurfaceNames(calls=[callee], reads=reads, only_call=True)


def _with_call_lines(lines: list[str], filename: str) -> list[ast.stmt | SurfaceNames] | None:
    """The statements of `lines`, each call line (`_call_line`) as its surface names: the
    others parsed with each call line read as `pass`, which must then be a statement of its
    own at the top level (not in a string or brackets). None when there is no call line, or
    the lines do not parse so (then they are parsed as they are)."""
    calls = {}
    for number, line in enumerate(lines, 1):
        names = _call_line(line)
        if names is not None:
            calls[number] = names
    if not calls:
        return None
    text = "".join(
        ("pass\n" if line.endswith("\n") else "pass") if number in calls else line
        for number, line in enumerate(lines, 1)
    )
    try:
        tree = ast.parse(text, filename)
    except SyntaxError:
        return None
    body: list[ast.stmt | SurfaceNames] = []
    placed = 0
    for statement in tree.body:
        names = calls.get(statement.lineno) if isinstance(statement, ast.Pass) else None
        if names is not None and statement.col_offset == 0:
            body.append(names)
            placed += 1
        else:
            body.append(statement)
    return body if placed == len(calls) else None


def _starts_statement(line: str) -> bool:
    first = line[:1]
    return (first.isalpha() or first in "_@") and not line.startswith(_NOT_STARTS)


def first_line(node: ast.AST) -> int:
    """The line where a definition starts, decorators included (as `co_firstlineno` counts it)."""
    lines = [getattr(node, "lineno", 0)]
    lines += [d.lineno for d in getattr(node, "decorator_list", ())]
    return min(lines)


# --- dumps ------------------------------------------------------------------------------------


def dump(node: ast.AST, *, annotations: bool = True) -> str:
    """A canonical text of `node`: no positions, comments, docstrings, no-op statements or `pass`.

    Without `annotations`, the hints of function parameters and returns and of local variables
    are left out (nothing reads them at run time unless a decorator or class body does).
    """
    out: list[str] = []
    _dump(node, out, annotations, None, in_class=False)
    return "".join(out)


def dump_both(node: ast.AST) -> tuple[str, str]:
    """`dump(node)` and `dump(node, annotations=False)`, walking the tree once."""
    out: list[str] = []
    hints: list[tuple[int, int]] = []
    _dump(node, out, True, hints, in_class=False)
    text = "".join(out)
    if not hints:
        return text, text
    kept: list[str] = []
    done = 0
    for start, end in sorted(hints):  # a hint inside another one starts after it
        if start >= done:
            kept += out[done:start]
            done = end
    kept += out[done:]
    return text, "".join(kept)


def _dump(
    value: object,
    out: list[str],
    annotations: bool,
    hints: list[tuple[int, int]] | None,
    *,
    in_class: bool,
) -> None:
    """Append the text of `value` to `out`; with `hints`, also note where each hint's text is
    (the range of `out` that `annotations=False` leaves out)."""
    if isinstance(value, ast.AST):
        out.append(type(value).__name__)
        out.append("(")
        inner = isinstance(value, ast.ClassDef) or (in_class and not isinstance(value, _FUNCTIONS))
        for field in value._fields:
            if field in _SKIPPED_FIELDS:
                continue
            hint = (hints is not None or not annotations) and _is_hint(
                value, field, in_class=in_class
            )
            if hint and not annotations:
                continue
            item = getattr(value, field, None)
            if item is None or item == []:
                continue
            if field in _STATEMENT_LISTS and isinstance(item, list):
                item = _effective_statements(item)
            start = len(out)
            out.append(field)
            out.append("=")
            _dump(item, out, annotations, hints, in_class=inner)
            out.append(",")
            if hint and hints is not None:
                hints.append((start, len(out)))
        out.append(")")
    elif isinstance(value, list):
        out.append("[")
        for item in value:
            _dump(item, out, annotations, hints, in_class=in_class)
            out.append(",")
        out.append("]")
    else:
        out.append(repr(value))


def _is_hint(node: ast.AST, field: str, *, in_class: bool) -> bool:
    """A type hint nothing evaluates at run time: of a parameter, a return, a local variable."""
    if field == "annotation":
        return isinstance(node, ast.arg) or (isinstance(node, ast.AnnAssign) and not in_class)
    return field == "returns" and isinstance(node, _FUNCTIONS)


def module_text(tree: ast.Module) -> str:
    """A whole module's canonical text; its definitions in any order (moving one changes nothing)."""
    definitions = sorted(dump(s) for s in tree.body if isinstance(s, (*_FUNCTIONS, ast.ClassDef)))
    rest = [dump(s) for s in tree.body if not isinstance(s, (*_FUNCTIONS, ast.ClassDef))]
    return "|".join([*rest, "defs", *definitions])


def _effective_statements(statements: list[ast.stmt]) -> list[ast.stmt]:
    """Statements minus docstrings, bare constants and `pass`; a lone `pass` if nothing is left."""
    kept = [s for s in statements if not _is_no_op(s)]
    return kept or [ast.Pass()]


def _is_no_op(statement: ast.AST) -> bool:
    if isinstance(statement, ast.Pass):
        return True
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


# --- definitions ------------------------------------------------------------------------------


def _index(
    node: ast.AST,
    prefix: str,
    out: dict[str, list[ast.AST]],
    imports: list[ImportRef],
    skipped: tuple[type[ast.AST], ...],
) -> None:
    """Record every def/class/lambda under its `__qualname__` (as CPython computes it), and
    every import statement, in one pass; nodes of the `skipped` kinds are not entered."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _DEFINITIONS):
            name = "<lambda>" if isinstance(child, ast.Lambda) else child.name
            qualname = prefix + name
            out.setdefault(qualname, []).append(child)
            inner = qualname + ("." if isinstance(child, ast.ClassDef) else ".<locals>.")
            _index(child, inner, out, imports, skipped)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            imports.extend(_imports(child))
        elif not isinstance(child, skipped):
            _index(child, prefix, out, imports, skipped)


def _top_level_bindings(tree: ast.Module) -> dict[str, int]:
    """Module-scope name -> line of its last binding (assignment, import, def, class, for, with)."""
    found: dict[str, int] = {}
    for statement in _module_scope_statements(tree.body):
        for name in _bound_names(statement):
            found[name] = statement.lineno
    return found


def _module_scope_statements(statements: list[ast.stmt]) -> Iterable[ast.stmt]:
    for statement in statements:
        yield statement
        if isinstance(statement, (*_FUNCTIONS, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            nested = getattr(statement, field, None)
            if isinstance(nested, list):
                for item in nested:
                    if isinstance(item, (ast.ExceptHandler, ast.match_case)):
                        yield from _module_scope_statements(item.body)
                    elif isinstance(item, ast.stmt):
                        yield from _module_scope_statements([item])


def _bound_names(statement: ast.stmt) -> Iterable[str]:
    if isinstance(statement, (*_FUNCTIONS, ast.ClassDef)):
        yield statement.name
    elif isinstance(statement, (ast.Import, ast.ImportFrom)):
        for alias in statement.names:
            yield alias.asname or alias.name.split(".")[0]
    else:
        targets: list[ast.AST] = []
        if isinstance(statement, ast.Assign):
            targets = list(statement.targets)
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            targets = [statement.target]
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            targets = [i.optional_vars for i in statement.items if i.optional_vars is not None]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    yield node.id


# Nodes that cannot contain a def, class or lambda: not worth visiting.
_NO_DEFINITIONS_INSIDE = (ast.Name, ast.Constant, ast.expr_context, ast.operator, ast.alias)
# Nodes that hold only expressions: without lambdas, no definition and no import is inside.
_NO_STATEMENTS_INSIDE = (
    *_NO_DEFINITIONS_INSIDE,
    ast.expr,
    ast.arguments,
    ast.keyword,
    ast.withitem,
    ast.comprehension,
    ast.pattern,
)


def _imports(node: ast.Import | ast.ImportFrom) -> Iterable[ImportRef]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield ImportRef(alias.name, (), 0)
    else:
        names = tuple(alias.name for alias in node.names if alias.name != "*")
        yield ImportRef(node.module or "", names, node.level)


def effect_statements(tree: ast.Module) -> list[ast.stmt]:
    """Module-level statements that act rather than define: calls, loops, attribute and item
    assignments, `del`, `with` (in `if`/`try` blocks too). Definitions, imports, plain
    `name = value` assignments, docstrings and `if __name__ == "__main__":` blocks are not."""
    found: list[ast.stmt] = []
    _effects(tree.body, found)
    return found


def _effects(statements: list[ast.stmt], found: list[ast.stmt]) -> None:
    for statement in statements:
        if isinstance(statement, (*_FUNCTIONS, ast.ClassDef, ast.Import, ast.ImportFrom)):
            continue
        if _is_no_op(statement) or _is_main_guard(statement):
            continue
        if isinstance(statement, (ast.If, ast.Try, *_TRY_STAR)):
            nested: list[ast.stmt] = [*statement.body, *statement.orelse]  # type: ignore[attr-defined]
            nested += getattr(statement, "finalbody", [])
            for handler in getattr(statement, "handlers", []):
                nested += handler.body
            _effects(nested, found)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if isinstance(statement, ast.AugAssign) or any(
                not isinstance(node, (ast.Name, ast.Tuple, ast.List, ast.Starred))
                for target in targets
                for node in _target_parts(target)
            ):
                found.append(statement)
        else:
            found.append(statement)


_TRY_STAR = (ast.TryStar,) if hasattr(ast, "TryStar") else ()


def _target_parts(target: ast.AST) -> list[ast.AST]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [part for element in target.elts for part in _target_parts(element)]
    if isinstance(target, ast.Starred):
        return _target_parts(target.value)
    return [target]


def _is_main_guard(statement: ast.AST) -> bool:
    if not isinstance(statement, ast.If) or not isinstance(statement.test, ast.Compare):
        return False
    parts = [statement.test.left, *statement.test.comparators]
    return any(isinstance(p, ast.Name) and p.id == "__name__" for p in parts) and any(
        isinstance(p, ast.Constant) and p.value == "__main__" for p in parts
    )


# --- what runs when a module is imported ------------------------------------------------------


def surface_text(parsed: ModuleSyntax) -> bytes:
    """The module's source without the bodies of its defs (at any depth: in classes, `if` and
    `try` blocks): what importing it runs (decorators, defaults, evaluated hints, class bodies,
    assignments, calls, imports), as written. A function body runs only when something calls
    it; an edit inside one keeps this text."""
    spans: list[tuple[int, int]] = []
    starts = [0]
    for line in parsed.source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column if 0 < line <= len(starts) else len(parsed.source)

    for nodes in parsed.definitions.values():
        for node in nodes:
            if isinstance(node, _FUNCTIONS) and node.body and node.end_lineno is not None:
                first = node.body[0]
                end_column = node.end_col_offset or 0
                spans.append(
                    (offset(first.lineno, first.col_offset), offset(node.end_lineno, end_column))
                )
    kept: list[bytes] = []
    done = 0
    for start, end in sorted(spans):  # a def inside another one's body starts after it
        if start >= done:
            kept.append(parsed.source[done:start])
            done = end
    kept.append(parsed.source[done:])
    return b"".join(kept)


@dataclasses.dataclass
class SurfaceNames:
    """The names one module-level statement uses while the module is imported, by how:
    `calls` are called (decorators included); `results` are called and what they return is
    called or has a method called (`Path(__file__).resolve()`); `named` are used as hints or
    base classes (a class runs code there only through import-time hooks); `stores` own an
    attribute or item assigned (`first.LIMIT = 5` stores into `first`); `reads` are the rest.
    `dynamic` is set when the statement calls something that runs code given by name or text
    (`eval`, `exec`, `query`), or calls the result of a call (`getattr(m, name)()`)."""

    calls: list[Chain] = dataclasses.field(default_factory=list)
    results: list[Chain] = dataclasses.field(default_factory=list)
    named: list[Chain] = dataclasses.field(default_factory=list)
    stores: list[Chain] = dataclasses.field(default_factory=list)
    reads: list[Chain] = dataclasses.field(default_factory=list)
    dynamic: bool = False
    only_call: bool = False  # the statement is one call of `calls[0]`


_EVALUATING_CALLS = frozenset({"query", "eval", "evaluate"})  # run code given as text
_IMPORT_CALLS = frozenset({"import_module", "__import__"})
DYNAMIC_CALLS = _EVALUATING_CALLS | _IMPORT_CALLS | {"exec"}
"""Calls that run code given as text or by name."""


def surface_names(statement: ast.stmt) -> SurfaceNames | None:
    """What a module-level statement uses when the module is imported (the bodies of defs in it
    are not run); None when it runs nothing of note (an import, a docstring, a main guard:
    `if __name__ == "__main__":` is not run on import)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)) or _is_main_guard(statement):
        return None
    if _is_no_op(statement):
        return None
    simple = _simple_call(statement)
    if simple is not None:
        return simple
    found = SurfaceNames()
    _surface(statement, found)
    return found


def _simple_call(statement: ast.stmt) -> SurfaceNames | None:
    """`pipeline.register(stages.train, name="train")`: a call of a name with names and
    constants as arguments, the bulk of a pipeline module, read without the general walk."""
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not isinstance(call, ast.Call):
        return None
    callee = _chain(call.func)
    if callee is None or callee[-1] in DYNAMIC_CALLS:
        return None
    reads: list[Chain] = []
    for argument in [*call.args, *(k.value for k in call.keywords)]:
        if isinstance(argument, ast.Constant):
            continue
        chain = _chain(argument)
        if chain is None:
            return None
        reads.append(chain)
    return SurfaceNames(calls=[callee], reads=reads, only_call=True)


def _surface(node: ast.AST, found: SurfaceNames) -> None:
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Load):
            found.reads.append((node.id,))
    elif isinstance(node, ast.Constant):
        return
    elif isinstance(node, ast.Call):
        _callee(node.func, found)
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            _surface(argument, found)
    elif isinstance(node, _FUNCTIONS):
        for decorator in node.decorator_list:
            _decorator(decorator, found)
        parts = function_parts(node)
        for expression in parts.outer[len(node.decorator_list) :]:
            _surface(expression, found)
        for hint in parts.annotations:
            _hint(hint, found)
    elif isinstance(node, ast.ClassDef):
        for decorator in node.decorator_list:
            _decorator(decorator, found)
        for base in [*node.bases, *(k.value for k in node.keywords)]:
            _hint(base, found)
        for statement in node.body:
            _surface(statement, found)
    elif isinstance(node, ast.AnnAssign):
        _surface(node.target, found)
        _hint(node.annotation, found)
        if node.value is not None:
            _surface(node.value, found)
    elif isinstance(node, (ast.Import, ast.ImportFrom)) or _is_main_guard(node):
        return
    elif isinstance(node, ast.Attribute):
        chain = _attribute_chain(node)
        if chain is None:
            _surface(node.value, found)
        elif isinstance(node.ctx, ast.Load):
            found.reads.append(chain)
        else:
            found.stores.append(chain[:-1])
    elif isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
        chain = _chain(node.value)
        if chain is None:
            _surface(node.value, found)
        else:
            found.stores.append(chain)
        _surface(node.slice, found)
    else:
        for child in ast.iter_child_nodes(node):
            _surface(child, found)


def _chain(node: ast.AST) -> Chain | None:
    if isinstance(node, ast.Name):
        return (node.id,)
    return _attribute_chain(node) if isinstance(node, ast.Attribute) else None


def _callee(node: ast.AST, found: SurfaceNames) -> None:
    chain = _chain(node)
    if chain is not None:
        found.calls.append(chain)
        if chain[-1] in DYNAMIC_CALLS:
            found.dynamic = True
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call):
        _result(node.value, found)  # `Path(__file__).resolve()`
    elif isinstance(node, ast.Call):
        found.dynamic = True  # `getattr(module, name)()`: the callee is computed
        _surface(node, found)
    else:  # `handlers[0]()`, `(lambda: f())()`: what is called is read, and called
        called = SurfaceNames()
        _surface(node, called)
        found.calls += called.reads + called.calls
        found.results += called.results
        found.named += called.named
        found.stores += called.stores
        found.dynamic = found.dynamic or called.dynamic


def _result(call: ast.Call, found: SurfaceNames) -> None:
    """A call whose result is used as a callee: it must make a library object."""
    chain = _chain(call.func)
    if chain is None:
        found.dynamic = True
    else:
        found.results.append(chain)
    for argument in [*call.args, *(k.value for k in call.keywords)]:
        _surface(argument, found)
    if chain is None:
        _surface(call.func, found)


def _decorator(node: ast.AST, found: SurfaceNames) -> None:
    """`@name` is called with the function; `@factory(...)` calls the factory, and what it
    returns is then called with the function (a library's decorator factory makes library code)."""
    if isinstance(node, ast.Call) and _chain(node.func) is not None:
        _surface(node, found)
    else:
        _callee(node, found)


def _hint(node: ast.AST, found: SurfaceNames) -> None:
    """A hint or base class: names in it are `named`; calls in it (`Dep("a.csv", CSV())`) call."""
    if isinstance(node, ast.Name):
        found.named.append((node.id,))
    elif isinstance(node, ast.Attribute) and (chain := _attribute_chain(node)) is not None:
        found.named.append(chain)
    elif isinstance(node, ast.Constant):
        return  # a string hint is not evaluated on import
    elif isinstance(node, ast.Subscript):
        _hint(node.value, found)
        _hint(node.slice, found)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            _hint(element, found)
    elif isinstance(node, ast.BinOp):
        _hint(node.left, found)
        _hint(node.right, found)
    else:
        _surface(node, found)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AT_NAME = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


@dataclasses.dataclass(frozen=True)
class BodyScan:
    """What one walk over code finds besides name chains:

    - `local_imports`: names bound by `import` statements anywhere inside it;
    - `string_names`: names a library may look up from a string: every `@name` in a string
      literal (`df.query("price > @MIN_PRICE")`), and every identifier in a string passed
      straight to a call named `query`, `eval` or `evaluate` (`df.eval("a * RATE")`,
      `numexpr.evaluate(...)`), sorted;
    - `literal_imports`: module names given as string literals to
      `importlib.import_module(...)`/`__import__(...)` (a leading dot: relative, resolved by
      the caller).
    """

    local_imports: tuple[LocalImport, ...]
    string_names: tuple[str, ...]
    literal_imports: tuple[str, ...]


def scan_body(nodes: Iterable[ast.AST]) -> BodyScan:
    imports: list[LocalImport] = []
    strings: dict[str, None] = {}
    literal: dict[str, None] = {}
    bare: set[int] = set()  # docstrings and other bare strings are never evaluated
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Import):
                imports += _import_bindings(node)
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name != "*":
                        name = alias.asname or alias.name
                        imports.append(LocalImport(name, node.module or "", alias.name, node.level))
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                bare.add(id(node.value))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in bare:
                    strings.update(dict.fromkeys(_AT_NAME.findall(node.value)))
            elif isinstance(node, ast.Call):
                _scan_call(node, strings, literal)
    return BodyScan(tuple(imports), tuple(sorted(strings)), tuple(literal))


def _import_bindings(node: ast.Import) -> list[LocalImport]:
    found = []
    for alias in node.names:
        if alias.asname:
            found.append(LocalImport(alias.asname, alias.name, None, 0))
        else:
            top = alias.name.split(".")[0]
            found.append(LocalImport(top, alias.name, None, 0, top=top != alias.name))
    return found


def _scan_call(node: ast.Call, strings: dict[str, None], literal: dict[str, None]) -> None:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name in _EVALUATING_CALLS:
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                strings.update(dict.fromkeys(_IDENTIFIER.findall(argument.value)))
    elif name in _IMPORT_CALLS and node.args:
        first = node.args[0]
        value = first.value if isinstance(first, ast.Constant) else None
        if isinstance(value, str) and value:
            literal[value] = None


# --- parts of definitions ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FunctionParts:
    """Expressions of a def: evaluated where it is defined (`outer`, `annotations`) or when called."""

    outer: tuple[ast.AST, ...]
    annotations: tuple[ast.AST, ...]
    body: tuple[ast.AST, ...]


def function_parts(node: ast.AST) -> FunctionParts:
    """Split a FunctionDef/AsyncFunctionDef/Lambda into its definition-time and call-time parts."""
    args = getattr(node, "args", None)
    outer: list[ast.AST] = list(getattr(node, "decorator_list", ()))
    annotations: list[ast.AST] = []
    if isinstance(args, ast.arguments):
        outer += args.defaults
        outer += [d for d in args.kw_defaults if d is not None]
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        annotations += [a.annotation for a in every if a.annotation is not None]
    returns = getattr(node, "returns", None)
    if returns is not None:
        annotations.append(returns)
    body = getattr(node, "body", [])
    return FunctionParts(
        tuple(outer), tuple(annotations), tuple(body if isinstance(body, list) else [body])
    )


@dataclasses.dataclass(frozen=True)
class ClassParts:
    """A class without its methods (`shell`, dumped as the class entry) and its methods by name."""

    shell: ast.ClassDef
    expressions: tuple[ast.AST, ...]
    annotations: tuple[ast.AST, ...]
    methods: Mapping[str, tuple[ast.AST, ...]]


def class_parts(node: ast.ClassDef) -> ClassParts:
    methods: dict[str, list[ast.AST]] = {}
    rest: list[ast.stmt] = []
    annotations: list[ast.AST] = []
    for statement in node.body:
        if isinstance(statement, _FUNCTIONS):
            methods.setdefault(statement.name, []).append(statement)
            continue
        rest.append(statement)
        if isinstance(statement, ast.AnnAssign):
            annotations.append(statement.annotation)
    shell = copy.copy(node)
    shell.body = rest
    expressions: list[ast.AST] = [*node.bases, *node.keywords, *node.decorator_list]
    expressions += [s.value for s in rest if isinstance(s, ast.AnnAssign) and s.value is not None]
    expressions += [s for s in rest if not isinstance(s, ast.AnnAssign)]
    return ClassParts(
        shell=shell,
        expressions=tuple(expressions),
        annotations=tuple(annotations),
        methods={name: tuple(nodes) for name, nodes in methods.items()},
    )


# --- name chains ------------------------------------------------------------------------------


COMPUTED = ("<computed>",)  # the callee of a call whose function is computed (`f()()`)


def name_chains(
    nodes: Iterable[ast.AST], *, annotation: bool = False, calls: list[Chain] | None = None
) -> list[Chain]:
    """Every `a`, `a.b.c` read in `nodes`, longest chain only; annotations also read string hints.
    With `calls`, the chain each call calls is also added there (`COMPUTED` when it has none)."""
    out: list[Chain] = []
    for node in nodes:
        _collect(node, out, annotation, calls)
    return out


def _collect(
    node: ast.AST, out: list[Chain], annotation: bool, calls: list[Chain] | None = None
) -> None:
    if isinstance(node, ast.Attribute):
        chain = _attribute_chain(node)
        if chain is not None:
            out.append(chain)
        else:
            _collect(node.value, out, annotation, calls)
        return
    if isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Store):
            out.append((node.id,))
        return
    if annotation and isinstance(node, ast.Constant) and isinstance(node.value, str):
        _collect_string_hint(node.value, out)
        return
    if annotation and isinstance(node, ast.Subscript):
        _collect_subscript_hint(node, out, calls)
        return
    if calls is not None and isinstance(node, ast.Call):
        calls.append(_chain(node.func) or COMPUTED)
    for child in ast.iter_child_nodes(node):
        _collect(child, out, annotation, calls)


def _attribute_chain(node: ast.Attribute) -> Chain | None:
    names: list[str] = []
    current: ast.AST = node
    while isinstance(current, ast.Attribute):
        names.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    names.append(current.id)
    return tuple(reversed(names))


def _collect_string_hint(text: str, out: list[Chain]) -> None:
    try:
        expression = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return
    _collect(expression.body, out, True)


def _collect_subscript_hint(
    node: ast.Subscript, out: list[Chain], calls: list[Chain] | None
) -> None:
    """`Annotated[T, meta]` reads hint strings only in `T`; `Literal[...]` strings are values."""
    _collect(node.value, out, True, calls)
    head = (
        node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
    )
    items = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    if head == "Literal":
        for item in items:
            _collect(item, out, False, calls)
    elif head == "Annotated" and items:
        _collect(items[0], out, True, calls)
        for item in items[1:]:
            _collect(item, out, False, calls)
    else:
        for item in items:
            _collect(item, out, True, calls)
