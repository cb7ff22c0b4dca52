"""The plan made again after a run (for the next no-op's snapshot) settles the stages the early
cut-off skipped from what the first plan found (their lock and outputs, which the run did not
touch) instead of reading and hashing them again, and still decides exactly what a new plan
decides; the snapshot checks those files as the first plan saw them."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path

import pytest

from pivot import api, noop, plan
from pivot.plan import Action
from pivot.store import lock, snapshot
from tests.fixtures.engine_project import make_project, write_files

CHAIN = ("prepare", "train", "report", "side")


def _watch(monkeypatch: pytest.MonkeyPatch) -> tuple[collections.Counter[str], list[plan.Plan]]:
    """(how many times each lock file is read and each stage's outputs are hashed by a plan,
    the plans `_plan_again` makes), from now on."""
    counted: collections.Counter[str] = collections.Counter()
    read, hashed = plan._read_lock_of, plan.stale_outputs

    def reading(spec: object, path: Path | str) -> lock.LockEntry | None:
        counted[os.path.basename(path)] += 1
        return read(spec, path)  # type: ignore[arg-type]

    def hashing(ctx: object, entry: lock.LockEntry) -> tuple[lock.OutEntry, ...]:
        counted.update(out.path for out in entry.outs)
        return hashed(ctx, entry)  # type: ignore[arg-type]

    made: list[plan.Plan] = []
    again = api._plan_again

    def planning_again(*args: object) -> tuple[plan.Plan, plan.Plan]:
        plans = again(*args)  # type: ignore[arg-type]
        made.append(plans[0])
        return plans

    monkeypatch.setattr(plan, "_read_lock_of", reading)
    monkeypatch.setattr(plan, "stale_outputs", hashing)
    monkeypatch.setattr(api, "_plan_again", planning_again)
    monkeypatch.setattr(noop, "RACY_NS", 0)  # (what a quick run wrote has settled at once)
    return counted, made


def _cut_off_run(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[collections.Counter[str], plan.Plan]:
    """A run where `prepare` runs for its new input, `train` runs after it and writes the same
    model.json, so `report` is cut off; what was read and hashed, and the plan made again."""
    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    write_files(root, {"raw.txt": "cd"})  # as long as "ab": the same model.json
    counted, made = _watch(monkeypatch)

    decided, report = api.repro(start=root, jobs=1, noop_snapshot=True)

    assert report.ok, report
    assert [s.stage for s in decided.by_action(Action.RUN)] == ["prepare", "train", "report"]
    assert decided.steps[2].cutoff is not None
    assert {r.stage: r.status.value for r in report.results}["report"] == "skipped"
    assert len(made) == 1
    return counted, made[0]


def test_a_cut_off_stage_is_settled_from_the_first_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "p", *CHAIN)

    counted, again = _cut_off_run(root, monkeypatch)

    # report's lock and output: read and hashed by the first plan only (its cut-off rule asked
    # that its output matched), not again; the stages that ran are checked again
    assert counted["report.lock"] == 1
    assert counted["report.json"] == 1
    assert counted["prepared.txt"] == 1  # by the plan made again
    assert counted["model.json"] == 2  # by train's cut-off rule, then by the plan made again
    # what a new plan decides
    with api.open_context(root) as ctx:
        fresh = plan.make_plan(ctx, ctx.graph.order)
    assert fresh.nothing_to_do
    assert again.steps == fresh.steps
    assert again.warnings == fresh.warnings


def test_the_snapshot_checks_a_cut_off_stage_as_the_first_plan_saw_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    root = make_project(tmp_path / "p", *CHAIN)
    monkeypatch.setenv("PIVOT_NOOP_DEBUG", "1")  # why no snapshot was written, if none was
    _cut_off_run(root, monkeypatch)
    found = snapshot.load(root / ".pivot", "repro")
    assert found is not None, capfd.readouterr().err
    paths = {os.path.join(root, name) for name in ("report.json", ".pivot/stages/report.lock")}
    assert paths <= found.stats.keys()
    assert snapshot.holds(found, version=found.version, environ=os.environ)

    (root / "report.json").write_text(json.dumps({"score": 99}))

    assert not snapshot.holds(found, version=found.version, environ=os.environ)
    decided, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    assert [s.stage for s in decided.steps if s.action is not Action.SKIP] == ["report"]
    assert json.loads((root / "report.json").read_text()) == {"score": 20}


def test_a_cut_off_step_with_a_reason_left_is_planned_anew(tmp_path: Path) -> None:
    """`make_plan(cut_off=...)` takes a step as SKIP only when nothing makes the stage stale:
    here an upstream stage runs again (its input changed since), so the step is made anew."""
    root = make_project(tmp_path / "p", *CHAIN)
    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    with api.open_context(root) as ctx:
        known: plan.KnownPrints = {}
        first = {s.stage: s for s in plan.make_plan(ctx, ctx.graph.order, known=known).steps}
        entry = first["report"].previous
        assert entry is not None
        cut = dataclasses.replace(first["report"], action=Action.RUN, cutoff=frozenset(entry.deps))
        write_files(root, {"raw.txt": "abc"})

        again = plan.make_plan(ctx, ctx.graph.order, known=known, cut_off={"report": cut})
        fresh = plan.make_plan(ctx, ctx.graph.order)

    assert again.steps == fresh.steps
    steps = {s.stage: s for s in again.steps}
    assert steps["report"].action is Action.RUN
    assert [r.kind for r in steps["report"].reasons] == [plan.ReasonKind.UPSTREAM]


RESCORE = """
from typing import Annotated

from pivot.loaders import JSON
from pivot.outputs import Dep, Out
from tests.fixtures.engine_stages import make_pipeline


def rescore(
    report: Annotated[dict[str, int], Dep("report.json", JSON())],
) -> Annotated[dict[str, int], Out("rescore.json", JSON())]:
    return {"again": report["score"]}


pipeline = make_pipeline("prepare", "train", "report", "side")
pipeline.register(rescore)
"""


def test_a_cut_off_stage_whose_output_a_run_read_is_planned_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rescore`, below the cut-off `report`, runs (its output was deleted): it read
    report.json, which the plan made again may then not take as the first plan saw it (the
    recorder forgot it): `report` is planned anew, its output hashed and recorded again."""
    root = make_project(tmp_path / "p", *CHAIN)
    write_files(root, {"pipeline.py": RESCORE})
    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    write_files(root, {"raw.txt": "cd"})
    (root / "rescore.json").unlink()
    counted, made = _watch(monkeypatch)

    _, report = api.repro(start=root, jobs=1, noop_snapshot=True)

    assert report.ok, report
    statuses = {r.stage: r.status.value for r in report.results}
    assert statuses["report"] == "skipped" and statuses["rescore"] == "ran"
    assert counted["report.json"] == 2  # by its cut-off rule, then by the plan made again
    with api.open_context(root) as ctx:
        fresh = plan.make_plan(ctx, ctx.graph.order)
    assert fresh.nothing_to_do
    assert made[0].steps == fresh.steps
    found = snapshot.load(root / ".pivot", "repro")
    assert found is not None
    assert os.path.join(root, "report.json") in found.stats
