"""Ctrl-C while pipeline.py imports is an interrupt (exit 130), not a broken pipeline, even
where Python wraps it (on 3.11 a KeyboardInterrupt in `__set_name__` becomes a RuntimeError;
3.12+ raises it as it is)."""

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
    wrapped = "RuntimeError" if sys.version_info < (3, 12) else "ValueError"
    with pytest.raises(
        DiscoveryError, match=rf"importing .*pipeline\.py raised {wrapped}"
    ) as found:
        discovery.load_pipeline(project.load_project(root))
    assert "ValueError: no" in str(found.value)  # the user's own error, in the traceback
