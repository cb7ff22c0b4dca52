"""graph.build_graph and Graph: edges from paths, topological order, selection, errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivot import errors, graph
from pivot.loaders import Text
from pivot.outputs import DirectoryOut, Out
from pivot.pipeline import Pipeline
from pivot.spec import DepSpec, OutKind, OutSpec, Shape, StageSpec
from tests.fixtures import engine_stages

NOWHERE = Path("/nonexistent-pivot-root")  # every dependency below is produced by a stage


def spec(name: str, deps: Sequence[str] = (), outs: Sequence[str] = ()) -> StageSpec:
    """A stage value with the given dependency and output paths (only paths matter here)."""
    return StageSpec(
        name=name,
        func=engine_stages.train,
        params_arg=None,
        params=None,
        deps=tuple(DepSpec(f"d{i}", (path,), Shape.SINGLE, Text()) for i, path in enumerate(deps)),
        outs=tuple(
            OutSpec(
                f"o{i}",
                (path,),
                Shape.SINGLE,
                OutKind.DIRECTORY if path.endswith("/") else OutKind.OUT,
                Text(),
                True,
                (DirectoryOut if path.endswith("/") else Out)(path, Text()),
            )
            for i, path in enumerate(outs)
        ),
        single_output=False,
    )


def build(*specs: StageSpec, root: Path = NOWHERE) -> graph.Graph:
    return graph.build_graph({s.name: s for s in specs}, root)


# --- random DAGs ------------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[StageSpec], set[tuple[str, str]]]:
    """Stages s0..sN-1, edges only from lower to higher index, registered in a random order."""
    size = draw(st.integers(min_value=1, max_value=10))
    edges = {
        (f"s{a}", f"s{b}") for a in range(size) for b in range(a + 1, size) if draw(st.booleans())
    }
    specs = [
        spec(
            f"s{b}",
            deps=[f"out/s{a}.txt" for a in range(size) if (f"s{a}", f"s{b}") in edges],
            outs=[f"out/s{b}.txt"],
        )
        for b in range(size)
    ]
    return draw(st.permutations(specs)), edges


@settings(max_examples=150, deadline=None)
@given(dags())
def test_topological_order_respects_every_edge(dag: tuple[list[StageSpec], set]) -> None:
    specs, edges = dag
    built = build(*specs)

    assert sorted(built.order) == sorted(s.name for s in specs)
    position = {name: index for index, name in enumerate(built.order)}
    assert all(position[up] < position[down] for up, down in edges)
    assert {(up, down) for down, ups in built.upstream.items() for up in ups} == edges
    assert {(up, down) for up, downs in built.downstream.items() for down in downs} == edges


def _ancestors(name: str, edges: set[tuple[str, str]]) -> set[str]:
    found, todo = {name}, [name]
    while todo:
        current = todo.pop()
        for up, down in edges:
            if down == current and up not in found:
                found.add(up)
                todo.append(up)
    return found


@settings(max_examples=100, deadline=None)
@given(dags(), st.data())
def test_with_upstream_is_the_ancestor_closure_in_order(
    dag: tuple[list[StageSpec], set], data: st.DataObject
) -> None:
    specs, edges = dag
    built = build(*specs)
    targets = data.draw(st.lists(st.sampled_from(built.order), min_size=1, max_size=3))

    selected = built.with_upstream(targets)

    expected = set().union(*(_ancestors(target, edges) for target in targets))
    assert set(selected) == expected
    assert list(selected) == [name for name in built.order if name in expected]


# --- producers_of ------------------------------------------------------------------------------

STAGES = {
    s.name: s
    for s in (
        spec("files", outs=["data/a.csv", "data/ab.csv"]),
        spec("dir", outs=["results/"]),
        spec("nested", outs=["deep/inner/x.txt"]),
        spec("top", outs=["dat.txt"]),
    )
}


@pytest.mark.parametrize(
    ("path", "producers"),
    [
        ("data/a.csv", {"files"}),
        ("data/ab.csv", {"files"}),
        ("data/", {"files"}),  # a directory holding produced files
        ("data", {"files"}),
        ("dat", set()),  # a name prefix is not a parent directory
        ("dat.txt", {"top"}),
        ("results/", {"dir"}),
        ("results", {"dir"}),
        ("results/task_a.json", {"dir"}),  # a file inside a directory output
        ("results/sub/b.json", {"dir"}),
        ("resultsx/a.json", set()),
        ("deep/", {"nested"}),
        ("deep/inner/", {"nested"}),
        ("deep/inner/x.txt", {"nested"}),
        ("deep/other.txt", set()),
        ("elsewhere.txt", set()),
    ],
)
def test_producers(path: str, producers: set[str], tmp_path: Path) -> None:
    assert graph.build_graph(STAGES, tmp_path).producers(path) == producers


def test_directory_and_file_dependencies_make_edges() -> None:
    built = build(
        *STAGES.values(),
        spec("whole", deps=["results/"]),
        spec("one", deps=["results/task_a.json", "data/a.csv"]),
        spec("tree", deps=["deep/"]),
    )

    assert built.upstream["whole"] == {"dir"}
    assert built.upstream["one"] == {"dir", "files"}
    assert built.upstream["tree"] == {"nested"}
    assert built.downstream["dir"] == {"whole", "one"}


# --- errors ------------------------------------------------------------------------------------


def test_cycle_error_names_stages_and_paths() -> None:
    with pytest.raises(errors.CycleError) as info:
        build(
            spec("a", deps=["c.txt"], outs=["a.txt"]),
            spec("b", deps=["a.txt"], outs=["b.txt"]),
            spec("c", deps=["b.txt"], outs=["c.txt"]),
            spec("free", outs=["free.txt"]),
        )

    message = str(info.value)
    assert "cycle" in message and "free" not in message
    for text in ("'b' reads 'a.txt' from 'a'", "'c' reads 'b.txt' from 'b'"):
        assert text in message
    assert "'a' reads 'c.txt' from 'c'" in message
    assert isinstance(info.value, errors.PivotError)


def test_missing_dependency_without_producer(tmp_path: Path) -> None:
    with pytest.raises(errors.MissingDependencyError, match=r"'reader' depends on 'in\.txt'"):
        build(spec("reader", deps=["in.txt"]), root=tmp_path)

    (tmp_path / "in.txt").write_text("now it exists")
    assert build(spec("reader", deps=["in.txt"]), root=tmp_path).upstream["reader"] == set()


def test_unknown_stage_suggests_close_names() -> None:
    built = build(spec("train", outs=["m.txt"]), spec("report", deps=["m.txt"]))

    with pytest.raises(errors.UnknownStageError, match="Did you mean train"):
        built.with_upstream(["trian"])
    with pytest.raises(errors.UnknownStageError, match="unknown stage 'zzz'"):
        built.check_known(["zzz"])


def test_incremental_out_makes_no_self_edge(tmp_path: Path) -> None:
    pipeline = Pipeline("inc", root=tmp_path)
    pipeline.register(engine_stages.accumulate)
    (tmp_path / "raw.txt").write_text("x")

    built = graph.build_graph(pipeline.stages, tmp_path)

    assert built.upstream["accumulate"] == set()
    assert built.stages["accumulate"].dep_paths == ("raw.txt",)


def test_graph_of_registered_fixture_stages(tmp_path: Path) -> None:
    pipeline = Pipeline("engine", root=tmp_path)
    for name in ("report", "first_part", "split_parts", "train", "prepare"):
        pipeline.register(engine_stages.STAGES[name], params=None)
    (tmp_path / "raw.txt").write_text("x")

    built = graph.build_graph(pipeline.stages, tmp_path)

    assert built.upstream["first_part"] == {"split_parts"}
    assert built.with_upstream(["report"]) == ("prepare", "train", "report")
    assert built.downstream["prepare"] == {"train", "split_parts"}
    # targets: stage names or output paths (a directory output with or without its '/')
    assert built.stages_for([]) == built.order
    assert built.stages_for(["model.json", "prepare"]) == ("prepare", "train")
    assert built.stages_for(["parts", "parts/"]) == ("split_parts",)
    with pytest.raises(errors.UnknownStageError, match="unknown stage 'nothing\\.txt'"):
        built.stages_for(["nothing.txt"])
