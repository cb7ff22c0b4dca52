"""store.logs: per-run stage logs, the last-run log published atomically, pruning, reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot.errors import NoRecordError
from pivot.store import logs


def _write(pivot_dir: Path, run_id: str, stage: str, text: str) -> None:
    path = logs.run_log_path(pivot_dir, run_id, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_publish_makes_the_run_log_the_last_one_and_runs_stay_readable(tmp_path: Path) -> None:
    _write(tmp_path, "20260101-000000-aaaa", "train", "epoch 1\n")
    logs.publish_log(tmp_path, "20260101-000000-aaaa", "train")
    _write(tmp_path, "20260101-000001-bbbb", "train", "epoch 2\n")
    logs.publish_log(tmp_path, "20260101-000001-bbbb", "train")

    assert logs.read_log(tmp_path, "train") == "epoch 2\n"
    assert logs.read_log(tmp_path, "train", "20260101-000000-aaaa") == "epoch 1\n"
    assert logs.list_runs(tmp_path) == ["20260101-000000-aaaa", "20260101-000001-bbbb"]
    assert logs.run_stages(tmp_path, "20260101-000001-bbbb") == ("train",)


def test_publish_first_links_at_the_name_and_falls_back_when_it_is_taken(tmp_path: Path) -> None:
    _write(tmp_path, "20260101-000000-aaaa", "train", "epoch 1\n")
    logs.publish_log(tmp_path, "20260101-000000-aaaa", "train", first=True)
    _write(tmp_path, "20260101-000001-bbbb", "train", "epoch 2\n")
    logs.publish_log(tmp_path, "20260101-000001-bbbb", "train", first=True)  # name taken
    logs.publish_log(tmp_path, "20260101-000002-cccc", "train", "elsewhere\n", first=True)

    assert logs.read_log(tmp_path, "train") == "elsewhere\n"
    assert logs.read_log(tmp_path, "train", "20260101-000001-bbbb") == "epoch 2\n"
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["runs", "train.log"]


def test_publish_removes_the_progress_side_file_unless_told_there_is_none(tmp_path: Path) -> None:
    _write(tmp_path, "20260101-000000-aaaa", "train", "x\n")
    side = logs.progress_path(logs.run_log_path(tmp_path, "20260101-000000-aaaa", "train"))
    side.write_text("{}")
    logs.publish_log(tmp_path, "20260101-000000-aaaa", "train", progressed=False)
    assert side.exists()
    logs.publish_log(tmp_path, "20260101-000000-aaaa", "train")
    assert not side.exists()


def test_prune_keeps_the_newest_runs_and_the_last_run_logs(tmp_path: Path) -> None:
    for number in range(5):
        _write(tmp_path, f"2026010{number}-000000-aaaa", "s", f"run {number}\n")
        logs.publish_log(tmp_path, f"2026010{number}-000000-aaaa", "s")

    logs.prune_runs(tmp_path, keep=2)

    assert logs.list_runs(tmp_path) == ["20260103-000000-aaaa", "20260104-000000-aaaa"]
    assert logs.read_log(tmp_path, "s") == "run 4\n"


def test_unknown_stage_or_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoRecordError, match="no log for stage 'nope'"):
        logs.read_log(tmp_path, "nope")
    _write(tmp_path, "20260101-000000-aaaa", "s", "x")
    with pytest.raises(NoRecordError, match=r"no logs kept for run '\.\./\.\./etc'"):
        logs.read_log(tmp_path, "s", "../../etc")
    with pytest.raises(NoRecordError, match="did not run in run"):
        logs.read_log(tmp_path, "other", "20260101-000000-aaaa")
