"""What a stage's code can reach: the walk over items, naming code-like objects, resolving names.

`Reach` walks from a stage function to every function, class, method, module-level value and
module it can get to, memoising one `Node` per item for a whole run; `code` builds the nodes.
Imports nothing of ours but sibling modules.
"""

from __future__ import annotations

import collections
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterable, Mapping

from pivot.fingerprint import code
from pivot.fingerprint.facts import EffectFacts
from pivot.fingerprint.model import Collector, Item, Node, Scope, function_entry_name
from pivot.fingerprint.origin import (
    is_pivot_name,
    is_pivot_object,
    module_file,
    top_level_name,
)
from pivot.fingerprint.quiet import ImportTime
from pivot.fingerprint.sources import Sources, absolute_import
from pivot.fingerprint.syntax import Chain, LocalImport
from pivot.fingerprint.values import Unhashable, encode_value, plain_state_key

__all__ = ["Reach"]

_MISSING = object()


class Reach:
    """Walks from stage functions to every node they reach; nodes are memoised for one run."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.origins = sources.origins
        self.import_time = ImportTime(sources)
        self._memo: dict[tuple[str, int, str, str], Node] = {}
        self._effects: dict[str, tuple[EffectFacts, ...]] = {}
        self._plain_extras: dict[tuple[object, ...], Node] = {}
        self._plain_kinds: dict[type, bool] = {}
        self._globals: dict[tuple[int, str, Chain], tuple[object, str | None, Collector]] = {}

    def walk(self, roots: Iterable[Item]) -> list[Node]:
        """Every node reachable from `roots`, breadth first (a deterministic order)."""
        seen: set[tuple[str, int, str, str]] = set()
        found: list[Node] = []
        queue = collections.deque(roots)
        while queue:
            item = queue.popleft()
            key = item.key()
            if key in seen:
                continue
            seen.add(key)
            node = self.node(item)
            found.append(node)
            queue.extend(node.children)
        return found

    def node(self, item: Item) -> Node:
        if item.kind in _ROOT_KINDS:
            return self._root_node(item)
        key = item.key()
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = code.build_node(self, item)
        return known

    def _root_node(self, item: Item) -> Node:
        """A stage function or a stage's extra object: each is the root of one stage, so its
        node is not kept for the run (at 100,000 stages they would be most of the memory);
        an extra object of plain settings (a loader) shares the node of an equal one."""
        plain = plain_state_key(item.obj, self._plain_kinds) if item.kind == "extra" else None
        if plain is None:
            return code.build_node(self, item)
        known = self._plain_extras.get(plain)
        if known is None:
            known = code.build_node(self, item)
            if known.warnings or known.failed:
                return known
            self._plain_extras[plain] = known
        if known.entry == item.name:
            return known
        return Node(
            item.name,
            known.digest,
            known.location,
            known.files,
            known.children,
            known.packages,
            known.warnings,
            known.links,
        )

    def known(self, item: Item) -> Node | None:
        return self._memo.get(item.key())

    # --- naming code-like objects ---------------------------------------------------------

    def describe(self, obj: object, found: Collector) -> str | None:
        """A stable name for a module, class or function (queued if user code); None for data."""
        if isinstance(obj, types.ModuleType):
            return self._describe_module(obj, found)
        if isinstance(obj, type):
            return self._describe_class(obj, found)
        if isinstance(obj, types.FunctionType):
            own = self._describe_function(obj, found)
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is not None:
                own = f"wrapper({own},{self.describe(wrapped, found) or 'value'})"
            registry = obj.__dict__.get("registry")  # functools.singledispatch implementations
            if isinstance(registry, Mapping):
                own += self._describe_registry(registry, found)
            return own
        if isinstance(obj, types.BuiltinFunctionType):
            owner = obj.__self__
            if owner is None or isinstance(owner, types.ModuleType):
                found.library(obj.__module__)
                return f"libfunc:{obj.__module__}.{obj.__qualname__}"
            return None
        if isinstance(obj, _DESCRIPTORS):
            owner_class = obj.__objclass__
            found.library(owner_class.__module__)
            return f"libfunc:{owner_class.__module__}.{obj.__qualname__}"
        if type(obj).__module__ in _TYPING_MODULES or isinstance(obj, _ALIASES):
            return f"typing:{obj!r}"  # Annotated, Optional[int], list[str]: objects on 3.13
        return self._describe_wrapper(obj, found)

    def _describe_registry(self, registry: Mapping[object, object], found: Collector) -> str:
        implementations = []
        for kind, implementation in registry.items():
            key = self.describe(kind, found) or type(kind).__qualname__
            implementations.append(f"{key}:{self.describe(implementation, found) or 'value'}")
        return "registry(" + ",".join(sorted(implementations)) + ")"

    def _describe_module(self, module: types.ModuleType, found: Collector) -> str:
        if self.origins.is_user_module(module):
            found.children.append(Item("module", module))
            return f"module:{module.__name__}"
        found.library(module.__name__)
        return f"libmod:{module.__name__}"

    def _describe_class(self, cls: type, found: Collector) -> str:
        module_name = str(getattr(cls, "__module__", ""))
        if self.is_user_class(cls):
            found.children.append(Item("class", cls))
            return f"class:{module_name}.{cls.__qualname__}"
        found.library(module_name)
        if is_pivot_name(module_name):
            return f"pivot:{cls.__qualname__}"
        return f"libtype:{module_name}.{cls.__qualname__}"

    def _describe_function(self, func: types.FunctionType, found: Collector) -> str:
        if self.is_user_function(func):
            found.children.append(Item("func", func))
            return f"func:{function_entry_name(func)}"
        module_name = func.__module__
        found.library(module_name)
        if isinstance(module_name, str) and is_pivot_name(module_name):
            return f"pivot:{func.__qualname__}"
        return f"libfunc:{module_name}.{func.__qualname__}"

    def _describe_wrapper(self, obj: object, found: Collector) -> str | None:
        """A library callable wrapping user code (e.g. `functools.lru_cache`)."""
        try:
            wrapped = vars(obj).get("__wrapped__")
        except Exception:  # no __dict__, or one that raises: not a wrapper
            return None
        if wrapped is None or not callable(obj):
            return None
        kind = self.describe(type(obj), found)
        return f"wrapper({kind},{self.describe(wrapped, found) or 'value'})"

    def is_user_class(self, cls: type) -> bool:
        return self.origins.is_user_class(cls)

    def is_user_function(self, func: types.FunctionType) -> bool:
        return self.origins.is_user_function(func)

    # --- modules ----------------------------------------------------------------------------

    def module_effects(self, module_name: str, found: Collector) -> None:
        """Queue the import-time effects of a user module whose code or data is reached."""
        module = sys.modules.get(module_name)
        if isinstance(module, types.ModuleType) and self.effects(module):
            found.children.append(Item("effects", module))

    def effects(self, module: types.ModuleType) -> tuple[EffectFacts, ...]:
        """Module-level statements of a user module that act (calls, loops, attribute
        assignments...), except calls on Pivot's own objects (`pipeline.register(...)`)."""
        name = module.__name__
        known = self._effects.get(name)
        if known is None:
            known = ()
            path = module_file(module)
            found = self.sources.facts(path) if path is not None else None
            if found is not None and self.origins.is_user_module(module):
                namespace = vars(module)
                known = tuple(s for s in found.effects if not _on_pivot(s, namespace))
            self._effects[name] = known
        return known

    def literal_import(self, scope: Scope, name: str, found: Collector) -> str | None:
        """`importlib.import_module("pkg.plugins.x")`: the user module counts whole."""
        level = len(name) - len(name.lstrip("."))
        absolute = absolute_import(name[level:], level, scope.package) if level else name
        if not absolute:
            return None
        module = self._load(absolute, found)
        if module is _MISSING:
            return None
        return f"import_module({absolute})={self.describe(module, found)}"

    def observed_item(self, kind: str, reference: str) -> Item | None:
        """The item of an observed `code:<module>:<qualname>` or `module:<module>` reference,
        None when it no longer exists (or is not user code)."""
        module_name, _, qualname = reference.partition(":")
        module = self._load(module_name, Collector())
        if not isinstance(module, types.ModuleType) or not self.origins.is_user_module(module):
            return None
        if kind == "module":  # imported during the run: what its import does counts
            return Item("effects", module) if self.effects(module) else None
        if kind != "code" or not qualname:
            return None
        owner: object = module
        target: object = module
        for part in qualname.split("."):
            owner = target
            namespace = vars(target) if isinstance(target, (type, types.ModuleType)) else {}
            target = namespace.get(part, _MISSING)
            if target is _MISSING:
                return None
        if isinstance(target, type):
            return Item("class", target)
        if isinstance(owner, type):
            return Item("method", owner, name=qualname.rsplit(".", 1)[-1])
        if isinstance(target, types.FunctionType):
            return Item("func", target)
        return None

    # --- values ---------------------------------------------------------------------------

    def encode(self, value: object, found: Collector, label: str) -> str:
        """The canonical text of `value`; each part without a stable value becomes a warning."""

        def report(error: Unhashable) -> None:
            found.warnings.append(
                f"{label}{error.where} cannot be fingerprinted: {error.reason}; changes to it "
                "will not re-run the stage (make it plain data, or pass it as a param or a Dep)"
            )

        try:
            return encode_value(value, lambda obj: self.describe(obj, found), report)
        except Unhashable as error:
            report(error)
        except Exception as error:  # a user object raising while being looked at
            report(Unhashable(f"raised {type(error).__name__}: {error}"))
        kind = type(value)
        return f"unhashable:{kind.__module__}.{kind.__qualname__}"

    # --- names ----------------------------------------------------------------------------

    def bindings(
        self, scope: Scope, chains: Iterable[Chain], found: Collector, *, call_time: bool
    ) -> set[str]:
        """`chain=target` for each name chain read; `call_time` chains may be locals."""
        out: set[str] = set()
        for chain in chains:
            try:
                described = self.resolve(scope, chain, found, call_time=call_time)
            except Exception as error:  # a user object raising while being looked at
                name = ".".join(chain)
                found.warnings.append(
                    f"{name!r} (read in {scope.module_name}) could not be fingerprinted "
                    f"({type(error).__name__}: {error}); changes to it will not re-run the stage"
                )
                described = f"{name}=error"
            if described is not None:
                out.add(described)
        return out

    def string_bindings(self, scope: Scope, names: Iterable[str], found: Collector) -> set[str]:
        """Globals named inside string literals (`df.query("price > @MIN_PRICE")`, see
        `syntax.string_names`) count as read."""
        chains = [
            (name,)
            for name in names
            if name in scope.namespace and not (name.startswith("__") and name.endswith("__"))
        ]
        return {f"str:{b}" for b in self.bindings(scope, chains, found, call_time=False)}

    def resolve(
        self, scope: Scope, chain: Chain, found: Collector, *, call_time: bool
    ) -> str | None:
        root = chain[0]
        start: object = _MISSING
        if call_time and scope.global_names is not None and root not in scope.global_names:
            if root in scope.imports:
                start = self._import_target(scope.imports[root], scope.package, found)
            if start is _MISSING:
                return None  # a local, parameter or closure variable (closures are hashed whole)
        elif root in scope.namespace:
            return self._global(scope, chain, found)
        elif call_time and root in scope.imports:
            start = self._import_target(scope.imports[root], scope.package, found)
        if start is _MISSING:
            return None  # a builtin, or a name that does not exist
        return self._follow(start, chain, scope.module_name, found)

    def _global(self, scope: Scope, chain: Chain, found: Collector) -> str | None:
        """A chain from a module-level name: the same for every function of that module, so
        it is resolved once a run and what it found is added to each reader's `found`."""
        key = (id(scope.namespace), scope.module_name, chain)
        known = self._globals.get(key)
        if known is None or known[0] is not scope.namespace:
            seen = Collector()
            target = self._follow(scope.namespace[chain[0]], chain, scope.module_name, seen)
            known = self._globals[key] = (scope.namespace, target, seen)
        _namespace, target, seen = known
        found.children += seen.children
        found.packages |= seen.packages
        found.files |= seen.files
        found.warnings += seen.warnings
        return target

    def _follow(self, obj: object, chain: Chain, owner: str, found: Collector) -> str | None:
        """Walk `a.b.c` through user modules; stop at the first object that is not one."""
        used, name = 1, chain[0]
        while used < len(chain) and isinstance(obj, types.ModuleType):
            if not self.origins.is_user_module(obj):
                break
            found.files.update(self.sources.closure(obj.__name__))
            attribute = _module_attribute(obj, chain[used])
            if attribute is _MISSING:
                return None
            owner, name, obj = obj.__name__, chain[used], attribute
            used += 1
        target = self.describe(obj, found)
        if target is None:
            found.children.append(Item("value", obj, owner, name))
            target = f"const:{owner}.{name}"
        return f"{'.'.join(chain[:used])}={target}"

    def _import_target(self, local: LocalImport, package: str, found: Collector) -> object:
        base = absolute_import(local.module, local.level, package)
        if not base:
            return _MISSING
        module = self._load(base, found)
        if local.top and module is not _MISSING:
            return sys.modules.get(base.partition(".")[0], _MISSING)
        if local.attr is None or module is _MISSING:
            return module
        attribute = getattr(module, local.attr, _MISSING)
        if attribute is _MISSING:
            return self._load(f"{base}.{local.attr}", found)
        return attribute

    def _load(self, name: str, found: Collector) -> object:
        """A module imported inside a function: user modules are imported, libraries only named."""
        module = sys.modules.get(name)
        if module is not None:
            return module
        try:
            spec = importlib.util.find_spec(top_level_name(name))
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if not isinstance(origin, str) or not self.origins.is_user_file(os.path.abspath(origin)):
            found.library(name)
            return _MISSING
        try:
            return importlib.import_module(name)
        except Exception as error:  # user code failing to import: report, do not crash
            found.warnings.append(
                f"module {name!r} could not be imported to fingerprint it: {error!r}"
            )
            return _MISSING


_ROOT_KINDS = frozenset({"stage", "extra"})
_TYPING_MODULES = frozenset({"typing", "typing_extensions"})
_ALIASES = (types.GenericAlias, types.UnionType)

_DESCRIPTORS = (
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)


def _on_pivot(statement: EffectFacts, namespace: Mapping[str, object]) -> bool:
    """A call on a Pivot object (`pipeline.register(train)`), or a loop or block of nothing else
    (`for i in range(4): pipeline.register(...)`): registration, not behaviour."""
    if statement.call_roots is None:
        return False
    return all(is_pivot_object(namespace.get(root)) for root in statement.call_roots)


def _module_attribute(module: types.ModuleType, name: str) -> object:
    try:
        found = getattr(module, name, _MISSING)
    except Exception:  # a module __getattr__ raising something odd
        found = _MISSING
    if found is _MISSING:
        found = sys.modules.get(f"{module.__name__}.{name}", _MISSING)
    return found
