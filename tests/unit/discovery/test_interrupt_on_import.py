"""Ctrl-C while pipeline.py imports is an interrupt (exit 130), not a broken pipeline, even
where Python wraps it (a KeyboardInterrupt in `__set_name__` becomes a RuntimeError)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pivot import discovery, project
from pivot.errors import DiscoveryError

WRAPPED = """
class Interrupts:
    def __set_name__(self, owner, name):
        raise KeyboardInterrupt


class Model:
    field = Interrupts()
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "path_hooks", list(sys.path_hooks))
    monkeypatch.setattr(sys, "path_importer_cache", dict(sys.path_importer_cache))
    monkeypatch.setattr(sys, "path", list(sys.path))
    project.init_project(tmp_path)
    return tmp_path


def test_an_interrupt_wrapped_by_set_name_stays_an_interrupt(root: Path) -> None:
    (root / "pipeline.py").write_text(WRAPPED)
    with pytest.raises(KeyboardInterrupt):
        discovery.load_pipeline(project.load_project(root))


def test_an_error_in_set_name_is_a_discovery_error(root: Path) -> None:
    (root / "pipeline.py").write_text(WRAPPED.replace("KeyboardInterrupt", "ValueError('no')"))
    with pytest.raises(DiscoveryError, match=r"importing .*pipeline\.py raised RuntimeError"):
        discovery.load_pipeline(project.load_project(root))
