"""Registration reads a plain function's parameters and hints without `inspect.signature` and
`typing.get_type_hints`: what it reads is exactly what those would give. (No `from __future__
import annotations` here: the hints must be objects, as in most pipelines.)"""

import functools
import inspect
import typing
from typing import Annotated, Any

import pytest

from pivot.loaders import Text
from pivot.outputs import Dep, Out
from pivot.spec import extraction

_TEXT = Annotated[str, Dep("in.txt", Text())]


def _plain(a: _TEXT, b: int = 3) -> Annotated[str, Out("out.txt", Text())]:
    return a * b


def _every_kind(a, b=1, /, c=2, *args, d, e=5, **kw) -> None:  # type: ignore[no-untyped-def]
    return None


def _keyword_only(*, a: _TEXT, b: list[int] | None = None) -> None:
    return None


def _no_hints(a, b=None):  # type: ignore[no-untyped-def]
    return None


@functools.wraps(_plain)
def _wrapper(*args: Any, **kwargs: Any) -> str:
    return _plain(*args, **kwargs)


def _forward(a: Annotated["Later", Dep("x", Text())]) -> None:
    return None


class Later:
    pass


FUNCTIONS = [_plain, _every_kind, _keyword_only, _no_hints, _wrapper, _forward, len]
IDS = ["plain", "every_kind", "keyword_only", "no_hints", "wrapper", "forward", "builtin"]


@pytest.mark.parametrize("func", FUNCTIONS, ids=IDS)
def test_parameters_are_those_of_inspect_signature(func: Any) -> None:
    expected = [
        (p.name, p.kind, p.default is not p.empty)
        for p in inspect.signature(func).parameters.values()
    ]
    assert [tuple(p) for p in extraction._parameters(func)] == expected


@pytest.mark.parametrize("func", FUNCTIONS[:-1], ids=IDS[:-1])
def test_fast_hints_are_those_of_get_type_hints(func: Any) -> None:
    """Plain classes and Annotated[class, ...] are taken as they are; a generic, a union or a
    string anywhere leaves the work to typing."""
    fast = extraction._function_hints(func)
    expected = typing.get_type_hints(func, include_extras=True)
    if func in (_keyword_only, _forward):
        assert fast is None
    else:
        assert fast == expected
        assert list(fast) == list(expected)
