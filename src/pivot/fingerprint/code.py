"""Nodes for code: a function, a class, a method; and the dispatch to every kind of node.

Code is fingerprinted from its normalised source (`syntax.dump`) plus what the names it reads
resolve to (`data` does values). Imports nothing of ours but sibling modules.
"""

from __future__ import annotations

import ast
import functools
import sys
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pivot.fingerprint import data, syntax
from pivot.fingerprint.facts import DefinitionReads, definition_reads
from pivot.fingerprint.model import (
    Collector,
    Item,
    Node,
    Scope,
    digest_of,
    function_entry_name,
    global_names,
    package_of,
)
from pivot.fingerprint.origin import module_file, source_path

if TYPE_CHECKING:
    from pivot.fingerprint.reach import Reach

__all__ = ["build_node"]


def build_node(reach: Reach, item: Item) -> Node:
    """The node of `item`; user objects that break introspection give a warning, not a crash."""
    try:
        return _BUILDERS[item.kind](reach, item)
    except Exception as error:  # user code can do anything in __getattr__, __reduce__...
        entry = entry_name(item)
        found = Collector()
        found.warnings.append(
            f"{entry} could not be fingerprinted ({type(error).__name__}: {error}); changes to "
            "it will not re-run the stage"
        )
        digest = digest_of("error", entry, type(error).__name__)
        return found.node(entry, digest, None, failed=True)


def entry_name(item: Item) -> str:
    """The manifest entry of an item, from what it is (not from its node)."""
    obj = item.obj
    if item.kind in ("stage", "func") and isinstance(obj, types.FunctionType):
        return f"{item.kind}:{function_entry_name(obj)}"
    if item.kind in ("class", "method") and isinstance(obj, type):
        name = f"{obj.__module__}.{obj.__qualname__}"
        return f"class:{name}" if item.kind == "class" else f"method:{name}.{item.name}"
    if item.kind == "module" and isinstance(obj, types.ModuleType):
        return f"module:{obj.__name__}"
    if item.kind == "value":
        return f"const:{item.owner}.{item.name}"
    return item.name or f"{item.kind}:{type(obj).__qualname__}"


# --- functions --------------------------------------------------------------------------------


def _function_node(reach: Reach, item: Item) -> Node:
    func = item.obj
    assert isinstance(func, types.FunctionType)
    found = Collector()
    func_code = func.__code__
    path = source_path(func_code.co_filename)
    module_name = str(func.__globals__.get("__name__") or func.__module__)
    entry = f"{item.kind}:{function_entry_name(func)}"
    found.files.add(path)
    found.files.update(reach.sources.closure(module_name))
    facts = reach.sources.function_facts(path, func_code, stage=item.kind == "stage")
    scope = Scope(
        namespace=func.__globals__,
        module_name=module_name,
        package=package_of(module_name),
        closure=_closure(func),
        imports={i.name: i for i in facts.local_imports} if facts is not None else {},
        global_names=global_names(func_code),
    )
    reach.module_effects(module_name, found)
    if facts is not None:
        text = facts.text
        bound = _definition_bindings(reach, scope, facts.reads, found, hints=facts.hints)
        line = facts.line
    else:
        found.warnings.append(
            f"source of {entry} was not found; it is fingerprinted by its bytecode"
        )
        text = code_text(func_code)
        chains = [(name,) for name in sorted(scope.global_names or ())]
        bound = reach.bindings(scope, chains, found, call_time=False)
        line = func_code.co_firstlineno
    wrapped = func.__dict__.get("__wrapped__")
    if wrapped is not None:
        bound.add(f"__wrapped__={reach.describe(wrapped, found) or 'value'}")
    captured = _captured(reach, func, found, entry)
    digest = digest_of(text, *sorted(bound), *captured)
    return found.node(entry, digest, (path, line))


def _decorated(node: ast.AST) -> bool:
    """A decorator may read the annotations (singledispatch, pydantic's validate_call...)."""
    return bool(getattr(node, "decorator_list", None))


def _bodies(definitions: Iterable[ast.AST]) -> list[ast.AST]:
    return [b for d in definitions for b in syntax.function_parts(d).body]


