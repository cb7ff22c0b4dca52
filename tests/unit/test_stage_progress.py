"""pivot.progress: iterates like the iterable, and reports to the side file the worker names."""

from __future__ import annotations

from pathlib import Path

import pytest

import pivot
from pivot.stage_progress import PROGRESS_ENV, read_progress


def test_outside_a_stage_it_only_iterates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert list(pivot.progress(range(3))) == [0, 1, 2]


def test_inside_a_stage_the_last_count_reaches_the_side_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side = tmp_path / "stage.log.progress"
    monkeypatch.setenv(PROGRESS_ENV, str(side))

    assert sum(pivot.progress(range(50), desc="rows")) == sum(range(50))
    assert read_progress(str(side)) == (50, 50, "rows")

    with pivot.progress(total=7, desc="manual") as bar:
        bar.update(3)
    assert read_progress(str(side)) == (3, 7, "manual")


def test_an_unwritable_side_file_never_fails_the_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "/nonexistent-dir/x/progress")
    assert list(pivot.progress(iter("ab"))) == ["a", "b"]
