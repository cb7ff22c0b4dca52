"""plan.make_plan: which RUN steps get a run-cache key (and so may restore an earlier run).

A key names a run's inputs as they are now; it is only right when no stage upstream is about to
run, whether or not the stage has a lock (a stage with no lock has no "upstream" reason).
"""

from __future__ import annotations

import json
from pathlib import Path

from pivot import api, plan
from pivot.plan import Action
from tests.fixtures.engine_project import make_project, write_files

CHAIN = ("prepare", "train", "report", "side")


def _steps(root: Path) -> dict[str, plan.Step]:
    with api.open_context(root) as ctx:
        decided = plan.make_plan(ctx, ctx.graph.order, run_cache=True)
    return {step.stage: step for step in decided.steps}


def _without_locks(root: Path) -> None:
    """Every lock file gone (a clone whose outputs are there but whose locks are not)."""
    for path in (root / ".pivot").rglob("*.lock"):
        path.unlink()


def test_a_stage_without_a_lock_below_one_that_runs_is_never_restored(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", *CHAIN)
    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    _without_locks(root)
    write_files(root, {"raw.txt": "abc"})  # prepare's input changed: it must run

    steps = _steps(root)

    assert steps["prepare"].action is Action.RUN
    # train's run with the prepared.txt now on disk is in the run cache, but prepare will
    # rewrite that file: train must run with the new one, and report after it
    for stage in ("train", "report"):
        assert steps[stage].action is Action.RUN, steps[stage]
        assert steps[stage].run_key is None
    assert steps["side"].action is Action.RESTORE  # its input is as its earlier run saw it
    assert steps["side"].run_key is not None

    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    assert json.loads((root / "model.json").read_text()) == {"length": 3}
    assert json.loads((root / "report.json").read_text()) == {"score": 30}


def test_a_stage_without_a_lock_whose_upstream_skips_may_be_restored(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", *CHAIN)
    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report
    (root / ".pivot" / "stages" / "train.lock").unlink()

    steps = _steps(root)

    assert steps["prepare"].action is Action.SKIP
    assert steps["train"].action is Action.RESTORE  # from the run cache: its inputs are known
    assert steps["train"].run_key is not None