def _definition_bindings(
    reach: Reach,
    scope: Scope,
    reads: Iterable[DefinitionReads],
    found: Collector,
    *,
    hints: bool = True,
) -> set[str]:
    bound: set[str] = set()
    for read in reads:
        bound |= reach.bindings(scope, read.outer, found, call_time=False)
        if hints:
            bound |= reach.bindings(scope, read.annotations, found, call_time=False)
        bound |= reach.bindings(scope, read.body, found, call_time=True)
        bound |= reach.string_bindings(scope, read.strings, found)
        for name in read.literal_imports:
            imported = reach.literal_import(scope, name, found)
            bound |= {imported} if imported is not None else set()
    return bound


def _closure(func: types.FunctionType) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not bound yet
            continue
    return values


def _captured(reach: Reach, func: types.FunctionType, found: Collector, entry: str) -> list[str]:
    """Closure variables and default values: fixed when the function was made, not in its source."""
    texts: list[str] = []
    for name, value in sorted(_closure(func).items()):
        texts.append(
            f"closure:{name}={reach.encode(value, found, f'closure variable {name!r} of {entry}')}"
        )
    if func.__defaults__:
        texts.append("defaults=" + reach.encode(func.__defaults__, found, f"a default of {entry}"))
    if func.__kwdefaults__:
        defaults = dict(sorted(func.__kwdefaults__.items()))
        texts.append("kwdefaults=" + reach.encode(defaults, found, f"a default of {entry}"))
    return texts


def code_text(func_code: types.CodeType) -> str:
    """Bytecode, constants and names of a code object (no line numbers), for code with no source."""
    consts = []
    for const in func_code.co_consts:
        if isinstance(const, types.CodeType):
            consts.append(code_text(const))
        elif isinstance(const, frozenset):
            consts.append(repr(sorted(map(repr, const))))
        else:
            consts.append(repr(const))
    fields = (
        func_code.co_code.hex(),
        consts,
        func_code.co_names,
        func_code.co_varnames,
        func_code.co_freevars,
        func_code.co_cellvars,
        func_code.co_argcount,
        func_code.co_posonlyargcount,
        func_code.co_kwonlyargcount,
        func_code.co_flags,
    )
    return repr(fields)


# --- classes and methods ----------------------------------------------------------------------


def class_syntax(
    reach: Reach, cls: type
) -> tuple[str | None, list[syntax.ClassParts], ast.AST | None]:
    """The file, the ClassDef parts, or else the top-level statement that made the class."""
    module = sys.modules.get(cls.__module__)
    path = module_file(module) if isinstance(module, types.ModuleType) else None
    if path is None and cls.__module__ == "__main__":  # a notebook: find the cell
        path = reach.sources.cell_defining(cls.__qualname__)
    parsed = reach.sources.syntax(path) if path is not None else None
    if parsed is None:
        return path, [], None
    nodes = [d for d in parsed.definitions.get(cls.__qualname__, ()) if isinstance(d, ast.ClassDef)]
    first = getattr(cls, "__firstlineno__", None)  # Python 3.13+
    if len(nodes) > 1 and isinstance(first, int):
        nodes = [n for n in nodes if syntax.first_line(n) == first] or nodes
    if nodes:
        return path, [syntax.class_parts(n) for n in nodes], None
    return path, [], _binding_statement(parsed.tree, cls.__qualname__)


def _binding_statement(tree: ast.Module, name: str) -> ast.AST | None:
    """`Point = namedtuple(...)`, `Color = Enum(...)`: the assignment that made a class."""
    for statement in tree.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return statement
    return None


