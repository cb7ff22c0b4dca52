"""Canonical text of a Python value, stable across processes, hash seeds and machines.

Plain data is written out; sets are sorted; objects are written as their class plus their
pickle state (`__reduce_ex__`), so no address or identity ever leaks in. Code-like objects
(functions, classes, modules) are handed to a `describe` callback that names them. Imports
nothing of ours.
"""

from __future__ import annotations

import collections
import enum
import functools
import hashlib
import re
import types
from collections.abc import Callable

__all__ = ["Describe", "Unhashable", "encode_value", "short_digest"]

Describe = Callable[[object], "str | None"]

_MAX_OBJECTS = 100_000
_MAX_DEPTH = 100
_INLINE = 200


class Unhashable(Exception):
    """A value has no stable content (an open file, a lock, a generator...)."""

    def __init__(self, reason: str, where: str = "") -> None:
        super().__init__(reason, where)
        self.reason = reason
        self.where = where


def short_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def encode_value(
    value: object, describe: Describe, report: Callable[[Unhashable], None] | None = None
) -> str:
    """The canonical text of `value`.

    A part with no stable value (a lock inside an object...) raises Unhashable naming its path;
    with `report`, it is reported instead and stands in as its type name, so the rest of the
    value still counts. A value too large or too deep always raises.
    """
    return _Encoder(describe, report).encode(value, 0, "")


def _text(value: str) -> str:
    if len(value) <= _INLINE:
        return repr(value)
    return "s#" + short_digest(value.encode("utf-8", "surrogatepass"))


def _bytes(value: bytes | bytearray) -> str:
    if len(value) <= _INLINE:
        return repr(bytes(value))
    return "b#" + short_digest(bytes(value))


_ATOMS: dict[type, Callable[[object], str]] = {
    type(None): lambda v: "None",
    bool: lambda v: "True" if v else "False",
    int: lambda v: f"i{v:x}",  # hex: no digit limit on huge ints
    float: lambda v: float.hex(v),  # type: ignore[arg-type]
    complex: lambda v: f"c({float.hex(v.real)},{float.hex(v.imag)})",  # type: ignore[attr-defined]
    str: lambda v: _text(v),  # type: ignore[arg-type]
    bytes: lambda v: _bytes(v),  # type: ignore[arg-type]
    bytearray: lambda v: "ba" + _bytes(v),  # type: ignore[arg-type]
    type(Ellipsis): lambda v: "Ellipsis",
    type(NotImplemented): lambda v: "NotImplemented",
    range: lambda v: repr(v),
}


