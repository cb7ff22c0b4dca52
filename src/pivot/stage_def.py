"""`StageParams`: the pydantic v2 base class for a stage's parameters.

Public module (seeds API). Imports nothing of Pivot's.
"""

from __future__ import annotations

import functools
import operator
import sys
import types
import typing
from typing import Any

import pydantic

__all__ = ["StageParams"]


class StageParams(pydantic.BaseModel):
    """Base for stage parameters: typed, validated, unknown fields rejected.

    Pydantic deep-copies mutable defaults per instance, so `= []`, `= {}` and `= Model()` are safe.
    A field may be typed with a `typing.TypedDict` on every Python version (before 3.12 pydantic
    only takes `typing_extensions.TypedDict`; Pivot converts the annotation for it).
    """

    model_config = pydantic.ConfigDict(extra="forbid", validate_default=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if sys.version_info < (3, 12):
            _use_portable_typed_dicts(cls)
        super().__init_subclass__(**kwargs)


def _use_portable_typed_dicts(cls: type) -> None:
    """Replace `typing.TypedDict` classes in the class's own field annotations (also inside
    `list[...]`, `X | None`, ...) by equal `typing_extensions.TypedDict` ones."""
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - edited in place
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    for name, annotation in list(annotations.items()):
        value = annotation
        if isinstance(annotation, str):
            try:
                value = eval(annotation, namespace, dict(vars(cls)))  # the class's own annotation
            except Exception:  # a forward reference: pydantic resolves it later, as usual
                continue
        portable = _portable(value)
        if portable is not value:
            annotations[name] = portable


def _portable(hint: Any) -> Any:
    """`hint` with every `typing.TypedDict` class in it made a `typing_extensions` one (the
    same object when there is none)."""
    if isinstance(hint, type) and typing.is_typeddict(hint):
        return _portable_typed_dict(hint) if type(hint).__module__ == "typing" else hint
    args = typing.get_args(hint)
    if not args:
        return hint
    portable = tuple(_portable(arg) for arg in args)
    if all(new is old for new, old in zip(portable, args)):
        return hint
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return typing.Annotated[(portable[0], *hint.__metadata__)]
    if origin is types.UnionType or origin is typing.Union:
        return functools.reduce(operator.or_, portable)
    generic: Any = origin  # list, dict, tuple, set...: subscripted again with the new arguments
    return generic[portable] if isinstance(origin, type) else hint


@functools.cache
def _portable_typed_dict(typed_dict: type) -> type:
    import typing_extensions

    hints = typing.get_type_hints(typed_dict, include_extras=True)
    required = typed_dict.__required_keys__  # type: ignore[attr-defined]
    fields = {
        name: _portable(hint)
        if name in required
        else typing_extensions.NotRequired[_portable(hint)]
        for name, hint in hints.items()
    }
    make: Any = typing_extensions.TypedDict  # called, not subclassed: the fields are computed
    made = make(typed_dict.__name__, fields)
    made.__module__ = typed_dict.__module__
    made.__qualname__ = typed_dict.__qualname__
    made.__doc__ = typed_dict.__doc__
    return typing.cast(type, made)
