"""The cyclic collector is paused while a command builds its long-lived objects, what they are
is frozen until the command ends, and the process's own collector settings are left as found."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivot import _collector, api


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable() if enabled else gc.disable()


def test_a_command_freezes_what_it_built_and_unfreezes_it_at_its_end() -> None:
    gc.enable()
    with _collector.command():
        with _collector.building():
            assert not gc.isenabled()
            built = [[index] for index in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built)
        with _collector.building():  # planning, after loading: frozen too
            assert not gc.isenabled()
        assert gc.isenabled()
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_outside_a_command_the_collector_is_only_paused() -> None:
    gc.enable()
    with _collector.building():
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    with _collector.command(), _collector.building():
        pass
    assert not gc.isenabled() and gc.get_freeze_count() == 0


def test_objects_the_process_froze_stay_frozen() -> None:
    gc.enable()
    gc.freeze()
    theirs = gc.get_freeze_count()
    with _collector.command():
        with _collector.building():
            built = [[index] for index in range(1000)]
        # nothing of ours frozen on top of theirs (that would add 1,000 and more); the count
        # may drop: a frozen object another thread (xdist's) lets go of is freed all the same
        assert gc.get_freeze_count() <= theirs
    assert 0 < gc.get_freeze_count() <= theirs
    assert len(built) == 1000


def test_the_collector_is_as_found_after_an_api_command_and_after_one_that_failed(
    tmp_path: Path,
) -> None:
    api.init(tmp_path)
    (tmp_path / "pipeline.py").write_text(
        "from pivot import Pipeline\npipeline = Pipeline('p')\n", encoding="utf-8"
    )
    gc.enable()
    assert api.status(root=tmp_path).steps == ()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    (tmp_path / "pipeline.py").write_text("raise ValueError('broken')\n", encoding="utf-8")
    with pytest.raises(Exception, match="broken"):
        api.status(root=tmp_path)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_paused_resumes_only_what_it_paused() -> None:
    gc.enable()
    with _collector.paused():
        assert not gc.isenabled()
        with _collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause does not resume the outer one
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # pausing never freezes
