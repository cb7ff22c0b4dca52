"""YAML read with line marks: the value of a document and the line of every key and item in it.

Errors about `pivot.yaml`, `params.yaml` and `dvc.yaml` name `file:line`, so every value keeps
where it came from. Imports of Pivot: `pivot.errors` only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot.errors import PipelineFileError

__all__ = ["Location", "MarkedDocument", "parse_marked", "read_marked"]

Location = tuple[str | int, ...]
"""Where a value sits in a document: its keys and list indices from the top."""


@dataclasses.dataclass(frozen=True)
class MarkedDocument:
    """A YAML document's value and the 1-based line of each key or list item in it."""

    path: Path
    data: Any
    lines: Mapping[Location, int]

    def line(self, location: Location) -> int:
        """The line of `location`, or of its nearest parent that has one (1 for the top)."""
        for end in range(len(location), 0, -1):
            found = self.lines.get(tuple(location[:end]))
            if found is not None:
                return found
        return 1

    def where(self, location: Location) -> str:
        """`file:line` for error messages (the file as given, e.g. relative to the project)."""
        return f"{self.path}:{self.line(location)}"

    def error(self, location: Location, message: str) -> PipelineFileError:
        return PipelineFileError(f"{self.where(location)}: {message}")


def _loader_class() -> type[Any]:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk(node: Any, location: Location, lines: dict[Location, int], document: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise PipelineFileError(
                    f"{document}:{line}: key {key!r} appears twice in the same mapping (first on "
                    f"line {seen[key]}); YAML keeps only the last one, so remove or rename one"
                )
            seen[key] = line
            lines[(*location, key)] = line
            _walk(value_node, (*location, key), lines, document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*location, index)] = item.start_mark.line + 1
            _walk(item, (*location, index), lines, document)


def parse_marked(text: str, path: Path) -> MarkedDocument:
    """Parse YAML `text` (named `path` in errors) keeping line marks; duplicate keys are errors."""
    import yaml

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise PipelineFileError(
            f"{path}{line}: not valid YAML ({problem}); fix the syntax"
        ) from None
    finally:
        loader.dispose()
    lines: dict[Location, int] = {}
    if node is not None:
        _walk(node, (), lines, str(path))
    return MarkedDocument(path, data, lines)


def read_marked(path: Path, shown: Path | None = None) -> MarkedDocument:
    """Read and parse the YAML file `path`; errors name it as `shown` (default: `path`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineFileError(f"cannot read {shown or path}: {error}") from None
    return parse_marked(text, shown or path)
