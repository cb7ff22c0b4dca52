"""A pool worker entering the same project again (every task) keeps it first on sys.path, its
import hook first, and the project as the working directory, whatever the last stage changed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pivot.execute import worker


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "path_hooks", list(sys.path_hooks))
    monkeypatch.setattr(worker, "_pool_process", {})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "project").mkdir()
    return str(tmp_path / "project")


def entered(root: str) -> bool:
    first_hook = getattr(sys.path_hooks[0], "pivot_root", None)
    return sys.path[0] == root and first_hook == root and os.getcwd() == root


def test_entering_again_puts_back_what_a_stage_changed(root: str, tmp_path: Path) -> None:
    worker.enter_project(root, "e1")
    assert entered(root)

    sys.path.insert(0, str(tmp_path))  # a stage put another directory first
    os.chdir(tmp_path)
    worker.enter_project(root, "e1")
    assert entered(root) and sys.path.count(root) == 1

    sys.path_hooks.pop(0)  # a stage dropped the project's import hook
    worker.enter_project(root, "e1")
    assert entered(root)

    sys.path.remove(root)
    worker.enter_project(root, "e1")
    assert sys.path[0] == root
