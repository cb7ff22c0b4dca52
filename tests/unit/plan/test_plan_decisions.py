"""plan.make_plan: RUN / SKIP / RESTORE decisions and their reasons, on real temporary projects.

Set-up runs go through `api.repro(jobs=1)` (the serial executor, in this process).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot import api, plan
from pivot.plan import Action, Plan
from pivot.store import lock
from tests.fixtures.engine_project import make_project, write_files, write_pipeline

CHAIN = ("prepare", "train", "report", "side")


def decide(
    root: Path, targets: Sequence[str] = (), force: Sequence[str] = (), *, run_cache: bool = False
) -> Plan:
    """The plan; without the run cache unless asked (these tests are about why stages are stale:
    with it, an earlier identical run would restore most of them)."""
    with api.open_context(root) as ctx:
        selected = ctx.graph.with_upstream(targets) if targets else ctx.graph.order
        return plan.make_plan(ctx, selected, force=force, run_cache=run_cache)


def actions(decided: Plan) -> dict[str, Action]:
    return {step.stage: step.action for step in decided.steps}


def kinds(decided: Plan, stage: str) -> list[str]:
    step = next(step for step in decided.steps if step.stage == stage)
    return [reason.kind for reason in step.reasons]


def step_of(decided: Plan, stage: str) -> plan.Step:
    return next(step for step in decided.steps if step.stage == stage)


def repro(root: Path, **options: object) -> None:
    _, report = api.repro(start=root, jobs=1, **options)  # type: ignore[arg-type]
    assert report.ok, report


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "p", *CHAIN)
    repro(root)
    return root


def test_first_plan_runs_everything_for_no_previous_run(tmp_path: Path) -> None:
    root = make_project(tmp_path, *CHAIN)

    decided = decide(root)

    assert actions(decided) == dict.fromkeys(CHAIN, Action.RUN)
    assert all(kinds(decided, name) == ["new"] for name in CHAIN)
    assert all(step.previous is None for step in decided.steps)
    assert not decided.nothing_to_do


def test_steps_follow_topological_order(tmp_path: Path) -> None:
    root = make_project(tmp_path, "report", "side", "train", "prepare")

    order = [step.stage for step in decide(root).steps]

    assert order.index("prepare") < order.index("train") < order.index("report")


def test_after_a_run_nothing_to_do(built: Path) -> None:
    decided = decide(built)

    assert decided.nothing_to_do
    assert all(step.previous is not None for step in decided.steps)
    assert decided.warnings == ()


def test_params_change_names_the_fields(built: Path) -> None:
    write_pipeline(built, *CHAIN, factor=2, suffix="!")

    decided = decide(built)

    assert actions(decided) == {
        "prepare": Action.RUN,
        "train": Action.RUN,
        "report": Action.RUN,
        "side": Action.SKIP,
    }
    (reason,) = step_of(decided, "prepare").reasons
    assert reason.kind == "params" and reason.summary == "params changed: factor, suffix"
    assert reason.details == ("factor: 1 -> 2", "suffix: '' -> '!'")
    assert step_of(decided, "prepare").params == {"factor": 2, "suffix": "!"}
    train = step_of(decided, "train")
    assert kinds(decided, "train") == ["upstream"] and train.reasons[0].details == ("prepare",)
    assert train.previous is not None and train.cutoff == frozenset(train.previous.deps)


def test_dependency_change_names_the_paths(built: Path) -> None:
    write_files(built, {"other.txt": "changed"})

    decided = decide(built)

    assert actions(decided)["side"] is Action.RUN
    assert step_of(decided, "side").reasons[0].details == ("other.txt",)
    assert {name for name, action in actions(decided).items() if action is Action.RUN} == {"side"}


def test_rewriting_identical_bytes_is_not_a_change(built: Path) -> None:
    write_files(built, {"raw.txt": "ab"})

    assert decide(built).nothing_to_do


def test_missing_cached_output_is_restored_and_downstream_skips(built: Path) -> None:
    (built / "model.json").unlink()

    decided = decide(built)

    assert actions(decided)["train"] is Action.RESTORE
    assert step_of(decided, "train").reasons[0].details == ("model.json",)
    assert actions(decided)["report"] is Action.SKIP  # reads the hash train's lock records


def test_missing_uncached_output_reruns(built: Path) -> None:
    (built / "side.txt").unlink()
    (built / "report.json").write_text("{}")

    decided = decide(built)

    assert actions(decided)["side"] is Action.RUN
    assert kinds(decided, "side") == ["outputs"]
    assert actions(decided)["report"] is Action.RUN  # a Metric is not cached either


def test_output_missing_from_cache_reruns(built: Path) -> None:
    (built / "prepared.txt").unlink()
    shutil.rmtree(built / ".pivot" / "cache")

    decided = decide(built)

    assert actions(decided)["prepare"] is Action.RUN
    assert kinds(decided, "prepare") == ["outputs"]


def test_forced_stages_run_with_forced_first(built: Path) -> None:
    decided = decide(built, targets=["train"], force=["train"])

    assert actions(decided) == {"prepare": Action.SKIP, "train": Action.RUN}
    assert kinds(decided, "train") == ["forced"]


def test_forced_and_changed_keeps_both_reasons(built: Path) -> None:
    write_pipeline(built, *CHAIN, factor=3)

    decided = decide(built, force=["prepare"])

    assert kinds(decided, "prepare") == ["forced", "params"]


def test_corrupt_lock_is_no_previous_run_with_a_warning(built: Path) -> None:
    (built / ".pivot" / "stages" / "train.lock").write_text("[1, 2")

    decided = decide(built)

    assert actions(decided)["train"] is Action.RUN
    assert kinds(decided, "train") == ["new"]
    assert len(decided.warnings) == 1
    assert "train" in decided.warnings[0] and "treating it as never run" in decided.warnings[0]


def test_the_run_cache_restores_a_run_seen_before(built: Path) -> None:
    (built / ".pivot" / "stages" / "train.lock").write_text("[1, 2")
    (built / "side.txt").unlink()  # only an output missing: the lock's business, not the cache's

    decided = decide(built, run_cache=True)

    assert actions(decided)["train"] is Action.RESTORE
    assert kinds(decided, "train") == ["run_cache"]
    assert step_of(decided, "train").reasons[0].summary == "restored from run cache"
    assert step_of(decided, "train").from_run_cache
    assert actions(decided)["side"] is Action.RUN
    assert actions(decided)["report"] is Action.SKIP  # train's outputs will be what they were
    assert actions(decide(built, run_cache=True, force=["train"]))["train"] is Action.RUN


def test_recorded_code_differing_reruns_the_stage_and_downstream(built: Path) -> None:
    """Whatever the fingerprint layer's manifest holds, a differing entry is a code change."""
    with api.open_context(built) as ctx:
        spec = ctx.graph.stages["train"]
        path = ctx.project.lock_file(spec.name, spec.state_dir)
    entry = lock.read_lock(path)
    assert entry is not None
    code = {name: "0" * 64 for name in entry.code}
    lock.write_lock(path, dataclasses.replace(entry, code=code))

    decided = decide(built)

    assert kinds(decided, "train") == ["code"]
    assert step_of(decided, "train").reasons[0].summary.startswith("code changed: ")
    assert actions(decided)["report"] is Action.RUN  # upstream will run


