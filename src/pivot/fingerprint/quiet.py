"""Whether importing the user's modules ran any of their functions: when it did not, an edit
inside a function body can change only the code that reaches that function.

Importing a module runs its module-level statements (`facts.ModuleFacts.surface_names`). A
module is *quiet* when those statements call no user function or class, and use no user object
in a way that runs its code (an instance's operators, a class with import-time hooks). When
every module that matters is quiet, the state the modules leave after import is decided by what
their statements say, not by the bodies of their functions. Imports nothing of ours but sibling
modules.
"""

from __future__ import annotations

import builtins
import functools
import os
import sys
import types
from collections.abc import Collection, Iterable, Mapping

from pivot.fingerprint.facts import FORMAT as facts_format
from pivot.fingerprint.facts import SurfaceFacts
from pivot.fingerprint.origin import is_pivot_object, module_file
from pivot.fingerprint.sources import Sources
from pivot.fingerprint.syntax import DYNAMIC_CALLS, Chain
from pivot.fingerprint.values import short_digest

__all__ = ["ImportTime"]

_MISSING = object()
_OPAQUE = object()  # reading it would run user code (a module `__getattr__`, a descriptor...)
_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_CONTAINERS = (list, tuple, set, frozenset, dict)
_CONTAINER_ITEMS = 10_000  # larger containers are not searched: they count as user objects
_HOOKS = ("__init_subclass__", "__class_getitem__")
FORMAT = 1  # of the stored verdicts: bump whenever what makes a module quiet changes


def _digest(listed: list[tuple[str, int, int]]) -> bytes:
    return short_digest(repr(listed).encode("utf-8", "surrogatepass")).encode("ascii")


_CALL, _RESULT, _READ, _NAMED, _STORE = range(5)


class _Uses:
    """The verdicts on the names one module's statements use, each chain and role once."""

    def __init__(self, checker: ImportTime, namespace: dict[str, object]) -> None:
        self.checker = checker
        self.namespace = namespace
        self.known: dict[tuple[Chain, int], bool] = {}

    def quiet(self, chain: Chain, role: int) -> bool:
        known = self.known.get((chain, role))
        if known is None:
            if role in (_CALL, _RESULT) and chain[-1] in DYNAMIC_CALLS:
                known = False  # runs code given as text or by name
            else:
                target = self.checker.resolve(self.namespace, chain)
                known = self.checker.quiet_use(target, role)
            self.known[(chain, role)] = known
        return known

    def statement_quiet(self, found: SurfaceFacts) -> bool:
        if found.dynamic:
            return False
        calls: Iterable[Chain] = found.calls
        namespace = self.namespace
        if found.call_roots is not None and all(
            is_pivot_object(namespace.get(root)) for root in found.call_roots
        ):
            # registration (`pipeline.register(stages.train)`): Pivot keeps what it is given,
            # it does not call it; only the calls made to compute the arguments count
            roots = set(found.call_roots)
            calls = [c for c in found.calls if c[0] not in roots]
        elif not (
            all(self.quiet(c, _READ) for c in found.reads)
            and all(self.quiet(c, _NAMED) for c in found.named)
            and all(self.quiet(c, _STORE) for c in found.stores)
        ):
            return False
        return all(self.quiet(c, _CALL) for c in calls) and all(
            self.quiet(c, _RESULT) for c in found.results
        )