def _class_node(reach: Reach, item: Item) -> Node:
    cls = item.obj
    assert isinstance(cls, type)
    found = Collector()
    module_name = cls.__module__
    entry = f"class:{module_name}.{cls.__qualname__}"
    path, parts, statement = class_syntax(reach, cls)
    if path is not None:
        found.files.add(path)
    found.files.update(reach.sources.closure(module_name))
    reach.module_effects(module_name, found)
    scope = Scope(
        namespace=vars(sys.modules[module_name]),
        module_name=module_name,
        package=package_of(module_name),
    )
    bound: set[str] = set()
    line = 0
    if parts:
        text = "|".join(syntax.dump(p.shell) for p in parts)
        for part in parts:
            bound |= reach.bindings(
                scope, syntax.name_chains(part.expressions), found, call_time=False
            )
            hints = syntax.name_chains(part.annotations, annotation=True)
            bound |= reach.bindings(scope, hints, found, call_time=False)
        for name in dict.fromkeys(n for p in parts for n in p.methods):
            found.children.append(Item("method", cls, name=name))
        line = parts[0].shell.lineno
    elif statement is not None:
        text = syntax.dump(statement)
        bound |= reach.bindings(scope, syntax.name_chains([statement]), found, call_time=False)
        line = statement.lineno  # type: ignore[attr-defined]
    else:
        found.warnings.append(f"source of {entry} was not found; only its name is fingerprinted")
        text = f"nosource:{cls.__qualname__}"
    for base in (*cls.__mro__[1:], type(cls)):  # library bases count as written in the source
        if reach.is_user_class(base):
            bound.add(f"base={reach.describe(base, found)}")
    digest = digest_of(text, *sorted(bound))
    return found.node(entry, digest, (path, line) if path else None)


def _method_node(reach: Reach, item: Item) -> Node:
    cls = item.obj
    assert isinstance(cls, type)
    found = Collector()
    module_name = cls.__module__
    entry = f"method:{module_name}.{cls.__qualname__}.{item.name}"
    path, parts, _statement = class_syntax(reach, cls)
    definitions = [d for p in parts for d in p.methods.get(item.name, ())]
    own, wrappers = _method_functions(cls, item.name)
    if path is not None:
        found.files.add(path)
    closure: dict[str, object] = {}
    for func in own:
        closure.update(_closure(func))
    names = frozenset().union(*(global_names(f.__code__) for f in own)) if own else None
    scope = Scope(
        namespace=vars(sys.modules[module_name]),
        module_name=module_name,
        package=package_of(module_name),
        closure=closure,
        imports={i.name: i for i in syntax.scan_body(_bodies(definitions)).local_imports},
        global_names=names,
    )
    hints = bool(wrappers) or any(_decorated(d) for d in definitions)
    text = "|".join(syntax.dump(d, annotations=hints) for d in definitions)
    reads = [definition_reads(d, hints=hints) for d in definitions]
    bound = _definition_bindings(reach, scope, reads, found, hints=hints)
    bound |= {f"wrapper={reach.describe(w, found)}" for w in wrappers}
    captured = [t for f in own for t in _captured(reach, f, found, entry)]
    digest = digest_of(text, *sorted(bound), *captured)
    line = definitions[0].lineno if definitions else 0  # type: ignore[attr-defined]
    return found.node(entry, digest, (path, line) if path else None)


def _method_functions(
    cls: type, name: str
) -> tuple[list[types.FunctionType], list[types.FunctionType]]:
    """Functions behind `cls.name`: those compiled from the method itself, and user wrappers."""
    own: list[types.FunctionType] = []
    wrappers: list[types.FunctionType] = []
    pending: list[object] = [cls.__dict__.get(name)]
    qualname = f"{cls.__qualname__}.{name}"
    while pending:
        value = pending.pop()
        if value is None:
            continue
        if isinstance(value, types.FunctionType):
            (own if value.__code__.co_qualname == qualname else wrappers).append(value)
            pending.append(value.__dict__.get("__wrapped__"))
        elif isinstance(value, (staticmethod, classmethod)):
            pending.append(value.__func__)
        elif isinstance(value, property):
            pending += [value.fget, value.fset, value.fdel]
        elif isinstance(value, (functools.cached_property, functools.partialmethod)):
            pending.append(value.func)
        else:
            try:
                pending.append(vars(value).get("__wrapped__"))
            except TypeError:
                continue
    return own, wrappers


_BUILDERS = {
    "stage": _function_node,
    "func": _function_node,
    "class": _class_node,
    "method": _method_node,
    "module": data.module_node,
    "value": data.value_node,
    "effects": data.effects_node,
    "extra": data.extra_node,
}