class _Encoder:
    def __init__(self, describe: Describe, report: Callable[[Unhashable], None] | None) -> None:
        self.describe = describe
        self.report = report
        self.count = 0
        self.active: dict[int, int] = {}
        self.keep: list[object] = []  # temporaries stay alive so their ids are not reused

    def encode(self, value: object, depth: int, where: str) -> str:
        atom = _ATOMS.get(type(value))
        if atom is not None:
            return atom(value)
        self.count += 1
        if self.count > _MAX_OBJECTS:
            raise Unhashable(f"holds more than {_MAX_OBJECTS} objects", where)
        if depth > _MAX_DEPTH:
            raise Unhashable(f"is nested more than {_MAX_DEPTH} levels deep", where)
        named = self.describe(value)
        if named is not None:
            return named
        key = id(value)
        if key in self.active:
            return f"cycle({self.active[key]})"
        self.active[key] = len(self.active)
        self.keep.append(value)
        try:
            return self.compound(value, depth + 1, where)
        finally:
            del self.active[key]

    def compound(self, value: object, depth: int, where: str) -> str:
        kind = type(value)
        if (kind is list or kind is tuple) and isinstance(value, (list, tuple)):
            items = ",".join(self.encode(v, depth, f"{where}[{i}]") for i, v in enumerate(value))
            return f"{'L' if kind is list else 'T'}[{items}]"
        if kind is dict and isinstance(value, dict):  # key order ignored: a dict built from a
            # set of strings has the hash seed's order
            return "D[" + self.pairs(list(value.items()), depth, where, ordered=False) + "]"
        if (kind is set or kind is frozenset) and isinstance(value, (set, frozenset)):
            members = sorted(self.encode(v, depth, f"{where}{{...}}") for v in value)
            return ("S[" if kind is set else "F[") + ",".join(members) + "]"
        state = getattr(value, "__dict__", None)
        if type(state) is dict and _is_plain_object(kind):
            # what pickling would save (the class and __dict__), without __reduce_ex__'s cost
            return f"O({self.encode(kind, depth, where)},{self.state(state, depth, where)})"
        special = self.special(value, depth, where)
        return special if special is not None else self.reduced(value, depth, where)

    def pairs(
        self,
        items: list[tuple[object, object]],
        depth: int,
        where: str,
        *,
        ordered: bool,
        attributes: bool = False,
    ) -> str:
        encoded = []
        for key, item in items:
            if attributes and isinstance(key, str):
                label = f"{where}.{key}"
            else:
                label = f"{where}[{key!r}]" if type(key) in (str, int) else f"{where}[...]"
            encoded.append(f"{self.encode(key, depth, label)}:{self.encode(item, depth, label)}")
        return ",".join(encoded if ordered else sorted(encoded))

    def special(self, value: object, depth: int, where: str) -> str | None:
        if isinstance(value, enum.Enum):
            kind = self.encode(type(value), depth, where)
            return f"enum({kind},{value.name!r},{self.encode(value._value_, depth, where)})"
        if isinstance(value, re.Pattern):
            return f"re({self.encode(value.pattern, depth, where)},{value.flags})"
        if isinstance(value, functools.partial):
            parts = (value.func, value.args, dict(sorted(value.keywords.items())))
            return "partial" + self.encode(parts, depth, where)
        if isinstance(value, types.MethodType):
            return "bound" + self.encode((value.__func__, value.__self__), depth, where)
        if isinstance(value, (staticmethod, classmethod)):
            return f"{type(value).__name__}({self.encode(value.__func__, depth, where)})"
        if isinstance(value, property):
            return "property" + self.encode((value.fget, value.fset, value.fdel), depth, where)
        if isinstance(value, types.BuiltinMethodType):  # bound C method, e.g. ",".join
            owner = self.encode(value.__self__, depth, where)
            return f"cmethod({owner},{value.__name__!r})"
        if _is_plain_ndarray(value):
            return _ndarray(value)
        if isinstance(value, types.MappingProxyType):  # cannot be pickled: hash what it holds
            return "mappingproxy" + self.encode(dict(value), depth, where)
        if isinstance(value, _DICT_VIEWS):
            items: list[object] = list(value)  # type: ignore[call-overload]
            return type(value).__name__ + self.encode(items, depth, where)
        return None

    def reduced(self, value: object, depth: int, where: str) -> str:
        try:
            reduced = value.__reduce_ex__(4)
        except Exception as error:  # any failure means "no stable value"
            kind = type(value)
            reason = f"a {kind.__module__}.{kind.__qualname__} has no stable value ({error})"
            if self.report is None:
                raise Unhashable(reason, where) from None
            self.report(Unhashable(reason, where))
            return f"unhashable:{kind.__module__}.{kind.__qualname__}"
        if isinstance(reduced, str):
            return f"global({self.encode(type(value), depth, where)},{reduced!r})"
        parts = list(reduced) + [None] * (6 - len(reduced))
        func, args, state, listitems, dictitems = parts[:5]
        text = [self.encode(func, depth, where), self.encode(args, depth, where)]
        text.append(self.state(state, depth, where))
        if listitems is not None:
            text.append(self.encode(list(listitems), depth, where))
        if dictitems is not None:
            ordered = isinstance(value, collections.OrderedDict)
            pairs = self.pairs(list(dictitems), depth, where, ordered=ordered)
            text.append("D[" + pairs + "]")
        self.keep.append(reduced)
        return "R(" + ",".join(text) + ")"

    def state(self, state: object, depth: int, where: str) -> str:
        """An object's attributes: their order carries no meaning, so they are sorted."""
        if type(state) is dict and isinstance(state, dict):
            pairs = self.pairs(list(state.items()), depth, where, ordered=False, attributes=True)
            return "A[" + pairs + "]"
        if (
            type(state) is tuple
            and len(state) == 2
            and all(s is None or type(s) is dict for s in state)
        ):
            return "A2(" + ",".join(self.state(s, depth, where) for s in state) + ")"
        return self.encode(state, depth, where)


_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))


_STATE_ATOMS = (str, int, bool, type(None))


def plain_state_key(
    value: object, plain_kinds: dict[type, bool] | None = None
) -> tuple[object, ...] | None:
    """(class, attributes) of an instance that encodes as its class plus an `__dict__` holding
    only str/int/bool/None values, else None. Equal keys give equal encodings (with a describe
    that names classes only), so a caller may encode one such value and reuse the text.
    `plain_kinds` remembers, for a batch, which classes pickle plainly."""
    kind = type(value)
    state = getattr(value, "__dict__", None)
    if type(state) is not dict or isinstance(value, type):
        return None
    plain = plain_kinds.get(kind) if plain_kinds is not None else None
    if plain is None:
        plain = _is_plain_object(kind)
        if plain_kinds is not None:
            plain_kinds[kind] = plain
    if not plain:
        return None
    items: list[tuple[str, type, object]] = []
    for name, item in state.items():
        if type(item) not in _STATE_ATOMS:
            return None
        items.append((name, type(item), item))
    return (kind, tuple(items))


def _is_plain_object(kind: type) -> bool:
    """Instances that pickle as their class plus `__dict__` (most user classes, dataclasses)."""
    if any(base.__dict__.get("__slots__") for base in kind.__mro__[:-1]):  # () is no slot
        return False
    return all(getattr(kind, name, None) is default for name, default in _OBJECT_PICKLING.items())


# An instance whose class overrides none of these pickles as its class plus its __dict__.
_OBJECT_PICKLING = {
    name: getattr(object, name, None)
    for name in ("__reduce_ex__", "__reduce__", "__getstate__", "__getattribute__", "__new__")
}


def _is_plain_ndarray(value: object) -> bool:
    kind = type(value)
    return kind.__name__ == "ndarray" and kind.__module__ == "numpy" and value.dtype.kind != "O"  # type: ignore[attr-defined]


def _ndarray(value: object) -> str:
    array = value  # numpy is never imported here: duck-typed
    dtype = array.dtype.str  # type: ignore[attr-defined]
    shape = tuple(array.shape)  # type: ignore[attr-defined]
    content = array.tobytes(order="C")  # type: ignore[attr-defined]
    return f"ndarray({dtype!r},{shape!r},{short_digest(content)})"
