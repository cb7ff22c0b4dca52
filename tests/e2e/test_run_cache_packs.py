"""The run cache's local layout, end to end through the CLI: runs append entries to packs
(`.pivot/cache/runs/packs/`); a pack torn by a crash costs only the torn entry; the index in
the state db is rebuilt or caught up from the packs; push/pull/fetch move entries one object
each, as before; gc rewrites packs; verify moves damage aside; old loose entries still count."""

from __future__ import annotations

import shutil
from pathlib import Path

from pivot.store import hashing
from pivot.store.run_cache import RunCache, split_object_key
from tests.e2e.conftest import E2EProject, git
from tests.e2e.test_run_cache import _set_scale, two_runs


def _runs_dir(project: E2EProject) -> Path:
    return project.root / ".pivot" / "cache" / "runs"


def _files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _train_at(project: E2EProject, scale: int) -> str:
    _set_scale(project, scale)
    return project.repro_json()["train"]


def test_runs_are_packed_and_a_crash_mid_append_costs_only_the_torn_entry(
    project: E2EProject,
) -> None:
    two_runs(project)
    [name] = _files(_runs_dir(project))
    assert name.startswith("packs/") and name.endswith(".pack")  # no directory + file per run
    pack = _runs_dir(project) / name
    whole = pack.read_bytes()
    last = whole.rindex(b"PVRUN1 ")  # train at scale 3, the last entry appended
    pack.write_bytes(whole[: last + 250])  # killed mid-append

    assert _train_at(project, 2) == "restored"
    assert _train_at(project, 3) == "ran"
    assert project.runs() == ["train"]
    assert len(_files(_runs_dir(project))) == 2  # a torn pack is never appended to
    assert _train_at(project, 2) == "restored"
    assert _train_at(project, 3) == "restored"

    found = project.pivot("verify", expect=1)
    assert f"corrupt: run-cache pack 'runs/packs/{pack.name}' (damaged bytes)" in found.stderr
    assert "moved aside to .pivot/cache/quarantine/" in found.stderr
    assert "simply runs again" in found.stderr and "--force" not in found.stderr
    [kept] = (project.root / ".pivot" / "cache" / "quarantine").glob(f"runs-{pack.name}.*")
    assert kept.read_bytes() == whole[last : last + 250]
    assert "present and intact" in project.pivot("verify").stdout
    assert _train_at(project, 2) == "restored"
    assert project.runs() == []


def test_the_index_is_caught_up_when_stale_and_rebuilt_when_the_state_db_is_gone(
    project: E2EProject,
) -> None:
    project.gen({"data/raw.txt": "ab"})
    _set_scale(project, 2)
    project.repro_json()
    db = project.root / ".pivot" / "state.db"
    shutil.copy(db, project.root / "old.db")
    assert _train_at(project, 3) == "ran"
    for path in db.parent.glob("state.db*"):
        path.unlink()
    shutil.copy(project.root / "old.db", db)  # the index lacks the scale-3 run
    assert _train_at(project, 2) == "restored"
    assert _train_at(project, 3) == "restored"
    for path in db.parent.glob("state.db*"):
        path.unlink()
    assert _train_at(project, 2) == "restored"
    assert project.runs() == ["prepare", "train", "train"]  # nothing re-ran for a lost index


def test_push_sends_packed_entries_one_object_each_and_fetch_skips_what_a_pack_has(
    project: E2EProject, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    project.pivot("remote", "add", "-d", "origin", str(remote))
    two_runs(project)
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "scale 3")
    assert project.pivot("push", "--json").json["run_entries"] == 2  # prepare, train at 3
    on_remote = _files(remote / "runs")
    assert len(on_remote) == 2
    for name in on_remote:  # the old remote layout: runs/ab/cdef.../<entry hash>
        _run, entry = split_object_key(f"runs/{name}")
        assert hashing.hash_bytes((remote / "runs" / name).read_bytes()) == entry

    clone = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    b = E2EProject(clone)
    b.pivot("pull")
    assert _files(_runs_dir(b)) == on_remote  # fetched entries stay loose
    assert _train_at(b, 2) == "ran"
    assert b.pivot("push", "--json").json["run_entries"] == 1  # from b's pack
    assert len(_files(remote / "runs")) == 3
    assert project.pivot("fetch", "--json").json["run_entries"] == 0  # a's pack has them all


def test_gc_rewrites_packs_and_old_loose_entries_still_count(project: E2EProject) -> None:
    two_runs(project)
    cache = project.root / ".pivot" / "cache"
    removed = project.pivot("gc", "-f").stdout
    assert "(1 of them run-cache entries)" in removed  # train at scale 2: no lock keeps it
    assert len(list(RunCache(cache).entries())) == 2
    assert _train_at(project, 3) == "skipped"
    assert _train_at(project, 2) == "ran"
    assert _train_at(project, 3) == "restored"

    entries = dict(RunCache(cache).entries())  # as an older Pivot kept them: a file each
    shutil.rmtree(cache / "runs")
    for key, data in entries.items():
        (cache / key).parent.mkdir(parents=True, exist_ok=True)
        (cache / key).write_bytes(data)
    project.runs()
    assert _train_at(project, 2) == "restored"
    assert not (cache / "runs" / "packs").exists()  # a restored run is not saved again
    assert "(1 of them run-cache entries)" in project.pivot("gc", "-f").stdout
    assert sorted(RunCache(cache).entries()) == sorted(
        (key, data) for key, data in entries.items() if key != _entry_of_scale(entries, 3)
    )
    assert _train_at(project, 3) == "ran"


def _entry_of_scale(entries: dict[str, bytes], scale: int) -> str:
    """The object key of train's entry whose score holds `scale`."""
    import base64
    import json

    for key, data in entries.items():
        for item in json.loads(data)["outs"]:
            if "content" in item and json.loads(base64.b64decode(item["content"])) == {
                "scale": scale
            }:
                return key
    raise AssertionError(f"no entry of scale {scale}")
