"""worker.execute_stage / run_pickled_task: one stage in, one Outcome value out, never a raise."""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from pivot.execute import worker
from pivot.execute.worker import Outcome, StageTask
from pivot.pipeline import Pipeline
from pivot.store import hashing
from pivot.store.cache import Cache
from tests.fixtures import engine_stages


def task_for(
    root: Path, name: str, incremental: Mapping[str, str] | None = None, **params: object
) -> StageTask:
    pipeline = Pipeline("w", root=root)
    spec = pipeline.register(
        engine_stages.STAGES[name],
        params=engine_stages.Factor(**params) if name == "prepare" else None,  # type: ignore[arg-type]
    )
    return StageTask(
        spec,
        str(root),
        str(root / "cache"),
        ("copy",),
        incremental or {},
        scratch_dir=str(root / "tmp"),
    )


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "raw.txt").write_text("ab")
    monkeypatch.chdir(tmp_path)  # stages run with the project root as cwd
    return tmp_path


def outs(outcome: Outcome) -> dict[str, tuple[str, bool, bool]]:
    return {o.path: (o.hash, o.cache, o.is_directory) for o in outcome.outs}


def test_success_saves_hashes_and_caches_outputs(root: Path) -> None:
    outcome = worker.execute_stage(task_for(root, "prepare", factor=3, suffix="!"))

    assert outcome.ok and outcome.error == "" and outcome.stage == "prepare"
    assert (root / "prepared.txt").read_text() == "ababab!"
    digest = hashing.hash_file(root / "prepared.txt")
    assert outs(outcome) == {"prepared.txt": (digest, True, False)}
    assert Cache(root / "cache").verify(digest)


def test_uncached_output_is_hashed_not_cached(root: Path) -> None:
    (root / "other.txt").write_text("hey")

    outcome = worker.execute_stage(task_for(root, "side"))

    digest = hashing.hash_file(root / "side.txt")
    assert outs(outcome) == {"side.txt": (digest, False, False)}
    assert not Cache(root / "cache").has(digest)


def test_directory_output_records_the_manifest_hash(root: Path) -> None:
    (root / "prepared.txt").write_text("xyz")
    (root / "parts").mkdir()
    (root / "parts" / "stale.txt").write_text("from an older run")

    outcome = worker.execute_stage(task_for(root, "split_parts"))

    assert sorted(p.name for p in (root / "parts").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    ((digest, cached, is_directory),) = outs(outcome).values()
    assert cached and is_directory
    manifest = Cache(root / "cache").load_manifest(digest)
    assert manifest.as_dict() == {
        f"{i}.txt": hashing.hash_file(root / "parts" / f"{i}.txt") for i in range(3)
    }


def test_user_exception_becomes_a_value_with_user_traceback(root: Path) -> None:
    outcome = worker.execute_stage(task_for(root, "fail"))

    assert not outcome.ok and outcome.outs == ()
    assert outcome.output == "stage output before failing\n"
    assert outcome.error.startswith("stage 'fail' failed in the stage function:")
    assert "engine_stages.py" in outcome.error and "in fail" in outcome.error
    assert "ValueError: fixture failure on 'ab'" in outcome.error
    assert "pivot/execute" not in outcome.error


def test_sys_exit_in_a_stage_is_a_failed_outcome(root: Path) -> None:
    outcome = worker.execute_stage(task_for(root, "exit_early"))

    assert not outcome.ok
    assert "SystemExit: stage gave up on 'ab'" in outcome.error
    assert "in exit_early" in outcome.error


def test_missing_dependency_is_a_failed_outcome(root: Path) -> None:
    outcome = worker.execute_stage(task_for(root, "train"))

    assert not outcome.ok
    assert "'prepared.txt' does not exist" in outcome.error


def test_previous_outputs_are_moved_away_for_the_call_and_put_back_on_failure(root: Path) -> None:
    (root / "never_written.txt").write_text("left over from the last run")

    outcome = worker.execute_stage(task_for(root, "forget_path_only"))

    assert not outcome.ok  # PathOnly: the stage itself must write it; the old file does not count
    assert "never_written.txt" in outcome.error
    # the stage failed: the last good output is back in place, and no backup is left
    assert (root / "never_written.txt").read_text() == "left over from the last run"
    assert not any((root / "tmp").iterdir())


def test_incremental_output_starts_from_the_cached_previous_value(root: Path) -> None:
    cache = Cache(root / "cache")
    previous = cache.add_bytes(json.dumps({"entries": ["before"]}).encode())
    (root / "log.json").write_text('{"entries": ["edited in the workspace"]}')

    outcome = worker.execute_stage(task_for(root, "accumulate", {"log.json": previous}))

    assert outcome.ok
    assert json.loads((root / "log.json").read_text()) == {"entries": ["before", "ab"]}
    assert cache.verify(previous)  # the blob was copied, never written through


def test_incremental_output_first_run_uses_empty(root: Path) -> None:
    outcome = worker.execute_stage(task_for(root, "accumulate"))

    assert outcome.ok
    assert json.loads((root / "log.json").read_text()) == {"entries": ["ab"]}


def test_pickled_task_runs_like_a_pool_worker(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    task = task_for(root, "prepare")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)

    outcome = worker.run_pickled_task(str(root), "epoch-1", pickle.dumps(task))

    assert outcome.ok
    assert Path.cwd() == root and sys.path[0] == str(root)
    assert (root / "prepared.txt").read_text() == "ab"


def test_unloadable_payload_is_a_failed_outcome(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))

    outcome = worker.run_pickled_task(str(root), "epoch-2", b"not a pickle")

    assert not outcome.ok
    assert "could not load the stage in a worker process" in outcome.error


def test_outcome_and_task_pickle(root: Path) -> None:
    task = task_for(root, "prepare")
    outcome = worker.execute_stage(task)

    assert pickle.loads(pickle.dumps(outcome)) == outcome
    assert pickle.loads(pickle.dumps(task)).spec.name == "prepare"
