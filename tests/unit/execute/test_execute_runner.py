"""runner.run_plan with the serial executor: order, events, fail-fast vs keep-going, commits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from pivot import api, plan
from pivot.execute import executors, runner, worker
from pivot.execute.events import Event, RunStatus, StageFinished, StageStarted
from pivot.store import backup, lock
from tests.fixtures.engine_project import make_project, write_files


def run(
    root: Path, targets: Sequence[str] = (), *, keep_going: bool = False, force: bool = False
) -> tuple[runner.RunReport, list[Event]]:
    """Plan and execute in this process with the serial executor; return report and events."""
    events: list[Event] = []
    with api.open_context(root) as ctx:
        selected = ctx.graph.with_upstream(targets) if targets else ctx.graph.order
        decided = plan.make_plan(ctx, selected, force=selected if force else ())
        report = runner.run_plan(
            ctx,
            decided,
            executors.SerialExecutor("epoch"),
            keep_going=keep_going,
            emit=events.append,
        )
    return report, events


def statuses(report: runner.RunReport) -> dict[str, RunStatus]:
    return {result.stage: result.status for result in report.results}


def lock_of(root: Path, stage: str) -> lock.LockEntry | None:
    return lock.read_lock(root / ".pivot" / "stages" / f"{stage}.lock")


def test_runs_in_dependency_order_and_emits_events(tmp_path: Path) -> None:
    root = make_project(tmp_path, "report", "train", "prepare")

    report, events = run(root)

    assert report.ok
    assert [r.stage for r in report.results] == ["prepare", "train", "report"]
    assert set(statuses(report).values()) == {RunStatus.RAN}
    started = [e for e in events if isinstance(e, StageStarted)]
    finished = [e for e in events if isinstance(e, StageFinished)]
    assert [(e.stage, e.index, e.total) for e in started] == [
        ("prepare", 1, 3),
        ("train", 2, 3),
        ("report", 3, 3),
    ]
    assert [(e.stage, e.status) for e in finished] == [
        (name, RunStatus.RAN) for name in ("prepare", "train", "report")
    ]
    assert json.loads((root / "report.json").read_text()) == {"score": 20}


def test_lock_written_with_step_values(tmp_path: Path) -> None:
    root = make_project(tmp_path, "prepare", factor=2)

    run(root)

    entry = lock_of(root, "prepare")
    assert entry is not None
    assert entry.params == {"factor": 2, "suffix": ""}
    assert [dep.path for dep in entry.deps] == ["raw.txt"]
    assert [(o.path, o.cache, o.is_directory) for o in entry.outs] == [
        ("prepared.txt", True, False)
    ]
    assert (root / "prepared.txt").read_text() == "abab"


def test_fail_fast_blocks_everything_after_a_failure(tmp_path: Path) -> None:
    root = make_project(tmp_path, "fail", "after_fail", "prepare", "train")

    report, events = run(root)

    assert not report.ok
    assert statuses(report) == {
        "fail": RunStatus.FAILED,
        "after_fail": RunStatus.BLOCKED,
        "prepare": RunStatus.BLOCKED,
        "train": RunStatus.BLOCKED,
    }
    (failure,) = report.failed
    assert "stage output before failing" in failure.output
    assert "ValueError: fixture failure on 'ab'" in failure.error
    assert "engine_stages.py" in failure.error and "worker.py" not in failure.error
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["fail"]
    assert lock_of(root, "fail") is None and lock_of(root, "prepare") is None


def test_keep_going_runs_independent_stages(tmp_path: Path) -> None:
    root = make_project(tmp_path, "fail", "after_fail", "prepare", "train")

    report, _ = run(root, keep_going=True)

    assert statuses(report) == {
        "fail": RunStatus.FAILED,
        "after_fail": RunStatus.BLOCKED,
        "prepare": RunStatus.RAN,
        "train": RunStatus.RAN,
    }
    blocked = next(r for r in report.results if r.stage == "after_fail")
    assert "upstream stage failed" in blocked.error
    assert lock_of(root, "train") is not None and lock_of(root, "after_fail") is None


def test_skipped_and_restored_steps(tmp_path: Path) -> None:
    root = make_project(tmp_path, "prepare", "train")
    run(root)
    (root / "model.json").unlink()

    report, events = run(root)

    assert statuses(report) == {"prepare": RunStatus.SKIPPED, "train": RunStatus.RESTORED}
    assert json.loads((root / "model.json").read_text()) == {"length": 2}
    assert [e.stage for e in events if isinstance(e, StageStarted)] == ["train"]


def test_early_cut_off_when_upstream_output_is_identical(tmp_path: Path) -> None:
    root = make_project(tmp_path, "prepare", "train", "report")
    run(root)
    before = (root / ".pivot" / "stages" / "report.lock").read_bytes()
    write_files(root, {"raw.txt": "cd"})  # prepared.txt changes, model.json (length) does not

    report, _ = run(root)

    assert statuses(report) == {
        "prepare": RunStatus.RAN,
        "train": RunStatus.RAN,
        "report": RunStatus.SKIPPED,
    }
    cut = next(r for r in report.results if r.stage == "report")
    assert cut.error == ""
    assert any("byte-identical outputs (early cut-off)" in reason for reason in cut.reasons)
    assert (root / ".pivot" / "stages" / "report.lock").read_bytes() == before


def test_missing_dependency_at_run_time_fails_the_stage(tmp_path: Path) -> None:
    root = make_project(tmp_path, "prepare", "train")

    with api.open_context(root) as ctx:
        decided = plan.make_plan(ctx, ["train"])
        report = runner.run_plan(
            ctx, decided, executors.SerialExecutor("e"), keep_going=False, emit=lambda e: None
        )

    (result,) = report.results
    assert result.status is RunStatus.FAILED
    assert "'prepared.txt' does not exist" in result.error


def test_missing_dependency_stops_a_fail_fast_run(tmp_path: Path) -> None:
    root = make_project(tmp_path, "prepare", "train", "side")

    with api.open_context(root) as ctx:
        decided = plan.make_plan(ctx, ["train", "side"])
        report = runner.run_plan(
            ctx, decided, executors.SerialExecutor("e"), keep_going=False, emit=lambda e: None
        )

    assert statuses(report) == {"train": RunStatus.FAILED, "side": RunStatus.BLOCKED}


def test_path_only_output_not_written_fails_clearly(tmp_path: Path) -> None:
    root = make_project(tmp_path, "forget_path_only")

    report, _ = run(root)

    (result,) = report.failed
    assert "never_written.txt" in result.error and "does not exist" in result.error
    assert lock_of(root, "forget_path_only") is None


def test_forced_run_of_up_to_date_stages(tmp_path: Path) -> None:
    root = make_project(tmp_path, "prepare", "train")
    run(root)

    report, _ = run(root, ["train"], force=True)

    assert statuses(report) == {"prepare": RunStatus.RAN, "train": RunStatus.RAN}
    assert report.results[0].reasons == ("forced",)


def test_incremental_output_accumulates(tmp_path: Path) -> None:
    root = make_project(tmp_path, "accumulate")
    for text in ("one", "two", "three"):
        write_files(root, {"raw.txt": text})
        report, _ = run(root)
        assert report.ok

    assert json.loads((root / "log.json").read_text()) == {"entries": ["one", "two", "three"]}


def test_previous_outputs_thrown_away_to_be_removed_later_are_gone_when_the_run_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a pool worker a thread removes what a successful stage set aside; whatever it has
    not removed yet when the run ends (here: nothing), the run removes."""
    root = make_project(tmp_path, "train", "prepare")
    run(root)
    handed: list[str] = []
    monkeypatch.setattr(worker, "_remove_later", handed.append)
    write_files(root, {"raw.txt": "abc"})  # both outputs change (else they are put back)

    report, _ = run(root)

    assert report.ok and statuses(report) == dict.fromkeys(("prepare", "train"), RunStatus.RAN)
    assert sorted(Path(path).name.split("=", 2)[2] for path in handed) == [
        "model.json",
        "prepared.txt",
    ]
    scratch = root / ".pivot" / runner.SCRATCH_DIR
    assert not (scratch / backup.DISCARDED).exists()
    assert not any(entry.name.startswith("=") for entry in scratch.iterdir())
