"""Loaders: how a declared file is read into a value and a value written to the file.

Public module (seeds API). Heavy libraries (pandas, matplotlib) are imported inside the methods
that use them, never at import time. Imports of Pivot: `pivot.errors` and `pivot.fs` only.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import pathlib
import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pivot import fs
from pivot.errors import LoaderError

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = [
    "CSV",
    "JSON",
    "JSONL",
    "YAML",
    "Loader",
    "MatplotlibFigure",
    "PathOnly",
    "Pickle",
    "Reader",
    "Text",
    "Writer",
    "supports_empty",
    "text_bytes",
]

R = TypeVar("R")
W = TypeVar("W")


class Reader(abc.ABC, Generic[R]):
    """Reads a file into a value: usable on dependencies."""

    @abc.abstractmethod
    def load(self, path: pathlib.Path) -> R:
        """Read `path` and return its value."""


class Writer(abc.ABC, Generic[W]):
    """Writes a value to a file: usable on outputs."""

    @abc.abstractmethod
    def save(self, data: W, path: pathlib.Path) -> None:
        """Write `data` to `path` (built-ins write atomically)."""


class Loader(Reader[R], Writer[W], Generic[W, R]):
    """Reads and writes: usable everywhere, and with `IncrementalOut` when it defines `empty()`."""

    def empty(self) -> R:
        """The value an `IncrementalOut` starts from on its first run."""
        raise NotImplementedError(
            f"{type(self).__name__} has no empty(): define `def empty(self)` on the loader "
            "to use it with IncrementalOut"
        )


def supports_empty(loader: object) -> bool:
    """True when `loader` is a `Loader` whose class overrides `empty()`."""
    return isinstance(loader, Loader) and type(loader).empty is not Loader.empty


def text_bytes(text: str) -> bytes:
    """What a text file Pivot's loaders write holds for `text`: UTF-8, no newline translation
    (a pool worker caches a `Text` output from these bytes instead of reading the file back)."""
    return text.encode("utf-8")


def _write_text(path: pathlib.Path, text: str) -> None:
    fs.atomic_write_bytes(path, text_bytes(text))  # fs.atomic_write_text, a call less


_COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}


def _csv_compression(path: pathlib.Path) -> dict[str, str] | None:
    """The pandas compression options that `read_csv` would infer from `path`'s suffix."""
    method = _COMPRESSION_BY_SUFFIX.get(path.suffix.lower())
    if method is None:
        return None
    return {"method": method, "archive_name": path.stem} if method == "zip" else {"method": method}


@dataclasses.dataclass(frozen=True)
class CSV(Loader["pandas.DataFrame", "pandas.DataFrame"]):
    """A pandas DataFrame as CSV; the index is written only when `index_col` is set."""

    index_col: int | str | None = None
    sep: str = ","
    dtype: Any = None

    def load(self, path: pathlib.Path) -> pandas.DataFrame:
        import pandas

        return pandas.read_csv(path, index_col=self.index_col, sep=self.sep, dtype=self.dtype)

    def save(self, data: pandas.DataFrame, path: pathlib.Path) -> None:
        # The temp file's name ends in '.tmp': name the compression that `load` infers from `path`.
        compression = _csv_compression(path)
        with fs.atomic_output(path) as tmp:
            data.to_csv(
                tmp, sep=self.sep, index=self.index_col is not None, compression=compression
            )

    def empty(self) -> pandas.DataFrame:
        import pandas

        return pandas.DataFrame()


@dataclasses.dataclass(frozen=True)
class JSON(Loader[Any, Any]):
    """Any JSON value; `empty()` returns `empty_factory()` (a new dict by default)."""

    indent: int | None = 2
    empty_factory: Callable[[], Any] = dict

    def load(self, path: pathlib.Path) -> Any:
        return json.loads(fs.read_bytes(path))

    def save(self, data: Any, path: pathlib.Path) -> None:
        _write_text(path, json.dumps(data, indent=self.indent, ensure_ascii=False) + "\n")

    def empty(self) -> Any:
        return self.empty_factory()


@dataclasses.dataclass(frozen=True)
class JSONL(Loader[list[Any], list[Any]]):
    """A list of JSON values, one per line."""

    def load(self, path: pathlib.Path) -> list[Any]:
        with open(path, encoding="utf-8") as file:
            return [json.loads(line) for line in file if line.strip()]

    def save(self, data: list[Any], path: pathlib.Path) -> None:
        _write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data))

    def empty(self) -> list[Any]:
        return []


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_dumper() -> Any:
    import yaml

    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclasses.dataclass(frozen=True)
class YAML(Loader[Any, Any]):
    """Any YAML value (safe subset); `empty()` returns `empty_factory()`."""

    empty_factory: Callable[[], Any] = dict

    def load(self, path: pathlib.Path) -> Any:
        import yaml

        with open(path, encoding="utf-8") as file:
            return yaml.load(file, Loader=_yaml_loader())

    def save(self, data: Any, path: pathlib.Path) -> None:
        import yaml

        text = yaml.dump(data, Dumper=_yaml_dumper(), sort_keys=False, allow_unicode=True)
        _write_text(path, text)

    def empty(self) -> Any:
        return self.empty_factory()


@dataclasses.dataclass(frozen=True)
class Text(Loader[str, str]):
    """A UTF-8 string."""

    def load(self, path: pathlib.Path) -> str:
        return fs.read_bytes(path).decode(
            "utf-8"
        )  # exactly what save wrote: no newline translation

    def save(self, data: str, path: pathlib.Path) -> None:
        _write_text(path, data)

    def empty(self) -> str:
        return ""


@dataclasses.dataclass(frozen=True)
class Pickle(Loader[Any, Any]):
    """Any picklable value. No `empty()`."""

    protocol: int = pickle.HIGHEST_PROTOCOL

    def load(self, path: pathlib.Path) -> Any:
        with open(path, "rb") as file:
            return pickle.load(file)

    def save(self, data: Any, path: pathlib.Path) -> None:
        fs.atomic_write_bytes(path, pickle.dumps(data, protocol=self.protocol))


@dataclasses.dataclass(frozen=True)
class PathOnly(Loader[Any, pathlib.Path]):
    """The path itself: the stage reads or writes the file; Pivot only tracks it. No `empty()`."""

    def load(self, path: pathlib.Path) -> pathlib.Path:
        return path

    def save(self, data: Any, path: pathlib.Path) -> None:
        if not path.exists():
            raise LoaderError(
                f"PathOnly output '{path}' does not exist after the stage ran: a PathOnly "
                "output is written by the stage itself; write the file at that path before returning"
            )


@dataclasses.dataclass(frozen=True)
class MatplotlibFigure(Writer["Figure"]):
    """A matplotlib Figure saved as an image (format from the extension), then closed."""

    dpi: int = 150
    bbox_inches: str | None = None
    transparent: bool = False

    def save(self, data: Figure, path: pathlib.Path) -> None:
        import matplotlib.pyplot

        image_format = path.suffix.lstrip(".").lower() or "png"
        try:
            with fs.atomic_output(path) as tmp:
                data.savefig(
                    tmp,
                    format=image_format,
                    dpi=self.dpi,
                    bbox_inches=self.bbox_inches,
                    transparent=self.transparent,
                )
        finally:
            matplotlib.pyplot.close(data)