def test_file_inside_a_directory_output_uses_the_manifest(tmp_path: Path) -> None:
    root = make_project(tmp_path, "prepare", "split_parts", "first_part")
    repro(root)
    shutil.rmtree(root / "parts")

    decided = decide(root)

    assert actions(decided) == {
        "prepare": Action.SKIP,
        "split_parts": Action.RESTORE,
        "first_part": Action.SKIP,
    }


def test_incremental_output_has_no_upstream_and_plans_like_any_output(tmp_path: Path) -> None:
    root = make_project(tmp_path, "accumulate")
    repro(root)
    assert decide(root).nothing_to_do

    write_files(root, {"raw.txt": "more"})

    assert kinds(decide(root), "accumulate") == ["deps"]


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.text(alphabet="abc\n", min_size=1, max_size=6),
    other=st.text(alphabet="xyz", min_size=0, max_size=4),
    factor=st.integers(min_value=1, max_value=3),
)
def test_second_plan_runs_nothing(raw: str, other: str, factor: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = make_project(
            Path(directory), "prepare", "train", "report", "side", "split_parts", "first_part",
            files={"raw.txt": raw, "other.txt": other}, factor=factor,
        )  # fmt: skip
        first, report = api.repro(start=root, jobs=1)
        assert report.ok and not first.nothing_to_do
        assert decide(root).nothing_to_do
