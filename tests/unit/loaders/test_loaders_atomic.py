"""Every built-in save is atomic: a failing save leaves the old file intact and no temp file."""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

import matplotlib.artist
import matplotlib.pyplot as plt
import pandas
import pytest

from pivot.loaders import CSV, JSON, JSONL, YAML, MatplotlibFigure, Pickle, Text

OLD = b"old content\n"


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise RuntimeError("cannot pickle this")


class _HalfWrittenFrame(pandas.DataFrame):
    """A DataFrame whose CSV export writes some bytes, then fails (e.g. disk full)."""

    def to_csv(self, path_or_buf: Any = None, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        pathlib.Path(path_or_buf).write_bytes(b"a,b\n1,")
        raise OSError("disk full")


class _ExplodingArtist(matplotlib.artist.Artist):
    """Fails while the figure is being drawn, after savefig has opened its output."""

    def draw(self, renderer: Any) -> None:
        raise RuntimeError("cannot draw")


def _exploding_figure() -> Any:
    figure, axes = plt.subplots()
    axes.plot([1, 2], [3, 4])
    figure.add_artist(_ExplodingArtist())
    return figure


FAILING_SAVES: list[tuple[Any, Any, type[BaseException]]] = [
    (JSON(), {"bad": object()}, TypeError),
    (JSONL(), [{"ok": 1}, {"bad": object()}], TypeError),
    (YAML(), {"bad": object()}, Exception),
    (Text(), b"bytes, not str", AttributeError),
    (Pickle(), {"bad": _Unpicklable()}, RuntimeError),
    (CSV(), _HalfWrittenFrame({"a": [1]}), OSError),
]


def _listing(directory: pathlib.Path) -> list[str]:
    return sorted(os.listdir(directory))


def _case_id(value: object) -> str:
    """A test id that is the same in every process: no memory addresses (pytest-xdist workers
    must collect identical ids)."""
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))[:30]


@pytest.mark.parametrize(("loader", "value", "error"), FAILING_SAVES, ids=_case_id)
def test_failed_save_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: pathlib.Path, loader: Any, value: Any, error: type[BaseException]
) -> None:
    target = tmp_path / "output.data"
    target.write_bytes(OLD)
    with pytest.raises(error):
        loader.save(value, target)
    assert target.read_bytes() == OLD
    assert _listing(tmp_path) == ["output.data"]


@pytest.mark.parametrize(("loader", "value", "error"), FAILING_SAVES, ids=_case_id)
def test_failed_first_save_leaves_nothing(
    tmp_path: pathlib.Path, loader: Any, value: Any, error: type[BaseException]
) -> None:
    with pytest.raises(error):
        loader.save(value, tmp_path / "output.data")
    assert _listing(tmp_path) == []


def test_failed_figure_save_keeps_old_file_no_temp_and_closes_the_figure(
    tmp_path: pathlib.Path,
) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(OLD)
    figure = _exploding_figure()
    with pytest.raises(RuntimeError, match="cannot draw"):
        MatplotlibFigure().save(figure, target)
    assert target.read_bytes() == OLD
    assert _listing(tmp_path) == ["plot.png"]
    assert figure.number not in plt.get_fignums()


SUCCESSFUL_SAVES: list[tuple[Any, Any]] = [
    (JSON(), {"new": 1}),
    (JSONL(), [{"new": 1}]),
    (YAML(), {"new": 1}),
    (Text(), "new"),
    (Pickle(), {"new": 1}),
    (CSV(), pandas.DataFrame({"new": [1]})),
]


@pytest.mark.parametrize(("loader", "value"), SUCCESSFUL_SAVES, ids=_case_id)
def test_save_replaces_the_file_as_a_new_inode(
    tmp_path: pathlib.Path, loader: Any, value: Any
) -> None:
    """os.replace, not an in-place rewrite: a hard link to the old file keeps the old bytes."""
    target = tmp_path / "output.data"
    target.write_bytes(OLD)
    os.link(target, tmp_path / "old-link")
    loader.save(value, target)
    assert (tmp_path / "old-link").read_bytes() == OLD
    assert target.read_bytes() != OLD
    assert _listing(tmp_path) == ["old-link", "output.data"]


def test_figure_save_replaces_the_file_as_a_new_inode(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(OLD)
    os.link(target, tmp_path / "old-link")
    figure, _axes = plt.subplots()
    MatplotlibFigure().save(figure, target)
    assert (tmp_path / "old-link").read_bytes() == OLD
    assert target.read_bytes().startswith(b"\x89PNG")
