"""`pivot dag`: the stage graph (or, with outputs, the artifact graph) as text, Mermaid, Graphviz
dot or JSON, with stale stages marked from the same plan `pivot status` makes.

Imports of Pivot: plan, workspace, graph, results; never execute, api or cli.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pivot.plan import Action, make_plan
from pivot.workspace import Context

__all__ = ["Dag", "Node", "build", "to_dot", "to_json", "to_mermaid", "to_text"]


@dataclasses.dataclass(frozen=True)
class Node:
    """A stage (or, in the artifact graph, a file) and whether it is stale, and why."""

    id: str
    kind: str  # "stage" or "file"
    stale: bool
    reasons: tuple[str, ...] = ()
    stage: str | None = None  # for a file: the stage producing it (None: a source file)


@dataclasses.dataclass(frozen=True)
class Dag:
    """Nodes in topological order and edges (from, to, label: the stage for artifact edges)."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str, str], ...]
    outs: bool


def _stale(ctx: Context, names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """stage -> reasons, for the stages `pivot repro` would run or restore."""
    decided = make_plan(ctx, names)
    return {
        step.stage: tuple(reason.summary for reason in step.reasons) or (step.action.value,)
        for step in decided.steps
        if step.action is not Action.SKIP
    }


def build(ctx: Context, targets: Sequence[str] = (), *, outs: bool = False) -> Dag:
    """The graph of `targets` and their upstream (default: every stage)."""
    graph = ctx.graph
    names = graph.with_upstream(targets) if targets else graph.order
    stale = _stale(ctx, names)
    if not outs:
        nodes = tuple(Node(n, "stage", n in stale, stale.get(n, ())) for n in names)
        edges = tuple(
            (up, name, "") for name in names for up in sorted(graph.upstream[name]) if up in names
        )
        return Dag(nodes, edges, outs=False)
    files: dict[str, Node] = {}
    edges_list: list[tuple[str, str, str]] = []
    for name in names:
        spec = graph.stages[name]
        for path in spec.dep_paths:
            producer = next(iter(sorted(graph.producers(path))), None)
            files.setdefault(path, Node(path, "file", producer in stale, (), producer))
        for path in spec.out_paths:
            files[path] = Node(path, "file", name in stale, stale.get(name, ()), name)
            edges_list.extend((dep, path, name) for dep in spec.dep_paths)
    return Dag(tuple(files.values()), tuple(edges_list), outs=True)


def to_json(dag: Dag) -> dict[str, Any]:
    return {
        "kind": "outputs" if dag.outs else "stages",
        "nodes": [
            {
                "id": node.id,
                "kind": node.kind,
                "stale": node.stale,
                "reasons": list(node.reasons),
                **({"stage": node.stage} if dag.outs else {}),
            }
            for node in dag.nodes
        ],
        "edges": [
            {"from": a, "to": b, **({"stage": label} if dag.outs else {})}
            for a, b, label in dag.edges
        ],
    }


def to_text(dag: Dag) -> str:
    """One line per node in topological order: `* name  <- inputs   why stale`."""
    if not dag.nodes:
        return "No stages."
    inputs: dict[str, list[str]] = {node.id: [] for node in dag.nodes}
    for a, b, label in dag.edges:
        item = f"{a} ({label})" if dag.outs else a
        if item not in inputs[b]:
            inputs[b].append(item)
    width = max(len(node.id) for node in dag.nodes)
    sources = max((len(", ".join(v)) for v in inputs.values()), default=0)
    lines = []
    for node in dag.nodes:
        arrow = f"<- {', '.join(inputs[node.id])}" if inputs[node.id] else ""
        why = "  stale: " + "; ".join(node.reasons) if node.stale and node.reasons else ""
        mark = "*" if node.stale else " "
        lines.append(f"{mark} {node.id.ljust(width)}  {arrow.ljust(sources + 3)}{why}".rstrip())
    stale = sum(1 for node in dag.nodes if node.stale)
    noun = "files" if dag.outs else "stages"
    lines.append(f"\n{len(dag.nodes)} {noun}, {stale} stale (* = `pivot repro` would run it).")
    return "\n".join(lines)


def _ids(dag: Dag) -> Mapping[str, str]:
    return {node.id: f"n{index}" for index, node in enumerate(dag.nodes)}


def to_mermaid(dag: Dag) -> str:
    ids = _ids(dag)
    lines = ["flowchart TD"]
    for node in dag.nodes:
        label = node.id.replace('"', "#quot;")
        lines.append(f'    {ids[node.id]}["{label}"]' + (":::stale" if node.stale else ""))
    for a, b, label in dag.edges:
        text = f"|{label}|" if label else ""
        lines.append(f"    {ids[a]} -->{text} {ids[b]}")
    lines.append("    classDef stale fill:#fff3cd,stroke:#d39e00")
    return "\n".join(lines)


def to_dot(dag: Dag) -> str:
    lines = ["digraph pivot {", "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    for node in dag.nodes:
        style = ', style="rounded,filled", fillcolor="#fff3cd"' if node.stale else ""
        lines.append(f"    {json.dumps(node.id)} [label={json.dumps(node.id)}{style}];")
    for a, b, label in dag.edges:
        attr = f" [label={json.dumps(label)}]" if label else ""
        lines.append(f"    {json.dumps(a)} -> {json.dumps(b)}{attr};")
    lines.append("}")
    return "\n".join(lines)
