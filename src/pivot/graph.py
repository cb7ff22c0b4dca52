"""The DAG of stages: built once from output paths to dependency paths; topo order and selection.

Imports of Pivot: `pivot.spec`, `pivot.errors`. Never imports plan, execute or store.
"""

from __future__ import annotations

import bisect
import dataclasses
import graphlib
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pivot.errors import CycleError, MissingDependencyError, UnknownStageError
from pivot.spec import StageSpec

__all__ = ["Graph", "OutputIndex", "build_graph", "producers_of"]


@dataclasses.dataclass(frozen=True)
class OutputIndex:
    """Index of every declared output path -> producing stage."""

    files: Mapping[str, str]
    directories: Mapping[str, str]  # "dir/" -> stage
    sorted_paths: tuple[str, ...]
    parents: frozenset[str] = frozenset()  # "a/", "a/b/": every directory holding an output


@dataclasses.dataclass(frozen=True)
class Graph:
    """Stages in topological order with their direct upstream/downstream stage names."""

    stages: Mapping[str, StageSpec]
    order: tuple[str, ...]
    upstream: Mapping[str, frozenset[str]]
    downstream: Mapping[str, frozenset[str]]
    outputs: OutputIndex

    def producers(self, path: str) -> set[str]:
        """Stages whose outputs are `path`, lie inside it, or contain it."""
        return producers_of(path, self.outputs)

    def with_upstream(self, targets: Sequence[str]) -> tuple[str, ...]:
        """`targets` and everything they depend on, in topological order."""
        self.check_known(targets)
        wanted = _reachable(targets, self.upstream)
        return tuple(name for name in self.order if name in wanted)

    def stages_for(self, targets: Sequence[str]) -> tuple[str, ...]:
        """Stage names for `targets` (stage names, or output paths: their producers; none:
        every stage), in topological order; UnknownStageError for a target that is neither."""
        if not targets:
            return self.order
        names: set[str] = set()
        for target in targets:
            if target in self.stages:
                names.add(target)
                continue
            producers = self.producers(target.rstrip("/"))
            if not producers:
                self.check_known([target])
            names.update(producers)
        return tuple(name for name in self.order if name in names)

    def check_known(self, names: Iterable[str]) -> None:
        import difflib

        for name in names:
            if name not in self.stages:
                close = difflib.get_close_matches(name, list(self.stages), n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise UnknownStageError(
                    f"unknown stage '{name}'.{hint} Run `pivot status` to list the stages"
                )


def _reachable(start: Iterable[str], edges: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """`start` and every node reachable from it along `edges`."""
    found: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(edges[name])
    return frozenset(found)


def _index_outputs(stages: Mapping[str, StageSpec]) -> OutputIndex:
    files: dict[str, str] = {}
    directories: dict[str, str] = {}
    for spec in stages.values():
        for path in spec.out_paths:
            (directories if path.endswith("/") else files)[path] = spec.name
    paths = [*files, *directories]
    parents = {
        path[: end + 1] for path in paths for end, char in enumerate(path[:-1]) if char == "/"
    }
    return OutputIndex(files, directories, tuple(sorted(paths)), frozenset(parents))


def producers_of(path: str, index: OutputIndex) -> set[str]:
    """Stages that write `path`, a file or directory inside it, or a directory holding it."""
    found: set[str] = set()
    if path in index.files:
        found.add(index.files[path])
    as_dir = path if path.endswith("/") else path + "/"
    if as_dir in index.directories:
        found.add(index.directories[as_dir])
    if index.directories:
        parts = path.rstrip("/").split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth]) + "/"
            if parent in index.directories:
                found.add(index.directories[parent])
    if as_dir not in index.parents:  # no output lies inside `path`
        return found
    start = bisect.bisect_left(index.sorted_paths, as_dir)
    for candidate in index.sorted_paths[start:]:
        if not candidate.startswith(as_dir):
            break
        found.add(index.files.get(candidate) or index.directories[candidate])
    return found


def _cycle_message(cycle: list[str], via: Mapping[tuple[str, str], str]) -> str:
    """Name the stages of a cycle and the path behind each edge (graphlib lists each stage
    before the one that depends on it)."""
    edges = [
        f"'{after}' reads '{via[(after, before)]}' from '{before}'"
        for before, after in itertools.pairwise(cycle)
    ]
    return (
        f"stages depend on each other in a cycle: {' -> '.join(cycle)} ({'; '.join(edges)}). "
        "Break it by removing one of these dependencies (a stage that updates its own output "
        "should use IncrementalOut)"
    )


def _exists_or_tracked(root: Path, path: str) -> bool:
    """True when `path` is on disk or recorded by `pivot track` (`path.pvt`; not pulled yet)."""
    full = os.path.join(root, path.rstrip("/"))
    return os.path.exists(full) or os.path.exists(full + ".pvt")


def build_graph(stages: Mapping[str, StageSpec], root: Path) -> Graph:
    """Connect stages by paths; raise on cycles and on missing, unproduced dependencies."""
    index = _index_outputs(stages)
    upstream: dict[str, set[str]] = {name: set() for name in stages}
    via: dict[tuple[str, str], str] = {}  # (stage, upstream stage) -> a path making that edge
    for spec in stages.values():
        for path in spec.dep_paths:
            producers = producers_of(path, index) - {spec.name}
            if not producers and not _exists_or_tracked(root, path):
                raise MissingDependencyError(
                    f"stage '{spec.name}' depends on '{path}', which does not exist and no stage "
                    "produces it. Create the file, fix the path, or add a stage that outputs it"
                )
            upstream[spec.name] |= producers
            for producer in producers:
                via.setdefault((spec.name, producer), path)
    sorter = graphlib.TopologicalSorter(upstream)
    try:
        order = tuple(sorter.static_order())
    except graphlib.CycleError as error:
        raise CycleError(_cycle_message(list(error.args[1]), via)) from None
    downstream: dict[str, set[str]] = {name: set() for name in stages}
    for name, ups in upstream.items():
        for up in ups:
            downstream[up].add(name)
    return Graph(
        stages=dict(stages),
        order=order,
        upstream={name: frozenset(ups) for name, ups in upstream.items()},
        downstream={name: frozenset(downs) for name, downs in downstream.items()},
        outputs=index,
    )
