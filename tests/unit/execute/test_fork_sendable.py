"""The fork pool refuses what loky's pool could not send: `ForkExecutor._check_value` raises
exactly when pickling the value raises, without pickling the usual loaders whole."""

from __future__ import annotations

import dataclasses
import pickle
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import PrivateAttr

from pivot import loaders
from pivot.execute import executors
from pivot.outputs import Metric, Out
from pivot.stage_def import StageParams


@dataclasses.dataclass(frozen=True)
class Shaped(loaders.Writer[str]):
    shape: Callable[[str], str] = str.upper

    def save(self, data: str, path: Any) -> None:
        raise NotImplementedError


class Options(StageParams):
    size: int = 3


class Locked(StageParams):
    """Params whose pickle holds more than their fields: a private lock."""

    size: int = 3
    _lock: Any = PrivateAttr(default_factory=threading.Lock)


def _checker() -> executors.ForkExecutor:
    pool = executors.ForkExecutor.__new__(executors.ForkExecutor)  # no workers: only the check
    pool._sendable = set()
    pool._plain_classes = {}
    return pool


GOOD = [
    loaders.Text(),
    loaders.JSON(),
    Out("a.txt", loaders.Text()),
    Metric("m.json"),
    Shaped(),
    Options(),
    {"k": (1, 2.0, None, b"x")},
    dict,
]
BAD = [
    Shaped(shape=lambda text: text),
    loaders.JSON(empty_factory=lambda: {}),
    Out("a.txt", Shaped(shape=lambda text: text)),
    [1, {"nested": threading.Lock()}],
    lambda: None,
    Locked(),
]


@pytest.mark.parametrize("value", GOOD)
def test_what_pickles_passes(value: object) -> None:
    pickle.dumps(value)
    checker = _checker()

    checker._check_value(value)
    checker._check_value(value)  # what was checked once is known


@pytest.mark.parametrize("value", BAD)
def test_what_does_not_pickle_raises_what_pickling_raises(value: object) -> None:
    with pytest.raises(Exception) as pickled:
        pickle.dumps(value)

    with pytest.raises(type(pickled.value)):
        _checker()._check_value(value)
