"""Annotation markers that declare a stage's file dependencies and outputs.

Public module (seeds API). The markers are frozen, picklable dataclasses that only record intent;
`pivot.spec` interprets them. Imports of Pivot: `pivot.loaders`, `pivot.errors`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Generic, TypeVar

from pivot import loaders
from pivot.errors import AnnotationError

__all__ = [
    "Dep",
    "DirectoryOut",
    "IncrementalOut",
    "Metric",
    "Out",
    "PathSpec",
    "PlaceholderDep",
    "Plot",
]

R = TypeVar("R")
W = TypeVar("W")

PathSpec = str | list[str] | tuple[str, ...]
"""One path, a variable-length list of paths, or a fixed-length tuple of paths."""


def _normalise_paths(marker: object, path: Any) -> PathSpec:
    """Accept str/PathLike, or a list/tuple of them; keep the list-vs-tuple distinction."""
    kind = type(marker).__name__
    if isinstance(path, str | os.PathLike):
        text = os.fspath(path)
        if not isinstance(text, str) or not text:
            raise AnnotationError(f"{kind} path must be a non-empty string, got {path!r}")
        return text
    if isinstance(path, list | tuple):
        if not path:
            raise AnnotationError(f"{kind} was given an empty path list: give at least one path")
        items = [_normalise_paths(marker, item) for item in path]
        texts = [item for item in items if isinstance(item, str)]
        if len(texts) != len(items):
            raise AnnotationError(f"{kind} path lists hold plain paths, not nested lists: {path!r}")
        return texts if isinstance(path, list) else tuple(texts)
    raise AnnotationError(
        f"{kind} path must be a string, a list or a tuple of strings, got {type(path).__name__}: "
        f"{path!r}"
    )


def _describe(marker: object, path: object) -> str:
    return f"{type(marker).__name__}({path!r})"


def _require_loader(marker: object, path: object, loader: object, base: type, role: str) -> None:
    name = type(marker).__name__
    if loader is None:
        raise AnnotationError(
            f"loader is required: {_describe(marker, path)} has none. Add one, e.g. "
            f"{name}({path!r}, JSON()) or {name}({path!r}, PathOnly())"
        )
    if not isinstance(loader, base):
        raise AnnotationError(
            f"{_describe(marker, path)}: loader {loader!r} is not a {base.__name__}; {role} "
            f"need a pivot.loaders.{base.__name__} subclass instance (e.g. CSV(), JSON())"
        )


@dataclasses.dataclass(frozen=True)
class Dep(Generic[R]):
    """A file (or list/tuple of files, or a directory ending in '/') the stage reads."""

    path: PathSpec
    loader: loaders.Reader[R] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _normalise_paths(self, self.path))
        _require_loader(self, self.path, self.loader, loaders.Reader, "dependencies")


@dataclasses.dataclass(frozen=True)
class PlaceholderDep(Generic[R]):
    """A dependency with no default path: `dep_path_overrides` must give it one."""

    loader: loaders.Reader[R] | None = None

    def __post_init__(self) -> None:
        _require_loader(self, "<override>", self.loader, loaders.Reader, "dependencies")


@dataclasses.dataclass(frozen=True)
class Out(Generic[W]):
    """A file (or list/tuple of files) the stage writes, cached by default."""

    path: PathSpec
    loader: loaders.Writer[W] | None = None
    cache: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _normalise_paths(self, self.path))
        _require_loader(self, self.path, self.loader, loaders.Writer, "outputs")
        paths = [self.path] if isinstance(self.path, str) else list(self.path)
        directory = next((path for path in paths if path.endswith("/")), None)
        if directory is not None and not isinstance(self, DirectoryOut):
            raise AnnotationError(
                f"{_describe(self, self.path)}: {directory!r} ends with '/', which names a "
                f"directory. For files decided at run time use DirectoryOut({directory!r}, ...); "
                "for one file drop the trailing '/'"
            )


@dataclasses.dataclass(frozen=True)
class Metric(Out[Any]):
    """Small JSON metrics kept in git: loader defaults to JSON(), not cached by default."""

    loader: loaders.Writer[Any] | None = loaders.JSON()  # noqa: RUF009 (frozen: safe to share)
    cache: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        paths = [self.path] if isinstance(self.path, str) else list(self.path)
        bad = [path for path in paths if not path.endswith(".json")]
        if bad:
            raise AnnotationError(
                f"Metric path must end with '.json', got {bad[0]!r}: metrics are JSON files; "
                "use Out(...) for other formats"
            )


@dataclasses.dataclass(frozen=True)
class Plot(Out[W]):
    """A visualisation file, with optional metadata for plotting tools."""

    x: str | None = None
    y: str | None = None
    template: str | None = None


@dataclasses.dataclass(frozen=True)
class IncrementalOut(Out[W], Generic[W, R]):
    """An output restored from the previous run before the stage runs (first run: `empty()`)."""

    loader: loaders.Loader[W, R] | None = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.path, str):
            raise AnnotationError(
                f"{_describe(self, self.path)}: IncrementalOut takes one path, not a list; "
                "declare one IncrementalOut per file"
            )
        if not loaders.supports_empty(self.loader):
            raise AnnotationError(
                f"{_describe(self, self.path)}: IncrementalOut needs a Loader with empty() "
                f"(it reads the previous output and needs a first-run value); {self.loader!r} "
                "has none. Use JSON(), JSONL(), YAML(), Text(), CSV() or a custom Loader that "
                "defines empty()"
            )


@dataclasses.dataclass(frozen=True)
class DirectoryOut(Out[W]):
    """A directory whose files are decided at run time: the stage returns {relative name: value}."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.path, str):
            raise AnnotationError(
                f"{_describe(self, self.path)}: DirectoryOut takes one directory path, not a list"
            )
        if not self.path.endswith("/"):
            raise AnnotationError(
                f"DirectoryOut path must end with '/': got {self.path!r}; write "
                f"DirectoryOut({self.path + '/'!r}, ...)"
            )