class ImportTime:
    """Which loaded user modules are quiet; memoised for one run."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.origins = sources.origins
        self._files: dict[str, bool] = {}
        self._classes: dict[type, bool] = {}
        self._scope: dict[str | None, tuple[int, bool]] = {}

    def scope_quiet(self, root: str | None) -> bool:
        """Whether every loaded user module under `root` (every one, without a root) is quiet.

        The verdict is kept in the store (one row per root) with a digest of the (mtime_ns,
        size) of every loaded user module: while none of them changes, later runs read it
        instead of checking every module's statements again."""
        count = len(sys.modules)
        known = self._scope.get(root)
        if known is not None and known[0] == count:
            return known[1]
        prefix = None if root is None else os.path.join(root, "")
        users = self._users()
        if users is None:  # an IPython or notebook session
            self._scope[root] = (count, False)
            return False
        stats = self.sources.stats
        store = self.sources.store
        key = f"quiet/{FORMAT}.{facts_format}/{sys.version_info[0]}.{sys.version_info[1]}|{root or ''}"
        state = _digest(sorted((path, *stats.get(path)) for path, _module in users))
        stored = store.get(key) if store is not None else None
        if stored is not None and stored[:-1] == state and stored[-1:] in (b"0", b"1"):
            verdict = stored[-1:] == b"1"
        else:
            verdict = all(
                self.module_quiet(module)
                for path, module in users
                if prefix is None or path.startswith(prefix)
            )
            if store is not None and all(stats.is_settled(path) for path, _module in users):
                store.put(key, state + (b"1" if verdict else b"0"))
        self._scope[root] = (count, verdict)
        return verdict

    def _users(self) -> list[tuple[str, types.ModuleType]] | None:
        """The loaded user modules with a file, by file; None when one without a file (code
        typed in IPython or a notebook) is not quiet."""
        users: list[tuple[str, types.ModuleType]] = []
        for module in list(sys.modules.values()):
            if not isinstance(module, types.ModuleType) or not self.origins.is_user_module(module):
                continue
            path = module_file(module)
            if path is None:
                if not self.module_quiet(module):
                    return None
                continue
            users.append((path, module))
        return users

    def prepare(self, root: str | None, skip: Collection[str]) -> None:
        """Find the verdicts `scope_quiet(root)` may need, but those of the files in `skip`
        (another process finds those: see `adopt`)."""
        prefix = None if root is None else os.path.join(root, "")
        for path, module in self._users() or ():
            if path not in skip and (prefix is None or path.startswith(prefix)):
                self.module_quiet(module)

    def verdicts(self, paths: Iterable[str]) -> dict[str, bool]:
        """Whether the loaded user module of each file is quiet, by file (`file_quiet`)."""
        return {path: self.file_quiet(path) for path in paths}

    def adopt(self, verdicts: Mapping[str, bool]) -> None:
        """Take verdicts another process found from the same modules (a forked copy's)."""
        self._files.update(verdicts)

    def file_quiet(self, path: str) -> bool:
        """Whether the loaded user module of file `path` is quiet (False if none is loaded)."""
        known = self._files.get(path)
        if known is not None:
            return known
        module = self.sources.user_module_of(path)
        return self.module_quiet(module) if module is not None else False

    def module_quiet(self, module: types.ModuleType) -> bool:
        path = module_file(module)
        if (
            path is None
        ):  # a namespace package runs nothing; cells typed in IPython may run anything
            return "get_ipython" not in vars(module)
        known = self._files.get(path)
        if known is None:
            known = self._files[path] = self._quiet(module, path)
        return known

    def _quiet(self, module: types.ModuleType, path: str) -> bool:
        uses = self.sources.import_uses(path)
        if uses is None:
            return False
        namespace = vars(module)
        if isinstance(namespace.get("__getattr__"), types.FunctionType):
            return False  # reading any missing name runs the module's own code
        verdicts = _Uses(self, namespace)
        return all(verdicts.statement_quiet(u) for u in uses)

    def quiet_use(self, target: object, role: int) -> bool:
        """Whether using `target` so (called, read, named as a hint or base, assigned into)
        runs no user code."""
        if role == _CALL:
            return target is not _MISSING and not self._user(target)
        if role == _RESULT:  # called, and its result called: a class makes a library object
            return isinstance(target, type) and not self._user(target)
        if role == _READ:
            return not self._user(target)
        if role == _NAMED:  # a user class is quiet without import-time hooks
            if target is _MISSING or isinstance(target, (types.FunctionType, types.ModuleType)):
                return True
            if isinstance(target, type):
                return self._inert_class(target)
            return not self._user(target)
        # _STORE: assigning an attribute or item of `target`; of a module, no code runs
        if target is _MISSING:
            return False
        if isinstance(target, types.ModuleType):
            return True
        if isinstance(target, type):
            return not self._user_class(type(target))
        return not self._user(target)

    def resolve(self, namespace: dict[str, object], chain: Chain) -> object:
        """What a chain names after import, without running user code to find out."""
        target = namespace.get(chain[0], _MISSING)
        if target is _MISSING:
            target = vars(builtins).get(chain[0], _MISSING)
        for name in chain[1:]:
            if target is _MISSING or target is _OPAQUE:
                return target
            if isinstance(target, types.ModuleType) and self.origins.is_user_module(target):
                attributes = vars(target)
                if isinstance(attributes.get("__getattr__"), types.FunctionType):
                    return _OPAQUE
                found = attributes.get(name, _MISSING)
                if found is _MISSING:
                    found = sys.modules.get(f"{target.__name__}.{name}", _MISSING)
                target = found
            elif self._user(target):
                return _OPAQUE  # an attribute of user code: a descriptor, a property...
            else:
                try:
                    target = getattr(target, name, _MISSING)
                except Exception:
                    return _OPAQUE
        return target

    def _user(self, obj: object, budget: list[int] | None = None) -> bool:
        """Whether `obj` is user code, or can run user code when used (an instance of a user
        class, a container holding user objects, a library wrapper around a user function)."""
        if obj is _OPAQUE:
            return True
        if obj is _MISSING or isinstance(obj, _PLAIN):
            return False
        if isinstance(obj, types.ModuleType):
            return self.origins.is_user_module(obj)
        if isinstance(obj, types.FunctionType):
            return self.origins.is_user_function(obj)
        if isinstance(obj, type):
            return self._user_class(obj)
        if isinstance(obj, types.MethodType):
            return self._user(obj.__func__) or self._user(obj.__self__)
        if isinstance(obj, types.BuiltinFunctionType):
            owner = obj.__self__
            return (
                owner is not None and not isinstance(owner, types.ModuleType) and self._user(owner)
            )
        if isinstance(obj, _CONTAINERS):
            return self._user_container(obj, [_CONTAINER_ITEMS] if budget is None else budget)
        if isinstance(obj, functools.partial):
            return any(self._user(part) for part in (obj.func, *obj.args, *obj.keywords.values()))
        if self._user_class(type(obj)):
            return True
        try:
            wrapped = vars(obj).get("__wrapped__")
        except TypeError:
            return False
        return wrapped is not None and self._user(wrapped)

    def _user_container(
        self,
        obj: Collection[object] | Mapping[object, object],
        budget: list[int],
    ) -> bool:
        parts: list[object] = (
            [p for item in obj.items() for p in item] if isinstance(obj, dict) else list(obj)
        )
        budget[0] -= len(parts)
        return budget[0] < 0 or any(self._user(part, budget) for part in parts)

    def _user_class(self, cls: type) -> bool:
        known = self._classes.get(cls)
        if known is None:
            known = self.origins.is_user_class(cls)
            if not known and type(cls) is not type:
                known = self._user_class(type(cls))  # a user metaclass
            self._classes[cls] = known
        return known

    def _inert_class(self, cls: type) -> bool:
        """A class whose naming runs no user code: no user metaclass, no user class in its MRO
        defining `__init_subclass__` or `__class_getitem__`."""
        if type(cls) is not type and self._user_class(type(cls)):
            return False
        for base in cls.__mro__:
            if self._user_class(base) and any(hook in vars(base) for hook in _HOOKS):
                return False
        return True
