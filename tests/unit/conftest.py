"""Unit tests that run pipelines in-process: undo what that does to this process's state."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _isolated_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore cwd, sys.path and the imported `pipeline` module after each test."""
    monkeypatch.chdir(os.getcwd())
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "pipeline", raising=False)
    yield
    sys.modules.pop("pipeline", None)
