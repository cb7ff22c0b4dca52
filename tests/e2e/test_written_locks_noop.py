"""After a run, the plan made for the next no-op's snapshot takes the locks the run wrote from
memory; the snapshot still records each lock file as it was then, so a lock changed after the
run (by hand, by git) is seen by the next `pivot repro`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.e2e.test_noop_snapshot import WAITING, acted, imported_pipeline, long_run, pivot_cli

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject


def test_a_lock_changed_after_a_run_is_seen_by_the_next_no_op(project: E2EProject) -> None:
    long_run(project, WAITING, lambda root: None)  # long enough to leave a snapshot
    assert (project.root / ".pivot" / "noop-repro").is_file()
    path = project.lock_path("count")
    document = json.loads(path.read_text())
    document["params"]["scale"] = 5
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")

    result = pivot_cli(project, "repro", "--json")

    assert result.code == 0, result.describe()
    assert imported_pipeline(result)  # the snapshot no longer holds
    assert acted(result) == {"count"}  # its lock records other params than it has
    assert json.loads(path.read_text())["params"]["scale"] == 1
